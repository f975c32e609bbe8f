"""Project errors.

Every error a user can cause is a `RemasterError` whose message is one line naming the file and
what is wrong; the CLI prints it and exits non-zero without a traceback. Domain errors also
subclass the matching builtin (PyAV's `InvalidDataError(FFmpegError, ValueError)` pattern), so
library callers can catch either.
"""


class RemasterError(Exception):
    """Base class: its message is a complete one-line answer for the user."""


class InputError(RemasterError, ValueError):
    """An input file is missing, unreadable, or not what it claims to be."""


class OutputError(RemasterError, OSError):
    """The output cannot be written (exists without --force, folder missing, disk full...)."""


class WeightsError(RemasterError, ValueError):
    """A model file is missing, truncated, not safetensors, or does not fit the network."""


class ConfigError(RemasterError, ValueError):
    """An option or preset value is out of range or unknown."""


def one_line(error: BaseException) -> str:
    """The first line of an exception's message (its type's name if it has none), at most 200 characters."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return text[:200]


def ffmpeg_reason(error: BaseException) -> str:
    """PyAV errors read "[Errno N] Reason: 'context'"; keep the reason only."""
    text = getattr(error, "strerror", None) or one_line(error)
    return str(text).rstrip(".").lower()


def cannot_create(destination, error: OSError) -> OutputError:
    """The refusal when no file can be created beside `destination` (a read-only or full folder):
    said before any work, by whichever writer tries first."""
    reason = (error.strerror or type(error).__name__).lower()
    return OutputError(f"{destination}: cannot create a file in {destination.parent} ({reason})")


class WorkerError(RemasterError, RuntimeError):
    """A worker process or Ray task failed; finished segments are kept for --resume."""
