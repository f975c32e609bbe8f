"""Optical flow between consecutive input lumas, and the warping helpers built on it.

Convention (docs/CONTRACTS.md): flow is `(N, 2, H, W)` float32 in pixels, channel 0 = dx,
channel 1 = dy, and it is *backward*: `flow(current, previous)[n, :, y, x]` says where the pixel
`(x, y)` of `current[n]` is found in `previous[n]`, so `current ≈ warp(previous, flow)`.

Flow runs on luma only: luma is the same in the black-and-white input and in our output, so the
motion it gives is trustworthy and independent of what the colorizer did (DESIGN.md).

Providers share one small interface — `provider(current, previous) -> flow`, with a `name` — and
are made by `make_flow_provider`:

- `RaftFlow`: RAFT (Teed & Deng, ECCV 2020) from torchvision, `raft_large` or `raft_small`;
  weights from torchvision's weights API (downloaded and cached when online), a local file, or
  random (plumbing tests only).
- `DISFlow`: OpenCV's Dense Inverse Search (Kroeger et al., ECCV 2016) on CPU threads, no weights.
- `ZeroFlow`: no motion (the `none` provider; the temporal stage treats `none` as "off").

`auto` picks RAFT when CUDA is available and its weights load, else DIS; the provider's `name`
says which was picked.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from remaster.errors import ConfigError, WeightsError, one_line

FLOW_NAMES = ("auto", "raft", "raft-small", "dis", "none")
DIS_PRESETS = ("ultrafast", "fast", "medium")


def _check_pair(current: Tensor, previous: Tensor) -> None:
    if current.ndim != 4 or current.shape[1] != 1 or current.shape != previous.shape:
        raise ValueError(
            f"flow expects two luma batches of the same shape (N, 1, H, W), got {tuple(current.shape)} "
            f"and {tuple(previous.shape)}"
        )


# ---------------------------------------------------------------------------------------------
# Pure functions: resize, warp, consistency
# ---------------------------------------------------------------------------------------------


def resize_flow(flow: Tensor, size: tuple[int, int]) -> Tensor:
    """Resample a flow field to `size = (H, W)` and rescale its vectors to the new pixel units.

    `(N, 2, h, w) -> (N, 2, H, W)`. With `align_corners=True` pixel centres map onto pixel
    centres, which is the geometry `warp` uses, so the scale is (W-1)/(w-1), not W/w.
    """
    h, w = flow.shape[-2:]
    height, width = size
    if (h, w) == (height, width):
        return flow
    resized = F.interpolate(flow, size=(height, width), mode="bilinear", align_corners=True)  # (N, 2, H, W)
    sx = (width - 1) / max(w - 1, 1)
    sy = (height - 1) / max(h - 1, 1)
    return resized * torch.tensor([sx, sy], dtype=flow.dtype, device=flow.device).view(1, 2, 1, 1)


def warp(image: Tensor, flow: Tensor, padding_mode: str = "border") -> tuple[Tensor, Tensor]:
    """Backward-warp `image` (frame t-1) to frame t with the backward flow t -> t-1.

    `warped[n, :, y, x] = image[n, :, y + dy, x + dx]`, sampled bilinearly (grid_sample with
    `align_corners=True`, so pixel (x, y) is exactly at integer coordinates).
    `image (N, C, H, W)`, `flow (N, 2, H, W)` -> `(warped (N, C, H, W), inside (N, 1, H, W) bool)`;
    `inside` is False where the flow points outside frame t-1 (nothing there to carry over).
    """
    if flow.ndim != 4 or flow.shape[1] != 2 or flow.shape[0] != image.shape[0] or flow.shape[-2:] != image.shape[-2:]:
        raise ValueError(f"warp expects flow (N, 2, H, W) matching image {tuple(image.shape)}, got {tuple(flow.shape)}")
    n, _, h, w = image.shape
    ys = torch.arange(h, device=flow.device, dtype=flow.dtype).view(1, h, 1)
    xs = torch.arange(w, device=flow.device, dtype=flow.dtype).view(1, 1, w)
    x = xs + flow[:, 0]  # (N, H, W) sample positions in frame t-1, pixels
    y = ys + flow[:, 1]  # (N, H, W)
    grid = torch.stack((2 * x / max(w - 1, 1) - 1, 2 * y / max(h - 1, 1) - 1), dim=-1)  # (N, H, W, 2) in [-1, 1]
    warped = F.grid_sample(image, grid.to(image.dtype), mode="bilinear", padding_mode=padding_mode, align_corners=True)
    inside = ((x >= 0) & (x <= w - 1) & (y >= 0) & (y <= h - 1)).unsqueeze(1)  # (N, 1, H, W)
    return warped, inside


def fb_consistent(backward: Tensor, forward: Tensor, alpha: float = 0.01, beta: float = 0.5) -> Tensor:
    """Forward-backward consistency (Sundaram et al., ECCV 2010; the occlusion test of Ruder et
    al. 2016 and Lai et al., ECCV 2018): a pixel of frame t is trusted when following the
    backward flow to t-1 and the forward flow back lands where it started:

        |b + f~|² <= alpha · (|b|² + |f~|²) + beta,   f~(x) = forward(x + b(x))

    The relative term tolerates the larger absolute errors of fast motion; `beta` (pixels²)
    tolerates sub-pixel noise. `backward (N,2,H,W)` = flow t -> t-1, `forward (N,2,H,W)` = flow
    t-1 -> t; returns `(N, 1, H, W)` bool, True = consistent (not occluded), False also where the
    backward flow leaves the frame.
    """
    forward_at_t, inside = warp(forward, backward)  # (N, 2, H, W)
    round_trip = (backward + forward_at_t).square().sum(1, keepdim=True)  # (N, 1, H, W)
    magnitude = backward.square().sum(1, keepdim=True) + forward_at_t.square().sum(1, keepdim=True)
    return (round_trip <= alpha * magnitude + beta) & inside


def motion_boundaries(flow: Tensor, alpha: float = 0.01, beta: float = 0.002) -> Tensor:
    """Motion boundaries (Ruder et al., "Artistic style transfer for videos", GCPR 2016, used by
    Lai et al. 2018 to mask the warping error): `|∇u|² + |∇v|² > alpha·|w|² + beta`.
    Flow near a motion boundary is unreliable even when forward and backward agree.
    `(N, 2, H, W) -> (N, 1, H, W)` bool, True = on a boundary. Central differences, edges
    replicated.
    """
    padded = F.pad(flow, (1, 1, 1, 1), mode="replicate")  # (N, 2, H+2, W+2)
    dx = (padded[..., 1:-1, 2:] - padded[..., 1:-1, :-2]) / 2  # (N, 2, H, W)
    dy = (padded[..., 2:, 1:-1] - padded[..., :-2, 1:-1]) / 2  # (N, 2, H, W)
    gradient = (dx.square() + dy.square()).sum(1, keepdim=True)  # (N, 1, H, W)
    return gradient > alpha * flow.square().sum(1, keepdim=True) + beta


# ---------------------------------------------------------------------------------------------
# Providers
# ---------------------------------------------------------------------------------------------


class ZeroFlow:
    """No motion: the `none` provider (flow identically zero)."""

    name = "none"

    def __call__(self, current: Tensor, previous: Tensor) -> Tensor:
        _check_pair(current, previous)
        n, _, h, w = current.shape
        return current.new_zeros(n, 2, h, w, dtype=torch.float32)  # (N, 2, H, W)


class DISFlow:
    """OpenCV Dense Inverse Search on the CPU, one frame pair per pool thread.

    DIS works on 8-bit gray images and has no weights, which makes it the provider that always
    works. OpenCV releases the GIL in `calc`, so pairs run in parallel on a small thread pool;
    DIS objects keep per-call buffers and are not thread-safe, so each thread owns one.
    Inputs on a GPU are copied to the CPU here (a CPU-GPU sync point) and the flow goes back to
    the input's device.
    """

    def __init__(self, preset: str = "medium", threads: int | None = None):
        import cv2

        if preset not in DIS_PRESETS:
            raise ConfigError(f"DIS preset must be one of {', '.join(DIS_PRESETS)}, got {preset!r}")
        self.name = "dis"
        self.preset = preset
        self._preset_id = {
            "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
            "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
            "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
        }[preset]
        self._threads = threads or min(4, os.cpu_count() or 1)
        self._local = threading.local()
        self._pool: ThreadPoolExecutor | None = None

    def _dis(self):
        dis = getattr(self._local, "dis", None)
        if dis is None:
            import cv2

            dis = self._local.dis = cv2.DISOpticalFlow_create(self._preset_id)
        return dis

    def _pair(self, current: np.ndarray, previous: np.ndarray) -> np.ndarray:
        # OpenCV's calc(I0, I1) returns f with I0(x) ≈ I1(x + f(x)): passing (current, previous)
        # gives exactly our backward flow.
        return self._dis().calc(current, previous, None)  # (H, W, 2) float32

    def __call__(self, current: Tensor, previous: Tensor) -> Tensor:
        _check_pair(current, previous)
        device = current.device
        to_u8 = lambda t: (t[:, 0].detach().float().clamp(0, 1) * 255 + 0.5).to(torch.uint8).cpu().numpy()
        cur, prev = to_u8(current), to_u8(previous)  # (N, H, W) uint8 each; .cpu() is a sync point
        if len(cur) == 1 or self._threads == 1:
            flows = [self._pair(c, p) for c, p in zip(cur, prev)]
        else:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self._threads, thread_name_prefix="remaster-dis")
            flows = list(self._pool.map(self._pair, cur, prev))
        flow = torch.from_numpy(np.stack(flows)).permute(0, 3, 1, 2)  # (N, 2, H, W)
        return flow.to(device)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def __del__(self):  # pragma: no cover - best effort
        try:
            self.close()
        except Exception:
            pass


class RaftFlow:
    """RAFT (Teed & Deng, ECCV 2020) from torchvision.

    `weights`: `None` -> torchvision's `DEFAULT` weights through its weights API (downloads and
    caches when online; raises `WeightsError` when they cannot be had, which `make_flow_provider`
    turns into a fall-back to DIS); a path -> a local state dict (`.safetensors`, or a torch file
    read with `weights_only=True`, never an arbitrary pickle); `"random"` -> random
    initialisation, for plumbing tests only.
    """

    def __init__(self, small: bool = False, weights: str | Path | None = None, device="cpu", iterations: int = 12):
        from torchvision.models.optical_flow import Raft_Large_Weights, Raft_Small_Weights, raft_large, raft_small

        self.name = "raft-small" if small else "raft"
        self.device = torch.device(device)
        self.iterations = iterations
        builder = raft_small if small else raft_large
        if weights is None:
            default = (Raft_Small_Weights if small else Raft_Large_Weights).DEFAULT
            try:
                # torch.hub announces every download attempt on *stdout*, which would corrupt
                # `--json` output and, offline, precede our one-line notice: keep it quiet.
                with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                    model = builder(weights=default, progress=False)
            except Exception as error:  # offline (URLError), interrupted download, bad cache...
                raise WeightsError(f"{self.name} weights {default} could not be loaded: {one_line(error)}") from error
            self.weights = str(default)
        elif str(weights) == "random":
            with torch.random.fork_rng(devices=[]):  # deterministic plumbing runs, global RNG untouched
                torch.manual_seed(0)
                model = builder(weights=None)
            self.weights = "random"
        else:
            model = builder(weights=None)
            model.load_state_dict(_read_state_dict(Path(weights), self.name, model))
            self.weights = str(weights)
        self.model = model.eval().to(self.device)

    @torch.inference_mode()
    def __call__(self, current: Tensor, previous: Tensor) -> Tensor:
        _check_pair(current, previous)
        out_device = current.device
        n, _, h, w = current.shape
        # RAFT wants RGB in [-1, 1] with sides divisible by 8; torchvision's correlation pyramid
        # also refuses feature maps under 16 px, i.e. inputs under 128 px per side.
        # Replicate-pad to fit, then crop the flow back.
        height, width = max(128, math.ceil(h / 8) * 8), max(128, math.ceil(w / 8) * 8)
        pad = (0, width - w, 0, height - h)

        def prepare(luma: Tensor) -> Tensor:
            x = luma.to(self.device, torch.float32).clamp(0, 1) * 2 - 1  # (N, 1, H, W)
            x = F.pad(x, pad, mode="replicate") if any(pad) else x  # (N, 1, H8, W8)
            return x.expand(-1, 3, -1, -1).contiguous()  # (N, 3, H8, W8)

        # raft(image1, image2) returns f with image1(x) ≈ image2(x + f(x)): backward flow when
        # image1 is the current frame.
        flows = self.model(prepare(current), prepare(previous), num_flow_updates=self.iterations)
        flow = flows[-1][:, :, :h, :w]  # (N, 2, H, W), the last refinement
        return flow.float().to(out_device)


def _read_state_dict(path: Path, name: str, model: torch.nn.Module) -> dict:
    if not path.is_file():
        raise WeightsError(f"{path}: {name} weights file not found")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise WeightsError(
            f"{path}: not a readable {name} state dict ({type(error).__name__}: {one_line(error)})"
        ) from error
    if not isinstance(state, dict):
        raise WeightsError(f"{path}: expected a {name} state dict, got {type(state).__name__}")
    expected = set(model.state_dict())
    missing, unexpected = expected - set(state), set(state) - expected
    if missing or unexpected:
        raise WeightsError(
            f"{path}: does not fit {name}: expected {len(expected)} tensors, got {len(state)} "
            f"({len(missing)} missing, e.g. {sorted(missing)[:1]}; {len(unexpected)} unexpected, e.g. "
            f"{sorted(unexpected)[:1]})"
        )
    return state


def make_flow_provider(
    name: str = "auto",
    *,
    device="cpu",
    weights: str | Path | None = None,
    dis_preset: str = "medium",
    raft_iterations: int = 12,
):
    """Build a flow provider by name: `auto | raft | raft-small | dis | none`.

    `raft`/`raft-small` whose default weights cannot be had (offline, no cache) fall back to DIS
    with a one-line warning; a bad local weights file is the user's error (`WeightsError`).
    `auto` = RAFT (large) when `device` is CUDA and its weights load, else DIS.
    """
    if name not in FLOW_NAMES:
        raise ConfigError(f"flow must be one of {', '.join(FLOW_NAMES)}, got {name!r}")
    device = torch.device(device)
    if name == "none":
        return ZeroFlow()
    if name == "dis" or (name == "auto" and device.type != "cuda"):
        return DISFlow(dis_preset)
    small = name == "raft-small"
    try:
        return RaftFlow(small=small, weights=weights, device=device, iterations=raft_iterations)
    except WeightsError as error:
        if weights is not None:  # the user named a file: tell them it is bad
            raise
        warnings.warn(f"remaster: {error}; using DIS optical flow instead", RuntimeWarning, stacklevel=2)
        return DISFlow(dis_preset)
