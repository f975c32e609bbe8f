"""What keyframe mode costs: `colorize` with keyframes vs the automatic mode, same film, alternating.

    python benchmarks/bench_keyframe_speed.py                 # the data pack's 640x480 clips, 60 frames
    python benchmarks/bench_keyframe_speed.py --clips sister.mkv --frames 60 --repeats 3
    python benchmarks/bench_keyframe_speed.py --shapes --frames 300 --repeats 3 --segment-frames 100

The films are the data pack's real clips (../shared/data/clips) at 640x480, their first `--frames`
frames made gray (their luma, gray H.264 as the synthetic film was); clips of another size are
resized to 640x480. With `--shapes`, the test suite's moving shapes at 640x480 instead (the earlier
benchmark: synthetic shapes make the local fill and the flow cheap, issue 20). The keyframes are
the true colors at the first, middle and last frames: every frame is reached by a carry from
before and one from after (the most work keyframe mode does: each frame's flow for the backward
carry on top of the temporal stage's). Both modes run in one process with one loaded model, the
shipped one, DIS flow, x264, runs alternating auto / keyframes so the machine's load falls on both
alike. Reported per film and summed: CPU seconds (user + system of this process, every thread)
and wall seconds of each run, the best of each and the ratios keyframes / auto, each pair's ratio,
the stage seconds of the last keyframe run, and the load average before and after.
`--segment-frames` cuts the film so segments after the first also warm up from a keyframe before
them (flow only: no network) and read tail frames for the carry from a keyframe after them.
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
CLIPS = ROOT.parent / "shared" / "data" / "clips"
REAL = ("book.mkv", "hungry.mkv", "sister.mkv")  # the data pack's 640x480 clips


def real_film(name: str, frames: int, folder: Path, width: int, height: int) -> tuple[Path, list]:
    """The clip's first `frames` frames at `width` x `height` as a gray H.264 film, and their RGB truth."""
    import av
    import numpy as np

    truth = []
    with av.open(str(CLIPS / name)) as container:
        for frame in container.decode(video=0):
            rgb = frame.to_ndarray(format="rgb24")
            if rgb.shape[:2] != (height, width):
                rgb = cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA)
            truth.append(rgb)
            if len(truth) >= frames:
                break
    path = folder / f"{Path(name).stem}-gray.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=25, options={"crf": "18", "preset": "veryfast", "g": "50"})
        stream.width, stream.height, stream.pix_fmt = width, height, "gray"
        for i, rgb in enumerate(truth):
            picture = av.VideoFrame.from_ndarray(np.ascontiguousarray(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)), "gray")
            picture.pts = i
            for packet in stream.encode(picture):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path, truth


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--clips", default=",".join(REAL), help="data-pack clips (resized to 640x480 if need be)")
    parser.add_argument("--shapes", action="store_true", help="the synthetic moving shapes instead of real clips")
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
    load_before = os.getloadavg()
    films = {}
    with tempfile.TemporaryDirectory(prefix="bench-keyframe-speed-") as tmp:
        tmp = Path(tmp)
        if args.shapes:
            film = make_clip(
                tmp / "film.mp4",
                width=width,
                height=height,
                frames=args.frames,
                audio_tracks=0,
                pix_fmt="gray",
                options={"crf": "18", "preset": "veryfast", "g": "50"},
            )
            films["shapes"] = (film.path, [shapes_frame(t, width, height) for t in range(args.frames)])
        else:
            for name in args.clips.split(","):
                films[name] = real_film(name, args.frames, tmp, width, height)
        results = {}
        for name, (path, truth) in films.items():
            keys = tmp / f"keys-{Path(name).stem}"
            keys.mkdir()
            count = len(truth)
            for t in sorted({0, count // 2, count - 1}):
                cv2.imwrite(str(keys / f"{t:06d}.png"), cv2.cvtColor(truth[t], cv2.COLOR_RGB2BGR))
            cpu, wall, stages = {"auto": [], "keyframes": []}, {"auto": [], "keyframes": []}, {}
            for repeat in range(args.repeats):
                for mode, folder in (("auto", None), ("keyframes", keys)):
                    started, started_cpu = time.perf_counter(), time.process_time()
                    report = colorize_video(
                        path,
                        tmp / f"{mode}.mp4",
                        make_config(**options),
                        force=True,
                        progress=False,
                        colorizer=colorizer,
                        keyframes=folder,
                    )
                    wall[mode].append(round(time.perf_counter() - started, 2))
                    cpu[mode].append(round(time.process_time() - started_cpu, 2))
                    stages[mode] = report.stage_seconds
                    print(
                        f"{name} repeat {repeat} {mode}: {cpu[mode][-1]:.1f} s CPU, {wall[mode][-1]:.1f} s wall, "
                        f"load {os.getloadavg()[0]:.1f}",
                        file=sys.stderr,
                    )
            results[name] = {
                "frames": count,
                "keyframes": sorted({0, count // 2, count - 1}),
                "cpu_seconds": cpu,
                "wall_seconds": wall,
                "ratio_cpu_best": round(min(cpu["keyframes"]) / min(cpu["auto"]), 3),
                "ratio_wall_best": round(min(wall["keyframes"]) / min(wall["auto"]), 3),
                "ratio_cpu_per_repeat": [round(k / a, 3) for a, k in zip(cpu["auto"], cpu["keyframes"])],
                "stage_seconds_last": stages,
            }
    total = lambda what, mode: sum(min(r[what][mode]) for r in results.values())
    print(
        json.dumps(
            {
                "machine": {
                    "cpu": platform.processor() or platform.machine(),
                    "cores": os.cpu_count(),
                    "load_average_before": [round(x, 1) for x in load_before],
                    "load_average_after": [round(x, 1) for x in os.getloadavg()],
                },
                "size": f"{width}x{height}",
                "segment_frames": args.segment_frames,
                "films": results,
                "ratio_cpu_best_all": round(total("cpu_seconds", "keyframes") / total("cpu_seconds", "auto"), 3),
                "ratio_wall_best_all": round(total("wall_seconds", "keyframes") / total("wall_seconds", "auto"), 3),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
