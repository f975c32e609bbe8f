"""The run plan: every film is cut at the input's sync frames (codec keyframes) into segments, and every
execution follows it.

A short film is one segment; a long one is cut into segments of at least `segment_frames`
frames, each starting at a sync frame (a codec keyframe) of the input so decoding can start there. The plan is a pure
function of the input's packets and the options (segment length, preview length, the warm-up the
stages ask for), so one process, a run stopped and resumed, and several workers all cut the film
the same way. Each segment is then colorized on its own (run/segment.py), with a fresh encoder and the
same warm-up: the stages first see the `warmup` frames before the segment's start, decoded from
the sync frame at or before them, so a segment's pictures depend on nothing but the segment and the
output is the same however the run was executed (DESIGN promise 8).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import av

from remaster.errors import InputError, one_line
from remaster.media.recover import demux_resilient
from remaster.stages.keyframes.window import backward_windows, carry_range


@dataclass(frozen=True)
class Segment:
    index: int
    first_frame: int  # frame number of its first frame in the film
    frames: int
    start_pts: int  # pts of its first frame: a sync frame of the input
    end_pts: int | None  # pts of the next segment's first frame; None: to the end
    # Warm-up: the frames from `lead_pts` up to `start_pts` (`lead_frames` of them) prime the
    # stages' carried state; decoding starts at the sync frame `sync_pts` at or before them.
    lead_pts: int | None = None
    lead_frames: int = 0
    sync_pts: int | None = None
    # Backward carry (stages/keyframes/carry.py): colorist's keyframes after frames of the segment (or of its
    # warm-up) reach back to them, so frames `back_frames = (a, b)` are read first, decoding from
    # the sync frame at `back_pts[2]`, pictures `back_pts[0] <= pts < back_pts[1]`; b may be past
    # the segment's end (tail frames, read but never written). None: no keyframe ahead reaches it.
    back_frames: tuple[int, int] | None = None
    back_pts: tuple[int, int | None, int] | None = None

    def to_dict(self) -> dict:
        """As JSON gives it back (lists, not tuples), so a journal's plan compares equal."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


@dataclass(frozen=True)
class Plan:
    segments: list[Segment]
    notes: tuple[str, ...] = ()  # what the file lacks (cut short, unreadable data), said once per run

    @property
    def frames(self) -> int:
        """Frames the packets promise; the decoder's count may differ (hidden frames, damage)."""
        return sum(s.frames for s in self.segments)


def plan_segments(
    path: Path,
    segment_frames: int,
    max_frames: int | None = None,
    warmup: int = 0,
    *,
    strict: bool = False,
    anchors: tuple[int, ...] = (),
    reach: int = 0,
) -> Plan:
    """Cut the film at keyframes into segments of at least `segment_frames` frames (the last may
    be shorter), each warmed up on up to `warmup` frames before it. A segment that starts within
    `reach` frames after one of the `anchors` (frames a colorist colored) warms up from that
    frame instead, so the color carried from it is the same however the film is cut; a segment
    that an anchor after it reaches backward reads the frames up to that anchor first. Reads
    packets only (no decoding): seconds for a feature film. A file cut short is planned as far
    as it goes, with a note; `strict` refuses it instead."""
    if segment_frames < 1:
        raise ValueError(f"segment_frames must be >= 1, got {segment_frames}")
    notes = []

    def lost(text: str) -> None:
        if strict:
            raise InputError(f"{path}: {text} (--strict refuses a file that cannot be read in full)")
        notes.append(f"{path.name}: {text}; every frame that decodes is colorized")

    with av.open(str(path), metadata_errors="ignore") as container:
        video = next(s for s in container.streams.video if not s.disposition & av.stream.Disposition.attached_pic)
        listed = int(video.frames or 0)  # 0 when the container has no index (Matroska)
        rate = video.average_rate or video.guessed_rate or 25
        times, keys, missing = [], set(), 0
        span = _Span()
        unreadable = []
        for packet in demux_resilient(container, on_end=unreadable.append, attempts=1 if strict else 8):
            if not packet.size:
                continue
            span.add(packet)
            if packet.stream.index != video.index:
                continue
            if packet.pts is None:
                missing += 1
                continue
            times.append(packet.pts)
            if packet.is_keyframe:
                keys.add(packet.pts)
        claimed = (
            container.duration / av.time_base
            if container.format.name.startswith("matroska") and container.duration
            else None
        )
    if unreadable:
        lost(f"unreadable data after {len(times) + missing} video packets ({one_line(unreadable[0])}): cut short")
    if missing and len(times) + missing > segment_frames:
        raise InputError(f"{path}: {missing} video packets have no timestamp, so the film cannot be cut into segments")
    if max_frames is None and not unreadable:
        if listed and len(times) + missing < listed:
            # The index promises more samples than the file holds: it was cut short.
            lost(f"truncated: the container lists {listed} video frames, the file holds {len(times) + missing}")
        elif claimed is not None and span.seconds < claimed - 2 / float(rate) - 0.05 * claimed:
            # Matroska writes the segment's duration into its header; a file cut short keeps the
            # claim but not the packets. Allow two frames and 5% for muxers' rounding.
            lost(f"truncated: the container says {claimed:.3f} s, the file holds {span.seconds:.3f} s")
    times.sort()  # presentation order
    if missing:  # a short film without timestamps: one segment, read from the start
        end = len(times) + missing if max_frames is None else min(len(times) + missing, max_frames)
        return Plan([Segment(0, 0, end, 0, None)], tuple(notes))
    end = len(times) if max_frames is None else min(len(times), max_frames)
    starts = [0]
    for i in range(1, end):
        if i - starts[-1] >= segment_frames and times[i] in keys:
            starts.append(i)
    bounds = starts + [end]
    windows = backward_windows(anchors, reach, end)

    def key_before(frame: int) -> int:
        while frame > 0 and times[frame] not in keys:
            frame -= 1
        return times[frame]

    def segment(index: int, first: int, last: int) -> Segment:
        end_pts = times[last] if last < len(times) else None
        frames_back = max([warmup] + [first - a for a in anchors if 0 < first - a <= reach])
        lead = first if first == 0 or frames_back < 1 else max(0, first - frames_back)
        back = carry_range(windows, lead, last)
        extra = (
            {}
            if back is None
            else {
                "back_frames": back,
                "back_pts": (
                    times[back[0]],
                    times[back[1] + 1] if back[1] + 1 < len(times) else None,
                    key_before(back[0]),
                ),
            }
        )
        if lead == first:
            return Segment(index, first, last - first, times[first], end_pts, **extra)
        return Segment(
            index, first, last - first, times[first], end_pts, times[lead], first - lead, key_before(lead), **extra
        )

    return Plan([segment(k, a, b) for k, (a, b) in enumerate(zip(bounds[:-1], bounds[1:]))], tuple(notes))


class _Span:
    """Seconds covered by a file's packets: from zero, or from the first packet if that is
    earlier (AAC priming starts below zero), to the end of the last one."""

    def __init__(self):
        self.start, self.end = 0.0, 0.0
        self._last: dict[int, int] = {}  # per stream

    def add(self, packet) -> None:
        if packet.pts is None or not packet.time_base:
            return
        # Matroska often leaves a block's duration unset: use the stream's last step.
        before = self._last.get(packet.stream.index)
        step = packet.duration or (packet.pts - before if before is not None and packet.pts > before else 0)
        self._last[packet.stream.index] = packet.pts
        self.end = max(self.end, float((packet.pts + step) * packet.time_base))
        self.start = min(self.start, float(packet.pts * packet.time_base))

    @property
    def seconds(self) -> float:
        return self.end - self.start
