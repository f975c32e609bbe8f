"""Seconds per stage, without making a GPU pipeline wait for them.

On the CPU a stage's time is wall time (`time.perf_counter`). On CUDA the host only queues work,
so wall time around a stage measures the queueing, and `torch.cuda.synchronize()` around it
would measure the stage but stall the pipeline at every stage of every batch (issue 11). Here a
stage records a pair of CUDA events instead (recording does not wait), and the pairs are read
once per batch with `collect()`, which only takes the pairs the GPU has finished (a query, not a
wait), or with `collect(wait=True)` once at the end of a segment. An event pair spans what the
GPU did for the stage plus any time it sat waiting for the host to queue it, so a stage bound by
host work (DIS flow on the CPU) is still counted in full.
"""

from __future__ import annotations

import time
from contextlib import contextmanager

import torch


class StageTimer:
    """`with timer("colorize"): ...` adds to `timer.seconds["colorize"]` (after `collect()` on CUDA)."""

    def __init__(self, device: torch.device | str = "cpu", names=()):
        self.device = torch.device(device)
        self.cuda = self.device.type == "cuda"
        self._seconds: dict[str, float] = {name: 0.0 for name in names}
        self._pending: list[tuple[str, torch.cuda.Event, torch.cuda.Event]] = []

    @contextmanager
    def __call__(self, name: str):
        self._seconds.setdefault(name, 0.0)
        if not self.cuda:
            started = time.perf_counter()
            try:
                yield
            finally:
                self._seconds[name] += time.perf_counter() - started
            return
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        try:
            yield
        finally:
            end.record()
            self._pending.append((name, start, end))

    def collect(self, wait: bool = False) -> None:
        """Add the finished event pairs' times; with `wait`, wait for all of them (a sync point)."""
        keep = []
        for name, start, end in self._pending:
            if wait:
                end.synchronize()  # CPU-GPU sync point: once, when the seconds are asked for
            if wait or end.query():
                self._seconds[name] += start.elapsed_time(end) / 1000.0
            else:
                keep.append((name, start, end))
        self._pending = keep

    @property
    def seconds(self) -> dict[str, float]:
        """Every stage's seconds so far (waits for the GPU's pending ones)."""
        self.collect(wait=True)
        return self._seconds
