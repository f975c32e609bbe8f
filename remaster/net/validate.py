"""Scoring a colorizer on photos with known colors: their gray versions colorized, against the truth.

`evaluate_images` takes color ground truth, makes its grayscale version (BT.601 luma, as a B&W
print of it would be), colorizes that, and scores the output and the gray baseline against the
truth (`quality`). Training validates with it; `remaster eval images` reports it.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from remaster.color import rgb_to_luma
from remaster.net.colorizer import colorize_luma
from remaster.net.train_data import list_images, read_rgb
from remaster.quality import colorfulness, psnr, ssim


def load_truth(path: Path, long_side: int) -> torch.Tensor:
    """A ground-truth photo as `(1, 3, H, W)` RGB in [0, 1], long side at most `long_side`."""
    rgb = read_rgb(path)
    scale = long_side / max(rgb.shape[:2])
    if long_side and scale < 1:
        rgb = cv2.resize(rgb, (round(rgb.shape[1] * scale), round(rgb.shape[0] * scale)), interpolation=cv2.INTER_AREA)
    return torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255.0


def evaluate_images(colorizer, paths_or_folder, *, long_side: int = 512, progress: bool = True, keep=None) -> dict:
    """Per-set PSNR/SSIM of model and gray baseline, and colorfulness of outputs vs truth.

    The summary also says how many photos beat gray and names the worst ones: a mean hides the
    confidently wrong photo that an archivist remembers. `keep(name) -> bool` chooses photos
    whose (gray, output, truth) images are returned too, for a gallery (`gallery_sheet`).
    """
    from tqdm import tqdm

    paths = list_images(paths_or_folder) if isinstance(paths_or_folder, (str, Path)) else list(paths_or_folder)
    rows, kept = [], {}
    for path in tqdm(paths, unit="img", disable=not progress, dynamic_ncols=True):
        truth = load_truth(path, long_side)  # (1, 3, H, W)
        luma = rgb_to_luma(truth)  # (1, 1, H, W)
        # Quantize like a real 8-bit gray photo would be.
        luma = torch.round(luma * 255.0) / 255.0
        output = colorize_luma(colorizer, luma).cpu()  # (1, 3, H, W)
        output = torch.round(output * 255.0) / 255.0  # score what would be written to disk
        gray = luma.expand(-1, 3, -1, -1)
        if keep is not None and keep(path.name):
            kept[path.name] = tuple(thumbnail(image) for image in (gray, output, truth))
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
        **gain_distribution(rows),
    }
    return {"summary": summary, "images": rows, "kept": kept}


def gain_distribution(rows: list[dict], worst: int = 5) -> dict:
    """How many photos beat gray, the gain's 10th percentile and median, and the worst photos."""
    gains = np.array([row["psnr"] - row["psnr_gray"] for row in rows])
    order = np.argsort(gains)
    return {
        "beat_gray": int((gains > 0).sum()),
        "gain_p10": round(float(np.percentile(gains, 10)), 4),
        "gain_median": round(float(np.median(gains)), 4),
        "worst": [{"image": rows[i]["image"], "psnr_gain": round(float(gains[i]), 3)} for i in order[:worst]],
    }


def thumbnail(image: torch.Tensor, height: int = 128) -> np.ndarray:
    """`(1, 3, H, W)` float RGB -> `(height, W', 3)` uint8, aspect kept: small enough to keep 100."""
    rgb = (image[0].permute(1, 2, 0).clamp(0, 1).numpy() * 255 + 0.5).astype(np.uint8)
    width = max(1, round(rgb.shape[1] * height / rgb.shape[0]))
    return cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA)
