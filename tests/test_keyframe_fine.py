"""A carry that keeps what the keyframe gave (issue 20, items 5-7), on small tensors.

The carry samples a keyframe at the output's chroma size (not the working size's colors
upsampled), a true keyframe keeps its chroma exactly (no tone-curve correction, no registration),
and the backward carry's flows serve the frame loop only where every pair of a batch was computed.
"""

from __future__ import annotations

import numpy as np
import torch

from remaster.stages.keyframes.backward import BackwardCarries
from remaster.stages.keyframes.carry import identity_positions
from remaster.stages.keyframes.fine import blurred, fine_positions, seen
from remaster.stages.temporal import TemporalConfig, TemporalStage


def test_fine_positions_keep_the_identity_and_scale_a_shift():
    positions = identity_positions((24, 32), "cpu")  # (1, 3, 24, 32): x, y and a spread of 0
    assert torch.equal(fine_positions(positions, (48, 64)), identity_positions((48, 64), "cpu"))
    shifted = fine_positions(positions + torch.tensor([2.0, 1.0, 0.0]).view(1, 3, 1, 1), (48, 64))
    moved = shifted - identity_positions((48, 64), "cpu")
    assert torch.allclose(moved[0, 0], torch.full((48, 64), 2.0 * 63 / 31))
    assert torch.allclose(moved[0, 1], torch.full((48, 64), 1.0 * 47 / 23))


def test_the_spread_grows_where_the_flow_disagrees_and_blurs_what_is_seen():
    """A flow that moves every pixel alike (a pan) adds no spread; a flow whose neighbours disagree
    (noise, as DIS gives on grain) does, and the keyframe is then seen through that blur: a spread
    of 4 px² (sigma 2) gives the keyframe blurred by sigma 2, a spread of 0 the keyframe itself."""
    from remaster.stages.keyframes.carry import follow

    config = TemporalConfig(flow="dis")
    start = identity_positions((24, 32), "cpu")
    trust, matched = torch.ones(1, 1, 24, 32), torch.ones(1, 1, 24, 32)
    pan = torch.tensor([1.5, -0.5]).view(1, 2, 1, 1).expand(1, 2, 24, 32)
    panned, _ = follow(start, trust, pan, matched, config)
    assert float(panned[:, 2].abs().max()) < 1e-6
    torch.manual_seed(0)
    noisy, _ = follow(start, trust, 0.5 * torch.randn(1, 2, 24, 32), matched, config)
    assert float(noisy[:, 2, 4:-4, 4:-4].min()) > 0.5  # 5 x (two components' variance ~0.25 each)

    keyframe = torch.rand(1, 2, 24, 32)
    levels = blurred(keyframe)
    assert torch.allclose(seen(levels, start), keyframe, atol=1e-5)
    unsure = start.clone()
    unsure[:, 2] = 4.0
    assert torch.allclose(seen(levels, unsure), levels[2], atol=1e-5)  # SPREAD_SIGMAS[2] is 2


def test_a_still_shot_keeps_the_keyframe_at_the_output_size():
    """Fine detail of the keyframe (a 1-pixel checkerboard at 64x96) survives on a still shot,
    where the working size (32x48) cannot hold it."""
    torch.manual_seed(0)
    h, w, H, W = 32, 48, 64, 96
    luma = torch.rand(1, 1, h, w).repeat(6, 1, 1, 1)  # a still shot (N, 1, h, w)
    fine = 0.2 * torch.rand(1, 2, H, W) - 0.1  # (1, 2, H, W)
    small = torch.nn.functional.interpolate(fine, size=(h, w), mode="bilinear", antialias=True, align_corners=False)
    stage = TemporalStage(TemporalConfig(flow="dis"), device="cpu")
    stage.set_keyframes({0: small}, {0: luma[:1]}, None, {0: fine})
    out = stage(luma, torch.zeros(6, 2, h, w), range(6), torch.zeros(6, dtype=torch.bool), out_size=(H, W))
    assert out.shape == (6, 2, H, W)
    assert torch.allclose(out[0], fine[0], atol=1e-5)  # the keyframe's own frame: its colors
    assert float((out[5] - fine[0]).abs().max()) < 1e-3  # five frames on, still at full resolution
    plain = TemporalStage(TemporalConfig(flow="dis"), device="cpu")
    plain.set_keyframes({0: small}, {0: luma[:1]})
    assert plain(luma, torch.zeros(6, 2, h, w), range(6)).shape == (6, 2, h, w)  # no out_size: the working size


def test_pair_flows_only_for_pairs_all_computed(tmp_path):
    store = BackwardCarries(tmp_path, (10, 20), (16, 16), reach=50, flow_short_side=16)
    try:
        store.ahead[0:4] = 1.0
        store.behind[0:4] = -1.0
        store.paired[0:4] = True  # pairs (10, 11) .. (13, 14)
        backward, forward = store.pair_flows([11, 12, 13, 14])
        assert backward.shape == forward.shape == (4, 2, 16, 16)
        assert float(backward.max()) == -1.0 and float(forward.min()) == 1.0
        assert store.pair_flows([14, 15]) is None  # pair (14, 15) was not computed
        assert store.pair_flows([10]) is None  # pair (9, 10) lies before the store
    finally:
        store.close()


def test_a_true_keyframe_keeps_its_chroma_and_is_not_registered(tmp_path):
    import cv2

    from remaster.color import rgb_to_chroma, rgb_to_luma
    from remaster.run.keyframes import read_keyframes

    rng = np.random.default_rng(3)
    rgb = cv2.GaussianBlur(rng.integers(0, 256, (48, 64, 3)).astype(np.uint8), (5, 5), 0)
    (tmp_path / "keys").mkdir()
    cv2.imwrite(str(tmp_path / "keys" / "000002.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    image = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255  # (1, 3, 48, 64)
    film = rgb_to_luma(image).repeat(4, 1, 1, 1)  # (4, 1, 48, 64): the film's own frames

    (key,) = read_keyframes(
        tmp_path / "keys", width=64, height=48, frames=4, matrix="bt601", film_lumas=lambda: iter([(0, film)])
    )
    assert key.frame == 2
    assert key.registration["scale"] == [1.0, 1.0] and key.registration["residual"] == 0.0
    assert torch.allclose(key.chroma, rgb_to_chroma(image), atol=1e-6)
