"""A gallery of an image evaluation (`net.validate.evaluate_images`): the worst and best photos
by gain over gray, as gray | ours | truth, for people to look at."""

from __future__ import annotations

import numpy as np


def ranked_names(rows: list[dict], count: int = 8) -> tuple[list[str], list[str]]:
    """The `count` worst and best photos by PSNR gain over gray, worst first / best first."""
    ranked = sorted(rows, key=lambda row: row["psnr"] - row["psnr_gray"])
    return [row["image"] for row in ranked[:count]], [row["image"] for row in ranked[::-1][:count]]


def gallery_sheet(rows: list[dict], kept: dict, count: int = 8) -> np.ndarray:
    """A contact sheet: the `count` worst photos (left) and best (right), each as gray | ours |
    truth, captioned with the gain over gray. 8-bit RGB."""
    from remaster.media.sheets import contact_sheet

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
