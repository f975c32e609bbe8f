"""The studio's pictures: a frame gray, colored automatically, or steered by clicks, strokes and a
reference; keyframes written from them into the project folder.

The automatic view is the shipped model's (`Colorizer.load()`), the steered view the hint model's
(`Colorizer.load(hints=True)`), each click a point hint (`net.hints.point_hints`) as
`remaster image --hint` gives it; a reference (matched and registered by `reference.py`) adds
hints where it covers the frame, or replaces the colors there. Colors are made in the film's own
matrix (`colorize_luma`), so a keyframe written from the steered view, read back by `--keyframes`,
has the frame's luma and the steered chroma. Arrays are `(H, W, 3)` uint8 RGB at the frame's size.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from remaster.color import fit_chroma_to_gamut, luma_chroma_to_rgb, rgb_to_lab
from remaster.errors import InputError
from remaster.net.colorizer import Colorizer, colorize_luma
from remaster.net.hints import hint_map, parse_color, point_hints, resize_hints
from remaster.studio.reference import check_aspect, match, place, reference_chroma

VIEWS = ("gray", "automatic", "steered", "reference")
MAX_UPLOAD = 32 * 1024 * 1024  # bytes of a reference image
_STROKE_STEP = 6  # px between the hints sampled along a stroke, at the working size
# A reference used as hints: 5x5 patches every 16 px at the working size (10% of it), as clicks are
# patches (net.hints.point_hints). On the first 12 photos/val photos with themselves as references,
# mean absolute chroma error: automatic 0.034; 1-px hints every 12 px 0.038 (worse: the net was
# trained on patches); 5x5 every 12 px 0.018, every 16 px 0.017; 7x7 every 8 px 0.011, but that
# covers 77% of the frame, and clicks must still correct the reference between its hints.
_REFERENCE_STEP = 16
_REFERENCE_PATCH = 5
_CACHED = 16


def check_use(use: str) -> None:
    if use not in ("hints", "colors"):
        raise InputError(f"a reference is used as hints or as colors, not {str(use)[:20]!r}")


def to_rgb8(rgb: torch.Tensor) -> np.ndarray:
    """`(1, 3, H, W)` float in [0, 1] -> `(H, W, 3)` uint8."""
    return (rgb[0].permute(1, 2, 0).clamp(0, 1).cpu().numpy() * 255).round().astype(np.uint8)


def to_rgb16(rgb: torch.Tensor) -> np.ndarray:
    """`(1, 3, H, W)` float in [0, 1] -> `(H, W, 3)` uint16."""
    return (rgb[0].permute(1, 2, 0).clamp(0, 1).cpu().numpy() * 65535).round().astype(np.uint16)


def decode_image(data: bytes) -> np.ndarray:
    """An uploaded file -> `(H, W, 3)` uint8 RGB, or a one-line `InputError`."""
    if len(data) > MAX_UPLOAD:
        raise InputError(f"upload of {len(data)} bytes refused: at most {MAX_UPLOAD // 2**20} MiB")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED) if data else None
    if image is None or image.size == 0 or image.ndim not in (2, 3):
        raise InputError("upload refused: not an image (JPEG, PNG, TIFF, WebP or BMP expected)")
    if image.dtype == np.uint16:
        image = (image.astype(np.float32) / 257).round().astype(np.uint8)
    elif image.dtype != np.uint8:
        raise InputError(f"upload refused: {image.dtype} pixels; 8- or 16-bit images only")
    if image.ndim == 2:
        return np.repeat(image[..., None], 3, -1)
    return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB if image.shape[2] == 4 else cv2.COLOR_BGR2RGB)


class Engine:
    """The networks and the pictures of one studio session (one at a time: a lock)."""

    def __init__(self, source, project, *, model=None, hints_model=None, device="cpu"):
        self.source, self.project = source, project
        self.device = device
        self.auto = Colorizer.load(model, device=device)
        self.steer = Colorizer.load(hints_model, device=device, hints=True)
        if not self.steer.takes_hints:
            raise InputError(f"{hints_model}: takes no color hints; give a hint-conditioned model (--hints-model)")
        self.lock = threading.Lock()
        self._auto: OrderedDict[int, np.ndarray] = OrderedDict()

    def _luma(self, index: int) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(self.source.frame(index)))[None, None]  # (1, 1, H, W)

    def gray(self, index: int) -> np.ndarray:
        luma = self.source.frame(index)
        return np.repeat((luma * 255).round().astype(np.uint8)[..., None], 3, -1)

    def automatic(self, index: int) -> np.ndarray:
        with self.lock:
            if index not in self._auto:
                rgb = colorize_luma(self.auto, self._luma(index), self.source.matrix)
                self._auto[index] = to_rgb8(rgb)
                while len(self._auto) > _CACHED:
                    self._auto.popitem(last=False)
            return self._auto[index]

    def points(self, index: int) -> list[tuple[float, float, float, float]]:
        """The frame's clicks and strokes as hints `(x, y, a, b)`: x, y in pixels, (a, b) CIELAB."""
        height, width = self.source.frame(index).shape
        h, w = self.steer.working_size(height, width)
        step = _STROKE_STEP * max(height / h, width / w)  # frame pixels between a stroke's hints
        out = []
        for edit in self.project.edits(index):
            a, b = parse_color(edit["color"])
            if edit["op"] == "point":
                out.append((edit["x"], edit["y"], a, b))
                continue
            line = np.asarray(edit["points"], np.float64)  # (P, 2)
            out.append((*line[0], a, b))
            for p, q in zip(line[:-1], line[1:]):
                n = int(np.hypot(*(q - p)) // step)
                out += [(*(p + (q - p) * (k + 1) / (n + 1)), a, b) for k in range(n)] + [(*q, a, b)]
        return out

    def _hints(self, index: int, height: int, width: int) -> torch.Tensor:
        """A hint map at the working size: the reference's colors in patches on a sparse grid where
        it covers the frame (used as hints, they steer the frame; used as colors, they color the
        margin it does not cover), then the clicks and strokes over them."""
        size = self.steer.working_size(height, width)
        relative = [(y / max(1, height - 1), x / max(1, width - 1), a, b) for x, y, a, b in self.points(index)]
        clicks = point_hints(size, relative)  # (1, 3, h, w)
        placed = self._reference_on_frame(index)
        if placed is None:  # as colors too: its hints color the margin it does not cover
            return clicks
        rgb, coverage = placed  # (1, 3, H, W) in the film's terms, (H, W)
        lab = torch.cat((rgb_to_lab(rgb)[:, 1:], torch.from_numpy(coverage)[None, None]), 1)  # (1, 3, H, W)
        lab = resize_hints(lab, size)  # (1, 3, h, w)
        grid = torch.zeros(1, 1, *size)
        grid[..., _REFERENCE_STEP // 2 :: _REFERENCE_STEP, _REFERENCE_STEP // 2 :: _REFERENCE_STEP] = 1
        grid = F.max_pool2d(grid, _REFERENCE_PATCH, 1, _REFERENCE_PATCH // 2)  # (1, 1, h, w): the patches
        grid = grid * (lab[:, 2:3] > 0.999)  # hints only where the reference covers the frame
        given = clicks[:, 2:3] > 0
        return torch.where(given, clicks, hint_map(lab[:, :2], grid))

    def steered(self, index: int) -> np.ndarray:
        return to_rgb8(self.steered_rgb(index))

    def steered_rgb(self, index: int) -> torch.Tensor:
        """`(1, 3, H, W)` float RGB in [0, 1]: the hint model's colors for the frame's clicks (and
        its reference's hints); a reference used as the frame's colors replaces them where it
        covers the frame (blended by its coverage)."""
        luma = self._luma(index)
        height, width = luma.shape[-2:]
        with self.lock:
            rgb = colorize_luma(self.steer, luma, self.source.matrix, hints=self._hints(index, height, width))
        placed = self._reference_on_frame(index)
        if placed is not None and self.reference_use(index) == "colors":
            reference, coverage = placed
            weight = torch.from_numpy(coverage)[None, None]  # (1, 1, H, W)
            rgb = weight * reference + (1 - weight) * rgb  # the same luma both: only chroma is blended
        return rgb

    def _reference_on_frame(self, index: int) -> tuple[torch.Tensor, np.ndarray] | None:
        """The frame's registered reference in the film's terms, `((1, 3, H, W) RGB with the
        frame's luma, (H, W) coverage)`, or None."""
        rgba = self.reference(index)
        if rgba is None:
            return None
        luma = self._luma(index)  # (1, 1, H, W)
        chroma, coverage = reference_chroma(rgba, luma[0, 0].numpy(), self.source.matrix)
        chroma = fit_chroma_to_gamut(luma, chroma, self.source.matrix)
        return luma_chroma_to_rgb(luma, chroma, self.source.matrix).clamp(0, 1), coverage

    def view(self, index: int, name: str) -> np.ndarray:
        self.source.check(index)
        if name == "reference":
            reference = self.reference(index)
            if reference is None:
                raise InputError(f"frame {index} has no reference image")
            return reference
        return {"gray": self.gray, "automatic": self.automatic, "steered": self.steered}[name](index)

    # -- references and keyframes ------------------------------------------------------------------------

    def reference(self, index: int) -> np.ndarray | None:
        """The frame's reference registered onto it: `(H, W, 4)` uint8 RGBA, alpha its coverage."""
        path = self.project.reference_path(index)
        if not path.exists():
            return None
        image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if image.ndim == 3 and image.shape[2] == 4:
            return cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA)
        rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)  # a project of before registration: all covered
        return np.concatenate((rgb, np.full(rgb.shape[:2] + (1,), 255, np.uint8)), -1)

    def reference_use(self, index: int) -> str:
        return self.project.reference_info(index).get("use", "hints")

    def set_reference(self, index: int, data: bytes, use: str = "hints") -> int:
        """A reference image dropped on frame `index`: decoded, matched to the frame near it that it
        fits best, registered onto that frame (studio/reference.py), kept in the project folder.
        Returns the frame it was placed on."""
        from remaster.atomic import write_atomic

        check_use(use)
        self.source.check(index)
        height, width = self.source.frame(index).shape
        rgb = decode_image(data)
        check_aspect(rgb, width, height)
        rgb = rgb.astype(np.float32) / 255
        found, _ = match(self.source, index, rgb)
        rgba, registration = place(rgb, self.source.frame(found))
        self.project.subfolder("references")
        encoded = cv2.imencode(".png", cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))[1].tobytes()
        write_atomic(self.project.reference_path(found), encoded)
        self.project.set_reference(found, use=use, registration=registration | {"dropped_on": int(index)})
        return found

    def set_reference_use(self, index: int, use: str) -> None:
        check_use(use)
        if self.reference(index) is None:
            raise InputError(f"frame {index} has no reference image")
        self.project.set_reference(index, use=use)

    def mark_keyframe(self, index: int, marked: bool = True) -> None:
        """Write (or remove) frame `index`'s keyframe: the steered view, named by its number, as
        `--keyframes` reads it; a 16-bit PNG when the film has more than 8 bits (its luma and the
        network's chroma kept at that precision), else 8-bit."""
        from remaster.media.stills import write_image

        self.source.check(index)
        path = self.project.keyframe_path(index)
        if marked:
            self.project.folder.mkdir(parents=True, exist_ok=True)
            rgb = self.steered_rgb(index)
            deep = getattr(self.source, "bit_depth", 8) > 8
            write_image(path, to_rgb16(rgb) if deep else to_rgb8(rgb), force=True)
        else:
            path.unlink(missing_ok=True)
        self.project.set_keyframe(index, marked)
