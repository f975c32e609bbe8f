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

READABLE = "JPEG, PNG, TIFF, WebP or BMP"


@dataclass(frozen=True)
class Photo:
    """A decoded photograph: luma `(H, W)` float32 in [0, 1], plus what writing it back needs."""

    luma: np.ndarray
    dtype: np.dtype  # uint8, uint16 or float32: the output is written in the same depth
    alpha: np.ndarray | None  # kept as it was, in the file's own scale

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
    return Photo(luma=_pixels_to_luma(pixels, _full_scale(image.dtype)), dtype=image.dtype, alpha=alpha)


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


def colorize_luma(colorizer, luma: Tensor, matrix: str = "bt601") -> Tensor:
    """`(N, 1, H, W)` Y' in [0, 1] -> `(N, 3, H, W)` RGB in [0, 1] whose luma is the input's."""
    chroma = colorizer.chroma(luma, matrix)  # (N, 2, h, w) at the working resolution
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


def colorize_photo(photo: Photo, colorizer) -> np.ndarray:
    """RGB(A) `(H, W, 3|4)` array in the photo's own depth."""
    luma = torch.from_numpy(photo.luma)[None, None]  # (1, 1, H, W)
    rgb = colorize_luma(colorizer, luma)[0].permute(1, 2, 0).cpu().numpy()  # (H, W, 3)
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


def side_by_side(photo: Photo, colorized: np.ndarray) -> np.ndarray:
    """The gray input and the colorized output next to each other, in the output's depth."""
    gray = _to_dtype(np.repeat(photo.luma[:, :, None], 3, axis=2), photo)
    return np.concatenate((gray, colorized), axis=1)
