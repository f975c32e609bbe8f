"""Quality metrics: pure functions on `(N, 3, H, W)` RGB tensors in [0, 1].

Image metrics (PSNR, SSIM, colorfulness) judge colors against the truth; video metrics (warping
error, CDC) judge temporal consistency.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def psnr(image: Tensor, reference: Tensor, max_value: float = 1.0) -> Tensor:
    """Peak signal-to-noise ratio in dB per image: `(N, C, H, W) x2 -> (N,)`."""
    mse = ((image.double() - reference.double()) ** 2).flatten(1).mean(1)
    return (10.0 * torch.log10(max_value**2 / mse.clamp(min=1e-20))).float()


def _gaussian_taps(size: int, sigma: float, device, dtype) -> Tensor:
    coords = torch.arange(size, dtype=dtype, device=device) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    return g / g.sum()  # (k,)


def ssim(image: Tensor, reference: Tensor, max_value: float = 1.0) -> Tensor:
    """Structural similarity per image (Wang et al. 2004): Gaussian window sigma 1.5 (11 taps),
    K1 = 0.01, K2 = 0.03, computed per channel over the valid region and averaged — the
    definition of skimage's `structural_similarity(..., gaussian_weights=True,
    use_sample_covariance=False)`. `(N, C, H, W) x2 -> (N,)`.

    The Gaussian is applied as two 1-D passes (it is separable) to the five moment maps in one
    batch, in float32: PyTorch's CPU float64 convolution is a slow fallback (~1 s per 640x480 RGB
    pair), and float32's ~1e-7 error in E[x²] - mu² is four orders below K2² = 9e-4 (agrees with
    skimage's float64 to ~1e-6).
    """
    if image.shape != reference.shape or image.ndim != 4:
        raise ValueError(
            f"ssim expects two (N, C, H, W) tensors of one shape, got {tuple(image.shape)} and {tuple(reference.shape)}"
        )
    x, y = image.float(), reference.float()
    n, c, h, w = x.shape
    if min(h, w) < 11:
        raise ValueError(f"ssim needs images of at least 11x11 pixels (its Gaussian window), got {w}x{h}")
    taps = _gaussian_taps(11, 1.5, x.device, x.dtype)
    moments = torch.stack([x, y, x * x, y * y, x * y], dim=1).reshape(n * 5 * c, 1, h, w)  # (5NC, 1, H, W)
    blurred = F.conv2d(moments, taps.view(1, 1, 1, 11))  # (5NC, 1, H, W-10) valid region only
    blurred = F.conv2d(blurred, taps.view(1, 1, 11, 1))  # (5NC, 1, H-10, W-10)
    mu_x, mu_y, xx, yy, xy = blurred.reshape(n, 5, c, h - 10, w - 10).unbind(1)  # (N, C, H-10, W-10) each
    var_x = xx - mu_x**2
    var_y = yy - mu_y**2
    cov = xy - mu_x * mu_y
    c1, c2 = (0.01 * max_value) ** 2, (0.03 * max_value) ** 2
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return ssim_map.double().flatten(1).mean(1).float()


def colorfulness(image: Tensor) -> Tensor:
    """Hasler & Süsstrunk (2003) colorfulness M3 per image, in 0..255 RGB units: `(N,3,H,W) -> (N,)`.

    Uses the paper's signed opponent channels rg = R - G and yb = (R + G)/2 - B (not the
    absolute-value variant found in some blog code, which inflates the mean term):
    M = sqrt(std_rg² + std_yb²) + 0.3 · sqrt(mean_rg² + mean_yb²).
    """
    rgb = image.double() * 255.0
    r, g, b = rgb.unbind(1)
    rg = (r - g).flatten(1)
    yb = (0.5 * (r + g) - b).flatten(1)
    spread = torch.sqrt(rg.var(1, unbiased=False) + yb.var(1, unbiased=False))
    centre = torch.sqrt(rg.mean(1) ** 2 + yb.mean(1) ** 2)
    return (spread + 0.3 * centre).float()


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
    from .flow import fb_consistent, motion_boundaries, warp

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
    from .flow import DISFlow

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
