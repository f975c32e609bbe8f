"""Property tests (hypothesis): for small generated videos of random size, pixel format, frame
rate, timestamps and audio layout, the luma, sound and time promises hold (DESIGN 1-3):
every Y plane bit-exact (FFV1 in and out), every timestamp and the frame count kept, every
audio packet of every track byte-identical.

Examples are few and tiny (at most 6 frames of at most 40x40) so the file runs in well under a
minute; `derandomize=True` keeps CI reproducible (the same examples every run).
"""

from __future__ import annotations

import tempfile
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from conftest import decode_all, shapes_frame
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from remaster.net.colorizer import Colorizer
from remaster.run.pipeline import colorize_video, make_config

AUDIO = st.tuples(
    st.sampled_from(["aac", "flac", "pcm_s16le", "libopus"]),
    st.sampled_from(["mono", "stereo", "5.1"]),
    st.sampled_from([8000, 22050, 44100, 48000]),
)


@st.composite
def videos(draw):
    width = draw(st.integers(1, 40))
    height = draw(st.integers(1, 40))
    pix_fmt = draw(st.sampled_from(["yuv420p", "yuv422p", "yuv444p", "gray", "yuv420p10le"]))
    frames = draw(st.integers(1, 6))
    rate = draw(st.sampled_from([Fraction(24), Fraction(25), Fraction(30000, 1001), Fraction(60), Fraction(12)]))
    # Matroska keeps milliseconds: timestamps are drawn in ms, CFR or with random gaps and jumps.
    if draw(st.booleans()):
        times = [round(i * 1000 / rate) for i in range(frames)]
    else:
        gaps = draw(st.lists(st.integers(1, 3000), min_size=frames - 1, max_size=frames - 1))
        times = [0, *np.cumsum(gaps).tolist()]
    start = draw(st.integers(0, 5000))  # films need not start at zero
    audio = draw(st.lists(AUDIO, max_size=2))
    return {
        "width": width,
        "height": height,
        "pix_fmt": pix_fmt,
        "rate": rate,
        "pts": [start + t for t in times],
        "audio": audio,
    }


def write_video(path: Path, spec: dict) -> None:
    time_base = Fraction(1, 1000)
    with av.open(str(path), "w") as out:
        video = out.add_stream("ffv1", rate=spec["rate"], options={"level": "3", "slices": "1"})  # 1 slice: any size
        video.width, video.height, video.pix_fmt = spec["width"], spec["height"], spec["pix_fmt"]
        video.time_base = video.codec_context.time_base = time_base
        tracks = []
        for codec, layout, rate in spec["audio"]:
            if codec == "libopus":
                rate = 48000  # Opus runs at 48 kHz only
            stream = out.add_stream(codec, rate=rate, layout=layout)
            tracks.append((stream, rate, layout))
        for i, pts in enumerate(spec["pts"]):
            frame = av.VideoFrame.from_ndarray(shapes_frame(i, spec["width"], spec["height"]), format="rgb24")
            frame = frame.reformat(format=spec["pix_fmt"])
            frame.pts, frame.time_base = pts, time_base
            for packet in video.encode(frame):
                out.mux(packet)
        for packet in video.encode(None):
            out.mux(packet)
        seconds = (spec["pts"][-1] + 100) / 1000
        for stream, rate, layout in tracks:
            channels = {"mono": 1, "stereo": 2, "5.1": 6}[layout]
            fmt = stream.codec_context.format.name  # each encoder's own sample format
            step = stream.codec_context.frame_size or 1024
            total = int(rate * seconds)
            for begin in range(0, total, step):
                n = min(step, total - begin) if stream.codec_context.frame_size == 0 else step
                t = (begin + np.arange(n)) / rate
                tone = 0.2 * np.sin(2 * np.pi * 440 * t)
                planar = fmt.endswith("p")
                dtype = {"s16": np.int16, "s16p": np.int16, "s32": np.int32, "s32p": np.int32}.get(fmt, np.float32)
                scale = {np.int16: 32767, np.int32: 2**31 - 1}.get(dtype, 1.0)
                samples = (np.repeat(tone[None], channels, 0) * scale).astype(dtype)
                if not planar:
                    samples = samples.T.reshape(1, -1)
                frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples), format=fmt, layout=layout)
                frame.sample_rate, frame.pts = rate, begin
                for packet in stream.encode(frame):
                    out.mux(packet)
            for packet in stream.encode(None):
                out.mux(packet)


@pytest.fixture(scope="module")
def colorizer():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # 2 shared cores (see test_video_pipeline.py)
    yield Colorizer.random(seed=0)
    torch.set_num_threads(threads)


@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(spec=videos(), flow=st.sampled_from(["none", "dis"]))
def test_luma_sound_and_time_are_kept(spec, flow, colorizer):
    with tempfile.TemporaryDirectory() as folder:
        source, output = Path(folder) / "in.mkv", Path(folder) / "out.mkv"
        write_video(source, spec)
        report = colorize_video(
            source, output, make_config(flow=flow, codec="ffv1"), progress=False, colorizer=colorizer
        )
        a, b = decode_all(source), decode_all(output)
        assert report.frames == len(a.planes) == len(b.planes) == len(spec["pts"])
        assert b.times == a.times  # time: every presentation timestamp
        for i, (x, y) in enumerate(zip(a.planes, b.planes)):
            assert x[0].dtype == y[0].dtype and np.array_equal(x[0], y[0]), f"luma of frame {i} differs"
        assert b.packets == a.packets  # sound: every packet of every track, byte for byte
        assert [k for k in b.stream_kinds if k[0] == "audio"] == [k for k in a.stream_kinds if k[0] == "audio"]
