"""Color hints: chroma plus a confidence, the second input of a hint-conditioned `ColorNet`.

One tensor convention, used by training, photographs (points, palettes) and films (carried
keyframe chroma): a hint map is `(N, 3, H, W)` at the network's input resolution,

    channel 0, 1: CIELAB (a, b) / 110 where a hint is given, 0 elsewhere
    channel 2:    confidence in [0, 1]; 0 means "no hint here"

Training simulates the hints a user or a keyframe carry would give (Zhang et al., SIGGRAPH 2017,
"Real-Time User-Guided Image Colorization with Learned Deep Priors", sample points and patches
of the true colors; we add dense, partly wrong hints with a confidence, which is what a carry of
keyframe chroma along optical flow looks like). With no hints at all the net is the automatic
colorizer, so half of every batch gets none.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

AB_SCALE = 110.0  # |a|, |b| of real colors stay under ~110: hint chroma lands in [-1, 1]


def hint_map(ab: Tensor, confidence: Tensor) -> Tensor:
    """(a, b) `(N, 2, H, W)` and confidence `(N, 1, H, W)` in [0, 1] -> hint map `(N, 3, H, W)`."""
    confidence = confidence.clamp(0.0, 1.0)
    given = (confidence > 0).to(ab.dtype)
    return torch.cat((ab / AB_SCALE * given, confidence), dim=1)


def resize_hints(hints: Tensor, size: tuple[int, int]) -> Tensor:
    """A hint map resized to `size`, averaging chroma by confidence so an edge of the hinted
    area does not fade its color toward the zeros outside it."""
    if hints.shape[-2:] == tuple(size):
        return hints
    confidence = hints[:, 2:3]
    weighted = F.interpolate(torch.cat((hints[:, :2] * confidence, confidence), 1), size=size, mode="area")  # (N, 3, h, w)
    confidence = weighted[:, 2:3]
    ab = weighted[:, :2] / confidence.clamp(min=1e-6)
    return torch.cat((ab * (confidence > 0), confidence), 1)


def empty_hints(n: int, height: int, width: int, *, device=None, dtype=torch.float32) -> Tensor:
    return torch.zeros(n, 3, height, width, device=device, dtype=dtype)


def point_hints(size: tuple[int, int], points, *, radius: int = 4) -> Tensor:
    """A hint map `(1, 3, h, w)` from points `(y, x, a, b)`: y, x relative in [0, 1], a, b in CIELAB.

    Build it at the network's working size (`Colorizer.working_size`): each point fills a
    (2*radius+1)^2 patch there with full confidence, as a click does in Zhang et al.'s tool.
    9 x 9 at a 256 px working size is about the size of the largest clicked patches in training
    (up to 9 px of 128 px crops); against 5 x 5, six clicks on `photos/val` gain +2.67 dB instead
    of +2.25 and remove 85% of the color error where they land instead of 67%
    (benchmarks/bench_hints.py, the first 30 photos).
    """
    height, width = size
    values = torch.zeros(1, 2, height, width)
    confidence = torch.zeros(1, 1, height, width)
    for y, x, a, b in points or []:
        row, col = round(y * (height - 1)), round(x * (width - 1))
        rows = slice(max(0, row - radius), row + radius + 1)
        cols = slice(max(0, col - radius), col + radius + 1)
        values[0, 0, rows, cols], values[0, 1, rows, cols] = a, b
        confidence[0, 0, rows, cols] = 1.0
    return hint_map(values, confidence)


def parse_color(text: str) -> tuple[float, float]:
    """A '#rrggbb' color -> its CIELAB (a, b): a hint carries chroma only; the photo keeps its luma."""
    from .color import rgb_to_lab
    from .errors import InputError

    value = text.strip().lstrip("#")
    if len(value) != 6 or any(c not in "0123456789abcdefABCDEF" for c in value):
        raise InputError(f"hint color {text!r}: expected #rrggbb, for example #c0392b")
    rgb = torch.tensor([int(value[i : i + 2], 16) / 255.0 for i in (0, 2, 4)]).reshape(1, 3, 1, 1)
    lab = rgb_to_lab(rgb)[0, :, 0, 0]
    return float(lab[1]), float(lab[2])


def _smooth_field(n: int, height: int, width: int, cells: int, generator: torch.Generator, device) -> Tensor:
    """A smooth random field in [0, 1] `(n, 1, H, W)`: uniform noise on a coarse grid, upsampled."""
    coarse = torch.rand(n, 1, cells, cells, generator=generator).to(device)
    return F.interpolate(coarse, size=(height, width), mode="bicubic", align_corners=False).clamp(0.0, 1.0)


def simulate_hints(ab: Tensor, generator: torch.Generator, *, none: float = 0.5, points: float = 0.25) -> Tensor:
    """Random training hints for true (a, b) `(B, 2, H, W)`: a hint map `(B, 3, H, W)`.

    Each sample gets one kind: none (probability `none`); sparse points (`points`): a
    geometric number of patches 1-9 px wide holding the patch's mean true color (Zhang et al.
    2017); or dense (the rest): the true chroma, blurred, with a smooth random confidence, and
    where confidence is low the chroma is replaced by a shifted copy, mixed in proportion. That
    teaches the net to follow a confident hint and to overrule a doubtful one, which is what a
    keyframe carried along imperfect flow needs.
    """
    batch, _, height, width = ab.shape
    device = ab.device
    kind = torch.rand(batch, generator=generator)
    values = torch.zeros_like(ab)
    confidence = torch.zeros(batch, 1, height, width, device=device)
    for i in range(batch):
        if kind[i] < none:
            continue
        if kind[i] < none + points:
            u = float(torch.rand(1, generator=generator))
            count = min(64, 1 + int(math.log(max(u, 1e-9)) / math.log(1 - 1 / 8)))  # geometric, mean 8
            for _ in range(count):
                size = int(torch.randint(0, 5, (1,), generator=generator)) * 2 + 1
                row = int(torch.randint(0, height - size + 1, (1,), generator=generator))
                col = int(torch.randint(0, width - size + 1, (1,), generator=generator))
                patch = ab[i, :, row : row + size, col : col + size].mean(dim=(1, 2))  # (2,)
                values[i, :, row : row + size, col : col + size] = patch[:, None, None]
                confidence[i, :, row : row + size, col : col + size] = 1.0
            continue
        blurred = F.avg_pool2d(ab[i : i + 1], 5, stride=1, padding=2, count_include_pad=False)  # (1, 2, H, W)
        shift = torch.randint(-height // 4, height // 4 + 1, (2,), generator=generator).tolist()
        wrong = torch.roll(blurred, shifts=(shift[0], shift[1]), dims=(2, 3))  # a misaligned carry
        trust = _smooth_field(1, height, width, 4, generator, device)  # (1, 1, H, W)
        values[i] = (trust * blurred + (1 - trust) * wrong)[0]
        # Regions that a carry would not reach at all get no hint.
        reach = _smooth_field(1, height, width, 3, generator, device) > 0.3
        confidence[i] = (trust * reach)[0]
    return hint_map(values, confidence)


__all__ = ["AB_SCALE", "hint_map", "resize_hints", "empty_hints", "point_hints", "parse_color", "simulate_hints"]
