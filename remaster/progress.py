"""Progress for long runs: a live bar on a terminal, a few plain lines in a log.

A bar redrawn with carriage returns is what a person at a terminal wants; in a log file (stderr
redirected, a CI job, a cluster's task output) it becomes one enormous line. So when stderr is not
a terminal, progress is a plain line about every tenth of the way (and at least every minute),
each with frames, fps and the time left.
"""

from __future__ import annotations

import sys
import time


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}h{seconds // 60 % 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"


class Progress:
    """`update(n)` as frames are done; `close()` at the end. Does nothing when not `enabled`."""

    def __init__(self, total: int | None, name: str, *, enabled: bool = True, done: int = 0, stream=None):
        self.stream = stream or sys.stderr
        self.total, self.name, self.done = total, name, done
        self.enabled = enabled
        self._bar = None
        self._started = time.perf_counter()
        self._start_done = done  # frames finished by earlier runs do not count toward fps
        self._next_fraction = 0.1
        self._next_time = self._started + 60
        if enabled and getattr(self.stream, "isatty", lambda: False)():
            from tqdm import tqdm

            self._bar = tqdm(
                total=total, initial=done, unit="frame", desc=name, dynamic_ncols=True, smoothing=0.1, file=self.stream
            )

    def update(self, frames: int) -> None:
        self.done += frames
        if self._bar is not None:
            self._bar.update(frames)
        elif self.enabled:
            now = time.perf_counter()
            fraction = self.done / self.total if self.total else 0.0
            if fraction >= self._next_fraction or now >= self._next_time:
                self._line(now)
                while self._next_fraction <= fraction:
                    self._next_fraction += 0.1
                self._next_time = now + 60

    def _line(self, now: float) -> None:
        elapsed = now - self._started
        fps = (self.done - self._start_done) / elapsed if elapsed > 0 else 0.0
        text = f"remaster: {self.name}: {self.done}"
        if self.total:
            text += f"/{self.total} frames ({100 * self.done / self.total:.0f}%)"
            if fps > 0:
                text += f", {fps:.1f} fps, {_duration((self.total - self.done) / fps)} left"
        else:
            text += f" frames, {fps:.1f} fps"
        print(text, file=self.stream, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
