"""The work folder of a run: finished segments and the journal that makes `--resume` cheap.

Beside the output, `.NAME.remaster-work/` holds each finished segment's video
(`segment-NNNNN.EXT`, the output's own container, renamed into place and synced) and
`journal.json`: what the work is for (input path, size and mtime; options; model; the plan) and
which segments are done. A segment counts as done only once its journal entry is on disk,
written after the segment file (atomically, synced). So a run stopped in any way (Ctrl-C,
kill -9, a power cut, a full disk) loses at most the segments in progress, and `--resume`
continues with the others. Segments may finish in any order (several workers).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from remaster.atomic import write_atomic
from remaster.errors import OutputError
from remaster.run.plan import Segment

JOURNAL_VERSION = 2


def work_folder(output: Path) -> Path:
    return output.with_name(f".{output.name}.remaster-work")


def identity(input: Path, options: dict, model: dict, plan: list[Segment]) -> dict:
    """What a journal must match to be continued: the same film, options, model and plan."""
    stat = input.stat()
    return {
        "version": JOURNAL_VERSION,
        "input": {"path": str(input.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns},
        "options": json.loads(json.dumps(options, default=str)),
        "model": {"name": model.get("model"), "sha256": model.get("sha256"), "parameters": model.get("parameters")},
        "plan": [s.to_dict() for s in plan],
    }


def _flat(options: dict, prefix: str = "") -> dict:
    """{"pipeline.segment_frames": 40, ...}: one entry per setting, for naming what differs."""
    flat = {}
    for key, value in options.items():
        if isinstance(value, dict):
            flat |= _flat(value, f"{prefix}{key}.")
        else:
            flat[prefix + key] = value
    return flat


def _setting(key: str, value) -> str:
    """`--segment-frames 40` for a setting the command line has, `pipeline.queue_depth = 2` otherwise."""
    from remaster.run.config import flag_fields

    flags = {f"{section}.{f.name}": flag for section, f, flag in flag_fields()}
    if key == "keyframes":
        shown = ", ".join(f"{k['file']} at frame {k['frame']}" for k in value or [])
        return f"--keyframes ({shown})" if shown else "no --keyframes"
    if key not in flags:
        return f"{key} = {value!r}"
    if isinstance(value, bool):
        return flags[key] if value else f"no {flags[key]}"
    return f"{flags[key]} {'(the default)' if value is None else value}"


def _difference(old: dict, new: dict) -> str:
    """What a `--resume` refusal says: which of input, model and options differ, with the old and
    new values, and how to resume (repeat the old ones)."""
    if old.get("version") != new["version"]:
        return "was made by another version of remaster; use --force to start over"
    if old.get("input") != new["input"]:
        was, path = (old.get("input") or {}).get("path"), new["input"]["path"]
        if was != path:
            return f"was made from {was}, not {path}; give that input to resume, or use --force to start over"
        return (
            f"was made from an earlier version of {path} (its size or modification time differs); "
            "use --force to start over"
        )
    before, now = _flat(old.get("options", {})), _flat(new["options"])
    changed = sorted(k for k in before.keys() | now.keys() if before.get(k) != now.get(k))
    if changed:
        was = [_setting(k, before.get(k)) for k in changed]
        said = "; ".join(
            f"{w} (now {n})" if n != w else f"{w} (its images differ now)"
            for w, n in zip(was, (_setting(k, now.get(k)) for k in changed))
        )
        return (
            f"was made with different options: {said}; to resume, repeat them ({', '.join(was)}), "
            "or use --force to start over"
        )
    if old.get("model") != new["model"]:
        was, now = old.get("model") or {}, new["model"]
        return (
            f"was made with another model file: {was.get('name')} (sha256 {str(was.get('sha256'))[:12]}), now "
            f"{now['name']} (sha256 {str(now['sha256'])[:12]}); put that model back to resume, "
            "or use --force to start over"
        )
    return (  # the same options on the same file, cut differently (the plan code changed)
        "was planned differently (the segments differ) from the same input and options; use --force to start over"
    )


class Journal:
    """A run's work folder. `Journal.open` starts it, or continues it with `resume=True`."""

    def __init__(self, output: Path, data: dict):
        self.output = output
        self.folder = work_folder(output)
        self.data = data
        self.plan = [Segment(**s) for s in data["identity"]["plan"]]

    @classmethod
    def open(cls, output: Path, ident: dict, *, resume: bool, force: bool) -> Journal:
        folder = work_folder(output)
        path = folder / "journal.json"
        if folder.exists() and path.exists():
            try:
                data = json.loads(path.read_text())
            except (OSError, ValueError):
                data = {}
            if not resume and not force:
                raise OutputError(
                    f"{output}: an interrupted run left its work in {folder.name}; continue it with --resume, "
                    "or use --force to start over"
                )
            if resume and data.get("identity") == ident:
                return cls(output, data)
            if resume:
                raise OutputError(f"{output}: the work in {folder.name} {_difference(data.get('identity', {}), ident)}")
        if folder.exists():
            shutil.rmtree(folder)
        try:
            folder.mkdir()
        except OSError as error:
            raise OutputError(f"{folder}: cannot create the work folder: {(error.strerror or '').lower()}") from None
        journal = cls(output, {"identity": ident, "done": {}})
        journal._save()
        return journal

    def _save(self) -> None:
        write_atomic(self.folder / "journal.json", json.dumps(self.data, indent=1).encode(), durable=True)

    def segment_path(self, segment: Segment) -> Path:
        return self.folder / f"segment-{segment.index:05d}{self.output.suffix}"

    @property
    def done(self) -> dict:
        return self.data["done"]

    def pending(self) -> list[Segment]:
        return [s for s in self.plan if str(s.index) not in self.done]

    def record(self, segment: Segment, result) -> None:
        """The segment's file is on disk: from now on it counts as done. `result`: a `SegmentResult`."""
        self.done[str(segment.index)] = {
            "file": self.segment_path(segment).name,
            "frames": result.frames,
            "damaged": result.damaged,
            "resized": result.resized,
            "cut_short": result.cut_short,
            "retimed": result.retimed,
        }
        self._save()

    def parts(self) -> list[tuple[Path, int]]:
        """(segment file, pts of its first frame) in film order, for the join."""
        return [(self.folder / self.done[str(s.index)]["file"], s.start_pts) for s in self.plan]

    def _numbered(self):
        """(first frame in the film, entry) of every segment, in film order, once all are done:
        the decoder's counts, not the plan's."""
        first = 0
        for segment in self.plan:
            entry = self.done[str(segment.index)]
            yield first, entry
            first += entry["frames"]

    @property
    def frames(self) -> int:
        return sum(entry["frames"] for entry in self.done.values())

    def damaged(self) -> list[int]:
        """Frame numbers in the film that were repeated (undecodable) or concealed."""
        return sorted({first + f for first, entry in self._numbered() for f in entry["damaged"]})

    def resized(self) -> list[list]:
        """Runs of frames fitted to the film's format, in film order, joined across segments."""
        runs: list[list] = []
        for first, entry in self._numbered():
            for start, count, what in entry["resized"]:
                if runs and runs[-1][2] == what and runs[-1][0] + runs[-1][1] == first + start:
                    runs[-1][1] += count
                else:
                    runs.append([first + start, count, what])
        return runs

    def cut_short(self) -> list | None:
        """[frame number, why] where unreadable data ended the film, if it did."""
        return next(
            ([first + cut[0], cut[1]] for first, entry in self._numbered() if (cut := entry.get("cut_short"))), None
        )

    def retimed(self) -> int:
        return sum(entry.get("retimed", 0) for entry in self.done.values())

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def finished(output: Path) -> tuple[int, int]:
    """(segments finished, segments planned) as the journal on disk has them: the truth a
    `--resume` will see, whatever the interrupted code was doing."""
    try:
        data = json.loads((work_folder(output) / "journal.json").read_text())
        return len(data["done"]), len(data["identity"]["plan"])
    except (OSError, ValueError, KeyError):
        return 0, 0


def kept_message(output: Path, what: str) -> str:
    """What a stopped run leaves behind, and what to do about it."""
    done, total = finished(output)
    if total:
        return (
            f"{what}; nothing was written to {output}; {done} of {total} segments are kept in "
            f"{work_folder(output).name}: rerun with --resume to continue"
        )
    return f"{what}; nothing was written to {output}"


def remove_stale_partials(output: Path) -> None:
    """Temporary outputs of runs that died (kill -9, power cut). Only call while holding the
    output's lock: then no live run is writing any of them."""
    for path in output.parent.glob(f".{output.stem}.partial-*{output.suffix}"):
        path.unlink(missing_ok=True)
