"""End-to-end video benchmark: `remaster bench` (remaster/bench.py) plus the memory runs.

    python benchmarks/bench_video.py                   # CPU: 640x480 and 1920x1080, memory 5 s vs 2 min
    python benchmarks/bench_video.py --device cuda --codec h264_nvenc --frames 300
    python benchmarks/bench_video.py --sizes 640x480 --frames 60 --no-memory --json

The measuring (inputs, plain transcode, pipeline runs, fps per stage, peak memory per size)
lives in the package as `remaster.measure.bench.run_bench`, the same code `remaster bench` runs; by
default this script scales the data pack's book.mkv (../shared/data/clips) to each size.

Peak memory against the film's length: the pipeline on a 5-second and a 2-minute clip (small
frames so the long one stays quick), each in a fresh process, reading the process's peak RSS.
Bounded queues should make the two equal; the target is within 15%.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from remaster.measure import bench
from remaster.measure.bench import (
    BenchOptions,
    format_table,
    parse_size,
    pipeline_run,
    run_bench,
    run_config,
)

ROOT = Path(__file__).resolve().parents[1]
CLIP = ROOT.parent / "shared" / "data" / "clips" / "book.mkv"  # --clip replaces it; synthetic if absent


def make_input(path: Path, width: int, height: int, frames: int, rate: int = 25, audio: bool = True) -> Path:
    """`remaster.measure.bench.make_input` from the data pack's clip where it is present (bench_commits uses it too)."""
    return bench.make_input(path, width, height, frames, rate=rate, audio=audio, clip=CLIP if CLIP.is_file() else None)


def _rss_mib(field: str = "VmRSS:") -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1]) / 1024
    return 0.0


def _memory_child(source: str, options_json: str) -> None:
    """Run in a fresh process: one pipeline pass, then print peak RSS (MiB) as JSON."""
    from remaster.measure.bench import load_colorizer

    options = BenchOptions(**json.loads(options_json))
    colorizer, _ = load_colorizer(options)
    baseline = _rss_mib()
    samples, done = [], threading.Event()

    def sample():  # RSS while streaming, every 100 ms: growth here would mean a leak
        while not done.wait(0.1):
            samples.append(_rss_mib())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    report = pipeline_run(
        Path(source), Path(source).with_name(Path(source).stem + "-out.mp4"), run_config(options), colorizer
    )
    done.set()
    sampler.join()
    # VmHWM, not getrusage's ru_maxrss: the latter keeps the high-water mark of the forked
    # parent across exec, so every child would report the benchmark parent's size.
    half = len(samples) // 2
    print(
        json.dumps(
            {
                "peak_rss_mib": round(_rss_mib("VmHWM:"), 1),
                "rss_before_run_mib": round(baseline, 1),
                "rss_max_first_half_mib": round(max(samples[:half] or [0]), 1),
                "rss_max_second_half_mib": round(max(samples[half:] or [0]), 1),
                "frames": report["frames"],
                "seconds": report["seconds"],
            }
        )
    )


def memory_runs(workdir: Path, options: BenchOptions, size: tuple[int, int], rate: int) -> dict:
    width, height = size
    plain = {
        "device": options.device,
        "flow": options.flow,
        "flow_weights": options.flow_weights,
        "codec": options.codec,
        "crf": options.crf,
        "preset": options.preset,
        "batch_size": options.batch_size,
        "cpu_threads": options.cpu_threads,
    }
    results = {}
    for label, seconds in (("5 s", 5), ("2 min", 120)):
        # 10 fps keeps the 2-minute run short on a CPU; memory depends on batches, not rate
        path = make_input(workdir / f"memory-{seconds}s.mp4", width, height, seconds * rate, rate=rate)
        child = subprocess.run(
            [sys.executable, __file__, "--memory-child", str(path), json.dumps(plain)],
            capture_output=True,
            text=True,
            check=False,
        )
        if child.returncode != 0:
            raise SystemExit(f"memory run failed: {child.stderr.strip().splitlines()[-1:]}")
        results[label] = json.loads(child.stdout.strip().splitlines()[-1])
    results["ratio_2min_to_5s"] = round(results["2 min"]["peak_rss_mib"] / results["5 s"]["peak_rss_mib"], 3)
    results["size"] = f"{width}x{height}"
    return results


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--flow", default="dis")
    parser.add_argument("--flow-weights", default=None)
    parser.add_argument("--codec", default="libx264")
    parser.add_argument("--crf", type=int, default=18)
    parser.add_argument("--preset", default="medium")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--sizes", default="640x480,1920x1080")
    parser.add_argument("--frames", default="60,24", help="frames per size (comma list, one per size, or one for all)")
    parser.add_argument(
        "--repeats", type=int, default=1, help="pipeline runs per size (transcode runs before and after each)"
    )
    parser.add_argument("--torch-threads", type=int, default=None, help="default: torch's")
    parser.add_argument("--memory", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--memory-size", type=parse_size, default=(96, 64))
    parser.add_argument("--memory-rate", type=int, default=10, help="frame rate of the memory clips")
    parser.add_argument(
        "--clip", type=Path, default=None, help=f"real clip to scale (default: {CLIP}; synthetic if absent)"
    )
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--memory-child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_child:
        _memory_child(*args.memory_child)
        return {}
    clip = args.clip or (CLIP if CLIP.is_file() else None)
    options = BenchOptions(
        sizes=tuple(parse_size(s) for s in args.sizes.split(",")),
        frames=tuple(int(n) for n in str(args.frames).split(",")),
        device=args.device,
        flow=args.flow,
        flow_weights=args.flow_weights,
        batch_size=args.batch_size,
        precision=args.precision,
        codec=args.codec,
        crf=args.crf,
        preset=args.preset,
        clip=clip,
        repeats=args.repeats,
        cpu_threads=args.torch_threads,
    )
    out = sys.stderr if args.json else sys.stdout
    results = run_bench(options, log=lambda line: print(line, file=out, flush=True))
    if args.memory:
        with tempfile.TemporaryDirectory(prefix="bench-video-") as tmp:
            results["memory"] = m = memory_runs(Path(tmp), options, args.memory_size, args.memory_rate)
        print(
            f"peak RSS at {m['size']}: 5 s {m['5 s']['peak_rss_mib']} MiB, 2 min {m['2 min']['peak_rss_mib']} MiB "
            f"(ratio {m['ratio_2min_to_5s']})",
            file=out,
            flush=True,
        )
    print(json.dumps(results, indent=2) if args.json else format_table(results))
    return results


if __name__ == "__main__":
    main()
