"""Keyframe carry: a colorist's colors followed along the film's motion, forward and backward.

A keyframe's color reaches the frames of its shot after it (forward, in the temporal stage's
frame loop) and before it (backward, computed here ahead of a segment's frame loop). Either way
the carry follows the flow one frame at a time and keeps, per pixel,

    positions  p_t(x) = p_{t∓1}(x + flow_t(x))      where x's color was on the keyframe (pixels)
    spread     s_t(x) = s_{t∓1}(x + flow_t(x)) + g · var_5x5(flow_t)(x)     0 on the keyframe (px²)
    chroma     c_t    = keyframe chroma sampled at p_t, seen through a blur of variance s_t
    trust      k_t    = k_{t∓1}(x + flow_t(x)) · fits_t · decay^|flow_t|   1 on the keyframe

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

The backward carry needs the frames after a frame, so a segment computes it before its frame loop
(`backward_carries`): for each keyframe k a window of frames [s, k] fixed by the keyframes alone
(`backward_windows`: from `reach` frames back, or the keyframe before it), decoded up to k even
past the segment's end, so every execution computes the same carry. Memory stays flat: the
window's flow and carried colors are spilled to files in the run's work folder (numpy memmaps,
float16 colors and trust), and only two frames' lumas are held, whatever the window's length.
"""

from __future__ import annotations

import math
import mmap
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from remaster.stages.flow import resize_flow, warp
from remaster.stages.keyframes.fill import either, local_fill, paint  # noqa: F401 (paint: the stage's)
from remaster.stages.motion import blur, explained, fit, flow_size, lost, pooled_flows, shrink
from remaster.stages.shots import ShotDetector

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


# -- backward carry over a segment ---------------------------------------------------------------


_SPILLED = ("ahead", "behind", "matched", "chroma", "positions", "trust", "luma")


class BackwardCarries:
    """The backward carries of one segment: `get(frame)` -> `Carried | None`. Frames a..b live
    in memmaps in a temporary folder under `folder` (removed by `close()`)."""

    def __init__(
        self, folder: Path, frames: tuple[int, int], size: tuple[int, int], reach: int, flow_short_side: int = 256
    ):
        self.first, last = frames
        self.reach = reach
        count, (h, w) = last - self.first + 1, size
        self._dir = tempfile.TemporaryDirectory(prefix="carry-", dir=folder)

        def spill(name, shape, dtype):
            return np.lib.format.open_memmap(Path(self._dir.name) / f"{name}.npy", mode="w+", dtype=dtype, shape=shape)

        fh, fw = flow_size(h, w, flow_short_side)
        # Pair (t, t+1), both ways at the flow's size: t -> t+1 moves the carry; both serve the
        # frame loop's pair (t+1, t) too (`pair_flows`), so keyframe mode computes no flow twice.
        self.ahead = spill("ahead", (count, 2, fh, fw), np.float32)  # flow t -> t+1
        self.behind = spill("behind", (count, 2, fh, fw), np.float32)  # flow t+1 -> t
        self.paired = np.zeros(count, dtype=bool)  # pair (t, t+1) computed
        self.matched = spill("matched", (count, 1, h, w), np.float16)
        self.chroma = spill("chroma", (count, 2, h, w), np.float16)
        self.positions = spill("positions", (count, 3, h, w), np.float32)  # on the keyframe, for `fine_hint`
        self.trust = spill("trust", (count, 1, h, w), np.float16)
        self.luma = spill("luma", (count, 1, h, w), np.float32)  # each frame's, for `anchored`
        self.stop = np.zeros(count, dtype=bool)  # no carry from t+1 to t: a cut, or nothing followable
        self.distance = np.zeros(count, dtype=np.int64)  # 0: no carry reaches the frame

    def release(self) -> None:
        """Let go of the spilled pages this process has touched: a file mapping's pages count as
        its resident memory until then (they stay in the page cache, or on disk, and come back
        when read), so without this a window of 500 frames at 256x352 would show ~700 MB."""
        if hasattr(mmap, "MADV_DONTNEED"):
            for name in _SPILLED:
                array = getattr(self, name, None)
                if array is not None:
                    array._mmap.madvise(mmap.MADV_DONTNEED)

    def get(self, frame: int | None, device="cpu") -> Carried | None:
        if frame is not None and frame % 16 == 0:
            self.release()
        i = None if frame is None else frame - self.first
        if i is None or not 0 <= i < len(self.distance) or not self.distance[i]:
            return None
        d, weight = int(self.distance[i]), taper(int(self.distance[i]), self.reach)
        chroma = torch.from_numpy(np.asarray(self.chroma[i : i + 1], dtype=np.float32)).to(device)  # (1, 2, h, w)
        trust = (
            torch.from_numpy(np.asarray(self.trust[i : i + 1], dtype=np.float32)).to(device) * weight
        )  # (1, 1, h, w)
        positions = torch.from_numpy(np.asarray(self.positions[i : i + 1])).to(device)  # (1, 3, h, w)
        return Carried(chroma, trust, d, frame + d, weight, positions)

    def pair_flows(self, frames, device="cpu") -> tuple[Tensor, Tensor] | None:
        """`(backward, forward)`, each `(P, 2, fh, fw)`: the flows of the pairs (t-1, t) for each t of
        `frames`, t -> t-1 and t-1 -> t, as `motion.pair_trust` takes them; None unless every pair
        was computed here (the frame loop then computes them itself: the same flows)."""
        index = [t - 1 - self.first for t in frames]
        if not index or not all(0 <= i < len(self.paired) and self.paired[i] for i in index):
            return None
        load = lambda array: torch.from_numpy(np.stack([array[i] for i in index])).to(device)  # (P, 2, fh, fw)
        return load(self.behind), load(self.ahead)

    def close(self) -> None:
        for name in _SPILLED:
            array = getattr(self, name, None)
            if array is not None:
                array._mmap.close()  # so the files can be removed (Windows) and the pages let go
                setattr(self, name, None)
        self._dir.cleanup()


def _pairs(stage, current: Tensor, following: Tensor, fine=None) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Flow from each `current (P, 1, h, w)` to its `following` frame and back at the flow's size
    (`(ahead, behind)`, `(P, 2, fh, fw)` each: one provider call, as the frame loop makes them), how
    well the luma moved along `ahead` fits (`matched (P, 1, h, w)`, as the forward carry measures
    it) and `lost (P,)`. The carry needs no forward-backward test; the frame loop reuses both.
    `fine`: the same pairs' luma finer than the working size (`motion.carry_flow_size`), where
    the flow is estimated then, as the frame loop does."""
    cfg = stage.config
    h, w = current.shape[-2:]
    small = flow_size(h, w, cfg.flow_short_side)
    if fine is not None:
        ahead, behind = pooled_flows(stage.provider, *fine, small)  # (P, 2, fh, fw) each
    else:
        here, there = shrink(current, small), shrink(following, small)  # (P, 1, fh, fw)
        ahead, behind = stage.provider(torch.cat([here, there]), torch.cat([there, here])).chunk(2)
    flow = resize_flow(ahead, (h, w))  # (P, 2, h, w)
    matched = blur(fit(current, following, flow, cfg.residual_tolerance)[0])  # (P, 1, h, w)
    return ahead, behind, matched, lost(matched, cfg.cut_min_trusted)


@torch.inference_mode()
def backward_carries(stage, lumas, windows, frames: tuple[int, int], folder: Path) -> BackwardCarries:
    """Carry each keyframe of `stage.keyframes` backward through its window.

    `lumas`: `(first frame, (N, 1, h, w) luma at the working size, (N, 1, H', W') luma where the
    flow is estimated or None)` batches (`motion.carry_flow_size`), in film order, from
    frame `frames[0]` on (decoding may stop early: a carry whose keyframe is never reached is
    left out). Cuts come from a shot detector started afresh at each window's first frame, so they
    too depend on the window alone."""
    size = tuple(next(iter(stage.keyframes.values())).shape[-2:])
    store = BackwardCarries(folder, frames, size, stage.config.keyframe_reach, stage.config.flow_short_side)
    try:
        a = frames[0]
        owner = {t: (s, k) for s, k in windows for t in range(max(s, a), k + 1)}
        detector = ShotDetector(stage.shots.config, device=stage.device)
        previous = None  # (frame, luma (1, 1, h, w), its fine luma or None) of the last frame read
        for first, luma, fine in lumas:
            luma = luma.to(stage.device, torch.float32)
            finer = fine is not None  # the same for every batch of a film (motion.carry_flow_size)
            fine = fine.to(stage.device, torch.float32) if finer else luma
            # Pairs (t-1, t), one flow call for the batch's pairs. Every pair of frames read gets
            # its flows (the frame loop takes them: `pair_flows`), but only a pair inside one window
            # can carry (a pair across a window's start stops it).
            pairs, cuts = [], []
            for n in range(len(luma)):
                t = first + n
                window = owner.get(t)
                inside = window is not None and t != window[0] and previous is not None
                if window is not None:
                    store.luma[t - a] = luma[n].cpu().numpy()
                    if not inside:
                        detector.reset()
                    cut = bool(detector(luma[n : n + 1])[0])
                if previous is not None:
                    pairs.append((t - 1, previous[1], luma[n : n + 1], previous[2], fine[n : n + 1]))
                    cuts.append(cut if inside else None)  # None: a window's start, where every carry stops
                previous = (t, luma[n : n + 1], fine[n : n + 1])
            if pairs:
                stacked = [torch.cat([p[n] for p in pairs]) for n in range(1, 5)]  # lumas, fine lumas
                ahead, behind, matched, lost = _pairs(stage, *stacked[:2], stacked[2:] if finer else None)
                held = explained(matched, stage.config.cut_explained).tolist()  # the detector's cut overruled
                for j, (t, *_) in enumerate(pairs):
                    store.ahead[t - a], store.behind[t - a] = ahead[j].cpu().numpy(), behind[j].cpu().numpy()
                    store.paired[t - a] = True
                    store.matched[t - a] = matched[j].cpu().numpy()
                    ends = cuts[j] is None or (cuts[j] and not held[j])  # a cut, as the frame loop decides
                    store.stop[t - a] = ends or bool(lost[j])  # CPU-GPU sync point, per pair
            for t in range(first, first + len(luma)):
                if t in owner and owner[t][1] == t:
                    _reverse(stage, store, owner[t])
            store.release()
        return store
    except BaseException:
        store.close()
        raise


def _reverse(stage, store: BackwardCarries, window: tuple[int, int]) -> None:
    """From keyframe k back to the window's first frame, or to a cut or a frame nothing of k can be found in."""
    s, k = window
    a = store.first
    keyframe = stage._keyframe(k, tuple(store.chroma.shape[-2:]))
    if keyframe is None:
        return
    positions = identity_positions(tuple(keyframe.shape[-2:]), stage.device)  # (1, 3, h, w)
    trust = stage._coverage(k, tuple(keyframe.shape[-2:]))  # (1, 1, h, w): 1, or a registered print's coverage
    lumas = lambda t: torch.from_numpy(np.asarray(store.luma[t - a : t - a + 1])).to(stage.device)  # (1, 1, h, w)
    key_luma = blur(lumas(k))
    for t in range(k - 1, max(s, a) - 1, -1):
        i = t - a
        if store.stop[i]:
            break
        flow = resize_flow(
            torch.from_numpy(np.asarray(store.ahead[i : i + 1])).to(stage.device), tuple(keyframe.shape[-2:])
        )  # (1, 2, h, w)
        matched = torch.from_numpy(np.asarray(store.matched[i : i + 1], dtype=np.float32)).to(
            stage.device
        )  # (1, 1, h, w)
        positions, trust = follow(positions, trust, flow, matched, stage.config)
        store.chroma[i] = sample(keyframe, positions)[0].cpu().numpy()
        store.positions[i] = positions[0].cpu().numpy()
        store.trust[i] = (
            anchored(trust, lumas(t), key_luma, positions, stage.config.residual_tolerance)[0].cpu().numpy()
        )
        store.distance[i] = k - t
        if i % 16 == 0:
            store.release()
