"""Color math: pure, batched, device-agnostic torch functions.

Conventions (one place, so no caller has to guess):
- images are `(N, 3, H, W)` or `(3, H, W)` float tensors; channel axis is -3;
- RGB is gamma-encoded sRGB in [0, 1];
- Y'CbCr is "normalized code values": what `uint8 / 255` gives. Full range: Y' in [0, 1] and
  Cb, Cr in [0, 1] centred on 0.5. Limited ("TV") range: Y' in [16, 235]/255, Cb, Cr in
  [16, 240]/255 centred on 128/255;
- chroma *offsets* (what the network's stages exchange) are signed full-range (Cb, Cr) - 0.5,
  in [-0.5, 0.5], 0 meaning neutral gray;
- CIELAB uses the D65 white point (as OpenCV and skimage do): L in [0, 100], a and b roughly
  in [-110, 110].

Matrices follow ITU-R BT.601 and BT.709 (Kr, Kb below); OpenCV's `COLOR_RGB2YCrCb` is full-range
BT.601 and its float `COLOR_RGB2Lab` is sRGB/D65, which the tests check us against.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from remaster.errors import ConfigError

# Luma coefficients (Kr, Kb); Kg = 1 - Kr - Kb.
LUMA_COEFFICIENTS = {"bt601": (0.299, 0.114), "bt709": (0.2126, 0.0722)}

# D65 reference white in XYZ, normalised to Y = 1.
_D65 = (0.950456, 1.0, 1.088754)
_RGB_TO_XYZ = (
    (0.412453, 0.357580, 0.180423),
    (0.212671, 0.715160, 0.072169),
    (0.019334, 0.119193, 0.950227),
)
_XYZ_TO_RGB = tuple(map(tuple, np.linalg.inv(np.array(_RGB_TO_XYZ)).tolist()))
_LAB_EPSILON = (6.0 / 29.0) ** 3
_LAB_KAPPA = (29.0 / 6.0) ** 2 / 3.0  # slope of the linear part of f(t)


def _coefficients(matrix: str) -> tuple[float, float, float]:
    try:
        kr, kb = LUMA_COEFFICIENTS[matrix]
    except KeyError:
        raise ConfigError(f"unknown color matrix {matrix!r}: expected one of {sorted(LUMA_COEFFICIENTS)}") from None
    return kr, 1.0 - kr - kb, kb


def _channels(image: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    if image.ndim < 3 or image.shape[-3] != 3:
        raise ValueError(f"expected a (..., 3, H, W) image, got shape {tuple(image.shape)}")
    return image.unbind(-3)


def rgb_to_luma(rgb: Tensor, matrix: str = "bt601") -> Tensor:
    """Full-range Y' of gamma-encoded RGB: `(..., 3, H, W) -> (..., 1, H, W)`."""
    kr, kg, kb = _coefficients(matrix)
    r, g, b = _channels(rgb)
    return (kr * r + kg * g + kb * b).unsqueeze(-3)


def rgb_to_chroma(rgb: Tensor, matrix: str = "bt601") -> Tensor:
    """Signed full-range chroma offsets (Cb, Cr) of RGB: `(..., 3, H, W) -> (..., 2, H, W)`."""
    kr, _, kb = _coefficients(matrix)
    r, _, b = _channels(rgb)
    y = rgb_to_luma(rgb, matrix).squeeze(-3)
    cb = (b - y) / (2.0 * (1.0 - kb))
    cr = (r - y) / (2.0 * (1.0 - kr))
    return torch.stack((cb, cr), dim=-3)


def luma_chroma_to_rgb(luma: Tensor, chroma: Tensor, matrix: str = "bt601") -> Tensor:
    """Inverse of (rgb_to_luma, rgb_to_chroma): `(...,1,H,W), (...,2,H,W) -> (...,3,H,W)`, unclipped."""
    kr, kg, kb = _coefficients(matrix)
    y = luma.squeeze(-3)
    cb, cr = chroma.unbind(-3)
    r = y + 2.0 * (1.0 - kr) * cr
    b = y + 2.0 * (1.0 - kb) * cb
    g = (y - kr * r - kb * b) / kg
    return torch.stack((r, g, b), dim=-3)


def rgb_to_ycbcr(rgb: Tensor, matrix: str = "bt601", full_range: bool = True) -> Tensor:
    """Gamma-encoded RGB in [0, 1] to Y'CbCr normalized code values (see module docstring)."""
    y = rgb_to_luma(rgb, matrix)
    c = rgb_to_chroma(rgb, matrix)
    if full_range:
        return torch.cat((y, c + 0.5), dim=-3)
    return torch.cat((16.0 / 255 + y * (219.0 / 255), 128.0 / 255 + c * (224.0 / 255)), dim=-3)


def srgb_to_linear(rgb: Tensor) -> Tensor:
    """Undo the sRGB transfer curve (IEC 61966-2-1)."""
    return torch.where(rgb > 0.04045, ((rgb.clamp(min=0.04045) + 0.055) / 1.055) ** 2.4, rgb / 12.92)


def linear_to_srgb(rgb: Tensor) -> Tensor:
    """Apply the sRGB transfer curve (IEC 61966-2-1)."""
    return torch.where(rgb > 0.0031308, 1.055 * rgb.clamp(min=0.0031308) ** (1.0 / 2.4) - 0.055, rgb * 12.92)


def _matmul3(m: tuple, x: Tensor) -> Tensor:
    x0, x1, x2 = x.unbind(-3)
    return torch.stack([row[0] * x0 + row[1] * x1 + row[2] * x2 for row in m], dim=-3)


def _lab_f(t: Tensor) -> Tensor:
    return torch.where(t > _LAB_EPSILON, t.clamp(min=_LAB_EPSILON) ** (1.0 / 3.0), _LAB_KAPPA * t + 4.0 / 29.0)


def _lab_f_inverse(t: Tensor) -> Tensor:
    return torch.where(t > 6.0 / 29.0, t**3, (t - 4.0 / 29.0) / _LAB_KAPPA)


def rgb_to_lab(rgb: Tensor) -> Tensor:
    """Gamma-encoded sRGB in [0, 1] to CIELAB (D65): `(..., 3, H, W) -> (..., 3, H, W)`."""
    xyz = _matmul3(_RGB_TO_XYZ, srgb_to_linear(rgb))
    x, y, z = xyz.unbind(-3)
    fx, fy, fz = _lab_f(x / _D65[0]), _lab_f(y / _D65[1]), _lab_f(z / _D65[2])
    return torch.stack((116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)), dim=-3)


def lab_to_rgb(lab: Tensor, clip: bool = True) -> Tensor:
    """CIELAB (D65) to gamma-encoded sRGB, clipped to [0, 1] unless `clip=False`."""
    lightness, a, b = lab.unbind(-3)
    fy = (lightness + 16.0) / 116.0
    xyz = torch.stack(
        (
            _D65[0] * _lab_f_inverse(fy + a / 500.0),
            _D65[1] * _lab_f_inverse(fy),
            _D65[2] * _lab_f_inverse(fy - b / 200.0),
        ),
        dim=-3,
    )
    linear = _matmul3(_XYZ_TO_RGB, xyz)
    if clip:
        linear = linear.clamp(0.0, 1.0)
    return linear_to_srgb(linear)


def luma_to_lightness(luma: Tensor) -> Tensor:
    """CIELAB L of the gray whose R' = G' = B' = Y': what the network sees as input.

    Training and inference both derive the network's input this way from Y' (never from the
    photo's true L), so a grayscale film frame and a training photo look alike to the net.
    """
    return 116.0 * _lab_f(srgb_to_linear(luma.clamp(0.0, 1.0))) - 16.0


def lab_to_chroma(lightness: Tensor, ab: Tensor, matrix: str = "bt601") -> Tensor:
    """Chroma offsets (Cb, Cr) of the color with CIELAB (L, a, b): `(...,1,H,W), (...,2,H,W) -> (...,2,H,W)`."""
    return rgb_to_chroma(lab_to_rgb(torch.cat((lightness, ab), dim=-3)), matrix)


def fit_chroma_to_gamut(luma: Tensor, chroma: Tensor, matrix: str = "bt601") -> Tensor:
    """Scale chroma offsets per pixel so that Y' + chroma stays inside RGB [0, 1].

    Y' is kept exactly: for a fixed Y', RGB = Y' + M @ chroma is linear in chroma, so shrinking the
    chroma vector towards gray by the largest factor t in [0, 1] that keeps every channel in range
    never changes luma, whereas clipping RGB afterwards would. `luma` is `(..., 1, H, W)` at the
    chroma's resolution.
    """
    return chroma * gamut_scale(luma, chroma, matrix).unsqueeze(-3)


def gamut_scale(luma: Tensor, chroma: Tensor, matrix: str = "bt601") -> Tensor:
    """The factor in [0, 1] of `fit_chroma_to_gamut`, `(..., H, W)`: 1 / max(1, worst overshoot).

    Each RGB channel moves from gray by d = (linear in Cb, Cr); it overshoots by d / (1 - Y') when
    it rises and by -d / Y' when it falls, and the larger of the two is the one that counts (the
    other is negative). Written as few whole-tensor passes, in place where the tensors are ours:
    at 4K this runs per 2 M-pixel plane on every frame (issue 11: the assemble stage was slower
    than the encoder), and each pass of a memory-bound op costs about as much as the arithmetic.
    """
    kr, kg, kb = _coefficients(matrix)
    cb, cr = chroma.unbind(-3)
    y = luma.squeeze(-3)
    tiny = 1e-6  # a channel at the edge of the range (Y' = 0 or 1) and a gray pixel: no overshoot
    up = (1.0 - y).clamp_(min=tiny).reciprocal_()  # 1 / room above
    down = y.clamp(min=tiny).reciprocal_().neg_()  # -1 / room below
    # Channel deltas from gray (rows of the inverse matrix), each with a positive factor taken out:
    # red = 2 (1 - kr) Cr, blue = 2 (1 - kb) Cb, green = -(kr red + kb blue) / kg.
    worst = None
    for d, factor in ((cr, 2.0 * (1.0 - kr)), (cb, 2.0 * (1.0 - kb))):
        over = torch.maximum(d * up, d * down).mul_(factor)
        worst = over if worst is None else torch.maximum(worst, over, out=worst)
    green = cr * (-(kr * 2.0 * (1.0 - kr)) / kg)
    green.add_(cb, alpha=-(kb * 2.0 * (1.0 - kb)) / kg)
    worst = torch.maximum(worst, torch.maximum(green * up, green.mul_(down)), out=worst)
    return worst.clamp_(min=1.0).reciprocal_()  # (..., H, W)


def chroma_to_ab(luma: Tensor, chroma: Tensor, matrix: str = "bt601") -> Tensor:
    """CIELAB (a, b) of full-range Y' `(N, 1, H, W)` with chroma offsets `(N, 2, H, W)`."""
    rgb = luma_chroma_to_rgb(luma, chroma, matrix).clamp(0.0, 1.0)  # (N, 3, H, W)
    return rgb_to_lab(rgb)[:, 1:]  # (N, 2, H, W)
