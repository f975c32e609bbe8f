"""A keyframe's colors by tone, for what its carry cannot reach (stages/keyframes/carry.py).

`palette` is a keyframe's mean chroma at each tone and `paint` colors a frame's luma with it (a
global hint); `local_fill` colors a frame's uncertain pixels from the confident carried colors of
nearby pixels of the same tone (a bilateral grid), with a fallback where none are near; `either`
is what two guesses of a color agree on (that fallback: the palette's and the carry's own).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

# -- a keyframe's palette: its colors by tone, for what the carry cannot reach -------------------

PALETTE_BINS = 32  # luma bins; a keyframe at 256 px puts ~2800 pixels in each on average


def palette(luma: Tensor, chroma: Tensor, weight: Tensor | None = None, bins: int = PALETTE_BINS) -> Tensor:
    """A keyframe's mean chroma at each tone: `luma (1, 1, h, w)`, `chroma (1, 2, h, w)` ->
    `(bins, 2)`, each pixel counted by its `weight (1, 1, h, w)` (a registered print's coverage;
    None: all alike); a tone the keyframe lacks takes its nearest neighbours' colors (interpolated).

    A tone whose pixels disagree (a face and a wall of the same gray) is no basis for a bold color
    (issue 20, item 6): each tone's mean m is shrunk toward gray by |m|² / mean(|c|²), 1 where all
    its pixels have one color, near 0 where their colors cancel out (the Wiener gain of the mean
    over the spread around it)."""
    index = (luma.flatten().clamp(0, 1) * (bins - 1)).round().long()  # (h*w,)
    colors = chroma.flatten(2)[0].T  # (h*w, 2)
    values = torch.cat([colors, (colors**2).sum(1, keepdim=True)], 1)  # (h*w, 3): Cb, Cr, |c|²
    if weight is None:
        sums = torch.zeros(bins, 3, device=chroma.device).index_add_(0, index, values)  # (bins, 3)
        counts = torch.bincount(index, minlength=bins).float()  # (bins,)
    else:
        w = weight.flatten().to(chroma.dtype)  # (h*w,)
        sums = torch.zeros(bins, 3, device=chroma.device).index_add_(0, index, values * w[:, None])
        counts = torch.zeros(bins, device=chroma.device).index_add_(0, index, w)
    known = (counts > 1e-3).nonzero().flatten()
    means = sums[known] / counts[known, None]  # (K, 3)
    table = agreed(means[:, :2], means[:, 2:])  # (K, 2)
    # Each bin takes the linear interpolation between the known bins around it (the end ones repeated).
    place = torch.searchsorted(known, torch.arange(bins, device=known.device)).clamp(1, max(len(known) - 1, 1))
    lo, hi = known[place - 1], known[place.clamp(max=len(known) - 1)]
    span = (hi - lo).clamp_min(1).float()
    t = ((torch.arange(bins, device=known.device) - lo).float() / span).clamp(0, 1)[:, None]
    at = lambda k: table[torch.searchsorted(known, k)]
    return at(lo) * (1 - t) + at(hi) * t  # (bins, 2)


def agreed(mean: Tensor, power: Tensor) -> Tensor:
    """The color some guesses agree on: their `mean` chroma `(N, 2, ...)` shrunk toward gray by
    |mean|² / `power` (their mean |c|², `(N, 1, ...)`), the Wiener gain of the mean over the spread
    around it: 1 where the guesses are one color, near 0 where they cancel out."""
    return mean * ((mean**2).sum(1, keepdim=True) / power.clamp_min(1e-12)).clamp(max=1.0)


def either(a: Tensor, b: Tensor) -> Tensor:
    """What two guesses of a color `(1, 2, h, w)` agree on (`agreed`): where they are alike, their
    color; where they differ, their mean toward gray; where they are opposite, gray."""
    return agreed((a + b) / 2, ((a**2).sum(1, keepdim=True) + (b**2).sum(1, keepdim=True)) / 2)


def paint(table: Tensor, luma: Tensor) -> Tensor:
    """`luma (1, 1, h, w)` colored by a palette `(bins, 2)`: `(1, 2, h, w)`, linear between bins."""
    x = luma[0, 0].clamp(0, 1) * (len(table) - 1)  # (h, w)
    lo = x.floor().long().clamp(max=len(table) - 2)
    t = x - lo
    return torch.stack([torch.lerp(table[lo, c], table[lo + 1, c], t) for c in range(2)])[None]  # (1, 2, h, w)


def local_fill(
    luma: Tensor, chroma: Tensor, confidence: Tensor, fallback: Tensor, cell: int = 8, bins: int = 16
) -> Tensor:
    """Colors for where the carry is not confident, from where it is: the confident carried
    colors of nearby pixels of the same tone (a bilateral grid, Chen et al. 2007: `cell` px
    by `1/bins` of the tone range, slices trilinear), and `fallback (1, 2, h, w)` where no such
    pixel is near. An object partly hidden (a disc passing in front of a square) takes its color
    back from its own visible part, not from whatever hid it. All `(1, C, h, w)` -> `(1, 2, h, w)`."""
    h, w = luma.shape[-2:]
    gh, gw = -(-h // cell), -(-w // cell)
    ys = torch.arange(h, device=luma.device).view(h, 1).expand(h, w) // cell
    xs = torch.arange(w, device=luma.device).view(1, w).expand(h, w) // cell
    zs = (luma[0, 0].clamp(0, 1) * (bins - 1)).round().long()  # (h, w)
    index = ((zs * gh + ys) * gw + xs).flatten()  # (h*w,)
    values = torch.cat([chroma * confidence, confidence], 1)[0].flatten(1)  # (3, h*w)
    grid = torch.stack([torch.bincount(index, weights=v, minlength=bins * gh * gw) for v in values])  # (3, cells)
    grid = grid.reshape(1, 3, bins, gh, gw).to(chroma.dtype)
    grid = F.avg_pool3d(
        grid, 3, stride=1, padding=1, count_include_pad=False
    )  # spread over neighbouring cells and tones
    # Slice: every pixel reads the grid at its own (x, y, tone), trilinear (align_corners: cell centres).
    gx = ((torch.arange(w, device=luma.device, dtype=torch.float32) + 0.5) / cell - 0.5) / max(gw - 1, 1) * 2 - 1
    gy = ((torch.arange(h, device=luma.device, dtype=torch.float32) + 0.5) / cell - 0.5) / max(gh - 1, 1) * 2 - 1
    gz = luma[0, 0].clamp(0, 1) * 2 - 1  # (h, w)
    where = torch.stack((gx.view(1, w).expand(h, w), gy.view(h, 1).expand(h, w), gz), -1)[None, None]  # (1, 1, h, w, 3)
    sliced = F.grid_sample(grid, where, mode="bilinear", padding_mode="border", align_corners=True)[
        :, :, 0
    ]  # (1, 3, h, w)
    found = sliced[:, 2:]  # (1, 1, h, w): confident same-tone pixels nearby (a few make it count)
    near = sliced[:, :2] / found.clamp_min(1e-6)  # (1, 2, h, w)
    weight = found / (found + 0.5)
    return weight * near + (1 - weight) * fallback  # (1, 2, h, w)
