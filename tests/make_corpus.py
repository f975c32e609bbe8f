"""A corpus of broken and unusual inputs, generated with PyAV and numpy (no committed media).

Archives are full of damaged and odd files; each case here is a real file written by a real
muxer (or a real file damaged on purpose) together with the behaviour `remaster colorize` must
show for it: a correct output (and one line on what is carried and what is dropped, and why) or a
one-line error naming the file and the problem. `tests/test_corpus.py` runs every case through
the command; `python tests/make_corpus.py FOLDER` writes the files and prints the table.

All clips are tiny (a few frames at about 64x48) so the whole corpus runs in about a minute.
"""

from __future__ import annotations

import os
import random
import struct
import sys
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # conftest's clip maker, also as a script
from conftest import make_clip, shapes_frame  # noqa: E402

# The case names, in order (tests are parametrized by them without building the corpus first).
CASE_NAMES = (
    "zero-byte",
    "random-bytes",
    "text-named-mp4",
    "jpeg-named-mp4",
    "truncated-10",
    "truncated-faststart-10",
    "truncated-faststart-10-strict",
    "truncated-50",
    "truncated-faststart-50",
    "truncated-faststart-50-strict",
    "truncated-90",
    "truncated-90-strict",
    "truncated-faststart-90",
    "truncated-faststart-90-strict",
    "truncated-50-mkv",
    "truncated-50-mkv-strict",
    "damaged-packets-ffv1",
    "damaged-packets-h264",
    "audio-only",
    "no-frames",
    "single-frame",
    "size-1x1",
    "size-2x2",
    "size-odd-33x17",
    "claims-16k",
    "two-video-streams",
    "cover-art",
    "timecode-track",
    "interlaced-tff",
    "rotation-90",
    "10-bit",
    "yuv422p",
    "yuv444p",
    "prores4444-alpha",
    "vfr-pts-jumps",
    "audio-longer-than-video",
    "subtitles",
    "model-truncated",
    "model-wrong-shapes",
    "model-pickle",
    "size-change-ts",
    "dv-ntsc-411",
    "dv-pal-avi",
    "mpeg2-ps",
    "mjpeg-avi",
    "prores422-10bit",
    "v210-mov",
    "dnxhr-mxf",
    "av1",
)


@dataclass(frozen=True)
class Case:
    name: str
    path: Path  # the input (for model cases: a good clip; the bad file is `model`)
    behaviour: str  # the documented answer, one line
    ok: bool  # True: exit 0 and a valid output; False: exit 1 and one line on stderr
    errors: tuple[str, ...] = ()  # text the one-line error must contain (besides the file's name)
    names: str = ""  # the file the error must name (default: the input's name)
    args: tuple[str, ...] = ()  # extra command-line options
    suffix: str = ".mkv"  # output container; FFV1 in Matroska keeps luma bit-exact
    model: Path | None = None  # a model file to use instead of the test's random model
    frames: int | None = None  # frames the output must have (default: the input's decoded count)
    damaged: int = 0  # frames the run must report as damaged (repeated or concealed)
    lossless: bool = True  # compare the Y planes bit for bit (FFV1 at the source's depth)
    extra: dict = field(default_factory=dict)  # case-specific checks (rotation, field order...)
    exact_frames: int | None = None  # compare only the first N Y planes bit for bit (the rest were fitted)
    skip: str = ""  # why this build cannot make the case (no encoder): the test skips with it


def _frames(count: int, width: int, height: int, pix_fmt: str, *, rgba: bool = False):
    for i in range(count):
        image = shapes_frame(i, width, height)
        if rgba:  # a real alpha plane: a soft vertical ramp
            alpha = np.broadcast_to(np.linspace(64, 255, width, dtype=np.uint8)[None, :, None], (height, width, 1))
            frame = av.VideoFrame.from_ndarray(np.concatenate([image, alpha], -1), format="rgba")
        else:
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        yield frame.reformat(format=pix_fmt)


def _encode(out, stream, frames, pts=None) -> None:
    for i, frame in enumerate(frames):
        frame.pts = i if pts is None else pts[i]  # in the stream's time base (1/rate)
        for packet in stream.encode(frame):
            out.mux(packet)
    for packet in stream.encode(None):
        out.mux(packet)


def _tone(out, stream, seconds: float) -> None:
    rate = stream.rate
    for start in range(0, int(rate * seconds), 1024):
        t = (start + np.arange(1024)) / rate
        chunk = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None]
        frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
        frame.sample_rate, frame.pts = rate, start
        for packet in stream.encode(frame):
            out.mux(packet)
    for packet in stream.encode(None):
        out.mux(packet)


def _video_stream(out, codec="libx264", width=64, height=48, pix_fmt="yuv420p", rate=25, options=None):
    if options is None and codec == "libx264":
        options = {"preset": "ultrafast", "crf": "20"}
    stream = out.add_stream(codec, rate=rate, options=options or {})
    stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
    stream.time_base = stream.codec_context.time_base = Fraction(1, rate)  # frame i at pts i
    return stream


def _simple(
    path: Path,
    *,
    frames=8,
    codec="libx264",
    width=64,
    height=48,
    pix_fmt="yuv420p",
    options=None,
    source_fmt=None,
    rgba=False,
    setup=None,
) -> Path:
    with av.open(str(path), "w") as out:
        stream = _video_stream(out, codec, width, height, pix_fmt, options=options)
        if setup is not None:
            setup(out, stream)
        _encode(out, stream, _frames(frames, width, height, source_fmt or pix_fmt, rgba=rgba))
    return path


def _remux(source: Path, destination: Path, **options) -> Path:
    with av.open(str(source)) as inp, av.open(str(destination), "w", options=options) as out:
        streams = {s.index: out.add_stream_from_template(s) for s in inp.streams}
        for packet in inp.demux():
            if packet.size:
                packet.stream = streams[packet.stream.index]
                out.mux(packet)
    return destination


def _flip_packets(source: Path, destination: Path, indices) -> Path:
    """Copy `source` with the second half of some video packets' bytes scrambled (as a bad
    sector or a dropout on tape would leave them); the container structure stays intact."""
    with av.open(str(source)) as container:
        spans = [(p.pos, p.size) for p in container.demux(video=0) if p.size]
    data = bytearray(source.read_bytes())
    for index in indices:
        pos, size = spans[index]
        for k in range(size // 4, size):
            data[pos + k] ^= 0x5A
    destination.write_bytes(bytes(data))
    return destination


def _claim_16k(path: Path) -> Path:
    """Motion JPEG whose headers claim 15360x8640 while the data is 320x256: the Matroska
    PixelWidth/PixelHeight elements and every JPEG SOF0 are patched in place (same byte lengths)."""
    _simple(path, frames=3, codec="mjpeg", width=320, height=256, pix_fmt="yuvj420p")
    data = bytearray(path.read_bytes())
    patched = 0
    for element, old, new in ((b"\xb0\x82", 320, 15360), (b"\xba\x82", 256, 8640)):  # EBML id, 2-byte size
        at = data.find(element + struct.pack(">H", old))
        assert at >= 0, f"Matroska element {element.hex()} not found"
        data[at + 2 : at + 4] = struct.pack(">H", new)
        patched += 1
    at = data.find(b"\xff\xc0")
    while at >= 0:  # SOF0: marker, length (2), precision (1), height (2), width (2)
        if struct.unpack(">HH", data[at + 5 : at + 9]) == (256, 320):
            data[at + 5 : at + 9] = struct.pack(">HH", 8640, 15360)
            patched += 1
        at = data.find(b"\xff\xc0", at + 2)
    assert patched >= 3
    path.write_bytes(bytes(data))
    return path


def _pcm(out, stream, seconds: float, samples: int = 1024) -> None:
    """A 440 Hz tone in `stream`'s own sample format (s16 interleaved for PCM, fltp for MP2)."""
    rate, channels = stream.rate, len(stream.layout.channels)
    for start in range(0, int(rate * seconds), samples):
        tone = np.sin(2 * np.pi * 440 * (start + np.arange(samples)) / rate)
        if stream.format.name == "s16":
            data = np.repeat((3000 * tone).astype(np.int16)[:, None], channels, 1).reshape(1, -1)
        else:
            data = np.repeat((0.2 * tone).astype(np.float32)[None], channels, 0)
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(data), format=stream.format.name, layout=stream.layout.name
        )
        frame.sample_rate, frame.pts = rate, start
        for packet in stream.encode(frame):
            out.mux(packet)
    for packet in stream.encode(None):
        out.mux(packet)


def _archive(
    path: Path,
    codec: str,
    width: int,
    height: int,
    pix_fmt: str,
    *,
    frames=6,
    rate=Fraction(25),
    fmt=None,
    options=None,
    audio=None,
) -> Path:
    """A clip as an archive's ingest or camera wrote it; `audio` = (codec, rate, layout, samples per frame)."""
    with av.open(str(path), "w", format=fmt) as out:
        stream = out.add_stream(codec, rate=rate, options=options or {})
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        stream.time_base = stream.codec_context.time_base = 1 / Fraction(rate)
        sound = out.add_stream(audio[0], rate=audio[1], layout=audio[2]) if audio else None
        _encode(out, stream, _frames(frames, width, height, pix_fmt))
        if sound is not None:
            _pcm(out, sound, frames / float(rate), audio[3])
    return path


def _size_change_ts(path: Path, parts, rate: int = 25) -> Path:
    """A broadcast capture whose picture size changes mid-stream: MPEG-TS, one H.264 stream (one
    PID) fed by one encoder per size, so the new size arrives in-band with a new SPS, as after a
    programme change; MP2 sound across both. `parts` = [(width, height, frames), ...]. The muxer
    starts the times at 902/90000 s, not on a whole millisecond, as broadcast captures do."""
    with av.open(str(path), "w", format="mpegts") as out:
        video = _video_stream(out, width=parts[0][0], height=parts[0][1], rate=rate)
        sound = out.add_stream("mp2", rate=48000, layout="mono")
        start = 0
        for k, (width, height, count) in enumerate(parts):
            encoder = video.codec_context
            if k:
                encoder = av.CodecContext.create("libx264", "w")
                encoder.width, encoder.height, encoder.pix_fmt = width, height, "yuv420p"
                encoder.time_base, encoder.framerate = Fraction(1, rate), Fraction(rate)
                encoder.options = {"preset": "ultrafast", "crf": "20"}
            pictures = list(_frames(count, width, height, "yuv420p"))
            for i, frame in enumerate(pictures):
                frame.pts, frame.time_base = start + i, Fraction(1, rate)
            for frame in [*pictures, None]:
                for packet in encoder.encode(frame):
                    packet.stream = video
                    out.mux(packet)
            start += count
        _pcm(out, sound, start / rate, 1152)
    return path


def _model_files(folder: Path) -> dict[str, Path]:
    import torch
    from safetensors.torch import load_file, save_file

    from remaster.net.colorizer import Colorizer, InferenceConfig, read_weights, save_weights

    good = folder / "model-good.safetensors"
    save_weights(Colorizer.random(seed=0).net, good, inference=InferenceConfig())
    truncated = folder / "model-truncated.safetensors"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    tensors, metadata = read_weights(good)
    name = next(n for n, t in tensors.items() if t.ndim == 4)
    tensors = {n: t.contiguous() for n, t in load_file(str(good)).items()}
    tensors[name] = torch.zeros(tuple(tensors[name].shape[:-1]) + (tensors[name].shape[-1] + 2,))
    wrong = folder / "model-wrong-shapes.safetensors"
    save_file(tensors, str(wrong), metadata=metadata)
    pickle = folder / "model-pickle.safetensors"
    torch.save(Colorizer.random(seed=0).net.state_dict(), pickle)  # what a .pt/.pth checkpoint holds
    return {"truncated": truncated, "wrong": wrong, "pickle": pickle, "wrong_tensor": name}


# MP4 inputs go to MP4 (x264 at QP 0, lossless at 8 bits): Matroska would round their 1/30000 s
# timestamps to its milliseconds, and MP4 cannot hold FFV1.
LOSSLESS_MP4 = {"args": ("--codec", "libx264", "--crf", "0"), "suffix": ".mp4"}


def make_corpus(folder: str | Path) -> list[Case]:
    """Write every case's files into `folder` and return the cases."""
    d = Path(folder)
    d.mkdir(parents=True, exist_ok=True)
    cases: list[Case] = []
    add = cases.append

    # --- not a video at all ---------------------------------------------------------------
    (d / "zero-byte.mp4").write_bytes(b"")
    add(Case("zero-byte", d / "zero-byte.mp4", "error: empty file", False, ("empty file",)))
    (d / "random-bytes.mp4").write_bytes(random.Random(0).randbytes(50_000))
    add(
        Case(
            "random-bytes", d / "random-bytes.mp4", "error: not a readable video file", False, ("not a readable video",)
        )
    )
    (d / "text.mp4").write_text("Reel 3, scene 12: the harbour at dawn. Notes by the archivist.\n" * 40)
    add(Case("text-named-mp4", d / "text.mp4", "error: not a readable video file", False, ("not a readable video",)))
    from PIL import Image

    Image.fromarray(shapes_frame(0, 64, 48)).save(d / "photo.mp4", format="JPEG")
    add(
        Case(
            "jpeg-named-mp4",
            d / "photo.mp4",
            "error: a still image, pointing at `remaster image`",
            False,
            ("still image", "remaster image"),
        )
    )

    # --- truncated and damaged ------------------------------------------------------------
    base = make_clip(d / "base.mp4", frames=24, audio_tracks=1).path  # index (moov) at the end
    fast = _remux(base, d / "base-faststart.mp4", movflags="faststart")  # index first
    recovered = "output: every frame that decodes, with a note that the file is cut short; sound as far as it goes"
    # MP4 in, MP4 out: Matroska would round the times to milliseconds. x264 at QP 0 is lossless.
    mp4_lossless = {"suffix": ".mp4", "args": ("--codec", "libx264", "--crf", "0")}
    for percent in (10, 50, 90):
        cut = d / f"truncated-{percent}.mp4"
        cut.write_bytes(base.read_bytes()[: base.stat().st_size * percent // 100])
        # The index (moov) is written last: cut at 10% or 50% it is gone and FFmpeg cannot open
        # the file either; at 90% it is there, and it lists more frames than the file holds.
        if percent < 90:
            add(
                Case(
                    f"truncated-{percent}",
                    cut,
                    "error: not a readable video (FFmpeg cannot open it either)",
                    False,
                    ("not a readable video",),
                )
            )
        else:
            add(Case(f"truncated-{percent}", cut, recovered, True, extra={"note": "truncated"}, **mp4_lossless))
            add(
                Case(
                    f"truncated-{percent}-strict",
                    cut,
                    "error with --strict: truncated",
                    False,
                    ("truncated", "--strict"),
                    args=("--strict",),
                )
            )
        cut = d / f"truncated-faststart-{percent}.mp4"
        cut.write_bytes(fast.read_bytes()[: fast.stat().st_size * percent // 100])
        if percent == 10:  # not even the first picture is in the file: nothing to recover
            add(
                Case(
                    f"truncated-faststart-{percent}",
                    cut,
                    "error: no decodable video frame",
                    False,
                    ("no decodable video frame",),
                )
            )
        else:
            add(
                Case(
                    f"truncated-faststart-{percent}", cut, recovered, True, extra={"note": "truncated"}, **mp4_lossless
                )
            )
        add(
            Case(
                f"truncated-faststart-{percent}-strict",
                cut,
                "error with --strict: the index lists more frames than the file holds",
                False,
                ("truncated",),
                args=("--strict",),
            )
        )
    mkv = make_clip(d / "base.mkv", frames=24, audio_tracks=1).path
    cut = d / "truncated-50.mkv"
    cut.write_bytes(mkv.read_bytes()[: mkv.stat().st_size // 2])
    add(Case("truncated-50-mkv", cut, recovered, True, extra={"note": "truncated"}))
    add(
        Case(
            "truncated-50-mkv-strict",
            cut,
            "error with --strict: the file ends before its stated duration",
            False,
            ("truncated",),
            args=("--strict",),
        )
    )
    ffv1 = make_clip(
        d / "base-ffv1.mkv", frames=12, audio_tracks=1, codec="ffv1", options={"slicecrc": "1", "level": "3", "g": "1"}
    )
    add(
        Case(
            "damaged-packets-ffv1",
            _flip_packets(ffv1.path, d / "damaged-ffv1.mkv", (5, 6)),
            "output: 2 undecodable frames replaced by the previous good frame; count, timing and sound kept; reported",
            True,
            damaged=2,
            extra={"repeat": (5, 6)},
        )
    )
    h264 = make_clip(d / "base-h264.mkv", frames=12, audio_tracks=1, options={"preset": "ultrafast", "crf": "20"})
    add(
        Case(
            "damaged-packets-h264",
            _flip_packets(h264.path, d / "damaged-h264.mkv", (5, 6)),
            "output: frames the decoder concealed are kept (best picture there is) and reported as damaged",
            True,
            damaged=2,
        )
    )

    # --- no picture ---------------------------------------------------------------------
    audio = d / "audio-only.m4a"
    with av.open(str(audio), "w") as out:
        _tone(out, out.add_stream("aac", rate=48000, layout="mono"), 1.0)
    add(Case("audio-only", audio, "error: no video stream (found audio)", False, ("no video stream",)))
    empty = d / "no-frames.mkv"
    with av.open(str(empty), "w") as out:
        _video_stream(out)
        _tone(out, out.add_stream("aac", rate=48000, layout="mono"), 0.5)
    add(Case("no-frames", empty, "error: a video stream without a single frame", False, ("no decodable video frame",)))

    # --- sizes ------------------------------------------------------------------------------
    add(Case("single-frame", _simple(d / "single-frame.mp4", frames=1), "output: one frame", True, **LOSSLESS_MP4))
    add(
        Case(
            "size-1x1",
            _simple(d / "one.mkv", codec="ffv1", width=1, height=1, pix_fmt="yuv444p", frames=3),
            "output: 1x1 (the net runs at its minimum size; chroma is averaged down)",
            True,
        )
    )
    add(Case("size-2x2", _simple(d / "two.mkv", codec="ffv1", width=2, height=2, frames=3), "output: 2x2", True))
    add(
        Case(
            "size-odd-33x17",
            _simple(d / "odd.mkv", codec="ffv1", width=33, height=17, frames=4),
            "output: 33x17 (chroma planes rounded up as FFmpeg does)",
            True,
        )
    )
    add(
        Case(
            "claims-16k",
            _claim_16k(d / "claims-16k.mkv"),
            "error: refused before decoding: larger than the 8192-pixel sides remaster handles",
            False,
            ("15360x8640",),
        )
    )

    # --- streams ----------------------------------------------------------------------------
    two = d / "two-video-streams.mkv"
    with av.open(str(two), "w") as out:
        first = _video_stream(out)
        second = _video_stream(out, width=32, height=24)
        for i, (a, b) in enumerate(zip(_frames(6, 64, 48, "yuv420p"), _frames(6, 32, 24, "yuv420p"))):
            for stream, frame in ((first, a), (second, b)):
                frame.pts = i
                for packet in stream.encode(frame):
                    out.mux(packet)
        for stream in (first, second):
            for packet in stream.encode(None):
                out.mux(packet)
    add(
        Case(
            "two-video-streams", two, "output: the first video stream colorized; the second dropped with a notice", True
        )
    )
    cover = d / "cover-art.mp4"

    def with_cover(out, stream):
        art = out.add_stream("mjpeg")
        art.width, art.height, art.pix_fmt = 32, 32, "yuvj420p"
        art.disposition = av.stream.Disposition.attached_pic
        picture = av.VideoFrame.from_ndarray(np.full((32, 32, 3), 120, np.uint8), format="rgb24").reformat(
            format="yuvj420p"
        )
        packets = list(art.encode(picture)) + list(art.encode(None))
        with_cover.packets = [(p, art) for p in packets]

    with av.open(str(cover), "w") as out:
        stream = _video_stream(out)
        with_cover(out, stream)
        audio_stream = out.add_stream("aac", rate=48000, layout="mono")
        _encode(out, stream, _frames(6, 64, 48, "yuv420p"))
        _tone(out, audio_stream, 0.24)
        for packet, art in with_cover.packets:
            packet.stream, packet.pts, packet.dts = art, 0, 0
            out.mux(packet)
    add(
        Case(
            "cover-art",
            cover,
            "output: video and sound; the cover-art picture dropped with a notice",
            True,
            **LOSSLESS_MP4,
        )
    )
    timecode = d / "timecode.mov"
    _simple(timecode, frames=5, setup=lambda out, s: s.metadata.__setitem__("timecode", "01:00:00:00"))
    add(
        Case(
            "timecode-track",
            timecode,
            "output: the start timecode carried (the mov muxer writes a new tmcd track)",
            True,
            args=("--codec", "libx264", "--crf", "0"),
            suffix=".mov",
            extra={"timecode": "01:00:00:00"},
        )
    )
    interlaced = _simple(
        d / "interlaced-tff.mkv", frames=6, options={"preset": "ultrafast", "x264-params": "interlaced=1:tff=1"}
    )
    add(
        Case(
            "interlaced-tff",
            interlaced,
            "output: fields kept woven as they are (no deinterlacing); field order carried",
            True,
            extra={"field_order": 2},
        )
    )  # AV_FIELD_TT
    rotated = make_clip(d / "rotation-90.mp4", frames=6, audio_tracks=1, rotation=90).path
    add(
        Case(
            "rotation-90",
            rotated,
            "output: the display matrix (rotation 90) carried",
            True,
            extra={"rotation": 90},
            **LOSSLESS_MP4,
        )
    )
    add(
        Case(
            "10-bit", _simple(d / "ten-bit.mkv", pix_fmt="yuv420p10le", frames=4), "output: 10-bit, Y codes exact", True
        )
    )
    add(Case("yuv422p", _simple(d / "yuv422.mkv", pix_fmt="yuv422p", frames=4), "output: 4:2:2", True))
    add(Case("yuv444p", _simple(d / "yuv444.mkv", pix_fmt="yuv444p", frames=4), "output: 4:4:4", True))
    prores = _simple(
        d / "prores4444-alpha.mov",
        codec="prores_ks",
        pix_fmt="yuva444p10le",
        frames=4,
        rgba=True,
        options={"profile": "4", "alpha_bits": "16"},
    )
    add(
        Case(
            "prores4444-alpha",
            prores,
            "output: Y at the decoder's 12 bits; the alpha plane dropped with a notice",
            True,
        )
    )
    gaps = [0, 3003, 6006, 9009, 99099, 102102, 103103, 403403, 406406]  # 1/90000 s: jumps of 1 s and 3.3 s
    vfr = make_clip(d / "vfr-jumps.mkv", pts=gaps, time_base=Fraction(1, 90000), rate=Fraction(30), audio_tracks=1).path
    add(Case("vfr-pts-jumps", vfr, "output: every timestamp kept, jumps included", True))
    longer = d / "audio-longer.mkv"
    with av.open(str(longer), "w") as out:
        stream = _video_stream(out)
        audio_stream = out.add_stream("aac", rate=48000, layout="mono")
        _encode(out, stream, _frames(5, 64, 48, "yuv420p"))  # 0.2 s of picture
        _tone(out, audio_stream, 2.0)  # 2 s of sound
    add(Case("audio-longer-than-video", longer, "output: all 2 s of sound after 0.2 s of picture, every packet", True))
    subs = make_clip(d / "subtitles.mkv", frames=8, audio_tracks=1, subtitles=True).path
    add(Case("subtitles", subs, "output: the SubRip stream copied packet for packet", True))

    # --- model files ------------------------------------------------------------------------
    models = _model_files(d)
    good = _simple(d / "good.mkv", frames=3)
    add(
        Case(
            "model-truncated",
            good,
            "error: not a readable safetensors model",
            False,
            ("not a readable safetensors",),
            names=models["truncated"].name,
            model=models["truncated"],
        )
    )
    add(
        Case(
            "model-wrong-shapes",
            good,
            "error: tensor with the wrong shape, expected vs got",
            False,
            (models["wrong_tensor"], "expected"),
            names=models["wrong"].name,
            model=models["wrong"],
        )
    )
    add(
        Case(
            "model-pickle",
            good,
            "error: a pickle is refused, never unpickled",
            False,
            ("pickle",),
            names=models["pickle"].name,
            model=models["pickle"],
        )
    )

    # --- a picture size change mid-stream -----------------------------------------------------
    # 4:3 then 16:9 at a larger size: the later frames are scaled down to fit and letterboxed.
    changed = _size_change_ts(d / "size-change.ts", [(64, 48, 6), (96, 54, 6)])
    add(
        Case(
            "size-change-ts",
            changed,
            "output: every frame; the 96x54 ones scaled to 64x48 with bars, and a notice",
            True,
            exact_frames=6,
            extra={
                "notice": "size-change.ts: 6 frames of 96x54 scaled to 64x48 (aspect kept, bars added): "
                "the picture size changed mid-stream at frame 6",
                "bars": 6,
            },
            **LOSSLESS_MP4,
        )
    )  # MPEG-TS times are 1/90000 s: Matroska would round them

    # --- archive formats ----------------------------------------------------------------------
    # Full-size DV (its only sizes), everything else tiny. Outputs are FFV1 in Matroska where the
    # input's times are whole milliseconds, else x264 at QP 0 (lossless at 8 bits) in MOV/MP4.
    ntsc = _archive(
        d / "dv-ntsc.dv",
        "dvvideo",
        720,
        480,
        "yuv411p",
        rate=Fraction(30000, 1001),
        audio=("pcm_s16le", 48000, "stereo", 1600),
    )
    add(
        Case(
            "dv-ntsc-411",
            ntsc,
            "output: DV NTSC 4:1:1 (raw .dv), Y exact, the DV sound copied",
            True,
            args=("--codec", "libx264", "--crf", "0"),
            suffix=".mov",
        )
    )  # 1001/30000 s frames
    pal = _archive(d / "dv-pal.avi", "dvvideo", 720, 576, "yuv420p", audio=("pcm_s16le", 48000, "stereo", 1024))
    add(Case("dv-pal-avi", pal, "output: DV PAL 4:2:0 in AVI, Y exact, PCM sound copied", True))
    ps = _archive(
        d / "program-stream.mpg",
        "mpeg2video",
        64,
        48,
        "yuv420p",
        frames=8,
        fmt="vob",
        audio=("mp2", 48000, "stereo", 1152),
    )
    add(Case("mpeg2-ps", ps, "output: MPEG-2 program stream (.mpg) with MP2 sound copied", True, **LOSSLESS_MP4))
    mjpeg = _archive(d / "mjpeg.avi", "mjpeg", 64, 48, "yuvj422p", audio=("pcm_s16le", 48000, "mono", 1024))
    add(Case("mjpeg-avi", mjpeg, "output: Motion JPEG (full-range 4:2:2) in AVI, Y exact, PCM copied", True))
    prores422 = _archive(
        d / "prores422.mov", "prores_ks", 64, 48, "yuv422p10le", audio=("pcm_s16le", 48000, "mono", 1024)
    )
    add(Case("prores422-10bit", prores422, "output: ProRes 422 10-bit, Y codes exact at 10 bits, PCM copied", True))
    v210 = _archive(d / "v210.mov", "v210", 64, 48, "yuv422p10le")
    add(Case("v210-mov", v210, "output: uncompressed 10-bit 4:2:2 (v210) in MOV, Y codes exact at 10 bits", True))
    # DNxHD proper takes only its broadcast sizes and bitrates (1920x1080 at 36M+); DNxHR LB takes
    # any size, so the MXF case stays small.
    dnx = _archive(
        d / "dnxhr.mxf",
        "dnxhd",
        256,
        144,
        "yuv422p",
        options={"profile": "dnxhr_lb"},
        audio=("pcm_s16le", 48000, "mono", 1920),
    )
    add(Case("dnxhr-mxf", dnx, "output: DNxHR LB in MXF (OP1a), Y exact, PCM copied", True))
    av1 = next((c for c in ("libsvtav1", "libaom-av1", "librav1e") if c in av.codecs_available), None)
    if av1 is not None:
        os.environ.setdefault("SVT_LOG", "1")  # SVT-AV1 prints its whole configuration otherwise
        path = _archive(d / "av1.mkv", av1, 64, 64, "yuv420p", options={"preset": "12"} if av1 == "libsvtav1" else {})
        add(Case("av1", path, f"output: AV1 (made with {av1}), Y exact", True))
    else:
        add(
            Case(
                "av1",
                d / "av1.mkv",
                "not made: this PyAV build has no AV1 encoder",
                True,
                skip="no AV1 encoder (libsvtav1, libaom-av1, librav1e) in this PyAV build",
            )
        )
    assert tuple(c.name for c in cases) == CASE_NAMES, "update CASE_NAMES"
    return cases


if __name__ == "__main__":
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "corpus")
    for case in make_corpus(folder):
        print(f"{case.name:<26} {'ok   ' if case.ok else 'error'}  {case.behaviour}")
