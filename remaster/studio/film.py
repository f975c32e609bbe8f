"""What the studio colors: a film (its frames, timestamps and shots) or a set of photographs.

A film is scanned once at start, while the page shows how far it got: every frame's timestamp,
the shots (the library's `ShotDetector` on a reduced luma) and a thumbnail of each shot's first frame. A frame is then
read by seeking to its timestamp, and the last few are kept. Photographs are frames of their own,
each its own shot. Both give a frame's full-range luma `(H, W)` float32 in [0, 1].
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from remaster.errors import InputError

PHOTO_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp"}
THUMB_HEIGHT = 54  # px of a shot's thumbnail in the strip
_SHOT_SIDE = 128  # short side of the luma the shots are found on
_CACHED = 8  # frames kept in memory


@dataclass(frozen=True)
class Shot:
    start: int  # first frame
    end: int  # one past the last frame


def _resize(luma: torch.Tensor, height: int) -> torch.Tensor:
    """`(N, 1, H, W)` -> `(N, 1, height, W * height / H)`."""
    h, w = luma.shape[-2:]
    size = (max(1, height), max(1, round(w * height / h)))
    return F.interpolate(luma.float(), size=size, mode="bilinear", antialias=True, align_corners=False)


class Film:
    """A film opened for the studio; `frame(i)` is frame i's luma once `scan()` has read it through.

    Opening reads the header only (size, rate, an estimate of the length), so the studio's page
    can open at once and show the scan's progress (`loading`) while `scan()` reads every frame's
    timestamp, the shots and their thumbnails, in a thread of the command's."""

    kind = "film"

    def __init__(self, path: str | Path, *, scan: bool = True):
        from remaster.media.reader import VideoReader

        self.path = Path(path)
        self.pts: list[int] = []
        self.thumbs: list[np.ndarray] = []  # (h, w) uint8 luma of each shot's first frame
        self.shots: list[Shot] = []
        with VideoReader(self.path) as reader:  # a bad file is a one-line error now, before the page opens
            self.width, self.height = reader.width, reader.height
            self.rate: Fraction = reader.rate
            self.matrix = reader.source.matrix
            self.bit_depth = reader.source.bit_depth  # more than 8: keyframes are written 16-bit
            self.frames = reader.listed_frames or _estimated_frames(reader)  # until the scan counts them
        self.loading = {"done": 0, "total": self.frames or None, "shots": 0}
        self.ready = threading.Event()
        self.error: str | None = None  # the scan's one line, when it failed
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        if scan:
            self.scan()

    def scan(self, on_frames=None) -> None:
        """Every frame's timestamp, the shots (the library's `ShotDetector` on a reduced luma) and
        a thumbnail of each shot's first frame; `loading` (and `on_frames(n)`) as it goes."""
        from remaster.media.reader import VideoReader
        from remaster.stages.shots import ShotDetector

        pts: list[int] = []
        cuts: list[bool] = []
        detector = ShotDetector()
        try:
            with VideoReader(self.path) as reader:
                for batch in reader.batches(16, (1, 1)):
                    luma = batch.luma()  # (N, 1, H, W)
                    flags = detector(_resize(luma, _SHOT_SIDE)).tolist()
                    if not pts:
                        flags[0] = True  # the film's first frame starts its first shot
                    thumbs = _resize(luma, THUMB_HEIGHT)
                    for j, cut in enumerate(flags):
                        if cut:
                            self.thumbs.append((thumbs[j, 0].clamp(0, 1).numpy() * 255).round().astype(np.uint8))
                    cuts += flags
                    pts += list(batch.pts)
                    self.loading.update(done=len(pts), shots=len(self.thumbs))
                    if on_frames is not None:
                        on_frames(len(batch))
            if not pts:
                raise InputError(f"{self.path}: no frames to show")
        except Exception as error:
            self.error = (
                str(error) if isinstance(error, InputError) else f"{self.path}: {type(error).__name__}: {error}"
            )
            raise
        starts = [i for i, cut in enumerate(cuts) if cut]
        self.pts, self.frames = pts, len(pts)
        self.shots = [Shot(a, b) for a, b in zip(starts, starts[1:] + [len(cuts)])]
        self.loading.update(done=self.frames, total=self.frames)
        self.ready.set()

    @property
    def name(self) -> str:
        return self.path.name

    def describe(self) -> dict:
        state = {"ready": self.ready.is_set(), "loading": dict(self.loading), "error": self.error}
        return _described(self, fps=float(self.rate)) | state

    def shot_of(self, index: int) -> Shot:
        return next(s for s in self.shots if s.start <= index < s.end)

    def check(self, index: int) -> int:
        if not self.ready.is_set():
            if self.error:
                raise InputError(self.error)
            done, total = self.loading["done"], self.loading["total"]
            raise InputError(f"still reading the film: {done} of {total or '?'} frames; wait a moment")
        if not 0 <= index < self.frames:
            raise InputError(f"no frame {index}: the film has {self.frames} frames (0..{self.frames - 1})")
        return index

    def frame(self, index: int) -> np.ndarray:
        """Frame `index`'s full-range luma `(H, W)` float32 in [0, 1]."""
        self.check(index)
        with self._lock:
            if index in self._cache:
                self._cache.move_to_end(index)
                return self._cache[index]
            luma = self.stretch(index, 1)[0]
            self._cache[index] = luma
            while len(self._cache) > _CACHED:
                self._cache.popitem(last=False)
            return luma

    def stretch(self, start: int, count: int) -> list[np.ndarray]:
        """Lumas `(H, W)` of frames `start .. start + count - 1` (fewer at the film's end)."""
        from remaster.media.reader import VideoReader

        end = min(self.frames, start + count)
        wanted = set(self.pts[start:end])
        out = []
        with VideoReader(self.path) as reader:
            reader.seek(self.pts[start], self.pts[end - 1] + 1)
            for batch in reader.batches(8, (1, 1)):
                if batch.lead or batch.tail:
                    continue
                luma = batch.luma()
                out += [luma[j, 0].numpy() for j, pts in enumerate(batch.pts) if pts in wanted]
        if not out:
            raise InputError(f"{self.path}: frame {start} could not be read back")
        return out[: end - start]


class Photos:
    """Photographs, each a frame and a shot of its own (all read at once: a few files)."""

    kind = "photos"
    matrix = "bt601"  # a photograph's luma is its BT.601 luma (the JPEG convention)

    def __init__(self, paths: list[Path]):
        from remaster.media.stills import read_photo

        self.paths = [Path(p) for p in paths]
        photos = [read_photo(p) for p in self.paths]  # every file checked before the page opens
        self.sizes = [p.luma.shape for p in photos]
        self.bit_depth = 16 if any(p.scale > 255 for p in photos) else 8
        self.frames = len(self.paths)
        self.shots = [Shot(i, i + 1) for i in range(self.frames)]
        self.height, self.width = self.sizes[0]
        self.rate = Fraction(1)
        self.thumbs = [
            (_resize(torch.from_numpy(p.luma)[None, None], THUMB_HEIGHT)[0, 0].clamp(0, 1).numpy() * 255)
            .round()
            .astype(np.uint8)
            for p in photos
        ]

    @property
    def name(self) -> str:
        return self.paths[0].name if self.frames == 1 else f"{self.frames} photographs"

    def describe(self) -> dict:
        names = {"names": [p.name for p in self.paths], "sizes": [{"width": w, "height": h} for h, w in self.sizes]}
        return {**_described(self, fps=1.0), **names, "ready": True}

    def shot_of(self, index: int) -> Shot:
        return self.shots[index]

    def check(self, index: int) -> int:
        if not 0 <= index < self.frames:
            raise InputError(f"no photograph {index}: there are {self.frames} (0..{self.frames - 1})")
        return index

    def photo(self, index: int):
        from remaster.media.stills import read_photo

        return read_photo(self.paths[self.check(index)])

    def frame(self, index: int) -> np.ndarray:
        return self.photo(index).luma


def _estimated_frames(reader) -> int:
    """The film's length from its duration and rate, where the container lists no frame count (0: unknown)."""
    video = reader.video
    seconds = float(video.duration * video.time_base) if video.duration and video.time_base else None
    if seconds is None and reader.container.duration:
        seconds = reader.container.duration / 1_000_000  # av.time_base: microseconds
    return max(0, round(seconds * float(reader.rate))) if seconds else 0


def open_source(paths: list[Path], *, scan: bool = True) -> Film | Photos:
    """One video file -> `Film` (read through now, or with `scan=False` by its `scan()` later);
    image files -> `Photos`. Anything else is a one-line error."""
    if not paths:
        raise InputError("give a film, or one or more photographs")
    images = [p for p in paths if Path(p).suffix.lower() in PHOTO_SUFFIXES]
    if len(images) == len(paths):
        return Photos(paths)
    if len(paths) > 1:
        raise InputError("the studio opens one film at a time, or photographs (.png, .jpg, .tif, .webp, .bmp)")
    return Film(paths[0], scan=scan)


def _described(source, *, fps: float) -> dict:
    """What the page needs to lay out a film or a set of photographs (each photo a frame and a shot)."""
    return {
        "kind": source.kind,
        "name": source.name,
        "frames": source.frames,
        "width": source.width,
        "height": source.height,
        "fps": fps,
        "shots": [[s.start, s.end] for s in source.shots],
    }
