"""The automatic mode on every data-pack clip, against its color original (issue 10, item 4).

    python benchmarks/bench_clips.py                       # first 150 frames of every clip
    python benchmarks/bench_clips.py --model run.safetensors --frames 60 --json

Each clip is made gray (its BT.601 luma, as a black-and-white film would be) and colorized by
the full pipeline (network + temporal stage, DIS flow, FFV1). Per clip, over frames 1..N-1:
PSNR gain over the gray film against the truth (never worse than gray is the bar), the
colorfulness ratio to the truth's, and the chroma warping error (Lai et al. 2018 on the chroma
planes, flow from the gray input; bench_keyframes.ChromaWarp) beside the truth's own.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

import torch
from bench_keyframes import CLIPS, ROOT, ChromaWarp, frames_rgb, scores, write_gray


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--clips", default=None, help="comma-separated clip names (default: all in the data pack)")
    parser.add_argument("--model", default=str(ROOT / "models" / "remaster-default.safetensors"))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not CLIPS.is_dir():
        raise SystemExit(f"no data pack at {CLIPS}: nothing to measure")
    from remaster.net.colorizer import Colorizer
    from remaster.run.config import make_config
    from remaster.run.pipeline import colorize_video

    colorizer = Colorizer.load(args.model, device="cpu")
    names = args.clips.split(",") if args.clips else sorted(p.name for p in CLIPS.iterdir())
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-clips-") as tmp:
        tmp = Path(tmp)
        for name in names:
            truth = frames_rgb(CLIPS / name, args.frames)
            film = tmp / f"{Path(name).stem}-gray.mkv"
            write_gray(truth, film)
            out = tmp / f"{Path(name).stem}-auto.mkv"
            colorize_video(film, out, make_config(flow="dis", codec="ffv1"), progress=False, colorizer=colorizer)
            # Chroma warping error (flow from the gray input, shots not crossed) of ours and of the truth.
            warp = ChromaWarp(truth, starts=[0])
            row = {"clip": name, "frames": len(truth), **scores(frames_rgb(out, args.frames), truth, [0], warp)}
            row["psnr_gain"] = round(row["psnr"] - row["psnr_gray"], 2)
            row["chroma_warp_truth"] = round(warp(truth), 4)
            rows.append(row)
            print(json.dumps(row), file=sys.stderr)
    machine = {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
    }
    gains = [r["psnr_gain"] for r in rows]
    summary = {
        "mean_gain": round(sum(gains) / len(gains), 2),
        "worst_gain": min(gains),
        "clips_below_gray_by_1db": sum(g < -1 for g in gains),
    }
    if args.json:
        print(
            json.dumps({"machine": machine, "model": Path(args.model).name, "summary": summary, "rows": rows}, indent=2)
        )
        return
    print(f"machine: {machine}; model {Path(args.model).name}; first {args.frames} frames of each clip")
    print("| clip | gray film dB | auto dB | gain dB | colorfulness ratio | chroma warping error (truth's) |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['clip']} | {r['psnr_gray']} | {r['psnr']} | {r['psnr_gain']:+.2f} | {r['colorfulness_ratio']:.0%} | "
            f"{r['chroma_warp']:.4f} ({r['chroma_warp_truth']:.4f}) |"
        )
    print(f"mean gain {summary['mean_gain']:+.2f} dB, worst {summary['worst_gain']:+.2f} dB")


if __name__ == "__main__":
    main()
