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


def _gaussian_window(size: int, sigma: float, channels: int, device, dtype) -> Tensor:
    coords = torch.arange(size, dtype=dtype, device=device) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).expand(channels, 1, size, size).contiguous()  # (C, 1, k, k)


def ssim(image: Tensor, reference: Tensor, max_value: float = 1.0) -> Tensor:
    """Structural similarity per image (Wang et al. 2004): Gaussian window sigma 1.5 (11 taps),
    K1 = 0.01, K2 = 0.03, computed per channel over the valid region and averaged — the
    definition of skimage's `structural_similarity(..., gaussian_weights=True,
    use_sample_covariance=False)`. `(N, C, H, W) x2 -> (N,)`."""
    x, y = image.double(), reference.double()
    channels = x.shape[1]
    window = _gaussian_window(11, 1.5, channels, x.device, x.dtype)
    blur = lambda t: F.conv2d(t, window, groups=channels)  # noqa: E731  valid region only
    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x**2
    var_y = blur(y * y) - mu_y**2
    cov = blur(x * y) - mu_x * mu_y
    c1, c2 = (0.01 * max_value) ** 2, (0.03 * max_value) ** 2
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return ssim_map.flatten(1).mean(1).float()


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
