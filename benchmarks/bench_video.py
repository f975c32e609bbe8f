"""End-to-end video benchmark: fps per stage, ratio to a plain transcode, and peak memory.

    python benchmarks/bench_video.py                   # CPU: 640x480 and 1920x1080, memory 5 s vs 2 min
    python benchmarks/bench_video.py --device cuda --codec h264_nvenc --frames 300
    python benchmarks/bench_video.py --sizes 640x480 --frames 60 --no-memory --json

For each size it makes a black-and-white H.264 clip (a real clip from ../shared/data/clips scaled
to the size when present, else synthetic moving shapes), then, alternating so both see the same
machine state, runs:
  - the plain transcode: PyAV decode + encode of the same file with the same encoder settings
    (what `ffmpeg -c:v libx264 -crf 18 -preset medium -c:a copy` does): the pipeline's physical limit;
  - `colorize_video` with the default model (or a random one of the same architecture when no
    default model is shipped yet; same speed) and the chosen flow.
The ratio end-to-end / transcode is the number to compare across machines (DESIGN "Measures").

Peak memory: the pipeline on a 5-second and a 2-minute clip (small frames so the long one stays
quick), each in a fresh process, reading the process's peak RSS. Bounded queues should make the
two equal; the target is within 15%.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CLIPS = ROOT.parent / "shared" / "data" / "clips"


# --- inputs -------------------------------------------------------------------------------------


CLIP = CLIPS / "book.mkv"  # --clip replaces it


def _gray_frames(width: int, height: int, frames: int):
    """Gray pictures at the size: a real clip scaled (looped as needed), else moving shapes."""
    source = CLIP
    if source.is_file():
        pictures = []
        with av.open(str(source)) as container:
            for frame in container.decode(video=0):
                pictures.append(frame.reformat(width=width, height=height, format="gray").to_ndarray())
                if len(pictures) >= frames:
                    break
        for i in range(frames):
            # ping-pong through the clip so a long input has no jump cut at each loop
            period = 2 * len(pictures) - 2
            k = i % period
            yield pictures[k if k < len(pictures) else period - k]
        return
    y, x = np.mgrid[0:height, 0:width]
    for i in range(frames):
        image = (60 + 100 * x / width + 40 * np.sin(y / 23.0)).astype(np.float32)
        cx, cy = (i * 7) % width, height // 2
        image[(x - cx) ** 2 + (y - cy) ** 2 < (height // 6) ** 2] = 220
        noise = np.random.default_rng(i).normal(0, 4, image.shape)
        yield np.clip(image + noise, 0, 255).astype(np.uint8)


def make_input(path: Path, width: int, height: int, frames: int, rate: int = 25, audio: bool = True) -> Path:
    """A black-and-white film as users have them: gray pictures in yuv420p H.264, AAC sound."""
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=rate, options={"crf": "20", "preset": "veryfast"})
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        sound = out.add_stream("aac", rate=48000, layout="stereo") if audio else None
        for i, gray in enumerate(_gray_frames(width, height, frames)):
            frame = av.VideoFrame.from_ndarray(gray, format="gray").reformat(format="yuv420p")
            frame.pts = i
            for packet in video.encode(frame):
                out.mux(packet)
        for packet in video.encode(None):
            out.mux(packet)
        if sound is not None:
            samples = int(48000 * frames / rate)
            tone = (0.2 * np.sin(2 * np.pi * 440 * np.arange(samples) / 48000)).astype(np.float32)
            for start in range(0, samples, 1024):
                chunk = np.repeat(tone[None, start : start + 1024], 2, axis=0)
                af = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk), format="fltp", layout="stereo")
                af.sample_rate, af.pts = 48000, start
                for packet in sound.encode(af):
                    out.mux(packet)
            for packet in sound.encode(None):
                out.mux(packet)
    return path


# --- the two runs -------------------------------------------------------------------------------


def plain_transcode(source: Path, destination: Path, codec: str, crf: int, preset: str) -> dict:
    """Decode + encode the video with the same encoder settings, stream-copy the sound."""
    from remaster.frames import SourceFormat
    from remaster.encoding import choose_layout, encoder_options

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
        video.width, video.height, video.pix_fmt = video_in.codec_context.width, video_in.codec_context.height, layout.encoder_pix_fmt
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


def load_colorizer(device: str):
    from remaster.model import Colorizer, default_model_path

    if default_model_path().is_file():
        return Colorizer.load(device=device), "default model"
    colorizer = Colorizer.random(seed=0, device=device)
    return colorizer, "random weights, default architecture (no shipped model yet; same speed)"


def pipeline_run(source: Path, destination: Path, args, colorizer) -> dict:
    from remaster.pipeline import colorize_video, make_config

    config = make_config(
        device=args.device, flow=args.flow, codec=args.codec, crf=args.crf, preset=args.preset, batch_size=args.batch_size,
        flow_weights=args.flow_weights,
    )  # fmt: skip
    return colorize_video(source, destination, config, force=True, progress=False, colorizer=colorizer).to_dict()


# --- memory -------------------------------------------------------------------------------------


def _memory_child(source: str, args_json: str) -> None:
    """Run in a fresh process: one pipeline pass, then print peak RSS (MiB) as JSON."""
    args = argparse.Namespace(**json.loads(args_json))
    args.clip = Path(args.clip) if args.clip else None
    _threads(args)
    import threading

    colorizer, _ = load_colorizer(args.device)
    baseline = _rss_mib()
    samples, done = [], threading.Event()

    def sample():  # RSS while streaming, every 100 ms: growth here would mean a leak
        while not done.wait(0.1):
            samples.append(_rss_mib())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    report = pipeline_run(Path(source), Path(source).with_name(Path(source).stem + "-out.mp4"), args, colorizer)
    done.set()
    sampler.join()
    # VmHWM, not getrusage's ru_maxrss: the latter keeps the high-water mark of the forked
    # parent across exec, so every child would report the benchmark parent's size.
    peak = _rss_mib("VmHWM:")
    gpu = None
    try:
        import torch

        if torch.cuda.is_available():
            gpu = torch.cuda.max_memory_allocated() / 2**20
    except Exception:
        pass
    half = len(samples) // 2
    print(json.dumps({
        "peak_rss_mib": round(peak, 1),
        "rss_before_run_mib": round(baseline, 1),
        "rss_max_first_half_mib": round(max(samples[:half] or [0]), 1),
        "rss_max_second_half_mib": round(max(samples[half:] or [0]), 1),
        "gpu_peak_mib": gpu and round(gpu, 1),
        "frames": report["frames"],
        "seconds": report["seconds"],
    }))  # fmt: skip


def _rss_mib(field: str = "VmRSS:") -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1]) / 1024
    return 0.0


def memory_runs(workdir: Path, args) -> dict:
    width, height = args.memory_size
    results = {}
    for label, seconds in (("5 s", 5), ("2 min", 120)):
        # 10 fps keeps the 2-minute run short on a CPU; memory depends on batches, not rate
        path = make_input(workdir / f"memory-{seconds}s.mp4", width, height, seconds * args.memory_rate, rate=args.memory_rate)
        child = subprocess.run(
            [sys.executable, __file__, "--memory-child", str(path), json.dumps(vars(args), default=str)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if child.returncode != 0:
            raise SystemExit(f"memory run failed: {child.stderr.strip().splitlines()[-1:]}")
        results[label] = json.loads(child.stdout.strip().splitlines()[-1])
    five, two = results["5 s"]["peak_rss_mib"], results["2 min"]["peak_rss_mib"]
    results["ratio_2min_to_5s"] = round(two / five, 3)
    results["size"] = f"{width}x{height}"
    return results


# --- main ---------------------------------------------------------------------------------------


def _threads(args) -> None:
    import torch

    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)


def machine(device: str) -> str:
    cpu = platform.processor() or "cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    text = f"{os.cpu_count()} x {cpu}"
    if device.startswith("cuda"):
        import torch

        text += f", {torch.cuda.get_device_name(0)}"
    return text


def _size(text: str) -> tuple[int, int]:
    w, h = text.lower().split("x")
    return int(w), int(h)


def main(argv=None) -> dict:
    global CLIP
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--flow", default="dis")
    parser.add_argument("--flow-weights", default=None)
    parser.add_argument("--codec", default="libx264")
    parser.add_argument("--crf", type=int, default=18)
    parser.add_argument("--preset", default="medium")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--sizes", default="640x480,1920x1080")
    parser.add_argument("--frames", default="60,24", help="frames per size (comma list, one per size, or one for all)")
    parser.add_argument("--repeats", type=int, default=1, help="pipeline runs per size (transcode runs before and after each)")
    parser.add_argument("--torch-threads", type=int, default=0, help="0: torch's default")
    parser.add_argument("--memory", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--memory-size", type=_size, default=(96, 64))
    parser.add_argument("--memory-rate", type=int, default=10, help="frame rate of the memory clips")
    parser.add_argument("--clip", type=Path, default=None, help=f"real clip to scale (default: {CLIP}; synthetic if absent)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--memory-child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    CLIP = args.clip or CLIP
    if args.memory_child:
        _memory_child(*args.memory_child)
        return {}
    _threads(args)
    sizes = [_size(s) for s in args.sizes.split(",")]
    counts = [int(n) for n in str(args.frames).split(",")]
    counts = counts + [counts[-1]] * (len(sizes) - len(counts))
    colorizer, model_note = load_colorizer(args.device)
    import torch

    results = {
        "machine": machine(args.device),
        "load_average_before": os.getloadavg(),  # the CPU may be shared: say how busy it was
        "torch_threads": torch.get_num_threads(),
        "model": model_note,
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items() if k not in ("memory_child", "json")},
        "source_clip": str(CLIP) if CLIP.is_file() else "synthetic shapes",
        "sizes": {},
    }
    with tempfile.TemporaryDirectory(prefix="bench-video-") as tmp:
        workdir = Path(tmp)
        for (width, height), frames in zip(sizes, counts):
            source = make_input(workdir / f"in-{width}x{height}.mp4", width, height, frames)
            # warm-up: first-call costs (oneDNN kernels, CUDA context, flow provider) stay out
            warm = make_input(workdir / "warm.mp4", width, height, min(frames, 2 * args.batch_size), audio=False)
            pipeline_run(warm, workdir / "warm-out.mp4", args, colorizer)
            transcodes = [plain_transcode(source, workdir / "transcode.mp4", args.codec, args.crf, args.preset)]
            runs = []
            for _ in range(args.repeats):
                runs.append(pipeline_run(source, workdir / "out.mp4", args, colorizer))
                transcodes.append(plain_transcode(source, workdir / "transcode.mp4", args.codec, args.crf, args.preset))
            best = min(runs, key=lambda r: r["seconds"])
            transcode_fps = float(np.median([t["fps"] for t in transcodes]))
            results["sizes"][f"{width}x{height}"] = {
                "frames": frames,
                "end_to_end_fps": best["fps"],
                "transcode_fps": round(transcode_fps, 2),
                "ratio_to_transcode": round(best["fps"] / transcode_fps, 3),
                "stage_fps": best["stage_fps"],
                "flow_provider": best["flow_provider"],
                "working_size": list(colorizer.working_size(height, width)),
                "encoder": best["encoder"]["encoder"],
            }
            if True:  # progress on stderr even with --json
                r = results["sizes"][f"{width}x{height}"]
                print(
                    f"{width}x{height}: end to end {r['end_to_end_fps']} fps, transcode {r['transcode_fps']} fps, "
                    f"ratio {r['ratio_to_transcode']}; stages {r['stage_fps']}",
                    file=sys.stderr if args.json else sys.stdout, flush=True,
                )
        if args.memory:
            results["memory"] = memory_runs(workdir, args)
            m = results["memory"]
            print(f"peak RSS at {m['size']}: 5 s {m['5 s']['peak_rss_mib']} MiB, 2 min {m['2 min']['peak_rss_mib']} MiB "
                  f"(ratio {m['ratio_2min_to_5s']})", file=sys.stderr if args.json else sys.stdout, flush=True)  # fmt: skip
    results["load_average_after"] = os.getloadavg()
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(f"machine: {results['machine']}; torch threads {results['torch_threads']}; model: {model_note}")
    return results


if __name__ == "__main__":
    main()
