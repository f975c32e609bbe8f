"""The carry seen at the output's chroma size: a keyframe's colors where the carry put them, at full detail
where the carry is sure of its positions, and through a blur of their spread where it is not.

The carry follows the motion at the working size (stages/keyframes/carry.py); its positions are made
fine (`fine_positions`) and the keyframe is sampled at the output's chroma size (`FineKeyframes`),
so a still pixel gets the keyframe's own color at full resolution, not the working size's upsampled.
Each position's spread (carry.follow) says how far it may be off: the keyframe is seen through a
Gaussian of that variance (`seen`), so detail the carry cannot place fades instead of landing on the
wrong pixels.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from remaster.quality import gaussian_taps
from remaster.stages.flow import resize_flow
from remaster.stages.keyframes.carry import Carried, identity_positions, sample, upsampled


def fine_positions(positions: Tensor, size: tuple[int, int]) -> Tensor:
    """`positions (1, 3, h, w)` on a keyframe at the working size -> `(1, 3, H, W)` on it at `size`:
    the identity at `size` plus the carry's displacement resized as a flow is (align_corners), so a
    pixel the carry did not move samples the keyframe at exactly its own place at any size; the
    spread in the new size's px²."""
    h, w = positions.shape[-2:]
    if (h, w) == tuple(size):
        return positions
    moved = positions[:, :2] - identity_positions((h, w), positions.device)[:, :2]  # (1, 2, h, w)
    at = identity_positions(tuple(size), positions.device)[:, :2] + resize_flow(moved, tuple(size))  # (1, 2, H, W)
    spread = upsampled(positions[:, 2:], size) * (size[0] / h) * (size[1] / w)  # (1, 1, H, W)
    return torch.cat([at, spread], 1)


# The blurs a keyframe is seen through (Gaussian sigma, px at the size it is sampled): a spread
# between two of them takes the two in proportion (`seen`); beyond the last, the last.
SPREAD_SIGMAS = (0.0, 1.0, 2.0, 4.0)


def blurred(image: Tensor) -> list[Tensor]:
    """`image (1, C, H, W)` through each of `SPREAD_SIGMAS` (the first: itself), edges repeated."""
    levels = [image]
    for sigma in SPREAD_SIGMAS[1:]:
        radius = math.ceil(3 * sigma)
        kernel = gaussian_taps(2 * radius + 1, sigma, image.device, image.dtype)  # (2r+1,)
        flat = F.pad(image, (radius,) * 4, mode="replicate").flatten(0, 1)[:, None]  # (C, 1, H', W')
        flat = F.conv2d(F.conv2d(flat, kernel.view(1, 1, 1, -1)), kernel.view(1, 1, -1, 1))
        levels.append(flat.view(image.shape))
    return levels


def seen(levels: list[Tensor], positions: Tensor) -> Tensor:
    """The keyframe (`blurred(keyframe)`) sampled at `positions (1, 3, H, W)` through each pixel's
    spread: between the two blurs whose sigmas hold sqrt(spread), in proportion. `(1, C, H, W)`."""
    sigma = positions[:, 2:].clamp_min(0).sqrt()  # (1, 1, H, W)
    out = sample(levels[0], positions)
    if not bool((sigma > 0.05).any()):  # CPU-GPU sync point: a still, clean carry samples once
        return out
    for (low, high), level in zip(zip(SPREAD_SIGMAS, SPREAD_SIGMAS[1:]), levels[1:]):
        share = ((sigma - low) / (high - low)).clamp(0, 1)  # (1, 1, H, W)
        out = out + share * (sample(level, positions) - out)
    return out


class FineKeyframes:
    """`fine(frame, size) -> [(1, 2, H, W)]`: keyframe `frame`'s chroma at the output's chroma size,
    made from its finest copy (`chroma`: frame -> `(1, 2, H', W')`), and its blurs (`blurred`), a
    few kept at a time."""

    def __init__(self, chroma: dict, device):
        self.chroma, self.device = chroma, device
        self._at: dict[tuple[int, tuple[int, int]], list[Tensor]] = {}

    def __call__(self, frame: int, size: tuple[int, int]) -> list[Tensor]:
        if (frame, size) not in self._at:
            if len(self._at) >= 4:  # the keyframes carried now: at most one from each side
                self._at.pop(next(iter(self._at)))
            given = self.chroma[frame].to(self.device, torch.float32)
            if tuple(given.shape[-2:]) != tuple(size):
                given = F.interpolate(given, size=size, mode="bilinear", antialias=True, align_corners=False)
            self._at[(frame, size)] = blurred(given)
        return self._at[(frame, size)]


def fine_hint(forward: Carried | None, backward: Carried | None, keyframe_at, size: tuple[int, int]) -> Tensor | None:
    """The carried colors of `hint()` at `size` (the output's chroma planes), each carry's keyframe
    sampled there (`keyframe_at(key, size) -> blurred(...)`) at its positions made fine
    (`fine_positions`), through their spread (`seen`): a still pixel gets the keyframe's own color
    at the output's resolution, not the working size's color upsampled. Blended as `hint()` blends
    them. `(1, 2, H, W)`. (The hint's own chroma, at the working size, is sampled sharp: it steers
    the fill and the network, where the output's fine detail does not show.)"""
    carries = [c for c in (forward, backward) if c is not None]
    if not carries:
        return None
    colors = [seen(keyframe_at(c.key, size), fine_positions(c.positions, size)) for c in carries]
    if len(carries) == 1:
        return colors[0]
    near_f = backward.distance / (forward.distance + backward.distance)
    a, b = upsampled(forward.trust * near_f, size), upsampled(backward.trust * (1 - near_f), size)  # (1, 1, H, W)
    return (a * colors[0] + b * colors[1]) / (a + b).clamp_min(1e-6)  # (1, 2, H, W)
