"""The restoration filters as pure tensor functions (the streaming around them is restore.py).

Every function takes luma `(N, 1, H, W)` float32 Y' in [0, 1] (full range) on any device and
returns tensors of the same kind. Flow follows flow.py's convention: `(N, 2, H, W)` in pixels,
backward (`current ≈ warp(other, flow)`).

- deflicker: each frame's mean and spread are moved to the *median* of its neighbours' within a
  temporal window. A running median keeps steps (a light switched on) and ramps (a fade, a pan
  into a window) exactly and removes the one-frame jitter of a flickering gate or an unsteady
  lamp (the reasoning of FFmpeg's `deflicker` filter, which uses a mean, and of Delon's
  "Movie and video scale-time equalization", which uses the window's midway histogram).
- despot: a pixel is a speck when it differs, in the same direction, from both motion-
  compensated neighbours while those two agree (DeSpot / RemoveDirt's test); it is replaced by
  their mean. Motion boundaries are left alone (the flow is wrong there).
- denoise: motion-compensated temporal averaging over a few frames, each neighbour weighted by
  how well it fits the current frame after warping (an occluded or mismatched neighbour gets no
  weight), so grain is averaged down along the motion and nothing is smeared across it.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from remaster.stages.flow import motion_boundaries, resize_flow, warp

# A frame whose spread (std of its 4x-reduced picture) is below this is nearly flat (black
# between shots, the bottom of a fade): its gain is left at 1, only its level is corrected.
FLAT = 0.02
# Deflicker never scales a frame's contrast by more than this factor either way: a larger step
# is not flicker, and a median of so few frames could otherwise blow noise up.
MAX_GAIN = 1.5
# A motion boundary, for the speck test, is where the flow changes by more than about half a
# pixel per pixel (|∇u|² + |∇v|² > 0.2 at the flow's size). Flow's own noise on flat, grainy
# film stays below it; flow.motion_boundaries' default (0.002) marked most of a grainy frame and
# left two thirds of the specks in place (book.mkv, benchmark damage).
BOUNDARY = 0.2


def frame_stats(luma: Tensor) -> Tensor:
    """`(N, 1, H, W)` -> `(N, 2)` (mean, std) of the 4x-reduced picture: grain and specks
    averaged down, so the numbers follow the exposure and not the damage."""
    small = F.avg_pool2d(luma, 4, ceil_mode=True) if min(luma.shape[-2:]) >= 8 else luma  # (N, 1, H/4, W/4)
    flat = small.flatten(1)  # (N, P)
    return torch.stack([flat.mean(1), flat.std(1)], dim=1)  # (N, 2)


def deflicker_params(stats: Tensor, reference: Tensor) -> tuple[Tensor, Tensor]:
    """Gain and offset `(N,)` each that move frames with `stats (N, 2)` to `reference (N, 2)`:
    `y' = gain * y + offset` maps mean and std onto the reference's."""
    mean, std = stats[:, 0], stats[:, 1]
    ref_mean, ref_std = reference[:, 0], reference[:, 1]
    gain = (ref_std / std.clamp(min=1e-6)).clamp(1 / MAX_GAIN, MAX_GAIN)
    gain = torch.where((std < FLAT) | (ref_std < FLAT), torch.ones_like(gain), gain)  # (N,)
    return gain, ref_mean - gain * mean  # (N,), (N,)


def window_reference(stats: Tensor) -> Tensor:
    """The robust reference of a window of frames: the per-statistic median `(W, 2) -> (2,)`."""
    return stats.median(dim=0).values  # lower median for even counts: windows here are odd


def apply_tone(luma: Tensor, gain: Tensor, offset: Tensor) -> Tensor:
    """`(N, 1, H, W)` with per-frame `gain, offset (N,)` -> `(N, 1, H, W)` clipped to [0, 1]."""
    return (luma * gain.view(-1, 1, 1, 1) + offset.view(-1, 1, 1, 1)).clamp(0.0, 1.0)


def to_size(flow: Tensor, size) -> Tensor:
    """A flow field at the picture's size `(h, w)` (vectors rescaled): `(N, 2, h, w)`."""
    return resize_flow(flow, tuple(size))


# -- warping and 3x3 neighbourhoods at the picture's size ----------------------------------------
# On the CPU these go through OpenCV (remap, blur, dilate on views of the same memory): at 640x480
# they take 5.7, 0.6 and well under 1 ms a frame against 31, 10 and 5 for torch's grid_sample and
# pooling on one core (grid_sample builds a full-size sampling grid first). On a GPU, torch.


@functools.lru_cache(maxsize=4)
def _grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)  # (H, W) each; read only
    return ys, xs


def moved(image: Tensor, flow: Tensor) -> tuple[Tensor, Tensor]:
    """`image (N, 1, H, W)` warped along the backward `flow (N, 2, h, w)` (any size: scaled to
    the picture's, pixel centres on pixel centres): `(moved (N, 1, H, W), inside (N, 1, H, W) bool)`."""
    n, _, height, width = image.shape
    if image.device.type != "cpu":
        return warp(image, to_size(flow, (height, width)))
    import cv2

    h, w = flow.shape[-2:]
    scale = np.array([width / w, height / h], np.float32)  # flow vectors in the picture's pixels
    ys, xs = _grid(height, width)
    out = torch.empty_like(image)
    inside = torch.empty(image.shape, dtype=torch.bool)
    for i in range(n):
        f = flow[i].permute(1, 2, 0).contiguous().numpy()  # (h, w, 2)
        if (h, w) != (height, width):
            # Half-pixel geometry (OpenCV's); the GPU path's align-corners one differs by under a
            # pixel of where a smooth field is read, not in the vectors.
            f = cv2.resize(f, (width, height), interpolation=cv2.INTER_LINEAR) * scale
        map_x, map_y = xs + f[..., 0], ys + f[..., 1]
        out[i, 0] = torch.from_numpy(
            cv2.remap(image[i, 0].contiguous().numpy(), map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        )
        inside[i, 0] = torch.from_numpy((map_x >= 0) & (map_x <= width - 1) & (map_y >= 0) & (map_y <= height - 1))
    return out, inside


def box3(image: Tensor) -> Tensor:
    """3x3 mean with the border replicated: `(N, 1, H, W)` -> `(N, 1, H, W)`."""
    if image.device.type != "cpu":
        return F.avg_pool2d(F.pad(image, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    import cv2

    out = torch.empty_like(image)
    for i in range(image.shape[0]):
        out[i, 0] = torch.from_numpy(
            cv2.blur(image[i, 0].contiguous().numpy(), (3, 3), borderType=cv2.BORDER_REPLICATE)
        )
    return out


def dilate3(mask: Tensor) -> Tensor:
    """3x3 dilation of a bool mask `(N, 1, H, W)`."""
    if mask.device.type != "cpu":
        return F.max_pool2d(mask.float(), 3, stride=1, padding=1) > 0
    import cv2

    out = torch.empty_like(mask)
    kernel = np.ones((3, 3), np.uint8)
    for i in range(mask.shape[0]):
        out[i, 0] = torch.from_numpy(cv2.dilate(mask[i, 0].contiguous().numpy().view(np.uint8), kernel) > 0)
    return out


def compose(first: Tensor, second: Tensor) -> Tensor:
    """Chain two backward flows: `first` t -> s and `second` s -> u give t -> u:
    `first(x) + second(x + first(x))`. `(N, 2, H, W)` each."""
    moved, _ = warp(second, first)  # (N, 2, H, W)
    return first + moved


def _near_boundary(flow: Tensor, size) -> Tensor:
    """Pixels at or next to a motion boundary of `flow (N, 2, h, w)` (found at the flow's own,
    smaller size), at the picture's `size`: `(N, 1, H, W)` bool."""
    edges = motion_boundaries(flow, beta=BOUNDARY).float()  # (N, 1, h, w)
    near = F.max_pool2d(edges, 3, stride=1, padding=1)  # (N, 1, h, w)
    return F.interpolate(near, size=tuple(size), mode="nearest") > 0  # (N, 1, H, W)


def despot(
    luma: Tensor,
    before: Tensor,
    after: Tensor,
    to_before: Tensor,
    to_after: Tensor,
    *,
    threshold: float = 0.1,
    agree: float = 0.05,
) -> tuple[Tensor, Tensor]:
    """Remove one-frame specks.

    `luma, before, after (N, 1, H, W)`: frames t, t-1, t+1; `to_before, to_after (N, 2, h, w)`:
    backward flows t -> t-1 and t -> t+1 at the flow's size (any; scaled here). A pixel is a speck when it is more
    than `threshold` brighter (or darker) than *both* moved neighbours while they agree within
    `agree`; its 3x3 surround is taken too where it leans the same way by a third of that (a
    speck's soft rim). Returns `(cleaned (N, 1, H, W), speck mask (N, 1, H, W) bool)`.
    """
    size = luma.shape[-2:]
    prev, inside_p = moved(before, to_before)  # (N, 1, H, W)
    nxt, inside_n = moved(after, to_after)  # (N, 1, H, W)
    dp, dn = luma - prev, luma - nxt  # (N, 1, H, W)
    same_side = (dp * dn) > 0
    gap = torch.minimum(dp.abs(), dn.abs())  # (N, 1, H, W) how far it stands out from both
    trusted = inside_p & inside_n & ((prev - nxt).abs() < agree)  # the neighbours tell one story
    trusted &= ~(_near_boundary(to_before, size) | _near_boundary(to_after, size))  # moving edges: flow is unsure there
    core = same_side & (gap > threshold) & trusted
    rim = dilate3(core)
    mask = core | (rim & same_side & (gap > threshold / 3) & trusted)  # (N, 1, H, W)
    cleaned = torch.where(mask, 0.5 * (prev + nxt), luma)  # (N, 1, H, W)
    return cleaned, mask


def denoise(
    luma: Tensor, neighbours: list[Tensor], flows: list[Tensor], *, strength: float = 1.0, tolerance: float = 0.03
) -> Tensor:
    """Motion-compensated temporal filter of frames `luma (N, 1, H, W)` with `neighbours` (each
    `(N, 1, H, W)`, frames t+k for a few k) and `flows` (each `(N, 2, h, w)` at any size, t -> t+k).

    Each moved neighbour is weighted by `exp(-(d / tolerance)²)` where `d` is its difference to
    the current frame averaged over 3x3 (grain averages down, a wrong match does not) and by
    whether its flow stays inside the picture; the current frame weighs 1. `strength` in [0, 1]
    blends the filtered frame with the input: grain is softened, never replaced by a new picture.
    """
    total = luma.clone()  # (N, 1, H, W)
    weight = torch.ones_like(luma)  # (N, 1, H, W)
    for other, flow in zip(neighbours, flows):
        there, inside = moved(other, flow)  # (N, 1, H, W)
        d = box3(there - luma)  # (N, 1, H, W)
        w = torch.exp(d * d * (-1.0 / tolerance**2)) * inside  # (N, 1, H, W)
        total += w * there
        weight += w
    filtered = total / weight  # (N, 1, H, W)
    return luma + strength * (filtered - luma)
