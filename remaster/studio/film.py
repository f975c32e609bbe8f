"""What the studio colors: a film (its frames, timestamps and shots) or a set of photographs.

A film is scanned once at start: every frame's timestamp, the shots (the library's
`ShotDetector` on a reduced luma) and a thumbnail of each shot's first frame. A frame is then
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
    """A film opened for the studio; `frame(i)` is frame i's luma."""

    kind = "film"

    def __init__(self, path: str | Path):
        from remaster.media.reader import VideoReader
        from remaster.stages.shots import ShotDetector

        self.path = Path(path)
        self.pts: list[int] = []
        cuts: list[bool] = []
        self.thumbs: list[np.ndarray] = []  # (h, w) uint8 luma of each shot's first frame
        detector = ShotDetector()
        with VideoReader(self.path) as reader:
            self.width, self.height = reader.width, reader.height
            self.rate: Fraction = reader.rate
            self.matrix = reader.source.matrix
            for batch in reader.batches(16, (1, 1)):
                luma = batch.luma()  # (N, 1, H, W)
                flags = detector(_resize(luma, _SHOT_SIDE)).tolist()
                if not self.pts:
                    flags[0] = True  # the film's first frame starts its first shot
                thumbs = _resize(luma, THUMB_HEIGHT)
                for j, cut in enumerate(flags):
                    if cut:
                        self.thumbs.append((thumbs[j, 0].clamp(0, 1).numpy() * 255).round().astype(np.uint8))
                cuts += flags
                self.pts += list(batch.pts)
        if not self.pts:
            raise InputError(f"{self.path}: no frames to show")
        starts = [i for i, cut in enumerate(cuts) if cut]
        self.shots = [Shot(a, b) for a, b in zip(starts, starts[1:] + [len(cuts)])]
        self.frames = len(self.pts)
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self.path.name

    def describe(self) -> dict:
        return _described(self, fps=float(self.rate))

    def shot_of(self, index: int) -> Shot:
        return next(s for s in self.shots if s.start <= index < s.end)

    def check(self, index: int) -> int:
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
    """Photographs, each a frame and a shot of its own."""

    kind = "photos"
    matrix = "bt601"  # a photograph's luma is its BT.601 luma (the JPEG convention)

    def __init__(self, paths: list[Path]):
        from remaster.media.stills import read_photo

        self.paths = [Path(p) for p in paths]
        photos = [read_photo(p) for p in self.paths]  # every file checked before the page opens
        self.sizes = [p.luma.shape for p in photos]
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
        return {**_described(self, fps=1.0), **names}

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


def open_source(paths: list[Path]) -> Film | Photos:
    """One video file -> `Film`; image files -> `Photos`. Anything else is a one-line error."""
    if not paths:
        raise InputError("give a film, or one or more photographs")
    images = [p for p in paths if Path(p).suffix.lower() in PHOTO_SUFFIXES]
    if len(images) == len(paths):
        return Photos(paths)
    if len(paths) > 1:
        raise InputError("the studio opens one film at a time, or photographs (.png, .jpg, .tif, .webp, .bmp)")
    return Film(paths[0])


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
