"""The temporal stage: carry chroma along the motion of the input so colors stop flickering.

A per-frame colorizer decides each frame's colors afresh, and small changes of the input (grain,
exposure flicker, motion) change its mind: the colors flicker. This stage is a motion-compensated
recursive filter, in the spirit of the blind temporal-consistency methods of Bonneel et al.
(SIGGRAPH Asia 2015) and Lai et al. (ECCV 2018):

    flow      b_t  = flow(luma_t -> luma_{t-1})             on the *input* luma (DESIGN.md)
    carried   c~_t = warp(out_{t-1}, b_t)                    the previous *output* chroma, moved
    trust     k_t  = fb_consistent · inside · exp(-(r_t/τ)²) r_t = |luma_t - warp(luma_{t-1}, b_t)|
    output    out_t = w·c~_t + (1 - w)·chroma_t,             w = strength · k_t

so where the motion is known the color is carried along it, and where it is not (occlusions,
new content, flow failures) the fresh color shows through. At a scene cut the stage starts over.
Because it feeds back its own output, the effective memory is about 1 / (1 - strength) frames.

A colorist's keyframes ride on the same loop: their colors follow the same flow (stages/keyframes/carry.py), forward
here and backward ahead of the segment (`set_backward`), are seen at the output's size (stages/keyframes/fine.py),
and override these colors as far as they are trusted (`carry.apply_hint`). Without keyframes: the filter above.

The stage keeps state across calls (the last input luma and the last output chroma): a film is
fed batch by batch with no seam, `reset()` forgets, and `state()` / `load_state()` let a resumed
run continue exactly where it stopped.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch
from torch import Tensor

from remaster.device import resolve_device
from remaster.errors import ConfigError
from remaster.stages.flow import DIS_PRESETS, FLOW_NAMES, make_flow_provider, warp
from remaster.stages.keyframes import carry
from remaster.stages.keyframes.fine import FineKeyframes, fine_hint
from remaster.stages.keyframes.given import GivenKeyframes
from remaster.stages.motion import blur, carry_flow_size, explained, flow_size, pair_trust, pooled_flows
from remaster.stages.on_demand import ChromaOnDemand
from remaster.stages.shots import ShotDetector

KEYFRAME_FILLS = ("local", "palette", "network", "hints")


@dataclass(frozen=True)
class TemporalConfig:
    # "none" turns the stage off: per-frame colors.
    flow: str = field(
        default="auto",
        metadata={"help": "Optical flow of the temporal stage; none: per-frame colors.", "choices": FLOW_NAMES},
    )
    # Weight of the motion-carried previous output where the flow is fully trusted. 0.8 gives a
    # memory of about 5 frames: flicker is averaged over ~1/5 s at 25 fps, while a color the
    # colorizer really changes (new lighting, a mistake corrected) settles within a few frames.
    strength: float = field(
        default=0.8,
        metadata={"help": "0..1: how strongly colors are carried along motion.", "flag": "--temporal-strength"},
    )
    # Flow is computed on luma scaled so its short side is at most this. Chroma is smooth and
    # works at ~256 px anyway; flow at that size is cheap (DIS ~13 ms/pair on one CPU core) and
    # its vectors are upsampled with the field.
    flow_short_side: int = 256
    # ...but a keyframe's carry chains its flow over hundreds of frames, so with keyframes the
    # flow is estimated on the decoded luma at up to this short side and pooled to the above
    # (motion.pooled_flows): +0.11 dB mean on the data pack's clips over 60 frames (up to +0.4),
    # at 1.4x the automatic mode's CPU time (was 1.0x); 360 did as well at 1.52x (benchmarks/RESULTS.md).
    carry_flow_short_side: int = 320
    # RAFT weights: None = torchvision's DEFAULT (downloaded and cached when online), a file, or "random".
    flow_weights: str | None = field(
        default=None,
        metadata={
            "help": (
                "RAFT weights file (default: torchvision's cache, downloaded when online; 'random' for plumbing tests)."
            )
        },
    )
    # DIS speed/quality; medium takes about 4x fast's time.
    dis_preset: str = field(
        default="medium", metadata={"help": "OpenCV DIS flow speed/quality.", "choices": DIS_PRESETS}
    )
    raft_iterations: int = 12  # RAFT refinement steps; torchvision's default, fewer is faster
    consistency: str = "both"  # how flow is trusted: fb | residual | both
    # Forward-backward test |b + f~|² <= alpha(|b|² + |f~|²) + beta (Sundaram et al. 2010);
    # beta is in flow pixels², at the flow resolution.
    fb_alpha: float = 0.01
    fb_beta: float = 0.5
    # Luma residual (after warping and matching the pair's exposure, lightly blurred so film grain
    # does not count) at which confidence falls to 1/e. 0.05 of full scale: a wrong match
    # (occluder, new object) loses the weight.
    residual_tolerance: float = 0.05
    # Shots come from the shot detector (shots.py); besides, a frame where fewer than this
    # fraction of pixels are trusted starts over: nothing of the last frame can be found in it,
    # so keeping any of it would only leak stale color.
    cut_min_trusted: float = 0.05
    # ... and a cut the detector finds is no fresh start where at least this share of the picture
    # fits the frame before it along the flow (`motion.explained`). At cuts between different
    # clips of the data pack at most 0.70 fit (95 cuts, bench_shots.py's films); of the detector's
    # ten false cuts on car-detection at 8x speed (cars coming into a still shot of asphalt),
    # eight fit 0.88 to 1.0 (benchmarks/RESULTS.md).
    cut_explained: float = 0.8
    # A colorist's keyframe is carried forward along the flow with a trust that starts at 1 on
    # its frame and follows how well the moved luma fits (`keyframe_trust`). It fades with the
    # distance the color has moved, not with time: by this factor for every pixel of motion (at
    # the working size), since a carry's errors come from interpolating and from the flow's
    # mistakes along the way. On nearly still footage a fade with time let the network's colors
    # leak in and cost up to 15 dB against a plain carry (bench_keyframes.py).
    keyframe_decay: float = 0.99
    # ...and it ends: a keyframe reaches this many frames into its shot, its weight tapering to
    # zero over the last quarter, so a segment that starts later owes it nothing (the run plan
    # warms a segment up from a keyframe within this reach). 500 frames: 20 s at 25 fps.
    keyframe_reach: int = field(
        default=500, metadata={"help": "Frames a keyframe's colors reach, forward and backward, within its shot."}
    )
    # A step of the carry keeps the keyframe's color fully where the moved luma fits at least
    # this well (`matched`), and in proportion below it: trust is a product along the path, and
    # a plain carry along chained flow already scores 32-36 dB on real clips (DESIGN, "What we
    # already know"), so only a clear misfit (an occluder, new content) should cost it.
    keyframe_trust: float = 0.5
    # What colors the pixels of a keyframe's frames its carry does not reach (occlusions, new
    # content): "local", the carried colors of nearby pixels of the same tone, else the keyframe's
    # colors by tone; "palette", the keyframe's colors by tone only; "network", the network's;
    # "hints", the carry steers a hint-conditioned network, which colors those pixels to match
    # (stages/keyframes/steer.py; the shipped remaster-hints model where the film's model takes no hints).
    keyframe_fill: str = field(
        default="local",
        metadata={
            "help": "Where a keyframe's carry does not reach: local | palette | network | hints.",
            "choices": KEYFRAME_FILLS,
        },
    )

    def __post_init__(self):
        if self.flow not in FLOW_NAMES:
            raise ConfigError(f"flow must be one of {', '.join(FLOW_NAMES)}, got {self.flow!r}")
        if not 0.0 <= self.strength < 1.0:
            raise ConfigError(f"temporal strength must be in [0, 1), got {self.strength}")
        if min(self.flow_short_side, self.carry_flow_short_side) < 16:
            raise ConfigError(
                f"flow_short_side and carry_flow_short_side must be at least 16 px, got "
                f"{self.flow_short_side} and {self.carry_flow_short_side}"
            )
        if self.dis_preset not in DIS_PRESETS:
            raise ConfigError(f"dis_preset must be one of {', '.join(DIS_PRESETS)}, got {self.dis_preset!r}")
        if self.consistency not in ("fb", "residual", "both"):
            raise ConfigError(f"consistency must be fb, residual or both, got {self.consistency!r}")
        if self.residual_tolerance <= 0:
            raise ConfigError(f"residual_tolerance must be > 0, got {self.residual_tolerance}")
        if not 0.0 < self.cut_explained <= 1.0:
            raise ConfigError(f"cut_explained must be in (0, 1], got {self.cut_explained}")
        if not 0.0 < self.keyframe_decay <= 1.0:
            raise ConfigError(f"keyframe_decay must be in (0, 1], got {self.keyframe_decay}")
        if self.keyframe_fill not in KEYFRAME_FILLS:
            raise ConfigError(f"keyframe_fill must be one of {', '.join(KEYFRAME_FILLS)}, got {self.keyframe_fill!r}")
        if self.keyframe_reach < 4:
            raise ConfigError(f"keyframe_reach must be at least 4 frames, got {self.keyframe_reach}")

    @property
    def enabled(self) -> bool:
        return self.flow != "none" and self.strength > 0

    @property
    def warmup_frames(self) -> int:
        """Frames after which the carried color of the distant past weighs under 1/256
        (strength^n < 1/256; confidence below 1 only makes it fade faster): a segment that warms
        up on this many frames before its start shows no seam at 8 bits."""
        return math.ceil(math.log(1 / 256) / math.log(self.strength)) if self.enabled else 0


class TemporalStage:
    """`out = stage(luma, chroma)`, batch after batch of one film.

    luma `(N, 1, h, w)` float32 Y' in [0, 1] and chroma `(N, 2, h, w)` (Cb, Cr) offsets, both at
    the chroma working resolution; returns smoothed chroma `(N, 2, h, w)` on `stage.device`.
    `stage.provider_name` says which flow provider runs (`auto` resolves when the stage is built).
    """

    name = "temporal"

    def __init__(self, config: TemporalConfig | None = None, device="cpu"):
        self.config = config or TemporalConfig()
        self.device = resolve_device(device)
        if self.config.enabled:
            self.provider = make_flow_provider(
                self.config.flow,
                device=self.device,
                weights=self.config.flow_weights,
                dis_preset=self.config.dis_preset,
                raft_iterations=self.config.raft_iterations,
            )
        else:
            self.provider = None
        self.provider_name = self.provider.name if self.provider is not None else "none"
        self.cuts = 0  # fresh starts (cuts, or nothing to follow) seen by this stage (all films), for reports
        # The one shot detector (shots.py): the chain runs it as a stage of its own and hands its
        # flags in; called on its own, the stage runs this one.
        self.shots = ShotDetector(device=self.device)
        self.set_keyframes({})  # film frame -> (1, 2, H, W) chroma of a colorist's keyframe, and its luma
        # Keyframes after a frame reach it backward: computed ahead of a segment (stages/keyframes/backward.py) and
        # handed in with `set_backward`; None: no keyframe ahead reaches this segment.
        self.backward = None
        # keyframe_fill "hints": steer.KeyframeSteering, set by the chain (set_steering).
        self.steering = None
        self.reset()

    def takes_chroma_on_demand(self) -> bool:
        """Whether the network's colors are asked for frame by frame (on_demand.ChromaOnDemand): with
        keyframes, the frames whose output is the carry's alone need none."""
        return self.provider is not None and bool(self.keyframes)

    def set_steering(self, steering) -> None:
        """`steering(luma, chroma, confidence, matrix) -> chroma` (stages/keyframes/steer.py): the network that
        colors a keyframe's frames from its carry, with keyframe_fill "hints"."""
        self.steering = steering

    def set_keyframes(
        self, keyframes: dict, lumas: dict | None = None, coverage: dict | None = None, fine=None
    ) -> None:
        """Colors a colorist gave for some frames (film frame -> `(1, 2, H, W)` chroma at any
        size) and the lumas of those images (`(1, 1, H, W)`): from each, the stage carries the color
        through its shot, and paints what the carry cannot reach with its palette (stages/keyframes/carry.py).
        `coverage`: frame -> `(1, 1, H, W)` in [0, 1], where a registered reference has picture
        (a print cropped otherwise: 0 at the edges); the carry starts from it instead of full trust.
        `fine`: frame -> `(1, 2, H, W)` chroma finer than the working size, which the carry samples for
        the output's chroma planes (`process`); without it, `keyframes`."""
        self.keyframes = dict(keyframes)
        self._fine = FineKeyframes(self.keyframes | dict(fine or {}), self.device)  # at the output's chroma size
        given = GivenKeyframes(self.keyframes, dict(lumas or {}), dict(coverage or {}), self.device)  # working sizes
        self._keyframe, self._coverage, self._palette = given.chroma, given.coverage, given.palette

    def set_backward(self, carries) -> None:
        """`carries.get(frame, device) -> carry.Carried | None`: the backward carries of the
        keyframes after the frames about to come (keyframes.backward.backward_carries), or None."""
        self.backward = carries

    # -- state ---------------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget the past: the next frame is output as the colorizer made it."""
        if hasattr(self, "shots"):
            self.shots.reset()
        self._luma: Tensor | None = None  # (1, 1, h, w) last input luma
        self._flow_luma: Tensor | None = None  # (1, 1, H', W') the same, where the carry's flow is estimated
        self._chroma: Tensor | None = None  # (1, 2, h, w) last output chroma
        self._key: int | None = None  # the keyframe carried forward to the last frame (stages/keyframes/carry.py)
        self._positions: Tensor | None = None  # (1, 3, h, w) where each color is on that keyframe (+ spread)
        self._trust: Tensor | None = None  # (1, 1, h, w) its confidence there
        self._age = 0  # frames since that keyframe
        self._key_luma: Tensor | None = None  # (1, 1, h, w) that keyframe frame's luma, blurred

    def state(self) -> dict:
        """The state needed to continue a film exactly (CPU tensors; empty after a reset)."""
        if self._luma is None:
            return {}
        state = {"luma": self._luma, "chroma": self._chroma}
        if self._flow_luma is not None:
            state["flow_luma"] = self._flow_luma
        if self._key is not None:
            state |= {
                "keyframe": torch.tensor([self._key]),
                "keyframe_positions": self._positions,
                "keyframe_trust": self._trust,
                "keyframe_age": torch.tensor([self._age]),
                "keyframe_luma": self._key_luma,
            }
        return {k: v.detach().cpu().clone() for k, v in state.items()}

    def load_state(self, state: dict) -> None:
        """Continue from `state()` of an earlier stage (same film, same working resolution)."""
        if not state:
            self.reset()
            return
        luma, chroma = state["luma"], state["chroma"]
        if luma.ndim != 4 or luma.shape[:2] != (1, 1) or chroma.shape != (1, 2, *luma.shape[-2:]):
            raise ValueError(
                f"temporal state expects luma (1, 1, h, w) and chroma (1, 2, h, w), "
                f"got {tuple(luma.shape)} and {tuple(chroma.shape)}"
            )
        self._luma = luma.to(self.device, torch.float32)
        self._flow_luma = state["flow_luma"].to(self.device, torch.float32) if "flow_luma" in state else None
        self._chroma = chroma.to(self.device, torch.float32)
        positions, trust = state.get("keyframe_positions"), state.get("keyframe_trust")
        self._key = int(state["keyframe"][0]) if "keyframe" in state else None
        self._positions = None if positions is None else positions.to(self.device, torch.float32)
        self._trust = None if trust is None else trust.to(self.device, torch.float32)
        self._key_luma = state["keyframe_luma"].to(self.device, torch.float32) if "keyframe_luma" in state else None
        self._age = int(state["keyframe_age"][0]) if "keyframe_age" in state else 0

    def describe(self) -> dict:
        """For reports: the provider actually used and the options."""
        return {"provider": self.provider_name, **asdict(self.config), "cuts": self.cuts}

    @property
    def warmup_frames(self) -> int:
        return self.config.warmup_frames if self.provider is not None else 0

    # -- processing ----------------------------------------------------------------------------

    def process(self, work) -> None:
        """The chain's stage protocol (stages/chain.py): smooth `work.chroma` along the motion of the
        input luma, taken at the chroma's working resolution."""
        if self.provider is not None and len(work):
            frames = range(work.frame, work.frame + len(work)) if work.frame is not None else None
            luma = work.luma_at(work.chroma.shape[-2:])
            # With keyframes, the carry samples them at the output's chroma size (`fine_hint`).
            size = tuple(work.batch.chroma_size) if self.keyframes else None
            fine = self.carry_flow_size(work.luma.shape[-2:], luma.shape[-2:])
            fine = None if fine is None else work.luma_at(fine)  # (N, 1, H', W') the carry's flow's luma
            work.chroma = self(
                luma, work.chroma, frames, work.cuts, work.flow, work.batch.source.matrix, size, fine
            )  # (N, 2, h, w), or (N, 2, Hc, Wc) with keyframes

    def carry_flow_size(self, full, working) -> tuple[int, int] | None:
        """Where flow is estimated for frames of `full` size colored at `working` size: finer
        than the working size only for a keyframe's carry (`carry_flow_short_side`)."""
        return carry_flow_size(full, working, self.config.carry_flow_short_side) if self.keyframes else None

    def confidence(
        self, current: Tensor, previous: Tensor, given: tuple[Tensor, Tensor] | None = None
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """`(backward flow, confidence, matched, lost)` for the pairs `current, previous (P, 1, h, w)`
        with this stage's flow provider and options (motion.pair_trust says what each is)."""
        return pair_trust(self.provider, self.config, current, previous, given)

    @torch.inference_mode()
    def __call__(
        self, luma, chroma, frames=None, cuts=None, flow=None, matrix="bt601", out_size=None, flow_luma=None
    ) -> Tensor:
        """`luma (N, 1, h, w)`, its `chroma (N, 2, h, w)`; `frames`: the film frame number of each frame,
        where keyframes (`set_keyframes`) apply; `cuts (N,)`: frame i starts a shot (the chain's shot
        detector), else this stage's own; `flow`: `(backward, forward)`, each `(N, 2, h', w')`: flow
        from frame i to i-1 and from i-1 to i, already computed (the restoration front), instead of
        this stage's provider; `matrix`: the film's color matrix, for the steering network
        (keyframe_fill "hints"); `out_size`: the size of the chroma returned (the output's chroma
        planes): a keyframe's carry is sampled there, the rest upsampled; None: the working size;
        `flow_luma (N, 1, H', W')`: the luma to estimate this stage's own flow on, where finer
        than `luma` (`carry_flow_size`)."""
        if luma.ndim != 4 or luma.shape[1] != 1 or chroma.shape != (luma.shape[0], 2, *luma.shape[-2:]):
            raise ValueError(
                f"temporal stage expects luma (N, 1, h, w) and chroma (N, 2, h, w) of the same N, h, w, "
                f"got {tuple(luma.shape)} and {tuple(chroma.shape)}"
            )
        on_demand = isinstance(chroma, ChromaOnDemand)  # the network runs only where its colors show
        if self.provider is None or luma.shape[0] == 0:
            return luma.new_zeros(chroma.shape) if on_demand else chroma.to(self.device, torch.float32)  # N is 0
        if not on_demand:
            chroma = chroma.to(self.device, torch.float32)  # (N, 2, h, w)
        luma = luma.to(self.device, torch.float32)  # (N, 1, h, w)
        if self._luma is not None and self._luma.shape[-2:] != luma.shape[-2:]:
            raise ValueError(
                f"temporal stage got frames of {tuple(luma.shape[-2:])} after frames of "
                f"{tuple(self._luma.shape[-2:])}; call reset() between films"
            )
        # Pairs (frame i, frame i-1) for every frame that has a predecessor; flow for all of them
        # at once (batched on the GPU, threaded on the CPU), then the cheap recursive blend.
        previous = luma[:-1] if self._luma is None else torch.cat([self._luma, luma[:-1]])  # (P, 1, h, w)
        current = luma[-len(previous) :] if len(previous) else luma[:0]  # (P, 1, h, w)
        first = len(luma) - len(previous)  # 1 when there is no past, else 0
        starts = self.shots(luma) if cuts is None else cuts  # (N,) frame i starts a shot
        if len(previous):
            given = (
                None if flow is None else tuple(f[len(luma) - len(previous) :] for f in flow)
            )  # the pairs' (P, 2, h', w')
            if given is None and frames is not None and hasattr(self.backward, "pair_flows"):
                # The keyframes' backward carry computed these pairs' flows already (both ways).
                given = self.backward.pair_flows(list(frames)[first:], self.device)
            if given is None and flow_luma is not None and (self._luma is None) == (self._flow_luma is None):
                fine = flow_luma.to(self.device, torch.float32)  # (N, 1, H', W')
                previous_fine = fine[:-1] if self._flow_luma is None else torch.cat([self._flow_luma, fine[:-1]])
                small = flow_size(*luma.shape[-2:], self.config.flow_short_side)
                given = pooled_flows(self.provider, fine[-len(previous) :], previous_fine, small)
            backward, confidence, matched, lost = self.confidence(current, previous, given)
            held = explained(matched, self.config.cut_explained)  # (P,) the detector's cut overruled
            cut = (lost | (starts[first:].to(lost.device) & ~held)).tolist()  # CPU-GPU sync point: one per batch
        carried, key, positions, trust, age, key_luma = (
            self._chroma,
            self._key,
            self._positions,
            self._trust,
            self._age,
            self._key_luma,
        )
        cfg = self.config
        size = tuple(luma.shape[-2:])
        outputs = []
        for i in range(len(luma)):
            j = i - first  # index of the pair (i, i-1)
            fresh_start = j < 0 or carried is None or cut[j]
            if fresh_start:
                self.cuts += int(j >= 0 and cut[j])
                key = positions = trust = None  # a keyframe governs its own shot only
            else:
                moved, _ = warp(carried, backward[j : j + 1])  # (1, 2, h, w)
                follows = cfg.strength * confidence[j : j + 1]  # (1, 1, h, w)
            frame = None if frames is None else frames[i]
            if self._keyframe(frame, size) is not None:  # the colorist's color, trusted fully on its own frame
                positions, trust = carry.identity_positions(size, self.device), self._coverage(frame, size)
                key, age = frame, 0
                key_luma = blur(luma[i : i + 1])  # (1, 1, h, w) the keyframe frame's own, for `anchored`, `reacquired`
            elif key is not None and not fresh_start:  # carried along the motion (stages/keyframes/carry.py)
                positions, trust = carry.follow(positions, trust, backward[j : j + 1], matched[j : j + 1], cfg)
                positions, trust = carry.reacquired(
                    positions, trust, luma[i : i + 1], key_luma, self._coverage(key, size), cfg.residual_tolerance
                )
                age += 1
                if age >= cfg.keyframe_reach:
                    key = positions = trust = None
            ahead = self.backward.get(frame, self.device) if self.backward is not None else None
            weight = carry.taper(age, cfg.keyframe_reach)
            behind = None
            if key is not None:
                held = carry.anchored(
                    trust, luma[i : i + 1], key_luma, positions, cfg.residual_tolerance
                )  # (1, 1, h, w)
                behind = carry.Carried(
                    carry.sample(self._keyframe(key, size), positions), held * weight, age, key, weight, positions
                )
            here = luma[i : i + 1]  # (1, 1, h, w)
            given = carry.hint(
                behind,
                ahead,
                lambda k, y=here: carry.paint(self._palette(k, size), y),
                here if cfg.keyframe_fill == "local" else None,
            )
            if given is not None and cfg.keyframe_fill in ("network", "hints"):
                given.weight = 0.0  # the network's colors wherever the carry is not confident
            if given is not None and cfg.keyframe_fill == "hints" and self.steering is not None:
                # The network colors the frame again, steered by the carry: its colors replace
                # the unsteered ones in the same blend along the motion.
                colors = self.steering(here, given.chroma, given.confidence, matrix)  # (1, 2, h, w)
            elif on_demand and not carry.needs_colors(given):
                colors = luma.new_zeros((1, 2, *size))  # weighs nothing in this frame's output: not made
            else:
                colors = chroma[i : i + 1].to(self.device, torch.float32)  # (1, 2, h, w) the network's
            out = colors if fresh_start else follows * moved + (1 - follows) * colors  # (1, 2, h, w)
            if out_size is not None:  # the carry sampled at the output's chroma size, the rest upsampled
                fine = fine_hint(behind, ahead, self._fine, out_size)  # (1, 2, Hc, Wc) or None
                outputs.append(
                    carry.apply_hint(out, given, fine) if fine is not None else carry.upsampled(out, out_size)
                )
            out = carry.apply_hint(out, given)  # (1, 2, h, w)
            if out_size is None:
                outputs.append(out)
            carried = out
        self._luma, self._flow_luma = luma[-1:].clone(), None if flow_luma is None else flow_luma[-1:].clone()
        self._chroma = carried.clone()
        self._key, self._positions, self._trust, self._age, self._key_luma = key, positions, trust, age, key_luma
        return torch.cat(outputs)  # (N, 2, h, w)
