"""Motion between frame pairs at the chroma working size, and how far it can be trusted.

Flow is computed on luma shrunk so its short side is at most `flow_short_side` (chroma is smooth,
and flow at that size is cheap), then its vectors are scaled back to the working size. A pair's
fit is how well the moved luma matches (both lightly blurred, so film grain does not count): the
temporal stage (temporal.py) blends its colors by it, and a keyframe's carry (keyframes/carry.py)
follows it, forward in the stage's frame loop and backward ahead of a segment. A carry chains its
flow over many frames, so there the flow is estimated on finer luma and pooled (`pooled_flows`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from remaster.stages.flow import fb_consistent, resize_flow, warp


def blur(image: Tensor) -> Tensor:
    """A 3x3 mean, edges averaged over what is inside: `(N, C, H, W) -> (N, C, H, W)`."""
    return F.avg_pool2d(image, 3, stride=1, padding=1, count_include_pad=False)


def flow_size(h: int, w: int, short_side: int) -> tuple[int, int]:
    """The size flow is computed at for frames of `(h, w)`: short side at most `short_side`, never larger."""
    scale = min(1.0, short_side / min(h, w))
    return max(1, round(h * scale)), max(1, round(w * scale))


def shrink(image: Tensor, size: tuple[int, int]) -> Tensor:
    """`image (N, C, h, w)` resized (antialiased) to `size`, or itself where it has that size already."""
    if tuple(image.shape[-2:]) == tuple(size):
        return image
    return F.interpolate(image, size=size, mode="bilinear", antialias=True, align_corners=False)


def fit(luma: Tensor, other: Tensor, flow: Tensor, tolerance: float) -> tuple[Tensor, Tensor]:
    """How well `other (P, 1, h, w)`, moved along `flow (P, 2, h, w)` (from `luma`'s frame to
    `other`'s), matches `luma (P, 1, h, w)`: `(matched (P, 1, h, w) in [0, 1], inside (P, 1, h, w)
    bool)`. The residual, after the pair's exposure is matched (`exposure_matched`), costs the
    match as exp(-(r/tolerance)²); pixels whose flow points outside the frame match nothing."""
    here = blur(luma)  # (P, 1, h, w)
    warped, inside = warp(blur(other), flow)  # (P, 1, h, w) each
    residual = (here - exposure_matched(warped, here, inside)).abs()  # (P, 1, h, w)
    return inside.float() * torch.exp(-((residual / tolerance) ** 2)), inside


def exposure_matched(moved: Tensor, target: Tensor, inside: Tensor) -> Tensor:
    """`moved (P, 1, h, w)` given, per pair, the gain and offset that bring its tones to
    `target`'s over the `inside (P, 1, h, w)` pixels: their quartiles (the median's offset, the
    interquartile range's gain, within 2/3..3/2), robust to an object that comes in.

    Old film flickers (about ±18% frame to frame) and a camera's exposure drifts; neither is a
    reason to distrust the motion. Without this step, on the data pack's clips made into old film
    (benchmarks/bench_shots.py's flicker, grain and specks) a quarter of all frame pairs fit so
    badly that the temporal stage started over and a keyframe's carry stopped (benchmarks/RESULTS.md)."""
    quartiles = torch.tensor([0.25, 0.5, 0.75], device=moved.device, dtype=moved.dtype)
    hidden = ~inside

    def tones(image: Tensor) -> Tensor:  # (3, P): each pair's quartiles over its inside pixels
        return torch.nanquantile(image.masked_fill(hidden, float("nan")).flatten(1), quartiles, dim=1)

    have, want = tones(moved), tones(target)  # (3, P) each
    gain = ((want[2] - want[0]) / (have[2] - have[0]).clamp_min(1e-3)).clamp(2 / 3, 3 / 2)  # (P,)
    offset = want[1] - gain * have[1]  # (P,)
    gain, offset = gain.nan_to_num(1.0), offset.nan_to_num(0.0)  # nothing inside: left as it is
    return moved * gain.view(-1, 1, 1, 1) + offset.view(-1, 1, 1, 1)


def lost(trust: Tensor, min_trusted: float) -> Tensor:
    """`(P,)` bool: fewer than `min_trusted` of a pair's pixels are trusted (over 0.5) in `trust (P, 1, h, w)`."""
    return _trusted_share(trust) < min_trusted


def explained(matched: Tensor, share: float) -> Tensor:
    """`(P,)` bool: at least `share` of a pair's pixels fit along its flow (over 0.5 in `matched
    (P, 1, h, w)`): the frame is the one before it, moved. A cut the shot detector finds there is
    a fast object coming into a still, flat picture (the detector compares block layouts, which
    one bright car on gray asphalt upsets), not another shot."""
    return _trusted_share(matched) >= share


def _trusted_share(trust: Tensor) -> Tensor:
    return (trust > 0.5).float().flatten(1).mean(1)  # (P,)


def pair_trust(
    provider, config, current: Tensor, previous: Tensor, given: tuple[Tensor, Tensor] | None = None
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Flow and trust for frame pairs at the working resolution (`TemporalStage.confidence`).

    `provider`: the flow provider (flow.py); `config`: a `TemporalConfig`; `current, previous (P,
    1, h, w)` lumas; `given`: `(backward, forward)` flow already computed for the pairs (the
    restoration front), each `(P, 2, h', w')`, instead of the provider's. Returns `(backward flow
    (P, 2, h, w), confidence (P, 1, h, w) in [0, 1], matched (P, 1, h, w) in [0, 1], lost (P,)
    bool)`; `lost`: the flow can follow almost nothing of the previous frame (scene cuts are the
    shot detector's). `confidence` also asks the flow to agree with itself both ways, which noisy
    flow in flat, grainy areas fails; `matched` only asks that the moved luma fits, which is what
    carrying a keyframe's color needs (a flat area keeps its color whatever the flow says there).
    """
    h, w = current.shape[-2:]
    small_size = flow_size(h, w, config.flow_short_side)
    cur_small, prev_small = shrink(current, small_size), shrink(previous, small_size)  # (P, 1, fh, fw)
    if given is not None:
        # Flow the restoration front already computed for these pairs (DESIGN: motion is
        # computed once and shared): scaled to the flow size.
        backward_small, forward_small = (
            resize_flow(f.to(current.device, torch.float32), small_size) for f in given
        )  # (P, 2, fh, fw)
        trusted = fb_consistent(backward_small, forward_small, config.fb_alpha, config.fb_beta).float()
        trusted = F.interpolate(trusted, size=(h, w), mode="bilinear", align_corners=False)  # (P, 1, h, w)
        if config.consistency == "residual":
            trusted = torch.ones_like(current)
    elif config.consistency in ("fb", "both"):
        # One call for both directions: RAFT batches them, DIS spreads them over its threads.
        both = provider(torch.cat([cur_small, prev_small]), torch.cat([prev_small, cur_small]))  # (2P, 2, fh, fw)
        backward_small, forward_small = both.chunk(2)  # (P, 2, fh, fw) each
        trusted = fb_consistent(backward_small, forward_small, config.fb_alpha, config.fb_beta).float()
        trusted = F.interpolate(trusted, size=(h, w), mode="bilinear", align_corners=False)  # (P, 1, h, w)
    else:
        backward_small = provider(cur_small, prev_small)  # (P, 2, fh, fw)
        trusted = torch.ones_like(current)
    backward = resize_flow(backward_small, (h, w))  # (P, 2, h, w)
    matched, inside = fit(current, previous, backward, config.residual_tolerance)  # (P, 1, h, w) each
    confidence = trusted * (matched if config.consistency in ("residual", "both") else inside.float())
    confidence = blur(confidence)  # (P, 1, h, w), hard mask edges softened so no seam shows in the color
    return backward, confidence, blur(matched), lost(confidence, config.cut_min_trusted)


def carry_flow_size(full: tuple[int, int], working: tuple[int, int], short_side: int) -> tuple[int, int] | None:
    """Where a keyframe's carry estimates its flow for frames decoded at `full (H, W)` and colored
    at `working (h, w)`: the decoded luma with its short side at most `short_side`, or None where
    that is no finer than the working size (the working size's flow then serves)."""
    size = flow_size(*full, short_side)
    return size if size[0] * size[1] > working[0] * working[1] else None


def pooled_flows(provider, current: Tensor, previous: Tensor, size: tuple[int, int]) -> tuple[Tensor, Tensor]:
    """`(backward, forward)`, each `(P, 2, *size)`: the flows from `current` to `previous` and back,
    both `(P, 1, H, W)` finer than `size`, estimated there and area-pooled to `size` (vectors
    rescaled as `resize_flow` does). A carry chains hundreds of pairs: on sister (60 frames) a carry
    along flow estimated at 256 px lost 0.19 dB to one along flow estimated at full size, while
    that flow pooled to 256 px lost 0.01 (benchmarks/RESULTS.md)."""
    both = provider(torch.cat([current, previous]), torch.cat([previous, current]))  # (2P, 2, H, W)
    (h, w), (height, width) = both.shape[-2:], size
    scale = torch.tensor([(width - 1) / max(w - 1, 1), (height - 1) / max(h - 1, 1)], device=both.device)
    pooled = F.interpolate(both, size=size, mode="area") * scale.view(1, 2, 1, 1).to(both.dtype)  # (2P, 2, *size)
    return pooled.chunk(2)
