"""The options of a video run, in sections that match the preset files' sections.

    [colorize]  ColorizeConfig   the network: model, device, working resolution, batch
    [temporal]  TemporalConfig   the temporal stage (defined beside it, remaster/temporal.py)
    [restore]   RestoreConfig    opt-in luma restoration (remaster/restore.py)
    [encode]    EncodeConfig     the video encoder
    [pipeline]  PipelineConfig   how the run streams: queue depth, segments, previews

Each option has one name everywhere: the field `temporal.strength` is the key `strength` of a
preset's `[temporal]` table and the flag `--temporal-strength` (a flag is `--KEY`, or the
`flag` its field's metadata names where the key alone would be vague). Fields with a `help` in
their metadata are command-line flags; the CLI builds them from `flag_fields()`, with the
dataclass defaults shown in `--help`. Choice lists (codecs, flows) live with the code that
implements them (`encoding.CODECS`, `flow.FLOW_NAMES`) and are only referenced here.

Presets in `pipelines/*.toml` are plain data: `load_preset` maps their tables onto these
sections, and an unknown table or key is an error, not a silently ignored line.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import tomllib

from remaster.errors import ConfigError
from remaster.media.audio import AUDIO_MODES
from remaster.media.encoding import CODECS, X26X_PRESETS, container_holds
from remaster.media.hwaccel import DECODERS
from remaster.stages.restoration.stage import RestoreConfig
from remaster.stages.temporal import TemporalConfig

# What a user reads about `doubt` wherever it can be set (remaster image, colorize, eval images).
DOUBT_HELP = (
    "How far colors fade toward gray where the network is unsure, in CIELAB units: lower is "
    "safer and more muted, higher bolder, 0 no fading at all. Default: the model's own "
    "(20 for the shipped model; models/MODEL_CARD.md shows what each setting gives)."
)


@dataclass(frozen=True)
class ColorizeConfig:
    model: str | None = field(default=None, metadata={"help": "A .safetensors model (default: the shipped model)."})
    device: str = field(
        default="auto", metadata={"help": "Where the networks run.", "choices": ("auto", "cpu", "cuda")}
    )
    # None = the model's own (256): chroma is smooth, so a 256 px short side costs little quality
    # and makes 4K as cheap as 720p for the network.
    working_short_side: int | None = None
    doubt: float | None = field(default=None, metadata={"help": DOUBT_HELP})
    # 8 frames: enough to keep a GPU busy at 1080p (the net runs at ~256 px) while a batch of
    # 4K luma codes stays under 70 MB per queue slot.
    batch_size: int = field(default=8, metadata={"help": "Frames per batch through the networks."})
    # None = torch's default (one per core). On a busy 2-core machine 1 is several times faster:
    # OpenMP threads wait for descheduled partners at every barrier (benchmarks/RESULTS.md).
    cpu_threads: int | None = field(
        default=None,
        metadata={
            "help": (
                "Torch threads when the networks run on the CPU (1 is fastest on a busy machine; "
                "default: one per core)."
            )
        },
    )

    def __post_init__(self) -> None:
        if self.device != "auto" and self.device != "cpu" and not str(self.device).startswith("cuda"):
            raise ConfigError(f"device must be auto, cpu or cuda[:N], got {self.device!r}")
        _positive(self, "batch_size")
        if self.cpu_threads is not None:
            _positive(self, "cpu_threads")
        if self.doubt is not None and not self.doubt >= 0:
            raise ConfigError(f"doubt must be 0 (no fading) or more, got {self.doubt}")
        if self.working_short_side is not None and self.working_short_side < 32:
            raise ConfigError(f"working_short_side must be >= 32, got {self.working_short_side}")


@dataclass(frozen=True)
class EncodeConfig:
    codec: str = field(default="libx264", metadata={"help": "Video encoder.", "choices": CODECS})
    # x264's CRF 18 is the usual "visually lossless" point; luma PSNR against the input stays
    # above 40 dB on our test clips (tests/test_video_pipeline.py reports it).
    crf: int = field(default=18, metadata={"help": "Constant rate factor, 0 (lossless for x264/x265) .. 51."})
    # x264/x265 preset names; NVENC maps them onto p1..p7. Checked against the encoder when the
    # writer opens it (NVENC also takes p1..p7 directly).
    preset: str = field(
        default="medium",
        metadata={"help": f"Encoder speed preset ({', '.join(X26X_PRESETS[:3])} .. veryslow; NVENC p1..p7)."},
    )
    # Sound that the output container cannot hold is never dropped silently (audio.py).
    audio: str = field(
        default="lossless",
        metadata={
            "help": (
                "Sound tracks: lossless copies each one the container holds and stores any other as PCM; "
                "copy refuses those; drop leaves sound out."
            ),
            "choices": AUDIO_MODES,
        },
    )

    def __post_init__(self) -> None:
        if self.codec not in CODECS:
            raise ConfigError(f"codec must be one of {', '.join(CODECS)}, got {self.codec!r}")
        if not isinstance(self.crf, int) or not 0 <= self.crf <= 51:
            raise ConfigError(f"crf must be an integer in 0..51, got {self.crf!r}")
        if self.audio not in AUDIO_MODES:
            raise ConfigError(f"audio must be one of {', '.join(AUDIO_MODES)}, got {self.audio!r}")


@dataclass(frozen=True)
class PipelineConfig:
    # Batches waiting between threads, each way: 2 hides jitter; more only costs memory.
    queue_depth: int = 2
    # Every film is cut at keyframes into segments of at least this many frames (the run plan,
    # remaster/plan.py). Each segment after the first colorizes a short warm-up (25 frames at
    # strength 0.8) it does not write: at 500 frames that cost 9% at 640x480 against the
    # earlier one-pass code, so 1000 (40 s at 25 fps; a stop repeats at most that much work).
    # benchmarks/RESULTS.md, "Run plan".
    segment_frames: int = field(
        default=1000,
        metadata={"help": "Frames per segment of the run plan: the unit of --resume and of parallel work."},
    )
    max_frames: int | None = field(
        default=None, metadata={"help": "Stop after N frames (a preview; audio is cut to match)."}
    )
    # NVDEC decodes on the GPU's video engine and frees the CPU's cores for the encoder (issue 11);
    # codes are the same either way. Where it is not offered, the CPU decodes, with a note.
    decoder: str = field(
        default="cpu",
        metadata={
            "help": "Decode on the CPU, or with NVDEC on an NVIDIA GPU (falls back to the CPU with a note).",
            "choices": DECODERS,
        },
    )
    # Off: a damaged or cut-short film is recovered (every frame that decodes, with a note).
    strict: bool = field(
        default=False,
        metadata={
            "help": (
                "Refuse a file that cannot be read in full (cut short, damaged data) "
                "instead of recovering every frame that decodes."
            )
        },
    )

    def __post_init__(self) -> None:
        _positive(self, "queue_depth")
        _positive(self, "segment_frames")
        if self.max_frames is not None:
            _positive(self, "max_frames")
        if self.decoder not in DECODERS:
            raise ConfigError(f"decoder must be one of {', '.join(DECODERS)}, got {self.decoder!r}")


def _positive(config, name: str) -> None:
    value = getattr(config, name)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"{name} must be an integer >= 1, got {value!r}")


SECTIONS = {
    "colorize": ColorizeConfig,
    "temporal": TemporalConfig,
    "restore": RestoreConfig,
    "encode": EncodeConfig,
    "pipeline": PipelineConfig,
}


@dataclass(frozen=True)
class VideoConfig:
    """Every option of a video run. `with_options(temporal={"strength": 0.9})` makes a changed copy."""

    colorize: ColorizeConfig = field(default_factory=ColorizeConfig)
    temporal: TemporalConfig = field(default_factory=TemporalConfig)
    restore: RestoreConfig = field(default_factory=RestoreConfig)
    encode: EncodeConfig = field(default_factory=EncodeConfig)
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)

    def with_options(self, **sections: dict) -> VideoConfig:
        """A copy with `section={key: value}` applied; `None` values mean "keep" (unset flags)."""
        changed = {}
        for section, values in sections.items():
            if section not in SECTIONS:
                raise ConfigError(f"unknown section {section!r}: expected one of {', '.join(SECTIONS)}")
            current = getattr(self, section)
            known = {f.name for f in dataclasses.fields(current)}
            unknown = sorted(set(values) - known)
            if unknown:
                raise ConfigError(
                    f"unknown setting {section}.{unknown[0]}; expected one of "
                    f"{', '.join(f'{section}.{k}' for k in sorted(known))}"
                )
            try:
                changed[section] = dataclasses.replace(current, **{k: v for k, v in values.items() if v is not None})
            except TypeError as error:  # a value of the wrong type reaching __post_init__
                raise ConfigError(f"{section}: {error}") from None
        return dataclasses.replace(self, **changed)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def warnings(self, output: Path) -> list[str]:
        """Choices that work but that a user probably did not mean (shown before any work)."""
        lines = []
        container = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}.get(output.suffix.lower())
        if self.encode.codec in ("ffv1", "prores") and container == "mp4" and container_holds("mp4", self.encode.codec):
            # FFmpeg writes it, but most players and editors refuse FFV1/ProRes in MP4.
            lines.append(
                f"{output.name}: {self.encode.codec} in an .mp4 file plays in few players; "
                ".mkv (ffv1) or .mov (prores) is the usual home"
            )
        return lines


def flag_fields(sections: dict | None = None) -> list[tuple[str, dataclasses.Field, str]]:
    """(section, field, flag) for every option the command line sets: of a video run's sections, or
    of other `{section: dataclass}` (training's, the bench's)."""
    rows = []
    for section, cls in (SECTIONS if sections is None else sections).items():
        for f in dataclasses.fields(cls):
            if "help" in f.metadata:
                rows.append((section, f, f.metadata.get("flag", "--" + f.name.replace("_", "-"))))
    return rows


# --- presets ----------------------------------------------------------------------------------


def preset_dirs() -> list[Path]:
    """Where `--pipeline NAME` looks: the repository's pipelines/, then the installed copy."""
    return [Path(__file__).resolve().parents[2] / "pipelines", Path(sys.prefix) / "share" / "remaster" / "pipelines"]


def available_presets() -> list[str]:
    """The preset names `--pipeline` takes: the .toml files in `preset_dirs()` (what `--help` lists)."""
    return sorted({p.stem for d in preset_dirs() if d.is_dir() for p in d.glob("*.toml")})


def preset_path(name: str) -> Path | None:
    """The file `--pipeline NAME` reads: the first of `preset_dirs()` that has it; None if none does."""
    return next((d / f"{name}.toml" for d in preset_dirs() if (d / f"{name}.toml").is_file()), None)


def load_preset(name_or_path: str | os.PathLike) -> dict[str, dict]:
    """`{section: {key: value}}` from a preset NAME (in `preset_dirs()`) or a .toml PATH."""
    text = str(name_or_path)
    path = Path(text)
    if not (path.suffix == ".toml" or os.sep in text or path.exists()):
        path = preset_path(text) or path
        if not path.is_file():
            raise ConfigError(
                f"unknown pipeline {text!r}: expected one of {', '.join(available_presets())} or a .toml file"
            )
    if not path.is_file():
        raise ConfigError(f"{path}: pipeline file not found")
    try:
        data = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: not valid TOML ({error})") from None
    sections: dict[str, dict] = {}
    for section, table in data.items():
        if section == "description" and isinstance(table, str):
            continue
        if section not in SECTIONS or not isinstance(table, dict):
            raise ConfigError(
                f"{path}: unknown section [{section}]; expected one of {', '.join(f'[{s}]' for s in SECTIONS)}"
            )
        known = {f.name for f in dataclasses.fields(SECTIONS[section])}
        for key in table:
            if key not in known:
                raise ConfigError(
                    f"{path}: unknown setting {section}.{key}; expected one of "
                    f"{', '.join(f'{section}.{k}' for k in sorted(known))}"
                )
        # "" in a preset means "the default" (TOML has no null): the shipped model, say.
        sections[section] = {
            k: (SECTIONS[section].__dataclass_fields__[k].default if v == "" else v) for k, v in table.items()
        }
    return sections


def make_config(pipeline: str | os.PathLike | None = None, /, **options) -> VideoConfig:
    """Defaults, then the preset `pipeline` (a name or a .toml file), then the overrides that are not None
    (command-line flags).

    Overrides are sections, `temporal={"strength": 0.9}`, or keys of any section by their own
    name, `codec="ffv1", flow="none"` (each key lives in one section).
    """
    config = VideoConfig()
    if pipeline:
        try:
            config = config.with_options(**load_preset(pipeline))
        except ConfigError as error:
            raise ConfigError(f"{pipeline}: {error}") from None
    sections: dict[str, dict] = {}
    for key, value in options.items():
        if key in SECTIONS:
            sections.setdefault(key, {}).update(value)
            continue
        owner = _SECTION_OF.get(key)
        if owner is None:
            raise ConfigError(
                f"unknown option {key!r}; expected a section ({', '.join(SECTIONS)}) or one of "
                f"{', '.join(sorted(_SECTION_OF))}"
            )
        sections.setdefault(owner, {})[key] = value
    return config.with_options(**sections)


_SECTION_OF = {f.name: section for section, cls in SECTIONS.items() for f in dataclasses.fields(cls)}
assert len(_SECTION_OF) == sum(len(dataclasses.fields(c)) for c in SECTIONS.values()), (
    "option names must be unique across sections"
)
