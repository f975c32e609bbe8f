"""Clicks that stay in their object (issue 21, item 3): an edge-aware step on the hint network's output.

The hint network spreads a click's color over its neighbourhood, objects or not: `remaster demo`'s
astronaut clicked orange on the suit came out with an orange face. The step keeps the network's
automatic colors and lets the hint-induced change (steered chroma minus automatic chroma) through
only where the luma says it belongs to a clicked object:

- `geodesic_distance`: from the clicked pixels, the cheapest path's cost over the luma, where a
  step costs a little for the distance and much for every luma edge it crosses (Criminisi et al.'s
  geodesic distance, computed with 1-D running minima along rows and columns, a few rounds);
- `guided_filter`: He et al.'s guided filter (box filters only), which makes the attenuated change
  follow the luma's edges to the pixel instead of the distance's blocky fronts.

`edge_aware_step` puts them together at the network's working size (about 55 ms at 256 x 256 on
one CPU thread; the caller adds a hint-free network pass for the automatic chroma). It trades
spread for locality: benchmarks/RESULTS.md, "Clicks that stay in their object". Dense hints (a
reference taken as hints) leave no pixel far from a hint, so they pass unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class EdgeAware:
    # Cost of one pixel step at the working size, and of a luma jump of 1.0 (full range) across it
    # beyond `floor` (shading and texture jump less than an object's outline).
    spatial: float = 0.02
    edge: float = 40.0
    floor: float = 0.03
    # The change is kept as exp(-distance / reach).
    reach: float = 4.0
    # Guided filter over the kept change: radius (working pixels) and regularisation (luma^2 units).
    radius: int = 4
    eps: float = 1e-3
    rounds: int = 4


def box_filter(image: Tensor, radius: int) -> Tensor:
    """The mean over a `(2r+1)^2` window clipped to the image, for `(N, C, H, W)`: running sums
    along rows, then columns, so its cost does not grow with the radius."""
    if radius <= 0:
        return image
    out = image.double()
    for dim in (-2, -1):
        size = out.shape[dim]
        sums = torch.nn.functional.pad(out.cumsum(dim), (1, 0) if dim == -1 else (0, 0, 1, 0))  # S[0] = 0
        index = torch.arange(size, device=image.device)
        low, high = (index - radius).clamp(min=0), (index + radius + 1).clamp(max=size)
        count = (high - low).double().reshape(-1, 1) if dim == -2 else (high - low).double()
        out = (sums.index_select(dim, high) - sums.index_select(dim, low)) / count
    return out.to(image.dtype)


def guided_filter(guide: Tensor, source: Tensor, radius: int, eps: float) -> Tensor:
    """He et al.'s guided filter: `source` `(N, C, H, W)` smoothed where the gray `guide`
    `(N, 1, H, W)` is flat, its edges kept where the guide has edges."""
    mean_i = box_filter(guide, radius)
    mean_p = box_filter(source, radius)
    var_i = box_filter(guide * guide, radius) - mean_i * mean_i
    cov_ip = box_filter(guide * source, radius) - mean_i * mean_p
    a = cov_ip / (var_i + eps)
    b = mean_p - a * mean_i
    return box_filter(a, radius) * guide + box_filter(b, radius)


def _running_min(distance: Tensor, step: Tensor, dim: int) -> Tensor:
    """One exact 1-D pass each way along `dim`: d[j] = min_k d[k] + cost(k..j), with `step` the
    cost between neighbours (one shorter along `dim`): min_k (d[k] - C[k]) + C[j] over the cumulative cost."""
    cost = torch.nn.functional.pad(step, (1, 0) if dim == -1 else (0, 0, 1, 0)).cumsum(dim)  # C[0] = 0
    forward = torch.cummin(distance - cost, dim).values + cost
    backward = torch.cummin((distance + cost).flip(dim), dim).values.flip(dim) - cost
    return torch.minimum(distance, torch.minimum(forward, backward))


def geodesic_distance(
    luma: Tensor, seeds: Tensor, spatial: float, edge: float, rounds: int = 4, floor: float = 0.0
) -> Tensor:
    """Distance `(N, 1, H, W)` from the `seeds` (bool, `(N, 1, H, W)`) over the gray `luma`:
    a step between neighbours costs `spatial + edge * max(0, |luma jump| - floor)`. Rows and columns alternate
    `rounds` times, so paths with up to about 2 * rounds turns are exact (4-connected)."""
    distance = torch.where(seeds, 0.0, torch.inf).to(luma.dtype)
    across = spatial + edge * ((luma[..., :, 1:] - luma[..., :, :-1]).abs() - floor).clamp(min=0)  # (N, 1, H, W-1)
    down = spatial + edge * ((luma[..., 1:, :] - luma[..., :-1, :]).abs() - floor).clamp(min=0)  # (N, 1, H-1, W)
    for _ in range(rounds):
        distance = _running_min(distance, across, -1)
        distance = _running_min(distance, down, -2)
    return distance


def edge_aware_step(luma: Tensor, automatic: Tensor, steered: Tensor, hints: Tensor, params=EdgeAware()) -> Tensor:
    """Chroma `(N, 2, h, w)`: the automatic chroma plus the hint-induced change, kept by the
    geodesic distance from the hinted pixels over `luma` `(N, 1, h, w)` and guided by it.
    All at the working size; `hints` is the hint map (its confidence marks the hinted pixels)."""
    seeds = hints[:, 2:3] > 0
    if not bool(seeds.any()):
        return steered
    luma = luma.float()
    change = steered - automatic
    if params.reach > 0:
        distance = geodesic_distance(luma, seeds, params.spatial, params.edge, params.rounds, params.floor)
        keep = torch.exp(-distance / params.reach)
        change = change * torch.where(keep < 1e-6, 0.0, keep)  # no denormals: they slow the filter 20-fold
    if params.radius > 0:
        change = guided_filter(luma, change, params.radius, params.eps)
    return automatic + change


__all__ = ["EdgeAware", "box_filter", "guided_filter", "geodesic_distance", "edge_aware_step"]
