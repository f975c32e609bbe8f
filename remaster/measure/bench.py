"""`remaster bench`: how fast a film goes through, stage by stage, against a plain transcode.

For each size it makes a black-and-white H.264 film (a given clip scaled to the size, or
synthetic moving shapes), then, so both see the same machine state (the CPU may be shared), runs
  - the plain transcode: decode + encode of the same file with the same encoder settings, the
    sound copied (what `ffmpeg -c:v libx264 -crf 18 -preset medium -c:a copy` does): the
    pipeline's physical limit, before and after the pipeline, median taken;
  - `colorize_video` with the chosen model, device, flow, batch size and precision, after a
    one-batch warm-up (first-call costs: oneDNN kernels, the CUDA context, the flow provider).
It reports fps per stage and end to end, the ratio end to end / transcode (the number to compare
across machines: DESIGN "Measures"), the colorize + shots + temporal stages alone, peak CPU
memory (RSS, the process's high-water mark, reset before each size) and peak GPU memory.

Stage fps divide the frames by each stage's own seconds: decode and encode run in their own
threads, so end to end is bounded by the slowest stage, not by their sum.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np
import torch

from remaster.errors import ConfigError, InputError
from remaster.measure.films import make_input

STAGES = ("decode", "colorize", "shots", "temporal", "assemble", "encode")
FILM_FRAMES = 130_000  # a 90-minute film at 24 fps: the projection the issue asks for
PRECISIONS = ("auto", "fp32", "bf16", "fp16")


# The run's own options the bench takes, as `colorize` names them (remaster/run/config.py): None in
# BenchOptions means the run's default, so `bench --flow` is `colorize --flow` (auto).
RUN_OPTIONS = ("model", "device", "batch_size", "cpu_threads", "flow", "flow_weights", "codec", "crf", "preset")


@dataclass(frozen=True)
class BenchOptions:
    """What `remaster bench` measures; the fields with a `help` are its flags (with some of the run's
    own, `RUN_OPTIONS` and `decoder`, `segment_frames`: cli/measure.py)."""

    sizes: tuple[tuple[int, int], ...] | None = field(  # (width, height)
        default=None,
        metadata={
            "help": "Comma-separated WIDTHxHEIGHT list (default: 640x480,1920x1080 on the CPU, 1920x1080,3840x2160 "
            "on CUDA).",
            "parse": lambda text: parse_size(text),
            "expect": "sizes WIDTHxHEIGHT separated by commas",
            "metavar": "WxH[,WxH...]",
            "example": "640x480,1920x1080",
        },
    )
    frames: tuple[int, ...] | None = field(  # one per size (the last repeats)
        default=None,
        metadata={
            "help": "Frames per size: one number, or one per size (default: 32,16 on the CPU, 600,240 on CUDA).",
            "expect": "frame counts separated by commas",
            "example": "32,16",
        },
    )
    clip: Path | None = field(
        default=None,
        metadata={"help": "A video whose pictures are scaled to each size (default: synthetic moving shapes)."},
    )
    precision: str = field(
        default="auto",
        metadata={
            "help": "The network's arithmetic on CUDA (auto: bf16 where the GPU has it); the CPU runs fp32.",
            "choices": PRECISIONS,
        },
    )
    repeats: int = field(default=1, metadata={"help": "Pipeline runs per size; the fastest is reported."})
    workers: int | None = field(  # segments colorized in that many processes (colorize_video's `workers`)
        default=None,
        metadata={
            "help": "Colorize segments in this many processes, as `colorize --workers` does (their start counts)."
        },
    )
    inputs: Path | None = field(  # reused when of the same size, frames and clip
        default=None,
        metadata={
            "help": "A folder to keep the made films in and reuse on the next call (default: a temporary folder)."
        },
    )
    # The run's options (RUN_OPTIONS): None = the run config's default. model None: the shipped
    # model, or random weights of its architecture without one.
    model: str | None = None
    device: str | None = None
    flow: str | None = None
    flow_weights: str | None = None
    batch_size: int | None = None
    cpu_threads: int | None = None
    codec: str | None = None
    crf: int | None = None
    preset: str | None = None
    decoder: str | None = None  # cpu | nvdec
    extra: dict = field(default_factory=dict)  # other run options by key (make_config)

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.repeats < 1:
            raise ConfigError(f"repeats must be >= 1, got {self.repeats}")
        if self.clip is not None and not Path(self.clip).is_file():
            raise InputError(f"{self.clip}: no such clip")


def default_sizes(device: torch.device) -> tuple[tuple[tuple[int, int], ...], tuple[int, ...]]:
    """Sizes and frame counts that say something in about a minute or two on the device."""
    if device.type == "cuda":
        return ((1920, 1080), (3840, 2160)), (600, 240)
    # On a 2-core CPU 1080p runs at a few fps: 16 frames (2 batches) keep the whole bench under 2 minutes.
    return ((640, 480), (1920, 1080)), (32, 16)


def parse_size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ConfigError(f"expected a size WIDTHxHEIGHT such as 1920x1080, got {text!r}") from None
    if width < 16 or height < 16 or width % 2 or height % 2:
        raise ConfigError(f"size {text}: expected even sides of at least 16 pixels")
    return width, height


# --- the two runs -------------------------------------------------------------------------------


def plain_transcode(source: Path, destination: Path, codec: str, crf: int, preset: str) -> dict:
    """Decode + encode the video with the pipeline's encoder settings, stream-copy the sound."""
    from remaster.media.encoding import choose_layout, encoder_options
    from remaster.media.formats import SourceFormat

    started = time.perf_counter()
    frames = 0
    with av.open(str(source)) as inp, av.open(str(destination), "w") as out:
        video_in = inp.streams.video[0]
        video_in.thread_type = "AUTO"
        first = next(inp.decode(video_in))
        layout = choose_layout(SourceFormat.from_frame(first), codec)
        encoder, options, _ = encoder_options(codec, crf, preset, layout)
        inp.seek(0)
        video = out.add_stream(encoder, rate=video_in.average_rate, options=options)
        video.width, video.height = video_in.codec_context.width, video_in.codec_context.height
        video.pix_fmt = layout.encoder_pix_fmt
        video.time_base = video.codec_context.time_base = video_in.time_base
        audio = {s.index: out.add_stream_from_template(s) for s in inp.streams.audio}
        for packet in inp.demux(video_in, *inp.streams.audio):
            if packet.stream.index in audio:
                if packet.size:
                    packet.stream = audio[packet.stream.index]
                    out.mux(packet)
                continue
            for frame in packet.decode():
                if frame.format.name != layout.encoder_pix_fmt:
                    frame = frame.reformat(format=layout.encoder_pix_fmt)
                for encoded in video.encode(frame):
                    out.mux(encoded)
                frames += 1
        for encoded in video.encode(None):
            out.mux(encoded)
    seconds = time.perf_counter() - started
    return {"frames": frames, "seconds": round(seconds, 3), "fps": round(frames / seconds, 2)}


def load_colorizer(options: BenchOptions):
    """The model to measure, and a note saying which it is."""
    from remaster.net.colorizer import Colorizer, default_model_path

    run = run_config(options).colorize
    if run.model is not None or default_model_path().is_file():
        colorizer = Colorizer.load(run.model, device=run.device)
        note = colorizer.name
    else:
        colorizer = Colorizer.random(seed=0, device=run.device)
        note = "random weights, default architecture (no shipped model; same speed)"
    colorizer.set_precision(options.precision)
    return colorizer, note


def run_config(options: BenchOptions):
    """The run's config: its defaults (remaster/run/config.py), then the options the bench was given."""
    from remaster.run.config import make_config

    given = {name: getattr(options, name) for name in (*RUN_OPTIONS, "decoder")}
    return make_config(**{name: value for name, value in given.items() if value is not None}, **options.extra)


def pipeline_run(source: Path, destination: Path, config, colorizer, workers: int | None = None) -> dict:
    """One `colorize_video` run; with `workers`, in that many processes (their start, a fresh
    interpreter importing torch and loading the model, counts: it is part of a real run)."""
    from remaster.run.pipeline import colorize_video

    return colorize_video(
        source, destination, config, force=True, progress=False, colorizer=colorizer, workers=workers or 1
    ).to_dict()


# --- memory -------------------------------------------------------------------------------------


def _status_mib(field_name: str) -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field_name):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def reset_peaks(device: torch.device) -> bool:
    """Start the high-water marks afresh; False where the CPU one cannot be reset (then the
    reported RSS peak is the process's since it started)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    try:
        Path("/proc/self/clear_refs").write_text("5")  # Linux: resets VmHWM to the current RSS
        return True
    except OSError:
        return False


def peak_gpu_mib(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    torch.cuda.synchronize(device)
    return round(torch.cuda.max_memory_allocated(device) / 2**20, 1)


# --- the bench ----------------------------------------------------------------------------------


def machine(device: torch.device) -> str:
    cpu = platform.processor() or "cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    text = f"{os.cpu_count()} x {cpu}"
    if device.type == "cuda":
        text += f", {torch.cuda.get_device_name(device)}"
    return text


def run_bench(options: BenchOptions | None = None, *, log=None, progress=None) -> dict:
    """Measure every size of `options`; `log(line)` is called with each size's row as it finishes,
    `progress(line)` with what is being measured as it starts."""
    from remaster.device import resolve_device

    options = options or BenchOptions()
    say = progress or (lambda line: None)
    device = resolve_device(run_config(options).colorize.device)
    options = dataclasses.replace(options, device=str(device))
    sizes, counts = default_sizes(device)
    sizes = options.sizes or sizes
    counts = list(options.frames or (counts if options.sizes is None else (counts[-1],)))
    counts = (counts + [counts[-1]] * len(sizes))[: len(sizes)]
    config = run_config(options)
    say(f"bench: loading the model on {device}")
    colorizer, model_note = load_colorizer(options)
    plan = ", ".join(f"{w}x{h} ({n} frames)" for (w, h), n in zip(sizes, counts))
    say(f"bench: {model_note}, flow {config.temporal.flow}; measuring {plan}")
    threads = torch.get_num_threads()
    started = time.perf_counter()
    results = {
        "machine": machine(device),
        "device": str(device),
        "torch": torch.__version__,
        "torch_threads": options.cpu_threads or threads,
        "load_average_before": list(os.getloadavg()),  # the CPU may be shared: say how busy it was
        "model": model_note,
        "precision": colorizer.precision,
        "settings": _settings(options, config),
        "source": str(options.clip) if options.clip else "synthetic shapes",
        "runs": [],
    }
    with tempfile.TemporaryDirectory(prefix="remaster-bench-") as tmp:
        work = Path(tmp)
        keep = Path(options.inputs) if options.inputs else work
        keep.mkdir(parents=True, exist_ok=True)
        for (width, height), frames in zip(sizes, counts):
            tag = f"{width}x{height}-{frames}" + (f"-{Path(options.clip).stem}" if options.clip else "")
            source = keep / f"bench-{tag}.mp4"
            size = f"bench: {width}x{height}:"
            if not source.is_file():
                say(f"{size} making the input film ({frames} frames{f', from {options.clip}' if options.clip else ''})")
                make_input(source, width, height, frames, clip=options.clip)
            say(f"{size} warming up (one batch through the pipeline)")
            warm = work / f"warm-{width}x{height}.mp4"
            batch = config.colorize.batch_size
            make_input(warm, width, height, min(frames, batch), audio=False, clip=options.clip)
            pipeline_run(warm, work / "warm-out.mp4", config, colorizer)
            encode = config.encode
            say(f"{size} plain transcode ({encode.codec} crf {encode.crf} {encode.preset})")
            transcodes = [plain_transcode(source, work / "transcode.mp4", encode.codec, encode.crf, encode.preset)]
            resettable = reset_peaks(device)
            runs = []
            for repeat in range(options.repeats):
                say(f"{size} pipeline run {repeat + 1} of {options.repeats}, then a plain transcode")
                runs.append(pipeline_run(source, work / "out.mp4", config, colorizer, options.workers))
                transcodes.append(
                    plain_transcode(source, work / "transcode.mp4", encode.codec, encode.crf, encode.preset)
                )
            rss = _status_mib("VmHWM:")
            row = _row(min(runs, key=lambda r: r["seconds"]), transcodes, width, height, frames, colorizer)
            row["peak_rss_mib"] = rss and round(rss, 1)
            row["peak_rss_scope"] = "this size's runs (transcodes included)" if resettable else "the whole process"
            row["peak_gpu_mib"] = peak_gpu_mib(device)
            results["runs"].append(row)
            if log is not None:
                log(format_row(row))
    results["seconds"] = round(time.perf_counter() - started, 1)
    results["load_average_after"] = list(os.getloadavg())
    return results


def _settings(options: BenchOptions, config) -> dict:
    """The bench's options, the run's as the run took them (its defaults where none was given)."""
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(options).items()}
    for name in (*RUN_OPTIONS, "decoder"):
        for section in ("colorize", "temporal", "encode", "pipeline"):
            if hasattr(getattr(config, section), name):
                settings[name] = getattr(getattr(config, section), name)
    return settings


def _row(best: dict, transcodes: list[dict], width: int, height: int, frames: int, colorizer) -> dict:
    transcode_fps = float(np.median([t["fps"] for t in transcodes]))
    seconds = best["stage_seconds"]
    chain = sum(seconds.get(k, 0.0) for k in ("colorize", "shots", "temporal"))
    made = best["frames"]
    fps = best["fps"]
    return {
        "size": f"{width}x{height}",
        "frames": made,
        "end_to_end_fps": fps,
        "transcode_fps": round(transcode_fps, 2),
        "ratio_to_transcode": round(fps / transcode_fps, 3) if fps and transcode_fps else None,
        "stage_fps": {k: best["stage_fps"].get(k) for k in STAGES},
        "chain_fps": round(made / chain, 1) if chain > 0 else None,  # colorize + shots + temporal alone
        "projected_minutes_film": round(FILM_FRAMES / fps / 60, 1) if fps else None,
        "flow_provider": best["flow_provider"],
        "working_size": list(colorizer.working_size(height, width)),
        "encoder": best["encoder"]["encoder"],
        "decoder": best["source"].get("decoder", "cpu"),
        "requested_frames": frames,
        "notices": best["notices"],  # e.g. NVDEC asked for and not offered
        "execution": best.get("execution", {}),  # where it ran: this process, --workers processes
    }


def _fps(value) -> str:
    return "-" if value is None else (f"{value:.0f}" if value >= 100 else f"{value:.1f}")


def _ratio(value) -> str:
    return "-" if value is None else (f"{value:.2f}" if value >= 0.1 else f"{value:.3f}")


HEADER = ("size", "frames", "end-to-end", "transcode", "ratio", *STAGES, "chain", "RSS MiB", "GPU MiB")


def format_row(row: dict) -> str:
    cells = [
        row["size"],
        str(row["frames"]),
        _fps(row["end_to_end_fps"]),
        _fps(row["transcode_fps"]),
        _ratio(row["ratio_to_transcode"]),
    ]
    cells += [_fps(row["stage_fps"][k]) for k in STAGES] + [_fps(row["chain_fps"])]
    cells += [_fps(row["peak_rss_mib"]), _fps(row["peak_gpu_mib"])]
    return "  ".join(f"{c:>{max(len(h), 9)}}" for c, h in zip(cells, HEADER))


def format_table(results: dict) -> str:
    """The readable form: what ran where, then one row per size (fps unless said otherwise)."""
    s, r = results["settings"], results
    flow = r["runs"][0]["flow_provider"] if r["runs"] else s["flow"]
    lines = [
        f"remaster bench on {r['machine']} ({r['device']}, torch {r['torch']}, {r['torch_threads']} threads; "
        f"load {r['load_average_before'][0]:.1f} before, {r['load_average_after'][0]:.1f} after)",
        f"model {r['model']} ({r['precision']}), flow {flow}, batch {s['batch_size']}, "
        f"{s['codec']} crf {s['crf']} {s['preset']}, source {r['source']}",
        "fps per stage and end to end; ratio = end to end / plain transcode (same file, encoder, settings); "
        "chain = colorize + shots + temporal",
        "  ".join(f"{h:>{max(len(h), 9)}}" for h in HEADER),
    ]
    lines += [format_row(row) for row in r["runs"]]
    for row in r["runs"]:
        if row["projected_minutes_film"] is not None:
            minutes = row["projected_minutes_film"]
            lines.append(
                f"{row['size']}: a 90-minute film ({FILM_FRAMES:,} frames) would take {minutes} min end to end"
            )
    lines.append(f"{r['seconds']} s in all")
    return "\n".join(lines)
