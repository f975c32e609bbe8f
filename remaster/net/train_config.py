"""What a training run is: the recipe, the data's crops, the schedule, validation and export, as one
frozen dataclass. Checkpoints carry it, so a resumed run rebuilds the same net and schedule, and
`remaster train`'s flags are generated from its fields."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from remaster.errors import ConfigError
from remaster.net.network import NetConfig


@dataclass(frozen=True)
class TrainConfig:
    recipe: str = field(
        default="bins",
        metadata={
            "help": "bins: classification over quantized CIELAB a,b with class rebalancing (Zhang et al. 2016); "
            "ab: rebalanced regression of a,b.",
            "choices": ("bins", "ab"),
        },
    )
    net: NetConfig = field(default_factory=NetConfig)
    steps: int = field(
        default=2000,
        metadata={
            "help": "Optimizer steps (batches) to train for. The learning rate warms up over the first 100 steps, "
            "then follows a cosine down to zero."
        },
    )
    minutes: float | None = field(  # the schedule runs on whichever ends first
        default=None,
        metadata={
            "help": "Time budget in minutes (a resumed run counts the time before the stop): training ends at "
            "--steps or the budget, whichever comes first, and the learning-rate schedule follows whichever is "
            "further along. Default: no budget."
        },
    )
    batch_size: int = field(
        default=32,
        metadata={"help": "Crops per optimizer step; larger uses more memory and is faster per image on a GPU."},
    )
    crop: int = field(  # crops of 176 px at cache size 256 keep scene context and allow scale jitter
        default=176,
        metadata={
            "help": "Side of the square training crops in pixels: a multiple of 16, at most --cache-size (photos "
            "are cached as squares of that side; each crop covers 0.75-1.5x its side there, with random flips)."
        },
    )
    cache_size: int = field(  # photos are cached as 256 x 256 squares (short side resized, centre crop)
        default=256,
        metadata={
            "help": "Photos are cached as squares of this side (short side resized, centre crop). Use the size of "
            "your smallest photos or less (e.g. 192 for 200-300 px sets): small photos are never worth upscaling."
        },
    )
    scale_range: tuple[float, float] = (0.75, 1.5)  # crop covers crop*s cache pixels
    lr: float = field(default=2e-3, metadata={"help": "Peak learning rate of the AdamW optimizer (weight decay 1e-4)."})
    weight_decay: float = 1e-4
    warmup_steps: int = 100
    rebalance: float = field(
        default=0.5,
        metadata={
            "help": "Class rebalancing, the λ of Zhang et al. 2016, 0..1: 1 = every pixel weighs the same (no "
            "rebalancing); smaller = rare, saturated colors weigh more (0 = in inverse proportion to how often "
            "they occur)."
        },
    )
    soft_neighbours: int = 5  # soft-encoding: nearest bins per pixel (Zhang et al. use 5)
    soft_sigma: float = 5.0  # and the Gaussian width in (a, b) units
    temperature: float = 0.38  # annealed mean used at validation and stored with the model
    # Uncertainty-aware decoding (InferenceConfig.doubt) used at validation, by `decoded_loss`
    # and stored with the model. 0 = the plain annealed mean.
    doubt: float = field(
        default=0.0,
        metadata={
            "help": "Uncertainty-aware decoding (CIELAB units; 0 = off) used at validation and by --decoded-loss, "
            "and stored with the model: where the net's color distribution is wider than this, chroma fades "
            "toward gray."
        },
    )
    # Weight of a second loss on the colors as decoded (either head): each crop's squared (a, b)
    # error relative to a gray crop's, i.e. its MSE ratio against gray, the quantity PSNR gain
    # is the log of. Classification alone keeps sharpening its distributions as it trains, and
    # the decoded colors grow bolder and worse (benchmarks/RESULTS.md, issue 10); this term
    # trains what the user sees, and counts a tint on a gray scene as much as it costs in dB.
    # Measured once (a 33-minute CPU continuation of v2): it slowed that drift, did not stop it.
    decoded_loss: float = field(
        default=0.0,
        metadata={
            "help": "Weight of a second loss on the colors as decoded: each crop's color error relative to a gray "
            "crop's, what PSNR gain measures, at --doubt. 1 is comparable to the classification loss. (On a "
            "33-minute CPU continuation it did not stop the colors growing bolder after the first 1,200 steps: "
            "benchmarks/RESULTS.md.)"
        },
    )
    # What kinds of hints a hint-conditioned net (`net.hints`) trains on, as probabilities per crop:
    # none, random points, a colorist's clicks (where the net's own colors are wrong); the rest get
    # a dense carried chroma (net/hints.simulate_hints).
    hint_kinds: tuple[float, float, float] = field(
        default=(0.5, 0.25, 0.0),
        metadata={
            "help": "With --hints: the share of crops trained with no hints, with random points, and with a "
            "colorist's clicks (1-8 patches where the net's unhinted colors are furthest from the truth); "
            "the rest get a dense carried chroma.",
            "expect": "three shares",
            "example": "0.3,0.15,0.4",
        },
    )
    # Weight of a loss on what hints change: for each hinted crop, the log of its decoded color
    # error with the hints over the same net's error without them (no gradient through the
    # latter), plus twice that where it is positive. Its mean is minus the mean PSNR gain the hints
    # bring (in units of ln 10 / 10 dB); the extra weight on positive values is the harm a click
    # does beyond its object, which a colorist sees first (issue 21).
    hint_gain_loss: float = field(
        default=0.0,
        metadata={
            "help": "With --hints: weight of a loss on the colors decoded with and without the crop's hints: the "
            "hinted error's log-ratio to the unhinted one, thrice where the hints make it worse. Teaches a click "
            "to change its object, not its neighbours. 0 = off."
        },
    )
    checkpoint_every: int = field(
        default=500,
        metadata={
            "help": "Steps between checkpoints (what --resume continues from) and exports of the model so far; "
            "both are also written at the end."
        },
    )
    val_every: int = field(
        default=0,
        metadata={
            "help": "Steps between validations on --val; 0 = once per epoch (number of photos / batch size "
            "steps). The final model is always validated."
        },
    )
    val_long_side: int = 512
    val_limit: int = field(
        default=0,
        metadata={"help": "Validate on the first N photos of --val (sorted by path) only; 0 = all of them."},
    )
    seed: int = field(
        default=0,
        metadata={
            "help": "Seeds the network's initialisation and the crop sampler: on the CPU the same seed, photos "
            "and options give the same model."
        },
    )
    workers: int = field(
        default=0,
        metadata={
            "help": "Threads decoding the photos into the in-memory cache at the start; 0 = one per CPU core, "
            "at most 8."
        },
    )
    device: str = field(
        default="auto",
        metadata={
            "help": "Where to train: auto = CUDA when torch sees a GPU (bfloat16 mixed precision there), else the CPU.",
            "choices": ("auto", "cpu", "cuda"),
        },
    )
    # Start from these trained weights instead of random ones (their bin table, widths and
    # head are kept). With `net.hints`, a lightness-only model gains zero-initialised hint
    # inputs (nets.add_hint_inputs), so training begins from exactly its colors.
    init: str = field(
        default="",
        metadata={
            "help": "Start from this trained model (.safetensors) instead of random weights; its widths, blocks and "
            "color bins are kept. With --hints, a model without hint inputs gains them, zero-initialised, so "
            "training starts from its colors.",
            "metavar": "PATH",
        },
    )

    def __post_init__(self) -> None:
        if self.recipe not in ("bins", "ab"):
            raise ConfigError(f"unknown recipe {self.recipe!r}: expected 'bins' or 'ab'")
        if self.crop % 16 or self.crop > self.cache_size:
            raise ConfigError(
                f"crop must be a multiple of 16 and at most cache_size {self.cache_size}, got {self.crop}"
            )
        if len(self.hint_kinds) != 3 or min(self.hint_kinds) < 0 or sum(self.hint_kinds) > 1 + 1e-9:
            raise ConfigError(f"hint_kinds are three shares that add up to at most 1, got {self.hint_kinds}")
        if self.hint_gain_loss < 0:
            raise ConfigError(f"hint_gain_loss must be 0 or more, got {self.hint_gain_loss}")
        if self.doubt < 0 or self.decoded_loss < 0:
            raise ConfigError(f"doubt and decoded_loss must be 0 or more, got {self.doubt} and {self.decoded_loss}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        values = dict(values)
        values["net"] = NetConfig.from_dict(values["net"])
        values["scale_range"] = tuple(values["scale_range"])
        if "hint_kinds" in values:  # checkpoints from before issue 21 lack it
            values["hint_kinds"] = tuple(values["hint_kinds"])
        return cls(**values)
