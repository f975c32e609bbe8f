"""Segment length vs speed: what cutting a film into more segments (the run plan) costs.

    python benchmarks/bench_resume.py                       # 320x240, 240 frames, keyframe every 24
    python benchmarks/bench_resume.py --frames 480 --segments 24,48,96,240 --json

Runs the same clip through `colorize_video` as one segment and in segments of several lengths,
alternating, each `--repeats` times on a warm process, and reports fps and the ratio to the
one-segment run. Each segment costs a seek, the warm-up frames before it (colorized, not
written), a fresh encoder (whose first frames compress worse and whose look-ahead restarts), the
synced journal writes, and its share of the final remux. A stop costs at most one segment of
repeated work: segment frames / fps seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="320x240")
    parser.add_argument("--frames", type=int, default=240)
    parser.add_argument(
        "--gop", type=int, default=24, help="keyframe interval of the input (segments cut at keyframes)"
    )
    parser.add_argument("--segments", default="24,48,120,240", help="segment lengths in frames")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--cpu-threads", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    import torch
    from conftest import make_clip

    from remaster.net.colorizer import Colorizer
    from remaster.run.pipeline import colorize_video, make_config

    width, height = map(int, args.size.split("x"))
    folder = Path(tempfile.mkdtemp(prefix="bench-resume-"))
    clip = make_clip(
        folder / "in.mp4",
        width=width,
        height=height,
        frames=args.frames,
        rate=Fraction(24),
        audio_tracks=1,
        options={"preset": "veryfast", "crf": "20", "g": str(args.gop), "keyint_min": str(args.gop)},
    )
    colorizer = Colorizer.random(seed=0)  # the default architecture; speed as the shipped model's
    lengths = [int(v) for v in args.segments.split(",")]
    runs = {"one segment": []} | {f"segments of {n}": [] for n in lengths}
    segments_made, sizes = {}, {}
    for repeat in range(args.repeats):
        for name in runs:
            out = folder / f"out-{repeat}-{name.replace(' ', '-')}.mp4"
            n = args.frames if name == "one segment" else int(name.split()[-1])
            config = make_config(flow="dis", device="cpu", segment_frames=n, cpu_threads=args.cpu_threads)
            started = time.perf_counter()
            report = colorize_video(clip.path, out, config, progress=False, colorizer=colorizer)
            runs[name].append(time.perf_counter() - started)
            segments_made[name] = report.segments
            sizes[name] = out.stat().st_size
            out.unlink()
    best = {name: min(times) for name, times in runs.items()}
    rows = []
    for name, seconds in best.items():
        fps = args.frames / seconds
        n = args.frames if name == "one segment" else int(name.split()[-1])
        rows.append(
            {
                "run": name,
                "segments": segments_made[name],
                "seconds": round(seconds, 2),
                "fps": round(fps, 2),
                "vs one segment": round(best["one segment"] / seconds, 3),
                "size vs one segment": round(sizes[name] / sizes["one segment"], 4),
                "worst repeated work on resume (s)": round((n or args.frames) / fps, 1),
            }
        )
    machine = {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "load": os.getloadavg()[0],
        "torch_threads": args.cpu_threads,
        "torch": torch.__version__,
    }
    if args.json:
        print(json.dumps({"machine": machine, "clip": vars(args), "rows": rows}, indent=2))
        return
    print(
        f"{args.size}, {args.frames} frames at 24 fps, keyframe every {args.gop}; libx264 CRF 18 medium, DIS; {machine}"
    )
    print(
        "| run | segments | seconds | fps | speed vs one segment | file size vs one segment | worst repeated work on "
        "resume |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['run']} | {r['segments']} | {r['seconds']} | {r['fps']} | {r['vs one segment']} | "
            f"{r['size vs one segment']} | "
            f"{r['worst repeated work on resume (s)']} s |"
        )


if __name__ == "__main__":
    main()
