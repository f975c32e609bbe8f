"""Evaluation: how good are the colors (images) and how steady are they (videos).

`evaluate_images` takes color ground truth, makes its grayscale version (BT.601 luma, as a B&W
print of it would be), colorizes that, and scores the output and the gray baseline against the
truth with `metrics`.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from .color import rgb_to_luma
from .data import list_images, read_rgb
from .image import colorize_luma
from .metrics import colorfulness, psnr, ssim


def load_truth(path: Path, long_side: int) -> torch.Tensor:
    """A ground-truth photo as `(1, 3, H, W)` RGB in [0, 1], long side at most `long_side`."""
    rgb = read_rgb(path)
    scale = long_side / max(rgb.shape[:2])
    if long_side and scale < 1:
        rgb = cv2.resize(rgb, (round(rgb.shape[1] * scale), round(rgb.shape[0] * scale)), interpolation=cv2.INTER_AREA)
    return torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255.0


def evaluate_images(colorizer, paths_or_folder, *, long_side: int = 512, progress: bool = True) -> dict:
    """Per-set PSNR/SSIM of model and gray baseline, and colorfulness of outputs vs truth."""
    from tqdm import tqdm

    paths = list_images(paths_or_folder) if isinstance(paths_or_folder, (str, Path)) else list(paths_or_folder)
    rows = []
    for path in tqdm(paths, unit="img", disable=not progress, dynamic_ncols=True):
        truth = load_truth(path, long_side)  # (1, 3, H, W)
        luma = rgb_to_luma(truth)  # (1, 1, H, W)
        # Quantize like a real 8-bit gray photo would be.
        luma = torch.round(luma * 255.0) / 255.0
        output = colorize_luma(colorizer, luma).cpu()  # (1, 3, H, W)
        output = torch.round(output * 255.0) / 255.0  # score what would be written to disk
        gray = luma.expand(-1, 3, -1, -1)
        rows.append(
            {
                "image": path.name,
                "psnr": psnr(output, truth).item(),
                "psnr_gray": psnr(gray, truth).item(),
                "ssim": ssim(output, truth).item(),
                "ssim_gray": ssim(gray, truth).item(),
                "colorfulness": colorfulness(output).item(),
                "colorfulness_truth": colorfulness(truth).item(),
            }
        )
    mean = {key: float(np.mean([row[key] for row in rows])) for key in rows[0] if key != "image"}
    summary = {
        "images": len(rows),
        "long_side": long_side,
        **{key: round(value, 4) for key, value in mean.items()},
        "psnr_gain": round(mean["psnr"] - mean["psnr_gray"], 4),
        "colorfulness_ratio": round(mean["colorfulness"] / max(mean["colorfulness_truth"], 1e-9), 4),
    }
    return {"summary": summary, "images": rows}
