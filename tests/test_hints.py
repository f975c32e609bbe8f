"""Color hints: the hint map, a hint-conditioned net started from a plain one, training with hints."""

import pytest
import torch

from remaster.errors import ConfigError
from remaster.hints import hint_map, point_hints, resize_hints, simulate_hints
from remaster.model import Colorizer, net_from_weights, read_weights, save_weights, InferenceConfig
from remaster.nets import NetConfig, add_hint_inputs, build_net, default_ab_bins
from remaster.train import Trainer

from test_train import TINY_NET, photo_dir, tiny_config  # noqa: F401  (fixture)


def _plain_net():
    bins = default_ab_bins()
    torch.manual_seed(0)
    net = build_net(config=NetConfig(widths=(8, 8, 16, 16), blocks=1, num_bins=len(bins)), ab_bins=bins)
    return net.eval()


def test_hint_inputs_start_as_the_plain_net():
    plain = _plain_net()
    hinted = add_hint_inputs(plain).eval()
    lightness = torch.rand(2, 1, 32, 48) * 100
    hints = hint_map(torch.randn(2, 2, 32, 48) * 40, torch.rand(2, 1, 32, 48))
    with torch.no_grad():
        expected = plain(lightness)
        assert torch.allclose(hinted(lightness), expected, atol=1e-5)
        assert torch.allclose(hinted(lightness, hints), expected, atol=1e-5)  # zero-initialised hint weights
    assert hinted.config.hints and not plain.config.hints


def test_hint_shapes_are_checked():
    hinted = add_hint_inputs(_plain_net())
    with pytest.raises(ValueError, match="hints of shape"):
        hinted(torch.zeros(1, 1, 32, 32), torch.zeros(1, 3, 16, 16))
    with pytest.raises(ValueError, match="takes no hints"):
        _plain_net()(torch.zeros(1, 1, 32, 32), torch.zeros(1, 3, 32, 32))


def test_plain_model_refuses_hints_with_advice():
    colorizer = Colorizer(_plain_net(), device="cpu", name="plain")
    with pytest.raises(ConfigError, match="remaster train --hints"):
        colorizer.chroma(torch.rand(1, 1, 32, 32), hints=torch.zeros(1, 3, 32, 32))


def test_point_hints_and_resize_keep_the_color():
    hints = point_hints(torch.zeros(1, 2, 64, 64), [(0.5, 0.5, 30.0, -40.0)], radius=4)
    assert hints[0, 2].sum() == 81 and torch.allclose(hints[0, :2, 32, 32] * 110, torch.tensor([30.0, -40.0]))
    small = resize_hints(hints, (16, 16))
    hinted = small[0, 2] > 0
    assert hinted.any()
    # Averaging by confidence: where any hint lands, its chroma is the hint's, not faded by the zeros around it.
    assert torch.allclose(small[0, 0][hinted] * 110, torch.full_like(small[0, 0][hinted], 30.0), atol=1e-3)


def test_simulated_hints_cover_every_kind():
    ab = torch.randn(64, 2, 32, 32) * 30
    hints = simulate_hints(ab, torch.Generator().manual_seed(0))
    given = (hints[:, 2] > 0).flatten(1).float().mean(1)  # hinted fraction per sample
    assert (given == 0).sum() > 16  # about half get no hints
    assert ((given > 0) & (given < 0.1)).any()  # sparse points
    assert (given > 0.3).any()  # dense carried chroma
    assert hints[:, :2].abs().max() <= 110 / 110 * 2  # chroma is scaled, not raw CIELAB


def test_training_with_hints_learns_to_follow_them(photo_dir, tmp_path):  # noqa: F811
    plain = tmp_path / "plain.safetensors"
    base = Trainer(tiny_config(), photo_dir, plain, progress=False)
    base.export()
    trainer = Trainer(tiny_config(net=NetConfig(widths=(8, 8, 16, 16), blocks=1, hints=True), init=str(plain)),
                      photo_dir, tmp_path / "hinted.safetensors", progress=False)
    assert trainer.net.config.num_bins == base.net.config.num_bins  # the bins of the model it starts from
    for _ in range(40):
        trainer.train_step(trainer.progress_fraction(0.0))
    out = tmp_path / "hinted.safetensors"
    trainer.export()
    net = net_from_weights(*read_weights(out), out).eval()
    # The hint pathway is no longer zero: hints now change the prediction.
    lightness = torch.rand(1, 1, 48, 48) * 100
    hints = hint_map(torch.full((1, 2, 48, 48), 60.0), torch.ones(1, 1, 48, 48))
    with torch.no_grad():
        free, steered = net.decode_ab(net(lightness)), net.decode_ab(net(lightness, hints))
    assert (steered - free).abs().mean() > 1.0
