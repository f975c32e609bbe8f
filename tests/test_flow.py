"""Optical flow providers, warping and the consistency checks, on tiny synthetic images."""

from __future__ import annotations

import urllib.error

import pytest
import torch
import torch.nn.functional as F

from remaster.errors import ConfigError, WeightsError
from remaster.stages.flow import (
    DISFlow,
    RaftFlow,
    ZeroFlow,
    fb_consistent,
    make_flow_provider,
    motion_boundaries,
    resize_flow,
    warp,
)

CUDA = pytest.param(
    "cuda", marks=[pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")]
)
DEVICES = ["cpu", CUDA]


def texture(height: int, width: int, seed: int = 0) -> torch.Tensor:
    """Smooth random texture `(1, 1, H, W)` in [0, 1]: structure at several scales for the flow."""
    g = torch.Generator().manual_seed(seed)
    coarse = F.interpolate(
        torch.rand(1, 1, height // 6, width // 6, generator=g),
        size=(height, width),
        mode="bicubic",
        align_corners=False,
    )
    fine = F.interpolate(
        torch.rand(1, 1, height // 2, width // 2, generator=g),
        size=(height, width),
        mode="bilinear",
        align_corners=False,
    )
    return (0.7 * coarse + 0.3 * fine).clamp(0, 1)


def shifted_pair(dx: int, dy: int, size: int = 64, margin: int = 12):
    """(current, previous) crops of one texture with previous(x + dx, y + dy) = current(x, y)."""
    base = texture(size + 2 * margin, size + 2 * margin)
    current = base[..., margin : margin + size, margin : margin + size]
    previous = base[..., margin - dy : margin - dy + size, margin - dx : margin - dx + size]
    return current, previous


def test_dis_recovers_a_shift():
    current, previous = shifted_pair(dx=-2, dy=3)
    flow = DISFlow("medium")(current, previous)  # (1, 2, 64, 64)
    assert flow.shape == (1, 2, 64, 64) and flow.dtype == torch.float32
    interior = flow[..., 8:-8, 8:-8]
    assert interior[:, 0].mean().item() == pytest.approx(-2, abs=0.1)
    assert interior[:, 1].mean().item() == pytest.approx(3, abs=0.1)
    assert (interior - torch.tensor([-2.0, 3.0]).view(1, 2, 1, 1)).abs().median() < 0.2


def test_dis_batches_over_threads_match_one_by_one():
    pairs = [shifted_pair(dx, dy) for dx, dy in [(1, 0), (0, -2), (3, 1)]]
    current = torch.cat([c for c, _ in pairs])  # (3, 1, 64, 64)
    previous = torch.cat([p for _, p in pairs])
    provider = DISFlow("fast", threads=2)
    batched = provider(current, previous)  # (3, 2, 64, 64)
    single = torch.cat([provider(c, p) for c, p in pairs])
    assert torch.equal(batched, single)
    provider.close()


def test_warp_of_a_shifted_image_matches():
    current, previous = shifted_pair(dx=4, dy=-3)
    flow = torch.tensor([4.0, -3.0]).view(1, 2, 1, 1).expand(1, 2, 64, 64)  # (1, 2, 64, 64)
    warped, inside = warp(previous, flow)
    assert torch.allclose(warped[..., 3:, :-4], current[..., 3:, :-4], atol=1e-5)
    # Where the flow points outside the previous frame there is nothing to carry.
    assert not inside[..., :, -4:].any() and not inside[..., :3, :].any()
    assert inside[..., 3:, :-4].all()


def test_warp_with_zero_flow_is_identity_and_half_pixel_interpolates():
    image = torch.rand(2, 3, 9, 11)
    same, inside = warp(image, torch.zeros(2, 2, 9, 11))
    assert torch.allclose(same, image, atol=1e-6) and inside.all()
    half = torch.zeros(2, 2, 9, 11)
    half[:, 0] = 0.5
    between, _ = warp(image, half)
    assert torch.allclose(between[..., :-1], 0.5 * (image[..., :-1] + image[..., 1:]), atol=1e-5)


def test_warp_rejects_mismatched_flow():
    with pytest.raises(
        ValueError, match=r"expects flow \(N, 2, H, W\) matching image \(1, 3, 8, 8\), got \(1, 2, 4, 4\)"
    ):
        warp(torch.zeros(1, 3, 8, 8), torch.zeros(1, 2, 4, 4))


def test_resize_flow_scales_vectors():
    flow = torch.tensor([1.0, -2.0]).view(1, 2, 1, 1).expand(1, 2, 5, 9).contiguous()  # (1, 2, 5, 9)
    bigger = resize_flow(flow, (9, 17))  # twice the pixel spacing (align_corners geometry)
    assert bigger.shape == (1, 2, 9, 17)
    assert torch.allclose(bigger[:, 0], torch.full((1, 9, 17), 2.0)) and torch.allclose(
        bigger[:, 1], torch.full((1, 9, 17), -4.0)
    )


def moving_square_flows(size: int = 32, side: int = 8, step: int = 4):
    """Analytic flows of a square moving `step` px right over a static background."""
    top, left_prev = 12, 8
    left_cur = left_prev + step
    backward = torch.zeros(1, 2, size, size)  # flow t -> t-1
    backward[0, 0, top : top + side, left_cur : left_cur + side] = -step
    forward = torch.zeros(1, 2, size, size)  # flow t-1 -> t
    forward[0, 0, top : top + side, left_prev : left_prev + side] = step
    return backward, forward, (top, left_prev, left_cur, side, step)


def test_consistency_flags_occlusions():
    backward, forward, (top, left_prev, left_cur, side, step) = moving_square_flows()
    ok = fb_consistent(backward, forward)  # (1, 1, 32, 32)
    assert ok.shape == (1, 1, 32, 32) and ok.dtype == torch.bool
    # Background uncovered behind the square: it points at the square in t-1, which goes elsewhere.
    assert not ok[0, 0, top : top + side, left_prev : left_prev + step].any()
    # The square itself and the untouched background are consistent.
    assert ok[0, 0, top : top + side, left_cur : left_cur + side].all()
    assert ok[0, 0, :top].all() and ok[0, 0, top + side :].all()


def test_consistency_with_dis_on_a_moving_square():
    background = texture(96, 96, seed=1)
    patch = texture(96, 96, seed=2)[..., :24, :24]
    previous, current = background.clone(), background.clone()
    previous[..., 32:56, 24:48] = patch
    current[..., 32:56, 32:56] = patch  # moved 8 px right
    dis = DISFlow("medium")
    ok = fb_consistent(dis(current, previous), dis(previous, current))
    uncovered = ok[0, 0, 34:54, 25:31]  # background that the square hid in t-1
    assert uncovered.float().mean() < 0.2
    assert ok[0, 0, 76:, :].float().mean() > 0.9  # static background far from the square


def test_motion_boundaries_mark_edges_of_moving_regions():
    backward, _, (top, _, left_cur, side, _) = moving_square_flows()
    edges = motion_boundaries(backward)  # (1, 1, 32, 32)
    assert edges[0, 0, top + side // 2, left_cur - 1] and edges[0, 0, top + side // 2, left_cur]
    assert not edges[0, 0, top + 2 : top + side - 2, left_cur + 2 : left_cur + side - 2].any()  # inside: uniform motion
    assert not edges[0, 0, : top - 2].any()  # static background


def test_zero_flow_and_names():
    assert make_flow_provider("none").name == "none"
    flow = ZeroFlow()(torch.rand(2, 1, 8, 10), torch.rand(2, 1, 8, 10))
    assert torch.equal(flow, torch.zeros(2, 2, 8, 10))
    assert make_flow_provider("auto", device="cpu").name == "dis"  # auto on CPU: DIS
    assert make_flow_provider("dis").name == "dis"
    with pytest.raises(ConfigError, match="flow must be one of auto, raft, raft-small, dis, none, got 'farneback'"):
        make_flow_provider("farneback")
    with pytest.raises(ValueError, match=r"same shape \(N, 1, H, W\), got \(1, 1, 8, 8\) and \(1, 1, 8, 9\)"):
        DISFlow()(torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 8, 9))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("small", [True, False])
def test_raft_random_init_runs_with_right_shapes(device, small):
    # Random weights: the flow is meaningless, the plumbing (padding to 128 px and multiples of 8,
    # channel expansion, cropping back, device round trip) is what is checked.
    raft = RaftFlow(small=small, weights="random", device=device, iterations=2)
    assert raft.name == ("raft-small" if small else "raft") and raft.weights == "random"
    current, previous = torch.rand(2, 1, 36, 50), torch.rand(2, 1, 36, 50)
    flow = raft(current, previous)
    assert flow.shape == (2, 2, 36, 50) and flow.dtype == torch.float32 and flow.device == current.device
    assert torch.isfinite(flow).all()


def test_raft_loads_a_local_weights_file(tmp_path):
    from safetensors.torch import save_file

    reference = RaftFlow(small=True, weights="random", iterations=2)
    state = {k: v.contiguous() for k, v in reference.model.state_dict().items()}
    save_file(state, tmp_path / "raft_small.safetensors")
    torch.save(state, tmp_path / "raft_small.pth")
    current, previous = torch.rand(1, 1, 40, 40), torch.rand(1, 1, 40, 40)
    expected = reference(current, previous)
    for name in ("raft_small.safetensors", "raft_small.pth"):
        loaded = make_flow_provider("raft-small", weights=tmp_path / name, raft_iterations=2)
        assert isinstance(loaded, RaftFlow) and loaded.weights.endswith(name)
        assert torch.allclose(loaded(current, previous), expected, atol=1e-5)


def test_bad_local_weights_are_the_users_error(tmp_path):
    with pytest.raises(WeightsError, match="missing.safetensors: raft-small weights file not found"):
        make_flow_provider("raft-small", weights=tmp_path / "missing.safetensors")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a safetensors file")
    with pytest.raises(WeightsError, match="junk.safetensors: not a readable raft-small state dict"):
        make_flow_provider("raft-small", weights=junk)
    from safetensors.torch import save_file

    small = {k: v.contiguous() for k, v in RaftFlow(small=True, weights="random").model.state_dict().items()}
    save_file(small, tmp_path / "small.safetensors")
    with pytest.raises(WeightsError, match=r"small.safetensors: does not fit raft: expected \d+ tensors, got \d+"):
        make_flow_provider("raft", weights=tmp_path / "small.safetensors")


def test_raft_without_weights_offline_falls_back_to_dis(monkeypatch, tmp_path):
    # Offline and nothing cached: torchvision's download raises URLError. Simulate exactly that
    # (an empty hub cache and a failing download) so the test does not depend on the network.
    import torchvision.models._api as api

    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(api, "load_state_dict_from_url", offline)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.warns(
        RuntimeWarning, match=r"raft-small weights .* could not be loaded: .*; using DIS optical flow instead"
    ):
        provider = make_flow_provider("raft-small")
    assert provider.name == "dis"
    with pytest.warns(RuntimeWarning, match="using DIS"):
        assert make_flow_provider("auto", device="cuda").name == "dis"  # auto on CUDA without weights
