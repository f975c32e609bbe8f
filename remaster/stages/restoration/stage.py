"""Restoration (opt-in, `--restore`): deflicker, dust and denoise on the luma, before colorizing.

    decode ─► shots ─► deflicker ─► flow ─► dust ─► denoise ─► restored batch ─► colorize ─► ...
              (cuts)   (±radius)    (±1)    (±1)    (±frames)   (codes: what is written)

The filters are pure functions (stages/restoration/filters.py); this module streams them. They need frames
on both sides of the one they restore, so the `Restorer` is the front of the chain: it takes
the decoder's batches, holds back as many frames as its windows reach ahead (`ahead`, a few
dozen at most: memory stays bounded by the window, never the film), and gives each batch back
restored once every frame it needs has arrived. Windows never cross a cut, so a shot is
restored from itself only; at the film's two ends they shrink.

A segment of the run plan is restored from the segment alone: it warms up on `back` frames
before its start, and the reader decodes `ahead` frames past its end (`tail` batches) that the
restorer looks at and nobody writes (plan.py, reader.py).

The restored luma is rounded to the source's codes: those codes are colorized and written, so
the file holds exactly the luma the colors were made for.
"""

from __future__ import annotations

import bisect
import dataclasses
import time
from collections import deque
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from remaster.errors import ConfigError
from remaster.stages.restoration.filters import (
    apply_tone,
    compose,
    deflicker_params,
    denoise,
    despot,
    frame_stats,
    window_reference,
)

RESTORE_STAGES = ("deflicker", "dust", "denoise")


@dataclass(frozen=True)
class RestoreConfig:
    # Off by default: the archive's luma is untouched unless restoration is asked for (DESIGN promise 1).
    stages: str | None = field(
        default=None,
        metadata={
            "help": (
                "Restore the luma before colorizing: deflicker, dust, denoise (comma-separated) or all; "
                "default none: luma untouched."
            ),
            "flag": "--restore",
        },
    )
    # ±7 frames (half a second at 30 fps): the median of 15 frames' exposure steadies a flicker
    # of ±18% to about ±3%, and a real change shows within 8 frames of where it happened.
    deflicker_radius: int = 7
    # A speck stands out from both moved neighbours by this much of full scale (25 codes at 8
    # bits: five times the benchmark's film grain, so grain is almost never taken for dust).
    dust_threshold: float = 0.1
    # ...while the two neighbours agree within this (else the motion is not understood there).
    dust_agree: float = 0.05
    # Frames on each side that the denoiser averages along the motion.
    denoise_radius: int = 2
    # 1: the full motion-compensated average (grain σ down by about √(2·radius + 1) where the motion is
    # followed); lower keeps more of the film's grain.
    denoise_strength: float = field(
        default=1.0, metadata={"help": "0..1: how much of the motion-compensated average replaces the grain."}
    )
    # A moved neighbour's difference (3x3 mean) at which its weight falls to 1/e: grain averages
    # below it, a mismatch (occlusion, a flow error) lies far above it.
    denoise_tolerance: float = 0.03

    def __post_init__(self) -> None:
        names = self.names
        unknown = [n for n in names if n not in RESTORE_STAGES]
        if unknown:
            raise ConfigError(
                f"restore stage {unknown[0]!r} unknown: expected {', '.join(RESTORE_STAGES)} or all (comma-separated)"
            )
        if self.deflicker_radius < 1 or self.denoise_radius < 1:
            raise ConfigError(
                f"deflicker_radius and denoise_radius must be >= 1, got {self.deflicker_radius} and "
                f"{self.denoise_radius}"
            )
        if not 0.0 <= self.denoise_strength <= 1.0:
            raise ConfigError(f"denoise_strength must be in [0, 1], got {self.denoise_strength}")
        if self.dust_threshold <= 0 or self.dust_agree <= 0 or self.denoise_tolerance <= 0:
            raise ConfigError("dust_threshold, dust_agree and denoise_tolerance must be > 0")

    @property
    def names(self) -> tuple[str, ...]:
        """The asked stages, in the order they run (deflicker first: flow and the speck test
        both assume a steady exposure)."""
        asked = {s.strip().lower() for s in str(self.stages or "").split(",") if s.strip()}
        if "all" in asked:
            return RESTORE_STAGES
        return tuple(s for s in RESTORE_STAGES if s in asked) + tuple(sorted(asked - set(RESTORE_STAGES)))

    @property
    def enabled(self) -> bool:
        return bool(self.names)

    @property
    def reach(self) -> int:
        """Frames on each side of a frame that its restored value depends on."""
        names = self.names
        if not names:
            return 0
        deflicker = self.deflicker_radius if "deflicker" in names else 0
        moved = 1 if "dust" in names else 0
        return deflicker + moved + (self.denoise_radius if "denoise" in names else 0)


def luma_to_codes(luma: Tensor, bit_depth: int, full_range: bool, dtype: torch.dtype) -> Tensor:
    """Full-range Y' in [0, 1] -> integer codes (the inverse of frames.codes_to_luma), rounded."""
    if full_range:
        codes = luma * float((1 << bit_depth) - 1)
    else:
        scale = float(1 << (bit_depth - 8))
        codes = luma * (219.0 * scale) + 16.0 * scale
    return codes.round().clamp(0, (1 << bit_depth) - 1).to(dtype)


class Restorer:
    """The restore stages as the streaming front of the chain: `restored = restorer.run(batches)`
    gives `(batch, cuts)` pairs: each non-tail batch with its Y codes restored and its cut flags.

    `shots`: the chain's shot detector (it runs here, on the decoded luma, and its flags travel
    with the batch); `shot_size(h, w)`: the size it looks at; `flow`: a flow provider
    (flow.py's interface), shared with the temporal stage, run on luma scaled to
    `flow_short_side` (the temporal stage's option).
    """

    name = "restore"

    def __init__(
        self, config: RestoreConfig, *, shots, shot_size, flow, device: torch.device, flow_short_side: int = 256
    ):
        self.config = config
        self.names = config.names
        self.shots = shots
        self.shot_size = shot_size
        self.flow = flow
        self.flow_short_side = flow_short_side
        self.device = device
        self.seconds = 0.0
        self.counts = {"frames": 0, "speck_pixels": 0}  # all films, for the report
        self.reset()

    @property
    def back(self) -> int:
        """Warm-up frames a segment needs: the windows' reach, plus the shot detector's own."""
        return self.config.reach + self.shots.warmup_frames

    @property
    def ahead(self) -> int:
        """Look-ahead frames a segment needs past its end (decoded, never written)."""
        return self.config.reach

    def describe(self) -> dict:
        return {
            "stages": list(self.names),
            **{k: v for k, v in dataclasses.asdict(self.config).items() if k != "stages"},
            **self.counts,
        }

    def reset(self) -> None:
        self.known = 0  # frames arrived since the reset
        self._hold = 0  # first frame of the oldest batch not yet given back
        self.final = False
        self.cuts: list[int] = []  # indexes of frames that start a shot (besides frame 0), sorted
        self.raw: dict[int, Tensor] = {}  # k -> (1, 1, H, W) decoded luma
        self.stats: dict[int, Tensor] = {}  # k -> (2,) mean, std
        self.toned: dict[int, Tensor] = {}  # after deflicker
        self.back_flow: dict[int, Tensor] = {}  # k -> (1, 2, h, w) flow k -> k-1, at the flow's size
        self.fore_flow: dict[int, Tensor] = {}  # k -> (1, 2, h, w) flow k -> k+1
        self.clean: dict[int, Tensor] = {}  # after dust
        self.done: dict[int, Tensor] = {}  # after denoise
        self.next = {"toned": 0, "flow": 1, "clean": 0, "done": 0}  # first index not yet computed

    # -- shots and windows ---------------------------------------------------------------------

    def _shot_start(self, k: int) -> int:
        i = bisect.bisect_right(self.cuts, k)
        return self.cuts[i - 1] if i else 0

    def _last(self, k: int, r: int, computed: int) -> int | None:
        """The last frame of `k`'s window reaching `r` ahead, once that is known and computed
        (`computed`: frames below it exist in the layer the window reads); None: not yet."""
        i = bisect.bisect_right(self.cuts, k)
        end = k + r
        if i < len(self.cuts):
            end = min(end, self.cuts[i] - 1)
        elif self.final:
            end = min(end, self.known - 1)
        elif end >= self.known:
            return None
        return end if end < computed else None

    # -- the stream ----------------------------------------------------------------------------

    def run(self, batches):
        """Iterate `(restored FrameBatch, cuts (N,) bool, flow)` over the decoder's batches
        (`flow`: see `_flows_of`; None when no stage needed flow): warm-up (`lead`) batches come
        back too (their state matters downstream), `tail` ones never."""
        pending: deque = deque()  # (batch, first index, cut flags)
        for batch in batches:
            if not len(batch):
                continue
            luma = batch.luma(self.device)  # (N, 1, H, W)
            size = self.shot_size(*luma.shape[-2:])
            small = (
                luma
                if tuple(size) == tuple(luma.shape[-2:])
                else F.interpolate(luma, size=size, mode="bilinear", antialias=True, align_corners=False)
            )
            cuts = self.shots(small)  # (N,) bool
            first = self.known
            for i, flag in enumerate(cuts.tolist()):  # CPU-GPU sync point: cut flags steer the windows
                k = first + i
                if flag and k > 0:
                    self.cuts.append(k)
            stats = frame_stats(luma)  # (N, 2)
            for i in range(len(batch)):
                self.raw[first + i] = luma[i : i + 1]
                self.stats[first + i] = stats[i]
            self.known += len(batch)
            if not batch.tail:
                pending.append((batch, first, cuts))
            self._hold = pending[0][1] if pending else self.known  # flows are kept for the batches not yet given
            self._advance()
            yield from self._give(pending)
        self.final = True
        self._advance()
        yield from self._give(pending)

    def _give(self, pending: deque):
        while pending and pending[0][1] + len(pending[0][0]) <= self.next["done"]:
            batch, first, cuts = pending.popleft()
            luma = torch.cat([self.done.pop(first + i) for i in range(len(batch))])  # (N, 1, H, W)
            src = batch.source
            codes = luma_to_codes(
                luma, src.bit_depth, src.full_range, batch.y.dtype
            ).cpu()  # (N, 1, H, W): a sync point on CUDA
            self.counts["frames"] += 0 if batch.lead else len(batch)
            yield dataclasses.replace(batch, y=codes), cuts, self._flows_of(first, len(batch))

    def _flows_of(self, first: int, n: int) -> tuple[Tensor, Tensor] | None:
        """(backward, forward) `(N, 2, h, w)` for frames first.. (i -> i-1, i-1 -> i): the flow
        the temporal stage would compute, handed on; zeros at a shot's first frame."""
        if not self.back_flow:
            return None
        like = next(iter(self.back_flow.values()))
        zeros = torch.zeros_like(like)
        backward = torch.cat([self.back_flow.get(k, zeros) for k in range(first, first + n)])
        forward = torch.cat([self.fore_flow.get(k - 1, zeros) for k in range(first, first + n)])
        return backward, forward

    def _advance(self) -> None:
        """Compute every layer as far as the frames arrived allow, then forget the old."""
        started = time.perf_counter()
        with torch.inference_mode():
            self._deflicker()
            self._flows()
            self._dust()
            self._denoise()
        self._trim()
        self.seconds += time.perf_counter() - started

    def _deflicker(self) -> None:
        r = self.config.deflicker_radius if "deflicker" in self.names else 0
        ready = []
        k = self.next["toned"]
        while k < self.known:
            last = self._last(k, r, self.known)
            if last is None:
                break
            reach = min(k - max(self._shot_start(k), k - r), last - k)  # symmetric: a ramp's median is its middle
            ready.append((k, reach))
            k += 1
        if not ready:
            return
        if r:
            stats = torch.stack([self.stats[k] for k, _ in ready])  # (M, 2)
            reference = torch.stack(
                [window_reference(torch.stack([self.stats[j] for j in range(k - q, k + q + 1)])) for k, q in ready]
            )
            gain, offset = deflicker_params(stats, reference)  # (M,), (M,)
            toned = apply_tone(torch.cat([self.raw[k] for k, _ in ready]), gain, offset)  # (M, 1, H, W)
        else:
            toned = torch.cat([self.raw[k] for k, _ in ready])
        for i, (k, _) in enumerate(ready):
            self.toned[k] = toned[i : i + 1]
        self.next["toned"] = ready[-1][0] + 1

    def _flows(self) -> None:
        """Flow both ways between consecutive deflickered frames of a shot, in one call."""
        if not ({"dust", "denoise"} & set(self.names)):
            self.next["flow"] = self.next["toned"]
            return
        pairs = [k for k in range(self.next["flow"], self.next["toned"]) if k not in self.cuts]  # (k, k-1) in one shot
        self.next["flow"] = max(self.next["flow"], self.next["toned"])
        if not pairs:
            return
        current = torch.cat([self.toned[k] for k in pairs])  # (P, 1, H, W)
        previous = torch.cat([self.toned[k - 1] for k in pairs])  # (P, 1, H, W)
        h, w = current.shape[-2:]
        scale = min(1.0, self.flow_short_side / min(h, w))
        fh, fw = max(1, round(h * scale)), max(1, round(w * scale))
        small = (
            (lambda t: F.interpolate(t, size=(fh, fw), mode="bilinear", antialias=True, align_corners=False))
            if scale < 1
            else (lambda t: t)
        )
        # Kept at the flow's size (a 16th of the pixels at 640x480): chained and tested there,
        # scaled to the picture only to warp.
        both = self.flow(
            torch.cat([small(current), small(previous)]), torch.cat([small(previous), small(current)])
        )  # (2P, 2, fh, fw)
        backward, forward = both.chunk(2)
        for i, k in enumerate(pairs):
            self.back_flow[k] = backward[i : i + 1]  # k -> k-1
            self.fore_flow[k - 1] = forward[i : i + 1]  # k-1 -> k

    def _dust(self) -> None:
        ready = []
        k = self.next["clean"]
        while k < self.next["toned"]:
            last = self._last(k, 1, self.next["flow"])
            if last is None:
                break
            ready.append(k)
            k += 1
        if not ready:
            return
        self.next["clean"] = ready[-1] + 1
        both = [k for k in ready if k in self.back_flow and k in self.fore_flow] if "dust" in self.names else []
        for k in ready:
            self.clean[k] = self.toned[k]
        if not both:
            return
        cleaned, mask = despot(
            torch.cat([self.toned[k] for k in both]),
            torch.cat([self.toned[k - 1] for k in both]),
            torch.cat([self.toned[k + 1] for k in both]),
            torch.cat([self.back_flow[k] for k in both]),
            torch.cat([self.fore_flow[k] for k in both]),
            threshold=self.config.dust_threshold,
            agree=self.config.dust_agree,
        )
        self.counts["speck_pixels"] += int(mask.sum())
        for i, k in enumerate(both):
            self.clean[k] = cleaned[i : i + 1]

    def _denoise(self) -> None:
        r = self.config.denoise_radius if "denoise" in self.names else 0
        ready = []
        k = self.next["done"]
        while k < self.next["clean"]:
            if self._last(k, r, self.next["clean"]) is None:
                break
            ready.append(k)
            k += 1
        if not ready:
            return
        self.next["done"] = ready[-1] + 1
        if not r:
            for k in ready:
                self.done[k] = self.clean[k]
            return
        groups: dict[tuple[int, int], list[int]] = {}  # (frames back, frames ahead) -> frames: one call each
        for k in ready:
            back = k - max(self._shot_start(k), k - r)
            groups.setdefault((back, self._last(k, r, self.next["clean"]) - k), []).append(k)
        for (back, ahead), ks in groups.items():
            neighbours, flows = [], []
            for steps, store, sign in ((back, self.back_flow, -1), (ahead, self.fore_flow, 1)):
                flow = None
                for d in range(1, steps + 1):  # t -> t±1 -> t±2 ...: chained at the flow's size
                    step = torch.cat([store[k + sign * (d - 1)] for k in ks])  # (M, 2, h, w)
                    flow = step if flow is None else compose(flow, step)
                    neighbours.append(torch.cat([self.clean[k + sign * d] for k in ks]))  # (M, 1, H, W)
                    flows.append(flow)
            done = denoise(
                torch.cat([self.clean[k] for k in ks]),
                neighbours,
                flows,
                strength=self.config.denoise_strength,
                tolerance=self.config.denoise_tolerance,
            )
            for i, k in enumerate(ks):
                self.done[k] = done[i : i + 1]

    def _trim(self) -> None:
        """Forget what no window can reach any more: memory stays bounded by the windows."""
        cfg = self.config
        keep = {
            "raw": self.next["toned"],
            "stats": self.next["toned"] - cfg.deflicker_radius,
            "toned": min(self.next["clean"], self.next["flow"]) - 1,
            "back_flow": min(self.next["done"] - cfg.denoise_radius, self._hold),
            "fore_flow": min(self.next["done"] - cfg.denoise_radius, self._hold - 1),
            "clean": self.next["done"] - cfg.denoise_radius,
        }
        for name, low in keep.items():
            store = getattr(self, name)
            for k in [k for k in store if k < low]:
                del store[k]
        low = min(keep.values())
        i = bisect.bisect_left(self.cuts, low)
        if i > 1:
            del self.cuts[: i - 1]  # the last cut before `low` still starts its shot
