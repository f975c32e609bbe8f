"""`colorize_video`: one streaming pass from a black-and-white film to a colorized one.

    decode thread ──► FrameBatch ──► colorize ──► temporal ──► assemble ──► encode thread
    (VideoReader)     (luma codes)   (Colorizer)  (TemporalStage)  (frames)     (VideoWriter)

The decode and encode threads come from `prefetch` / `Sink` (the one thread primitive); the main
thread runs the networks. Queues are bounded (`queue_depth` batches each way), so memory depends
on `batch_size` and `queue_depth`, never on the film's length (DESIGN promise 4).

Presets in `pipelines/*.toml` are plain data mapped onto `VideoConfig`; see `load_preset`.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

import av
import torch
import torch.nn.functional as F

from .errors import ConfigError
from .frames import assemble_chroma
from .encoding import CODECS, choose_layout
from .reader import VideoReader, size_notice
from .writer import VideoWriter, check_destination
from .lock import DestinationLock
from .prefetch import Sink, prefetch

FLOWS = ("auto", "raft", "raft-small", "dis", "none")


@dataclass(frozen=True)
class VideoConfig:
    model: str | None = None  # .safetensors path; None = the shipped default model
    device: str = "auto"  # auto | cpu | cuda[:N]
    flow: str = "auto"  # auto | raft | raft-small | dis | none (none: per-frame colors, no temporal stage)
    flow_weights: str | None = None  # RAFT weights file; None = torchvision's cache/download, "random" for plumbing
    # Weight of the motion-carried previous colors where the flow is trusted (memory ~ 1/(1-s) frames).
    temporal_strength: float = 0.8
    codec: str = "libx264"
    # x264's CRF 18 is the usual "visually lossless" point; luma PSNR against the input stays
    # above 40 dB on our test clips (tests/test_video_pipeline.py reports it).
    crf: int = 18
    preset: str = "medium"  # x264/x265 preset (NVENC maps it onto p1..p7)
    # 8 frames: enough to keep a GPU busy at 1080p (the net runs at ~256 px) while a batch of
    # 4K luma codes stays under 70 MB per queue slot.
    batch_size: int = 8
    # Batches waiting between threads, each way: 2 hides jitter; more only costs memory.
    queue_depth: int = 2
    working_short_side: int | None = None  # the net's short side; None = the model's own (256)
    dis_preset: str = "medium"  # DIS flow speed/quality: ultrafast | fast | medium
    # torch threads for the networks on a CPU; None = torch's default (one per core). On a busy
    # 2-core machine 1 is several times faster: OpenMP threads wait for descheduled partners at
    # every barrier (benchmarks/RESULTS.md, "Video").
    cpu_threads: int | None = None
    max_frames: int | None = None  # stop after this many frames (previews, tests); audio is cut to match
    # Films longer than two segments are written in segments of about this many frames, with
    # durable progress that `--resume` continues (segments.py). 500 frames (20 s at 25 fps): a
    # stop costs at most that much repeated work; shorter segments cost speed (benchmarks/RESULTS.md,
    # "Resume"). None: never segment unless resuming.
    segment_frames: int | None = 500
    force: bool = False  # overwrite an existing output

    def __post_init__(self) -> None:
        if self.codec not in CODECS:
            raise ConfigError(f"codec must be one of {', '.join(CODECS)}, got {self.codec!r}")
        if self.flow not in FLOWS:
            raise ConfigError(f"flow must be one of {', '.join(FLOWS)}, got {self.flow!r}")
        if not isinstance(self.crf, int) or not 0 <= self.crf <= 51:
            raise ConfigError(f"crf must be an integer in 0..51, got {self.crf!r}")
        if not 0.0 <= self.temporal_strength < 1.0:
            raise ConfigError(f"temporal strength must be in [0, 1), got {self.temporal_strength}")
        for name in ("batch_size", "queue_depth"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ConfigError(f"{name} must be an integer >= 1, got {getattr(self, name)!r}")
        if self.cpu_threads is not None and self.cpu_threads < 1:
            raise ConfigError(f"cpu_threads must be >= 1, got {self.cpu_threads}")
        if self.segment_frames is not None and (not isinstance(self.segment_frames, int) or self.segment_frames < 1):
            raise ConfigError(f"segment_frames must be an integer >= 1, got {self.segment_frames!r}")
        if self.max_frames is not None and self.max_frames < 1:
            raise ConfigError(f"max_frames must be >= 1, got {self.max_frames}")
        if self.working_short_side is not None and self.working_short_side < 32:
            raise ConfigError(f"working_short_side must be >= 32, got {self.working_short_side}")

    def replace(self, **changes) -> VideoConfig:
        """A copy with `changes` applied; `None` values mean "keep" (unset command-line flags)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


# --- presets ----------------------------------------------------------------------------------

# Preset tables and keys -> VideoConfig fields. Sections keep the files readable; the mapping is
# explicit so a typo in a preset is an error, not a silently ignored line.
_PRESET_KEYS = {
    ("colorize", "model"): "model",
    ("colorize", "device"): "device",
    ("colorize", "working_short_side"): "working_short_side",
    ("colorize", "batch_size"): "batch_size",
    ("colorize", "cpu_threads"): "cpu_threads",
    ("temporal", "flow"): "flow",
    ("temporal", "flow_weights"): "flow_weights",
    ("temporal", "strength"): "temporal_strength",
    ("temporal", "dis_preset"): "dis_preset",
    ("encode", "codec"): "codec",
    ("encode", "crf"): "crf",
    ("encode", "preset"): "preset",
    ("pipeline", "queue_depth"): "queue_depth",
}


def preset_dirs() -> list[Path]:
    """Where `--pipeline NAME` looks: the repository's pipelines/, then the installed copy."""
    return [Path(__file__).resolve().parents[1] / "pipelines", Path(sys.prefix) / "share" / "remaster" / "pipelines"]


def available_presets() -> list[str]:
    return sorted({p.stem for d in preset_dirs() if d.is_dir() for p in d.glob("*.toml")})


def load_preset(name_or_path: str | os.PathLike) -> dict:
    """VideoConfig fields from a preset NAME (in `preset_dirs()`) or a .toml PATH."""
    text = str(name_or_path)
    path = Path(text)
    if not (path.suffix == ".toml" or os.sep in text or path.exists()):
        path = next((d / f"{text}.toml" for d in preset_dirs() if (d / f"{text}.toml").is_file()), path)
        if not path.is_file():
            raise ConfigError(f"unknown pipeline {text!r}: expected one of {', '.join(available_presets())} or a .toml file")
    if not path.is_file():
        raise ConfigError(f"{path}: pipeline file not found")
    try:
        data = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: not valid TOML ({error})") from None
    fields: dict = {}
    for section, table in data.items():
        if section == "description" and isinstance(table, str):
            continue
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: expected a [section] table, got {section} = {table!r}")
        for key, value in table.items():
            if (section, key) not in _PRESET_KEYS:
                known = ", ".join(f"{s}.{k}" for s, k in _PRESET_KEYS)
                raise ConfigError(f"{path}: unknown setting {section}.{key}; expected one of {known}")
            fields[_PRESET_KEYS[(section, key)]] = None if value == "" else value
    return fields


def make_config(pipeline: str | os.PathLike | None = None, **overrides) -> VideoConfig:
    """Defaults, then the preset, then the overrides that are not None (command-line flags)."""
    base = VideoConfig()
    if pipeline:
        try:
            base = dataclasses.replace(base, **load_preset(pipeline))
        except TypeError as error:  # a value of the wrong type reaching __post_init__
            raise ConfigError(f"{pipeline}: {error}") from None
    return base.replace(**overrides)


# --- the pass ---------------------------------------------------------------------------------


class _Timer:
    """Per-stage seconds; CUDA work is asynchronous, so a stage is timed up to a synchronize."""

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"
        self.seconds: dict[str, float] = {}

    def stage(self, name: str, started: float) -> float:
        if self.cuda:
            torch.cuda.synchronize()  # sync point: only for honest per-stage timings
        now = time.perf_counter()
        self.seconds[name] = self.seconds.get(name, 0.0) + now - started
        return now


def _make_temporal(config: VideoConfig, device: torch.device):
    from .temporal import TemporalConfig, TemporalStage

    return TemporalStage(
        TemporalConfig(
            flow=config.flow, strength=config.temporal_strength, flow_weights=config.flow_weights, dis_preset=config.dis_preset
        ),
        device=device,
    )


def colorize_video(input, output, config: VideoConfig | None = None, *, progress: bool = True, colorizer=None,
                   resume: bool = False) -> dict:  # fmt: skip
    """Colorize the video `input` into `output`, keeping its luma, sound and timing; return a report.

    The report has frames, seconds, fps end to end and per stage, model, device, flow provider,
    encoder and the format decisions taken. Raises `InputError` for a bad input and `OutputError`
    for an output that cannot or must not be written; the destination is then untouched.
    """
    config = config or VideoConfig()
    input, output = Path(input), Path(output)
    started = time.perf_counter()
    check_destination(input, output, config.force)
    reader = VideoReader(input, max_frames=config.max_frames)
    if resume or (config.segment_frames and (reader.expected_frames or 0) > 2 * config.segment_frames):
        reader.close()  # long film: in segments with durable progress (issue 4)
        from .segments import colorize_segmented

        return colorize_segmented(input, output, config, progress=progress, colorizer=colorizer, resume=resume)
    writer = None
    threads = torch.get_num_threads()
    lock = DestinationLock(output)  # one writer per output: a second run refuses
    try:
        lock.acquire()
        from .segments import remove_stale_partials

        remove_stale_partials(output)  # of runs killed before they could clean up (we hold the lock)
        if colorizer is None:
            from .model import Colorizer

            colorizer = Colorizer.load(config.model, device=config.device, working_short_side=config.working_short_side)
        device = colorizer.device
        if device.type == "cpu" and config.cpu_threads:
            torch.set_num_threads(config.cpu_threads)  # restored below: a library must not keep it
        temporal = _make_temporal(config, device)
        if config.flow == "auto" and progress:  # DESIGN: auto says which provider it picked
            print(f"remaster: flow provider: {temporal.provider_name}", file=sys.stderr)
        layout = choose_layout(reader.source, config.codec)
        dropped = stream_notices(reader, layout)
        writer = VideoWriter(output, reader, layout, codec=config.codec, crf=config.crf, preset=config.preset)
        timer = _Timer(device)
        decode_times: dict = {}
        bar = _progress_bar(reader, output, progress)
        frames = 0
        batches = prefetch(
            lambda: reader.batches(config.batch_size, layout.chroma_size, decode_times), depth=config.queue_depth, name="decode"
        )
        sink = Sink(lambda item: writer.write(*item), finish=writer.finish, depth=config.queue_depth, name="encode")
        try:
            with batches, sink:
                for batch in batches:
                    if not len(batch):  # only packets of other streams (sound after the last frame)
                        sink.put((batch, None))
                        continue
                    t = time.perf_counter()
                    luma = batch.luma(device)  # (N, 1, H, W) float on the device
                    chroma = colorizer.chroma(luma, matrix=batch.source.matrix)  # (N, 2, h, w)
                    t = timer.stage("colorize", t)
                    if temporal.provider is not None:
                        small = F.interpolate(luma, size=chroma.shape[-2:], mode="bilinear", antialias=True, align_corners=False)  # (N, 1, h, w)
                        chroma = temporal(small, chroma)  # (N, 2, h, w)
                    t = timer.stage("temporal", t)
                    codes = assemble_chroma(luma, chroma, layout)  # (N, 2, Hc, Wc) int16 on the CPU
                    timer.stage("assemble", t)
                    sink.put((batch, codes))
                    frames += len(batch)
                    if bar is not None:
                        bar.update(len(batch))
        finally:
            if bar is not None:
                bar.close()
        writer.commit(config.force)
    except BaseException:
        if writer is not None:
            writer.discard()  # no partial output, whatever went wrong (DESIGN promise 5)
        raise
    finally:
        torch.set_num_threads(threads)
        reader.close()
        lock.release()
    seconds = time.perf_counter() - started
    stage_seconds = {"decode": decode_times.get("decode", 0.0), **timer.seconds, "encode": writer.seconds}
    return {
        "input": str(input),
        "output": str(output),
        "frames": frames,
        "seconds": round(seconds, 3),
        "fps": round(frames / seconds, 2) if seconds else None,
        "stage_seconds": {k: round(v, 3) for k, v in stage_seconds.items()},
        "stage_fps": {k: (round(frames / v, 1) if v > 0 else None) for k, v in stage_seconds.items()},
        "model": colorizer.describe(),
        "device": str(device),
        "flow_provider": temporal.provider_name,
        "temporal": temporal.describe() if hasattr(temporal, "describe") else {},
        "encoder": writer.describe(),
        "source": reader.describe(),
        "damaged_frames": len(reader.damaged),
        "notices": dropped + damage_notice(reader) + size_notice(reader),
        "output_format": {"pix_fmt": layout.encoder_pix_fmt, "range": "full" if layout.full_range else "limited", "matrix": layout.matrix},
        "config": dataclasses.asdict(config),
    }


def stream_notices(reader: VideoReader, layout) -> list[str]:
    """One line for everything of the input that does not make it into the output, and why
    (DESIGN: never drop silently). The CLI prints them on stderr; `--json` reports them too.
    Called while the input is open (stream contexts die with the file)."""
    lines = []
    for stream in reader.container.streams:
        if stream is reader.video or stream in reader.copy_streams:
            continue
        name = stream.codec_context.name if stream.codec_context else "unknown"
        if stream.type == "video" and stream.disposition & av.stream.Disposition.attached_pic:
            why = "a cover-art picture, not part of the film"
        elif stream.type == "video":
            why = f"only the first video stream (#{reader.video.index}) is colorized"
        elif stream.type == "data" and name in ("none", "unknown") and "timecode" in stream.metadata:
            why = f"a timecode track; its start {stream.metadata['timecode']} is carried as the video's timecode"
        else:
            why = f"{stream.type} streams are not copied"
        lines.append(f"{reader.path.name}: stream #{stream.index} ({stream.type}, {name}) dropped: {why}")
    if reader.source.pix_fmt.startswith("yuva"):
        lines.append(f"{reader.path.name}: alpha plane dropped: the output is {layout.encoder_pix_fmt}, which has none")
    return lines


def damage_notice(reader: VideoReader) -> list[str]:
    lines = []
    if reader.damaged:
        shown = ", ".join(map(str, reader.damaged[:10])) + (", ..." if len(reader.damaged) > 10 else "")
        lines.append(
            f"{reader.path.name}: {len(reader.damaged)} damaged frame(s) ({shown}): undecodable ones repeat the previous "
            "good frame, concealed ones are kept"
        )
    return lines


def _progress_bar(reader: VideoReader, output: Path, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=reader.expected_frames, unit="frame", desc=output.name, dynamic_ncols=True, smoothing=0.1)


__all__ = ["VideoConfig", "colorize_video", "load_preset", "make_config", "available_presets"]
