"""Contact sheets: pictures side by side under captions, for people who would rather look than read.

Used by `remaster image --compare`, `remaster demo`, `remaster eval images --gallery` and the
benchmarks' sheets. Panels keep the photo's own bit depth.
"""

from __future__ import annotations

import cv2
import numpy as np

from remaster.media.stills import Photo, full_scale, in_photo_depth


def gray_panel(photo: Photo) -> np.ndarray:
    """The photo's luma as a gray RGB(A) image in its own depth: what the network saw."""
    return in_photo_depth(np.repeat(photo.luma[:, :, None], 3, axis=2), photo)


def original_panel(photo: Photo) -> np.ndarray:
    """The photo's own colors as RGB(A) in its own depth (its gray luma when it had none)."""
    if photo.rgb is None:
        return gray_panel(photo)
    return photo.rgb if photo.alpha is None else np.dstack((photo.rgb, photo.alpha.astype(photo.rgb.dtype)))


def compare_panels(photo: Photo, colorized: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """What `remaster image --compare` shows: the original beside ours when the input was in
    color (its true colors are known), else the gray input beside ours."""
    first = ("original", original_panel(photo)) if photo.rgb is not None else ("input (gray)", gray_panel(photo))
    return [first, ("remaster", colorized)]


def contact_sheet(panels: list[tuple[str, np.ndarray]]) -> np.ndarray:
    """Images of one height and depth side by side, each under a caption strip with its label.

    The sheet is as wide as the panels together and a strip taller; it keeps their dtype (8/16-bit
    or float), so a 16-bit scan's compare stays 16-bit. A panel with alpha makes the sheet RGBA
    (the others and the strips opaque).
    """
    if not panels:
        raise ValueError("a contact sheet needs at least one panel")
    images = [np.asarray(image) for _, image in panels]
    height, dtype = images[0].shape[0], images[0].dtype
    for (label, _), image in zip(panels, images):
        if image.ndim != 3 or image.shape[2] not in (3, 4) or image.shape[0] != height or image.dtype != dtype:
            raise ValueError(f"panel {label!r}: expected ({height}, W, 3|4) {dtype}, got {image.shape} {image.dtype}")
    white = full_scale(dtype)
    channels = max(image.shape[2] for image in images)
    if channels == 4:
        opaque = np.full((height, 1), white, dtype)
        images = [
            image if image.shape[2] == 4 else np.dstack((image, np.broadcast_to(opaque, image.shape[:2])))
            for image in images
        ]
    strips = _caption_strips([label for label, _ in panels], [image.shape[1] for image in images])
    columns = []
    for strip, image in zip(strips, images):  # strip: (h, W) uint8 text mask, white text on black
        levels = strip.astype(np.float32) * (white / 255.0)  # 255 -> white: 255, 65535 or 1.0
        strip = levels.astype(dtype) if np.issubdtype(dtype, np.floating) else np.rint(levels).astype(dtype)
        strip = np.repeat(strip[:, :, None], 3, axis=2)
        if channels == 4:
            strip = np.dstack((strip, np.full(strip.shape[:2], white, dtype)))
        columns.append(np.concatenate((strip, image), axis=0))
    return np.concatenate(columns, axis=1)


def _caption_strips(labels: list[str], widths: list[int]) -> list[np.ndarray]:
    """One `(h, W)` uint8 strip per label (white text on black, antialiased), all of one height.

    Text is drawn on 8-bit strips (OpenCV 5 draws text on 8-bit images only) and the caller
    scales them to the sheet's depth. The font grows with the panels (readable on a 4000 px scan
    and on a 64 px thumbnail) and shrinks where a label would not fit its panel."""
    font = cv2.FONT_HERSHEY_SIMPLEX
    base = float(np.clip(min(widths) / 640.0, 0.35, 2.5))
    texts = []  # (scale, thickness, (text width, text height), baseline) per label
    for label, width in zip(labels, widths):
        scale = base
        (text_w, _), _ = cv2.getTextSize(label, font, scale, max(1, round(scale * 1.5)))
        if text_w > width - 4:
            scale = max(0.2, scale * (width - 4) / text_w)
        thickness = max(1, round(scale * 1.5))
        texts.append((scale, thickness, *cv2.getTextSize(label, font, scale, thickness)))
    text_h = max(size[1] + baseline for _, _, size, baseline in texts)
    pad = max(3, round(0.4 * text_h))
    strips = []
    for label, width, (scale, thickness, (text_w, h), _) in zip(labels, widths, texts):
        strip = np.zeros((text_h + 2 * pad, width), np.uint8)
        x = max(2, min(pad, width - text_w - 2))  # left-aligned; less margin on a narrow panel
        cv2.putText(strip, label, (x, pad + h), font, scale, 255, thickness, cv2.LINE_AA)
        strips.append(strip)
    return strips
