"""Colorizing photographs: read (8/16-bit, gray or RGB), colorize the luma, keep it, write.

An RGB input is treated as its BT.601 luma (the JPEG convention); the output's luma equals the
input's within rounding, because the new chroma is fitted inside the RGB gamut for that luma
(`color.fit_chroma_to_gamut`) instead of being clipped afterwards.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .color import fit_chroma_to_gamut, luma_chroma_to_rgb, rgb_to_luma
from .errors import InputError, OutputError
from .files import atomic_path
from .hints import point_hints

READABLE = "JPEG, PNG, TIFF, WebP or BMP"


@dataclass(frozen=True)
class Photo:
    """A decoded photograph: luma `(H, W)` float32 in [0, 1], plus what writing it back needs."""

    luma: np.ndarray
    dtype: np.dtype  # uint8, uint16 or float32: the output is written in the same depth
    alpha: np.ndarray | None  # kept as it was, in the file's own scale
    # The input's own colors `(H, W, 3)` RGB in the file's scale, when it had any (a compare shows
    # them beside ours); None for a gray input, including an RGB file whose three channels are equal.
    rgb: np.ndarray | None = None

    @property
    def scale(self) -> float:
        return _full_scale(self.dtype)


def _full_scale(dtype) -> float:
    """The code value of white for an image dtype (float images are in [0, 1])."""
    return {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}.get(np.dtype(dtype), 1.0)


def _pixels_to_luma(pixels: np.ndarray, scale: float) -> np.ndarray:
    """`(H, W)` gray or `(H, W, 3)` RGB in file units -> `(H, W)` float32 Y' in [0, 1]."""
    values = torch.from_numpy(np.ascontiguousarray(pixels).astype(np.float32) / scale)
    if values.ndim == 2:
        return values.numpy()
    return rgb_to_luma(values.permute(2, 0, 1)).squeeze(0).numpy()


def photo_from_array(image: np.ndarray) -> Photo:
    """An in-memory image: `(H, W)` gray, or `(H, W, 3|4)` **RGB(A)**, uint8/uint16/float in [0, 1]."""
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (3, 4)):
        raise InputError(f"expected an (H, W), (H, W, 3) or (H, W, 4) image, got shape {image.shape}")
    if image.dtype not in (np.uint8, np.uint16):
        image = image.astype(np.float32)
    alpha = image[:, :, 3].copy() if image.ndim == 3 and image.shape[2] == 4 else None
    pixels = image[:, :, :3] if image.ndim == 3 else image
    luma = _pixels_to_luma(pixels, _full_scale(image.dtype))
    color = pixels.ndim == 3 and not (
        np.array_equal(pixels[..., 0], pixels[..., 1]) and np.array_equal(pixels[..., 0], pixels[..., 2])
    )
    return Photo(luma=luma, dtype=image.dtype, alpha=alpha, rgb=np.ascontiguousarray(pixels) if color else None)


def read_photo(path: str | Path) -> Photo:
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: file not found")
    if path.is_dir():
        raise InputError(f"{path}: is a folder, expected an image file")
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)  # keeps 16-bit and alpha
    if image is None or image.size == 0:
        raise InputError(f"{path}: not a readable image ({READABLE} expected)")
    if image.ndim == 3:  # OpenCV reads BGR(A); the rest of remaster speaks RGB(A)
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA if image.shape[2] == 4 else cv2.COLOR_BGR2RGB)
    return photo_from_array(image)


def colorize_luma(colorizer, luma: Tensor, matrix: str = "bt601", hints: Tensor | None = None) -> Tensor:
    """`(N, 1, H, W)` Y' in [0, 1] -> `(N, 3, H, W)` RGB in [0, 1] whose luma is the input's.

    `hints`: a hint map (hints.py) for a hint-conditioned model, e.g. `hints.point_hints`."""
    chroma = colorizer.chroma(luma, matrix, hints)  # (N, 2, h, w) at the working resolution
    luma = luma.to(chroma.device, torch.float32)
    chroma = F.interpolate(chroma, size=luma.shape[-2:], mode="bilinear", align_corners=False)  # (N, 2, H, W)
    chroma = fit_chroma_to_gamut(luma, chroma, matrix)
    return luma_chroma_to_rgb(luma, chroma, matrix).clamp(0.0, 1.0)  # clamp only trims float error


def _to_dtype(rgb: np.ndarray, photo: Photo) -> np.ndarray:
    if photo.dtype == np.float32:
        out = rgb.astype(np.float32)
    else:
        out = np.clip(np.rint(rgb * photo.scale), 0, photo.scale).astype(photo.dtype)
    if photo.alpha is not None:
        out = np.dstack((out, photo.alpha.astype(out.dtype)))
    return out


def colorize_photo(photo: Photo, colorizer, points=None) -> np.ndarray:
    """RGB(A) `(H, W, 3|4)` array in the photo's own depth.

    `points`: color hints `(x, y, a, b)` with x, y in the photo's pixels and (a, b) in CIELAB
    (see `hints.parse_color`); they need a hint-conditioned model."""
    luma = torch.from_numpy(photo.luma)[None, None]  # (1, 1, H, W)
    hints = None
    if points:
        height, width = photo.luma.shape
        for x, y, _, _ in points:
            if not (0 <= x < width and 0 <= y < height):
                raise InputError(
                    f"hint at {x:g},{y:g} is outside the {width}x{height} picture: x and y are pixels from the top left"
                )
        relative = [(y / max(1, height - 1), x / max(1, width - 1), a, b) for x, y, a, b in points]
        hints = point_hints(colorizer.working_size(height, width), relative)
    rgb = colorize_luma(colorizer, luma, hints=hints)[0].permute(1, 2, 0).cpu().numpy()  # (H, W, 3)
    return _to_dtype(rgb, photo)


def colorize_image(image_or_path, *, colorizer=None, model=None, device: str = "auto") -> np.ndarray:
    """Colorize a photograph; returns an RGB(A) array of the input's size and bit depth.

    `image_or_path` is a file path or an array (`(H, W)` gray or `(H, W, 3|4)` RGB(A)).
    `model` is a .safetensors path (default: the shipped model); pass a `Colorizer` to reuse one.
    """
    from .model import Colorizer

    colorizer = colorizer or Colorizer.load(model, device=device)
    if isinstance(image_or_path, (str, os.PathLike)):
        photo = read_photo(image_or_path)
    else:
        photo = photo_from_array(image_or_path)
    return colorize_photo(photo, colorizer)


def write_image(path: Path, rgb: np.ndarray, *, force: bool = False) -> None:
    """Write an RGB(A) array atomically (temporary file beside it, then rename)."""
    if path.exists() and not force:
        raise OutputError(f"{path}: already exists (use --force to overwrite)")
    if not path.parent.is_dir():
        raise OutputError(f"{path.parent}: output folder does not exist")
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGBA2BGRA if rgb.shape[2] == 4 else cv2.COLOR_RGB2BGR)
    params: list[int] = []
    if path.suffix.lower() in (".jpg", ".jpeg"):
        # Highest quality, no chroma subsampling: the chroma is the whole point of the output.
        params = [cv2.IMWRITE_JPEG_QUALITY, 98, cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444]
        if bgr.dtype != np.uint8:
            raise OutputError(f"{path}: JPEG holds 8-bit images only; write 16-bit results as .png or .tif")
    try:
        with atomic_path(path) as tmp:
            if not cv2.imwrite(str(tmp), bgr, params):
                raise OutputError(f"{path}: could not be written")
    except cv2.error as error:
        raise OutputError(f"{path}: could not be written ({str(error).strip().splitlines()[-1][:100]})") from None


def gray_panel(photo: Photo) -> np.ndarray:
    """The photo's luma as a gray RGB(A) image in its own depth: what the network saw."""
    return _to_dtype(np.repeat(photo.luma[:, :, None], 3, axis=2), photo)


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
    white = _full_scale(dtype)
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
