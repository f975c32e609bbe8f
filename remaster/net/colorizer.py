"""The colorizer: a trained `ColorNet` plus how to run it on luma, and its weights file.

Weights are safetensors (never a pickle: DESIGN promise 7), stored in fp16, with the
architecture config, the decoding temperature, training facts and metrics as string metadata;
`save_weights` also writes `NAME.json` beside them with the same metadata and the file's sha256.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from remaster.atomic import atomic_path, sha256_of
from remaster.color import fit_chroma_to_gamut, lab_to_chroma, luma_chroma_to_rgb, luma_to_lightness
from remaster.device import resolve_device
from remaster.errors import ConfigError, WeightsError, one_line
from remaster.net.edge_aware import EdgeAware, edge_aware_step
from remaster.net.hints import resize_hints
from remaster.net.network import STRIDE, ColorNet, NetConfig, build_net, count_parameters, default_ab_bins

FORMAT = "remaster-colornet"
FORMAT_VERSION = "1"
DEFAULT_MODEL_NAME = "remaster-default.safetensors"
# The shipped model for colors that someone steers (hint points, a colorist's keyframes carried
# along a film): it follows hints far more closely than the default, whose automatic colors are
# better (models/MODEL_CARD.md). A model given by --model is used for both.
HINTS_MODEL_NAME = "remaster-hints.safetensors"


@dataclass(frozen=True)
class InferenceConfig:
    # Short side of the network's working resolution. Chroma is smooth, so 256 keeps colors
    # while making a 4K frame as cheap as a 720p one for the net (DESIGN "The shape").
    working_short_side: int = 256
    # Annealed-mean temperature for the "bins" head (Zhang et al. 2016 use 0.38).
    temperature: float = 0.38
    # Uncertainty-aware decoding (nets.ColorNet.decode_ab): the spread of the net's color
    # distribution, in CIELAB units, at which chroma is halved and moved to the plain mean.
    # 0 = off (the first shipped model). Chosen per model by benchmarks/bench_decoding.py.
    doubt: float = 0.0


def default_model_path(hints: bool = False) -> Path:
    """The shipped default model (with `hints`, the one for steered colors): $REMASTER_MODEL
    ($REMASTER_HINTS_MODEL), the repository's models/, or the installed copy."""
    variable, name = ("REMASTER_HINTS_MODEL", HINTS_MODEL_NAME) if hints else ("REMASTER_MODEL", DEFAULT_MODEL_NAME)
    if os.environ.get(variable):
        return Path(os.environ[variable])
    candidates = [
        Path(__file__).resolve().parents[2] / "models" / name,  # source checkout / editable install
        Path(sys.prefix) / "share" / "remaster" / "models" / name,  # wheel install (data-files)
    ]
    for path in candidates:
        if path.is_file():
            return path
    return candidates[0]


def save_weights(net: ColorNet, path: str | Path, *, inference: InferenceConfig, extra: dict | None = None) -> dict:
    """Write fp16 safetensors plus `<path without suffix>.json` (metadata + sha256); return the metadata."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {
        name: (t.detach().to("cpu", torch.float16) if t.is_floating_point() else t.detach().cpu()).contiguous()
        for name, t in net.state_dict().items()
    }
    metadata = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "net_config": json.dumps(net.config.to_dict()),
        "inference": json.dumps(inference.__dict__),
        "parameters": str(count_parameters(net)),
    }
    for key, value in (extra or {}).items():
        metadata[key] = value if isinstance(value, str) else json.dumps(value)
    with atomic_path(path) as tmp:  # never leave a half-written model where a loader would find it
        save_file(tensors, str(tmp), metadata=metadata)
    card = {key: _maybe_json(value) for key, value in metadata.items()}
    card["sha256"] = sha256_of(path)
    card["bytes"] = path.stat().st_size
    path.with_suffix(".json").write_text(json.dumps(card, indent=2) + "\n")
    return card


def _maybe_json(value: str):
    try:
        return json.loads(value)
    except (TypeError, ValueError):
        return value


def read_weights(path: str | Path) -> tuple[dict[str, Tensor], dict[str, str]]:
    """Tensors and metadata of a safetensors model file, with one-line errors for bad files."""
    from safetensors import safe_open

    path = Path(path)
    if not path.exists():
        raise WeightsError(f"{path}: model file not found (train one with `remaster train` or pass --model PATH)")
    if path.is_dir():
        raise WeightsError(f"{path}: is a folder, expected a .safetensors model file")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            metadata = handle.metadata() or {}
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}
    except Exception as error:  # safetensors raises several types for corrupt headers/data
        hint = " (it looks like a pickle; remaster only loads safetensors)" if _looks_like_pickle(path) else ""
        raise WeightsError(f"{path}: not a readable safetensors model{hint}: {one_line(error)}") from None
    if metadata.get("format") != FORMAT:
        raise WeightsError(
            f"{path}: expected a remaster model (metadata format={FORMAT!r}), got {metadata.get('format')!r}"
        )
    return tensors, metadata


def _looks_like_pickle(path: Path) -> bool:
    with open(path, "rb") as handle:
        head = handle.read(4)
    return head[:1] == b"\x80" or head[:2] == b"PK"  # pickle protocol 2+ or torch's zip format


def net_from_weights(tensors: dict[str, Tensor], metadata: dict[str, str], path: str | Path = "<memory>") -> ColorNet:
    """Rebuild the net from the config in the metadata and load the tensors, checking every shape."""
    try:
        config = NetConfig.from_dict(json.loads(metadata["net_config"]))
    except (KeyError, TypeError, ValueError) as error:
        raise WeightsError(f"{path}: model metadata has no valid net_config ({error})") from None
    net = build_net(config=config)
    expected = net.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        raise WeightsError(
            f"{path}: tensors do not match the network: missing {missing[:3]}, unexpected {unexpected[:3]}"
        )
    for name, tensor in tensors.items():
        if tuple(tensor.shape) != tuple(expected[name].shape):
            raise WeightsError(
                f"{path}: tensor {name} has shape {tuple(tensor.shape)}, expected {tuple(expected[name].shape)}"
            )
    net.load_state_dict({name: t.to(expected[name].dtype) for name, t in tensors.items()})
    return net


class Colorizer:
    """Runs a `ColorNet` on full-range luma and returns chroma offsets (see docs/CONTRACTS.md)."""

    def __init__(
        self, net: ColorNet, *, inference: InferenceConfig | None = None, device="auto", name: str = "", metadata=None
    ):
        self.device = resolve_device(device)
        self.inference = inference or InferenceConfig()
        self.name = name
        self.metadata = dict(metadata or {})
        # Channels-last helps on both CPU (oneDNN, measured 1.6x on 2 cores) and CUDA tensor cores.
        self.net = net.eval().to(self.device, memory_format=torch.channels_last)
        # bf16 where the GPU has it, else fp16; CPU stays float32 (DESIGN: deterministic on CPU).
        self.set_precision("auto")

    @property
    def precision(self) -> str:
        """What the network computes in: float32, bfloat16 or float16."""
        return str(self._autocast_dtype or torch.float32).removeprefix("torch.")

    def set_precision(self, precision: str = "auto") -> None:
        """`auto` (bf16 where the GPU has it, else fp16; float32 on the CPU), `fp32`, `bf16` or `fp16`.
        The CPU runs float32 only: its bf16 kernels are slower there and it must stay deterministic."""
        from remaster.errors import ConfigError

        dtypes = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
        if precision == "auto":
            self._autocast_dtype = None
            if self.device.type == "cuda":
                self._autocast_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
            return
        if precision not in dtypes:
            raise ConfigError(f"precision must be auto, fp32, bf16 or fp16, got {precision!r}")
        if self.device.type != "cuda" and precision != "fp32":
            raise ConfigError(
                f"precision {precision} needs a CUDA device; the CPU runs fp32 (use --precision auto or fp32)"
            )
        self._autocast_dtype = dtypes[precision]

    @classmethod
    def load(
        cls,
        path: str | Path | None = None,
        *,
        device="auto",
        working_short_side: int | None = None,
        hints: bool = False,
        doubt: float | None = None,
    ) -> Colorizer:
        """The model at `path`, or the shipped default (with `hints`, the shipped model for steered colors).
        `working_short_side` and `doubt` (InferenceConfig) replace the model's own when given."""
        if doubt is not None and not doubt >= 0:
            raise ConfigError(f"doubt must be 0 (no fading) or more, got {doubt}")
        path = Path(path) if path is not None else default_model_path(hints)
        tensors, metadata = read_weights(path)
        net = net_from_weights(tensors, metadata, path)
        inference = InferenceConfig(**json.loads(metadata.get("inference", "{}")))
        if working_short_side is not None:
            inference = replace(inference, working_short_side=working_short_side)
        if doubt is not None:
            inference = replace(inference, doubt=float(doubt))
        metadata = {**metadata, "sha256": sha256_of(path)}  # identifies the model in reports
        return cls(net, inference=inference, device=device, name=path.stem, metadata=metadata)

    @classmethod
    def random(cls, seed: int = 0, *, device="cpu", config: NetConfig | None = None) -> Colorizer:
        """A randomly initialised real network, for plumbing tests (its colors mean nothing)."""
        torch.manual_seed(seed)
        bins = default_ab_bins()
        config = config or NetConfig(num_bins=len(bins))
        net = build_net(config=config, ab_bins=bins)
        with torch.no_grad():  # untrained BN statistics would make every output gray; widen them
            net.head.weight.mul_(50.0)
        return cls(net, device=device, name=f"random-seed{seed}")

    @property
    def takes_hints(self) -> bool:
        return self.net.config.hints

    def working_size(self, height: int, width: int) -> tuple[int, int]:
        """Network resolution for an H x W frame: short side about `working_short_side`, never
        upscaled beyond the frame by more than the rounding to a multiple of `STRIDE`."""
        scale = min(1.0, self.inference.working_short_side / min(height, width))
        return (
            max(STRIDE, round(height * scale / STRIDE) * STRIDE),
            max(STRIDE, round(width * scale / STRIDE) * STRIDE),
        )

    @torch.inference_mode()
    def chroma(self, luma: Tensor, matrix: str = "bt601", hints: Tensor | None = None) -> Tensor:
        """`(N, 1, H, W)` full-range Y' in [0, 1] -> `(N, 2, h, w)` (Cb, Cr) offsets at `working_size(H, W)`.

        `hints`: a hint map `(N, 3, h', w')` (hints.py) at any size, for a hint-conditioned
        model; it is resized to the working size."""
        if luma.ndim != 4 or luma.shape[1] != 1:
            raise ValueError(f"expected luma of shape (N, 1, H, W), got {tuple(luma.shape)}")
        h, w = self.working_size(*luma.shape[-2:])
        y = luma.to(self.device, non_blocking=True).float()  # host->device copy of luma only
        if y.shape[-2:] != (h, w):
            y = F.interpolate(y, size=(h, w), mode="bilinear", antialias=True, align_corners=False)  # (N, 1, h, w)
        lightness = luma_to_lightness(y)  # (N, 1, h, w)
        net_input = lightness.contiguous(memory_format=torch.channels_last)
        if hints is not None:
            if not self.takes_hints:
                raise ConfigError(
                    f"model {self.name!r} takes no color hints: use a hint-conditioned model (remaster train --hints)"
                )
            hints = resize_hints(hints.to(self.device).float(), (h, w))  # (N, 3, h, w)
        with torch.autocast(
            self.device.type, dtype=self._autocast_dtype or torch.float32, enabled=self._autocast_dtype is not None
        ):
            output = self.net(net_input, hints)  # (N, K, h/4, w/4)
        ab = self.net.decode_ab(output, self.inference.temperature, self.inference.doubt)  # (N, 2, h/4, w/4)
        ab = F.interpolate(ab, size=(h, w), mode="bilinear", align_corners=False)  # (N, 2, h, w)
        return lab_to_chroma(lightness, ab, matrix).contiguous()  # (N, 2, h, w)

    def describe(self) -> dict:
        return {
            "model": self.name,
            "parameters": count_parameters(self.net),
            "device": str(self.device),
            "working_short_side": self.inference.working_short_side,
            "doubt": self.inference.doubt,
            "sha256": self.metadata.get("sha256", ""),
        }


def colorize_luma(
    colorizer, luma: Tensor, matrix: str = "bt601", hints: Tensor | None = None, edges: EdgeAware | None = None
) -> Tensor:
    """`(N, 1, H, W)` Y' in [0, 1] -> `(N, 3, H, W)` RGB in [0, 1] whose luma is the input's.

    `hints`: a hint map (hints.py) for a hint-conditioned model, e.g. `hints.point_hints`; the
    change they make can be kept to the hinted objects by `edges` (edge_aware.py; None: as the net gives it)."""
    chroma = colorizer.chroma(luma, matrix, hints)  # (N, 2, h, w) at the working resolution
    if hints is not None and edges is not None:
        small = F.interpolate(
            luma.to(chroma.device, torch.float32), size=chroma.shape[-2:], mode="bilinear", antialias=True
        )  # (N, 1, h, w), as the net saw it
        hints = resize_hints(hints.to(chroma.device).float(), chroma.shape[-2:])
        chroma = edge_aware_step(small, colorizer.chroma(luma, matrix), chroma, hints, edges)
    luma = luma.to(chroma.device, torch.float32)
    chroma = F.interpolate(chroma, size=luma.shape[-2:], mode="bilinear", align_corners=False)  # (N, 2, H, W)
    chroma = fit_chroma_to_gamut(luma, chroma, matrix)
    return luma_chroma_to_rgb(luma, chroma, matrix).clamp(0.0, 1.0)  # clamp only trims float error
