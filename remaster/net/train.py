"""Training the colorization network on a folder of photographs.

One step: random crops of cached photos (net/train_data.py) -> Y' -> L of that gray (the same input the
net gets from a film frame) -> net -> loss against the photo's true (a, b) at 1/4 resolution.

Recipes (`TrainConfig.recipe`):
- "bins": cross-entropy against soft-encoded (a, b) bins (5 nearest, Gaussian sigma 5), with
  class rebalancing (Zhang et al., ECCV 2016). Decoded by the annealed mean.
- "ab": rebalanced smooth-L1 regression of (a, b): the same rebalancing weights per pixel, so it
  is a fair comparison against plain regression's sepia.

Checkpoints are safetensors too (weights, AdamW moments, the sampler's RNG state; step, config
and optimizer hyper-parameters in the metadata), so resuming never unpickles anything, and a
resumed CPU run continues exactly as an uninterrupted one would.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from remaster.atomic import atomic_path
from remaster.color import luma_to_lightness, rgb_to_lab, rgb_to_luma
from remaster.device import resolve_device
from remaster.errors import ConfigError, WeightsError, one_line
from remaster.net.colorizer import InferenceConfig, save_weights
from remaster.net.hints import simulate_hints
from remaster.net.network import ColorNet, add_hint_inputs, build_net, count_parameters
from remaster.net.train_config import TrainConfig
from remaster.net.train_data import ab_gamut, build_cache, list_images, random_crops, rebalancing_weights

# (a, b) units squared added to a crop's gray error in the decoded loss, so that a crop of pure
# gray (error 0 for gray) does not divide by zero; 4 is JPEG noise's chroma (about 2 units).
DECODED_FLOOR = 4.0


def checkpoint_path(out: Path) -> Path:
    return out.with_name(out.stem + ".ckpt.safetensors")


def best_path(out: Path) -> Path:
    """Where a run with validation keeps the model of its best validation so far."""
    return out.with_name(out.stem + ".best.safetensors")


def photo_batch_to_training_pair(rgb: Tensor) -> tuple[Tensor, Tensor]:
    """RGB crops `(B,3,H,W)` -> net input L of their gray `(B,1,H,W)` and true (a, b) `(B,2,H,W)`."""
    lightness = luma_to_lightness(rgb_to_luma(rgb))  # (B, 1, H, W)
    ab = rgb_to_lab(rgb)[:, 1:]  # (B, 2, H, W)
    return lightness, ab


def soft_encode(ab: Tensor, bins: Tensor, neighbours: int, sigma: float) -> tuple[Tensor, Tensor]:
    """Soft targets over bins for each pixel, and each pixel's nearest bin.

    ab `(B, 2, h, w)` -> targets `(B, h, w, K)` and nearest `(B, h, w)`.
    """
    flat = ab.permute(0, 2, 3, 1).reshape(-1, 2)  # (P, 2)
    distance2 = torch.cdist(flat, bins) ** 2  # (P, K)
    near_d2, near_index = distance2.topk(neighbours, dim=1, largest=False)  # (P, n)
    weights = torch.softmax(-near_d2 / (2 * sigma**2), dim=1)  # Gaussian kernel, normalised
    targets = torch.zeros_like(distance2).scatter_(1, near_index, weights)  # (P, K)
    b, _, h, w = ab.shape
    return targets.reshape(b, h, w, -1), near_index[:, 0].reshape(b, h, w)


class Trainer:
    """Holds the net, optimizer, data and RNG of one training run; `run()` trains to the end."""

    def __init__(self, config: TrainConfig, data_dir, out: str | Path, *, val_dir=None, progress=True):
        self.config = config
        self.out = Path(out)
        self.val_dir = Path(val_dir) if val_dir else None
        self.progress = progress
        setup_started = time.time()
        self.device = resolve_device(config.device)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed crop size: let cuDNN pick its fastest kernels
        torch.manual_seed(config.seed)
        self.generator = torch.Generator().manual_seed(config.seed)
        folders = [data_dir] if isinstance(data_dir, (str, Path)) else list(data_dir)
        self.paths = [path for folder in folders for path in list_images(folder)]
        started = time.time()
        cache = build_cache(self.paths, config.cache_size, config.workers or None)
        self.cache_seconds = time.time() - started
        initial = self._initial_net(config)
        bins, prior = ab_gamut(cache, bins=None if initial is None else initial.ab_bins)
        self.cache = cache.to(self.device)
        self.class_weights = rebalancing_weights(bins, prior, mix=config.rebalance).to(self.device)
        self.bins = bins.to(self.device)
        if initial is None:
            net_config = replace(config.net, head=config.recipe, num_bins=len(bins))
            net = build_net(config=net_config, ab_bins=bins)
        else:
            net_config, net = initial.config, initial
        self.config = config = replace(config, net=net_config)
        self.net: ColorNet = net.to(self.device, memory_format=torch.channels_last)
        self.optimizer = torch.optim.AdamW(self.net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        self.step = 0
        self.elapsed = 0.0  # training seconds before this process (resume keeps the time budget)
        self.history: list[dict] = []
        self.autocast_dtype = torch.bfloat16 if self.device.type == "cuda" else None
        # Reported with the result: a GPU run spent 116 s of a 488 s call outside its training
        # loop, and with no breakdown nobody could say where.
        self.setup_seconds = time.time() - setup_started

    @staticmethod
    def _initial_net(config: TrainConfig) -> ColorNet | None:
        if not config.init:
            return None
        from remaster.net.colorizer import net_from_weights, read_weights

        net = net_from_weights(*read_weights(config.init), config.init)
        if net.config.head != config.recipe:
            raise ConfigError(f"{config.init}: a {net.config.head!r} model cannot continue as recipe {config.recipe!r}")
        return add_hint_inputs(net).float() if config.net.hints else net.float()

    # -- schedule --------------------------------------------------------------------------
    def progress_fraction(self, seconds: float) -> float:
        fraction = self.step / self.config.steps
        if self.config.minutes:
            fraction = max(fraction, seconds / (60.0 * self.config.minutes))
        return min(1.0, fraction)

    def learning_rate(self, fraction: float) -> float:
        warm = min(1.0, (self.step + 1) / max(1, self.config.warmup_steps))
        return self.config.lr * warm * 0.5 * (1.0 + math.cos(math.pi * fraction))

    # -- one step ----------------------------------------------------------------------------
    @property
    def inference(self) -> InferenceConfig:
        return InferenceConfig(temperature=self.config.temperature, doubt=self.config.doubt)

    def loss(self, rgb: Tensor) -> Tensor:
        lightness, ab = photo_batch_to_training_pair(rgb)
        lightness = lightness.contiguous(memory_format=torch.channels_last)
        target_ab = F.avg_pool2d(ab, 4)  # (B, 2, h, w): the net predicts at 1/4 resolution
        hints, unhinted_error = None, None
        if self.config.net.hints:
            none, points, clicks = self.config.hint_kinds
            if clicks or self.config.hint_gain_loss:  # both need the net's colors without hints
                with torch.no_grad():
                    free = self.net.decode_ab(
                        self._forward(lightness, None), self.config.temperature, self.config.doubt
                    )
                unhinted_error = (free - target_ab).pow(2).sum(1, keepdim=True)  # (B, 1, h, w)
            hints = simulate_hints(
                ab, self.generator, none=none, points=points, clicks=clicks, error=unhinted_error
            )  # (B, 3, H, W)
        output = self._forward(lightness, hints)  # (B, K|2, h, w)
        if self.config.recipe == "bins":
            targets, nearest = soft_encode(target_ab, self.bins, self.config.soft_neighbours, self.config.soft_sigma)
            log_probs = torch.log_softmax(output.permute(0, 2, 3, 1), dim=-1)  # (B, h, w, K)
            per_pixel = -(targets * log_probs).sum(-1)  # (B, h, w)
        else:
            nearest = torch.cdist(target_ab.permute(0, 2, 3, 1).reshape(-1, 2), self.bins).argmin(1)
            nearest = nearest.reshape(target_ab.shape[0], *target_ab.shape[2:])  # (B, h, w)
            per_pixel = F.smooth_l1_loss(output, target_ab, beta=1.0, reduction="none").sum(1) / 10.0  # (B, h, w)
        loss = (per_pixel * self.class_weights[nearest]).mean()
        if self.config.decoded_loss:
            decoded = self.net.decode_ab(output, self.config.temperature, self.config.doubt)  # (B, 2, h, w)
            error = (decoded - target_ab).pow(2).sum(1).mean((1, 2))  # (B,)
            gray_error = target_ab.pow(2).sum(1).mean((1, 2))  # (B,): what a gray crop would cost
            loss = loss + self.config.decoded_loss * (error / (gray_error + DECODED_FLOOR)).mean()
        if self.config.hint_gain_loss and unhinted_error is not None:
            hinted = hints[:, 2].flatten(1).amax(1) > 0  # (B,): crops given any hint
            if hinted.any():
                decoded = self.net.decode_ab(output, self.config.temperature, self.config.doubt)
                error = (decoded - target_ab).pow(2).sum(1).mean((1, 2))[hinted]
                ratio = torch.log((error + DECODED_FLOOR) / (unhinted_error.mean((1, 2, 3))[hinted] + DECODED_FLOOR))
                loss = loss + self.config.hint_gain_loss * (ratio + 2.0 * ratio.clamp(min=0)).mean()
        return loss

    def _forward(self, lightness: Tensor, hints: Tensor | None) -> Tensor:
        """The net's output `(B, K|2, h, w)` in float32, under mixed precision where the device has it."""
        with torch.autocast(
            self.device.type, dtype=self.autocast_dtype or torch.float32, enabled=self.autocast_dtype is not None
        ):
            return self.net(lightness, hints).float()

    def train_step(self, fraction: float) -> float:
        self.net.train()
        for group in self.optimizer.param_groups:
            group["lr"] = self.learning_rate(fraction)
        rgb = random_crops(
            self.cache,
            self.config.batch_size,
            self.config.crop,
            scale_range=self.config.scale_range,
            generator=self.generator,
        )
        loss = self.loss(rgb)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.step += 1
        return loss.item()  # CPU-GPU sync point, once per step: the progress bar needs the value

    # -- checkpoints ---------------------------------------------------------------------------
    def save_checkpoint(self) -> Path:
        from safetensors.torch import save_file

        tensors = {f"net.{k}": v.detach().contiguous() for k, v in self.net.state_dict().items()}
        state = self.optimizer.state_dict()
        for index, slots in state["state"].items():
            for slot, value in slots.items():
                tensors[f"optim.{index}.{slot}"] = torch.as_tensor(value).detach().contiguous()
        tensors["rng.sampler"] = self.generator.get_state()
        tensors["rng.torch"] = torch.get_rng_state()
        tensors = {k: v.cpu() for k, v in tensors.items()}
        metadata = {
            "format": "remaster-checkpoint",
            "train_config": json.dumps(self.config.to_dict()),
            "step": str(self.step),
            "elapsed": str(self.elapsed),
            "param_groups": json.dumps(state["param_groups"]),
            "history": json.dumps(self.history),
        }
        path = checkpoint_path(self.out)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:  # a crash mid-write leaves the previous checkpoint intact
            save_file(tensors, str(tmp), metadata=metadata)
        return path

    def load_checkpoint(self, path: Path) -> None:
        from safetensors import safe_open

        if not path.is_file():
            raise WeightsError(f"{path}: no checkpoint to resume from (run without --resume to start fresh)")
        try:
            with safe_open(str(path), framework="pt", device="cpu") as handle:
                metadata = handle.metadata() or {}
                tensors = {name: handle.get_tensor(name) for name in handle.keys()}
        except Exception as error:
            raise WeightsError(f"{path}: unreadable checkpoint: {one_line(error)}") from None
        saved = TrainConfig.from_dict(json.loads(metadata["train_config"]))
        if saved.net != self.config.net or saved.recipe != self.config.recipe:
            raise ConfigError(f"{path}: checkpoint was made with {saved.net}, this run builds {self.config.net}")
        self.net.load_state_dict({k[4:]: v.to(self.device) for k, v in tensors.items() if k.startswith("net.")})
        optim_state: dict = {}
        for name, value in tensors.items():
            if name.startswith("optim."):
                _, index, slot = name.split(".", 2)
                optim_state.setdefault(int(index), {})[slot] = value if slot == "step" else value.to(self.device)
        self.optimizer.load_state_dict({"state": optim_state, "param_groups": json.loads(metadata["param_groups"])})
        self.generator.set_state(tensors["rng.sampler"])
        torch.set_rng_state(tensors["rng.torch"])
        self.step = int(metadata["step"])
        self.elapsed = float(metadata["elapsed"])
        self.history = json.loads(metadata.get("history", "[]"))

    # -- validation and export ---------------------------------------------------------------
    def colorizer(self):
        from remaster.net.colorizer import Colorizer

        net = build_net(config=self.config.net)
        net.load_state_dict(self.net.state_dict())
        return Colorizer(net, inference=self.inference, device=self.device, name=self.out.stem)

    def validate(self) -> dict:
        from remaster.net.validate import evaluate_images

        paths = list_images(self.val_dir)
        if self.config.val_limit:
            paths = paths[: self.config.val_limit]
        # Validation photos come in many sizes: cuDNN's autotuner would re-benchmark every layer
        # for each new shape (that stalled a GPU run for minutes), so it is off while validating.
        benchmark = torch.backends.cudnn.benchmark
        torch.backends.cudnn.benchmark = False
        try:
            summary = evaluate_images(self.colorizer(), paths, long_side=self.config.val_long_side, progress=False)[
                "summary"
            ]
        finally:
            torch.backends.cudnn.benchmark = benchmark
        summary["step"] = self.step
        self.history.append(summary)
        return summary

    def keep_if_best(self, extra: dict | None = None) -> None:
        """Export to `best_path` when the latest validation beats every earlier one (PSNR gain
        over gray). Training past its best happened: two GPU runs of 180 epochs scored below
        the 7-epoch model they started from, and only their last export came back."""
        *earlier, latest = self.history
        if latest["psnr_gain"] > max((h["psnr_gain"] for h in earlier), default=-math.inf):
            self.export(extra, path=best_path(self.out))

    def export(self, extra: dict | None = None, *, path: Path | None = None) -> dict:
        info = {
            "training": {
                "recipe": self.config.recipe,
                "data": f"{len(self.paths)} photos",
                "steps": self.step,
                "seconds": round(self.elapsed, 1),
                "device": torch.cuda.get_device_name(self.device) if self.device.type == "cuda" else "cpu",
                "config": self.config.to_dict(),
            },
            "validation": self.history[-1] if self.history else {},
        }
        info.update(extra or {})
        return save_weights(self.net, path or self.out, inference=self.inference, extra=info)

    # -- the loop ---------------------------------------------------------------------------------
    def run(self) -> dict:
        from tqdm import tqdm

        steps_per_epoch = max(1, len(self.paths) // self.config.batch_size)
        val_every = self.config.val_every or steps_per_epoch
        bar = tqdm(
            total=self.config.steps, initial=self.step, unit="step", disable=not self.progress, dynamic_ncols=True
        )
        started = time.time() - self.elapsed
        losses: list[float] = []
        while True:
            self.elapsed = time.time() - started
            fraction = self.progress_fraction(self.elapsed)
            if fraction >= 1.0:
                break
            losses.append(self.train_step(fraction))
            bar.update(1)
            rate = self.step * self.config.batch_size / max(1e-9, time.time() - started)
            bar.set_postfix(loss=f"{sum(losses[-20:]) / len(losses[-20:]):.3f}", img_s=f"{rate:.0f}")
            if self.config.minutes:  # the time budget may end the run before `steps`: show that ETA
                bar.total = max(self.step + 1, min(self.config.steps, round(self.step / max(fraction, 1e-9))))
            extra = {"train_loss_last": sum(losses[-50:]) / len(losses[-50:])}
            if self.val_dir and self.step % val_every == 0:
                bar.write(f"step {self.step}: " + json.dumps(self.validate()))
                self.keep_if_best(extra)
            if self.step % self.config.checkpoint_every == 0:
                self.save_checkpoint()
                # The model too: a run killed later (a rented GPU's time running out) still leaves
                # a usable model, not only a checkpoint to resume from.
                self.export(extra)
        bar.close()
        self.elapsed = time.time() - started
        self.save_checkpoint()
        extra = {"train_loss_last": sum(losses[-50:]) / max(1, len(losses[-50:]))}
        card = self.export(extra)  # the model is safe on disk before validation starts
        if self.val_dir and (not self.history or self.history[-1]["step"] != self.step):
            self.validate()
            card = self.export(extra)
            self.keep_if_best(extra)
        return {
            "out": str(self.out),
            "steps": self.step,
            "seconds": round(self.elapsed, 1),
            "images_per_second": round(self.step * self.config.batch_size / max(1e-9, self.elapsed), 1),
            "cache_seconds": round(self.cache_seconds, 1),
            "setup_seconds": round(self.setup_seconds, 1),
            "finish_seconds": round(time.time() - started - self.elapsed, 1),  # last checkpoint, export, validation
            "parameters": count_parameters(self.net),
            "validation": self.history[-1] if self.history else {},
            "sha256": card["sha256"],
        }


def train(config: TrainConfig, data_dir, out, *, val_dir=None, resume: bool = False, progress: bool = True) -> dict:
    """Train a colorizer on the photos under `data_dir` (a folder, or a list of folders) and
    write `out` (.safetensors + .json)."""
    trainer = Trainer(config, data_dir, out, val_dir=val_dir, progress=progress)
    if resume:
        trainer.load_checkpoint(checkpoint_path(Path(out)))
    return trainer.run()
