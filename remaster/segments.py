"""Segments: durable progress for long runs (`remaster colorize --resume`), and the unit of work
that can later spread one film over several GPUs or machines.

A long film is cut at input keyframes into segments of about `segment_frames` frames. Each is
colorized into its own file in a work folder beside the output (`.NAME.remaster-work/`), written
to a temporary name, synced and renamed, and only then recorded in a small journal together with
the temporal stage's state at its end. When every segment is done, a remux joins their video
packets with the input's audio and subtitle packets (stream copy) into the output, which appears
by rename as always. A run stopped in any way (Ctrl-C, kill -9, power cut, full disk) is continued
with `--resume` from the last finished segment, so at most one segment is done twice.

Why identical: a segment's output depends only on its inputs (the film, its frame range, the
model and options, and the temporal state it starts from): its batches restart at the segment's
first frame in every run, and the state handed from one segment to the next is the same tensors
whether it stayed in memory or went through the journal. So on the CPU a resumed film equals an
uninterrupted one frame for frame, and the temporal stage shows no seam at the joins: it
continues from the exact state it had (`TemporalStage.state()` / `load_state()`).
"""

from __future__ import annotations

import dataclasses
import heapq
import json
import os
import shutil
import signal
import sys
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import SimpleNamespace

import av
import torch
import torch.nn.functional as F

from .errors import InputError, OutputError, RemasterError
from .frames import assemble_chroma
from .encoding import choose_layout
from .reader import VideoReader
from .writer import VideoWriter, check_destination, temporary_path
from .lock import DestinationLock
from .prefetch import Sink, prefetch

JOURNAL_VERSION = 1


@dataclass(frozen=True)
class Segment:
    index: int
    first_frame: int  # frame number of its first frame in the film
    frames: int
    start_pts: int  # pts of its first frame: a keyframe of the input, so decoding can start there
    end_pts: int | None  # pts of the next segment's first frame; None: to the end
    # A keyframe at least `warmup` frames before the start: where a segment processed without its
    # predecessor's state (another GPU or machine) warms the temporal stage up. None: first one.
    warmup_pts: int | None = None


def work_folder(output: Path) -> Path:
    return output.with_name(f".{output.name}.remaster-work")


def _fault(point: str) -> None:
    """Test hook: `REMASTER_KILL_AT=POINT` kills this process with SIGKILL at POINT, to prove
    that a run stopped there resumes (tests/test_resume.py). Nothing happens otherwise."""
    if os.environ.get("REMASTER_KILL_AT") == point:
        os.kill(os.getpid(), signal.SIGKILL)


def plan_segments(path: Path, segment_frames: int, max_frames: int | None = None, warmup: int = 32) -> list[Segment]:
    """Cut the film at keyframes into segments of at least `segment_frames` frames (the last may
    be shorter). Reads packets only (no decoding): seconds for a feature film."""
    if segment_frames < 1:
        raise ValueError(f"segment_frames must be >= 1, got {segment_frames}")
    with av.open(str(path)) as container:
        video = next(s for s in container.streams.video if not s.disposition & av.stream.Disposition.attached_pic)
        listed = int(video.frames or 0)
        times, keys, missing = [], set(), 0
        for packet in container.demux(video):
            if not packet.size:
                continue
            if packet.pts is None:
                missing += 1
                continue
            times.append(packet.pts)
            if packet.is_keyframe:
                keys.add(packet.pts)
    if missing:
        raise InputError(f"{path}: {missing} video packets have no timestamp, so the film cannot be cut into segments; run without --resume")
    if listed and max_frames is None and len(times) < listed:
        raise InputError(f"{path}: truncated: the container lists {listed} video frames, the file holds {len(times)}")
    times.sort()  # presentation order
    end = len(times) if max_frames is None else min(len(times), max_frames)
    starts = [0]
    for i in range(1, end):
        if i - starts[-1] >= segment_frames and times[i] in keys:
            starts.append(i)
    bounds = starts + [end]

    def warmup_pts(first: int) -> int | None:
        if first == 0:
            return None
        back = max(0, first - warmup)
        while back > 0 and times[back] not in keys:
            back -= 1
        return times[back]

    return [
        Segment(k, a, b - a, times[a], times[b] if b < len(times) else None, warmup_pts(a))
        for k, (a, b) in enumerate(zip(bounds[:-1], bounds[1:]))
    ]


def process_segment(input: Path, segment: Segment, destination: Path, config, colorizer, state: dict | None = None) -> dict:
    """Colorize one segment of `input` into `destination` (video only). Needs nothing but its
    arguments, so segments can run anywhere; returns {"frames", "state" (at its end), "damaged"
    (frame numbers in the segment)}.

    The temporal stage starts from `state`, the previous segment's end state: exact, as if the
    film had never been cut (how a single machine and `--resume` run). Without it, it warms up on
    the frames from `segment.warmup_pts` to the start (colorized, not written): its carried color
    then differs from the exact one by at most strength^frames (0.8^32 = 0.1%), so no seam shows
    where independently processed segments meet.
    """
    from .pipeline import _make_temporal

    reader = VideoReader(input)
    writer = None
    try:
        reader.seek(segment.start_pts, segment.end_pts)
        layout = choose_layout(reader.source, config.codec)
        writer = VideoWriter(destination, reader, layout, codec=config.codec, crf=config.crf, preset=config.preset)
        device = colorizer.device
        temporal = _make_temporal(config, device)
        temporal.load_state(state or {})
        if state is None and segment.warmup_pts is not None and temporal.provider is not None:
            _warm_up(input, segment, config, colorizer, temporal, layout)
        frames = 0
        batches = prefetch(lambda: reader.batches(config.batch_size, layout.chroma_size), depth=config.queue_depth, name="decode")
        sink = Sink(lambda item: writer.write(*item), finish=writer.finish, depth=config.queue_depth, name="encode")
        with batches, sink:
            for number, batch in enumerate(batches):
                if not len(batch):
                    continue
                luma = batch.luma(device)  # (N, 1, H, W)
                chroma = colorizer.chroma(luma, matrix=batch.source.matrix)  # (N, 2, h, w)
                if temporal.provider is not None:
                    small = F.interpolate(luma, size=chroma.shape[-2:], mode="bilinear", antialias=True, align_corners=False)  # (N, 1, h, w)
                    chroma = temporal(small, chroma)  # (N, 2, h, w)
                sink.put((batch, assemble_chroma(luma, chroma, layout)))  # (N, 2, Hc, Wc) codes
                frames += len(batch)
                _fault(f"segment {segment.index} batch {number}")
        if frames != segment.frames:
            raise InputError(f"{input}: segment {segment.index} should hold {segment.frames} frames from pts {segment.start_pts}, decoding gave {frames}")
        writer.commit(force=True)
        _fsync(destination)
    except BaseException:
        if writer is not None:
            writer.discard()
        raise
    finally:
        reader.close()
    return {"frames": frames, "state": temporal.state(), "damaged": list(reader.damaged)}


def _warm_up(input: Path, segment: Segment, config, colorizer, temporal, layout) -> None:
    with VideoReader(input) as reader:
        reader.seek(segment.warmup_pts, segment.start_pts)
        for batch in reader.batches(config.batch_size, layout.chroma_size):
            if len(batch):
                luma = batch.luma(colorizer.device)  # (N, 1, H, W)
                chroma = colorizer.chroma(luma, matrix=batch.source.matrix)  # (N, 2, h, w)
                small = F.interpolate(luma, size=chroma.shape[-2:], mode="bilinear", antialias=True, align_corners=False)
                temporal(small, chroma)  # output dropped: only the state it leaves matters


def _fsync(path: Path) -> None:
    """Data, then the folder entry, on disk: after a power cut a journaled file is whole."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_atomic(path: Path, data: bytes) -> None:
    """Write, sync, rename: the old version or the new one, never half of one."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        _fsync(path)
    except OSError as error:  # a full disk, a file-size limit, a folder gone read-only
        tmp.unlink(missing_ok=True)
        reason = (error.strerror or type(error).__name__).lower()
        raise OutputError(f"{path}: writing the work folder failed: {reason}") from None


def _save_state(path: Path, state: dict) -> None:
    from safetensors.torch import save

    _write_atomic(path, save({k: v.contiguous() for k, v in state.items()}))


def _load_state(path: Path) -> dict:
    from safetensors.torch import load_file

    return dict(load_file(str(path)))


def _identity(input: Path, config, colorizer, segment_frames: int) -> dict:
    """What a journal must match to be continued: the same film, model and options."""
    stat = input.stat()
    options = {k: v for k, v in dataclasses.asdict(config).items() if k not in ("force",)}
    model = colorizer.describe()
    return {
        "version": JOURNAL_VERSION,
        "input": {"path": str(input.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns},
        "options": json.loads(json.dumps(options, default=str)),
        "model": {"name": model.get("model"), "sha256": model.get("sha256"), "parameters": model.get("parameters")},
        "segment_frames": segment_frames,
    }


def remove_stale_partials(output: Path) -> None:
    """Temporary outputs of runs that died (kill -9, power cut). Only call while holding the
    output's lock: then no live run is writing any of them."""
    for path in output.parent.glob(f".{output.stem}.partial-*{output.suffix}"):
        path.unlink(missing_ok=True)


def colorize_segmented(input, output, config, *, progress: bool = True, colorizer=None, resume: bool = False) -> dict:
    """`colorize_video` in segments with durable progress; see the module's docstring."""
    from .pipeline import damage_notice, stream_notices

    input, output = Path(input), Path(output)
    started = time.perf_counter()
    check_destination(input, output, config.force)
    work = work_folder(output)
    lock = DestinationLock(output)
    lock.acquire()
    threads = torch.get_num_threads()
    working = False  # True once this run works in the folder: then a stop keeps it for --resume
    joined = False  # True once the complete film is at the destination
    try:
        remove_stale_partials(output)
        with VideoReader(input, max_frames=config.max_frames) as reader:
            layout = choose_layout(reader.source, config.codec)
            dropped = stream_notices(reader, layout)
            # Preflight: the output container takes every stream and the encoder starts. Fail
            # now, not after hours, when the segments are joined.
            VideoWriter(output, reader, layout, codec=config.codec, crf=config.crf, preset=config.preset).discard()
            source = reader.describe()
        if colorizer is None:
            from .model import Colorizer

            colorizer = Colorizer.load(config.model, device=config.device, working_short_side=config.working_short_side)
        if colorizer.device.type == "cpu" and config.cpu_threads:
            torch.set_num_threads(config.cpu_threads)  # as in colorize_video; restored below
        from .pipeline import _make_temporal

        provider = _make_temporal(config, colorizer.device).provider_name  # what `auto` resolves to here
        if config.flow == "auto" and progress:  # DESIGN: auto says which provider it picked
            print(f"remaster: flow provider: {provider}", file=sys.stderr)
        segment_frames = config.segment_frames or 500
        segments = plan_segments(input, segment_frames, config.max_frames)
        identity = _identity(input, config, colorizer, segment_frames)
        journal_path = work / "journal.json"
        if work.exists() and journal_path.exists():
            journal = json.loads(journal_path.read_text())
            if not resume and not config.force:
                raise OutputError(
                    f"{output}: an interrupted run left its work in {work.name}; continue it with --resume, "
                    "or use --force to start over"
                )
            if resume and journal.get("identity") != identity:
                changed = sorted(k for k in identity if journal.get("identity", {}).get(k) != identity[k])
                raise OutputError(
                    f"{output}: the work in {work.name} was made from a different {', '.join(changed)}; "
                    "rerun with the same input, model and options, or use --force to start over"
                )
            if not resume:
                shutil.rmtree(work)
        if not work.exists() or not journal_path.exists():
            try:
                work.mkdir(exist_ok=True)
            except OSError as error:
                raise OutputError(f"{work}: cannot create the work folder: {(error.strerror or '').lower()}") from None
            journal = {"identity": identity, "segments": [dataclasses.asdict(s) for s in segments], "done": []}
            _write_atomic(journal_path, json.dumps(journal, indent=1).encode())
        done = journal["done"]
        resumed_from = len(done)
        working = True
        suffix = output.suffix
        state = None
        if done and done[-1].get("state"):
            state = _load_state(work / done[-1]["state"])
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=sum(s.frames for s in segments), unit="frame", desc=output.name, dynamic_ncols=True)
            bar.update(sum(d["frames"] for d in done))
        damaged: list[int] = [f for d in done for f in d["damaged"]]
        colorize_seconds = 0.0
        try:
            for segment in segments[len(done) :]:
                path = work / f"segment-{segment.index:05d}{suffix}"
                t = time.perf_counter()
                result = process_segment(input, segment, path, config, colorizer, state)
                colorize_seconds += time.perf_counter() - t
                state = result["state"]
                state_name = None
                if state:
                    state_name = f"state-{segment.index:05d}.safetensors"
                    _save_state(work / state_name, state)
                damaged += [segment.first_frame + f for f in result["damaged"]]
                done.append({"index": segment.index, "file": path.name, "frames": result["frames"], "state": state_name,
                             "damaged": [segment.first_frame + f for f in result["damaged"]]})  # fmt: skip
                _write_atomic(journal_path, json.dumps(journal, indent=1).encode())  # the segment now counts as done
                _fault(f"segment-done {segment.index}")
                if bar is not None:
                    bar.update(result["frames"])
        finally:
            if bar is not None:
                bar.close()
        t = time.perf_counter()
        _join(input, output, [(work / d["file"], segments[d["index"]].start_pts) for d in done], config)
        join_seconds = time.perf_counter() - t
        joined = True
        shutil.rmtree(work, ignore_errors=True)
    except KeyboardInterrupt:
        if not joined:
            raise OutputError(_kept(output, work, _finished(work) if working else (0, 0), "interrupted")) from None
        # The film is complete at the destination: a Ctrl-C this late only cut the cleanup short.
        shutil.rmtree(work, ignore_errors=True)
    except RemasterError as error:
        if working and work.exists():
            raise type(error)(f"{error} ({_kept(output, work, _finished(work), 'stopped')})") from None
        raise
    finally:
        torch.set_num_threads(threads)
        lock.release()
    frames = sum(s.frames for s in segments)
    seconds = time.perf_counter() - started
    damage = SimpleNamespace(path=input, damaged=sorted(set(damaged)))  # what damage_notice reads

    return {
        "input": str(input),
        "output": str(output),
        "frames": frames,
        "seconds": round(seconds, 3),
        "fps": round(frames / seconds, 2) if seconds else None,
        "segments": len(segments),
        "segments_resumed": resumed_from,  # segments finished by earlier runs
        "stage_seconds": {"segments": round(colorize_seconds, 3), "join": round(join_seconds, 3)},
        "stage_fps": {"segments": round(frames / colorize_seconds, 1) if colorize_seconds else None},
        "model": colorizer.describe(),
        "device": str(colorizer.device),
        "flow_provider": provider,
        "encoder": {"codec": config.codec, "encoder": config.codec},
        "source": source,
        "damaged_frames": len(damage.damaged),
        "notices": dropped + damage_notice(damage),
        "config": dataclasses.asdict(config),
    }


def _finished(work: Path) -> tuple[int, int]:
    """(segments finished, segments planned) as the journal on disk has them: the truth a
    `--resume` will see, whatever the interrupted code was doing."""
    try:
        journal = json.loads((work / "journal.json").read_text())
        return len(journal["done"]), len(journal["segments"])
    except (OSError, ValueError, KeyError):
        return 0, 0


def _kept(output: Path, work: Path, finished: tuple[int, int], what: str) -> str:
    done, total = finished
    if total:
        return f"{what}; nothing was written to {output.name}; {done} of {total} segments are kept in {work.name}: rerun with --resume to continue"
    return f"{what}; nothing was written to {output.name}"


def _join(input: Path, output: Path, parts: list[tuple[Path, int]], config) -> None:
    """Remux the segments' video and the input's audio/subtitle packets into `output` (temporary
    name, then rename). Packets are interleaved by time as they are read, so memory stays flat.

    `parts` are (segment file, pts of its first frame in the input's time base). Segments are
    written in the output's own container, so the join keeps exactly what a direct write keeps;
    but MP4/MOV store a segment's late start as an edit list in a millisecond movie time scale,
    so each segment's packets are put back at their true start here.
    """
    tmp = temporary_path(output)
    reader = VideoReader(input, max_frames=config.max_frames)
    source = av.open(str(input))  # a second demuxer for the packets: the reader has decoded ahead
    out = None
    try:
        end_seconds = None
        if config.max_frames is not None:  # a preview cuts the sound where the pictures end
            first = reader._first
            end_seconds = float(first.pts * reader.time_base) + float(config.max_frames / reader.rate)
        out = av.open(str(tmp), "w")
        with av.open(str(parts[0][0])) as head:
            template = head.streams.video[0]
            video = out.add_stream_from_template(template)
            video.metadata.update(template.metadata)
            video.disposition = template.disposition
        copies = {}
        for stream in reader.copy_streams:
            copy = out.add_stream_from_template(stream)
            copy.metadata.update(stream.metadata)
            copy.disposition = stream.disposition
            copies[stream.index] = copy
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
            if not reader.copy_streams:
                return
            for packet in source.demux(*[source.streams[s.index] for s in reader.copy_streams]):
                if not packet.size:
                    continue
                if end_seconds is not None and packet.pts is not None and float(packet.pts * packet.time_base) >= end_seconds:
                    continue
                yield packet

        def when(packet):
            t = packet.dts if packet.dts is not None else packet.pts
            return Fraction(t or 0) * Fraction(packet.time_base)

        count = 0
        for packet in heapq.merge(video_packets(), other_packets(), key=when):
            packet.stream = copies[packet.stream.index] if packet.stream.type != "video" else video
            out.mux(packet)
            count += 1
            _fault(f"join {count}")
        out.close()
        out = None
        if output.exists() and not config.force:
            raise OutputError(f"{output}: already exists (use --force to overwrite)")
        os.replace(tmp, output)
    except av.FFmpegError as error:
        raise OutputError(f"{output}: joining the segments failed: {str(error).splitlines()[0][:160]}") from None
    finally:
        if out is not None:
            try:
                out.close()
            except Exception:
                pass
        tmp.unlink(missing_ok=True)
        source.close()
        reader.close()
