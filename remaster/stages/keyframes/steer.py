"""A colorist's keyframes steering a hint-conditioned network (issue 9, item 4).

The temporal stage carries each keyframe's colors along the motion (stages/keyframes/carry.py) with a confidence
per pixel. With `keyframe_fill = "hints"`, that carry becomes the network's hint input, a dense
hint with its confidence, as in training (`hints.simulate_hints`, "dense" kind): the network
keeps the carried colors where they are trusted and colors the rest to match them (an arm that
came into view, a face turned toward the camera), where a fill by tone can only reuse the
keyframe's colors for the same gray.

Where the film's own model takes no hints, the shipped hint model (`remaster-hints`) is loaded,
once, on first use: a film without keyframes never loads it.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from remaster.color import chroma_to_ab
from remaster.net.hints import hint_map


class KeyframeSteering:
    """`steering(luma, chroma, confidence, matrix) -> chroma`: the network's colors for a frame
    `luma (1, 1, h, w)` given carried keyframe `chroma (1, 2, h, w)` and its `confidence`."""

    def __init__(self, load: Callable[[], object]):
        self._load = load  # -> a hint-conditioned Colorizer
        self._colorizer = None

    @property
    def colorizer(self):
        if self._colorizer is None:
            self._colorizer = self._load()
        return self._colorizer

    def __call__(self, luma: Tensor, chroma: Tensor, confidence: Tensor, matrix: str = "bt601") -> Tensor:
        colorizer = self.colorizer
        hints = hint_map(chroma_to_ab(luma, chroma, matrix), confidence)  # (1, 3, h, w)
        steered = colorizer.chroma(luma, matrix, hints).to(chroma.device, torch.float32)  # (1, 2, h', w')
        if steered.shape[-2:] != chroma.shape[-2:]:  # a hint model of another working size
            steered = F.interpolate(steered, size=chroma.shape[-2:], mode="bilinear", align_corners=False)
        return steered


def steering_for(colorizer) -> KeyframeSteering:
    """The film's own model where it takes hints, else the shipped hint model on the same device
    and at the same working size."""
    if colorizer.takes_hints:
        return KeyframeSteering(lambda: colorizer)

    def load():
        from remaster.net.colorizer import Colorizer

        return Colorizer.load(
            device=colorizer.device, hints=True, working_short_side=colorizer.inference.working_short_side
        )

    return KeyframeSteering(load)


__all__ = ["KeyframeSteering", "chroma_to_ab", "steering_for"]
