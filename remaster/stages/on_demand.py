"""The network's colors of a batch, made only if a later stage asks for them (keyframe mode)."""

from __future__ import annotations

import torch
from torch import Tensor


class ChromaOnDemand:
    """The network's chroma of a batch, made only for the frames a later stage asks for.

    With a colorist's keyframes most frames take their colors from the carry, and the network's
    would weigh nothing in them (stages/keyframes/carry.py, `needs_colors`): the temporal stage asks
    for a frame's colors only where they show, and a batch none of whose frames is asked for never
    runs the network. `batch[i : i + 1]` -> `(1, 2, h, w)`; the first frame asked for runs it on the
    whole batch, exactly as the eager stage would (the same shapes: oneDNN keeps a kernel for
    every batch shape it meets, and partial batches of every size made memory grow with a film's
    length). `shape` is the eager stage's `(N, 2, h, w)`."""

    def __init__(self, colorizer, luma: Tensor, matrix: str):
        self.colorizer, self.luma, self.matrix = colorizer, luma, matrix
        self.shape = torch.Size((len(luma), 2, *colorizer.working_size(*luma.shape[-2:])))
        self._made: Tensor | None = None  # (N, 2, h, w) once asked for

    def __getitem__(self, index: slice) -> Tensor:
        if self._made is None:
            self._made = self.colorizer.chroma(self.luma, matrix=self.matrix)  # (N, 2, h, w)
        return self._made[index]
