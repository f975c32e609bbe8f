"""The studio's longer work, through the library's own pipeline (`colorize_video`):

- the carry's preview: a few seconds of the current shot, at a reduced size, with the keyframes
  that fall in it, colorized into `preview/` and shown frame by frame in the page;
- the render: the whole film with the project's keyframes and a preset, in a thread, into
  `render/`, through the pipeline's own resumable run (its journal), in worker processes when
  asked; its progress (frames, fps, time left) counted from the frames the pipeline hands on;
- for photographs, the export: each one steered by its clicks, into `export/`.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import av
import cv2
import numpy as np

from remaster.errors import InputError, OutputError, RemasterError

PREVIEW_SECONDS = 3.0
PREVIEW_SIDE = 240  # short side of the preview, px
CODECS = ("libx264", "ffv1")
MAX_WORKERS = max(1, os.cpu_count() or 1)  # processes a render may ask for


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


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}h{seconds // 60 % 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"


class _Stopped(KeyboardInterrupt):
    """The page's Stop: raised in the render's own thread, where the pipeline takes it as a Ctrl-C
    (its finished segments are kept in the work folder, for the next render to continue)."""


class _Watched:
    """An executor of the pipeline's (in process, worker processes), counting the frames done for
    the page and stopping the run when the page asks, between batches."""

    def __init__(self, inner, render: Render):
        self.inner, self.render = inner, render
        self.coarse = getattr(inner, "coarse", False)

    def describe(self) -> dict:
        return self.inner.describe()

    def run(self, jobs, on_done, on_frames=None) -> None:
        def frames(n: int) -> None:
            self.render._count(n)
            if on_frames is not None:
                on_frames(n)
            self.render._check()

        def done(job, outcome) -> None:
            on_done(job, outcome)
            self.render._check()

        self.inner.run(jobs, done, on_frames=frames)

    def close(self) -> None:
        self.inner.close()


def _session(render: Render):
    """The pipeline's own `Session`, its executor watched (a class made here: the studio imports the
    pipeline only when a render starts)."""
    from remaster.run.pipeline import Session

    class Watched(Session):
        def executor(self, jobs: int):
            return _Watched(super().executor(jobs), render)

    return Watched


class Render:
    """The render of the film (or the export of the photographs) in a thread; `state` for the page.

    A film is rendered by the pipeline of `remaster colorize --keyframes PROJECT --resume`
    (run/pipeline.py's `Session` and `Film`, in `workers` processes when asked), into
    `render/NAME-color.EXT`. A render stopped in any way (the page's Stop, the studio's Ctrl-C, a
    crash) leaves its finished segments in the work folder beside the output, and the next render
    continues from them; when the keyframes or the preset changed since, the journal refuses
    them, and the render starts over (and says so)."""

    def __init__(self, engine, *, workers: int = 1, options: dict | None = None):
        self.engine = engine
        self.workers = workers  # the default; the page may ask for another count
        self.options = dict(options or {})  # more of make_config's overrides (the tests' segment_frames)
        self.state: dict = {"state": "idle"}
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._stop_after: int | None = None
        self._counted = 0
        self._began: float | None = None
        self._output: Path | None = None

    def start(
        self,
        *,
        pipeline: str | None = None,
        codec: str = "libx264",
        workers: int | None = None,
        stop_after: int | None = None,
    ) -> dict:
        """`stop_after`: stop once that many frames are done in this render, as the page's Stop
        does (the tests' way to stop a render at a known point)."""
        from remaster.run.config import available_presets

        if self._thread is not None and self._thread.is_alive():
            raise InputError("a render is already running")
        self.engine.source.check(0)  # a film still being read: one line saying how far it got
        if pipeline and pipeline not in available_presets():
            raise InputError(f"unknown preset {pipeline[:40]!r}: one of {', '.join(available_presets())}")
        if codec not in CODECS:
            raise InputError(f"codec {codec[:20]!r}: one of {', '.join(CODECS)}")
        workers = self.workers if workers is None else workers
        if not isinstance(workers, int) or not 1 <= workers <= MAX_WORKERS:
            raise InputError(f"workers: a whole number from 1 to {MAX_WORKERS}, not {str(workers)[:20]!r}")
        self._stop.clear()
        self._stop_after, self._counted, self._began = stop_after, 0, None
        total = self.engine.source.frames
        self.state = {"state": "running", "phase": "starting", "done": 0, "total": total, "fps": None, "left": None}
        self.state["workers"] = workers
        target = self._film if self.engine.source.kind == "film" else self._photos
        self._thread = threading.Thread(target=self._run, args=(target, pipeline, codec, workers), daemon=True)
        self._thread.start()
        return dict(self.state)

    def stop(self) -> dict:
        if self._thread is None or not self._thread.is_alive():
            raise InputError("no render is running")
        self._stop.set()
        self.state["phase"] = "stopping"
        return dict(self.state)

    def wait(self, timeout: float | None = None) -> dict:
        if self._thread is not None:
            self._thread.join(timeout)
        return dict(self.state)

    # -- in the render's thread -----------------------------------------------------------------------

    def _count(self, frames: int) -> None:
        """Frames done: the rate counts from the first batch on (model loading and a segment's
        warm-up before it say nothing of the time the rest takes), as the terminal's progress does."""
        now = time.perf_counter()
        state = self.state
        state["done"] = min(state["total"], state["done"] + frames)
        state["phase"] = "colorizing"
        if self._began is None:
            self._began = now
        else:
            self._counted += frames
            elapsed = now - self._began
            if elapsed > 0 and self._counted:
                fps = self._counted / elapsed
                state.update(fps=round(fps, 2), left=_duration((state["total"] - state["done"]) / fps))

    def _check(self) -> None:
        after = self._stop_after
        if after is not None and self.state["done"] - self.state.get("resumed", 0) >= after:
            self._stop.set()
        if self._stop.is_set():
            raise _Stopped()

    def _run(self, target, pipeline, codec, workers) -> None:
        try:
            self.state["output"] = str(target(pipeline, codec, workers))
            self.state.update(state="done", phase="done")
        except _Stopped:
            self.state.update(state="stopped", phase="stopped", left=None, note="stopped before any segment finished")
        except KeyboardInterrupt:  # the studio's own Ctrl-C: the pipeline kept what it could
            self.state.update(state="stopped", phase="stopped", left=None)
        except RemasterError as error:
            if self._stop.is_set() and "interrupted" in str(error):  # the pipeline kept the finished segments
                from remaster.run.journal import finished

                done, total = finished(self._output)
                note = f"{done} of {total} segments are kept: Render continues from them"
                self.state.update(state="stopped", phase="stopped", left=None, note=note)
            else:
                self.state.update(state="failed", error=str(error), left=None)
        except Exception as error:  # shown in the page, whatever it is; the server goes on
            self.state.update(state="failed", error=f"{type(error).__name__}: {error}")

    def _film(self, pipeline, codec, workers) -> Path:
        from remaster.run.config import make_config
        from remaster.run.journal import work_folder
        from remaster.run.pipeline import Film

        source, project = self.engine.source, self.engine.project
        output = project.subfolder("render") / f"{source.path.stem}-color{'.mkv' if codec == 'ffv1' else '.mp4'}"
        self._output = output
        config = make_config(pipeline, codec=codec, device=self.engine.device, **self.options)
        keyframes = project.folder if project.keyframes() else None
        resume = work_folder(output).exists()
        while True:
            self.state["phase"] = "placing keyframes" if keyframes else "starting"
            with _session(self)(config, workers=workers, progress=True) as session:
                film = Film(source.path, output, force=True, resume=resume)
                try:
                    try:
                        film.open(session, keyframes)
                    except OutputError as error:
                        if resume and "the work in" in str(error):  # made with other keyframes or options
                            self.state["note"] = f"the stopped render's work was not reused: {error}"
                            resume = False
                            continue
                        raise
                    resumed = film.resumed_frames
                    self.state.update(total=film.plan.frames, done=resumed, resumed=resumed, phase="colorizing")
                    session.run([film], film.output.name)
                finally:
                    film.close()
            break
        report = film.report
        self.state.update(done=report.frames, total=report.frames, fps=report.fps, left=None, seconds=report.seconds)
        return output

    def _photos(self, pipeline, codec, workers) -> Path:
        from remaster.media.stills import write_image

        source, engine = self.engine.source, self.engine
        folder = engine.project.subfolder("export")
        for index, path in enumerate(source.paths):
            self._check()
            write_image(folder / f"{index:03d}-{path.stem}.png", engine.steered(index), force=True)
            self.state["done"] = index + 1
        return folder
