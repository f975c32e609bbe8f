"""Video files: decoding into `FrameBatch`es, and encoding + muxing with every other stream copied.

`VideoReader` opens and checks an input (one-line `InputError`s for missing, empty, non-video,
truncated and corrupt files), decodes the first frame to learn its format, and then yields
batches; it runs in the decode thread. `VideoWriter` encodes assembled pictures and muxes them
with the input's audio and subtitle packets, copied byte for byte, into a temporary file beside
the destination that `commit()` renames into place (DESIGN promises 2, 3 and 5).
"""

from __future__ import annotations

import heapq
import os
import time
from collections import deque
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch

from .errors import ConfigError, InputError, OutputError
from .frames import (
    COLORSPACE_OF_MATRIX,
    RANGE_JPEG,
    RANGE_MPEG,
    FrameBatch,
    OutputLayout,
    SourceFormat,
    build_frame,
    code_dtype,
)

# Largest frame side we accept. 8192 covers DCI 8K and 8K full-aperture film scans; beyond it a
# batch of luma alone runs into gigabytes, and a header claiming more is far more often damage or
# a hostile file than a real 16K scan. Checked on the header's claim, before anything is decoded.
MAX_SIDE = 8192

# FFmpeg demuxers that read one still picture (a JPEG or PNG named .mp4 opens as a 1-frame "video").
_STILL_IMAGE_FORMATS = ("image2", "jpeg_pipe", "png_pipe", "webp_pipe", "tiff_pipe", "bmp_pipe", "gif", "j2k_pipe", "jpegxl_pipe")

CODECS = ("libx264", "libx265", "h264_nvenc", "hevc_nvenc", "prores", "ffv1")

# (bit depths, chroma subsamplings as log2 (x, y)) each encoder takes as planar input.
_SUB420, _SUB422, _SUB444 = (1, 1), (1, 0), (0, 0)
_ENCODER_FORMATS = {
    "libx264": ((8, 10), (_SUB420, _SUB422, _SUB444)),
    "libx265": ((8, 10, 12), (_SUB420, _SUB422, _SUB444)),
    "h264_nvenc": ((8,), (_SUB420, _SUB444)),
    "hevc_nvenc": ((8, 10), (_SUB420, _SUB444)),
    "prores": ((10,), (_SUB422, _SUB444)),
    "ffv1": ((8, 9, 10, 12, 14, 16), (_SUB420, _SUB422, _SUB444)),
}
# FFmpeg encoder behind each --codec name: prores_ks is FFmpeg's full-featured ProRes encoder.
_ENCODER_NAME = {"prores": "prores_ks"}
# x264-style --preset names to NVENC's p1 (fastest) .. p7 (best).
_NVENC_PRESETS = {"ultrafast": "p1", "superfast": "p1", "veryfast": "p2", "faster": "p3", "fast": "p3",
                  "medium": "p4", "slow": "p5", "slower": "p6", "veryslow": "p7", "placebo": "p7"}  # fmt: skip
_X26X_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow", "placebo")


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return text[:200]


def _ffmpeg_reason(error: BaseException) -> str:
    """PyAV errors read "[Errno N] Reason: 'context'"; keep the reason only."""
    text = getattr(error, "strerror", None) or _one_line(error)
    return str(text).rstrip(".").lower()


def _pts_to_seconds(pts, time_base) -> float:
    return float(pts * time_base) if pts is not None and time_base else 0.0


def _fraction(value) -> Fraction | None:
    if value is None:
        return None
    value = Fraction(value)
    return value if value > 0 else None


class VideoReader:
    """An opened, checked input video; iterate `batches()` (in the decode thread) once.

    Opening decodes up to the first picture, so format problems surface before any output exists.
    Audio and subtitle packets met while demuxing ride along with the batches (`passthrough`) so
    the writer can mux them in order; other streams (data, attachments, extra video) are listed
    in `skipped`.
    """

    def __init__(self, path: str | os.PathLike, *, max_frames: int | None = None):
        self.path = Path(path)
        self.max_frames = max_frames
        if not self.path.exists():
            raise InputError(f"{self.path}: no such file")
        if self.path.is_dir():
            raise InputError(f"{self.path}: is a folder, expected a video file")
        if self.path.stat().st_size == 0:
            raise InputError(f"{self.path}: empty file (0 bytes), expected a video")
        try:
            # Read-only by construction: av.open(..., "r") never creates or writes the file.
            self.container = av.open(str(self.path), "r", metadata_errors="ignore")
        except av.FFmpegError as error:
            raise InputError(f"{self.path}: not a readable video file ({_ffmpeg_reason(error)})") from None
        fmt = self.container.format.name.split(",")[0]
        if fmt in _STILL_IMAGE_FORMATS:
            self.container.close()
            raise InputError(f"{self.path}: is a still image ({fmt.removesuffix('_pipe')}), not a video; use `remaster image`")
        try:
            self._setup()
        except BaseException:
            self.container.close()
            raise

    def _setup(self) -> None:
        videos = [s for s in self.container.streams.video if not s.disposition & av.stream.Disposition.attached_pic]
        if not videos:
            kinds = sorted({s.type for s in self.container.streams}) or ["no streams"]
            raise InputError(f"{self.path}: no video stream (found {', '.join(kinds)})")
        self.video = videos[0]
        claimed = (self.video.codec_context.width or 0, self.video.codec_context.height or 0)
        if max(claimed) > MAX_SIDE:
            raise InputError(
                f"{self.path}: video stream claims {claimed[0]}x{claimed[1]} pixels; remaster handles frames up to "
                f"{MAX_SIDE} pixels a side"
            )
        self.span: tuple[int, int | None] | None = None  # set by seek()
        self.damaged: list[int] = []  # frame numbers that were undecodable (repeated) or concealed
        self._packet_end = 0.0  # latest end time (s) of any demuxed packet, to spot a cut-short file
        self._packet_start = 0.0  # earliest start (s), below zero for audio with encoder priming
        self.video.thread_type = "AUTO"  # frame + slice threads in FFmpeg's decoder
        self.copy_streams = [s for s in self.container.streams if s.type in ("audio", "subtitle")]
        self.skipped = [
            f"#{s.index} {s.type} ({s.codec_context.name if s.codec_context else 'unknown'})"
            for s in self.container.streams
            if s is not self.video and s not in self.copy_streams
        ]
        self.time_base = _fraction(self.video.time_base) or Fraction(1, 90000)
        self.rate = _fraction(self.video.average_rate) or _fraction(self.video.guessed_rate) or Fraction(25)
        self.sample_aspect_ratio = _fraction(self.video.codec_context.sample_aspect_ratio)
        self.listed_frames = int(self.video.frames or 0)  # 0 when the container has no index (mkv)
        self.frames_read = 0
        self.video_packets = 0
        self._pending: deque = deque()  # passthrough packets not yet handed out
        self._frames = self._decode()
        first = next(self._frames, None)
        if first is None:
            raise InputError(f"{self.path}: no decodable video frame")
        self._first = first
        try:
            self.source = SourceFormat.from_frame(first)
        except (ValueError, StopIteration) as error:
            raise InputError(f"{self.path}: unsupported pixel format {first.format.name} ({_one_line(error)})") from None
        self.tags = {
            "color_range": int(first.color_range or 0),
            "colorspace": int(first.colorspace or 2),
            "color_primaries": int(first.color_primaries or 2),
            "color_trc": int(first.color_trc or 2),
        }
        self.display_matrix = None
        for side in first.side_data:
            if side.type == av.sidedata.sidedata.Type.DISPLAYMATRIX:
                self.display_matrix = [int(v) for v in np.frombuffer(bytes(side), dtype="<i4")[:9]]
        self.rotation = int(first.rotation or 0)
        self._streams_copied = [f"#{st.index} {st.type} ({st.codec_context.name})" for st in self.copy_streams]

    @property
    def width(self) -> int:
        return self.source.width

    @property
    def height(self) -> int:
        return self.source.height

    @property
    def expected_frames(self) -> int | None:
        """Frames to expect, for progress: the index's count, else duration x rate."""
        total = self.listed_frames
        if not total and self.video.duration and self.video.time_base:
            total = round(float(self.video.duration * self.video.time_base) * float(self.rate))
        if not total and self.container.duration:
            total = round(self.container.duration / av.time_base * float(self.rate))
        if self.max_frames:
            total = min(total, self.max_frames) if total else self.max_frames
        return total or None

    def describe(self) -> dict:
        s = self.source
        return {
            "path": str(self.path),
            "size": [s.width, s.height],
            "pix_fmt": s.pix_fmt,
            "bit_depth": s.bit_depth,
            "range": "full" if s.full_range else "limited",
            "matrix": s.matrix,
            "rate": str(self.rate),
            "time_base": str(self.time_base),
            "rotation": self.rotation,
            "streams_copied": self._streams_copied,  # names kept: codec contexts die with the file
            "streams_skipped": self.skipped,
            "notes": list(s.notes),
        }

    def _decode(self):
        """Decoded video frames in order; passthrough packets are queued on the side.

        Damage mid-stream is not the end of the film (issue 4). A packet the decoder rejects after
        the first good picture is skipped; its picture is missing from the decoder's output, whose
        times we check against the packets' times: each time that never comes out gets the last
        good picture again, so frame count and timing hold, and its number goes to `damaged`.
        (Decoders report a bad packet late with frame threads and reorder with B-frames, so the
        loss is found from the times, not from where the error surfaced.) Pictures the decoder
        concealed (flagged corrupt) are kept, being the best there is, and counted too.
        """
        video_index = self.video.index
        last = None  # the last picture handed out
        pending: list[int] = []  # heap: pts of video packets whose picture has not come out yet
        last_pts: dict[int, int] = {}  # per stream, for packet end times

        def stand_ins(until):
            nonlocal last
            while pending and (until is None or pending[0] < until):
                lost = heapq.heappop(pending)
                if last is not None and (last.pts is None or lost > last.pts):
                    if self._in_span(lost):
                        self.damaged.append(self.frames_read)
                    last.pts = lost  # the consumer has read the picture already; reuse it
                    yield last

        try:
            for packet in self.container.demux(self.video, *self.copy_streams):
                if packet.pts is not None and packet.time_base and packet.size:
                    # Matroska often leaves a block's duration unset: use the stream's last step.
                    before = last_pts.get(packet.stream.index)
                    step = packet.duration or (packet.pts - before if before is not None and packet.pts > before else 0)
                    last_pts[packet.stream.index] = packet.pts
                    self._packet_end = max(self._packet_end, float((packet.pts + step) * packet.time_base))
                    self._packet_start = min(self._packet_start, float(packet.pts * packet.time_base))
                if packet.stream.index != video_index:
                    if packet.size:  # skip the demuxer's empty end-of-stream packets
                        self._pending.append(packet)
                    continue
                if packet.size:
                    self.video_packets += 1
                    if packet.pts is not None:
                        heapq.heappush(pending, packet.pts)
                try:
                    frames = packet.decode()  # an empty packet at the end flushes the decoder
                except av.FFmpegError:
                    if last is None:
                        raise  # nothing decoded yet: not a damaged film but an unreadable one
                    continue
                for frame in frames:
                    if frame.pts is not None:
                        if last is not None and last.pts is not None and frame.pts <= last.pts:
                            continue  # came out after its stand-in: its place is taken
                        yield from stand_ins(frame.pts)
                        if pending and pending[0] == frame.pts:
                            heapq.heappop(pending)
                    if frame.is_corrupt and self._in_span(frame.pts):
                        self.damaged.append(self.frames_read)
                    last = frame
                    yield frame
                del pending[256:]  # bounded even if a stream's frame and packet times never match
            yield from stand_ins(None)  # pictures lost at the very end
        except av.FFmpegError as error:
            raise InputError(
                f"{self.path}: corrupt or truncated video data after frame {self.frames_read} ({_ffmpeg_reason(error)})"
            ) from None
        if self.span is not None:
            return  # a segment read from the middle: the whole file was checked when it was planned
        if self.listed_frames and self.max_frames is None and self.video_packets < self.listed_frames:
            # The index promises more samples than the file holds: it was cut short.
            raise InputError(
                f"{self.path}: truncated: the container lists {self.listed_frames} video frames, "
                f"the file holds {self.video_packets}"
            )
        if self.max_frames is None and self.container.format.name.startswith("matroska") and self.container.duration:
            # Matroska writes the segment's duration into its header; a file cut short keeps the
            # claim but not the packets. Allow two frames and 5% for muxers' rounding. The claim
            # runs from zero, or from the first packet if that is earlier (AAC priming starts
            # below zero), to the end of the last packet.
            claimed = self.container.duration / av.time_base
            found = self._packet_end - self._packet_start
            if found < claimed - 2 / float(self.rate) - 0.05 * claimed:
                raise InputError(f"{self.path}: truncated: the container says {claimed:.3f} s, the file holds {found:.3f} s")

    def frames(self):
        """Decoded `av.VideoFrame`s in order, honouring max_frames (iterate once)."""
        if self._first is not None:
            first, self._first = self._first, None
            self.frames_read += 1
            yield first
        for frame in self._frames:
            if self.max_frames is not None and self.frames_read >= self.max_frames:
                return
            if self.span is not None and frame.pts is not None:  # a segment: [start, end) in pts
                if frame.pts < self.span[0]:
                    continue  # a leading picture of the keyframe's group: the previous segment's
                if self.span[1] is not None and frame.pts >= self.span[1]:
                    return
            self.frames_read += 1
            yield frame

    def _in_span(self, pts: int | None) -> bool:
        """Whether a picture belongs to what is read (damage outside a segment is not ours)."""
        if self.span is None or pts is None:
            return True
        return pts >= self.span[0] and (self.span[1] is None or pts < self.span[1])

    def seek(self, start_pts: int, end_pts: int | None = None) -> None:
        """Decode only the pictures with `start_pts <= pts < end_pts` (a segment; see segments.py),
        starting from the keyframe at `start_pts`. Pictures only: other streams join at the end."""
        self.copy_streams = []
        self._pending.clear()
        self._first = None
        # Aim a second early: containers without an index (MPEG-TS) seek by estimate and may land
        # past the keyframe; pictures before `start_pts` are decoded and dropped (cheap).
        margin = round(1 / self.time_base) if self.time_base else 0
        self.container.seek(max(start_pts - margin, 0), stream=self.video, backward=True)
        self.video.codec_context.flush_buffers()
        self._frames = self._decode()
        self.span = (start_pts, end_pts)

    def _take_packets(self, until_seconds: float | None = None) -> tuple:
        packets = []
        while self._pending:
            packets.append(self._pending.popleft())
        if until_seconds is not None:  # a frame-limited preview: keep only packets inside it
            packets = [p for p in packets if p.pts is None or _pts_to_seconds(p.pts, p.time_base) < until_seconds]
        return tuple(packets)

    def batches(self, batch_size: int, chroma_size: tuple[int, int], timings: dict | None = None):
        """Yield `FrameBatch`es of up to `batch_size` frames; the last one may carry only packets.

        `timings["decode"]` accumulates the seconds spent decoding and converting (not waiting).
        """
        if batch_size < 1:
            raise ConfigError(f"batch size must be >= 1, got {batch_size}")
        dtype = code_dtype(self.source.bit_depth)
        frames = self.frames()
        step = self.time_base and (1 / (self.rate * self.time_base))  # one frame in pts units
        last_pts = None
        end_seconds = None  # a frame-limited preview also cuts the copied streams there
        if self.max_frames is not None and self._first is not None:
            start = _pts_to_seconds(self._first.pts, self.time_base)
            end_seconds = start + float(self.max_frames / self.rate)
        done = False
        while not done:
            started = time.perf_counter()
            codes, pts = [], []
            for frame in frames:
                try:
                    codes.append(self.source.y_codes(frame))
                except ValueError as error:
                    raise InputError(f"{self.path}: frame {self.frames_read - 1}: {_one_line(error)}") from None
                # Decoders give best-effort timestamps; a stream without any gets a steady clock.
                value = frame.pts if frame.pts is not None else (0 if last_pts is None else round(last_pts + step))
                pts.append(value)
                last_pts = value
                if len(codes) == batch_size:
                    break
            else:
                done = True
            y = torch.from_numpy(np.stack(codes)[:, None]) if codes else torch.empty((0, 1, self.height, self.width), dtype=dtype)
            batch = FrameBatch(
                y=y,  # (N, 1, H, W) codes
                pts=tuple(int(p) for p in pts),
                time_base=self.time_base,
                source=self.source,
                chroma_size=chroma_size,
                index=self.frames_read - len(codes),
                passthrough=self._take_packets(end_seconds),
            )
            if timings is not None:
                timings["decode"] = timings.get("decode", 0.0) + time.perf_counter() - started
            if len(batch) or batch.passthrough:
                yield batch

    def close(self) -> None:
        self.container.close()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def choose_layout(source: SourceFormat, codec: str) -> OutputLayout:
    """The planar format we hand `codec`: the source's subsampling and depth where it takes them.

    Subsampled formats need even sizes in x264/x265/NVENC/ProRes, so odd-sized sources go 4:4:4
    (chroma is ours anyway; luma stays exact). Gray sources get 4:2:0 (4:2:2 for ProRes).
    """
    if codec not in _ENCODER_FORMATS:
        raise ConfigError(f"unknown codec {codec!r}: expected one of {', '.join(CODECS)}")
    depths, subsamplings = _ENCODER_FORMATS[codec]
    shift = source.chroma_shift if source.has_chroma and source.convert_to is None else _SUB420
    if shift not in subsamplings:
        shift = _SUB420 if _SUB420 in subsamplings else _SUB422
    odd = source.width % 2 or source.height % 2
    if odd and shift != _SUB444 and codec != "ffv1":
        shift = _SUB444
    depth = source.bit_depth if source.bit_depth in depths else min((d for d in depths if d >= source.bit_depth), default=max(depths))
    sub = {_SUB420: "420", _SUB422: "422", _SUB444: "444"}[shift]
    pix_fmt = f"yuv{sub}p" + ("" if depth == 8 else f"{depth}le")
    encoder_pix_fmt = pix_fmt
    if codec.endswith("_nvenc") and depth > 8:
        encoder_pix_fmt = "p010le" if shift == _SUB420 else "yuv444p16le"  # NVENC's 10-bit inputs
    return OutputLayout(pix_fmt, depth, source.full_range, source.matrix, shift, encoder_pix_fmt, source.width, source.height)


def encoder_options(codec: str, crf: int, preset: str, layout: OutputLayout) -> tuple[str, dict, list[str]]:
    """(FFmpeg encoder name, its options, notes on options it ignores)."""
    notes: list[str] = []
    if codec in ("libx264", "libx265"):
        if preset not in _X26X_PRESETS:
            raise ConfigError(f"--preset {preset!r} is not an {codec} preset: expected one of {', '.join(_X26X_PRESETS)}")
        options = {"crf": str(crf), "preset": preset}
        if codec == "libx264" and crf == 0:
            # CRF 0 is lossless only at 8 bits; QP 0 is lossless at every depth (x264 --qp 0).
            options = {"qp": "0", "preset": preset}
        if codec == "libx265":
            # x265's CRF 0 is not lossless; its lossless mode is a separate switch.
            options["x265-params"] = "log-level=error" + (":lossless=1" if crf == 0 else "")
        return codec, options, notes
    if codec.endswith("_nvenc"):
        nv_preset = _NVENC_PRESETS.get(preset, preset)
        if nv_preset not in {f"p{i}" for i in range(1, 8)}:
            raise ConfigError(f"--preset {preset!r} is not an NVENC preset: expected p1..p7 or an x264 preset name")
        # Constant quality: NVENC's analogue of CRF (-cq with VBR and no bitrate cap).
        return codec, {"rc": "vbr", "cq": str(max(crf, 1)), "b": "0", "preset": nv_preset}, notes
    if codec == "prores":
        notes.append("prores: --crf and --preset do not apply (quality is set by the profile)")
        return _ENCODER_NAME[codec], {"profile": "4" if layout.chroma_shift == _SUB444 else "3"}, notes
    if codec == "ffv1":
        notes.append("ffv1 is lossless: --crf and --preset do not apply")
        # Version 3 with slice CRCs: the archival profile (RFC 9043); intra-only for robust cuts.
        options = {"level": "3", "slicecrc": "1", "g": "1"}
        if min(layout.width, layout.height) < 32:
            # FFmpeg's automatic slice count cannot cut tiny frames (2x3 4:2:0 fails to open
            # with ENOSYS); one slice works at every size (tests/test_properties.py found it).
            options["slices"] = "1"
        return codec, options, notes
    raise ConfigError(f"unknown codec {codec!r}: expected one of {', '.join(CODECS)}")


def temporary_path(destination: Path) -> Path:
    """Beside the destination (same file system, so the final rename is atomic), same extension
    (FFmpeg picks the container from it), hidden so nobody mistakes it for the result."""
    return destination.with_name(f".{destination.stem}.partial-{os.getpid()}{destination.suffix}")


def check_destination(source: Path, destination: Path, force: bool) -> None:
    """One-line `OutputError`s for destinations we must not or cannot write."""
    if not destination.suffix:
        raise OutputError(f"{destination}: no file extension; name the container, e.g. .mp4, .mkv or .mov")
    if destination.exists():
        if destination.is_dir():
            raise OutputError(f"{destination}: is a folder, expected an output file name")
        if source.exists() and os.path.samefile(source, destination):
            raise OutputError(f"{destination}: is the input file; the input is never overwritten")
        if not force:
            raise OutputError(f"{destination}: already exists (use --force to overwrite)")
    if not destination.parent.exists():
        raise OutputError(f"{destination}: folder {destination.parent} does not exist")
    if not destination.parent.is_dir():
        raise OutputError(f"{destination}: {destination.parent} is a file, not a folder")


class VideoWriter:
    """Encodes pictures and muxes them with the reader's audio/subtitle streams, stream-copied.

    Everything is written to `temporary_path(destination)`; `commit()` renames it over the
    destination once the file is complete, `discard()` deletes it. Used from the encode thread.
    """

    def __init__(self, destination: str | os.PathLike, reader: VideoReader, layout: OutputLayout, *, codec: str = "libx264",
                 crf: int = 18, preset: str = "medium"):  # fmt: skip
        self.destination = Path(destination)
        self.reader = reader
        self.layout = layout
        self.codec = codec
        self.frames_written = 0
        self.seconds = 0.0  # time spent building frames, encoding and muxing
        encoder, options, self.notes = encoder_options(codec, crf, preset, layout)
        self.path = temporary_path(self.destination)
        try:
            # Create it ourselves first: FFmpeg opens the file only when the header is written,
            # and then reports a read-only or full folder as an encoder failure.
            self.path.open("wb").close()
        except OSError as error:
            reason = (error.strerror or type(error).__name__).lower()
            raise OutputError(f"{self.destination}: cannot create a file in {self.destination.parent} ({reason})") from None
        try:
            self.container = av.open(str(self.path), "w")
        except (av.FFmpegError, ValueError) as error:
            self.path.unlink(missing_ok=True)
            raise OutputError(
                f"{self.destination}: cannot write a {self.destination.suffix} file ({_one_line(error)}); use .mp4, .mkv or .mov"
            ) from None
        try:
            self._setup(encoder, options)
        except BaseException:
            self.discard()
            raise

    def _setup(self, encoder: str, options: dict) -> None:
        out = self.container
        fmt = out.format.name.split(",")[0]
        supported = out.supported_codecs
        if encoder not in supported:
            raise OutputError(f"{self.destination}: the {fmt} container cannot hold {encoder} video; use .mkv or .mov")
        # Refuse before any work if the container cannot hold a source stream: a silent drop of
        # a sound track is the one thing an archivist cannot forgive (DESIGN "encode").
        for stream in self.reader.copy_streams:
            name = stream.codec_context.name
            if name not in supported:
                fits = [ext for ext, f in ((".mkv", "matroska"), (".mov", "mov"), (".mp4", "mp4")) if _holds(f, name)]
                hint = f"write to {' or '.join(fits)} instead" if fits else "no common container holds it"
                raise OutputError(
                    f"{self.reader.path}: {stream.type} stream #{stream.index} ({name}) cannot be copied into the {fmt} "
                    f"container of {self.destination.name}; {hint}"
                )
        reader, layout = self.reader, self.layout
        self.copies = {}
        # Streams in the input's order (a file whose sound is stream #0 keeps it there); streams
        # we skip (data, attachments, extra video) are listed in the report.
        copied = {s.index for s in reader.copy_streams}
        for stream in reader.container.streams:
            if stream.index == reader.video.index:
                self.video = self._add_video(encoder, options)
            elif stream.index in copied:
                copy = out.add_stream_from_template(stream)
                copy.metadata.update(stream.metadata)
                copy.disposition = stream.disposition
                self.copies[stream.index] = copy
        self._description = {
            "codec": self.codec,
            "encoder": encoder,
            "pix_fmt": layout.encoder_pix_fmt,
            "options": dict(options),
            "container": out.format.name,
            "notes": self.notes,
        }
        out.metadata.update({k: v for k, v in reader.container.metadata.items() if k not in ("encoder", "major_brand")})
        try:
            out.start_encoding()  # opens the encoder and writes the header: fail now, not after an hour
        except (av.FFmpegError, ValueError) as error:
            hint = " (is there an NVIDIA GPU with a driver that has NVENC?)" if "nvenc" in encoder else ""
            raise OutputError(
                f"{self.destination}: cannot start the {encoder} encoder for {layout.encoder_pix_fmt} "
                f"{layout.width}x{layout.height}{hint}: {_ffmpeg_reason(error)}"
            ) from None

    def _add_video(self, encoder: str, options: dict):
        out, reader, layout = self.container, self.reader, self.layout
        video = out.add_stream(encoder, rate=reader.rate, options=options)
        video.width, video.height = layout.width, layout.height
        video.pix_fmt = layout.encoder_pix_fmt
        # The encoder clocks in the input's time base, so every pts is carried as is (VFR-safe).
        video.time_base = reader.time_base
        ctx = video.codec_context
        ctx.time_base = reader.time_base
        ctx.framerate = reader.rate
        if reader.sample_aspect_ratio:
            ctx.sample_aspect_ratio = reader.sample_aspect_ratio
        self.tags = self._color_tags()
        for key, value in self.tags.items():
            setattr(ctx, key, value)
        if reader.display_matrix is not None:
            video.set_display_matrix(reader.display_matrix)
        if reader.video.metadata.get("language"):
            video.metadata["language"] = reader.video.metadata["language"]
        # A start timecode (QuickTime tmcd track, or a tag) is carried as a tag: the mov/mp4 muxer
        # writes a new tmcd track from it, Matroska keeps the tag.
        timecodes = [reader.video.metadata.get("timecode"), reader.container.metadata.get("timecode")]
        timecodes += [s.metadata.get("timecode") for s in reader.container.streams]
        timecode = next((t for t in timecodes if t), None)
        if timecode:
            video.metadata["timecode"] = timecode
        if reader.video.codec_context.field_order:  # interlaced: pictures stay woven, say which field is first
            ctx.field_order = reader.video.codec_context.field_order
        return video

    def _color_tags(self) -> dict:
        """The source's tags, with range and matrix made explicit where we decided them."""
        tags = dict(self.reader.tags)
        layout, source = self.layout, self.reader.source
        tags["color_range"] = RANGE_JPEG if layout.full_range else RANGE_MPEG
        if not source.has_chroma or (source.convert_to is not None and tags["colorspace"] in (0, 2)):
            tags["colorspace"] = COLORSPACE_OF_MATRIX[layout.matrix]  # we chose it: say so
        if tags["colorspace"] == 0:  # "RGB" is not a Y'CbCr matrix
            tags["colorspace"] = COLORSPACE_OF_MATRIX[layout.matrix]
        return tags

    def describe(self) -> dict:
        return dict(self._description)  # built at setup: the codec context dies with the file

    def write(self, batch: FrameBatch, chroma_codes: torch.Tensor | None) -> None:
        """Encode a batch's pictures (Y from `batch`, chroma codes `(N, 2, Hc, Wc)`) and mux
        them with the batch's passthrough packets."""
        started = time.perf_counter()
        try:
            if len(batch):
                y = batch.y.numpy()  # (N, 1, H, W) codes, shared with the tensor
                cc = chroma_codes.numpy()  # (N, 2, Hc, Wc) int16 codes
                for i in range(len(batch)):
                    frame = build_frame(y[i, 0], cc[i], batch.pts[i], batch.time_base, batch.source, self.layout, self.tags)
                    for packet in self.video.encode(frame):
                        self.container.mux(packet)
                    self.frames_written += 1
            for packet in batch.passthrough:
                packet.stream = self.copies[packet.stream.index]
                self.container.mux(packet)  # PyAV rescales packet times to the output stream
        except av.FFmpegError as error:
            raise OutputError(f"{self.destination}: writing failed at frame {self.frames_written}: {_ffmpeg_reason(error)}") from None
        finally:
            self.seconds += time.perf_counter() - started

    def finish(self) -> None:
        """Flush the encoder (it holds look-ahead frames) and close the file."""
        started = time.perf_counter()
        try:
            for packet in self.video.encode(None):  # flush: the encoder's delayed frames come out here
                self.container.mux(packet)
            self.container.close()
        except av.FFmpegError as error:
            raise OutputError(f"{self.destination}: finishing the file failed: {_ffmpeg_reason(error)}") from None
        finally:
            self.seconds += time.perf_counter() - started

    def commit(self, force: bool) -> None:
        """Move the finished file into place (atomic on one file system)."""
        if self.destination.exists() and not force:  # appeared while we worked
            self.discard()
            raise OutputError(f"{self.destination}: already exists (use --force to overwrite)")
        os.replace(self.path, self.destination)

    def discard(self) -> None:
        try:
            self.container.close()
        except Exception:  # closing a half-written file may fail; it is deleted next anyway
            pass
        try:
            self.path.unlink(missing_ok=True)
        except OSError:  # the folder went away or was never one; nothing of ours is left in it
            pass


def _holds(format_name: str, codec_name: str) -> bool:
    import io as _io

    try:
        with av.open(_io.BytesIO(), "w", format=format_name) as probe:
            return codec_name in probe.supported_codecs
    except Exception:
        return False
