"""Keyframe carry: a colorist's colors followed along the film's motion, forward and backward.

A keyframe's color reaches the frames of its shot after it (forward, in the temporal stage's
frame loop) and before it (backward, computed here ahead of a segment's frame loop). Either way
the carry follows the flow one frame at a time and keeps, per pixel,

    positions  p_t(x) = p_{t∓1}(x + flow_t(x))      where x's color was on the keyframe (pixels)
    spread     s_t(x) = s_{t∓1}(x + flow_t(x)) + g · var_5x5(flow_t)(x)     0 on the keyframe (px²)
    chroma     c_t    = keyframe chroma sampled at p_t, seen through a blur of variance s_t
    trust      k_t    = k_{t∓1}(x + flow_t(x)) · fits_t · decay^|flow_t|   1 on the keyframe
                      (taken back, with p_t(x) = x, where the frame shows the keyframe's own
                      picture at x again: `reacquired`)

Carrying the *positions* rather than the colors means the keyframe is sampled once per frame:
resampling the colors at every step (what a chained-flow carry does) blurs them a little more with
every frame, while a field of positions is smooth and bilinear resampling keeps a smooth field
exact. `fits` says how well the moved luma fits (an occluder, new content: low), the decay fades
the color with the distance it has moved, and a carry ends `reach` frames from its keyframe,
tapering over the last quarter.

The *spread* is how unsure each position is: every step adds the flow's local disagreement (its
variance over 5x5 pixels, where a flow that is right moves neighbours alike), and the output's
colors are the keyframe's seen through a Gaussian of that variance (`seen`). On a clean, still
shot it stays 0 and the keyframe's detail is kept exactly; on a grainy or moving one the detail the
carry cannot place (the keyframe's own grain among it) fades, as a chained carry's resampling does
by accident, and by no more than the flow gives reason to (benchmarks/RESULTS.md).

Between two keyframes of one shot both carries reach a frame: `hint()` blends them by trust and
distance into one `(chroma, confidence)` per frame, and `apply_hint()` is the one place where that
hint meets the network's chroma (a blend; with keyframe_fill "hints" the chroma it meets is a
hint-conditioned network's, given the same hint as input: stages/keyframes/steer.py).
The backward carry is computed ahead of a segment's frame loop: stages/keyframes/backward.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from remaster.stages.flow import warp
from remaster.stages.keyframes.fill import either, local_fill, paint  # noqa: F401 (paint: the stage's)
from remaster.stages.motion import blur

# -- one carry -----------------------------------------------------------------------------------


def identity_positions(size: tuple[int, int], device) -> Tensor:
    """`(1, 3, h, w)`: every pixel at its own (x, y) with no spread, the positions on a keyframe's
    own frame. Channels 0 and 1 are x and y (pixels); channel 2 is the spread (px², see above)."""
    h, w = size
    ys, xs = torch.meshgrid(
        torch.arange(h, dtype=torch.float32, device=device),
        torch.arange(w, dtype=torch.float32, device=device),
        indexing="ij",
    )
    return torch.stack((xs, ys, torch.zeros_like(xs)))[None]  # (1, 3, h, w)


def sample(image: Tensor, positions: Tensor) -> Tensor:
    """`image (1, C, h, w)` sampled bilinearly at `positions (1, 2 or 3, h, w)` (pixels, edges repeated)."""
    h, w = image.shape[-2:]
    grid = torch.stack(
        (2 * positions[:, 0] / max(w - 1, 1) - 1, 2 * positions[:, 1] / max(h - 1, 1) - 1), dim=-1
    )  # (1, h, w, 2)
    return F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=True)  # (1, C, h, w)


def follow(positions: Tensor, trust: Tensor, flow: Tensor, matched: Tensor, config) -> tuple[Tensor, Tensor]:
    """One step of a carry along `flow (1, 2, h, w)` (from the new frame to the one carried from):
    new `(positions (1, 3, h, w), trust (1, 1, h, w))`. A step keeps the trust fully where the moved
    luma fits at least `keyframe_trust` (`matched`), in proportion below, and fades it by
    `keyframe_decay` per pixel moved (temporal.TemporalConfig says why); the spread grows by the
    flow's local disagreement (`SPREAD_GAIN`)."""
    fits = (matched / config.keyframe_trust).clamp(max=1.0)  # (1, 1, h, w)
    moved_by = torch.hypot(flow[:, :1], flow[:, 1:])  # (1, 1, h, w) pixels; Tensor.norm(dim=1) took 30x longer here
    fade = torch.exp(math.log(config.keyframe_decay) * moved_by)  # (1, 1, h, w); `decay ** x` too
    moved = warp(torch.cat([positions, trust], 1), flow)[0]  # (1, 4, h, w): one grid_sample for all
    mean = F.avg_pool2d(flow, 5, 1, 2, count_include_pad=False)  # (1, 2, h, w)
    disagreement = (F.avg_pool2d(flow * flow, 5, 1, 2, count_include_pad=False) - mean * mean).clamp_min(0)
    spread = moved[:, 2:3] + SPREAD_GAIN * disagreement.sum(1, keepdim=True)  # (1, 1, h, w) px²
    return torch.cat([moved[:, :2], spread], 1), moved[:, 3:] * fits * fade


# How much a step's flow disagreement (its variance over 5x5 pixels, px²) adds to a position's spread.
# A flow's errors are correlated over more than 5x5 pixels, so its local variance undercounts them;
# on the data pack's six clips (60 frames, a true keyframe at the start) gains of 1, 5 and 20 all
# beat 0. Since the carry's flow is finer (carry_flow_short_side), 2 keeps every clip above the
# chained carry where 5 blurred the still bottles' caps (bottle-detection 47.86 against 47.73 dB,
# the mean 41.45 against 41.42; benchmarks/RESULTS.md).
SPREAD_GAIN = 2.0


def anchored(trust: Tensor, luma: Tensor, key_luma: Tensor, positions: Tensor, tolerance: float) -> Tensor:
    """`trust (1, 1, h, w)` where the frame's `luma` still looks like the keyframe frame's
    `key_luma` (blurred) at the carried `positions`. Every step's fit (`follow`) can pass while
    the flow is a little short each time (DIS on a flat, moving object: 2.5 px of 3), so the
    positions drift onto the background; comparing with the keyframe's own picture catches that.
    The frame's mean difference is taken out (exposure flicker), and the tolerance is twice a
    step's: only another tone, another object, costs the trust. Not fed back into the carry."""
    difference = blur(luma) - sample(key_luma, positions)  # (1, 1, h, w)
    difference = difference - difference.mean()
    return trust * torch.exp(-((difference / (2 * tolerance)) ** 2))


def reacquired(
    positions: Tensor, trust: Tensor, luma: Tensor, key_luma: Tensor, coverage: Tensor, tolerance: float
) -> tuple[Tensor, Tensor]:
    """`(positions, trust)` taken back to the keyframe's own place where the frame shows the
    keyframe's picture there again: a still camera's background coming out from behind someone
    who walked past. The carry lost those pixels (a trust is a product of every step's fit and
    never rises), but the keyframe still has them, unmoved. A pixel is taken back where the
    keyframe's luma at the same place (`key_luma`, blurred) fits the frame's over 5x5 pixels
    (exposure flicker taken out: the median difference, which a figure passing by does not move)
    by at least `REACQUIRE_FIT`, better than the carry is trusted, and better than at the carried
    position by `REACQUIRE_MARGIN` (on flat ground both fit, and a panning carry stays as it is).
    Its trust is then that fit, within the keyframe's `coverage (1, 1, h, w)` (a print's uncovered
    edges and a palette reference are never taken back)."""

    def fit(difference: Tensor) -> Tensor:  # (1, 1, h, w) -> (1, 1, h, w) in [0, 1]
        difference = difference - difference.median()  # exposure flicker; a figure passing by is no exposure
        return torch.exp(-F.avg_pool2d(difference**2, 5, 1, 2, count_include_pad=False) / (2 * tolerance) ** 2)

    here = blur(luma)  # (1, 1, h, w)
    still = fit(here - key_luma) * coverage  # (1, 1, h, w)
    moved = fit(here - sample(key_luma, positions))
    identity = identity_positions(tuple(luma.shape[-2:]), luma.device)  # (1, 3, h, w)
    take = (still > REACQUIRE_FIT) & (still > moved + REACQUIRE_MARGIN) & (still > trust)  # (1, 1, h, w)
    return torch.where(take, identity, positions), torch.where(take, still, trust)


# When a lost pixel is taken back (`reacquired`). On the data pack's six clips (a true keyframe at
# each shot's start, 4:4:4), against none: 41.45 -> 41.74 dB at normal speed, 37.97 -> 38.32 at
# eight times the speed (one-by-one 33.38 -> 34.35: people walking past a still camera), 38.40 ->
# 39.12 with old film's flicker (benchmarks/RESULTS.md). Without the fit's floor a hand moving
# over hungry.mkv's sweater was taken for the sweater (hungry 37.76 -> 36.99); floors of 0.8 / 0.9 /
# 0.95 gave 38.00 / 38.10 / 38.09. A margin of 0 cost car-detection 0.1 dB with flicker.
REACQUIRE_FIT = 0.9
REACQUIRE_MARGIN = 0.05


def taper(distance: int, reach: int) -> float:
    """A carry's weight at `distance` frames from its keyframe: 1, falling to 0 over the last quarter of `reach`."""
    return max(0.0, min(1.0, 4 * (reach - distance) / reach))


# -- blending two carries and the network -------------------------------------------------------


@dataclass
class Carried:
    """A keyframe's color at one frame: `chroma (1, 2, h, w)`, `trust (1, 1, h, w)` in [0, 1]
    (tapered), `distance` in frames from its keyframe, and `key`, that keyframe's frame."""

    chroma: Tensor
    trust: Tensor
    distance: int
    key: int
    weight: float = 1.0  # the taper at this distance: how much the keyframe still governs the frame
    positions: Tensor | None = None  # (1, 3, h, w) where each color is on the keyframe, and its spread


@dataclass
class Hint:
    """What the colorist's keyframes say about one frame: carried `chroma (1, 2, h, w)` with
    its `confidence (1, 1, h, w)`; `palette (1, 2, h, w)`, the keyframes' colors for this
    frame's tones (a global hint), and `weight`, how much the keyframes govern the frame;
    `everywhere`: the carry is kept at every pixel (`kept` is 1), so nothing else shows."""

    chroma: Tensor
    confidence: Tensor
    palette: Tensor
    weight: float
    everywhere: bool = False


def hint(forward: Carried | None, backward: Carried | None, palettes, luma: Tensor | None = None) -> Hint | None:
    """Both carries of a frame as one `Hint`, or None when no keyframe reaches it;
    `palettes(key)` gives a keyframe's palette painted on this frame's luma; with the frame's
    `luma (1, 1, h, w)`, what the carries do not reach takes the colors of the nearby pixels of the
    same tone they do reach first (`local_fill`), the palette where there are none.

    Between two keyframes each carry weighs by its trust and by how near its keyframe is (the
    other's distance over the sum: 1 on its own keyframe, 1/2 halfway), so on a keyframe the
    hint is that keyframe's color exactly and the color moves over from one to the other
    across the shot. The confidence is that of either carry holding, `1 - (1 - a)(1 - b)`."""
    if forward is None or backward is None:
        one = forward or backward
        if one is None:
            return None
        return _with_fill(Hint(one.chroma, one.trust, one.chroma, one.weight), luma, lambda: palettes(one.key))
    near_f = backward.distance / (forward.distance + backward.distance)
    a, b = forward.trust * near_f, backward.trust * (1 - near_f)  # (1, 1, h, w)
    chroma = (a * forward.chroma + b * backward.chroma) / (a + b).clamp_min(1e-6)  # (1, 2, h, w)
    wa, wb = forward.weight * near_f, backward.weight * (1 - near_f)
    confidence = 1 - (1 - forward.trust) * (1 - backward.trust)  # (1, 1, h, w)
    return _with_fill(
        Hint(chroma, confidence, chroma, max(forward.weight, backward.weight)),
        luma,
        lambda: (wa * palettes(forward.key) + wb * palettes(backward.key)) / max(wa + wb, 1e-6),  # (1, 2, h, w)
    )


def _with_fill(given: Hint, luma: Tensor | None, palettes) -> Hint:
    """`given` with its fill (`local_fill` with `luma`, else the palettes' colors, `palettes() ->
    (1, 2, h, w)`) as its palette. Where the carry is kept everywhere the fill would weigh nothing
    in `apply_hint`, so it is not made (on a still shot, most frames): the palette stays the carried
    chroma and `everywhere` says so, once, for `needs_colors` too."""
    given.everywhere = bool((given.confidence >= KEEP_TRUST).all())  # CPU-GPU sync point, once per frame
    if not given.everywhere:
        if luma is None:
            given.palette = palettes()
        else:  # where no confidently carried pixel of the same tone is near: what two guesses agree on
            given.palette = local_fill(luma, given.chroma, given.confidence, either(palettes(), given.chroma))
    return given


# Where the local fill finds no confidently carried pixel of the same tone nearby (something that
# came in), two guesses are at hand: the keyframe's colors by tone (its palette) and the carry's own
# color there, however little trusted (what it dragged in along the flow). Each alone guesses
# boldly wrong: a hand coming in front of blue bottles takes the caps' blue for its gray by tone, a
# person walking over grass takes the grass's green by either. So the fill falls back on what the
# two agree on (`fill.either`), gray where they differ, a safe color before a bold wrong one (issue
# 20, item 6). It replaced a flat 0.7 mute of the palette: on the data pack's six clips (a true
# keyframe at each shot's start, 4:4:4) 41.36 -> 41.45 dB at normal speed and 37.84 -> 38.08 at
# eight times the speed (benchmarks/RESULTS.md).


# Where the carry's trust is at least this, its color is kept as it is; below, it gives way to the
# fill in proportion. The trust is a product of every step's fit, and the chained carry without any
# trust scores 40.6 dB on the data pack's clips: a trust of 0.3 is a carry that still fits well
# enough, and blending it toward the fill (the same colors, smoothed) only blurred it.
KEEP_TRUST = 0.3


def kept(confidence: Tensor) -> Tensor:
    """The weight of the carried color in the output for a carry of `confidence (1, 1, h, w)`."""
    return (confidence / KEEP_TRUST).clamp(max=1.0)


def needs_colors(given: Hint | None) -> bool:
    """Whether the colors made without the keyframes (the network's) show anywhere in the frame
    `apply_hint` makes from `given`: not where the keyframes govern the frame fully (`weight` 1:
    their fill stands in) or the carry is kept at every pixel. On a shot with keyframes, most frames."""
    return given is None or (given.weight < 1 and not given.everywhere)


def apply_hint(chroma: Tensor, given: Hint | None, fine: Tensor | None = None) -> Tensor:
    """The one place a keyframe hint meets the colors made without it, `chroma (1, 2, h, w)`
    (the network's, smoothed along motion). Where the carry is confident its color holds;
    elsewhere (occlusions, new content) the keyframe's palette for the frame's tones stands in
    for the network as far as the keyframe governs the frame: on the data pack's clips this
    network's colors are worse than gray where a carry breaks (RESULTS.md), a keyframe's own
    colors by tone are not. With keyframe_fill "hints", `chroma` is a hint-conditioned
    network's given this hint as input (stages/keyframes/steer.py), and it fills those places itself
    (`given.weight` 0).

    `fine (1, 2, H, W)`: the carried color sampled from the keyframe at the output's chroma size
    (`fine_hint`); then the result is at that size, the rest upsampled as the encoder's side would."""
    if given is None:
        return chroma if fine is None else upsampled(chroma, fine.shape[-2:])
    fill = given.weight * given.palette + (1 - given.weight) * chroma  # (1, 2, h, w)
    keep = kept(given.confidence)  # (1, 1, h, w)
    if fine is None:
        return keep * given.chroma + (1 - keep) * fill  # (1, 2, h, w)
    keep = upsampled(keep, fine.shape[-2:])  # (1, 1, H, W)
    return keep * fine + (1 - keep) * upsampled(fill, fine.shape[-2:])  # (1, 2, H, W)


def upsampled(image: Tensor, size) -> Tensor:
    """`image (N, C, h, w)` at `size`, bilinear as media/assemble.py resizes chroma (itself at that size)."""
    if tuple(image.shape[-2:]) == tuple(size):
        return image
    return F.interpolate(image, size=tuple(size), mode="bilinear", align_corners=False)
