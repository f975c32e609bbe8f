"""Peak memory of `remaster colorize` for a short and a long film: does it grow with length?

DESIGN promise 4 says memory depends on batch size and queue depth, never on the film's length.
This runs `python -m remaster.cli.main colorize` in a child process on synthetic gray films (moving
shapes with grain, H.264 yuv420p, AAC stereo sound, made here with PyAV in a temporary folder) and
reports the child's peak resident set size (the kernel's max RSS, from `wait4`), plus its RSS and
thread count sampled from /proc while it runs.

    python benchmarks/bench_memory.py                      # 640x480: 5 s vs 240 s (6000 frames)
    python benchmarks/bench_memory.py --seconds-long 120 --flow none
    python benchmarks/bench_memory.py --sizes 640x480,1920x1080 --seconds-long 60
    python benchmarks/bench_memory.py --model models/remaster-default.safetensors --json

Runs one child at a time (the CPU is the limit). At 640x480 on a busy 2-core machine a film
runs at roughly 10 frames/s, so the default long film takes about 10 minutes; 1080p is several
times slower, hence `--seconds-long`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import av
import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def gray_frame(index: int, width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """Luma `(H, W)` uint8: a gradient, a moving square and disc, ground, grain."""
    y, x = np.mgrid[0:height, 0:width]
    image = (60 + 120 * x / max(width - 1, 1) + 40 * y / max(height - 1, 1)).astype(np.float32)
    image[height * 2 // 3 :] = 90
    side = max(4, min(width, height) // 4)
    left = (3 * index) % max(1, width - side)
    image[height // 6 : height // 6 + side, left : left + side] = 200
    cx, cy = width - 1 - (2 * index) % width, height // 2
    image[(x - cx) ** 2 + (y - cy) ** 2 < (side // 2) ** 2] = 40
    image += rng.normal(0, 4, image.shape).astype(np.float32)
    return np.clip(image, 16, 235).astype(np.uint8)


def make_film(path: Path, width: int, height: int, seconds: float, rate: int = 25) -> int:
    """A gray H.264 (yuv420p, neutral chroma) film with AAC stereo sound, interleaved; returns
    its frame count. Encoded with x264 ultrafast and a keyframe every 2 s to be quick to make."""
    frames = round(seconds * rate)
    sample_rate, step = 44100, 1024
    out = av.open(str(path), "w")
    video = out.add_stream("libx264", rate=rate, options={"crf": "23", "preset": "ultrafast", "g": str(2 * rate)})
    video.width, video.height, video.pix_fmt = width, height, "yuv420p"
    audio = out.add_stream("aac", rate=sample_rate, layout="stereo")
    rng = np.random.default_rng(0)
    chroma = np.full((height // 2, width // 2), 128, np.uint8)
    samples_done = 0
    for i in range(frames):
        luma = gray_frame(i, width, height, rng)
        frame = av.VideoFrame(width, height, "yuv420p")
        for plane, data in zip(frame.planes, (luma, chroma, chroma)):
            view = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)
            view[:, : data.shape[1]] = data
        frame.pts = i
        for packet in video.encode(frame):
            out.mux(packet)
        # sound up to this frame's end, so the file is interleaved as real films are
        while samples_done < (i + 1) * sample_rate // rate:
            t = (samples_done + np.arange(step)) / sample_rate
            tone = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
            chunk = av.AudioFrame.from_ndarray(np.stack([tone, tone]), format="fltp", layout="stereo")
            chunk.sample_rate = sample_rate
            chunk.pts = samples_done
            for packet in audio.encode(chunk):
                out.mux(packet)
            samples_done += step
    for stream in (video, audio):
        for packet in stream.encode(None):
            out.mux(packet)
    out.close()
    return frames


def _status(pid: int) -> tuple[int, int] | None:
    """(VmRSS in KiB, threads) of a live process, from /proc."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    values = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "Threads"):
            values[key] = int(rest.split()[0])
    return values.get("VmRSS", 0), values.get("Threads", 0)


def run_colorize(film: Path, output: Path, args, env: dict, interval: float = 1.0) -> dict:
    """Run the CLI in a child; its peak RSS (wait4's ru_maxrss), wall time and /proc samples."""
    command = [
        sys.executable,
        "-m",
        "remaster.cli.main",
        "colorize",
        str(film),
        "-o",
        str(output),
        "--force",
        "--json",
        "--flow",
        args.flow,
        "--cpu-threads",
        str(args.cpu_threads),
    ]
    if args.model:
        command += ["--model", str(args.model)]
    command += args.extra
    log = output.with_suffix(".log")
    started = time.perf_counter()
    with open(log, "w+b") as stdout_file, open(log.with_suffix(".err"), "w+b") as stderr_file:
        child = subprocess.Popen(command, stdout=stdout_file, stderr=stderr_file, env=env, cwd=ROOT)
        samples: list[tuple[float, int, int]] = []  # (seconds, RSS KiB, threads)
        done = threading.Event()

        def sample():
            while not done.is_set():
                status = _status(child.pid)
                if status:
                    samples.append((round(time.perf_counter() - started, 1), *status))
                done.wait(interval)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            _, status, usage = os.wait4(child.pid, 0)  # reaps it: the kernel's peak RSS comes with it
        except BaseException:
            child.kill()
            child.wait()
            raise
        finally:
            done.set()
            sampler.join()
        child.returncode = os.waitstatus_to_exitcode(status)
        stdout_file.seek(0)
        stderr_file.seek(0)
        stdout, stderr = stdout_file.read(), stderr_file.read()
    peak_kib = usage.ru_maxrss  # KiB on Linux
    seconds = time.perf_counter() - started
    if child.returncode != 0:
        raise SystemExit(f"remaster failed ({child.returncode}) on {film.name}:\n{stderr.decode()[-2000:]}")
    report = json.loads(stdout)
    return {
        "peak_mb": peak_kib / 1024,
        "seconds": seconds,
        "frames": report["frames"],
        "segments": report.get("segments", 1),
        "samples": samples,
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds-short", type=float, default=5.0, help="the short film's length (default 5 s)")
    parser.add_argument(
        "--seconds-long", type=float, default=240.0, help="the long film's length (default 240 s = 6000 frames)"
    )
    parser.add_argument("--sizes", default="640x480", help="comma-separated WxH list (default 640x480)")
    parser.add_argument("--rate", type=int, default=25, help="frames per second of the films (default 25)")
    parser.add_argument(
        "--flow", default="dis", help="--flow for remaster (default dis; none skips the temporal stage)"
    )
    parser.add_argument("--cpu-threads", type=int, default=1, help="--cpu-threads for remaster (default 1)")
    parser.add_argument(
        "--model", default=None, help="a .safetensors model (default: a random-weights model made here)"
    )
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment for the child (repeatable), e.g. MALLOC_ARENA_MAX=2",
    )
    parser.add_argument(
        "--films", default=None, help="folder to keep the films in and reuse them (default: a temporary one)"
    )
    parser.add_argument("--trace", action="store_true", help="print the RSS/thread samples of each run")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("extra", nargs="*", help="more remaster colorize options, after --")
    args = parser.parse_args(argv)

    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    for item in args.env:
        name, _, value = item.partition("=")
        env[name] = value

    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        tmp = Path(tmp)
        films = Path(args.films) if args.films else tmp
        films.mkdir(parents=True, exist_ok=True)
        if args.model is None:
            sys.path.insert(0, str(ROOT))
            from remaster.net.colorizer import Colorizer, InferenceConfig, save_weights

            args.model = tmp / "random.safetensors"
            save_weights(Colorizer.random(seed=0).net, args.model, inference=InferenceConfig())
        rows = []
        for size in args.sizes.split(","):
            width, height = (int(v) for v in size.lower().split("x"))
            for label, seconds in (("short", args.seconds_short), ("long", args.seconds_long)):
                film = films / f"gray-{width}x{height}-{seconds:g}s.mp4"
                if not film.exists():
                    t = time.perf_counter()
                    make_film(film, width, height, seconds, args.rate)
                    print(f"made {film.name} in {time.perf_counter() - t:.0f} s", file=sys.stderr)
                result = run_colorize(film, tmp / f"out-{label}.mp4", args, env)
                result.update(size=f"{width}x{height}", film=label, film_seconds=seconds)
                rows.append(result)
                print(
                    f"{result['size']} {label}: {result['frames']} frames, peak {result['peak_mb']:.0f} MB, "
                    f"{result['seconds']:.0f} s",
                    file=sys.stderr,
                )
                if args.trace:
                    for t, rss, threads in result["samples"]:
                        print(f"  {t:7.1f} s  {rss / 1024:7.0f} MB  {threads:3d} threads", file=sys.stderr)

    if args.json:
        print(json.dumps([{k: v for k, v in r.items() if k != "samples"} for r in rows], indent=1))
        return
    print(
        f"{'size':>10} {'film':>6} {'frames':>7} {'segments':>8} {'peak RSS MB':>12} {'max threads':>11} {'seconds':>8}"
    )
    for r in rows:
        threads = max((s[2] for s in r["samples"]), default=0)
        print(
            f"{r['size']:>10} {r['film']:>6} {r['frames']:>7} {r['segments']:>8} {r['peak_mb']:>12.0f} {threads:>11} "
            f"{r['seconds']:>8.0f}"
        )
    for size in dict.fromkeys(r["size"] for r in rows):
        short, long = (next(r for r in rows if r["size"] == size and r["film"] == f) for f in ("short", "long"))
        per_frame = (long["peak_mb"] - short["peak_mb"]) * 1024 / max(long["frames"] - short["frames"], 1)
        print(
            f"{size}: long/short peak RSS {long['peak_mb'] / short['peak_mb']:.2f}x ({per_frame:+.1f} KB per extra "
            "frame)"
        )


if __name__ == "__main__":
    main()
