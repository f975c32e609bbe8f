"""`--workers 2` against one process: end-to-end speed of the same film on this machine.

    python benchmarks/bench_workers.py                                  # 640x480 and 1920x1080
    python benchmarks/bench_workers.py --sizes 640x480 --frames 240 --repeats 3 --json

For each size, a synthetic gray film with a keyframe every `--gop` frames (so the run plan cuts
it into several segments) goes through `colorize_video` with the shipped model, DIS flow and
libx264, as:
  - one process, torch's default threads (one per core): the plain run;
  - one process, one torch thread (`--cpu-threads 1`, the fastest single process on a busy
    machine, benchmarks/RESULTS.md);
  - `--workers 2` (each worker gets cores / 2 torch threads).
The runs alternate within one process, `--repeats` times, so a change in the machine's load
hits all of them alike; the best time of each is reported, with its ratio to the plain run.
Wall time is end to end, so the workers' start (a fresh interpreter importing torch and
loading the model, each) is counted: it is what a user waits for. Every output is checked to
be the plain run's, frame for frame.
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

VARIANTS = {
    "1 process": {"workers": 1, "cpu_threads": None},
    "1 process 1 thread": {"workers": 1, "cpu_threads": 1},
    "2 workers": {"workers": 2, "cpu_threads": None},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="640x480,1920x1080")
    parser.add_argument("--frames", default="240,96", help="frames per size (comma-separated, one per size)")
    parser.add_argument("--segment-frames", default="60,24", help="segment length per size")
    parser.add_argument("--gop", type=int, default=12, help="keyframe interval of the input")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"some of: {', '.join(VARIANTS)}")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    import torch
    from conftest import decode_all

    from remaster.device import cores
    from remaster.run.pipeline import colorize_video, make_config

    sizes = args.sizes.split(",")
    frames = [int(v) for v in args.frames.split(",")]
    segment_frames = [int(v) for v in args.segment_frames.split(",")]
    variants = [v.strip() for v in args.variants.split(",")]
    folder = Path(tempfile.mkdtemp(prefix="bench-workers-"))
    rows = []
    for k, size in enumerate(sizes):
        width, height = map(int, size.split("x"))
        n = frames[min(k, len(frames) - 1)]
        seg = segment_frames[min(k, len(segment_frames) - 1)]
        source = make_input(folder / f"in-{size}.mp4", width, height, n, args.gop)
        times: dict[str, list[float]] = {v: [] for v in variants}
        segments, reference = 0, None
        for _repeat in range(args.repeats):
            for name in variants:
                options = VARIANTS[name]
                out = folder / f"out-{size}-{name.replace(' ', '').replace(',', '')}.mp4"
                config = make_config(flow="dis", device="cpu", segment_frames=seg, cpu_threads=options["cpu_threads"])
                started = time.perf_counter()
                report = colorize_video(source, out, config, progress=False, force=True, workers=options["workers"])
                times[name].append(time.perf_counter() - started)
                segments = report.segments
                # Lossy x264 here (the default CRF 18) is not bit-reproducible run to run on this
                # build (test_resume.py), so frame count and times are what is checked.
                decoded = decode_all(out)
                if reference is None:
                    reference = (len(decoded.planes), decoded.times)
                assert (len(decoded.planes), decoded.times) == reference, f"{name}: a different film"
                out.unlink()
                print(f"{size} {name}: {times[name][-1]:.1f} s", file=sys.stderr, flush=True)
        base = min(times[variants[0]])
        for name in variants:
            best = min(times[name])
            rows.append(
                {
                    "size": size,
                    "frames": n,
                    "segments": segments,
                    "run": name,
                    "seconds": round(best, 2),
                    "fps": round(n / best, 2),
                    "speed vs 1 process": round(base / best, 3),
                    "all seconds": [round(t, 2) for t in times[name]],
                }
            )
    machine = {
        "cpu": _cpu_name(),
        "cores": cores(),
        "load_1min_at_end": round(os.getloadavg()[0], 2),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
    if args.json:
        print(json.dumps({"machine": machine, "options": vars(args), "rows": rows}, indent=2))
        return
    print(f"machine: {machine}")
    print(f"{'size':<10} {'frames':>6} {'segs':>4}  {'run':<22} {'seconds':>8} {'fps':>7} {'vs 1 process':>13}")
    for r in rows:
        print(
            f"{r['size']:<10} {r['frames']:>6} {r['segments']:>4}  {r['run']:<22} {r['seconds']:>8.2f} "
            f"{r['fps']:>7.2f} {r['speed vs 1 process']:>12.3f}x"
        )


def make_input(path: Path, width: int, height: int, frames: int, gop: int) -> Path:
    """A black-and-white film: the data pack's book.mkv (scaled, played back and forth) when it
    is there, else moving shapes; gray pictures in yuv420p H.264 at 25 fps with a keyframe every
    `gop` frames, and AAC sound."""
    import av
    import numpy as np

    clip = ROOT.parent / "shared" / "data" / "clips" / "book.mkv"
    pictures = []
    if clip.is_file():
        with av.open(str(clip)) as container:
            for frame in container.decode(video=0):
                pictures.append(frame.reformat(width=width, height=height, format="gray").to_ndarray())
                if len(pictures) >= frames:
                    break
    y, x = np.mgrid[0:height, 0:width]
    with av.open(str(path), "w") as out:
        video = out.add_stream(
            "libx264", rate=25, options={"crf": "20", "preset": "veryfast", "g": str(gop), "keyint_min": str(gop)}
        )
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        sound = out.add_stream("aac", rate=48000, layout="stereo")
        for i in range(frames):
            if pictures:
                period = max(1, 2 * len(pictures) - 2)
                k = i % period
                gray = pictures[k if k < len(pictures) else period - k]
            else:
                image = (60 + 100 * x / width + 40 * np.sin(y / 23.0)).astype(np.float32)
                image[(x - (i * 7) % width) ** 2 + (y - height // 2) ** 2 < (height // 6) ** 2] = 220
                gray = np.clip(image + np.random.default_rng(i).normal(0, 4, image.shape), 0, 255).astype(np.uint8)
            frame = av.VideoFrame.from_ndarray(gray, format="gray").reformat(format="yuv420p")
            frame.pts = i
            for packet in video.encode(frame):
                out.mux(packet)
        for packet in video.encode(None):
            out.mux(packet)
        samples = int(48000 * frames / 25)
        tone = (0.2 * np.sin(2 * np.pi * 440 * np.arange(samples) / 48000)).astype(np.float32)
        for start in range(0, samples, 1024):
            chunk = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(np.repeat(tone[None, start : start + 1024], 2, axis=0)),
                format="fltp",
                layout="stereo",
            )
            chunk.sample_rate, chunk.pts = 48000, start
            for packet in sound.encode(chunk):
                out.mux(packet)
        for packet in sound.encode(None):
            out.mux(packet)
    return path


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


if __name__ == "__main__":
    main()
