"""How the segments of a run are executed: here, in worker processes, or on a Ray cluster.

    driver: plan ─► jobs (one per pending segment) ─► executor ─► on_done(job, outcome) ─► journal, join
                                                        │
         InProcess (this process, the driver's chain) │ WorkerPool (run/processes.py) │ RayExecutor (run/ray_cluster.py)

A job is everything a segment needs besides the chain: the input, the segment, where its file
goes (the run's work folder, journal.py) and the output's pixel layout. Whoever executes it runs
the same `run_segment` (run/segment.py) with a chain built from the same `WorkerSetup`, so the segment
file is the same wherever it was made (DESIGN promise 8). Only the driver writes the journal and
joins, so a worker that dies loses at most the segments it was working on.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path

import torch

from remaster.run.plan import Segment
from remaster.run.segment import SegmentResult, run_segment


@dataclass(frozen=True)
class Job:
    film: int  # index of the film in the run (a folder run has several)
    input: Path
    segment: Segment
    destination: Path  # the segment's file in the film's work folder
    layout: object  # encoding.Layout of the film's output

    def describe(self) -> str:
        return f"segment {self.segment.index} of {self.input.name}"


@dataclass
class Outcome:
    result: SegmentResult  # its `seconds` hold the chain's stages too
    cuts: int = 0  # scene cuts the temporal stage saw in the segment (its warm-up included)


@dataclass(frozen=True)
class WorkerSetup:
    """What a worker needs to build the run's chain: picklable, small. The model is loaded by
    each worker from `model` (a path; None: the shipped one), or, when the caller handed the run
    a `Colorizer` object, sent as `net` (the network on the CPU)."""

    config: object  # VideoConfig
    model: str | None = None
    net: object | None = None  # nets.ColorNet, CPU copy
    colorizer_args: dict = field(default_factory=dict)  # inference, name, metadata of a sent net
    keyframes: tuple | None = (
        None  # (frame -> (1, 2, h, w) chroma, frame -> (1, 1, h, w) luma) at working size (temporal.set_keyframes)
    )

    @classmethod
    def of(cls, config, colorizer, loaded: bool, keyframes: dict | None = None) -> WorkerSetup:
        """`loaded`: the driver loaded `colorizer` from `config.colorize.model` (workers load it
        the same way); otherwise the caller's object travels, network and all."""
        kept = tuple({k: v.cpu() for k, v in part.items()} for part in keyframes) if keyframes else None
        if loaded:
            return cls(config, model=config.colorize.model, keyframes=kept)
        net = copy.deepcopy(colorizer.net).cpu()
        args = {"inference": colorizer.inference, "name": colorizer.name, "metadata": colorizer.metadata}
        return cls(config, net=net, colorizer_args=args, keyframes=kept)

    def build(self, device: str, threads: int | None):
        """The chain on `device`, with `threads` torch/OpenCV threads (None: leave as they are)."""
        from remaster.net.colorizer import Colorizer
        from remaster.stages.chain import build_chain

        if threads:
            torch.set_num_threads(threads)
            try:
                import cv2

                cv2.setNumThreads(threads)
            except ImportError:  # pragma: no cover - OpenCV is a dependency
                pass
        c = self.config.colorize
        if self.net is None:
            colorizer = Colorizer.load(c.model, device=device, working_short_side=c.working_short_side, doubt=c.doubt)
        else:
            colorizer = Colorizer(copy.deepcopy(self.net), device=device, **self.colorizer_args)
        chain = build_chain(self.config, colorizer)
        if self.keyframes:
            chain.stage("temporal").set_keyframes(
                *({k: v.to(colorizer.device) for k, v in part.items()} for part in self.keyframes)
            )
        return chain


def execute(chain, job: Job, config, on_frames=None) -> Outcome:
    """Run one job on `chain`; the chain's seconds and cuts for it go into the outcome."""
    before = dict(chain.seconds)
    temporal = chain.stage("temporal")
    cuts = temporal.cuts if temporal is not None else 0
    result = run_segment(job.input, job.segment, job.destination, chain, config, job.layout, on_frames=on_frames)
    for name, seconds in chain.seconds.items():
        result.seconds[name] = seconds - before.get(name, 0.0)
    return Outcome(result, (temporal.cuts if temporal is not None else 0) - cuts)


class InProcess:
    """Segments one after another in this process, on the driver's chain (the plain run)."""

    name = "in-process"

    def __init__(self, chain, config):
        self.chain, self.config = chain, config

    def describe(self) -> dict:
        return {
            "executor": self.name,
            "workers": 1,
            "devices": [str(self.chain.device)],
            "torch_threads": torch.get_num_threads(),
        }

    def run(self, jobs: list[Job], on_done, on_frames=None) -> None:
        for job in jobs:
            on_done(job, execute(self.chain, job, self.config, on_frames))

    def close(self) -> None:
        pass
