"""The pipeline on the real clips of ../shared/data/clips (skipped when the data pack is absent).

Kept short with `max_frames`, so each run is a few seconds on a 2-core CPU.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import decode_all, real_clip

from remaster.net.colorizer import Colorizer
from remaster.run.pipeline import colorize_video, make_config

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # see test_video_pipeline.py
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def colorizer():
    return Colorizer.random(seed=0)


def assert_luma_and_time_kept(source_path, out_path, frames):
    source, result = decode_all(source_path), decode_all(out_path)
    assert len(result.planes) == frames
    assert result.times == source.times[:frames]
    for index, (a, b) in enumerate(zip(source.planes, result.planes)):
        assert np.array_equal(a[0], b[0]), f"frame {index}: Y plane differs"
    return source, result


def test_real_mkv_to_ffv1(tmp_path, colorizer):
    path = real_clip("hungry.mkv")
    out = tmp_path / "hungry.mkv"
    report = colorize_video(
        path, out, make_config(codec="ffv1", flow="none", max_frames=20), progress=False, colorizer=colorizer
    )
    assert report.frames == 20
    assert_luma_and_time_kept(path, out, 20)


def test_real_mp4_with_audio_to_lossless_x264(tmp_path, colorizer):
    path = real_clip("car-detection.mp4")
    out = tmp_path / "car.mp4"
    colorize_video(
        path, out, make_config(codec="libx264", crf=0, flow="none", max_frames=15), progress=False, colorizer=colorizer
    )
    source, result = assert_luma_and_time_kept(path, out, 15)
    (index,) = [i for i, packets in source.packets.items() if packets]  # its one (silent) AAC track
    kept = result.packets[index]
    assert kept and kept == source.packets[index][: len(kept)]  # a preview cuts sound, never alters it


def test_real_clip_with_dis_flow(tmp_path, colorizer):
    path = real_clip("book.mkv")
    out = tmp_path / "book.mp4"
    report = colorize_video(path, out, make_config(flow="dis", max_frames=12), progress=False, colorizer=colorizer)
    assert report.flow_provider.startswith("dis") and report.frames == 12
    assert len(decode_all(out).planes) == 12


def test_temporal_stage_lowers_warping_error_on_a_real_clip(tmp_path, colorizer):
    """The issue's check: same clip, same model; DIS-guided temporal stage vs per-frame colors.

    With the shipped model when there is one: a random net's colors barely flicker (they follow
    luma smoothly), so with it the gain is small, though still there.
    """
    from remaster.measure.video import evaluate_video
    from remaster.net.colorizer import default_model_path

    if default_model_path().is_file():
        colorizer = Colorizer.load(device="cpu")

    path = real_clip("book.mkv")
    errors = {}
    for flow in ("none", "dis"):
        out = tmp_path / f"book-{flow}.mkv"
        colorize_video(
            path, out, make_config(codec="ffv1", flow=flow, max_frames=24), progress=False, colorizer=colorizer
        )
        errors[flow] = evaluate_video(out, input_luma_source=path, max_frames=24, long_side=320)["warping_error"]
    print(f"warping error on book.mkv (24 frames): per-frame {errors['none']:.6f}, temporal (DIS) {errors['dis']:.6f}")
    assert errors["dis"] < errors["none"], f"expected the temporal stage to lower the warping error, got {errors}"
