"""Sound that the output container cannot hold is kept, losslessly (issue 8, DESIGN promise 2).

Real files through the real command: A-law PCM in a MOV written to Matroska, DVD LPCM in an MPEG
program stream, IMA ADPCM in an AVI written to MP4. By default each such track is decoded and
stored as linear PCM: the output's samples equal the input's decoded samples, one for one.
`--audio copy` refuses in one line, `--audio drop` leaves the sound out and says so.
"""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from conftest import decode_all, shapes_frame
from test_corpus import run_cli

# Whether this PyAV build's audio codec contexts have `bits_per_raw_sample` (12.3 and 18.1 do not).
SAYS_DEPTH = hasattr(av.codec.context.CodecContext.create("pcm_s16le", "r"), "bits_per_raw_sample")


def film_with_sound(
    path,
    audio_codec: str,
    *,
    rate_hz: int = 48000,
    layout: str = "stereo",
    audio_format: str = "s16",
    frames: int = 12,
    video_codec: str = "libx264",
    pix_fmt: str = "yuv420p",
):
    """A short gray film whose one audio track is `audio_codec` (a two-tone signal)."""
    with av.open(str(path), "w") as out:
        video = out.add_stream(video_codec, rate=Fraction(25))
        video.width, video.height, video.pix_fmt = 64, 48, pix_fmt
        sound = out.add_stream(audio_codec, rate=rate_hz, layout=layout)
        sound.codec_context.format = audio_format
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(shapes_frame(i, 64, 48), format="rgb24").reformat(format=pix_fmt)
            frame.pts = i
            for packet in video.encode(frame):
                out.mux(packet)
        for packet in video.encode(None):
            out.mux(packet)
        channels = 2 if layout == "stereo" else 1
        samples = rate_hz * frames // 25
        t = np.arange(samples) / rate_hz
        signal = (8000 * np.sin(2 * np.pi * 440 * t) + 3000 * np.sin(2 * np.pi * 1234 * t)).astype(np.int16)
        if audio_format.startswith("s32"):  # 24 significant bits, as DVD LPCM holds them
            signal = (signal.astype(np.int32) << 16) + (np.arange(samples, dtype=np.int32) % 251 << 8)
        step = 1152
        for start in range(0, samples, step):
            chunk = np.repeat(signal[None, start : start + step], channels, axis=0)
            planar = audio_format.endswith("p")
            data = chunk if planar else chunk.T.reshape(1, -1)
            af = av.AudioFrame.from_ndarray(np.ascontiguousarray(data), format=audio_format, layout=layout)
            af.sample_rate, af.pts = rate_hz, start
            for packet in sound.encode(af):
                out.mux(packet)
        for packet in sound.encode(None):
            out.mux(packet)
    return path


def decoded_samples(path) -> np.ndarray:
    """Every sample of the first audio track as the decoder gives it, channels interleaved, int32."""
    with av.open(str(path)) as container:
        chunks = []
        for frame in container.decode(audio=0):
            array = frame.to_ndarray()
            if frame.format.is_planar:
                array = array.T.reshape(-1)
            chunks.append(array.reshape(-1).astype(np.float64))
    values = np.concatenate(chunks)
    return values


@pytest.mark.parametrize(
    "name,audio_codec,audio_format,suffix,container_out,expect",
    [
        ("alaw-in-mov", "pcm_alaw", "s16", ".mov", ".mkv", "pcm_s16le"),
        ("dvd-lpcm-in-mpeg-ps", "pcm_dvd", "s16", ".mpg", ".mkv", "pcm_s16le"),
        # 24-bit LPCM decodes to 32-bit samples: 24-bit PCM where PyAV says the depth, else 32-bit
        ("dvd-lpcm-24-in-mpeg-ps", "pcm_dvd", "s32", ".mpg", ".mkv", "pcm_s24le" if SAYS_DEPTH else "pcm_s32le"),
        ("ima-adpcm-in-avi", "adpcm_ima_wav", "s16p", ".avi", ".mp4", "pcm_s16le"),
    ],
)
def test_sound_that_cannot_be_copied_is_stored_losslessly(
    name, audio_codec, audio_format, suffix, container_out, expect, tmp_path, random_model_file
):
    video_codec = "mpeg2video" if suffix == ".mpg" else "libx264"
    source = film_with_sound(tmp_path / f"in{suffix}", audio_codec, audio_format=audio_format, video_codec=video_codec)
    out = tmp_path / f"out{container_out}"
    result = run_cli(
        [
            "colorize",
            source,
            "-o",
            out,
            "--model",
            random_model_file,
            "--device",
            "cpu",
            "--flow",
            "none",
            "--codec",
            "ffv1",
            "--json",
        ]
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert any(
        f"({audio_codec}) cannot be copied" in n and f"stored losslessly as {expect}" in n for n in report["notices"]
    ), report["notices"]
    assert f"stored losslessly as {expect}" in result.stderr  # the note is printed, not only in --json
    kinds = decode_all(out).stream_kinds
    assert ("audio", expect) in kinds, kinds
    before, after = decoded_samples(source), decoded_samples(out)
    assert len(after) == len(before), f"{len(before)} samples in, {len(after)} out"
    assert np.array_equal(before, after), "the stored samples differ from the decoded input's"
    assert len(decode_all(out).planes) == 12


def test_audio_copy_refuses_and_drop_leaves_sound_out(tmp_path, random_model_file):
    source = film_with_sound(tmp_path / "in.mov", "pcm_alaw")
    args = ["colorize", source, "--model", random_model_file, "--device", "cpu", "--flow", "none", "--codec", "ffv1"]
    refused = run_cli([*args, "-o", tmp_path / "copy.mkv", "--audio", "copy"])
    assert refused.returncode == 1
    lines = [line for line in refused.stderr.splitlines() if line.strip()]
    assert (
        len(lines) == 1 and "(pcm_alaw) cannot be copied into the matroska container" in lines[0] and ".mov" in lines[0]
    ), lines
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mov"]
    dropped = run_cli([*args, "-o", tmp_path / "drop.mkv", "--audio", "drop", "--json"])
    assert dropped.returncode == 0, dropped.stderr
    assert any("dropped (--audio drop)" in n for n in json.loads(dropped.stdout)["notices"])
    assert [kind for kind, _ in decode_all(tmp_path / "drop.mkv").stream_kinds] == ["video"]


class _WithoutDepth:
    """A real PyAV audio codec context, seen as a build without `bits_per_raw_sample` sees it."""

    def __init__(self, ctx, depth=None):
        self._ctx, self._depth = ctx, depth

    def __getattr__(self, name):
        if name == "bits_per_raw_sample":
            if self._depth is None:
                raise AttributeError(f"'{type(self._ctx).__name__}' object has no attribute '{name}'")
            return self._depth
        return getattr(self._ctx, name)


class _Stream:
    def __init__(self, stream, depth=None):
        self.codec_context = _WithoutDepth(stream.codec_context, depth)


@pytest.mark.parametrize("depth,expect", [(None, "pcm_s32le"), (0, "pcm_s32le"), (24, "pcm_s24le"), (20, "pcm_s24le")])
def test_pcm_depth_from_the_sample_format_where_pyav_does_not_say_it(depth, expect, tmp_path):
    """issue 19: `AttributeError: ... 'AudioCodecContext' object has no attribute 'bits_per_raw_sample'`.
    A real 24-bit DVD LPCM stream's context, with the attribute absent (as on PyAV 12.3 and 18.1),
    0 (not set by the decoder), or set: the PCM chosen keeps every bit either way."""
    from remaster.media.audio import pcm_encoder, sample_bits

    source = film_with_sound(tmp_path / "in.mpg", "pcm_dvd", audio_format="s32", video_codec="mpeg2video", frames=3)
    with av.open(str(source)) as container:
        stream = container.streams.audio[0]
        assert stream.codec_context.format.name == "s32"
        seen = _Stream(stream, depth)
        assert pcm_encoder(seen) == expect
        assert sample_bits(seen.codec_context) == (depth or 32)
        assert pcm_encoder(stream) in ("pcm_s24le", "pcm_s32le")  # the build's own context, whatever it has


def test_mpeg2_program_stream_cut_short_keeps_its_mp2_sound(tmp_path, random_model_file):
    """issue 19: an MPEG-2 program stream with MP2 sound, cut short (a real file written by others,
    tests/real/mpeg2-ps-mp2.mpg, its first 40000 of 49152 bytes), comes out with its sound, no traceback."""
    from remaster.media.recover import demux_resilient

    source = tmp_path / "cut.mpg"
    source.write_bytes((Path(__file__).parent / "real" / "mpeg2-ps-mp2.mpg").read_bytes()[:40000])
    out = tmp_path / "out.mkv"
    args = ["colorize", source, "-o", out, "--model", random_model_file, "--device", "cpu", "--flow", "none"]
    result = run_cli([*args, "--codec", "ffv1", "--json"])
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert json.loads(result.stdout)["frames"] == len(decode_all(out).planes) >= 2

    def mp2_packets(path):
        with av.open(str(path)) as container:
            stream = container.streams.audio[0]
            assert stream.codec_context.name == "mp2"
            return [bytes(p) for p in demux_resilient(container, stream) if p.size]

    assert mp2_packets(out) == mp2_packets(source) != []  # copied, packet for packet, as far as the file goes
