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


def ranked_names(rows: list[dict], count: int = 8) -> tuple[list[str], list[str]]:
    """The `count` worst and best photos by PSNR gain over gray, worst first / best first."""
    ranked = sorted(rows, key=lambda row: row["psnr"] - row["psnr_gray"])
    return [row["image"] for row in ranked[:count]], [row["image"] for row in ranked[::-1][:count]]


def gallery_sheet(rows: list[dict], kept: dict, count: int = 8) -> np.ndarray:
    """A contact sheet: the `count` worst photos (left) and best (right), each as gray | ours |
    truth, captioned with the gain over gray. 8-bit RGB."""
    from .image import contact_sheet

    by_name = {row["image"]: row for row in rows}
    worst, best = ranked_names(rows, count)

    shown = worst + best
    height = kept[shown[0]][0].shape[0]
    width = min(2 * height, max(kept[name][0].shape[1] for name in shown))  # panoramas are cut to 2:1

    def tile(name: str) -> np.ndarray:
        gain = by_name[name]["psnr"] - by_name[name]["psnr_gray"]
        panels = []
        for label, rgb in zip((name[:18], f"ours {gain:+.1f} dB", "truth"), kept[name]):
            rgb = rgb[:, :width]
            panels.append((label, np.pad(rgb, ((0, 0), (0, width - rgb.shape[1]), (0, 0)))))
        return contact_sheet(panels)

    columns = [np.concatenate([tile(name) for name in names], 0) for names in (worst, best) if names]
    rows_needed = max(column.shape[0] for column in columns)
    columns = [np.pad(c, ((0, rows_needed - c.shape[0]), (0, 8), (0, 0))) for c in columns]
    return np.concatenate(columns, 1)
