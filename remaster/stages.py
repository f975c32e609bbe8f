"""The chain of stages every batch goes through, and the small protocol the stages share.

    FrameBatch ──► Work(luma) ──► colorize ──► shots ──► temporal (+ keyframes) ──► (restore, ...) ──► Work(chroma)

A stage is an object with

    name: str                       for timings and reports
    warmup_frames: int              frames before a segment's first one it must see to reach the
                                    state it would have had if the film had never been cut
    process(work) -> None           reads and updates the batch's `Work` in place
    reset() / state() / load_state(state)
                                    forget, give and take the state it carries from one batch to
                                    the next (empty for stateless stages)

Stages know nothing of files or of how a run is executed. The chain is built once per run
(`build_chain`), so a flow provider or its weights load once however many segments follow;
`reset()` before each segment makes a segment's output depend only on the segment.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import Tensor

from .frames import FrameBatch
from .timing import StageTimer


@dataclass
class Work:
    """One batch on its way through the chain (all tensors on the chain's device)."""

    batch: FrameBatch
    luma: Tensor  # (N, 1, H, W) float32 full-range Y' in [0, 1]
    chroma: Tensor | None = None  # (N, 2, h, w) (Cb, Cr) offsets at the working resolution
    frame: int | None = None  # the film's frame number of the batch's first frame, where known
    cuts: Tensor | None = None  # (N,) bool: frame i starts a new shot (the shot detector's)
    _scaled: dict = field(default_factory=dict, repr=False)  # luma at other sizes, made once

    def __len__(self) -> int:
        return self.luma.shape[0]

    def luma_at(self, size: tuple[int, int]) -> Tensor:
        """The luma scaled to `size` (h, w), shared by every stage that asks: `(N, 1, h, w)`."""
        size = tuple(size)
        if size == tuple(self.luma.shape[-2:]):
            return self.luma
        if size not in self._scaled:
            self._scaled[size] = F.interpolate(self.luma, size=size, mode="bilinear", antialias=True, align_corners=False)
        return self._scaled[size]


class Stage(Protocol):
    name: str

    @property
    def warmup_frames(self) -> int: ...

    def process(self, work: Work) -> None: ...

    def reset(self) -> None: ...

    def state(self) -> dict: ...

    def load_state(self, state: dict) -> None: ...


class ColorizeStage:
    """The network: luma in, chroma at the working resolution out. Stateless."""

    name = "colorize"
    warmup_frames = 0

    def __init__(self, colorizer):
        self.colorizer = colorizer

    def process(self, work: Work) -> None:
        work.chroma = self.colorizer.chroma(work.luma, matrix=work.batch.source.matrix)  # (N, 2, h, w)

    def reset(self) -> None:
        pass

    def state(self) -> dict:
        return {}

    def load_state(self, state: dict) -> None:
        pass


class Chain:
    """Stages in order, with seconds per stage. `chain(batch)` returns the batch's `Work`."""

    def __init__(self, stages: list[Stage], device: torch.device):
        self.stages = list(stages)
        self.device = device
        self.timer = StageTimer(device, names=[stage.name for stage in self.stages])

    @property
    def seconds(self) -> dict[str, float]:
        return self.timer.seconds

    @property
    def warmup_frames(self) -> int:
        return max((stage.warmup_frames for stage in self.stages), default=0)

    def stage(self, name: str):
        return next((s for s in self.stages if s.name == name), None)

    def reset(self) -> None:
        for stage in self.stages:
            stage.reset()

    def __call__(self, batch: FrameBatch, frame: int | None = None) -> Work:
        """`frame`: the film's frame number of the batch's first frame (keyframes need it)."""
        self.timer.collect()  # the last batch's stage times, where the GPU has finished them (no wait)
        work = Work(batch, batch.luma(self.device), frame=frame)  # (N, 1, H, W): only codes travel to the device
        for stage in self.stages:
            # Wall time on the CPU, CUDA events on the GPU (timing.py): no synchronize per stage.
            with self.timer(stage.name):
                stage.process(work)
        return work


def build_chain(config, colorizer) -> Chain:
    """The stages a `VideoConfig` asks for, built once for the run (on the colorizer's device)."""
    from .shots import ShotDetector
    from .temporal import TemporalStage

    # Shots are found once, in every mode, and every stage after uses them.
    stages: list[Stage] = [ColorizeStage(colorizer), ShotDetector(device=colorizer.device)]
    if config.temporal.enabled:
        stages.append(TemporalStage(config.temporal, device=colorizer.device))
    return Chain(stages, colorizer.device)
