"""Still images in and out: photographs read as luma (8/16-bit, gray or RGB) and RGB(A) arrays
written atomically, in the formats and depths people keep their scans in."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from remaster.atomic import atomic_path
from remaster.color import rgb_to_luma
from remaster.errors import InputError, OutputError, one_line

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
        return full_scale(self.dtype)


def full_scale(dtype) -> float:
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
    luma = _pixels_to_luma(pixels, full_scale(image.dtype))
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


def in_photo_depth(rgb: np.ndarray, photo: Photo) -> np.ndarray:
    if photo.dtype == np.float32:
        out = rgb.astype(np.float32)
    else:
        out = np.clip(np.rint(rgb * photo.scale), 0, photo.scale).astype(photo.dtype)
    if photo.alpha is not None:
        out = np.dstack((out, photo.alpha.astype(out.dtype)))
    return out


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
        raise OutputError(f"{path}: could not be written ({one_line(error)})") from None
