"""Shots: where a new shot starts. One detector, run once per batch, whose flags every stage uses.

A frame starts a new shot (a *cut*) when its picture cannot be explained by the previous one up to
the things old film does to a picture without a cut: exposure flicker (a gain, ±18% frame to
frame), a light switched on (a lasting gain step), fades to black and back, grain and one-frame
dust. Two cheap tests on the luma at a reduced resolution, both blind to gain and offset:

    layout    1 - correlation of the frames' 16x16 block means          where things are
    tones     total variation between histograms of the standardised luma   what tones there are
              (each frame's mean removed and divided by its spread)

A cut needs both (`layout > layout_threshold` and `tones > tone_threshold`), or a layout change so
large that it needs no witness (`layout > layout_alone`: two shots of the same tones), or, when the
caller has the temporal stage's flow at hand, fewer than `min_trusted` of the pixels trusted by it.
Block means average grain and specks away; standardising removes flicker, light switches and the
dimming of a fade. A frame too dark or flat to judge (block means spreading less than
`min_contrast`: the black of a fade) starts nothing, and the frame after it is compared with the last
frame that could be judged (at most `max_gap` frames back; across such a gap both tests must pass
their strict form), so a fade to black and back into the same shot is no cut, and a fade into
another shot is a cut where the new picture appears. After a longer blackout the next picture is a
cut. A flag so depends on the `max_gap` frames before it and nothing older, which makes a
segment's flags the same as the whole film's after `warmup_frames = max_gap + 1` frames.

Measured against PySceneDetect's detectors in benchmarks/bench_shots.py (RESULTS-shots.md).

Tensors: luma `(N, 1, h, w)` float in [0, 1] at any reduced size (the chroma working size, about
256 px short side); flags `(N,)` bool, `cut[i]` says frame i starts a new shot. The detector carries
the last judged frame's features and how far back it is, so a film fed batch by batch gives the same
flags however it is cut into batches.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from remaster.device import resolve_device
from remaster.errors import ConfigError


@dataclass(frozen=True)
class ShotConfig:
    # Block means on a grid x grid raster: about 16x20 px blocks at 256 px, large enough that grain
    # (sigma 5 codes) and a dust speck move a block mean by well under a code value.
    grid: int = 16
    # 1 - Pearson correlation of the block means. On the data pack's clips (bench_shots.py, seed 0)
    # motion within a shot, flicker, grain and dust stayed under 0.29; cuts between different
    # clips were 0.21 (one) and 0.42 up. Precision stayed 1.0 from 0.25 to 0.3.
    layout_threshold: float = 0.3
    # Total variation between 32-bin histograms of the standardised luma (±3 sigma): a second,
    # independent witness. Any value from 0.05 to 0.2 gave the same flags with layout at 0.3.
    tone_threshold: float = 0.15
    # A layout change this large is a cut whatever the tones: twice the largest seen within a shot.
    # (On the pack's clips it changed no flag from 0.5 to 0.8; it catches shots of equal tones.)
    layout_alone: float = 0.6
    # Block means spreading less than this (std, full scale 1) carry no picture to compare: the
    # black of a fade. 0.02 is 5 code values: in dimmer frames 8-bit steps and grain (sigma 5
    # codes, about 0.1 code in a block mean at 256 px) would decide the comparison.
    min_contrast: float = 0.02
    # With the flow's trust given: a cut when fewer than this fraction of pixels are trusted
    # (the temporal stage's old rule, kept as an optional second opinion).
    min_trusted: float = 0.05
    # A reference (the last judged frame) further back than this is forgotten, and the next judged
    # frame is a cut: a blackout of over a second at 24 fps ends a shot. Bounding the look-back
    # makes a segment's flags reproducible from `max_gap + 1` frames of warm-up.
    max_gap: int = 24
    bins: int = 32

    def __post_init__(self):
        if self.grid < 2:
            raise ConfigError(f"shots grid must be at least 2, got {self.grid}")
        if not 0 < self.layout_threshold <= 2:
            raise ConfigError(f"layout_threshold must be in (0, 2], got {self.layout_threshold}")
        if not self.layout_threshold <= self.layout_alone <= 2:
            raise ConfigError(f"layout_alone must be in [layout_threshold, 2], got {self.layout_alone}")
        if self.max_gap < 1:
            raise ConfigError(f"max_gap must be at least 1 frame, got {self.max_gap}")
        if not 0 < self.tone_threshold <= 1:
            raise ConfigError(f"tone_threshold must be in (0, 1], got {self.tone_threshold}")


# -- pure functions ------------------------------------------------------------------------------


def frame_features(luma: Tensor, config: ShotConfig = ShotConfig()) -> tuple[Tensor, Tensor, Tensor]:
    """`luma (N, 1, h, w)` -> (standardised block means `(N, grid*grid)`, tone histogram
    `(N, bins)` summing to 1, contrast `(N,)`: the std of the block means)."""
    if luma.ndim != 4 or luma.shape[1] != 1:
        raise ValueError(f"shots expect luma (N, 1, h, w), got {tuple(luma.shape)}")
    luma = luma.float()
    blocks = F.adaptive_avg_pool2d(luma, config.grid).flatten(1)  # (N, g*g)
    mean = blocks.mean(1, keepdim=True)  # (N, 1)
    contrast = blocks.std(1)  # (N,)
    layout = (blocks - mean) / (contrast[:, None] + 1e-6)  # (N, g*g) zero mean, unit spread
    # Tones on a 4x smaller picture: grain averaged down, 16x fewer pixels to bin.
    small = F.avg_pool2d(luma, 4, ceil_mode=True) if min(luma.shape[-2:]) >= 16 else luma  # (N, 1, h/4, w/4)
    flat = small.flatten(1)  # (N, P)
    z = (flat - flat.mean(1, keepdim=True)) / (flat.std(1, keepdim=True) + 1e-6)  # (N, P)
    index = ((z + 3) / 6 * config.bins).long().clamp(0, config.bins - 1)  # (N, P)
    counts = torch.zeros(luma.shape[0], config.bins, device=luma.device).scatter_add_(1, index, torch.ones_like(z))
    return layout, counts / counts.sum(1, keepdim=True), contrast


def pair_scores(layout: Tensor, tones: Tensor, ref_layout: Tensor, ref_tones: Tensor) -> tuple[Tensor, Tensor]:
    """Features of frames and of their references `(P, ...)` -> (layout distance `(P,)` in [0, 2]:
    1 - correlation, tone distance `(P,)` in [0, 1]: total variation)."""
    g2 = layout.shape[1]
    correlation = (layout * ref_layout).sum(1) / max(g2 - 1, 1)  # (P,) both have unit sample std
    return 1 - correlation, 0.5 * (tones - ref_tones).abs().sum(1)


def detect_cuts(
    luma: Tensor, state: dict | None = None, config: ShotConfig = ShotConfig(), trusted: Tensor | None = None
) -> tuple[Tensor, dict, dict]:
    """The core, a pure function: cut flags for a batch and the state to carry to the next one.

    `luma (N, 1, h, w)`; `state` from the previous batch (`{}` or None at a film's start: the first
    frame is no cut); `trusted (N,)` optional fraction of pixels the flow trusts between frame i and
    its predecessor (any value for the first frame of a film).
    Each judged frame is compared with its reference, the last judged frame before it, at most
    `max_gap` frames back; a judged frame with no reference (after a longer blackout) is a cut,
    except the very first frame the detector sees. So a flag depends on the `max_gap` frames
    before it and nothing older: `warmup_frames` of them reproduce it exactly.
    Returns `(cut (N,) bool, new state, scores)` where scores holds `layout`, `tones` `(N,)`
    (NaN where a frame had no reference) and `judged (N,)` bool.
    """
    state = state or {}
    n = luma.shape[0]
    dev = luma.device
    layout, tones, contrast = frame_features(luma, config)  # (N, g*g), (N, bins), (N,)
    judged = contrast >= config.min_contrast  # (N,)
    started = bool(state)
    never = -(1 << 40)  # position of "no judged frame"
    if started:
        past_layout = state["layout"].to(dev, layout.dtype)  # (1, g*g)
        past_tones = state["tones"].to(dev, tones.dtype)  # (1, bins)
        if past_layout.shape != (1, layout.shape[1]) or past_tones.shape != (1, tones.shape[1]):
            raise ValueError(
                f"shots state of grid/bins {tuple(past_layout.shape)}/{tuple(past_tones.shape)} does not fit "
                f"{tuple(layout.shape)}/{tuple(tones.shape)}"
            )
        # the carried reference's position relative to this batch's frame 0
        past_pos = (-1 - state["since"].to(dev, torch.int64)).where(
            state["has_ref"].to(dev), torch.tensor(never, device=dev)
        )  # (1,)
    else:
        past_layout, past_tones = torch.zeros_like(layout[:1]), torch.zeros_like(tones[:1])
        past_pos = torch.full((1,), never, dtype=torch.int64, device=dev)
    all_layout = torch.cat([past_layout, layout])  # (N+1, g*g): index 0 the carried reference, k+1 frame k
    all_tones = torch.cat([past_tones, tones])  # (N+1, bins)
    positions = torch.arange(n, device=dev)  # (N,)
    all_pos = torch.cat([past_pos, torch.where(judged, positions, torch.full_like(positions, never))])  # (N+1,)
    last = all_pos.cummax(0)  # the last judged frame up to each index, and where it is in all_*
    ref_pos, ref_index = last.values[:-1], last.indices[:-1]  # (N,) for frame i: up to frame i-1
    distance = positions - ref_pos  # (N,) frames back to the reference
    has_ref = distance <= config.max_gap
    d_layout, d_tones = pair_scores(layout, tones, all_layout[ref_index], all_tones[ref_index])  # (N,) each
    changed = ((d_layout > config.layout_threshold) & (d_tones > config.tone_threshold)) | (
        d_layout > config.layout_alone
    )  # (N,)
    # Across a gap of unjudged frames (the black of a fade) the picture moved on for several frames:
    # only a change that is large on both counts is a new shot there.
    changed &= (distance <= 1) | ((d_layout > config.layout_alone) & (d_tones > config.tone_threshold))
    first_seen = (positions == 0) & (not started)  # (N,) the first frame after a reset: nothing to cut from
    cut = judged & torch.where(has_ref, changed, ~first_seen)  # (N,)
    if trusted is not None:
        # Flow trust is between consecutive frames: it counts wherever there is a predecessor.
        cut |= ~first_seen & (trusted.to(dev).float().reshape(n) < config.min_trusted)
    nan = torch.full_like(d_layout, float("nan"))
    scores = {
        "layout": torch.where(has_ref, d_layout, nan),
        "tones": torch.where(has_ref, d_tones, nan),
        "judged": judged,
    }
    if n == 0:
        return cut, dict(state), scores
    end_pos, end_index = last.values[-1:], last.indices[-1:]  # (1,) the reference for the next batch
    new_state = {
        "layout": all_layout[end_index].clone(),  # (1, g*g)
        "tones": all_tones[end_index].clone(),  # (1, bins)
        "since": (n - 1 - end_pos).clamp(max=config.max_gap + 1),  # (1,) frames after it; older is all the same
        "has_ref": (end_pos > never) & (n - 1 - end_pos <= config.max_gap),  # (1,)
    }
    return cut, new_state, scores


STATE_KEYS = {"layout", "tones", "since", "has_ref"}


# -- the stage -----------------------------------------------------------------------------------


class ShotDetector:
    """`cut = shots(luma)` batch after batch of one film: `(N, 1, h, w)` -> `(N,)` bool on
    `shots.device`. Keeps the last judged frame's features; `reset()` before another film."""

    name = "shots"

    def __init__(self, config: ShotConfig | None = None, device="cpu", size: tuple[int, int] | None = None):
        self.config = config or ShotConfig()
        self.device = resolve_device(device)
        self.size = size  # (h, w) the luma is taken at in `process`; None: the work's chroma size
        self._cuts = torch.zeros(
            (), dtype=torch.int64, device=self.device
        )  # cuts seen (all films), counted on the device
        self.reset()

    @property
    def warmup_frames(self) -> int:
        """A flag depends on at most `max_gap` frames before it (the reference, across a fade)."""
        return self.config.max_gap + 1

    def reset(self) -> None:
        self._state: dict = {}

    def state(self) -> dict:
        """CPU tensors to continue a film exactly (empty after a reset)."""
        return {k: v.detach().cpu().clone() for k, v in self._state.items()}

    def load_state(self, state: dict) -> None:
        if state and set(state) != STATE_KEYS:
            raise ValueError(
                f"shots state expects keys {', '.join(sorted(STATE_KEYS))}, got {', '.join(sorted(state))}"
            )
        self._state = {k: v.to(self.device) for k, v in (state or {}).items()}

    @torch.inference_mode()
    def __call__(self, luma: Tensor, trusted: Tensor | None = None) -> Tensor:
        cut, self._state, _ = detect_cuts(luma.to(self.device), self._state, self.config, trusted)
        self._cuts += cut.sum()  # on the device: no host sync per batch (issue 11); read when reported
        return cut

    @property
    def cuts(self) -> int:
        """Cuts seen so far, all films (a CPU-GPU sync point on CUDA: read it for reports only)."""
        return int(self._cuts)

    def process(self, work) -> None:
        """Stage protocol (stages/chain.py): sets `work.cuts (N,)` bool from the luma at `self.size`
        (default: the chroma working size when there is chroma, else the luma as it is)."""
        if work.cuts is not None:
            return  # found already, on the decoded luma, by the restoration front (restore.py)
        size = self.size or (tuple(work.chroma.shape[-2:]) if work.chroma is not None else tuple(work.luma.shape[-2:]))
        work.cuts = self(work.luma_at(size)) if len(work) else torch.zeros(0, dtype=torch.bool, device=self.device)
