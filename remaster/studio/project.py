"""The studio's project folder: the only place the studio writes.

    FILM.studio/            (or --keyframes DIR)
      000120.png            a keyframe, named by its frame as `--keyframes` reads it
      project.json          every click and stroke of every frame, the undo/redo stacks, the keyframes
      references/000120.png a reference matched to frame 120, registered onto it (RGBA: alpha its coverage)
      preview/              the carry's preview (a short gray stretch, its keyframes, the result)
      render/               the render's output

Every path is made here from a frame number or a fixed name, never from what a client sent.
`project.json` is rewritten atomically after every change, so a session resumes where it stopped.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

from remaster.atomic import write_atomic
from remaster.errors import InputError, OutputError

VERSION = 1
MAX_EDITS = 2000  # per frame: a stroke is one edit
_COLOR = set("0123456789abcdef")


def check_color(text) -> str:
    value = str(text).strip().lower()
    if len(value) != 7 or value[0] != "#" or not set(value[1:]) <= _COLOR:
        raise InputError(f"color {str(text)[:20]!r}: expected #rrggbb")
    return value


def check_edit(edit: dict, width: int, height: int) -> dict:
    """A click `{"op": "point", "x", "y", "color"}` or a stroke `{"op": "stroke", "points": [[x, y],
    ...], "color"}` in the frame's pixels, checked and normalised (one-line errors)."""
    if not isinstance(edit, dict):
        raise InputError("an edit is a JSON object")
    color = check_color(edit.get("color"))

    def point(value) -> list[float]:
        try:
            x, y = (float(v) for v in value)
        except (TypeError, ValueError):
            raise InputError("a point is [x, y] in the frame's pixels") from None
        if not (0 <= x < width and 0 <= y < height):
            raise InputError(f"point {x:g},{y:g} is outside the {width}x{height} frame")
        return [round(x, 2), round(y, 2)]

    if edit.get("op") == "point":
        x, y = point([edit.get("x"), edit.get("y")])
        return {"op": "point", "x": x, "y": y, "color": color}
    if edit.get("op") == "stroke":
        points = edit.get("points")
        if not isinstance(points, list) or not 1 <= len(points) <= 500:
            raise InputError("a stroke is 1 to 500 points")
        return {"op": "stroke", "points": [point(p) for p in points], "color": color}
    raise InputError(f"unknown edit {str(edit.get('op'))[:20]!r}: expected point or stroke")


class Project:
    """The project folder of one film (or set of photographs), and its state."""

    def __init__(self, folder: Path, *, source_name: str, frames: int):
        self.folder = Path(folder)
        self.file = self.folder / "project.json"
        self.frames = frames
        self._lock = threading.RLock()
        self.state = {"version": VERSION, "source": source_name, "frames": {}, "keyframes": []}
        if self.file.exists():
            try:
                state = json.loads(self.file.read_text())
            except (OSError, ValueError) as error:
                raise InputError(f"{self.file}: not a studio project file ({error})") from None
            if not isinstance(state, dict) or state.get("version") != VERSION:
                raise InputError(f"{self.file}: not a studio project file of version {VERSION}")
            self.state.update(state)
        elif self.folder.exists() and not self.folder.is_dir():
            raise OutputError(f"{self.folder}: exists and is not a folder; give another with --keyframes")

    # -- paths, all made from numbers or fixed names --------------------------------------------------

    def keyframe_path(self, index: int) -> Path:
        return self.folder / f"{int(index):06d}.png"

    def reference_path(self, index: int) -> Path:
        return self.folder / "references" / f"{int(index):06d}.png"

    def subfolder(self, name: str) -> Path:
        if name not in ("preview", "render", "references", "export"):
            raise ValueError(name)
        path = self.folder / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    # -- state ----------------------------------------------------------------------------------------

    def save(self) -> None:
        with self._lock:
            self.folder.mkdir(parents=True, exist_ok=True)
            write_atomic(self.file, json.dumps(self.state, indent=1).encode())

    def _frame(self, index: int) -> dict:
        return self.state["frames"].setdefault(str(int(index)), {"edits": [], "undone": []})

    def edits(self, index: int) -> list[dict]:
        with self._lock:
            return list(self.state["frames"].get(str(int(index)), {}).get("edits", []))

    def frame_state(self, index: int) -> dict:
        with self._lock:
            frame = self.state["frames"].get(str(int(index)), {"edits": [], "undone": []})
            return {
                "frame": int(index),
                "edits": list(frame["edits"]),
                "undo": bool(frame["edits"]),
                "redo": bool(frame["undone"]),
                "keyframe": int(index) in self.state["keyframes"],
                "reference": self.reference_path(index).exists(),
                **({"reference_use": info.get("use", "hints")} if (info := self.reference_info(index)) else {}),
                **({"registration": info["registration"]} if info.get("registration") else {}),
            }

    def reference_info(self, index: int) -> dict:
        """`{"use": "hints" | "colors", "registration": {...}}` of frame `index`'s reference ({} if none)."""
        with self._lock:
            info = self.state.get("references", {}).get(str(int(index)))
        if info is None or not self.reference_path(index).exists():
            return {}
        return {"use": info} if isinstance(info, str) else dict(info)  # a string: a project of before registration

    def set_reference(self, index: int, *, use: str, registration: dict | None = None) -> None:
        with self._lock:
            references = self.state.setdefault("references", {})
            info = references.get(str(int(index)))
            info = {"use": info} if isinstance(info, str) else dict(info or {})
            info["use"] = use
            if registration is not None:
                info["registration"] = registration
            references[str(int(index))] = info
            self.save()

    def add(self, index: int, edit: dict) -> None:
        with self._lock:
            frame = self._frame(index)
            if len(frame["edits"]) >= MAX_EDITS:
                raise InputError(f"frame {index} has {MAX_EDITS} edits already")
            frame["edits"].append(edit)
            frame["undone"] = []
            self.save()

    def undo(self, index: int) -> None:
        with self._lock:
            frame = self._frame(index)
            if frame["edits"]:
                frame["undone"].append(frame["edits"].pop())
                self.save()

    def redo(self, index: int) -> None:
        with self._lock:
            frame = self._frame(index)
            if frame["undone"]:
                frame["edits"].append(frame["undone"].pop())
                self.save()

    def clear(self, index: int) -> None:
        with self._lock:
            frame = self._frame(index)
            if frame["edits"]:
                frame["undone"] += reversed(frame["edits"])
                frame["edits"] = []
                self.save()

    def keyframes(self) -> list[int]:
        with self._lock:
            return sorted(self.state["keyframes"])

    def set_keyframe(self, index: int, marked: bool) -> None:
        with self._lock:
            frames = set(self.state["keyframes"])
            frames = frames | {int(index)} if marked else frames - {int(index)}
            self.state["keyframes"] = sorted(frames)
            self.save()
