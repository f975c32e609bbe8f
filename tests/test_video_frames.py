"""Frames and layouts: code values <-> floats, FrameBatch checks, format decisions, presets."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest
import torch

from remaster.errors import ConfigError
from remaster.media.assemble import OutputLayout, assemble_chroma, build_frame, chroma_to_codes
from remaster.media.encoding import choose_layout, encoder_options
from remaster.media.formats import FrameBatch, SourceFormat, codes_to_luma, convert_y_depth
from remaster.run.config import VideoConfig, available_presets, load_preset, make_config


def source(pix_fmt="yuv420p", width=64, height=48, **tags) -> SourceFormat:
    frame = av.VideoFrame(width, height, pix_fmt)
    for key, value in tags.items():
        setattr(frame, key, value)
    return SourceFormat.from_frame(frame)


def batch(n=2, src=None, **changes) -> FrameBatch:
    src = src or source()
    fields = dict(
        y=torch.zeros((n, 1, src.height, src.width), dtype=torch.uint8),
        pts=tuple(range(n)),
        time_base=Fraction(1, 30),
        source=src,
        chroma_size=(24, 32),
    )
    fields.update(changes)
    return FrameBatch(**fields)


# --- SourceFormat: explicit range and matrix ---------------------------------------------------


def test_untagged_sd_yuv_is_limited_bt601_and_says_so():
    s = source("yuv420p")
    assert (s.bit_depth, s.full_range, s.matrix, s.chroma_shift) == (8, False, "bt601", (1, 1))
    assert any("limited" in n for n in s.notes) and any("bt601" in n for n in s.notes)


def test_untagged_hd_uses_bt709():
    assert source("yuv420p", 1280, 720).matrix == "bt709"


def test_tags_win_over_size():
    s = source("yuv420p", 1920, 1080, colorspace=6, color_range=2)
    assert (s.matrix, s.full_range, s.notes) == ("bt601", True, ())


def test_yuvj_gray_and_ten_bit():
    assert source("yuvj422p").full_range and source("yuvj422p").chroma_shift == (1, 0)
    gray = source("gray")
    assert gray.full_range and not gray.has_chroma
    ten = source("yuv444p10le")
    assert (ten.bit_depth, ten.full_range, ten.chroma_shift) == (10, False, (0, 0))


def test_rgb_and_packed_sources_are_converted():
    rgb = source("rgb24")
    assert rgb.convert_to == "yuv444p" and not rgb.full_range
    packed = source("uyvy422")
    assert packed.convert_to == "yuv444p"


def test_y_codes_are_the_plane_exactly():
    frame = av.VideoFrame(33, 17, "yuv420p")  # odd width: the plane has row padding
    rng = np.random.default_rng(0)
    plane = np.frombuffer(frame.planes[0], np.uint8).reshape(-1, frame.planes[0].line_size)
    plane[:17, :33] = rng.integers(0, 256, (17, 33))
    codes = SourceFormat.from_frame(frame).y_codes(frame)
    assert codes.shape == (17, 33) and np.array_equal(codes, plane[:17, :33])


# --- FrameBatch --------------------------------------------------------------------------------


def test_frame_batch_checks_shapes():
    with pytest.raises(ValueError, match=r"expected shape \(N, 1, H, W\), got \(2, 48, 64\)"):
        batch(y=torch.zeros((2, 48, 64), dtype=torch.uint8))
    with pytest.raises(ValueError, match="2 frames but 3 timestamps"):
        batch(pts=(0, 1, 2))
    with pytest.raises(ValueError, match=r"expected 48x64 planes, got \(40, 64\)"):
        batch(y=torch.zeros((2, 1, 40, 64), dtype=torch.uint8))
    with pytest.raises(ValueError, match="expected torch.uint8 codes for 8-bit, got torch.float32"):
        batch(y=torch.zeros((2, 1, 48, 64)))
    with pytest.raises(ValueError, match="chroma_size"):
        batch(chroma_size=(0, 32))


def test_frame_batch_repr_shows_shapes_not_values():
    text = repr(batch())
    assert "(2, 1, 48, 64)" in text and "tensor(" not in text


def test_luma_expands_limited_range():
    y = torch.tensor([16, 235, 126, 0, 255], dtype=torch.uint8).reshape(1, 1, 1, 5)
    luma = codes_to_luma(y, 8, full_range=False)
    assert torch.allclose(luma.flatten(), torch.tensor([0.0, 1.0, 110 / 219, 0.0, 1.0]))
    assert torch.allclose(codes_to_luma(y, 8, full_range=True).flatten(), y.flatten().float() / 255)
    ten = torch.tensor([64, 940], dtype=torch.int16).reshape(1, 1, 1, 2)
    assert torch.allclose(codes_to_luma(ten, 10, False).flatten(), torch.tensor([0.0, 1.0]))


def test_chroma_codes_neutral_and_limits():
    c = torch.tensor([0.0, 0.5, -0.5, 0.1]).reshape(1, 2, 1, 2)
    assert chroma_to_codes(c, 8, False).flatten().tolist() == [128, 240, 16, 150]
    assert chroma_to_codes(c, 8, True).flatten().tolist() == [128, 255, 0, 154]
    assert chroma_to_codes(c, 10, False).flatten().tolist() == [512, 960, 64, 602]


def test_y_depth_conversion():
    y8 = np.array([16, 235, 0, 255], np.uint8)
    assert convert_y_depth(y8, 8, 10, False).tolist() == [64, 940, 0, 1020]
    assert convert_y_depth(y8, 8, 10, True).tolist() == [64, 943, 0, 1023]
    assert convert_y_depth(convert_y_depth(y8, 8, 10, True), 10, 8, True).tolist() == y8.tolist()
    assert convert_y_depth(y8, 8, 8, False) is y8


def test_assemble_keeps_chroma_in_gamut_and_build_keeps_y():
    layout = OutputLayout("yuv420p", 8, False, "bt601", (1, 1), "yuv420p", 9, 7)
    assert layout.chroma_size == (4, 5)  # rounded up, as FFmpeg does
    luma = torch.full((1, 1, 7, 9), 0.98)  # nearly white: little room for color
    chroma = torch.full((1, 2, 3, 3), 0.4)  # a strong color asked for
    codes = assemble_chroma(luma, chroma, layout)  # (1, 2, 4, 5)
    assert codes.shape == (1, 2, 4, 5) and codes.dtype == torch.int16
    assert (codes - 128).abs().max() < 20, "chroma must shrink towards gray where luma leaves no room"
    y = np.arange(63, dtype=np.uint8).reshape(7, 9) + 16
    src = source("yuv420p", 9, 7)
    frame = build_frame(y, codes[0].numpy(), 1001, Fraction(1, 30000), src, layout, {"color_range": 1})
    out = np.frombuffer(frame.planes[0], np.uint8).reshape(-1, frame.planes[0].line_size)[:7, :9]
    assert np.array_equal(out, y) and frame.pts == 1001 and frame.time_base == Fraction(1, 30000)


# --- layouts and encoder options ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("pix_fmt", "size", "codec", "expected"),
    [
        ("yuv420p", (64, 48), "libx264", "yuv420p"),
        ("yuv422p", (64, 48), "libx264", "yuv422p"),
        ("yuv420p10le", (64, 48), "libx264", "yuv420p10le"),
        ("yuv420p", (321, 241), "libx264", "yuv444p"),  # odd size: x264 needs 4:4:4
        ("yuv420p", (321, 241), "ffv1", "yuv420p"),  # FFV1 takes odd 4:2:0
        ("gray", (64, 48), "libx264", "yuv420p"),
        ("yuv420p", (64, 48), "prores", "yuv422p10le"),
        ("yuv411p", (64, 48), "libx265", "yuv420p"),
        ("yuv422p", (64, 48), "h264_nvenc", "yuv420p"),
        ("gray16le", (64, 48), "libx264", "yuv420p10le"),
    ],
)
def test_choose_layout(pix_fmt, size, codec, expected):
    assert choose_layout(source(pix_fmt, *size), codec).pix_fmt == expected


def test_nvenc_ten_bit_takes_p010():
    layout = choose_layout(source("yuv420p10le"), "hevc_nvenc")
    assert (layout.pix_fmt, layout.encoder_pix_fmt) == ("yuv420p10le", "p010le")


def test_encoder_options():
    layout = choose_layout(source(), "libx264")
    assert encoder_options("libx264", 18, "medium", layout)[1] == {"crf": "18", "preset": "medium"}
    assert encoder_options("libx264", 0, "fast", layout)[1] == {"qp": "0", "preset": "fast"}
    assert "lossless=1" in encoder_options("libx265", 0, "medium", layout)[1]["x265-params"]
    assert encoder_options("h264_nvenc", 20, "slow", layout)[1]["preset"] == "p5"
    with pytest.raises(ConfigError, match="'turbo' is not an libx264 preset"):
        encoder_options("libx264", 18, "turbo", layout)


# --- config and presets ------------------------------------------------------------------------


def test_config_validation_says_expected_and_got():
    with pytest.raises(ConfigError, match=r"codec must be one of .*ffv1, got 'mpeg2'"):
        make_config(codec="mpeg2")
    with pytest.raises(ConfigError, match=r"crf must be an integer in 0..51, got 60"):
        make_config(crf=60)
    with pytest.raises(ConfigError, match=r"temporal strength must be in \[0, 1\), got 1.5"):
        make_config(strength=1.5)
    with pytest.raises(ConfigError, match="batch_size must be an integer >= 1, got 0"):
        make_config(batch_size=0)


def test_shipped_presets_load():
    assert {"film-reel", "news-footage", "fast"} <= set(available_presets())
    for name in ("film-reel", "news-footage", "fast"):
        assert isinstance(make_config(name), VideoConfig)
    assert make_config("film-reel").encode.codec == "ffv1"
    assert make_config("fast", crf=28, flow=None).encode.crf == 28  # flags override, None keeps the preset's


def test_preset_file_with_typo_is_an_error(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text('[encode]\ncodec = "libx264"\ncfr = 20\n')
    with pytest.raises(ConfigError, match=r"mine.toml: unknown setting encode.cfr; expected one of .*encode.crf"):
        load_preset(path)
    path.write_text('[encode]\ncodec = "libx265"\ncrf = 22\n')
    assert make_config(path) == make_config(codec="libx265", crf=22)


def test_a_closed_reader_is_freed_without_the_cyclic_garbage_collector(clip_h264):
    """A segment's reader stops mid-file with its decoding generator suspended; that generator
    refers to the reader, a cycle that kept every segment's FFmpeg decoder (its frame threads and
    buffers, ~100 MB at 640x480) alive until a GC pass: memory grew with the film's length.
    close() must break it."""
    import gc
    import weakref

    from remaster.media.reader import VideoReader

    enabled = gc.isenabled()
    gc.disable()
    try:
        reader = VideoReader(clip_h264.path)
        layout = choose_layout(reader.source, "libx264")
        batches = reader.batches(4, layout.chroma_size)
        next(batches)  # mid-film, as a segment ends
        batches.close()
        reader.close()
        freed = weakref.ref(reader)
        del reader, batches
        assert freed() is None
    finally:
        if enabled:
            gc.enable()
