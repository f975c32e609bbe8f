"""The backward carry: a keyframe's colors followed back through the frames of its shot before it.

The backward carry needs the frames after a frame, so a segment computes it before its frame loop
(`backward_carries`): for each keyframe k a window of frames [s, k] fixed by the keyframes alone
(`backward_windows`: from `reach` frames back, or the keyframe before it), decoded up to k even
past the segment's end, so every execution computes the same carry. Memory stays flat: the
window's flow and carried colors are spilled to files in the run's work folder (numpy memmaps,
float16 colors and trust), and only two frames' lumas are held, whatever the window's length.
"""

from __future__ import annotations

import mmap
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from remaster.stages.flow import resize_flow
from remaster.stages.keyframes.carry import Carried, anchored, follow, identity_positions, reacquired, sample, taper
from remaster.stages.motion import blur, explained, fit, flow_size, lost, pooled_flows, shrink
from remaster.stages.shots import ShotDetector

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
    coverage = stage._coverage(k, tuple(keyframe.shape[-2:]))  # (1, 1, h, w): 1, or a registered print's
    trust = coverage
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
        positions, trust = reacquired(positions, trust, lumas(t), key_luma, coverage, stage.config.residual_tolerance)
        store.chroma[i] = sample(keyframe, positions)[0].cpu().numpy()
        store.positions[i] = positions[0].cpu().numpy()
        store.trust[i] = (
            anchored(trust, lumas(t), key_luma, positions, stage.config.residual_tolerance)[0].cpu().numpy()
        )
        store.distance[i] = k - t
        if i % 16 == 0:
            store.release()
