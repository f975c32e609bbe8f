"""What keyframe mode costs: `colorize` with keyframes vs the automatic mode, same film, alternating.

    python benchmarks/bench_keyframe_speed.py                 # 640x480, 150 frames, 2 repeats
    python benchmarks/bench_keyframe_speed.py --frames 300 --repeats 3 --segment-frames 100

The film is the test suite's moving shapes at 640x480 (gray H.264), the keyframes their true
colors at the first, middle and last frames: every frame is reached by a carry from before and
one from after (the most work keyframe mode does: each frame's flow for the backward carry on top
of the temporal stage's). Both modes run in one process with one loaded model, the shipped one,
DIS flow, x264, runs alternating auto / keyframes so the machine's load falls on both alike;
reported: best seconds of each and their ratio. `--segment-frames` cuts the film so segments
after the first also warm up from a keyframe before them (flow only: no network) and read tail
frames for the carry from a keyframe after them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import cv2
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--segment-frames", type=int, default=None)
    parser.add_argument("--model", default=str(ROOT / "models" / "remaster-default.safetensors"))
    args = parser.parse_args()
    from conftest import make_clip, shapes_frame

    from remaster.net.colorizer import Colorizer
    from remaster.run.config import make_config
    from remaster.run.pipeline import colorize_video

    torch.set_num_threads(max(1, (os.cpu_count() or 2) // 2))
    colorizer = Colorizer.load(args.model, device="cpu")
    width, height = 640, 480
    options = {"flow": "dis"} | ({"segment_frames": args.segment_frames} if args.segment_frames else {})
    seconds = {"auto": [], "keyframes": []}
    with tempfile.TemporaryDirectory(prefix="bench-keyframe-speed-") as tmp:
        tmp = Path(tmp)
        film = make_clip(
            tmp / "film.mp4",
            width=width,
            height=height,
            frames=args.frames,
            audio_tracks=0,
            pix_fmt="gray",
            options={"crf": "18", "preset": "veryfast", "g": "50"},
        )
        keys = tmp / "keys"
        keys.mkdir()
        for t in (0, args.frames // 2, args.frames - 1):
            cv2.imwrite(str(keys / f"{t:06d}.png"), cv2.cvtColor(shapes_frame(t, width, height), cv2.COLOR_RGB2BGR))
        for repeat in range(args.repeats):
            for mode, folder in (("auto", None), ("keyframes", keys)):
                started = time.perf_counter()
                report = colorize_video(
                    film.path,
                    tmp / f"{mode}.mp4",
                    make_config(**options),
                    force=True,
                    progress=False,
                    colorizer=colorizer,
                    keyframes=folder,
                )
                seconds[mode].append(time.perf_counter() - started)
                print(
                    f"repeat {repeat} {mode}: {seconds[mode][-1]:.1f} s, {report.segments} segment(s)", file=sys.stderr
                )
    best = {mode: min(values) for mode, values in seconds.items()}
    load = os.getloadavg()
    print(
        json.dumps(
            {
                "machine": {
                    "cpu": platform.processor() or platform.machine(),
                    "cores": os.cpu_count(),
                    "load_average": [round(x, 1) for x in load],
                },
                "film": (
                    f"{width}x{height}, {args.frames} frames, keyframes at 0, {args.frames // 2}, {args.frames - 1}"
                ),
                "segment_frames": args.segment_frames,
                "seconds": seconds,
                "best": best,
                "ratio_keyframes_to_auto": round(best["keyframes"] / best["auto"], 3),
                "ratio_per_repeat": [round(k / a, 3) for a, k in zip(seconds["auto"], seconds["keyframes"])],
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
