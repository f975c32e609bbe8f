"""End-to-end video tests: real PyAV files through `colorize_video` with a real (random) network.

Each checks a DESIGN promise on tiny synthetic clips: luma untouched (bit-exact with lossless
encoders), sound untouched (every packet of every track byte-identical), time untouched (frame
count and every timestamp), display metadata carried, chroma really ours.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import torch
from conftest import decode_all

from remaster.errors import OutputError
from remaster.net.colorizer import Colorizer
from remaster.run.pipeline import colorize_video, make_config


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    # The test machine has 2 cores shared with encoder and decoder threads; torch's second
    # OpenMP thread only spins against them (measured 6x slower per batch under load).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def colorizer():
    return Colorizer.random(seed=0)


def run(clip, tmp_path, name, colorizer, **options):
    options.setdefault("flow", "none")
    out = tmp_path / name
    report = colorize_video(clip.path, out, make_config(**options), progress=False, colorizer=colorizer)
    return out, report


def chroma_deviation(decoded) -> float:
    """Mean |Cb - neutral| + |Cr - neutral| in 8-bit code units over all frames."""
    depth_scale = 4.0 if decoded.pix_fmt.endswith("10le") else 1.0
    values = [np.abs(p[k].astype(np.float64) / depth_scale - 128).mean() for p in decoded.planes for k in (1, 2)]
    return float(np.mean(values)) * 2


def assert_same_time_and_sound(source, result):
    assert len(result.planes) == len(source.planes), f"expected {len(source.planes)} frames, got {len(result.planes)}"
    assert result.times == source.times  # every presentation time, exactly
    audio_in = {i: p for i, p in source.packets.items() if p}
    audio_out = {i: p for i, p in result.packets.items() if p}
    assert sorted(audio_in) == sorted(audio_out)
    for index, packets in audio_in.items():
        assert len(audio_out[index]) == len(packets), (
            f"stream #{index}: {len(packets)} packets in, {len(audio_out[index])} out"
        )
        assert audio_out[index] == packets, f"stream #{index}: packet payloads differ"


@pytest.mark.parametrize(
    ("fixture", "codec", "crf", "suffix"),
    [("clip_h264_mkv", "ffv1", 18, ".mkv"), ("clip_h264", "libx264", 0, ".mp4")],
    ids=["ffv1", "x264-crf0"],
)
def test_lossless_output_keeps_luma_time_and_sound(request, tmp_path, colorizer, fixture, codec, crf, suffix):
    clip = request.getfixturevalue(fixture)
    out, report = run(clip, tmp_path, "out" + suffix, colorizer, codec=codec, crf=crf)
    source, result = decode_all(clip.path), decode_all(out)
    assert result.pix_fmt == "yuv420p"
    for index, (a, b) in enumerate(zip(source.planes, result.planes)):
        assert np.array_equal(a[0], b[0]), f"frame {index}: Y plane differs ({int((a[0] != b[0]).sum())} pixels)"
    assert_same_time_and_sound(source, result)
    assert len([k for k in source.packets if source.packets[k]]) == 2  # both tracks were there to copy
    deviation = chroma_deviation(result)
    assert deviation > 2.0, f"expected non-neutral chroma, got mean deviation {deviation:.2f} code values"
    assert report.frames == clip.frames
    assert report.encoder["codec"] == codec
    assert not list(tmp_path.glob(".*partial*")), "temporary file left behind"


def test_display_metadata_is_carried(tmp_path, colorizer, clip_h264):
    out, _ = run(clip_h264, tmp_path, "out.mp4", colorizer, codec="libx264", crf=0)
    source, result = decode_all(clip_h264.path), decode_all(out)
    assert source.rotation == 90 and result.rotation == 90
    assert source.sample_aspect_ratio == Fraction(4, 3) and result.sample_aspect_ratio == Fraction(4, 3)
    got = (result.color_range, result.colorspace, result.color_primaries, result.color_trc)
    assert got == (1, 1, 1, 1), f"expected limited range and bt709 tags, got {got}"
    assert [k for k in result.stream_kinds] == [k for k in source.stream_kinds]


def test_default_lossy_encoder_keeps_luma_close(tmp_path, colorizer, clip_h264, record_property):
    out, report = run(clip_h264, tmp_path, "out.mp4", colorizer)  # libx264, crf 18, preset medium
    source, result = decode_all(clip_h264.path), decode_all(out)
    a = np.stack([p[0] for p in source.planes]).astype(np.float64)
    b = np.stack([p[0] for p in result.planes]).astype(np.float64)
    psnr = 10 * np.log10(255.0**2 / np.mean((a - b) ** 2))
    record_property("luma_psnr_db", round(psnr, 2))
    print(f"luma PSNR, default encoder (libx264 crf 18) vs input: {psnr:.2f} dB")
    assert psnr > 40.0, f"expected luma PSNR > 40 dB with the default encoder, got {psnr:.2f}"
    assert_same_time_and_sound(source, result)
    assert report.encoder["options"] == {"crf": "18", "preset": "medium"}


def test_variable_frame_rate_timestamps_are_kept(tmp_path, colorizer, clip_vfr):
    out, _ = run(clip_vfr, tmp_path, "out.mp4", colorizer, codec="libx264", crf=0)
    source, result = decode_all(clip_vfr.path), decode_all(out)
    gaps = np.diff([float(t) for t in source.times])
    assert gaps.max() > 3 * gaps.min(), "fixture is not variable frame rate"
    assert result.times == source.times
    for a, b in zip(source.planes, result.planes):
        assert np.array_equal(a[0], b[0])
    assert not any(result.packets.values())  # no audio in, none out


def test_ntsc_rate_time_base_survives(tmp_path, colorizer, clip_h264):
    out, _ = run(clip_h264, tmp_path, "out.mp4", colorizer, codec="libx264", crf=0)
    times = decode_all(out).times
    assert times[1] - times[0] == Fraction(1001, 30000)
    assert times[-1] == Fraction(1001 * (clip_h264.frames - 1), 30000)


@pytest.mark.parametrize(("codec", "expected_fmt", "exact"), [("ffv1", "yuv420p", True), ("libx264", "yuv444p", False)])
def test_odd_size(tmp_path, colorizer, clip_odd, codec, expected_fmt, exact):
    out, report = run(clip_odd, tmp_path, "out.mkv", colorizer, codec=codec, crf=0 if exact else 18)
    source, result = decode_all(clip_odd.path), decode_all(out)
    assert result.planes[0][0].shape == (241, 321)
    # x264 cannot take 4:2:0 at odd sizes: we go 4:4:4 rather than crop or pad the picture.
    assert result.pix_fmt == expected_fmt
    assert result.planes[0][1].shape == ((121, 161) if expected_fmt == "yuv420p" else (241, 321))
    for a, b in zip(source.planes, result.planes):
        if exact:
            assert np.array_equal(a[0], b[0])
        else:
            assert np.abs(a[0].astype(int) - b[0].astype(int)).mean() < 2.0
    assert_same_time_and_sound(source, result)


def test_gray_source(tmp_path, colorizer, clip_gray):
    out, report = run(clip_gray, tmp_path, "out.mkv", colorizer, codec="ffv1")
    source, result = decode_all(clip_gray.path), decode_all(out)
    assert source.pix_fmt == "gray" and result.pix_fmt == "yuv420p"
    assert result.color_range == 2, "gray is full range: the output must say so to keep its Y codes"
    assert result.colorspace in (1, 6), "the matrix we chose for new chroma must be tagged"
    for a, b in zip(source.planes, result.planes):
        assert np.array_equal(a[0], b[0])
    assert chroma_deviation(result) > 2.0
    assert any("gray" in note for note in report.source["notes"])


def test_full_range_source(tmp_path, colorizer, clip_yuvj):
    out, report = run(clip_yuvj, tmp_path, "out.mp4", colorizer, codec="libx264", crf=0)
    source, result = decode_all(clip_yuvj.path), decode_all(out)
    assert report.source["range"] == "full"
    assert result.color_range == 2
    assert min(p[0].min() for p in source.planes) < 16 or max(p[0].max() for p in source.planes) > 235
    for a, b in zip(source.planes, result.planes):
        assert np.array_equal(a[0], b[0])
    assert_same_time_and_sound(source, result)


def test_ten_bit_source(tmp_path, colorizer, clip_10bit):
    out, report = run(clip_10bit, tmp_path, "out.mp4", colorizer, codec="libx264", crf=0)
    source, result = decode_all(clip_10bit.path), decode_all(out)
    assert result.pix_fmt == "yuv420p10le"
    for a, b in zip(source.planes, result.planes):
        assert a[0].dtype == np.uint16 and np.array_equal(a[0], b[0])
    assert chroma_deviation(result) > 2.0
    assert_same_time_and_sound(source, result)


def test_ten_bit_to_prores(tmp_path, colorizer, clip_h264_mkv):
    out, report = run(clip_h264_mkv, tmp_path, "out.mov", colorizer, codec="prores")
    source, result = decode_all(clip_h264_mkv.path), decode_all(out)
    assert result.pix_fmt == "yuv422p10le"
    for a, b in zip(source.planes, result.planes):  # 8-bit codes shifted to 10 bits, then ProRes
        assert np.abs(a[0].astype(int) * 4 - b[0].astype(int)).mean() < 8
    assert len(result.planes) == len(source.planes)


def test_rgb_source(tmp_path, colorizer, clip_rgb):
    out, report = run(clip_rgb, tmp_path, "out.mkv", colorizer, codec="ffv1")
    result = decode_all(out)
    assert result.pix_fmt == "yuv420p" and len(result.planes) == clip_rgb.frames  # the delivery default
    assert result.colorspace == 6, "the matrix we chose (bt601 for SD) must be tagged"
    assert any("RGB" in note for note in report.source["notes"])


def test_subtitles_are_copied(tmp_path, colorizer, clip_subtitles):
    out, _ = run(clip_subtitles, tmp_path, "out.mkv", colorizer)
    source, result = decode_all(clip_subtitles.path), decode_all(out)
    assert ("subtitle", "srt") in result.stream_kinds
    assert_same_time_and_sound(source, result)


def test_container_that_cannot_hold_a_stream_is_refused(tmp_path, colorizer, clip_subtitles):
    with pytest.raises(OutputError, match=r"subtitle stream #2 \(srt\) cannot be copied into the mp4 container.*\.mkv"):
        run(clip_subtitles, tmp_path, "out.mp4", colorizer)
    assert list(tmp_path.iterdir()) == []


def test_max_frames_preview_cuts_sound_too(tmp_path, colorizer, clip_h264):
    out, report = run(clip_h264, tmp_path, "out.mp4", colorizer, max_frames=10)
    source, result = decode_all(clip_h264.path), decode_all(out)
    assert len(result.planes) == 10 and result.times == source.times[:10]
    for index, packets in source.packets.items():
        kept = result.packets[index]
        assert 0 < len(kept) < len(packets) and kept == packets[: len(kept)]


def test_dis_temporal_stage_runs(tmp_path, colorizer, clip_h264):
    pytest.importorskip("cv2")
    out, report = run(clip_h264, tmp_path, "out.mp4", colorizer, flow="dis", codec="libx264", crf=0, batch_size=5)
    source, result = decode_all(clip_h264.path), decode_all(out)
    assert report.flow_provider.startswith("dis")
    for a, b in zip(source.planes, result.planes):
        assert np.array_equal(a[0], b[0])
    assert report.stage_seconds["temporal"] > 0


def test_report_and_determinism(tmp_path, colorizer, clip_h264_mkv):
    first, report = run(clip_h264_mkv, tmp_path, "a.mkv", colorizer, codec="ffv1", batch_size=3)
    second, _ = run(clip_h264_mkv, tmp_path, "b.mkv", colorizer, codec="ffv1", batch_size=3)
    a, b = decode_all(first), decode_all(second)
    # Same input, model and options -> same pictures (DESIGN promise 8).
    for x, y in zip(a.planes, b.planes):
        for k in range(3):
            assert np.array_equal(x[k], y[k])
    for key in ("frames", "seconds", "fps", "stage_fps", "model", "device", "flow_provider", "encoder"):
        assert key in report.to_dict()
    assert set(report.stage_fps) == {
        "decode",
        "colorize",
        "shots",
        "assemble",
        "encode",
    }  # flow none: no temporal stage in the chain
    assert report.device == "cpu" and report.model["model"] == "random-seed0"


def test_raft_temporal_stage_runs(tmp_path, colorizer, clip_h264):
    # Random-initialised RAFT: plumbing only (its flow means nothing), no download needed.
    out, report = run(
        clip_h264,
        tmp_path,
        "out.mp4",
        colorizer,
        flow="raft-small",
        flow_weights="random",
        max_frames=4,
        codec="libx264",
        crf=0,
    )
    source, result = decode_all(clip_h264.path), decode_all(out)
    assert report.flow_provider.startswith("raft")
    assert len(result.planes) == 4
    for a, b in zip(source.planes, result.planes):
        assert np.array_equal(a[0], b[0])


def test_cpu_threads_apply_during_the_pass_only(tmp_path, colorizer, clip_gray):
    torch.set_num_threads(2)
    try:
        out, report = run(clip_gray, tmp_path, "out.mkv", colorizer, codec="ffv1", cpu_threads=1)
        assert report.config["colorize"]["cpu_threads"] == 1
        assert torch.get_num_threads() == 2, "colorize_video must restore torch's thread count"
    finally:
        torch.set_num_threads(1)


def test_stream_order_is_kept(tmp_path, colorizer, clip_audio_first):
    out, _ = run(clip_audio_first, tmp_path, "out.mp4", colorizer, codec="libx264", crf=0)
    source, result = decode_all(clip_audio_first.path), decode_all(out)
    assert [kind for kind, _ in source.stream_kinds] == ["audio", "audio", "video"]
    assert [kind for kind, _ in result.stream_kinds] == ["audio", "audio", "video"]
    assert_same_time_and_sound(source, result)
    for a, b in zip(source.planes, result.planes):
        assert np.array_equal(a[0], b[0])


@pytest.mark.parametrize(("pix_fmt", "codec"), [("yuv422p", "libx264"), ("yuv444p", "ffv1"), ("yuv420p10le", "ffv1")])
def test_pixel_format_follows_the_source(tmp_path, colorizer, pix_fmt, codec):
    from conftest import make_clip

    source_codec = "ffv1"  # lossless source, so any difference is ours
    clip = make_clip(tmp_path / "in.mkv", codec=source_codec, pix_fmt=pix_fmt, frames=6, audio_tracks=1)
    out, _ = run(clip, tmp_path, "out.mkv", colorizer, codec=codec, crf=0)
    source, result = decode_all(clip.path), decode_all(out)
    assert result.pix_fmt == pix_fmt
    for a, b in zip(source.planes, result.planes):
        assert np.array_equal(a[0], b[0])
        assert b[1].shape == a[1].shape
    assert chroma_deviation(result) > 2.0
    assert_same_time_and_sound(source, result)


def test_doubt_reaches_the_network_from_the_command_line_config(tmp_path, clip_h264_mkv, random_model_file):
    """`colorize --doubt` (ColorizeConfig.doubt) replaces the model's decoding: 1 fades nearly all
    of a random net's colors, which are unsure everywhere; 0 (no fading) keeps them."""
    deviation = {}
    for doubt in (0.0, 1.0):
        out = tmp_path / f"doubt{doubt:g}.mkv"
        colorize_video(
            clip_h264_mkv.path,
            out,
            make_config(model=str(random_model_file), doubt=doubt, flow="none", codec="ffv1"),
            progress=False,
        )
        deviation[doubt] = chroma_deviation(decode_all(out))
    assert deviation[1.0] < 0.5 * deviation[0.0], deviation
