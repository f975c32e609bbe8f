"""Quality metrics: pure functions on `(N, 3, H, W)` RGB tensors in [0, 1].

Image metrics (PSNR, SSIM, colorfulness) judge colors against the truth; video metrics (warping
error, CDC) judge temporal consistency.
"""

from __future__ import annotations

import torch
from torch import Tensor

# ---------------------------------------------------------------------------------------------
# Video metrics: temporal consistency
# ---------------------------------------------------------------------------------------------


def warping_errors(frames: Tensor, flow: Tensor, flow_forward: Tensor) -> Tensor:
    """Warping error of each consecutive pair (Lai et al., "Learning Blind Video Temporal
    Consistency", ECCV 2018, eq. 8), given the flow of the *input* video.

    `frames (T, 3, H, W)` RGB in [0, 1] (the output video); `flow (T-1, 2, H, W)` backward flow
    frame t -> t-1 and `flow_forward (T-1, 2, H, W)` frame t-1 -> t, both from the input frames,
    for t = 1..T-1. Frame t-1 is warped to t; pixels that are occluded (forward-backward check),
    on motion boundaries (Ruder et al. 2016), or whose match falls outside the frame are masked;
    the error is the squared L2 norm of the RGB difference (summed over the three channels, as in
    the paper and its code) averaged over the unmasked pixels. Returns `(T-1,)`.
    """
    from remaster.stages.flow import fb_consistent, motion_boundaries, warp

    if frames.ndim != 4 or frames.shape[1] != 3:
        raise ValueError(f"warping_errors expects frames (T, 3, H, W), got {tuple(frames.shape)}")
    pairs = (frames.shape[0] - 1, 2, *frames.shape[-2:])
    if flow.shape != pairs or flow_forward.shape != pairs:
        raise ValueError(
            f"warping_errors expects flows of shape {pairs} for {frames.shape[0]} frames, "
            f"got {tuple(flow.shape)} and {tuple(flow_forward.shape)}"
        )
    frames = frames.float()
    warped, _ = warp(frames[:-1], flow)  # (T-1, 3, H, W) frame t-1 seen from frame t
    # fb_consistent is also False where the match leaves the frame.
    valid = fb_consistent(flow, flow_forward) & ~motion_boundaries(flow)  # (T-1, 1, H, W)
    valid = valid.double()
    squared = (frames[1:].double() - warped.double()).square().sum(1, keepdim=True)  # (T-1, 1, H, W)
    count = valid.flatten(1).sum(1)  # (T-1,)
    # Lai et al.'s code falls back to all pixels when every pixel is masked.
    masked = torch.where(
        count > 0, (squared * valid).flatten(1).sum(1) / count.clamp(min=1), squared.flatten(1).mean(1)
    )
    return masked.float()


def warping_error(frames: Tensor, input_luma: Tensor, flow_provider=None) -> float:
    """Mean warping error over consecutive pairs (see `warping_errors`), with the flow computed on
    `input_luma (T, 1, H, W)` in [0, 1] — the input video, not the output — by `flow_provider`
    (default: OpenCV DIS, medium preset). `frames (T, 3, H, W)` RGB in [0, 1]."""
    from remaster.stages.flow import DISFlow

    if input_luma.shape != (frames.shape[0], 1, *frames.shape[-2:]):
        raise ValueError(
            f"warping_error expects input luma {(frames.shape[0], 1, *frames.shape[-2:])} for frames "
            f"{tuple(frames.shape)}, got {tuple(input_luma.shape)}"
        )
    if frames.shape[0] < 2:
        raise ValueError(f"warping_error needs at least 2 frames, got {frames.shape[0]}")
    provider = flow_provider or DISFlow("medium")
    backward = provider(input_luma[1:], input_luma[:-1])  # (T-1, 2, H, W)
    forward = provider(input_luma[:-1], input_luma[1:])  # (T-1, 2, H, W)
    return warping_errors(frames, backward.to(frames.device), forward.to(frames.device)).mean().item()


def color_histograms(frames: Tensor) -> Tensor:
    """Per-channel 256-bin histograms of 8-bit code values, normalised to sum 1:
    `(T, C, H, W)` in [0, 1] -> `(T, C, 256)` float64."""
    codes = (frames.detach().double().clamp(0, 1) * 255).round().long().flatten(2)  # (T, C, HW)
    counts = torch.zeros(*codes.shape[:2], 256, dtype=torch.float64, device=codes.device)
    counts.scatter_add_(2, codes, torch.ones_like(codes, dtype=torch.float64))
    return counts / codes.shape[-1]  # (T, C, 256)


def js_divergence(p: Tensor, q: Tensor) -> Tensor:
    """Jensen-Shannon divergence (natural log, as scipy.stats.entropy) over the last axis of two
    probability vectors; 0 for identical distributions, at most ln 2."""
    m = 0.5 * (p + q)

    def kl(a: Tensor) -> Tensor:
        return torch.where(a > 0, a * torch.log(a / m.clamp(min=1e-300)), torch.zeros_like(a)).sum(-1)

    return 0.5 * kl(p) + 0.5 * kl(q)


def cdc_from_histograms(histograms: Tensor, distances: tuple[int, ...] = (1, 2, 4)) -> float:
    """CDC from `color_histograms` output `(T, C, 256)`: for each frame distance d the JS
    divergence between frames t and t+d, averaged over channels and over t; then averaged over
    the distances (equal weights). Distances longer than the video are skipped."""
    scores = []
    for d in distances:
        if histograms.shape[0] > d:
            scores.append(js_divergence(histograms[:-d], histograms[d:]).mean().item())
    if not scores:
        raise ValueError(f"cdc needs at least {min(distances) + 1} frames, got {histograms.shape[0]}")
    return float(sum(scores) / len(scores))


def cdc(frames: Tensor, distances: tuple[int, ...] = (1, 2, 4)) -> float:
    """Color distribution consistency (Liu et al., "Temporally Consistent Video Colorization with
    Deep Feature Propagation and Self-regularization Learning", 2021): Jensen-Shannon divergence
    of 256-bin per-channel histograms at frame distances 1, 2 and 4, averaged. Lower is steadier;
    identical frames give 0. `frames (T, 3, H, W)` RGB in [0, 1]."""
    return cdc_from_histograms(color_histograms(frames), distances)
