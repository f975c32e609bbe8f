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

import time
from dataclasses import dataclass, field
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import Tensor

from .frames import FrameBatch


@dataclass
class Work:
    """One batch on its way through the chain (all tensors on the chain's device)."""

    batch: FrameBatch
    luma: Tensor  # (N, 1, H, W) float32 full-range Y' in [0, 1]
    chroma: Tensor | None = None  # (N, 2, h, w) (Cb, Cr) offsets at the working resolution
    frame: int | None = None  # the film's frame number of the batch's first frame, where known
    cuts: Tensor | None = None  # (N,) bool: frame i starts a new shot (the shot detector's)
    # Warm-up frames only a keyframe's carry needs (further back than the stages' own warm-up):
    # the network is skipped, its chroma is zeros, and only the motion is followed.
    carry_only: bool = False
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
        if work.carry_only:
            size = self.colorizer.working_size(*work.luma.shape[-2:])
            work.chroma = work.luma.new_zeros((len(work), 2, *size))  # (N, 2, h, w): no network, only the carry is followed
            return
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
        self.seconds: dict[str, float] = {stage.name: 0.0 for stage in self.stages}

    @property
    def warmup_frames(self) -> int:
        return max((stage.warmup_frames for stage in self.stages), default=0)

    def stage(self, name: str):
        return next((s for s in self.stages if s.name == name), None)

    def reset(self) -> None:
        for stage in self.stages:
            stage.reset()

    def __call__(self, batch: FrameBatch, frame: int | None = None, carry_only: bool = False) -> Work:
        """`frame`: the film's frame number of the batch's first frame (keyframes need it);
        `carry_only`: a warm-up batch only a keyframe's carry needs (`Work.carry_only`)."""
        work = Work(batch, batch.luma(self.device), frame=frame, carry_only=carry_only)  # (N, 1, H, W): only codes travel to the device
        for stage in self.stages:
            started = time.perf_counter()
            stage.process(work)
            # Seconds are wall time up to the stage's own sync points (the temporal stage's cut
            # decision, the assemble copy back to the host); no extra synchronize per stage, so
            # on CUDA a stage's queued work may be counted in the next one.
            self.seconds[stage.name] += time.perf_counter() - started
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
