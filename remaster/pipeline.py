"""`colorize_video`: a black-and-white film in, a colorized one out, with its luma, sound and time.

    plan (plan.py) ──► for each segment: run_segment (loop.py) ──► segment file ──► join (join.py)
                       decode ─► chain of stages ─► assemble ─► encode        + every audio packet

Every run follows its plan: the film is cut at keyframes into segments (one, for a short film),
each colorized by the one frame loop with a fresh encoder and the same warm-up, then the
segments are joined with the input's audio and subtitle packets. The stages are built once per
run. Finished segments are journaled in a work folder beside the output (journal.py), so a run
stopped in any way continues with `resume=True`, and the film is the same, frame for frame and
packet for packet, however the run was executed.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from .audio import plan_tracks
from .config import VideoConfig, available_presets, load_preset, make_config
from .encoding import choose_layout
from .errors import ConfigError, OutputError, RemasterError
from .files import sha256_of
from .join import join_segments
from .journal import Journal, identity, kept_message, remove_stale_partials
from .lock import DestinationLock
from .loop import fault, run_segment
from .plan import plan_segments
from .progress import Progress
from .reader import VideoReader
from .report import RunReport, build_report, damage_notice, loss_notice, size_notice, stream_notices
from .stages import build_chain
from .writer import VideoWriter, check_destination


def colorize_video(input, output, config: VideoConfig | None = None, *, force: bool = False, resume: bool = False,
                   progress: bool = True, colorizer=None, keyframes=None) -> RunReport:  # fmt: skip
    """Colorize the video `input` into `output`, keeping its luma, sound and timing.

    `keyframes`: a folder of color images of some frames (keyframes.py); their colors are
    carried forward along the motion through their shots.

    `force` overwrites an existing output (and drops an interrupted run's work); `resume`
    continues an interrupted run from its finished segments. Pass a `Colorizer` to reuse one.
    Raises `InputError` for a bad input and `OutputError` for an output that cannot or must not
    be written; the destination is then untouched.
    """
    config = config or VideoConfig()
    input, output = Path(input), Path(output)
    started = time.perf_counter()
    check_destination(input, output, force)
    lock = DestinationLock(output)  # one writer per output: a second run refuses
    lock.acquire()
    threads = torch.get_num_threads()
    journal = None
    joined = False  # True once the complete film is at the destination
    try:
        remove_stale_partials(output)  # of runs killed before they could clean up (we hold the lock)
        with VideoReader(input, max_frames=config.pipeline.max_frames, strict=config.pipeline.strict) as reader:
            layout = choose_layout(reader.source, config.encode.codec)
            notices = config.warnings(output) + stream_notices(reader, layout)
            # Preflight: the output container takes every stream and the encoder starts. Fail
            # now, not after hours, when the segments are joined.
            preflight = VideoWriter(output, reader, layout, codec=config.encode.codec, crf=config.encode.crf, preset=config.encode.preset)
            encoder = preflight.describe()
            preflight.discard()
            tracks = plan_tracks(str(input), reader.copy_streams, preflight.supported, preflight.container_name, output.name, config.encode.audio)
            notices += [note for track in tracks if (note := track.note(input.name))]
            source, source_format = reader.describe(), reader.source
        if colorizer is None:
            from .model import Colorizer

            c = config.colorize
            colorizer = Colorizer.load(c.model, device=c.device, working_short_side=c.working_short_side)
        if colorizer.device.type == "cpu" and config.colorize.cpu_threads:
            torch.set_num_threads(config.colorize.cpu_threads)  # restored below: a library must not keep it
        chain = build_chain(config, colorizer)
        temporal = chain.stage("temporal")
        if config.temporal.flow == "auto" and temporal is not None and progress:  # DESIGN: auto says which it picked
            print(f"remaster: flow provider: {temporal.provider_name}", file=sys.stderr)
        p = config.pipeline
        plan = plan_segments(input, p.segment_frames, p.max_frames, warmup=chain.warmup_frames, strict=p.strict)
        notices += plan.notes
        placed = []
        if keyframes is not None:  # read and placed before any work: every problem is one line now
            placed = _keyframes(keyframes, input, source_format, plan.frames, colorizer, temporal)
            anchors = tuple(k.frame for k in placed)
            plan = plan_segments(input, p.segment_frames, p.max_frames, warmup=chain.warmup_frames, strict=p.strict, anchors=anchors,
                                 reach=config.temporal.keyframe_reach)  # fmt: skip
        options = config.to_dict() | {"keyframes": [k.describe() | {"sha256": sha256_of(k.path)} for k in placed]}
        ident = identity(input, options, colorizer.describe(), plan.segments)
        journal = Journal.open(output, ident, resume=resume, force=force)
        resumed = len(journal.done)
        bar = Progress(plan.frames, output.name, enabled=progress, done=sum(d["frames"] for d in journal.done.values()))
        stage_seconds: dict[str, float] = {"decode": 0.0}
        made = 0
        try:
            for segment in journal.pending():
                result = run_segment(input, segment, journal.segment_path(segment), chain, config, layout, on_frames=bar.update)
                journal.record(segment, result)  # the segment now counts as done
                fault(f"segment-done {segment.index}")
                made += result.frames
                for name, seconds in result.seconds.items():
                    stage_seconds[name] = stage_seconds.get(name, 0.0) + seconds
        finally:
            bar.close()
        t = time.perf_counter()
        join_segments(input, output, journal.parts(), tracks, max_frames=config.pipeline.max_frames, force=force)
        joined = True
        stage_seconds["join"] = time.perf_counter() - t
        journal.remove()
    except KeyboardInterrupt:
        if not joined and journal is not None and journal.done:
            raise OutputError(kept_message(output, "interrupted")) from None
        if not joined:
            if journal is not None:
                journal.remove()  # nothing finished: nothing to keep
            raise
        # The film is complete at the destination: a Ctrl-C this late only cut the cleanup short.
        journal.remove()
    except RemasterError as error:
        if journal is not None and not joined:
            raise type(error)(f"{error} ({_stopped(journal, output, 'stopped')})") from None
        raise
    finally:
        torch.set_num_threads(threads)
        lock.release()
    seconds = {"decode": stage_seconds.pop("decode"), **chain.seconds, **stage_seconds}  # in pipeline order
    damaged = journal.damaged()
    return build_report(
        input=input, output=output, config=config, frames=journal.frames, made=made, seconds=time.perf_counter() - started,
        segments=len(plan.segments), resumed=resumed, stage_seconds=seconds, colorizer=colorizer, chain=chain, encoder=encoder,
        layout=layout, source=source, damaged=damaged, keyframes=[k.describe() for k in placed],
        notices=notices + damage_notice(input, damaged) + size_notice(input, source_format, journal.resized())
        + loss_notice(input, journal.cut_short(), journal.retimed()),
    )  # fmt: skip


def _keyframes(folder, input: Path, source, frames: int, colorizer, temporal) -> list:
    """The colorist's keyframes, placed on the film's frames and handed to the temporal stage at
    the network's working size (a keyframe at 4K would hold 66 MB; at 256 px, under 1 MB)."""
    from .keyframes import read_keyframes

    if temporal is None:
        raise ConfigError("keyframes are carried along the film's motion: use --flow dis or raft (not none), and a strength above 0")

    def film_lumas():  # only read when some keyframe must be matched by content
        with VideoReader(input) as reader:
            for batch in reader.batches(8, (1, 1)):
                yield batch.index, batch.luma()  # (N, 1, H, W)

    placed = read_keyframes(folder, width=source.width, height=source.height, frames=frames, matrix=source.matrix, film_lumas=film_lumas)
    size = colorizer.working_size(source.height, source.width)
    small = lambda t: F.interpolate(t, size=size, mode="bilinear", antialias=True, align_corners=False)  # noqa: E731
    temporal.set_keyframes({k.frame: small(k.chroma) for k in placed}, {k.frame: small(k.luma) for k in placed})
    return placed


def _stopped(journal: Journal | None, output: Path, what: str) -> str:
    """A stop before the join: finished segments are kept for --resume; with none, nothing is."""
    if journal is not None and not journal.done:
        journal.remove()  # nothing worth keeping: leave the folder as it was
    return kept_message(output, what)


__all__ = ["VideoConfig", "RunReport", "colorize_video", "load_preset", "make_config", "available_presets"]
