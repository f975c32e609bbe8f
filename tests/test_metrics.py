"""Image and video metrics against known values, and `evaluate_video` on tiny real files."""

from __future__ import annotations

import math

import av
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import make_clip

from remaster.errors import InputError
from remaster.measure.metrics import cdc, color_histograms, js_divergence, warping_error, warping_errors
from remaster.measure.video import evaluate_video
from remaster.quality import colorfulness, psnr, ssim
from remaster.stages.flow import ZeroFlow


def textured(n: int = 2, h: int = 32, w: int = 40, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 3, h // 4, w // 4, generator=g)
    return torch.nn.functional.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)


# -- image metrics -----------------------------------------------------------------------------


def test_psnr_of_known_noise():
    reference = torch.full((2, 3, 8, 8), 0.5)
    signs = torch.where(torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0)) > 0.5, 1.0, -1.0)
    image = reference + 0.1 * signs  # MSE = 0.01 exactly -> 20 dB
    assert torch.allclose(psnr(image, reference), torch.tensor([20.0, 20.0]), atol=1e-4)
    assert psnr(reference, reference)[0] > 150  # identical: huge, finite


def test_ssim_identical_is_one_and_noise_lowers_it():
    image = textured()
    assert torch.allclose(ssim(image, image), torch.ones(2), atol=1e-6)
    noisy = (image + 0.1 * torch.randn(image.shape, generator=torch.Generator().manual_seed(1))).clamp(0, 1)
    assert (ssim(noisy, image) < 0.9).all()
    with pytest.raises(ValueError, match=r"at least 11x11 pixels .* got 10x8"):
        ssim(torch.zeros(1, 3, 8, 10), torch.zeros(1, 3, 8, 10))


def test_ssim_matches_skimage():
    skimage_metrics = pytest.importorskip("skimage.metrics")
    image = textured(h=40, w=52)
    noisy = (image + 0.05 * torch.randn(image.shape, generator=torch.Generator().manual_seed(2))).clamp(0, 1)
    ours = ssim(noisy, image)
    for i in range(2):
        theirs = skimage_metrics.structural_similarity(
            noisy[i].permute(1, 2, 0).double().numpy(),
            image[i].permute(1, 2, 0).double().numpy(),
            channel_axis=2,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
            data_range=1.0,
        )
        assert ours[i].item() == pytest.approx(theirs, abs=1e-5)


def test_colorfulness_known_values():
    assert colorfulness(torch.full((1, 3, 4, 4), 0.37)).item() == pytest.approx(0.0, abs=1e-6)  # gray
    red = torch.zeros(1, 3, 4, 4)
    red[:, 0] = 1.0  # rg = 255, yb = 127.5 everywhere: no spread, only the mean term
    assert colorfulness(red).item() == pytest.approx(0.3 * math.hypot(255, 127.5), rel=1e-5)
    half = torch.zeros(1, 3, 4, 4)
    half[:, 0, :, :2] = 1.0  # red left half
    half[:, 1, :, 2:] = 1.0  # green right half: rg = ±255 (std 255, mean 0), yb = 127.5 (mean only)
    assert colorfulness(half).item() == pytest.approx(255 + 0.3 * 127.5, rel=1e-5)


# -- video metrics -----------------------------------------------------------------------------


def test_js_divergence_bounds_and_scipy():
    p = torch.tensor([[0.5, 0.5, 0.0], [0.2, 0.3, 0.5]], dtype=torch.float64)
    q = torch.tensor([[0.0, 0.0, 1.0], [0.2, 0.3, 0.5]], dtype=torch.float64)
    js = js_divergence(p, q)
    assert js[0].item() == pytest.approx(math.log(2))  # disjoint supports: the maximum
    assert js[1].item() == pytest.approx(0.0)
    stats = pytest.importorskip("scipy.stats")
    a = torch.tensor([0.1, 0.6, 0.3], dtype=torch.float64)
    b = torch.tensor([0.4, 0.4, 0.2], dtype=torch.float64)
    m = 0.5 * (a + b)
    reference = 0.5 * stats.entropy(a.numpy(), m.numpy()) + 0.5 * stats.entropy(b.numpy(), m.numpy())
    assert js_divergence(a, b).item() == pytest.approx(reference)


def test_cdc_of_identical_frames_is_zero_and_of_black_white_is_ln2():
    frame = textured(n=1)
    assert cdc(frame.expand(6, -1, -1, -1)) == pytest.approx(0.0, abs=1e-12)
    black_white = torch.stack([torch.zeros(3, 8, 8), torch.ones(3, 8, 8)])
    assert cdc(black_white) == pytest.approx(math.log(2))  # only distance 1 fits in two frames
    alternating = torch.stack([torch.zeros(3, 8, 8), torch.ones(3, 8, 8)] * 3)  # 6 frames
    # d = 1: always different (ln 2); d = 2 and 4: always the same (0).
    assert cdc(alternating) == pytest.approx(math.log(2) / 3)
    histograms = color_histograms(textured(n=2))
    assert histograms.shape == (2, 3, 256) and torch.allclose(histograms.sum(-1), torch.ones(2, 3, dtype=torch.float64))


def test_warping_error_static_scene_with_flicker_is_known():
    frames = textured(n=1).expand(4, -1, -1, -1).clone()  # (4, 3, H, W)
    luma = frames.mean(1, keepdim=True)
    assert warping_error(frames, luma) == pytest.approx(0.0, abs=1e-10)
    frames[1::2] += 0.05  # the colors flicker by 0.05 in every channel, the input does not move
    zero = torch.zeros(3, 2, 32, 40)
    errors = warping_errors(frames, zero, zero)  # no motion: every pixel counts
    assert torch.allclose(errors, torch.full((3,), 3 * 0.05**2), rtol=1e-4)  # ||d||² summed over RGB
    assert warping_error(frames, luma, ZeroFlow()) == pytest.approx(3 * 0.05**2, rel=1e-4)


def test_warping_error_follows_the_input_motion():
    # A textured scene panning 2 px per frame; output colors that move with it are consistent,
    # output colors that stay put (not following the input's motion) are not.
    scene = textured(n=1, h=48, w=80, seed=3)
    frames = torch.cat([scene[..., 10 - 2 * i : 58 - 2 * i] for i in range(4)])  # (4, 3, 48, 48)
    luma = frames.mean(1, keepdim=True)
    assert warping_error(frames, luma) < 2e-4
    stuck = frames[:1].expand(4, -1, -1, -1)
    assert warping_error(stuck, luma) > 10 * warping_error(frames, luma)
    with pytest.raises(
        ValueError, match=r"expects input luma \(4, 1, 48, 48\) for frames \(4, 3, 48, 48\), got \(4, 1, 48, 40\)"
    ):
        warping_error(frames, luma[..., :40])


# -- evaluate_video ------------------------------------------------------------------------------


def write_video(path, frames: torch.Tensor, rate: int = 25):
    """Lossless RGB-ish video (FFV1 yuv444p) of `(T, 3, H, W)` frames in [0, 1]."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("ffv1", rate=rate)
        stream.width, stream.height, stream.pix_fmt = frames.shape[-1], frames.shape[-2], "yuv444p"
        for frame in frames:
            array = (frame.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def test_evaluate_video_against_itself_and_a_flickering_copy(tmp_path):
    clip = make_clip(tmp_path / "shapes.mp4", frames=10, audio_tracks=0)
    same = evaluate_video(clip.path, truth=clip.path)
    assert same["frames"] == 10 and same["size"] == [64, 48] and same["flow"] == "dis"
    assert same["ssim"] == pytest.approx(1.0) and same["psnr"] > 100
    assert same["warping_error"] == pytest.approx(same["truth"]["warping_error"])
    assert same["cdc"] == pytest.approx(same["truth"]["cdc"]) and same["flow_from"] == "output luma"

    decoded = (
        torch.stack(
            [
                torch.from_numpy(f.to_ndarray(format="rgb24")).permute(2, 0, 1)
                for f in av.open(str(clip.path)).decode(video=0)
            ]
        ).float()
        / 255
    )  # (10, 3, 48, 64)
    flicker = decoded.clone()
    flicker[1::2, 0] = (flicker[1::2, 0] + 0.1).clamp(0, 1)  # red channel flickers
    flickering = write_video(tmp_path / "flicker.mkv", flicker)
    result = evaluate_video(flickering, truth=clip.path, input_luma_source=clip.path)
    assert result["flow_from"] == str(clip.path)
    assert result["warping_error"] > 3 * result["truth"]["warping_error"]
    assert result["cdc"] > 2 * result["truth"]["cdc"]  # the truth has grain: its CDC is not 0
    assert result["psnr"] < 45 and result["ssim"] < 1.0  # mean of per-frame PSNR: ~25 dB and ~50 dB frames


def test_evaluate_video_errors(tmp_path):
    short = make_clip(tmp_path / "short.mp4", frames=5, audio_tracks=0)
    long = make_clip(tmp_path / "long.mp4", frames=12, audio_tracks=0)
    with pytest.raises(
        InputError,
        match=r"long.mp4: videos differ in length: expected equal frame counts, got output more than 7, truth 5",
    ):
        evaluate_video(long.path, truth=short.path, batch_size=8)
    with pytest.raises(InputError, match="nothing.mp4: no such file"):
        evaluate_video(tmp_path / "nothing.mp4")
    text = tmp_path / "text.mp4"
    text.write_text("not a video\n")
    with pytest.raises(InputError, match="text.mp4: not a readable video"):
        evaluate_video(text)
    bigger = make_clip(tmp_path / "bigger.mp4", frames=5, width=80, audio_tracks=0)
    with pytest.raises(InputError, match="bigger.mp4: frame size 80x48 does not match the output's 64x48"):
        evaluate_video(short.path, truth=bigger.path)


def test_eval_video_command(tmp_path):
    cli = pytest.importorskip("remaster.cli.main")
    if "video" not in getattr(cli.main.commands.get("eval"), "commands", {}):
        pytest.skip("eval video not wired into the CLI")
    import json

    clip = make_clip(tmp_path / "shapes.mp4", frames=6, audio_tracks=0)
    result = CliRunner().invoke(cli.main, ["eval", "video", str(clip.path), "--truth", str(clip.path), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)  # progress goes to stderr
    assert report["frames"] == 6 and report["ssim"] == pytest.approx(1.0)
    text = CliRunner().invoke(cli.main, ["eval", "video", str(clip.path)])
    assert text.exit_code == 0 and "warping error" in text.output
    missing = CliRunner().invoke(cli.main, ["eval", "video", str(tmp_path / "none.mp4")])
    assert missing.exit_code == 1 and "none.mp4: no such file" in missing.output
