"""Keyframe carry: a colorist's colors followed along the film's motion, forward and backward.

A keyframe's color reaches the frames of its shot after it (forward, in the temporal stage's
frame loop) and before it (backward, computed here ahead of a segment's frame loop). Either way
the carry follows the flow one frame at a time and keeps, per pixel,

    positions  p_t(x) = p_{t∓1}(x + flow_t(x))      where x's color was on the keyframe (pixels)
    chroma     c_t    = keyframe chroma sampled at p_t
    trust      k_t    = k_{t∓1}(x + flow_t(x)) · fits_t · decay^|flow_t|   1 on the keyframe

Carrying the *positions* rather than the colors means the keyframe is sampled once per frame:
resampling the colors at every step (what a chained-flow carry does) blurs them a little more with
every frame, while a field of positions is smooth and bilinear resampling keeps a smooth field
exact. `fits` says how well the moved luma fits (an occluder, new content: low), the decay fades
the color with the distance it has moved, and a carry ends `reach` frames from its keyframe,
tapering over the last quarter.

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
from remaster.stages.motion import blur, fit, flow_size, lost, shrink
from remaster.stages.shots import ShotDetector

# -- one carry -----------------------------------------------------------------------------------


def identity_positions(size: tuple[int, int], device) -> Tensor:
    """`(1, 2, h, w)`: every pixel at its own (x, y), the positions on a keyframe's own frame."""
    h, w = size
    ys, xs = torch.meshgrid(
        torch.arange(h, dtype=torch.float32, device=device),
        torch.arange(w, dtype=torch.float32, device=device),
        indexing="ij",
    )
    return torch.stack((xs, ys))[None]  # (1, 2, h, w)


def sample(image: Tensor, positions: Tensor) -> Tensor:
    """`image (1, C, h, w)` sampled bilinearly at `positions (1, 2, h, w)` (pixels, edges repeated)."""
    h, w = image.shape[-2:]
    grid = torch.stack(
        (2 * positions[:, 0] / max(w - 1, 1) - 1, 2 * positions[:, 1] / max(h - 1, 1) - 1), dim=-1
    )  # (1, h, w, 2)
    return F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=True)  # (1, C, h, w)


def follow(positions: Tensor, trust: Tensor, flow: Tensor, matched: Tensor, config) -> tuple[Tensor, Tensor]:
    """One step of a carry along `flow (1, 2, h, w)` (from the new frame to the one carried from):
    new `(positions (1, 2, h, w), trust (1, 1, h, w))`. A step keeps the trust fully where the moved
    luma fits at least `keyframe_trust` (`matched`), in proportion below, and fades it by
    `keyframe_decay` per pixel moved (temporal.TemporalConfig says why)."""
    fits = (matched / config.keyframe_trust).clamp(max=1.0)  # (1, 1, h, w)
    moved_by = torch.hypot(flow[:, :1], flow[:, 1:])  # (1, 1, h, w) pixels; Tensor.norm(dim=1) took 30x longer here
    fade = torch.exp(math.log(config.keyframe_decay) * moved_by)  # (1, 1, h, w); `decay ** x` too
    moved = warp(torch.cat([positions, trust], 1), flow)[0]  # (1, 3, h, w): one grid_sample for both
    return moved[:, :2], moved[:, 2:] * fits * fade


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


# -- a keyframe's palette: its colors by tone, for what the carry cannot reach -------------------

PALETTE_BINS = 32  # luma bins; a keyframe at 256 px puts ~2800 pixels in each on average


def palette(luma: Tensor, chroma: Tensor, weight: Tensor | None = None, bins: int = PALETTE_BINS) -> Tensor:
    """A keyframe's mean chroma at each tone: `luma (1, 1, h, w)`, `chroma (1, 2, h, w)` ->
    `(bins, 2)`, each pixel counted by its `weight (1, 1, h, w)` (a registered print's coverage;
    None: all alike); a tone the keyframe lacks takes its nearest neighbours' colors (interpolated)."""
    index = (luma.flatten().clamp(0, 1) * (bins - 1)).round().long()  # (h*w,)
    if weight is None:
        sums = torch.zeros(bins, 2, device=chroma.device).index_add_(0, index, chroma.flatten(2)[0].T)  # (bins, 2)
        counts = torch.bincount(index, minlength=bins).float()  # (bins,)
    else:
        w = weight.flatten().to(chroma.dtype)  # (h*w,)
        sums = torch.zeros(bins, 2, device=chroma.device).index_add_(0, index, chroma.flatten(2)[0].T * w[:, None])
        counts = torch.zeros(bins, device=chroma.device).index_add_(0, index, w)
    known = (counts > 1e-3).nonzero().flatten()
    table = sums[known] / counts[known, None]  # (K, 2)
    # Each bin takes the linear interpolation between the known bins around it (the end ones repeated).
    place = torch.searchsorted(known, torch.arange(bins, device=known.device)).clamp(1, max(len(known) - 1, 1))
    lo, hi = known[place - 1], known[place.clamp(max=len(known) - 1)]
    span = (hi - lo).clamp_min(1).float()
    t = ((torch.arange(bins, device=known.device) - lo).float() / span).clamp(0, 1)[:, None]
    at = lambda k: table[torch.searchsorted(known, k)]
    return at(lo) * (1 - t) + at(hi) * t  # (bins, 2)


def paint(table: Tensor, luma: Tensor) -> Tensor:
    """`luma (1, 1, h, w)` colored by a palette `(bins, 2)`: `(1, 2, h, w)`, linear between bins."""
    x = luma[0, 0].clamp(0, 1) * (len(table) - 1)  # (h, w)
    lo = x.floor().long().clamp(max=len(table) - 2)
    t = x - lo
    return torch.stack([torch.lerp(table[lo, c], table[lo + 1, c], t) for c in range(2)])[None]  # (1, 2, h, w)


def local_fill(
    luma: Tensor, chroma: Tensor, confidence: Tensor, fallback: Tensor, cell: int = 8, bins: int = 16
) -> Tensor:
    """Colors for where the carry is not confident, from where it is: the confident carried
    colors of nearby pixels of the same tone (a bilateral grid, Chen et al. 2007: `cell` px
    by `1/bins` of the tone range, slices trilinear), and `fallback (1, 2, h, w)` where no such
    pixel is near. An object partly hidden (a disc passing in front of a square) takes its color
    back from its own visible part, not from whatever hid it. All `(1, C, h, w)` -> `(1, 2, h, w)`."""
    h, w = luma.shape[-2:]
    gh, gw = -(-h // cell), -(-w // cell)
    ys = torch.arange(h, device=luma.device).view(h, 1).expand(h, w) // cell
    xs = torch.arange(w, device=luma.device).view(1, w).expand(h, w) // cell
    zs = (luma[0, 0].clamp(0, 1) * (bins - 1)).round().long()  # (h, w)
    index = ((zs * gh + ys) * gw + xs).flatten()  # (h*w,)
    values = torch.cat([chroma * confidence, confidence], 1)[0].flatten(1)  # (3, h*w)
    grid = torch.stack([torch.bincount(index, weights=v, minlength=bins * gh * gw) for v in values])  # (3, cells)
    grid = grid.reshape(1, 3, bins, gh, gw).to(chroma.dtype)
    grid = F.avg_pool3d(
        grid, 3, stride=1, padding=1, count_include_pad=False
    )  # spread over neighbouring cells and tones
    # Slice: every pixel reads the grid at its own (x, y, tone), trilinear (align_corners: cell centres).
    gx = ((torch.arange(w, device=luma.device, dtype=torch.float32) + 0.5) / cell - 0.5) / max(gw - 1, 1) * 2 - 1
    gy = ((torch.arange(h, device=luma.device, dtype=torch.float32) + 0.5) / cell - 0.5) / max(gh - 1, 1) * 2 - 1
    gz = luma[0, 0].clamp(0, 1) * 2 - 1  # (h, w)
    where = torch.stack((gx.view(1, w).expand(h, w), gy.view(h, 1).expand(h, w), gz), -1)[None, None]  # (1, 1, h, w, 3)
    sliced = F.grid_sample(grid, where, mode="bilinear", padding_mode="border", align_corners=True)[
        :, :, 0
    ]  # (1, 3, h, w)
    found = sliced[:, 2:]  # (1, 1, h, w): confident same-tone pixels nearby (a few make it count)
    near = sliced[:, :2] / found.clamp_min(1e-6)  # (1, 2, h, w)
    weight = found / (found + 0.5)
    return weight * near + (1 - weight) * fallback  # (1, 2, h, w)


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


@dataclass
class Hint:
    """What the colorist's keyframes say about one frame: carried `chroma (1, 2, h, w)` with
    its `confidence (1, 1, h, w)`; `palette (1, 2, h, w)`, the keyframes' colors for this
    frame's tones (a global hint), and `weight`, how much the keyframes govern the frame."""

    chroma: Tensor
    confidence: Tensor
    palette: Tensor
    weight: float


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
        fill = palettes(one.key)
        return Hint(
            one.chroma, one.trust, fill if luma is None else local_fill(luma, one.chroma, one.trust, fill), one.weight
        )
    near_f = backward.distance / (forward.distance + backward.distance)
    a, b = forward.trust * near_f, backward.trust * (1 - near_f)  # (1, 1, h, w)
    chroma = (a * forward.chroma + b * backward.chroma) / (a + b).clamp_min(1e-6)  # (1, 2, h, w)
    wa, wb = forward.weight * near_f, backward.weight * (1 - near_f)
    fill = (wa * palettes(forward.key) + wb * palettes(backward.key)) / max(wa + wb, 1e-6)  # (1, 2, h, w)
    confidence = 1 - (1 - forward.trust) * (1 - backward.trust)  # (1, 1, h, w)
    fill = fill if luma is None else local_fill(luma, chroma, confidence, fill)
    return Hint(chroma, confidence, fill, max(forward.weight, backward.weight))


def apply_hint(chroma: Tensor, given: Hint | None) -> Tensor:
    """The one place a keyframe hint meets the colors made without it, `chroma (1, 2, h, w)`
    (the network's, smoothed along motion). Where the carry is confident its color holds;
    elsewhere (occlusions, new content) the keyframe's palette for the frame's tones stands in
    for the network as far as the keyframe governs the frame: on the data pack's clips this
    network's colors are worse than gray where a carry breaks (RESULTS.md), a keyframe's own
    colors by tone are not. With keyframe_fill "hints", `chroma` is a hint-conditioned
    network's given this hint as input (stages/keyframes/steer.py), and it fills those places itself
    (`given.weight` 0)."""
    if given is None:
        return chroma
    fill = given.weight * given.palette + (1 - given.weight) * chroma  # (1, 2, h, w)
    return given.confidence * given.chroma + (1 - given.confidence) * fill  # (1, 2, h, w)


# -- backward carry over a segment ---------------------------------------------------------------


class BackwardCarries:
    """The backward carries of one segment: `get(frame)` -> `Carried | None`. Frames a..b live
    in memmaps in a temporary folder under `folder` (removed by `close()`)."""

    def __init__(self, folder: Path, frames: tuple[int, int], size: tuple[int, int], reach: int):
        self.first, last = frames
        self.reach = reach
        count, (h, w) = last - self.first + 1, size
        self._dir = tempfile.TemporaryDirectory(prefix="carry-", dir=folder)

        def spill(name, shape, dtype):
            return np.lib.format.open_memmap(Path(self._dir.name) / f"{name}.npy", mode="w+", dtype=dtype, shape=shape)

        self.flow = spill("flow", (count, 2, h, w), np.float32)  # pair (t, t+1): flow t -> t+1
        self.matched = spill("matched", (count, 1, h, w), np.float16)
        self.chroma = spill("chroma", (count, 2, h, w), np.float16)
        self.trust = spill("trust", (count, 1, h, w), np.float16)
        self.luma = spill("luma", (count, 1, h, w), np.float32)  # each frame's, for `anchored`
        self.stop = np.zeros(count, dtype=bool)  # no carry from t+1 to t: a cut, or nothing followable
        self.distance = np.zeros(count, dtype=np.int64)  # 0: no carry reaches the frame

    def release(self) -> None:
        """Let go of the spilled pages this process has touched: a file mapping's pages count as
        its resident memory until then (they stay in the page cache, or on disk, and come back
        when read), so without this a window of 500 frames at 256x352 would show ~700 MB."""
        if hasattr(mmap, "MADV_DONTNEED"):
            for name in ("flow", "matched", "chroma", "trust", "luma"):
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
        return Carried(chroma, trust, d, frame + d, weight)

    def close(self) -> None:
        for name in ("flow", "matched", "chroma", "trust", "luma"):
            array = getattr(self, name, None)
            if array is not None:
                array._mmap.close()  # so the files can be removed (Windows) and the pages let go
                setattr(self, name, None)
        self._dir.cleanup()


def _pairs(stage, current: Tensor, following: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Flow from each `current (P, 1, h, w)` to its `following` frame, how well the moved luma
    fits (`matched (P, 1, h, w)`, as the forward carry measures it) and `lost (P,)`: one flow per
    pair (a carry needs no forward-backward test)."""
    cfg = stage.config
    h, w = current.shape[-2:]
    small = flow_size(h, w, cfg.flow_short_side)
    flow = resize_flow(stage.provider(shrink(current, small), shrink(following, small)), (h, w))  # (P, 2, h, w)
    matched = blur(fit(current, following, flow, cfg.residual_tolerance)[0])  # (P, 1, h, w)
    return flow, matched, lost(matched, cfg.cut_min_trusted)


@torch.inference_mode()
def backward_carries(stage, lumas, windows, frames: tuple[int, int], folder: Path) -> BackwardCarries:
    """Carry each keyframe of `stage.keyframes` backward through its window.

    `lumas`: `(first frame, (N, 1, h, w) luma at the working size)` batches, in film order, from
    frame `frames[0]` on (decoding may stop early: a carry whose keyframe is never reached is
    left out). Cuts come from a shot detector started afresh at each window's first frame, so they
    too depend on the window alone."""
    size = tuple(next(iter(stage.keyframes.values())).shape[-2:])
    store = BackwardCarries(folder, frames, size, stage.config.keyframe_reach)
    try:
        a = frames[0]
        owner = {t: (s, k) for s, k in windows for t in range(max(s, a), k + 1)}
        detector = ShotDetector(stage.shots.config, device=stage.device)
        previous = None  # (frame, luma (1, 1, h, w)) of the last frame read within a window
        for first, luma in lumas:
            luma = luma.to(stage.device, torch.float32)
            # Pairs (t-1, t) inside one window, one flow call for the batch's pairs.
            pairs, cuts = [], []
            for n in range(len(luma)):
                t = first + n
                window = owner.get(t)
                if window is None:
                    previous = None
                    continue
                store.luma[t - a] = luma[n].cpu().numpy()
                if t == window[0] or previous is None:
                    detector.reset()
                    detector(luma[n : n + 1])
                else:
                    pairs.append((t - 1, previous[1], luma[n : n + 1]))
                    cuts.append(bool(detector(luma[n : n + 1])[0]))
                previous = (t, luma[n : n + 1])
            if pairs:
                flow, matched, lost = _pairs(stage, torch.cat([p[1] for p in pairs]), torch.cat([p[2] for p in pairs]))
                for j, (t, _, _) in enumerate(pairs):
                    store.flow[t - a] = flow[j].cpu().numpy()
                    store.matched[t - a] = matched[j].cpu().numpy()
                    store.stop[t - a] = cuts[j] or bool(lost[j])  # CPU-GPU sync point, per pair
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
    positions = identity_positions(tuple(keyframe.shape[-2:]), stage.device)  # (1, 2, h, w)
    trust = stage._coverage(k, tuple(keyframe.shape[-2:]))  # (1, 1, h, w): 1, or a registered print's coverage
    lumas = lambda t: torch.from_numpy(np.asarray(store.luma[t - a : t - a + 1])).to(stage.device)  # (1, 1, h, w)
    key_luma = blur(lumas(k))
    for t in range(k - 1, max(s, a) - 1, -1):
        i = t - a
        if store.stop[i]:
            break
        flow = torch.from_numpy(np.asarray(store.flow[i : i + 1])).to(stage.device)  # (1, 2, h, w)
        matched = torch.from_numpy(np.asarray(store.matched[i : i + 1], dtype=np.float32)).to(
            stage.device
        )  # (1, 1, h, w)
        positions, trust = follow(positions, trust, flow, matched, stage.config)
        store.chroma[i] = sample(keyframe, positions)[0].cpu().numpy()
        store.trust[i] = (
            anchored(trust, lumas(t), key_luma, positions, stage.config.residual_tolerance)[0].cpu().numpy()
        )
        store.distance[i] = k - t
        if i % 16 == 0:
            store.release()
