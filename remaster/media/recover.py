"""What a damaged or odd file still holds: packets past unreadable data, stand-ins for pictures
the decoder lost, and usable timestamps.

`demux_resilient` reads a stream's packets on past data the demuxer rejects, as far as it can
resynchronise, and says where it could not. `Losses` finds the pictures a decoder never gave and
puts the previous picture in their place. `Clock` gives pictures timestamps that run forward
when the container's labels do not (AVI's packed B-frames, repeated times). They serve the reader
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


class Losses:
    """The bookkeeping of one decoding pass: which pictures the decoder lost, and what stands in.

    A packet the decoder rejects is damage: its picture never comes out, so the previous good
    picture stands in at that time. Decoders report a bad packet late with frame threads and
    reorder with B-frames, so the lost time is found from the packets' times that never came out,
    but only as many as there were errors: a hidden frame (VP8's alt-ref) is a packet without a
    picture and no loss. Before the first picture there is nothing to repeat. Feed it every packet
    (`sent`) and what decoding it gave (`received`, or `rejected`); both yield `(frame, damage)`
    pairs, damage None, "lost" (a stand-in: the previous picture, retimed) or "concealed" (the
    decoder flagged the picture corrupt: kept, being the best there is).
    """

    def __init__(self):
        self.last = None  # the last picture handed out
        self.pending: list[int] = []  # heap: pts of packets whose picture has not come out yet
        self.errors = 0  # packets the decoder rejected, not yet stood in for
        self.stood_in: set[int] = set()  # times given to stand-ins (a late picture there is dropped)

    def sent(self, packet) -> None:
        if packet.size and packet.pts is not None:
            heapq.heappush(self.pending, packet.pts)

    def rejected(self) -> None:
        self.errors += self.last is not None

    def received(self, frames):
        for frame in frames:
            if frame.pts is not None and frame.pts in self.stood_in:
                self.stood_in.discard(frame.pts)
                continue  # came out after its stand-in: its place is taken
            if frame.pts is not None:
                yield from self._stand_ins(frame.pts)
                if self.pending and self.pending[0] == frame.pts:
                    heapq.heappop(self.pending)
            self.last = frame
            yield frame, "concealed" if frame.is_corrupt else None
        del self.pending[256:]  # bounded even if a stream's frame and packet times never match

    def lost_at_end(self):
        return self._stand_ins(None)

    def _stand_ins(self, until):
        while self.pending and (until is None or self.pending[0] < until):
            lost = heapq.heappop(self.pending)
            last = self.last
            if self.errors and last is not None and (last.pts is None or lost > last.pts):
                self.errors -= 1
                last.pts = lost  # the consumer has read the picture already; reuse it
                self.stood_in.add(lost)
                yield last, "lost"


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
