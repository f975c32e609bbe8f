"""The studio's longer work, through the library's own pipeline (`colorize_video`):

- the carry's preview: a few seconds of the current shot, at a reduced size, with the keyframes
  that fall in it, colorized into `preview/` and shown frame by frame in the page;
- the render: the whole film with the project's keyframes and a preset, in a thread, into
  `render/`, its progress (frames, fps, time left) read from the pipeline's own progress lines;
- for photographs, the export: each one steered by its clicks, into `export/`.
"""

from __future__ import annotations

import re
import sys
import threading
from pathlib import Path

import av
import cv2
import numpy as np

from remaster.errors import InputError, RemasterError

PREVIEW_SECONDS = 3.0
PREVIEW_SIDE = 240  # short side of the preview, px
CODECS = ("libx264", "ffv1")
_PROGRESS = re.compile(r": (\d+)/(\d+) frames \(\d+%\)(?:, ([\d.]+) fps)?(?:, (\S+) left)?")


def _even(value: float) -> int:
    return max(2, int(round(value / 2)) * 2)


def _write_gray(path: Path, lumas: list[np.ndarray], rate) -> None:
    """A lossless gray clip (FFV1) of full-range lumas: the stretch the carry's preview colors."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("ffv1", rate=rate)
        stream.height, stream.width = lumas[0].shape
        stream.pix_fmt = "gray"
        for luma in lumas:
            frame = av.VideoFrame.from_ndarray((luma * 255).round().astype(np.uint8), format="gray")
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))


def preview_carry(engine, index: int, *, pipeline: str | None = None) -> list[np.ndarray]:
    """The carry over a few seconds of frame `index`'s shot, from its last keyframe at or before
    `index` (else the shot's start): `(h, w, 3)` uint8 RGB frames at `PREVIEW_SIDE` px."""
    from remaster.run.config import make_config
    from remaster.run.pipeline import colorize_video

    source, project = engine.source, engine.project
    if source.kind != "film":
        raise InputError("the carry's preview is for films; photographs have no motion to carry along")
    shot = source.shot_of(source.check(index))
    marked = [k for k in project.keyframes() if shot.start <= k <= index]
    start = marked[-1] if marked else shot.start
    count = min(shot.end - start, max(2, round(PREVIEW_SECONDS * float(source.rate))))
    lumas = source.stretch(start, count)
    height, width = lumas[0].shape
    scale = min(1.0, PREVIEW_SIDE / min(height, width))
    size = (_even(width * scale), _even(height * scale))
    lumas = [cv2.resize(luma, size, interpolation=cv2.INTER_AREA) for luma in lumas]
    folder = project.subfolder("preview")
    keys = folder / "keyframes"
    keys.mkdir(exist_ok=True)
    for old in keys.glob("*.png"):
        old.unlink()
    for k in project.keyframes():
        if start <= k < start + len(lumas) and project.keyframe_path(k).exists():
            image = cv2.imread(str(project.keyframe_path(k)), cv2.IMREAD_COLOR)
            cv2.imwrite(str(keys / f"{k - start:06d}.png"), cv2.resize(image, size, interpolation=cv2.INTER_AREA))
    stretch, carried = folder / "stretch.mkv", folder / "carry.mkv"
    _write_gray(stretch, lumas, source.rate)
    config = make_config(pipeline, codec="ffv1", device=engine.device)
    with engine.lock:
        colorize_video(
            stretch,
            carried,
            config,
            force=True,
            progress=False,
            colorizer=engine.auto,
            keyframes=keys if any(keys.glob("*.png")) else None,
        )
    with av.open(str(carried)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


class _Tee:
    """stderr, and each of the pipeline's progress lines parsed into `state`."""

    def __init__(self, stream, state: dict):
        self.stream, self.state = stream, state

    def write(self, text: str) -> int:
        for line in text.splitlines():
            match = _PROGRESS.search(line)
            if match and "remaster: " in line:
                done, total, fps, left = match.groups()
                self.state.update(done=int(done), total=int(total), fps=float(fps) if fps else None, left=left)
        return self.stream.write(text)

    def flush(self) -> None:
        self.stream.flush()

    def isatty(self) -> bool:
        return False  # progress as plain lines, which the tee reads

    def __getattr__(self, name):
        return getattr(self.stream, name)


class Render:
    """The render of the film (or the export of the photographs) in a thread; `state` for the page."""

    def __init__(self, engine):
        self.engine = engine
        self.state: dict = {"state": "idle"}
        self._thread: threading.Thread | None = None

    def start(self, *, pipeline: str | None = None, codec: str = "libx264") -> dict:
        from remaster.run.config import available_presets

        if self._thread is not None and self._thread.is_alive():
            raise InputError("a render is already running")
        if pipeline and pipeline not in available_presets():
            raise InputError(f"unknown preset {pipeline[:40]!r}: one of {', '.join(available_presets())}")
        if codec not in CODECS:
            raise InputError(f"codec {codec[:20]!r}: one of {', '.join(CODECS)}")
        self.state = {"state": "running", "done": 0, "total": self.engine.source.frames, "fps": None, "left": None}
        target = self._film if self.engine.source.kind == "film" else self._photos
        self._thread = threading.Thread(target=self._run, args=(target, pipeline, codec), daemon=True)
        self._thread.start()
        return self.state

    def _run(self, target, pipeline, codec) -> None:
        try:
            self.state["output"] = str(target(pipeline, codec))
            self.state["state"] = "done"
        except RemasterError as error:
            self.state.update(state="failed", error=str(error))
        except Exception as error:  # shown in the page, whatever it is; the server goes on
            self.state.update(state="failed", error=f"{type(error).__name__}: {error}")

    def _film(self, pipeline, codec) -> Path:
        from remaster.run.config import make_config
        from remaster.run.pipeline import colorize_video

        source, project = self.engine.source, self.engine.project
        output = project.subfolder("render") / f"{source.path.stem}-color{'.mkv' if codec == 'ffv1' else '.mp4'}"
        config = make_config(pipeline, codec=codec, device=self.engine.device)
        keyframes = project.folder if project.keyframes() else None
        stderr, sys.stderr = sys.stderr, _Tee(sys.stderr, self.state)
        try:
            report = colorize_video(source.path, output, config, force=True, progress=True, keyframes=keyframes)
        finally:
            sys.stderr = stderr
        self.state.update(done=report.frames, total=report.frames, fps=report.fps, left=None)
        return output

    def _photos(self, pipeline, codec) -> Path:
        from remaster.media.stills import write_image

        source, engine = self.engine.source, self.engine
        folder = engine.project.subfolder("export")
        for index, path in enumerate(source.paths):
            write_image(folder / f"{index:03d}-{path.stem}.png", engine.steered(index), force=True)
            self.state["done"] = index + 1
        return folder
