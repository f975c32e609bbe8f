"""Training data: photographs read once, cached small, and cut into random crops on the device.

A folder of photographs is decoded by a pool of worker threads, resized so the short side is
`size` and centre-cropped to a square, and kept as one uint8 tensor `(N, 3, size, size)` — 1660
photos at 256 px are 330 MB, small enough for host or GPU memory. Every batch is then one
`affine_grid` + `grid_sample` call on that tensor (random position, scale jitter, flip), so the
GPU never waits on JPEG decoding and no per-step worker traffic is needed.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from remaster.color import rgb_to_lab
from remaster.errors import InputError
from remaster.net.network import AB_BIN_SIZE

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp", ".bmp"}


def list_images(folder: str | Path) -> list[Path]:
    """Every image file under `folder` (recursively), sorted so runs are reproducible."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: not a folder of images")
    paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not paths:
        raise InputError(f"{folder}: no images found (looked for {', '.join(sorted(IMAGE_SUFFIXES))})")
    return paths


def read_rgb(path: str | Path) -> np.ndarray:
    """An image file as 8-bit RGB `(H, W, 3)`; gray files are replicated to three channels."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise InputError(f"{path}: cannot be read as an image")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def square_thumbnail(image: np.ndarray, size: int) -> np.ndarray:
    """Resize so the short side is `size` (area filter), then centre-crop to `size x size`."""
    height, width = image.shape[:2]
    scale = size / min(height, width)
    new_h, new_w = max(size, round(height * scale)), max(size, round(width * scale))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    image = cv2.resize(image, (new_w, new_h), interpolation=interpolation)
    top, left = (new_h - size) // 2, (new_w - size) // 2
    return image[top : top + size, left : left + size]


def _load_square(job: tuple[str, int]) -> np.ndarray:
    path, size = job
    return square_thumbnail(read_rgb(path), size)


def build_cache(paths: list[Path], size: int = 256, workers: int | None = None) -> Tensor:
    """Decode and resize every photo once: `(N, 3, size, size)` uint8 RGB."""
    workers = workers or min(8, os.cpu_count() or 1)
    jobs = [(str(p), size) for p in paths]
    if workers > 1 and len(jobs) > 8:
        # Threads, not processes: OpenCV releases the GIL while decoding and resizing, and forking
        # a process that already runs torch's thread pools (or CUDA) can deadlock the children.
        with ThreadPoolExecutor(workers) as pool:
            squares = list(pool.map(_load_square, jobs))
    else:
        squares = [_load_square(job) for job in jobs]
    return torch.from_numpy(np.stack(squares)).permute(0, 3, 1, 2).contiguous()  # (N, 3, S, S)


def random_crops(
    cache: Tensor,
    batch_size: int,
    crop: int,
    *,
    scale_range: tuple[float, float] = (0.75, 1.5),
    generator: torch.Generator,
) -> Tensor:
    """A batch of random crops `(B, 3, crop, crop)` float RGB in [0, 1], on the cache's device.

    Each crop covers `crop * s` cache pixels (s log-uniform in `scale_range`, capped at the
    image) at a random position, is flipped left-right half the time, and is resampled to
    `crop x crop`. Random numbers come from `generator` (on the CPU) so a seeded run, and a
    resumed one, sees the same batches.
    """
    n, _, size, _ = cache.shape
    index = torch.randint(n, (batch_size,), generator=generator)
    log_lo, log_hi = math.log(scale_range[0]), math.log(scale_range[1])
    scale = torch.exp(torch.empty(batch_size).uniform_(log_lo, log_hi, generator=generator))
    fraction = (crop * scale / size).clamp(max=1.0)  # crop side as a fraction of the image
    shift = (torch.rand(batch_size, 2, generator=generator) * 2 - 1) * (1 - fraction)[:, None]
    flip = torch.where(torch.rand(batch_size, generator=generator) < 0.5, -1.0, 1.0)
    theta = torch.zeros(batch_size, 2, 3)
    theta[:, 0, 0] = fraction * flip
    theta[:, 1, 1] = fraction
    theta[:, :, 2] = shift
    images = cache[index.to(cache.device)].float() / 255.0  # (B, 3, S, S)
    grid = F.affine_grid(theta.to(cache.device), [batch_size, 3, crop, crop], align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)


def ab_grid_index(ab: Tensor) -> Tensor:
    """Nearest 10-unit grid point of each (a, b), as integer grid coordinates: `(..., 2)`."""
    return torch.round(ab / AB_BIN_SIZE).long()


def ab_gamut(
    cache: Tensor, *, sample_stride: int = 4, min_fraction: float = 1e-6, bins: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """The (a, b) bins the photos use and how often: `(K, 2)` bin centres and `(K,)` probabilities.

    Bins holding less than `min_fraction` of the pixels are dropped (JPEG noise at the gamut's
    edge); training then predicts over the colors that real photos have, as Zhang et al. do
    with their 313 in-gamut bins. Given `bins` (a model being trained further keeps its own
    table), the probabilities are those of exactly these bins (colors outside them are ignored).
    """
    reach = 16  # grid points per side of zero: |a|, |b| <= 160 covers every real color
    counts = torch.zeros((2 * reach + 1) ** 2, dtype=torch.float64)
    for start in range(0, len(cache), 64):
        rgb = cache[start : start + 64, :, ::sample_stride, ::sample_stride].float() / 255.0
        ab = rgb_to_lab(rgb)[:, 1:].permute(0, 2, 3, 1).reshape(-1, 2)  # (P, 2)
        grid = ab_grid_index(ab).clamp(-reach, reach) + reach  # (P, 2) in [0, 2*reach]
        counts += torch.bincount(grid[:, 0] * (2 * reach + 1) + grid[:, 1], minlength=counts.numel()).double()
    if bins is None:
        kept = torch.nonzero(counts >= min_fraction * counts.sum()).squeeze(1)  # (K,) flat grid indices
        keys = torch.stack((kept // (2 * reach + 1), kept % (2 * reach + 1)), dim=1) - reach  # (K, 2)
        bins = keys.float() * AB_BIN_SIZE  # (K, 2)
    else:
        keys = ab_grid_index(bins.float()) + reach  # (K, 2)
        kept = keys[:, 0] * (2 * reach + 1) + keys[:, 1]
    prior = counts[kept] + 1.0  # +1: a bin no photo uses keeps a finite rebalancing weight
    return bins, (prior / prior.sum()).float()


def rebalancing_weights(bins: Tensor, prior: Tensor, *, mix: float = 0.5, sigma: float = 5.0) -> Tensor:
    """Class-rebalancing weights of Zhang et al. (ECCV 2016, eq. 4): `w ∝ ((1-λ)·p̃ + λ/K)^-1`,
    with p̃ the prior smoothed by a Gaussian of width `sigma` in (a, b), normalised so that
    E_p[w] = 1. Rare saturated colors weigh more, so the net stops hedging toward brown."""
    distance2 = torch.cdist(bins, bins) ** 2  # (K, K)
    smooth = torch.exp(-distance2 / (2 * sigma**2)) @ prior
    smooth = smooth / smooth.sum()
    weights = 1.0 / ((1 - mix) * smooth + mix / len(bins))
    return weights / (prior * weights).sum()
