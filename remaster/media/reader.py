"""Decoding: `VideoReader` opens and checks an input video and yields `FrameBatch`es.

It answers missing, empty, non-video, truncated and corrupt files with one-line `InputError`s,
decodes the first frame to learn the source's format, and then yields batches of luma codes in
presentation order; it runs in the decode thread. It reads pictures only: the audio and
subtitle streams it lists in `copy_streams` are copied by the join (join.py).
"""

from __future__ import annotations

import itertools
import os
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch

from remaster.errors import ConfigError, InputError, ffmpeg_reason, one_line
from remaster.media.formats import FrameBatch, SourceFormat
from remaster.media.hwaccel import DECODERS, nvdec
from remaster.media.protection import refuse_encrypted
from remaster.media.recover import Clock, Losses, Picture, demux_resilient

# Largest frame side we accept. 8192 covers DCI 8K and 8K full-aperture film scans; beyond it a
# batch of luma alone runs into gigabytes, and a header claiming more is far more often damage or
# a hostile file than a real 16K scan. Checked on the header's claim, before anything is decoded.
MAX_SIDE = 8192

# FFmpeg demuxers that read one still picture (a JPEG or PNG named .mp4 opens as a 1-frame "video").
_STILL_IMAGE_FORMATS = (
    "image2",
    "jpeg_pipe",
    "png_pipe",
    "webp_pipe",
    "tiff_pipe",
    "bmp_pipe",
    "gif",
    "j2k_pipe",
    "jpegxl_pipe",
)


def _fraction(value) -> Fraction | None:
    if value is None:
        return None
    value = Fraction(value)
    return value if value > 0 else None


class VideoReader:
    """An opened, checked input video; iterate `batches()` (in the decode thread) once.

    Opening decodes up to the first picture, so format problems surface before any output exists.
    Audio and subtitle streams are listed in `copy_streams` (for the join); other streams (data,
    attachments, extra video) in `skipped`.
    """

    def __init__(
        self, path: str | os.PathLike, *, max_frames: int | None = None, strict: bool = False, decoder: str = "cpu"
    ):
        self.path = Path(path)
        self.max_frames = max_frames
        self.strict = strict  # refuse any damage instead of recovering (--strict)
        self.cut_short: tuple[int, str] | None = None  # (frames read, why) where unreadable data ended the film
        self.retimed = 0  # pictures whose timestamp had to be made up (none usable)
        if not self.path.exists():
            raise InputError(f"{self.path}: no such file")
        if self.path.is_dir():
            raise InputError(f"{self.path}: is a folder, expected a video file")
        if self.path.stat().st_size == 0:
            raise InputError(f"{self.path}: empty file (0 bytes), expected a video")
        if decoder not in DECODERS:
            raise ConfigError(f"decoder must be one of {', '.join(DECODERS)}, got {decoder!r}")
        self.decoder = "cpu"  # what decodes, after any fallback
        self.decoder_note: str | None = None  # why NVDEC was asked for and not used
        if decoder == "nvdec" and self._open_nvdec():
            return
        self._open(None)

    def _open_nvdec(self) -> bool:
        """Open with NVDEC; False (and `decoder_note` says why) where the CPU has to decode instead."""
        try:
            self._open(nvdec())
        except InputError:
            raise
        # No GPU, no driver, an FFmpeg without CUDA: PyAV raises several kinds.
        except Exception as error:  # noqa: BLE001
            self.decoder_note = f"{self.path.name}: NVDEC is not available here ({one_line(error)}); decoded on the CPU"
            return False
        if self.video.codec_context.is_hwaccel:
            self.decoder = "nvdec"
            return True
        name = self.video.codec_context.name
        self.decoder_note = f"{self.path.name}: NVDEC does not decode this {name} stream; decoded on the CPU"
        self.close()
        return False

    def _open(self, hwaccel) -> None:
        """Open the file (with NVDEC where `hwaccel` says) and decode its first picture."""
        self.cut_short, self.retimed = None, 0  # afresh, should a first try with NVDEC have read some
        try:
            # Read-only by construction: av.open(..., "r") never creates or writes the file.
            extra = {"hwaccel": hwaccel} if hwaccel is not None else {}
            self.container = av.open(str(self.path), "r", metadata_errors="ignore", **extra)
        except av.FFmpegError as error:
            if hwaccel is not None:
                raise
            raise InputError(f"{self.path}: not a readable video file ({ffmpeg_reason(error)})") from None
        fmt = self.container.format.name.split(",")[0]
        if fmt in _STILL_IMAGE_FORMATS:
            self.container.close()
            raise InputError(f"{self.path}: is a still image, not a video; use `remaster image`")
        try:
            self._setup()
        except BaseException:
            self.close()
            raise

    def _setup(self) -> None:
        refuse_encrypted(self.path, self.container)  # before any work: FFmpeg "decodes" noise or nothing
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
        self.lead_pts: int | None = None  # set by seek(): warm-up pictures from here to span[0]
        self.lead_frames = 0  # warm-up pictures handed out (they come before the span's)
        self.tail = 0  # set by seek(): look-ahead pictures to hand out after the span
        self.tail_frames = 0  # ...and how many were
        self.damaged: list[int] = []  # frame numbers that were undecodable (repeated) or concealed
        # Runs of frames whose size or pixel format differed from the first frame's and were
        # fitted to it (frames.SourceFormat.fitted_y_codes): [first frame, count, "WxH pix_fmt"].
        # Runs, not frame numbers: memory stays bounded whatever the film's length (promise 4).
        self.resized: list[list] = []
        # One decoding thread: the pictures are then a function of the file alone (promise 8).
        # - Frame threads: FFmpeg's H.264 decoder drops the pictures around damaged data without
        #   a word (a real file: 38 of 40 frames, no error raised), and conceals racily.
        # - Slice threads (PyAV's default): damaged MPEG-2 slices race between the threads
        #   (tests/real/damaged-mpeg2-avi-mp3.avi: frames 13-22 differed in about 1 run in 6 under
        #   load, by up to 13 code values), and H.264 conceals damage differently with 2 threads
        #   than with 1, so the output depended on how many cores the machine has.
        # Healthy files give the same pictures either way, and one thread cost nothing measurable:
        # 640x480 decodes at 2,500-3,800 frames/s on one thread against 2,300-3,700 with slices
        # (x264 and MPEG-2, alternating, this 2-core VM), where the network runs at about 10.
        self.video.thread_type = "NONE"
        self.video.thread_count = 1
        self.copy_streams = [s for s in self.container.streams if s.type in ("audio", "subtitle")]
        self.skipped = [
            f"#{s.index} {s.type} ({s.codec_context.name if s.codec_context else 'unknown'})"
            for s in self.container.streams
            if s is not self.video and s not in self.copy_streams
        ]
        self.time_base = _fraction(self.video.time_base) or Fraction(1, 90000)
        average, guessed = _fraction(self.video.average_rate), _fraction(self.video.guessed_rate)
        if average and guessed and average > 2 * guessed:
            # Raw DV (FFmpeg's dv demuxer, 1/60000 s time base) reports 60000 frames/s as the
            # average: one frame per tick. The guessed rate (the codec's 30000/1001) is the real one.
            average = None
        self.rate = average or guessed or Fraction(25)
        self.sample_aspect_ratio = _fraction(self.video.codec_context.sample_aspect_ratio)
        self.listed_frames = int(self.video.frames or 0)  # 0 when the container has no index (mkv)
        self.frames_read = 0
        self.video_packets = 0
        self._frames = self._decode()
        first = next(self._frames, None)
        if first is None:
            raise InputError(f"{self.path}: no decodable video frame")
        self._first = first
        self.first_pts = first.pts  # of the first picture, for cutting a preview's sound
        try:
            self.source = SourceFormat.from_frame(first)
        except (ValueError, StopIteration) as error:
            raise InputError(f"{self.path}: unsupported pixel format {first.format.name} ({one_line(error)})") from None
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
            "decoder": self.decoder,
        }

    def _decode(self):
        """The decoder's pictures, in the decoder's order and number (issue 8).

        - Timestamps are the decoder's (`pictures()` puts labels that run backwards in order).
        - A packet the decoder rejects is damage: the previous good picture stands in for the one
          lost (`Losses` finds which), and its number goes to `damaged`. Pictures the decoder
          concealed (flagged corrupt) are kept, being the best there is, and counted too.
        - Data the demuxer cannot read (a file cut short, garbage mid-file) is skipped as far as
          the demuxer can resynchronise (`demux_resilient`); where it cannot, the film ends there
          (`cut_short`).
        With `strict`, any of this is a one-line `InputError` instead.
        """
        losses = Losses()
        for packet in self._packets():
            if packet.size:
                self.video_packets += 1
            losses.sent(packet)
            try:
                frames = packet.decode()  # an empty packet at the end flushes the decoder
            except av.FFmpegError as error:
                if self.strict:
                    raise InputError(
                        f"{self.path}: damaged video data after frame {self.frames_read} ({ffmpeg_reason(error)}); "
                        "without --strict the film is recovered"
                    ) from None
                losses.rejected()
                continue
            yield from self._counted(losses.received(frames))
        flushed = []
        if self.cut_short is not None:
            try:
                flushed = self.video.codec_context.decode(None)  # what the decoder still holds
            except av.FFmpegError:
                pass
        yield from self._counted(losses.received(flushed))
        yield from self._counted(losses.lost_at_end())

    def _counted(self, pictures):
        """The pictures of `Losses`, each stand-in or concealed one in the span noted in `damaged`."""
        for frame, damage in pictures:
            if damage and self._in_span(frame.pts):
                if damage == "concealed" and self.strict:
                    raise InputError(
                        f"{self.path}: damaged picture at frame {self.frames_read}; "
                        "without --strict it is kept as concealed"
                    )
                self.damaged.append(self.frames_read - self.lead_frames)
            yield frame

    def _packets(self):
        def unreadable(error):
            reason = ffmpeg_reason(error)
            if self.strict:
                raise InputError(
                    f"{self.path}: corrupt or truncated video data after frame {self.frames_read} ({reason})"
                ) from None
            self.cut_short = (self.frames_read, reason)

        return demux_resilient(self.container, self.video, on_end=unreadable, attempts=1 if self.strict else 8)

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
                if frame.pts < self.lead_pts:
                    continue  # before the warm-up: decoded only because decoding starts at a sync frame
                if self.span[1] is not None and frame.pts >= self.span[1]:
                    if self.tail_frames >= self.tail:
                        return
                    self.tail_frames += 1  # look-ahead past the segment (restoration): never written
                self.lead_frames += frame.pts < self.span[0]
            self.frames_read += 1
            yield frame

    def _note_resized(self, number: int, frame: av.VideoFrame) -> None:
        what = f"{frame.width}x{frame.height} {frame.format.name}"
        last = self.resized[-1] if self.resized else None
        if last is not None and last[2] == what and last[0] + last[1] == number:
            last[1] += 1
        else:
            self.resized.append([number, 1, what])

    def _in_span(self, pts: int | None) -> bool:
        """Whether a picture belongs to what is read (damage outside a segment is not ours)."""
        if self.span is None or pts is None:
            return True
        return pts >= self.span[0] and (self.span[1] is None or pts < self.span[1])

    def seek(
        self,
        start_pts: int,
        end_pts: int | None = None,
        *,
        lead_pts: int | None = None,
        sync_pts: int | None = None,
        rewind: bool = True,
        tail: int = 0,
    ) -> None:
        """Read one segment of the run plan (plan.py): the pictures with `start_pts <= pts < end_pts`,
        after the warm-up pictures from `lead_pts` (flagged `lead` in their batches), decoding from
        the sync frame at `sync_pts`. `rewind=False` (the film's first segment) goes on from where
        opening the file left off instead. `tail` pictures after the span follow, flagged `tail`
        in their batches: restoration looks ahead at them, nothing writes them. Pictures only:
        other streams are joined at the end."""
        self.lead_pts = start_pts if lead_pts is None else lead_pts
        self.tail = tail
        self.span = (start_pts, end_pts)
        if not rewind:
            return
        sync_pts = self.lead_pts if sync_pts is None else sync_pts
        self._first = None
        # Aim a second early: containers without an index (MPEG-TS) seek by estimate and may land
        # past the sync frame; pictures before `lead_pts` are decoded and dropped (cheap).
        margin = round(1 / self.time_base) if self.time_base else 0
        self.container.seek(max(sync_pts - margin, 0), stream=self.video, backward=True)
        self.video.codec_context.flush_buffers()
        self._frames = self._decode()

    def pictures(self):
        """Each picture's Y codes, warm-up flag and timestamp, in display order (iterate once).

        The codes are copied as each frame arrives: a decoder concealing damage may still write
        into a picture it has returned (a damaged VC-1 file: up to 34 code values later). The
        labels then go through `Clock`, so ones that run backwards (AVI's packed B-frames come
        out labelled 1, 2, 4, 3, ...) are given in increasing order, never called damage.
        """
        clock = Clock(self.rate, self.time_base)
        for frame in self.frames():
            lead = self.span is not None and frame.pts is not None and frame.pts < self.span[0]
            tail = (
                self.span is not None
                and self.span[1] is not None
                and frame.pts is not None
                and frame.pts >= self.span[1]
            )
            try:
                if self.source.matches(frame):
                    codes = self.source.y_codes(frame)
                else:  # the picture changed mid-stream: keep the frame, fitted, and say so
                    codes = self.source.fitted_y_codes(frame)
                    if not lead:  # warm-up frames are the previous segment's to report
                        self._note_resized(self.frames_read - 1 - self.lead_frames, frame)
            except (ValueError, av.FFmpegError) as error:
                raise InputError(f"{self.path}: frame {self.frames_read - 1}: {one_line(error)}") from None
            yield from clock.push(Picture(frame.pts, codes, lead, tail))
        yield from clock.flush()
        self.retimed = clock.retimed

    def batches(self, batch_size: int, chroma_size: tuple[int, int], timings: dict | None = None, *, pin: bool = False):
        """Yield `FrameBatch`es of up to `batch_size` frames.

        After a `seek` with warm-up pictures, those come first, in batches of their own (`lead`),
        and look-ahead pictures last (`tail`), so every batch is warm-up, the segment's or
        look-ahead, the same in every run of the plan.
        `timings["decode"]` accumulates the seconds spent decoding and converting (not waiting).
        `pin`: the codes go to pinned (page-locked) memory, so copying them to a GPU needs no
        staging and does not block the caller (done here, in the decode thread).
        """
        if batch_size < 1:
            raise ConfigError(f"batch size must be >= 1, got {batch_size}")
        pictures = self.pictures()
        step = self.time_base and (1 / (self.rate * self.time_base))  # one frame in pts units
        last_pts = None
        held = None  # a segment's first picture, read while the warm-up batch was being filled
        number = 0  # of the next picture handed out after the warm-up (frames() reads ahead of it)
        done = False
        while not done:
            started = time.perf_counter()
            chosen: list[Picture] = []
            for picture in itertools.chain((held,) if held is not None else (), pictures):
                held = None
                if chosen and (picture.lead, picture.tail) != (chosen[0].lead, chosen[0].tail):
                    held = picture
                    break
                # A stream without any timestamps gets a steady clock.
                if picture.pts is None:
                    picture.pts = 0 if last_pts is None else round(last_pts + step)
                last_pts = picture.pts
                chosen.append(picture)
                if len(chosen) == batch_size:
                    break
            else:
                done = True
            if timings is not None:
                timings["decode"] = timings.get("decode", 0.0) + time.perf_counter() - started
            if not chosen:
                continue
            y = torch.from_numpy(np.stack([p.codes for p in chosen])[:, None])  # (N, 1, H, W) codes
            yield FrameBatch(
                y=y.pin_memory() if pin else y,
                pts=tuple(int(p.pts) for p in chosen),
                time_base=self.time_base,
                source=self.source,
                chroma_size=chroma_size,
                index=number,
                lead=chosen[0].lead,
                tail=chosen[0].tail,
            )
            number += 0 if chosen[0].lead or chosen[0].tail else len(chosen)

    def close(self) -> None:
        """Close the decoding generator, then the file. The generator refers to this reader (a
        reference cycle), so left suspended, as a segment's reading leaves it, it would keep the
        reader, its streams and FFmpeg's decoder alive (its frame threads, their buffer pools and
        malloc arenas: about 100 MB at 640x480) until Python's cyclic garbage collector happened
        to run, which in a long film is many segments later: memory grew with the film's length
        (issue 7)."""
        frames, self._frames, self._first = getattr(self, "_frames", None), None, None
        if frames is not None:
            try:
                frames.close()  # in the caller's thread; the decode thread has been joined
            except ValueError:  # "generator already executing": still in use by another thread
                pass
        self.container.close()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
