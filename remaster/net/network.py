"""The colorization network: lightness in, chroma (CIELAB a, b) out.

A small fully convolutional U-Net. It starts at stride 2 so that no convolution runs at the full
working resolution (that is where a naive U-Net spends most of its time on a CPU), does most of
its thinking at 1/16 with dilated residual blocks and a global-context branch (scene-level cues
such as "outdoors, sky at the top" decide many colors), and predicts at 1/4 resolution: chroma
is smooth, so predicting it at 1/4 and upsampling costs little quality and a lot less compute
(DESIGN.md "What we already know": a full-resolution bin head halved the speed).

Two heads, chosen by `NetConfig.head`:
- "bins": logits over quantized (a, b) bins (Zhang et al., "Colorful Image Colorization", ECCV
  2016), decoded by the annealed mean; resists the washed-out average of plain regression.
- "ab": direct regression of (a, b).

Built by injection with a keyword-only builder (`build_net(config=...)`, as torchvision's
`raft.py` does); `NetConfig` travels in the weights' metadata so loading rebuilds the same net.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from remaster.errors import ConfigError

STRIDE = 16  # working sizes must be multiples of this (four stride-2 stages)
AB_BIN_SIZE = 10.0  # width of one (a, b) bin in CIELAB units (Zhang et al. use 10)


@dataclass(frozen=True)
class NetConfig:
    # Channels at 1/2, 1/4, 1/8, 1/16 of the working resolution. Cost is spread evenly across
    # stages by doubling channels as the area quarters; the 1/16 stage holds most parameters.
    widths: tuple[int, int, int, int] = field(
        default=(24, 48, 96, 192),
        metadata={
            "help": "The network's channels at 1/2, 1/4, 1/8 and 1/16 of its working resolution: four "
            "comma-separated integers. Wider is slower; it may color better given data and time."
        },
    )
    # Dilated residual blocks at 1/16: cheap there, and they grow the receptive field to the
    # whole working frame, which object colors need.
    blocks: int = field(
        default=4,
        metadata={
            "help": "Dilated residual blocks at 1/16 resolution: they widen how much of the picture the network "
            "sees at once."
        },
    )
    head: str = "bins"  # "bins" (classification) or "ab" (regression)
    num_bins: int = 313  # length of the ab-bin table (set from the training data's gamut)
    # Hint-conditioned (Zhang et al. 2017): a 3-channel hint map (a, b, confidence; see
    # hints.py) enters beside lightness at the input and again at the 1/4 decoder, where a
    # point hint is still sharp. False: lightness only (the first shipped model).
    hints: bool = field(
        default=False,
        metadata={
            "help": "Train a hint-conditioned network (Zhang et al. 2017): besides gray it takes color hints "
            "(points, palettes, a colorist's keyframes carried along the film), simulated during training; with "
            "no hints it is the automatic colorizer."
        },
    )

    def __post_init__(self) -> None:
        if self.head not in ("bins", "ab"):
            raise ConfigError(f"unknown head {self.head!r}: expected 'bins' or 'ab'")
        if len(self.widths) != 4 or min(self.widths) < 4:
            raise ConfigError(f"widths must be four positive channel counts, got {self.widths}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> NetConfig:
        values = dict(values)
        values["widths"] = tuple(values["widths"])
        return cls(**values)


def _conv(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=dilation, dilation=dilation, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class _Merge(nn.Sequential):
    """A 1x1 convolution merging a skip connection, on one CPU thread (`one_cpu_thread`): oneDNN
    splits a 1x1 convolution's sum over many input channels among the threads on some CPUs (288
    channels at 1/8 size on an AVX-512 EPYC: 1.6e-5 apart on 1 and 2 threads), as MKL does a small
    matrix product. The 3x3 convolutions measured the same there."""

    def forward(self, x: Tensor) -> Tensor:
        with one_cpu_thread(x):
            return super().forward(x)


def _merge(cin: int, cout: int) -> nn.Sequential:
    return _Merge(nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class _Residual(nn.Module):
    def __init__(self, channels: int, dilation: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            _conv(channels, channels, dilation=dilation),
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
        )

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(x + self.body(x))


class _GlobalContext(nn.Module):
    """Adds an image-wide summary to every position (a cheap form of the global branch of
    Iizuka et al. 2016, "Let there be Color!")."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(channels, channels), nn.ReLU(inplace=True), nn.Linear(channels, channels))

    def forward(self, x: Tensor) -> Tensor:
        with one_cpu_thread(x):  # MKL splits this small matrix product by threads: see one_cpu_thread
            summary = self.mlp(x.mean(dim=(2, 3)))  # (N, C)
        return F.relu(x + summary[:, :, None, None])


@contextmanager
def one_cpu_thread(x: Tensor):
    """Run the block on one torch thread where `x` is on the CPU (elsewhere, as it is).

    MKL's matrix product of a few rows (`nn.Linear` on (N, C), N = 4..8) splits the sum over C
    among the threads, so its last bit changed with the thread count: a plain run (a thread per
    core) and `--workers N` (cores / N each) then differed by one code value in a few frames
    (DESIGN promise 8). On one thread it is the same however the run executes, and the product
    takes microseconds (network time 1.003x, 640x480, batch 8). The 3x3 convolutions keep every
    thread: their results were measured the same on 1 and 2 threads; the 1x1 ones do not (`_Merge`)."""
    threads = torch.get_num_threads() if x.device.type == "cpu" else 1
    if threads > 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if threads > 1:
            torch.set_num_threads(threads)


class ColorNet(nn.Module):
    """`forward(lightness, hints=None)`: `(N, 1, H, W)` CIELAB L in [0, 100], H and W multiples of
    `STRIDE`, and for a hint-conditioned net an optional hint map `(N, 3, H, W)` (hints.py; None
    means no hints), to `(N, K, H/4, W/4)` logits ("bins") or `(N, 2, H/4, W/4)` (a, b) ("ab")."""

    def __init__(self, *, config: NetConfig) -> None:
        super().__init__()
        self.config = config
        w1, w2, w3, w4 = config.widths
        extra = 3 if config.hints else 0
        self.enc1 = nn.Sequential(_conv(1 + extra, w1, stride=2), _conv(w1, w1))  # 1/2
        self.enc2 = nn.Sequential(_conv(w1, w2, stride=2), _conv(w2, w2))  # 1/4
        self.enc3 = nn.Sequential(_conv(w2, w3, stride=2), _conv(w3, w3))  # 1/8
        dilations = [(1, 2, 4, 1)[i % 4] for i in range(config.blocks)]
        self.enc4 = nn.Sequential(
            _conv(w3, w4, stride=2), *[_Residual(w4, d) for d in dilations], _GlobalContext(w4)
        )  # 1/16
        # Decoder stages merge the skip connection with a 1x1 convolution before the 3x3: the
        # concatenated input is wide, and a 3x3 over it at 1/4 resolution cost a fifth of the net.
        self.dec3 = nn.Sequential(_merge(w4 + w3, w3), _conv(w3, w3))  # 1/8
        self.dec2 = nn.Sequential(_merge(w3 + w2 + extra, w2), _conv(w2, w2))  # 1/4
        out_channels = config.num_bins if config.head == "bins" else 2
        self.head = nn.Conv2d(w2, out_channels, 1)
        # Bin centres (K, 2) in CIELAB a, b; filled from the training data or the weights file.
        self.register_buffer("ab_bins", torch.zeros(config.num_bins, 2))

    def forward(self, lightness: Tensor, hints: Tensor | None = None) -> Tensor:
        if lightness.ndim != 4 or lightness.shape[1] != 1:
            raise ValueError(f"expected lightness of shape (N, 1, H, W), got {tuple(lightness.shape)}")
        if lightness.shape[-2] % STRIDE or lightness.shape[-1] % STRIDE:
            raise ValueError(f"expected H and W multiples of {STRIDE}, got {tuple(lightness.shape[-2:])}")
        x = lightness / 50.0 - 1.0  # (N, 1, H, W) in [-1, 1]
        hints_at_quarter = None
        if self.config.hints:
            if hints is None:
                hints = lightness.new_zeros(lightness.shape[0], 3, *lightness.shape[-2:])  # (N, 3, H, W)
            elif hints.shape != (lightness.shape[0], 3, *lightness.shape[-2:]):
                raise ValueError(f"expected hints of shape (N, 3, H, W) like the lightness, got {tuple(hints.shape)}")
            hints = hints.to(x.dtype)
            x = torch.cat((x, hints), 1)  # (N, 4, H, W)
            hints_at_quarter = F.avg_pool2d(hints, 4)  # (N, 3, H/4, W/4)
        elif hints is not None:
            raise ValueError("this network takes no hints (NetConfig.hints is False): train a hint-conditioned model")
        e1 = self.enc1(x)  # (N, w1, H/2, W/2)
        e2 = self.enc2(e1)  # (N, w2, H/4, W/4)
        e3 = self.enc3(e2)  # (N, w3, H/8, W/8)
        e4 = self.enc4(e3)  # (N, w4, H/16, W/16)
        d3 = self.dec3(torch.cat((F.interpolate(e4, scale_factor=2.0, mode="bilinear", align_corners=False), e3), 1))
        up3 = F.interpolate(d3, scale_factor=2.0, mode="bilinear", align_corners=False)  # (N, w3, H/4, W/4)
        d2 = self.dec2(torch.cat((up3, e2) if hints_at_quarter is None else (up3, e2, hints_at_quarter), 1))
        out = self.head(d2)  # (N, K or 2, H/4, W/4)
        if self.config.head == "ab":
            # Bounded (a, b) with slope 50 at 0, so a freshly initialised head reaches real colors
            # within a few hundred steps instead of crawling up from unit-scale activations.
            out = 110.0 * torch.tanh(out * (50.0 / 110.0))
        return out

    def decode_ab(self, output: Tensor, temperature: float = 0.38, doubt: float = 0.0) -> Tensor:
        """Network output to (a, b): `(N, K|2, h, w) -> (N, 2, h, w)`.

        For bins, the annealed mean of Zhang et al.: softmax(logits / T) is the distribution
        sharpened towards its mode (T = 0.38 in the paper), whose mean keeps vivid colors where
        the plain mean (T = 1) averages toward brown and the mode alone is blotchy.

        `doubt` > 0 (CIELAB units) makes the decoding uncertainty-aware (issue 10): where the
        distribution is wide (spread s, the standard deviation of (a, b) under the T = 1
        distribution, is large: flat, or several modes) the color moves from the annealed mean
        to the plain mean, which is the least-squares answer under the net's own belief, and its
        chroma shrinks by 1 / (1 + (s / doubt)^2). Where the net is sure, s is small and the
        annealed mean's saturation stays. An archivist forgives a muted color, not a wrong one.
        """
        if self.config.head == "ab":
            return output.float()
        # Softmax over the last axis of a channels-last view: over dim=1 of an NCHW tensor it is
        # strided and was the slowest op of the whole net on a CPU.
        logits = output.float().permute(0, 2, 3, 1)  # (N, h, w, K)
        bins = self.ab_bins.float()  # (K, 2)
        annealed = torch.softmax(logits / temperature, dim=-1) @ bins  # (N, h, w, 2)
        if doubt <= 0:
            return annealed.permute(0, 3, 1, 2)
        probs = torch.softmax(logits, dim=-1)  # (N, h, w, K)
        mean = probs @ bins  # (N, h, w, 2)
        spread2 = (probs @ (bins * bins).sum(1, keepdim=True)).squeeze(-1) - (mean * mean).sum(-1)  # (N, h, w)
        sure = 1.0 / (1.0 + spread2.clamp(min=0) / (doubt * doubt))  # (N, h, w) in (0, 1]
        ab = (mean + sure[..., None] * (annealed - mean)) * sure[..., None]  # (N, h, w, 2)
        return ab.permute(0, 3, 1, 2)


def build_net(*, config: NetConfig | None = None, ab_bins: Tensor | None = None) -> ColorNet:
    """Keyword-only builder: a randomly initialised `ColorNet` (load weights separately)."""
    config = config or NetConfig()
    net = ColorNet(config=config)
    if ab_bins is not None:
        if ab_bins.shape != (config.num_bins, 2):
            raise ConfigError(f"ab_bins must have shape ({config.num_bins}, 2), got {tuple(ab_bins.shape)}")
        net.ab_bins.copy_(ab_bins)
    return net


def add_hint_inputs(net: ColorNet) -> ColorNet:
    """A hint-conditioned copy of a lightness-only net that computes exactly the same function
    until trained: the new hint weights start at zero. Lets a new hint model start from a
    trained one instead of from scratch (the CPU budget of this project is hours, not days)."""
    if net.config.hints:
        return net
    config = replace(net.config, hints=True)
    hinted = build_net(config=config, ab_bins=net.ab_bins)
    state = net.state_dict()
    for name, tensor in hinted.state_dict().items():
        old = state[name]
        if old.shape == tensor.shape:
            tensor.copy_(old)
        else:  # an input convolution: old input channels first, the 3 hint channels zero
            tensor.zero_()
            tensor[:, : old.shape[1]] = old
    return hinted


def default_ab_bins() -> Tensor:
    """All (a, b) bin centres of the 10-unit grid inside the sRGB gamut at some lightness.

    Training replaces this with the bins its photos actually use (`data.ab_bins_in`); this is
    the table for an untrained net.
    """
    from remaster.color import rgb_to_lab

    grid = torch.linspace(0, 1, 33)
    rgb = torch.stack(torch.meshgrid(grid, grid, grid, indexing="ij"), 0).reshape(3, -1, 1)  # (3, M, 1)
    ab = rgb_to_lab(rgb)[1:].reshape(2, -1).T  # (M, 2)
    keys = torch.unique(torch.round(ab / AB_BIN_SIZE), dim=0)  # (K, 2)
    return keys * AB_BIN_SIZE


def count_parameters(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


__all__ = [
    "NetConfig",
    "ColorNet",
    "build_net",
    "add_hint_inputs",
    "default_ab_bins",
    "count_parameters",
    "STRIDE",
    "AB_BIN_SIZE",
]
