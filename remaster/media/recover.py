"""What a damaged or odd file still holds: packets past unreadable data, and usable timestamps.

`demux_resilient` reads a stream's packets on past data the demuxer rejects, as far as it can
resynchronise, and says where it could not. `Clock` gives pictures timestamps that run forward
when the container's labels do not (AVI's packed B-frames, repeated times). Both serve the reader
and the run plan alike (issue 8: every frame FFmpeg can decode comes out).
"""

from __future__ import annotations

import heapq
from collections import deque
from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np


def demux_resilient(container, *streams, on_end=None, attempts: int = 8):
    """`container.demux(*streams)`, skipping data the demuxer rejects as long as it can
    resynchronise (FFmpeg's demuxers carry on after a damaged packet when asked again); after
    `attempts` errors with no packet between them the data is taken to end there, and
    `on_end(error)` is told (it may raise)."""
    failures = 0
    while True:
        try:
            for packet in container.demux(*streams):
                failures = 0
                yield packet
            return
        except av.FFmpegError as error:
            failures += 1
            if failures >= attempts:
                if on_end is not None:
                    on_end(error)
                return


@dataclass
class Picture:
    pts: int | None
    codes: np.ndarray  # (H, W) Y codes, a copy
    lead: bool  # a warm-up picture from before the segment
    tail: bool = False  # a look-ahead picture from after the segment


class Clock:
    """Pictures (anything with a `pts`) with timestamps that run forward.

    The decoder gives pictures in display order, each labelled with a time from the container.
    Where the container's times are unusable, the labels come out of order although the pictures
    do not: AVI has no presentation times, so with packed B-frames (DivX, Xvid) the pictures come
    out labelled 1, 2, 4, 3, 5, 7, 6. The labels are still the right set of times, one each, so
    the pictures are given them in increasing order: each picture waits until `depth` later ones
    have been decoded and then takes the smallest label waiting (a picture whose label is already
    in order keeps it, so films with good times are untouched). A label that still fails to move
    forward (none, or a repeat) becomes the last one plus a frame; `retimed` counts those.
    """

    def __init__(self, rate: Fraction, time_base: Fraction, depth: int = 4):
        self.step = max(1, round(1 / (rate * time_base))) if rate and time_base else 1
        self.depth = depth
        self.waiting: deque = deque()  # pictures decoded, not yet handed out
        self.labels: list[int] = []  # heap of their labels
        self.last: int | None = None
        self.retimed = 0

    def push(self, frame) -> list:
        """Take one decoded picture; return the pictures ready to hand out, in order."""
        self.waiting.append(frame)
        if frame.pts is not None:
            heapq.heappush(self.labels, frame.pts)
        return self._ready(self.depth)

    def flush(self) -> list:
        return self._ready(0)

    def _ready(self, keep: int) -> list:
        ready = []
        while len(self.waiting) > keep:
            frame = self.waiting.popleft()
            if frame.pts is not None:
                label = heapq.heappop(self.labels)
                if self.last is not None and label <= self.last:
                    label = self.last + self.step
                    self.retimed += 1
                frame.pts = self.last = label
            ready.append(frame)
        return ready
