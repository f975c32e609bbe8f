"""Training: the loss goes down, checkpoints resume exactly, weights round-trip safely."""

import json
import pickle

import cv2
import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from remaster.errors import ConfigError, WeightsError
from remaster.net.colorizer import Colorizer, InferenceConfig, net_from_weights, read_weights, save_weights
from remaster.net.network import NetConfig, build_net, default_ab_bins
from remaster.net.train import Trainer, best_path, checkpoint_path, train
from remaster.net.train_config import TrainConfig

TINY_NET = NetConfig(widths=(8, 8, 16, 16), blocks=1)


@pytest.fixture(scope="module")
def photo_dir(tmp_path_factory):
    """Twelve 48x48 'photos' whose colors follow their brightness and layout: learnable."""
    folder = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    for i in range(12):
        image = np.zeros((48, 48, 3), np.uint8)
        image[:20] = (70 + 10 * (i % 3), 130, 230)  # a bright blue sky
        image[20:] = (40, 140 + 5 * (i % 4), 50)  # green ground
        image = np.clip(image + rng.integers(-8, 8, image.shape), 0, 255).astype(np.uint8)
        cv2.imwrite(str(folder / f"p{i:02d}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    return folder


def tiny_config(**changes):
    base = dict(
        net=TINY_NET,
        steps=30,
        batch_size=8,
        crop=32,
        cache_size=48,
        lr=5e-3,
        warmup_steps=1,
        checkpoint_every=1000,
        workers=1,
        device="cpu",
    )
    base.update(changes)
    return TrainConfig(**base)


@pytest.mark.parametrize("recipe", ["bins", "ab"])
def test_a_few_steps_lower_the_loss(photo_dir, tmp_path, recipe):
    trainer = Trainer(tiny_config(recipe=recipe), photo_dir, tmp_path / "m.safetensors", progress=False)
    batch = torch.Generator().manual_seed(5)
    from remaster.net.train_data import random_crops

    fixed = random_crops(trainer.cache, 16, 32, generator=batch)
    with torch.no_grad():
        trainer.net.eval()
        before = trainer.loss(fixed).item()
    for _ in range(30):
        trainer.train_step(trainer.progress_fraction(0.0))
    with torch.no_grad():
        trainer.net.eval()
        after = trainer.loss(fixed).item()
    assert after < 0.9 * before, (before, after)  # soft-target cross-entropy has a floor well above 0


def test_decoded_loss_trains_the_colors_as_decoded(photo_dir, tmp_path):
    from dataclasses import replace

    from remaster.net.train_data import random_crops

    fixed_rgb = None

    def decoded_ratio(trainer) -> float:  # the decoded term alone: the loss with it minus the loss without
        trainer.net.eval()
        with torch.no_grad():
            plain = replace(trainer.config, decoded_loss=0.0)
            with_term, trainer.config = trainer.config, replace(plain, decoded_loss=1.0)
            total = trainer.loss(fixed_rgb).item()
            trainer.config = plain
            ratio = total - trainer.loss(fixed_rgb).item()
            trainer.config = with_term
        return ratio

    ratios = {}
    for weight in (0.0, 1.0):
        trainer = Trainer(
            tiny_config(decoded_loss=weight, doubt=30.0), photo_dir, tmp_path / f"{weight}.safetensors", progress=False
        )
        if fixed_rgb is None:
            fixed_rgb = random_crops(trainer.cache, 16, 32, generator=torch.Generator().manual_seed(5))
            before = decoded_ratio(trainer)
        for _ in range(30):
            trainer.train_step(trainer.progress_fraction(0.0))
        ratios[weight] = decoded_ratio(trainer)
    assert before > 0.5  # an untrained net's colors are about as far from the truth as gray's
    assert ratios[1.0] < ratios[0.0] < before, (before, ratios)  # the term trains what the user sees
    card = trainer.export()
    assert card["inference"]["doubt"] == 30.0  # the decoding it trained for travels with it


@pytest.mark.parametrize("change", [{"doubt": -1.0}, {"decoded_loss": -0.5}])
def test_negative_decoding_settings_are_refused(change):
    with pytest.raises(ConfigError, match="doubt and decoded_loss must be 0 or more"):
        tiny_config(**change)


def test_resume_continues_exactly(photo_dir, tmp_path):
    straight = train(tiny_config(steps=6), photo_dir, tmp_path / "a" / "m.safetensors", progress=False)
    first = Trainer(tiny_config(steps=6), photo_dir, tmp_path / "b" / "m.safetensors", progress=False)
    for _ in range(3):
        first.train_step(first.progress_fraction(0.0))
    first.save_checkpoint()
    resumed = train(tiny_config(steps=6), photo_dir, tmp_path / "b" / "m.safetensors", resume=True, progress=False)
    assert resumed["steps"] == straight["steps"] == 6
    a, _ = read_weights(tmp_path / "a" / "m.safetensors")
    b, _ = read_weights(tmp_path / "b" / "m.safetensors")
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name


def test_resume_without_checkpoint_is_a_clear_error(photo_dir, tmp_path):
    with pytest.raises(WeightsError, match="no checkpoint to resume from"):
        train(tiny_config(steps=2), photo_dir, tmp_path / "m.safetensors", resume=True, progress=False)


def test_resume_with_another_architecture_is_refused(photo_dir, tmp_path):
    out = tmp_path / "m.safetensors"
    train(tiny_config(steps=1), photo_dir, out, progress=False)
    other = tiny_config(steps=2, net=NetConfig(widths=(8, 8, 16, 32), blocks=1))
    with pytest.raises(ConfigError, match="checkpoint was made with"):
        train(other, photo_dir, out, resume=True, progress=False)


def test_checkpoint_is_safetensors_with_state(photo_dir, tmp_path):
    out = tmp_path / "m.safetensors"
    train(tiny_config(steps=2), photo_dir, out, progress=False)
    from safetensors import safe_open

    with safe_open(str(checkpoint_path(out)), framework="pt") as handle:
        keys = set(handle.keys())
        meta = handle.metadata()
    assert meta["step"] == "2" and json.loads(meta["train_config"])["recipe"] == "bins"
    assert any(k.startswith("optim.") and k.endswith("exp_avg") for k in keys) and "rng.sampler" in keys


def test_weights_round_trip_with_metadata(tmp_path):
    bins = default_ab_bins()
    net = build_net(config=NetConfig(num_bins=len(bins)), ab_bins=bins)
    card = save_weights(
        net, tmp_path / "m.safetensors", inference=InferenceConfig(temperature=0.3), extra={"metrics": {"psnr": 1.5}}
    )
    tensors, metadata = read_weights(tmp_path / "m.safetensors")
    assert all(t.dtype == torch.float16 for t in tensors.values() if t.is_floating_point())
    rebuilt = net_from_weights(tensors, metadata)
    assert rebuilt.config == net.config
    for name, value in net.state_dict().items():
        assert torch.allclose(rebuilt.state_dict()[name].float(), value.float(), atol=1e-2, rtol=1e-3), name
    sidecar = json.loads((tmp_path / "m.json").read_text())
    assert sidecar["sha256"] == card["sha256"] and len(card["sha256"]) == 64
    assert sidecar["metrics"] == {"psnr": 1.5} and sidecar["parameters"] == card["parameters"]
    assert Colorizer.load(tmp_path / "m.safetensors").inference.temperature == 0.3


def test_truncated_weights_are_refused(tmp_path):
    bins = default_ab_bins()
    path = tmp_path / "m.safetensors"
    save_weights(build_net(config=NetConfig(num_bins=len(bins))), path, inference=InferenceConfig())
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError, match="not a readable safetensors model"):
        Colorizer.load(path)


def test_pickle_weights_are_refused(tmp_path):
    path = tmp_path / "m.safetensors"
    path.write_bytes(pickle.dumps({"weight": [1, 2, 3]}, protocol=4))
    with pytest.raises(WeightsError, match="looks like a pickle"):
        Colorizer.load(path)


def test_wrong_shapes_are_refused(tmp_path):
    bins = default_ab_bins()
    net = build_net(config=NetConfig(num_bins=len(bins)))
    path = tmp_path / "m.safetensors"
    save_weights(net, path, inference=InferenceConfig())
    tensors, metadata = read_weights(path)
    tensors["head.weight"] = torch.zeros(3, 3, 1, 1)
    save_file(tensors, str(path), metadata=metadata)
    with pytest.raises(WeightsError, match=r"tensor head.weight has shape \(3, 3, 1, 1\), expected"):
        Colorizer.load(path)


def test_missing_weights_are_a_clear_error(tmp_path):
    with pytest.raises(WeightsError, match="model file not found"):
        Colorizer.load(tmp_path / "nope.safetensors")


def test_validation_keeps_the_best_model_beside_the_latest(photo_dir, tmp_path):
    out = tmp_path / "m.safetensors"
    trainer = Trainer(
        tiny_config(steps=12, val_every=4, val_long_side=64), photo_dir, out, val_dir=photo_dir, progress=False
    )
    trainer.run()
    gains = [entry["psnr_gain"] for entry in trainer.history]
    assert len(gains) == 3  # steps 4, 8, 12
    best = best_path(out)
    assert best.is_file() and out.is_file()
    _, metadata = read_weights(best)
    assert json.loads(metadata["validation"])["psnr_gain"] == max(gains)
