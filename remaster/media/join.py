"""The join: the segments' video and the input's audio and subtitle packets, into the output.

Every run ends here (the run plan, plan.py): the segment files' video packets are remuxed in
film order and interleaved by time with every audio and subtitle packet of the input, copied
byte for byte (DESIGN promise 2), into a temporary file beside the output that is renamed into
place when complete (promise 5). Nothing is decoded or encoded, so memory stays flat.
"""

from __future__ import annotations

import heapq
import os
from fractions import Fraction
from pathlib import Path

import av

from remaster.atomic import temporary_path
from remaster.errors import OutputError, one_line
from remaster.faults import fault
from remaster.media.audio import PCM_INPUT_FORMAT, Track
from remaster.media.reader import VideoReader
from remaster.media.recover import demux_resilient
from remaster.media.writer import muxer_options


def join_segments(
    input: Path,
    output: Path,
    parts: list[tuple[Path, int]],
    tracks: list[Track],
    *,
    max_frames: int | None = None,
    force: bool = False,
) -> None:
    """Remux the segments' video and the input's audio/subtitle tracks into `output` (temporary
    name, then rename), each track as `tracks` (audio.plan_tracks) says: copied packet for
    packet, or decoded and stored as PCM. Packets are interleaved by time as they are read, so
    memory stays flat.

    `parts` are (segment file, pts of its first frame in the input's time base). Segments are
    written in the output's own container, so the join keeps exactly what a direct write keeps;
    but MP4/MOV store a segment's late start as an edit list in a millisecond movie time scale,
    so each segment's packets are put back at their true start here.
    """
    tmp = temporary_path(output)
    reader = VideoReader(input, max_frames=max_frames)
    source = av.open(str(input))  # a second demuxer for the packets: the reader has decoded ahead
    out = None
    try:
        end_seconds = None
        if max_frames is not None:  # a preview cuts the sound where the pictures end
            end_seconds = float((reader.first_pts or 0) * reader.time_base) + float(max_frames / reader.rate)
        out = av.open(str(tmp), "w", options=muxer_options(output, reader.time_base))  # as the segments were written
        kept = {t.index: t for t in tracks if t.action != "drop"}
        outputs, pcm = {}, {}
        with av.open(str(parts[0][0])) as head:
            template = head.streams.video[0]
            # Streams in the input's order (a file whose sound is stream #0 keeps it there).
            for stream in reader.container.streams:
                if stream.index == reader.video.index:
                    video = out.add_stream_from_template(template)
                    # The frame rate, as the encoder had it: the MOV muxer needs it to write a
                    # timecode track (a template copy leaves it unset, and muxing fails with EINVAL).
                    video.codec_context.framerate = reader.rate
                    video.metadata.update(template.metadata)
                    video.disposition = template.disposition
                    continue
                track = kept.get(stream.index)
                if track is None:
                    continue
                if track.action == "copy":
                    copy = out.add_stream_from_template(stream)
                else:
                    copy, pcm[stream.index] = _pcm_stream(out, stream, track.encoder)
                copy.metadata.update(stream.metadata)
                copy.disposition = stream.disposition
                outputs[stream.index] = copy
        out.metadata.update({k: v for k, v in reader.container.metadata.items() if k not in ("encoder", "major_brand")})

        def video_packets():
            for part, start_pts in parts:
                with av.open(str(part)) as container:
                    stream = container.streams.video[0]
                    head = [p for _, p in zip(range(64), container.demux(stream)) if p.size and p.pts is not None]
                    shift = 0
                    if head:
                        expected = round(Fraction(start_pts) * reader.time_base / Fraction(stream.time_base))
                        shift = expected - min(p.pts for p in head)
                    container.seek(0, stream=stream, backward=True)
                    for packet in container.demux(stream):
                        if packet.size:
                            if shift:
                                packet.pts = packet.pts + shift if packet.pts is not None else None
                                packet.dts = packet.dts + shift if packet.dts is not None else None
                            yield packet

        def other_packets():
            if not outputs:
                return
            for packet in demux_resilient(
                source, *[source.streams[i] for i in outputs]
            ):  # as far as the file can be read
                index = packet.stream.index
                if index in pcm:  # decoded, repacked without loss, encoded as PCM (the flush too)
                    yield from pcm[index](packet, end_seconds)
                    continue
                if not packet.size:
                    continue
                if (
                    end_seconds is not None
                    and packet.pts is not None
                    and float(packet.pts * packet.time_base) >= end_seconds
                ):
                    continue
                yield packet

        def when(packet):
            t = packet.dts if packet.dts is not None else packet.pts
            return Fraction(t or 0) * Fraction(packet.time_base)

        count = 0
        for packet in heapq.merge(video_packets(), other_packets(), key=when):
            if packet.stream not in (video, *outputs.values()):
                packet.stream = outputs[packet.stream.index] if packet.stream.type != "video" else video
            out.mux(packet)
            count += 1
            fault(f"join {count}")
        out.close()
        out = None
        if output.exists() and not force:
            raise OutputError(f"{output}: already exists (use --force to overwrite)")
        os.replace(tmp, output)
    except av.FFmpegError as error:
        raise OutputError(f"{output}: joining the segments failed: {one_line(error)}") from None
    finally:
        if out is not None:
            try:
                out.close()
            except Exception:
                pass
        tmp.unlink(missing_ok=True)
        source.close()
        reader.close()


def _pcm_stream(out, stream, encoder: str):
    """An output stream storing `stream`'s decoded samples as `encoder` PCM, and the function
    that turns one of its packets (None-sized at the end: the flush) into PCM packets."""
    ctx = stream.codec_context
    fmt = PCM_INPUT_FORMAT[encoder]
    layout = ctx.layout
    usual = {1: "mono", 2: "stereo", 6: "5.1", 8: "7.1"}.get(len(layout.channels))
    if layout.name == f"{len(layout.channels)} channels" and usual:
        # Channels of unknown order (AVI's ADPCM, say): MP4 needs a named layout, so they are
        # labelled with the usual one for their count; the samples themselves do not change.
        layout = av.AudioLayout(usual)
    pcm = out.add_stream(encoder, rate=ctx.sample_rate, layout=layout)
    pcm.codec_context.format = fmt
    # Planar to packed of the same sample type and rate: a copy of the samples, not a conversion.
    repack = av.AudioResampler(format=fmt, layout=layout, rate=ctx.sample_rate)

    def convert(packet, end_seconds):
        frames = packet.decode() if packet.size else [*packet.decode(), None]  # an empty packet flushes
        for frame in frames:
            if (
                frame is not None
                and end_seconds is not None
                and frame.pts is not None
                and float(frame.pts * frame.time_base) >= end_seconds
            ):
                continue
            for repacked in repack.resample(frame):
                yield from pcm.encode(repacked)
            if frame is None:
                yield from pcm.encode(None)

    return pcm, convert
