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
    weighted = F.interpolate(
        torch.cat((hints[:, :2] * confidence, confidence), 1), size=size, mode="area"
    )  # (N, 3, h, w)
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
    from remaster.color import rgb_to_lab
    from remaster.errors import InputError

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


def simulate_hints(
    ab: Tensor,
    generator: torch.Generator,
    *,
    none: float = 0.5,
    points: float = 0.25,
    clicks: float = 0.0,
    error: Tensor | None = None,
) -> Tensor:
    """Random training hints for true (a, b) `(B, 2, H, W)`: a hint map `(B, 3, H, W)`.

    Each sample gets one kind: none (probability `none`); sparse points (`points`): a
    geometric number of patches 1-9 px wide holding the patch's mean true color (Zhang et al.
    2017); a colorist's clicks (`clicks`, needs `error`): 1-8 patches 5-9 px wide placed where
    the net's own unhinted colors are wrong (`error` `(B, 1, h, w)`, any resolution), as a
    colorist clicks where the automatic colors fail; or dense (the rest): the true chroma,
    blurred, with a smooth random confidence, and where confidence is low the chroma is replaced
    by a shifted copy, mixed in proportion. That teaches the net to follow a confident hint and
    to overrule a doubtful one, which is what a keyframe carried along imperfect flow needs.

    The whole batch is drawn at once: 174 torch operations for a batch of 256, where a loop over
    samples and patches took 12,988, tiny launches that on a GPU cost more time than the network
    itself. Random numbers come from `generator` (a CPU generator).
    """
    batch, _, height, width = ab.shape
    device = ab.device
    kind = torch.rand(batch, generator=generator)
    values = torch.zeros_like(ab)
    confidence = torch.zeros(batch, 1, height, width, device=device)
    if clicks > 0 and error is None:
        raise ValueError("simulated clicks need the error map of the net's unhinted colors")
    for chosen, make in (
        ((kind >= none) & (kind < none + points), lambda index: _point_patches(ab[index], generator)),
        (
            (kind >= none + points) & (kind < none + points + clicks),
            lambda index: _colorist_clicks(ab[index], error[index], generator),
        ),
        (kind >= none + points + clicks, lambda index: _dense_carry(ab[index], generator)),
    ):
        index = chosen.nonzero().flatten().to(device)
        if len(index):
            values[index], confidence[index] = make(index)
    return hint_map(values, confidence)


_MAX_PATCHES, _PATCH_SIZES = 64, (1, 3, 5, 7, 9)


def _point_patches(ab: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Sparse hints for `(n, 2, H, W)`: a geometric number (mean 8, at most 64) of square patches
    per sample at random places, each filled with its mean true color."""
    n, _, height, width = ab.shape
    u = torch.rand(n, generator=generator).clamp(min=1e-9)
    count = (1 + (u.log() / math.log(1 - 1 / 8)).long()).clamp(max=_MAX_PATCHES)  # geometric, mean 8
    size_index = torch.randint(0, len(_PATCH_SIZES), (n, _MAX_PATCHES), generator=generator)
    size = torch.tensor(_PATCH_SIZES)[size_index]  # (n, P)
    row = (torch.rand(n, _MAX_PATCHES, generator=generator) * (height - size + 1)).long()
    col = (torch.rand(n, _MAX_PATCHES, generator=generator) * (width - size + 1)).long()
    used = torch.arange(_MAX_PATCHES)[None, :] < count[:, None]  # (n, P)
    return _paint_patches(ab, size, row, col, used)


_MAX_CLICKS, _CLICK_SIZES = 8, (5, 7, 9)


def _colorist_clicks(ab: Tensor, error: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """A colorist's clicks for `(n, 2, H, W)`: 1-8 patches 5-9 px wide, each holding its mean true
    color, at places drawn without replacement in proportion to the squared `error` of the net's
    unhinted colors there (Gumbel top-k over a coarse grid). `demo.colorist_clicks` and a person
    click where the automatic colors fail, often a small vivid object beside others; random
    points rarely land there, so a net trained on them learns to spread a click further than
    its object. These teach it what a click on a failure means."""
    n, _, height, width = ab.shape
    device = ab.device
    grid = F.adaptive_avg_pool2d(error.float(), (height // 8, width // 8)).flatten(1)  # (n, cells)
    gumbel = -torch.log(-torch.log(torch.rand(grid.shape, generator=generator).clamp(1e-9, 1 - 1e-9)))
    keys = (grid.square() + 1e-6).log() + gumbel.to(device)
    cell = keys.topk(_MAX_CLICKS, dim=1).indices.cpu()  # (n, P), distinct cells
    size = torch.tensor(_CLICK_SIZES)[torch.randint(0, len(_CLICK_SIZES), (n, _MAX_CLICKS), generator=generator)]
    jitter = torch.randint(0, 8, (2, n, _MAX_CLICKS), generator=generator)
    row = ((cell // (width // 8)) * 8 + jitter[0] - size // 2).clamp(min=0)
    col = ((cell % (width // 8)) * 8 + jitter[1] - size // 2).clamp(min=0)
    row, col = torch.minimum(row, height - size), torch.minimum(col, width - size)
    count = torch.randint(1, _MAX_CLICKS + 1, (n,), generator=generator)
    used = torch.arange(_MAX_CLICKS)[None, :] < count[:, None]
    return _paint_patches(ab, size, row, col, used)


def _paint_patches(ab: Tensor, size: Tensor, row: Tensor, col: Tensor, used: Tensor) -> tuple[Tensor, Tensor]:
    """Square patches `(n, P)` (side, top row, left column, whether used) painted with each patch's
    mean true color of `ab` `(n, 2, H, W)`; where patches overlap, the later one wins."""
    n, _, height, width = ab.shape
    device = ab.device
    patches = size.shape[1]
    size, row, col, used = (t.to(device) for t in (size, row, col, used))
    # Each patch's mean color, from a summed-area table: four lookups a patch, whatever its size.
    table = F.pad(ab.double().cumsum(2).cumsum(3), (1, 0, 1, 0))  # (n, 2, H+1, W+1); float64: sums of sums
    samples = torch.arange(n, device=device)[:, None].expand(n, patches)
    bottom, right = row + size, col + size
    total = (
        table[samples, :, bottom, right]
        - table[samples, :, row, right]
        - table[samples, :, bottom, col]
        + table[samples, :, row, col]
    )
    mean = (total / (size * size)[..., None]).to(ab.dtype)  # (n, P, 2)
    # Paint: every pixel covered takes the latest patch over it (the sequential painter's rule).
    offsets = torch.arange(max(_PATCH_SIZES + _CLICK_SIZES), device=device)
    dy, dx = offsets[:, None].expand(-1, len(offsets)), offsets[None, :].expand(len(offsets), -1)  # (9, 9)
    inside = (dy[None, None] < size[..., None, None]) & (dx[None, None] < size[..., None, None]) & used[..., None, None]
    pixel = (
        samples[..., None, None] * (height * width) + (row[..., None, None] + dy) * width + (col[..., None, None] + dx)
    )
    order = torch.arange(patches, device=device)[None, :, None, None].expand_as(pixel)
    latest = torch.full((n * height * width,), -1, device=device, dtype=torch.long)
    latest.scatter_reduce_(0, pixel[inside], order[inside], reduce="amax")
    latest = latest.reshape(n, height * width)
    covered = latest >= 0
    values = mean[torch.arange(n, device=device)[:, None], latest.clamp(min=0)] * covered[..., None]  # (n, H*W, 2)
    values = values.reshape(n, height, width, 2).permute(0, 3, 1, 2)
    return values, covered.reshape(n, 1, height, width).to(ab.dtype)


def _dense_carry(ab: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Dense hints for `(n, 2, H, W)`: blurred true chroma, mixed with a misaligned copy where a
    smooth random trust is low, and absent where a carry would not reach."""
    n, _, height, width = ab.shape
    device = ab.device
    blurred = F.avg_pool2d(ab, 5, stride=1, padding=2, count_include_pad=False)  # (n, 2, H, W)
    shift = torch.randint(-(height // 4), height // 4 + 1, (n, 2), generator=generator).to(device)
    rows = (torch.arange(height, device=device)[None, :] - shift[:, :1]) % height  # torch.roll per sample
    cols = (torch.arange(width, device=device)[None, :] - shift[:, 1:]) % width
    samples = torch.arange(n, device=device)[:, None, None, None]
    channels = torch.arange(2, device=device)[None, :, None, None]
    wrong = blurred[samples, channels, rows[:, None, :, None], cols[:, None, None, :]]  # a misaligned carry
    trust = _smooth_field(n, height, width, 4, generator, device)  # (n, 1, H, W)
    reach = _smooth_field(n, height, width, 3, generator, device) > 0.3  # regions a carry would not reach
    return trust * blurred + (1 - trust) * wrong, trust * reach


__all__ = ["AB_SCALE", "hint_map", "resize_hints", "empty_hints", "point_hints", "parse_color", "simulate_hints"]
