"""Fixtures: tiny synthetic videos made with PyAV (moving colored shapes, a tone per audio track).

Every clip is a few dozen frames at about 64x48, so a whole pipeline run takes well under a
second of CPU. They are real files written by real encoders (libx264, FFV1, AAC), built once per
test session in a temporary folder; nothing is committed.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

DATA_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data"
CLIPS_DIR = DATA_DIR / "clips"


@dataclass(frozen=True)
class Clip:
    path: Path
    frames: int
    width: int
    height: int
    pix_fmt: str
    audio_tracks: int


def shapes_frame(index: int, width: int, height: int) -> np.ndarray:
    """RGB uint8 `(H, W, 3)`: a gradient sky, a red square and a blue disc moving, green ground,
    white and black patches."""
    y, x = np.mgrid[0:height, 0:width]
    image = np.empty((height, width, 3), np.uint8)
    image[...] = np.stack(
        [40 + 150 * x / max(width - 1, 1), 90 + 100 * y / max(height - 1, 1), 200 - 0 * x], -1
    ).astype(np.uint8)
    image[height * 2 // 3 :] = (40, 150, 50)
    side = max(4, min(width, height) // 4)
    left = (3 * index) % max(1, width - side)
    image[height // 6 : height // 6 + side, left : left + side] = (210, 40, 30)
    cx, cy = width - 1 - (2 * index) % width, height // 2
    image[(x - cx) ** 2 + (y - cy) ** 2 < (side // 2) ** 2] = (30, 60, 220)
    rng = np.random.default_rng(index)  # a little grain, so encoders have real detail to keep
    image = np.clip(image.astype(np.int16) + rng.integers(-6, 7, image.shape), 0, 255).astype(np.uint8)
    image[: max(2, height // 12), : width // 3] = 255  # pure white and black patches: the range's ends
    image[-max(2, height // 12) :, -width // 3 :] = 0
    return image


def _tone(stream, rate: int, layout: str, hz: float, seconds: float, out) -> None:
    channels = 1 if layout == "mono" else 2
    samples = int(rate * seconds)
    t = np.arange(samples) / rate
    signal = (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32)
    step = 1024
    for start in range(0, samples, step):
        chunk = np.repeat(signal[None, start : start + step], channels, axis=0)
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk), format="fltp", layout=layout)
        frame.sample_rate = rate
        frame.pts = start
        for packet in stream.encode(frame):
            out.mux(packet)
    for packet in stream.encode(None):
        out.mux(packet)


def make_clip(
    path: Path,
    *,
    width: int = 64,
    height: int = 48,
    frames: int = 24,
    rate: Fraction = Fraction(30000, 1001),
    pts: list[int] | None = None,
    time_base: Fraction | None = None,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    audio_tracks: int = 2,
    options: dict | None = None,
    color_range: int | None = None,
    rotation: int | None = None,
    sample_aspect_ratio: Fraction | None = None,
    subtitles: bool = False,
    color_tags: dict | None = None,
    audio_first: bool = False,
) -> Clip:
    """Write a synthetic clip; `pts` (in `time_base`) makes it variable frame rate."""
    if pts is None:  # constant rate: one tick of 1/numerator per denominator (1001 at 30000/1001)
        time_base = Fraction(1, rate.numerator)
        pts = [i * rate.denominator for i in range(frames)]
    elif time_base is None:
        raise ValueError("explicit pts need their time_base")
    frames = len(pts)
    out = av.open(str(path), "w")
    tracks = [("mono", 48000, 440.0), ("stereo", 44100, 660.0)][:audio_tracks]
    audio = [out.add_stream("aac", rate=rate_hz, layout=layout) for layout, rate_hz, _ in tracks] if audio_first else []
    # veryfast keeps B-frames (reordered pts, an MP4 edit list): the harder case for timing
    video = out.add_stream(
        codec, rate=rate, options=options or ({"crf": "20", "preset": "veryfast"} if codec == "libx264" else {})
    )
    video.width, video.height, video.pix_fmt = width, height, pix_fmt
    video.time_base = time_base
    video.codec_context.time_base = time_base
    if color_range is not None:
        video.codec_context.color_range = color_range
    for key, value in (color_tags or {}).items():  # e.g. colorspace=1 (bt709), color_primaries, color_trc
        setattr(video.codec_context, key, value)
    if sample_aspect_ratio is not None:
        video.codec_context.sample_aspect_ratio = sample_aspect_ratio
    if rotation is not None:
        video.set_display_rotation(rotation)
    if not audio_first:
        audio = [out.add_stream("aac", rate=rate_hz, layout=layout) for layout, rate_hz, _ in tracks]
    srt = subs = None
    if subtitles:  # a real SubRip stream, demuxed from a .srt file and stream-copied in
        srt_path = path.with_suffix(".srt")
        srt_path.write_text(
            "1\n00:00:00,100 --> 00:00:00,300\nline one\n\n2\n00:00:00,400 --> 00:00:00,500\nline two\n"
        )
        srt = av.open(str(srt_path))
        subs = out.add_stream_from_template(srt.streams.subtitles[0])
    for stream, (language, title) in zip(audio, [("eng", "tone 440"), ("fra", "tone 660")]):
        stream.metadata["language"] = language
        stream.metadata["title"] = title
    full = color_range == 2 or pix_fmt.startswith(("yuvj", "gray"))
    for i, value in enumerate(pts):
        frame = av.VideoFrame.from_ndarray(shapes_frame(i, width, height), format="rgb24")
        if pix_fmt.startswith(("yuv", "gray")):
            frame = frame.reformat(format=pix_fmt, dst_colorspace="itu601", dst_color_range="JPEG" if full else "MPEG")
        else:
            frame = frame.reformat(format=pix_fmt)
        frame.pts = value
        frame.time_base = time_base
        for packet in video.encode(frame):
            out.mux(packet)
    for packet in video.encode(None):
        out.mux(packet)
    seconds = float((pts[-1] + (pts[-1] - pts[-2] if len(pts) > 1 else 1)) * time_base)
    for stream, (layout, rate_hz, hz) in zip(audio, tracks):
        _tone(stream, rate_hz, layout, hz, seconds, out)
    if srt is not None:
        for packet in srt.demux():
            if packet.size:
                packet.stream = subs
                out.mux(packet)
        srt.close()
    out.close()
    return Clip(path, frames, width, height, pix_fmt, audio_tracks)


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def clip_h264(media_dir) -> Clip:
    """8-bit yuv420p H.264 in MP4 at 30000/1001 with two AAC tracks (440 Hz mono, 660 Hz stereo),
    rotated 90 degrees, sample aspect ratio 4:3, tagged BT.709 limited range."""
    tags = {"colorspace": 1, "color_primaries": 1, "color_trc": 1}
    return make_clip(
        media_dir / "shapes.mp4", rotation=90, sample_aspect_ratio=Fraction(4, 3), color_range=1, color_tags=tags
    )


@pytest.fixture(scope="session")
def clip_audio_first(media_dir) -> Clip:
    """Sound as streams #0 and #1, the picture as #2: the output keeps that order."""
    return make_clip(media_dir / "audio-first.mp4", frames=12, audio_first=True)


@pytest.fixture(scope="session")
def clip_h264_mkv(media_dir) -> Clip:
    """The same content in Matroska (FFV1 output goes to .mkv; timestamps compare container to container)."""
    return make_clip(media_dir / "shapes.mkv")


@pytest.fixture(scope="session")
def clip_vfr(media_dir) -> Clip:
    """Variable frame rate: irregular gaps in a 1/90000 time base, no audio."""
    gaps = [3003, 3003, 1501, 6006, 3000, 2002, 4500, 3003, 1000, 3003, 3003, 9000, 1501, 1502, 3003, 3003]
    pts = np.concatenate([[0], np.cumsum(gaps)]).tolist()
    return make_clip(media_dir / "vfr.mp4", pts=pts, time_base=Fraction(1, 90000), rate=Fraction(30), audio_tracks=0)


@pytest.fixture(scope="session")
def clip_odd(media_dir) -> Clip:
    """321x241 yuv420p (odd sizes: chroma planes 161x121), FFV1 in Matroska, one audio track."""
    return make_clip(media_dir / "odd.mkv", width=321, height=241, frames=6, codec="ffv1", audio_tracks=1)


@pytest.fixture(scope="session")
def clip_gray(media_dir) -> Clip:
    """A true black-and-white source: 8-bit gray FFV1 in Matroska, no audio."""
    return make_clip(media_dir / "gray.mkv", codec="ffv1", pix_fmt="gray", frames=12, audio_tracks=0)


@pytest.fixture(scope="session")
def clip_yuvj(media_dir) -> Clip:
    """Full-range (yuvj420p, JPEG range) H.264."""
    return make_clip(media_dir / "yuvj.mp4", pix_fmt="yuvj420p", frames=12, audio_tracks=1, color_range=2)


@pytest.fixture(scope="session")
def clip_10bit(media_dir) -> Clip:
    """10-bit yuv420p10le H.264."""
    return make_clip(media_dir / "tenbit.mp4", pix_fmt="yuv420p10le", frames=12, audio_tracks=1)


@pytest.fixture(scope="session")
def clip_rgb(media_dir) -> Clip:
    """An RGB source (FFV1 bgr0): no Y' plane, the matrix is ours to choose."""
    return make_clip(media_dir / "rgb.mkv", codec="ffv1", pix_fmt="bgr0", frames=8, audio_tracks=0)


@pytest.fixture(scope="session")
def clip_subtitles(media_dir) -> Clip:
    """Matroska with a SubRip subtitle stream (which the MP4 container cannot hold)."""
    return make_clip(media_dir / "subs.mkv", frames=16, audio_tracks=1, subtitles=True)


def real_clip(name: str) -> Path:
    """A clip from ../shared/data/clips, or a skip when the data pack is absent."""
    path = CLIPS_DIR / name
    if not path.is_file():
        pytest.skip(f"real clip {path} not present")
    return path


# --- reading results back (used by the video tests) ---------------------------------------------


@dataclass
class Decoded:
    """What a test needs from a video file: per-frame planes and times, and the packets of every
    other stream (bytes), read with PyAV."""

    planes: list[list[np.ndarray]]  # per frame: [Y, Cb, Cr] (or [Y]) code arrays, padding cut
    times: list[Fraction]  # presentation time of each frame, pts x time_base (exact)
    pix_fmt: str
    color_range: int
    colorspace: int
    color_primaries: int
    color_trc: int
    rotation: int
    sample_aspect_ratio: Fraction | None
    packets: dict[int, list[bytes]]  # stream index -> payloads of every non-video packet, in order
    stream_kinds: list[tuple[str, str]]  # (type, codec) per stream


def decode_all(path: Path) -> Decoded:
    planes, times = [], []
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        packets: dict[int, list[bytes]] = {s.index: [] for s in container.streams if s.index != video.index}
        first = None
        for packet in container.demux():
            if packet.stream.index != video.index:
                if packet.size:
                    packets[packet.stream.index].append(bytes(packet))
                continue
            for frame in packet.decode():
                first = first or frame
                depth = max(c.bits for c in frame.format.components)
                dtype = np.uint8 if depth <= 8 else np.dtype("<u2")
                arrays = []
                for plane in frame.planes:
                    row = plane.line_size // np.dtype(dtype).itemsize
                    arrays.append(np.frombuffer(plane, dtype).reshape(-1, row)[: plane.height, : plane.width].copy())
                planes.append(arrays)
                times.append(Fraction(frame.pts) * Fraction(frame.time_base))
        sar = video.codec_context.sample_aspect_ratio
        return Decoded(
            planes,
            times,
            first.format.name,
            int(first.color_range),
            int(first.colorspace),
            int(first.color_primaries),
            int(first.color_trc),
            int(first.rotation or 0),
            Fraction(sar) if sar else None,
            packets,
            [(s.type, s.codec_context.name) for s in container.streams],
        )


@pytest.fixture(scope="session")
def random_model_file(tmp_path_factory) -> Path:
    """A real remaster model file holding a randomly initialised (non-gray) network: the one
    model every CLI test shares, made once per session."""
    from remaster.net.colorizer import Colorizer, InferenceConfig, save_weights

    path = tmp_path_factory.mktemp("model") / "random.safetensors"
    save_weights(Colorizer.random(seed=0).net, path, inference=InferenceConfig())
    return path
