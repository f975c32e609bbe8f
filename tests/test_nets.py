"""The network and the colorizer around it: shapes on odd sizes, no NaN, size limits."""

import pytest
import torch

from remaster.errors import ConfigError
from remaster.net.colorizer import Colorizer
from remaster.net.network import NetConfig, build_net, count_parameters, default_ab_bins

DEVICES = [
    "cpu",
    pytest.param("cuda", marks=[pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA")]),
]


@pytest.mark.parametrize("head", ["bins", "ab"])
def test_net_output_shapes(head):
    bins = default_ab_bins()
    net = build_net(config=NetConfig(head=head, num_bins=len(bins)), ab_bins=bins).eval()
    with torch.no_grad():
        out = net(torch.rand(2, 1, 64, 96) * 100)
        ab = net.decode_ab(out)
    assert out.shape == (2, len(bins) if head == "bins" else 2, 16, 24)
    assert ab.shape == (2, 2, 16, 24) and torch.isfinite(ab).all()


def test_default_net_is_within_budget():
    net = build_net(config=NetConfig(num_bins=len(default_ab_bins())))
    params = count_parameters(net)
    assert params <= 10_000_000
    assert params * 2 <= 25 * 2**20  # fp16 weights fit the 25 MB limit


def test_net_rejects_sizes_off_stride():
    net = build_net(config=NetConfig(num_bins=len(default_ab_bins())))
    with pytest.raises(ValueError, match="multiples of 16"):
        net(torch.zeros(1, 1, 30, 32))


def test_bad_config_is_a_clear_error():
    with pytest.raises(ConfigError, match="unknown head 'rgb'"):
        NetConfig(head="rgb")


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("size", [(1, 1), (17, 23), (241, 321), (480, 640), (1080, 1920)])
def test_colorizer_on_odd_sizes(device, size):
    colorizer = Colorizer.random(seed=0, device=device)
    luma = torch.rand(2, 1, *size)
    chroma = colorizer.chroma(luma)
    h, w = colorizer.working_size(*size)
    assert h % 16 == 0 and w % 16 == 0
    assert chroma.shape == (2, 2, h, w)
    assert torch.isfinite(chroma).all() and chroma.abs().max() <= 0.5 + 1e-4


def test_working_size_keeps_aspect_and_short_side():
    colorizer = Colorizer.random(seed=0)
    assert colorizer.working_size(1080, 1920) == (256, 448)
    assert colorizer.working_size(480, 640) == (256, 336)
    assert colorizer.working_size(64, 64) == (64, 64)  # never upscaled


def test_colorizer_is_deterministic_on_cpu():
    colorizer = Colorizer.random(seed=3)
    luma = torch.rand(1, 1, 48, 80, generator=torch.Generator().manual_seed(0))
    assert torch.equal(colorizer.chroma(luma), colorizer.chroma(luma))


def test_random_colorizer_is_not_gray():
    chroma = Colorizer.random(seed=0).chroma(torch.rand(1, 1, 64, 64))
    assert chroma.abs().mean() > 0.01


def test_shipped_default_model_is_intact():
    """The model in models/ loads, matches the sha256 of its card, and fits the size limits."""
    import json

    from remaster.net.colorizer import default_model_path, sha256_of

    path = default_model_path()
    if not path.is_file():
        pytest.skip(f"no default model at {path}")
    card = json.loads(path.with_suffix(".json").read_text())
    assert sha256_of(path) == card["sha256"]
    assert path.stat().st_size <= 25 * 10**6
    colorizer = Colorizer.load(path, device="cpu")
    assert count_parameters(colorizer.net) <= 10_000_000
    chroma = colorizer.chroma(torch.rand(1, 1, 48, 64))
    assert torch.isfinite(chroma).all()
