"""The temporal stage on tiny synthetic sequences: flicker goes down, cuts reset, no seams."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from remaster.color import luma_chroma_to_rgb
from remaster.errors import ConfigError
from remaster.measure.metrics import warping_error
from remaster.quality import psnr
from remaster.stages.flow import ZeroFlow
from remaster.stages.temporal import TemporalConfig, TemporalStage

CUDA = pytest.param(
    "cuda", marks=[pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")]
)


def smooth_noise(shape, scale: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    n, c, h, w = shape
    coarse = torch.rand(n, c, max(2, h // scale), max(2, w // scale), generator=g)
    return F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=False)


def moving_sequence(frames: int = 10, height: int = 48, width: int = 64, step: int = 2, seed: int = 0):
    """A textured scene panning `step` px right per frame: luma `(T, 1, H, W)`, its true chroma
    `(T, 2, H, W)` moving with it, and a per-frame "colorization" of it that flickers."""
    margin = step * frames + 8
    scene_luma = (0.2 + 0.6 * smooth_noise((1, 1, height + 16, width + margin), 6, seed)).clamp(0, 1)
    scene_chroma = 0.25 * (smooth_noise((1, 2, height + 16, width + margin), 12, seed + 1) - 0.5)
    crop = lambda t, i: t[..., 8 : 8 + height, margin - 8 - i * step : margin - 8 - i * step + width]
    luma = torch.cat([crop(scene_luma, i) for i in range(frames)])  # (T, 1, H, W)
    chroma = torch.cat([crop(scene_chroma, i) for i in range(frames)])  # (T, 2, H, W)
    g = torch.Generator().manual_seed(seed + 2)
    flicker = 0.04 * torch.randn(frames, 2, 1, 1, generator=g) + 0.04 * (
        smooth_noise((frames, 2, height, width), 16, seed + 3) - 0.5
    )
    return luma, chroma, (chroma + flicker).clamp(-0.5, 0.5)


def to_rgb(luma, chroma):
    return luma_chroma_to_rgb(luma, chroma).clamp(0, 1)  # (T, 3, H, W)


def test_stage_reduces_flicker_on_a_moving_sequence():
    luma, truth, fresh = moving_sequence()
    stage = TemporalStage(TemporalConfig(flow="dis"))
    assert stage.provider_name == "dis"
    out = stage(luma, fresh)
    assert out.shape == fresh.shape and out.dtype == torch.float32 and torch.isfinite(out).all()
    before = warping_error(to_rgb(luma, fresh), luma)
    after = warping_error(to_rgb(luma, out), luma)
    assert after < 0.5 * before, (before, after)
    # The carried colors are also closer to the truth: flicker averages out along the motion.
    assert psnr(out[3:], truth[3:]).mean() > psnr(fresh[3:], truth[3:]).mean() + 1.0
    assert torch.equal(out[0], fresh[0])  # nothing to carry into the first frame


@pytest.mark.parametrize("consistency", ["fb", "residual"])
def test_each_consistency_test_works_alone(consistency):
    luma, _, fresh = moving_sequence(frames=6)
    out = TemporalStage(TemporalConfig(flow="dis", consistency=consistency))(luma, fresh)
    assert warping_error(to_rgb(luma, out), luma) < 0.5 * warping_error(to_rgb(luma, fresh), luma)


def test_batches_join_without_a_seam_and_state_resumes_exactly():
    luma, _, fresh = moving_sequence(frames=9)
    whole = TemporalStage(TemporalConfig(flow="dis"))(luma, fresh)
    stage = TemporalStage(TemporalConfig(flow="dis"))
    parts = [stage(luma[i : i + 3], fresh[i : i + 3]) for i in range(0, 9, 3)]
    assert torch.allclose(torch.cat(parts), whole, atol=1e-6)
    # A resumed run: a fresh stage loaded with the state after frame 5 continues identically.
    first = TemporalStage(TemporalConfig(flow="dis"))
    first(luma[:5], fresh[:5])
    state = first.state()
    assert state["luma"].shape == (1, 1, 48, 64) and state["chroma"].shape == (1, 2, 48, 64)
    resumed = TemporalStage(TemporalConfig(flow="dis"))
    resumed.load_state(state)
    assert torch.allclose(resumed(luma[5:], fresh[5:]), whole[5:], atol=1e-6)


def test_reset_and_cut_start_over():
    luma_a, _, fresh_a = moving_sequence(frames=5, seed=0)
    luma_b, _, fresh_b = moving_sequence(frames=4, seed=10)
    luma_b = 0.3 * luma_b + 0.65  # a new, much brighter shot
    stage = TemporalStage(TemporalConfig(flow="dis"))
    out = stage(torch.cat([luma_a, luma_b]), torch.cat([fresh_a, fresh_b]))
    assert stage.cuts == 1
    assert torch.equal(out[5], fresh_b[0])  # the first frame of the new shot is its own
    assert not torch.equal(out[6], fresh_b[1])  # and smoothing resumes after it
    stage.reset()
    assert stage.state() == {}
    assert torch.equal(stage(luma_a[2:4], fresh_a[2:4])[0], fresh_a[2])


def test_cut_between_shots_of_similar_tone():
    # Same histogram, different picture: the shot detector's layout test, or the flow's trust.
    luma_a, _, fresh_a = moving_sequence(frames=4, seed=0)
    luma_b = luma_a.flip(-1).flip(-2)
    stage = TemporalStage(TemporalConfig(flow="dis"))
    out = stage(torch.cat([luma_a, luma_b]), torch.cat([fresh_a, fresh_a]))
    assert stage.cuts == 1 and torch.equal(out[4], fresh_a[0])


def test_none_and_zero_strength_pass_chroma_through():
    luma, _, fresh = moving_sequence(frames=3)
    for config in (TemporalConfig(flow="none"), TemporalConfig(flow="dis", strength=0.0)):
        stage = TemporalStage(config)
        assert stage.provider is None and stage.provider_name == "none"
        assert torch.equal(stage(luma, fresh), fresh)


def test_static_scene_averages_flicker():
    luma = torch.full((12, 1, 16, 16), 0.5) + 0.3 * smooth_noise((1, 1, 16, 16), 4, 0)
    fresh = torch.zeros(12, 2, 16, 16)
    fresh[::2] += 0.1  # colors alternating between two values every frame
    stage = TemporalStage(TemporalConfig(flow="dis", strength=0.8))
    out = stage(luma, fresh)
    swing = (out[1:] - out[:-1]).abs().amax(dim=(1, 2, 3))
    assert swing[-1] < 0.25 * 0.1  # the alternation is damped to under a quarter


def test_confidence_is_low_where_content_is_new():
    luma, _, _ = moving_sequence(frames=2, step=3)
    stage = TemporalStage(TemporalConfig(flow="dis"))
    _, confidence, _, cut = stage.confidence(luma[1:], luma[:-1])
    assert confidence.shape == (1, 1, 48, 64) and not cut.any()
    # The pan brings 3 new columns in from the left: nothing in the previous frame matches them.
    assert confidence[..., 4:-4, :2].mean() < 0.3 and confidence[..., 4:-4, 8:-8].mean() > 0.8


def test_flow_resolution_reduction_still_smooths():
    luma, _, fresh = moving_sequence(frames=6, height=64, width=96)
    out = TemporalStage(TemporalConfig(flow="dis", flow_short_side=32))(luma, fresh)
    assert warping_error(to_rgb(luma, out), luma) < 0.6 * warping_error(to_rgb(luma, fresh), luma)


@pytest.mark.parametrize("device", ["cpu", CUDA])
def test_raft_random_through_the_stage(device):
    luma, _, fresh = moving_sequence(frames=3)
    stage = TemporalStage(TemporalConfig(flow="raft-small", flow_weights="random", raft_iterations=2), device=device)
    assert stage.provider_name == "raft-small"
    out = stage(luma, fresh)
    assert out.shape == fresh.shape and out.device.type == device and torch.isfinite(out).all()
    assert stage.describe()["provider"] == "raft-small"


@pytest.mark.parametrize("device", [CUDA])
def test_dis_stage_on_cuda_tensors(device):
    luma, _, fresh = moving_sequence(frames=4)
    out = TemporalStage(TemporalConfig(flow="dis"), device=device)(luma.to(device), fresh.to(device))
    assert out.device.type == "cuda"
    reference = TemporalStage(TemporalConfig(flow="dis"))(luma, fresh)
    assert torch.allclose(out.cpu(), reference, atol=1e-4)


def test_config_and_shape_errors():
    with pytest.raises(ConfigError, match=r"temporal strength must be in \[0, 1\), got 1.0"):
        TemporalConfig(strength=1.0)
    with pytest.raises(ConfigError, match="flow must be one of auto, raft, raft-small, dis, none, got 'flownet'"):
        TemporalConfig(flow="flownet")
    with pytest.raises(ConfigError, match="consistency must be fb, residual or both, got 'neither'"):
        TemporalConfig(consistency="neither")
    stage = TemporalStage(TemporalConfig(flow="dis"))
    with pytest.raises(
        ValueError,
        match=r"expects luma \(N, 1, h, w\) and chroma \(N, 2, h, w\) .* got \(2, 1, 8, 8\) and \(2, 2, 8, 9\)",
    ):
        stage(torch.zeros(2, 1, 8, 8), torch.zeros(2, 2, 8, 9))
    stage(torch.rand(1, 1, 16, 16), torch.zeros(1, 2, 16, 16))
    with pytest.raises(
        ValueError, match=r"got frames of \(16, 20\) after frames of \(16, 16\); call reset\(\) between films"
    ):
        stage(torch.rand(1, 1, 16, 20), torch.zeros(1, 2, 16, 20))


def test_zero_flow_provider_is_a_plain_recursive_filter():
    # With the stage forced onto zero flow, a static, noise-free scene blends exactly as
    # out_t = s·out_{t-1} + (1-s)·fresh_t: the arithmetic of the blend, checked by hand.
    stage = TemporalStage(TemporalConfig(flow="dis", strength=0.5, consistency="fb"))
    stage.provider = ZeroFlow()
    luma = torch.full((3, 1, 8, 8), 0.5)
    fresh = torch.stack([torch.full((2, 8, 8), v) for v in (0.0, 0.2, 0.4)])
    out = stage(luma, fresh)
    assert torch.allclose(out[:, :, 3:5, 3:5].flatten(1).mean(1), torch.tensor([0.0, 0.1, 0.25]), atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["book.mkv", "car-detection.mp4"])
def test_real_clip_flicker_goes_down_and_colors_get_closer(name):
    # A real color clip: its true chroma plus per-frame flicker stands in for a per-frame
    # colorizer; the stage must lower the warping error and bring colors closer to the truth.
    import av
    from conftest import real_clip

    from remaster.color import rgb_to_chroma, rgb_to_luma

    with av.open(str(real_clip(name))) as container:
        frames = [torch.from_numpy(f.to_ndarray(format="rgb24")) for f, _ in zip(container.decode(video=0), range(12))]
    rgb = torch.stack(frames).permute(0, 3, 1, 2).float() / 255  # (T, 3, H, W)
    scale = 160 / min(rgb.shape[-2:])
    rgb = F.interpolate(rgb, scale_factor=scale, mode="bilinear", antialias=True).clamp(0, 1)  # (T, 3, 160, w)
    luma, truth = rgb_to_luma(rgb), rgb_to_chroma(rgb)
    g = torch.Generator().manual_seed(0)
    fresh = truth + 0.03 * torch.randn(len(rgb), 2, 1, 1, generator=g) + 0.03 * (smooth_noise(truth.shape, 20, 1) - 0.5)
    out = TemporalStage(TemporalConfig(flow="dis"))(luma, fresh)
    before, after = warping_error(to_rgb(luma, fresh), luma), warping_error(to_rgb(luma, out), luma)
    assert after < 0.3 * before, (before, after)
    assert psnr(out[4:], truth[4:]).mean() > psnr(fresh[4:], truth[4:]).mean() + 2.0


def test_a_flickering_pair_fits_as_well_as_a_steady_one():
    """Exposure flicker (a gain and an offset on the whole frame) does not cost the motion's fit:
    a still frame and the same frame 15% brighter match everywhere, as the frame with itself."""
    from remaster.stages.motion import fit

    luma, _, _ = moving_sequence(frames=1)
    still = torch.zeros(1, 2, *luma.shape[-2:])
    steady, _ = fit(luma, luma, still, 0.05)
    flickered, _ = fit(luma, (luma * 1.15 + 0.02).clamp(0, 1), still, 0.05)
    assert steady.min() > 0.99 and flickered.mean() > 0.97, (steady.min(), flickered.mean())


def test_a_car_coming_into_a_still_flat_shot_is_no_fresh_start():
    """The shot detector takes a bright car coming into a shot of gray asphalt for a cut (its block
    layout changes); the flow explains nine tenths of the picture, so the temporal stage goes on
    (`cut_explained`). With the overrule off it starts over there."""
    from remaster.stages.shots import detect_cuts

    frames, height, width = 6, 64, 96
    luma = (0.35 + 0.2 * smooth_noise((1, 1, height, width), 4, 3)).repeat(frames, 1, 1, 1)
    for t in range(3, frames):  # the car drives in from the left, 12 px a frame
        luma[t, :, 24:40, 12 * (t - 3) : 12 * (t - 3) + 24] = 0.9
    assert detect_cuts(luma)[0].tolist() == [False, False, False, True, False, False]
    chroma = torch.zeros(frames, 2, height, width)
    goes_on, overrule_off = (TemporalStage(TemporalConfig(flow="dis", cut_explained=c)) for c in (0.8, 1.0))
    goes_on(luma, chroma)
    overrule_off(luma, chroma)
    assert (goes_on.cuts, overrule_off.cuts) == (0, 1)
