"""Encoding: `VideoWriter` encodes assembled pictures (a segment's video, in the output's own
container) into a temporary file beside the destination that `commit()` renames into place
(DESIGN promises 3 and 5). The input's sound joins the video later, in join.py.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import av
import torch

from remaster.atomic import replace, temporary_path
from remaster.errors import OutputError, cannot_create, ffmpeg_reason, one_line
from remaster.media.assemble import COLORSPACE_OF_MATRIX, OutputLayout, build_frame
from remaster.media.encoding import encoder_options
from remaster.media.formats import RANGE_JPEG, RANGE_MPEG, FrameBatch
from remaster.media.reader import VideoReader


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


def muxer_options(destination: Path, time_base) -> dict:
    """MOV/MP4 write a film that starts after zero as an edit list in the movie's timescale,
    1/1000 s by default: a first picture at 902/90000 s (MPEG-TS) comes back at 900/90000 and
    every timestamp moves with it (promise 3). The video's own timescale keeps them exact."""
    # bitexact: Matroska otherwise draws random segment and track UIDs and stamps the date, so two
    # runs of the same film differed in 44 header bytes (promise 8: the same bytes).
    options = {"fflags": "+bitexact"}
    # Only where 1/1000 cannot hold the video's ticks: a coarse one (1/25, AVI) makes the muxer
    # refuse the sound track's edit list (EINVAL).
    if (
        destination.suffix.lower() in (".mov", ".mp4", ".m4v")
        and 1000 % time_base.denominator
        and time_base.denominator < 2**31
    ):
        options["movie_timescale"] = str(time_base.denominator)
    return options


class VideoWriter:
    """Encodes pictures with the input's timing, aspect ratio, rotation and color tags.

    Everything is written to `temporary_path(destination)`; `commit()` renames it over the
    destination once the file is complete, `discard()` deletes it. Used from the encode thread.
    """

    def __init__(
        self,
        destination: str | os.PathLike,
        reader: VideoReader,
        layout: OutputLayout,
        *,
        codec: str = "libx264",
        crf: int = 18,
        preset: str = "medium",
    ):
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
            raise cannot_create(self.destination, error) from None
        try:
            self.container = av.open(str(self.path), "w", options=muxer_options(self.destination, reader.time_base))
        except (av.FFmpegError, ValueError) as error:
            self.path.unlink(missing_ok=True)
            raise OutputError(
                f"{self.destination}: cannot write a {self.destination.suffix} file ({one_line(error)}); "
                "use .mp4, .mkv or .mov"
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
        reader, layout = self.reader, self.layout
        self.supported = set(supported)  # what the container holds: the audio plan asks (audio.py)
        self.container_name = fmt
        self.video = self._add_video(encoder, options)
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
                f"{layout.width}x{layout.height}{hint}: {ffmpeg_reason(error)}"
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
        """Encode a batch's pictures: Y from `batch`, chroma codes `(N, 2, Hc, Wc)`."""
        started = time.perf_counter()
        try:
            if len(batch):
                y = batch.y.numpy()  # (N, 1, H, W) codes, shared with the tensor
                cc = chroma_codes.numpy()  # (N, 2, Hc, Wc) int16 codes
                for i in range(len(batch)):
                    frame = build_frame(
                        y[i, 0], cc[i], batch.pts[i], batch.time_base, batch.source, self.layout, self.tags
                    )
                    for packet in self.video.encode(frame):
                        self.container.mux(packet)
                    self.frames_written += 1
        except av.FFmpegError as error:
            raise OutputError(
                f"{self.destination}: writing failed at frame {self.frames_written}: {ffmpeg_reason(error)}"
            ) from None
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
            raise OutputError(f"{self.destination}: finishing the file failed: {ffmpeg_reason(error)}") from None
        finally:
            self.seconds += time.perf_counter() - started

    def commit(self, force: bool, *, durable: bool = False) -> None:
        """Move the finished file into place (atomic on one file system; synced when `durable`)."""
        if self.destination.exists() and not force:  # appeared while we worked
            self.discard()
            raise OutputError(f"{self.destination}: already exists (use --force to overwrite)")
        replace(self.path, self.destination, durable=durable)

    def discard(self) -> None:
        try:
            self.container.close()
        except Exception:  # closing a half-written file may fail; it is deleted next anyway
            pass
        try:
            self.path.unlink(missing_ok=True)
        except OSError:  # the folder went away or was never one; nothing of ours is left in it
            pass
