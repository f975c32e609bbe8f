"""Colorizing a photograph: its luma through the network, optionally steered by clicks, back in its own depth.

An RGB input is treated as its BT.601 luma (the JPEG convention); the output's luma equals the
input's within rounding, because the new chroma is fitted inside the RGB gamut for that luma
(`color.fit_chroma_to_gamut`) instead of being clipped afterwards.
"""

from __future__ import annotations

import os

import numpy as np
import torch

from remaster.errors import InputError
from remaster.media.stills import Photo, in_photo_depth, photo_from_array, read_photo
from remaster.net.colorizer import colorize_luma
from remaster.net.edge_aware import EdgeAware
from remaster.net.hints import point_hints


def colorize_photo(photo: Photo, colorizer, points=None, edges: EdgeAware | None = None) -> np.ndarray:
    """RGB(A) `(H, W, 3|4)` array in the photo's own depth.

    `points`: color hints `(x, y, a, b)` with x, y in the photo's pixels and (a, b) in CIELAB
    (see `hints.parse_color`); they need a hint-conditioned model. `edges`: an edge-aware step that
    keeps a click's color in its object (`net.edge_aware.EdgeAware()`; None, the default: the
    network's colors as they are; benchmarks/RESULTS.md says why it is not the default yet)."""
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
    rgb = colorize_luma(colorizer, luma, hints=hints, edges=edges)[0].permute(1, 2, 0).cpu().numpy()  # (H, W, 3)
    return in_photo_depth(rgb, photo)


def colorize_image(image_or_path, *, colorizer=None, model=None, device: str = "auto") -> np.ndarray:
    """Colorize a photograph; returns an RGB(A) array of the input's size and bit depth.

    `image_or_path` is a file path or an array (`(H, W)` gray or `(H, W, 3|4)` RGB(A)).
    `model` is a .safetensors path (default: the shipped model); pass a `Colorizer` to reuse one.
    """
    from remaster.net.colorizer import Colorizer

    colorizer = colorizer or Colorizer.load(model, device=device)
    if isinstance(image_or_path, (str, os.PathLike)):
        photo = read_photo(image_or_path)
    else:
        photo = photo_from_array(image_or_path)
    return colorize_photo(photo, colorizer)
