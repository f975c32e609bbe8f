"""The one frame loop: one segment of the run plan, from decoded luma to an encoded file.

    decode thread ──► FrameBatch ──► chain of stages ──► assemble ──► encode thread
    (VideoReader)     (luma codes)   (stages.Chain)      (frames)     (VideoWriter)

The decode and encode threads come from `prefetch` / `Sink` (the one thread primitive); the
calling thread runs the stages. Queues are bounded (`queue_depth` batches each way), so memory
depends on the batch size and the queue depth, never on the film's length (DESIGN promise 4).

Every execution of a run goes through `run_segment`, once per segment: one process in order,
`--resume` after a stop, several workers. It needs nothing but its arguments, so where and when
it runs does not change what it writes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from remaster.errors import InputError
from remaster.faults import fault
from remaster.media.assemble import assemble_chroma_async
from remaster.media.reader import VideoReader
from remaster.media.writer import VideoWriter
from remaster.prefetch import Sink, prefetch
from remaster.run.plan import Segment
from remaster.timing import StageTimer


@dataclass
class SegmentResult:
    """What a segment held, as the decoder gave it. Frame numbers count from the segment's first
    frame: the film's numbers follow once every segment's count is known (journal.py), because
    the decoder's count may differ from the packets' (hidden frames, damage)."""

    frames: int
    damaged: list[int]  # undecodable (repeated) or concealed
    resized: list[list]  # runs [first frame, count, "WxH pix_fmt"] fitted to the film's format
    cut_short: list | None = None  # [frames, why] where unreadable data ended the file
    retimed: int = 0  # frames whose timestamp had to be made up
    seconds: dict[str, float] = field(default_factory=dict)  # decode, assemble, encode (stages: the chain's)


def _encode(writer):
    def write(item) -> None:
        batch, codes, ready = item
        if ready is not None:
            ready()  # the chroma's copy from the GPU has landed (waits in the encode thread only)
        writer.write(batch, codes)

    return write


def run_segment(
    input: Path, segment: Segment, destination: Path, chain, config, layout, *, on_frames=None
) -> SegmentResult:
    """Colorize `segment` of `input` into `destination` (video only, in the output's container;
    renamed into place and synced when complete). The chain is reset first and warmed up on the
    segment's lead frames, so the result depends only on the segment, the chain and the config.
    `on_frames(n)` is called as frames are handed to the encoder (progress)."""
    first = segment.first_frame == 0
    reader = VideoReader(
        input,
        max_frames=config.pipeline.max_frames if first else None,
        strict=config.pipeline.strict,
        decoder=getattr(config.pipeline, "decoder", "cpu"),
    )
    writer = backward = batches = None
    timings: dict[str, float] = {"decode": 0.0}
    on_gpu = chain.device.type == "cuda"
    timer = StageTimer(chain.device, names=["assemble"])  # CUDA events on the GPU (timing.py)
    try:
        reader.seek(
            segment.start_pts,
            segment.end_pts,
            lead_pts=segment.lead_pts,
            sync_pts=segment.sync_pts,
            rewind=not first,
            tail=chain.ahead,
        )
        writer = VideoWriter(
            destination, reader, layout, codec=config.encode.codec, crf=config.encode.crf, preset=config.encode.preset
        )
        chain.reset()
        backward = _backward_carries(input, segment, chain, config, layout, destination.parent)
        frames = 0
        # On CUDA the decode thread puts the codes in pinned memory, so their copy to the GPU is asynchronous.
        batches = prefetch(
            lambda: reader.batches(config.colorize.batch_size, layout.chroma_size, timings, pin=on_gpu),
            depth=config.pipeline.queue_depth,
            name="decode",
        )
        with (
            batches,
            Sink(_encode(writer), finish=writer.finish, depth=config.pipeline.queue_depth, name="encode") as sink,
        ):
            number = 0  # batches written, for the test hook
            start = segment.first_frame - segment.lead_frames  # the film's number of the first frame read
            # Warm-up further back than the stages' own (a keyframe's carry from before the
            # segment) only follows the motion: the network's colors there are forgotten anyway.
            carry_only_before = segment.first_frame - chain.warmup_frames
            for work in chain.works(batches, start, carry_only_before):  # restored when asked; never tail batches
                batch = work.batch
                if batch.lead:
                    continue  # warm-up: only the state it leaves in the stages matters
                with timer("assemble"):
                    codes, ready = assemble_chroma_async(
                        work.luma, work.chroma, layout
                    )  # (N, 2, Hc, Wc) int16 on the CPU
                sink.put((batch, codes, ready))
                frames += len(batch)
                if on_frames is not None:
                    on_frames(len(batch))
                fault(f"segment {segment.index} batch {number}")
                number += 1
        if not frames:
            raise InputError(
                f"{input}: no decodable video frame from pts {segment.start_pts} (segment {segment.index})"
            )
        writer.commit(force=True, durable=True)
    except BaseException:
        if writer is not None:
            writer.discard()
        raise
    finally:
        if batches is not None:
            # The decode thread reads through `reader`: it stops before the file closes under it
            # (a Ctrl-C can land before the `with` block is entered, and then nothing else would
            # stop it: FFmpeg then demuxes a closed file and the process dies of SIGSEGV).
            batches.close()
        reader.close()
        if backward is not None:
            chain.stage("temporal").set_backward(None)
            backward.close()
    timings["assemble"] = timer.seconds["assemble"]  # waits for the GPU's last events, once per segment
    timings["encode"] = writer.seconds
    cut_short = list(reader.cut_short) if reader.cut_short else None
    if cut_short:
        cut_short[0] -= reader.lead_frames
    return SegmentResult(frames, list(reader.damaged), reader.resized, cut_short, reader.retimed, timings)


def _backward_carries(input: Path, segment: Segment, chain, config, layout, folder: Path):
    """The backward carries of the keyframes after the segment's frames (stages/keyframes/carry.py), computed from
    the frames the plan names (`segment.back_frames`, up to the last such keyframe, past the
    segment's end if need be) and handed to the temporal stage; None when none reach it."""
    temporal = chain.stage("temporal")
    if segment.back_frames is None or temporal is None or not temporal.keyframes:
        return None
    from remaster.stages.chain import Work
    from remaster.stages.keyframes.backward import backward_carries
    from remaster.stages.keyframes.window import backward_windows

    (a, b), (start, end, sync) = segment.back_frames, segment.back_pts
    size = tuple(next(iter(temporal.keyframes.values())).shape[-2:])
    windows = backward_windows(temporal.keyframes, temporal.config.keyframe_reach)

    def lumas():
        with VideoReader(input, strict=config.pipeline.strict) as reader:
            reader.seek(start, end, sync_pts=sync, rewind=a > 0)
            frame = a
            for batch in reader.batches(config.colorize.batch_size, layout.chroma_size):
                work = Work(batch, batch.luma(chain.device))
                fine = temporal.carry_flow_size(work.luma.shape[-2:], size)
                # (N, 1, h, w) and the flow's luma, as the frame loop sees them
                yield frame, work.luma_at(size), None if fine is None else work.luma_at(fine)
                frame += len(batch)

    carries = backward_carries(temporal, lumas(), windows, (a, b), folder)
    temporal.set_backward(carries)
    return carries
