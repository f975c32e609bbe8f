"""The chain of stages every batch goes through, and the small protocol the stages share.

    FrameBatch ──► (restore) ──► Work(luma) ──► colorize ──► shots ──► temporal (+ keyframes) ──► Work(chroma)

Restoration (restore.py, opt-in) is the chain's `front`: it looks ahead, so it takes the stream
of batches (`Chain.works`), runs the shot detector on the decoded luma, and hands each batch on
with its luma restored and its cut flags set.

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

from remaster.media.formats import FrameBatch
from remaster.stages.on_demand import ChromaOnDemand
from remaster.timing import StageTimer


@dataclass
class Work:
    """One batch on its way through the chain (all tensors on the chain's device)."""

    batch: FrameBatch
    luma: Tensor  # (N, 1, H, W) float32 full-range Y' in [0, 1]
    chroma: Tensor | None = None  # (N, 2, h, w) (Cb, Cr) offsets at the working resolution
    frame: int | None = None  # the film's frame number of the batch's first frame, where known
    cuts: Tensor | None = None  # (N,) bool: frame i starts a new shot (the shot detector's)
    # (backward, forward) flow, each (N, 2, h, w): frame i -> i-1 and i-1 -> i, where the
    # restoration front computed it (zeros where frame i starts a shot); the temporal stage reuses it.
    flow: tuple[Tensor, Tensor] | None = None
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
            self._scaled[size] = F.interpolate(
                self.luma, size=size, mode="bilinear", antialias=True, align_corners=False
            )
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
    """The network: luma in, chroma at the working resolution out. Stateless.

    `on_demand()`: True where a later stage asks for the colors frame by frame (`ChromaOnDemand`):
    with keyframes, the network runs only on the frames whose output shows its colors."""

    name = "colorize"
    warmup_frames = 0

    def __init__(self, colorizer, on_demand=lambda: False):
        self.colorizer = colorizer
        self.on_demand = on_demand

    def process(self, work: Work) -> None:
        if work.carry_only:
            size = self.colorizer.working_size(*work.luma.shape[-2:])
            work.chroma = work.luma.new_zeros(
                (len(work), 2, *size)
            )  # (N, 2, h, w): no network, only the carry is followed
            return
        if self.on_demand():
            work.chroma = ChromaOnDemand(self.colorizer, work.luma, work.batch.source.matrix)
            return
        work.chroma = self.colorizer.chroma(work.luma, matrix=work.batch.source.matrix)  # (N, 2, h, w)

    def reset(self) -> None:
        pass

    def state(self) -> dict:
        return {}

    def load_state(self, state: dict) -> None:
        pass


class Chain:
    """Stages in order, with seconds per stage. `chain(batch)` returns the batch's `Work`;
    `chain.works(batches)` runs a stream of batches, through the restoration `front` first when
    there is one (restore.py: it looks ahead, so it works on the stream, not on one batch)."""

    def __init__(self, stages: list[Stage], device: torch.device, front=None):
        self.stages = list(stages)
        self.device = device
        self.front = front
        self.timer = StageTimer(device, names=[stage.name for stage in self.stages])

    @property
    def seconds(self) -> dict[str, float]:
        """Seconds per stage so far, the restoration front's (which keeps its own) first."""
        front = {self.front.name: self.front.seconds} if self.front is not None else {}
        return front | self.timer.seconds

    @property
    def warmup_frames(self) -> int:
        """The stages' warm-up; restoration's windows reach further back before each of them."""
        warmup = max((stage.warmup_frames for stage in self.stages), default=0)
        return warmup + (self.front.back if self.front is not None else 0)

    @property
    def ahead(self) -> int:
        """Frames past a segment's end that must be read (not written) to finish it."""
        return self.front.ahead if self.front is not None else 0

    @property
    def luma_changed_by(self) -> list[str]:
        """The stages that change the luma that is written (none unless restoration is asked)."""
        return list(self.front.names) if self.front is not None else []

    def works(self, batches, frame: int | None = None, carry_only_before: int | None = None):
        """`Work` for each batch of the stream but look-ahead (`tail`) ones, in order; `frame`:
        the film's number of the first frame; warm-up batches that end at or before frame
        `carry_only_before` are carry-only (`Work.carry_only`)."""
        if self.front is None:
            stream = ((batch, None) for batch in batches if not batch.tail)
        else:
            stream = self.front.run(batches)
        for batch, cuts, *flow in stream:
            if not len(batch):
                continue
            deep = bool(
                batch.lead
                and frame is not None
                and carry_only_before is not None
                and frame + len(batch) <= carry_only_before
            )
            yield self(batch, frame, cuts, flow[0] if flow else None, carry_only=deep)
            if frame is not None:
                frame += len(batch)

    def stage(self, name: str):
        return next((s for s in self.stages if s.name == name), None)

    def reset(self) -> None:
        if self.front is not None:
            self.front.reset()
        for stage in self.stages:
            stage.reset()

    def __call__(
        self,
        batch: FrameBatch,
        frame: int | None = None,
        cuts: Tensor | None = None,
        flow=None,
        carry_only: bool = False,
    ) -> Work:
        """`frame`: the film's frame number of the batch's first frame (keyframes need it); `cuts (N,)`:
        the shot detector's flags where they were found already (the restoration front);
        `carry_only`: a warm-up batch only a keyframe's carry needs (`Work.carry_only`)."""
        self.timer.collect()  # the last batch's stage times, where the GPU has finished them (no wait)
        work = Work(
            batch, batch.luma(self.device), frame=frame, cuts=cuts, flow=flow, carry_only=carry_only
        )  # (N, 1, H, W)
        for stage in self.stages:
            # Wall time on the CPU, CUDA events on the GPU (timing.py): no synchronize per stage.
            with self.timer(stage.name):
                stage.process(work)
        return work


def build_chain(config, colorizer) -> Chain:
    """The stages a `VideoConfig` asks for, built once for the run (on the colorizer's device)."""
    from remaster.stages.shots import ShotDetector
    from remaster.stages.temporal import TemporalStage

    # Shots are found once, in every mode, and every stage after uses them.
    shots = ShotDetector(device=colorizer.device)
    colorize = ColorizeStage(colorizer)
    stages: list[Stage] = [colorize, shots]
    temporal = TemporalStage(config.temporal, device=colorizer.device) if config.temporal.enabled else None
    if temporal is not None:
        stages.append(temporal)
        colorize.on_demand = temporal.takes_chroma_on_demand
        if config.temporal.keyframe_fill == "hints":
            from remaster.stages.keyframes.steer import steering_for

            temporal.set_steering(steering_for(colorizer))  # loads a hint model only once a keyframe needs it
    front = None
    restore = getattr(config, "restore", None)
    if restore is not None and restore.enabled:
        from remaster.stages.flow import make_flow_provider
        from remaster.stages.restoration.stage import Restorer

        # One flow provider for the run (DESIGN: compute motion once); without a temporal
        # stage, restoration still needs motion: DIS, which needs no weights.
        flow = (
            temporal.provider
            if temporal is not None
            else make_flow_provider("dis", dis_preset=config.temporal.dis_preset)
        )
        # The detector runs in the front, on the decoded luma at the size it sees without
        # restoration (the network's working size), so the cuts are the same either way.
        front = Restorer(
            restore,
            shots=shots,
            shot_size=colorizer.working_size,
            flow=flow,
            device=colorizer.device,
            flow_short_side=config.temporal.flow_short_side,
        )
    return Chain(stages, colorizer.device, front)
