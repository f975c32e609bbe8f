"""A colorist's keyframes as the temporal stage reads them: each one's colors and coverage at the
working size it asks for, made once per size, and its colors by tone (its palette) for what the
carry cannot reach (stages/keyframes/fill.py)."""

from __future__ import annotations

import torch
from torch import Tensor

from remaster.stages.keyframes.fill import palette
from remaster.stages.motion import shrink


def _resized(image: Tensor, size: tuple[int, int], device) -> Tensor:
    """`image` on `device` as float32 at `size` (antialiased, as the stage had it)."""
    return shrink(image.to(device, torch.float32), size)


class GivenKeyframes:
    """`keyframes`: film frame -> `(1, 2, H, W)` chroma at any size; `lumas`: the same frames'
    `(1, 1, H, W)` luma; `coverage`: frame -> `(1, 1, H, W)` in [0, 1], where a registered
    reference has picture (a print cropped otherwise: 0 at the edges)."""

    def __init__(self, keyframes: dict, lumas: dict, coverage: dict, device):
        self.keyframes, self.lumas, self.given_coverage, self.device = keyframes, lumas, coverage, device
        self._at: dict[tuple[int, int], dict[int, Tensor]] = {}
        self._palettes: dict[tuple[int, tuple[int, int]], Tensor] = {}
        self._coverages: dict[tuple[int, tuple[int, int]], Tensor] = {}

    def chroma(self, frame: int | None, size: tuple[int, int]) -> Tensor | None:
        """`(1, 2, h, w)`: keyframe `frame`'s colors at `size`, or None where `frame` is no keyframe."""
        if frame is None or frame not in self.keyframes:
            return None
        if size not in self._at:
            self._at[size] = {k: _resized(c, size, self.device) for k, c in self.keyframes.items()}
        return self._at[size][frame]

    def coverage(self, frame: int, size: tuple[int, int]) -> Tensor:
        """`(1, 1, h, w)`: a keyframe's trust on its own frame, its coverage (1 where none was given)."""
        given = self.given_coverage.get(frame)
        if given is None:
            return torch.ones((1, 1, *size), device=self.device)
        if (frame, size) not in self._coverages:  # asked every carried frame (carry.reacquired)
            self._coverages[(frame, size)] = _resized(given, size, self.device).clamp(0, 1)
        return self._coverages[(frame, size)]

    def palette(self, frame: int, size: tuple[int, int]) -> Tensor:
        """`(bins, 2)`: keyframe `frame`'s colors by tone (fill.palette), made once per size."""
        if (frame, size) not in self._palettes:
            luma = self.lumas.get(frame)
            if luma is None:
                raise ValueError(f"keyframe {frame} has no luma: give set_keyframes its lumas")
            # Each pixel counts as far as the keyframe covers it; a palette reference covers
            # nothing (run/keyframes.py: its colors by tone only), and all its pixels count.
            weight = self.coverage(frame, size) if frame in self.given_coverage else None
            self._palettes[(frame, size)] = palette(
                _resized(luma, size, self.device),
                self.chroma(frame, size),
                weight if weight is not None and weight.max() > 0 else None,
            )
        return self._palettes[(frame, size)]
