"""Restoration against FFmpeg's filters on the data pack's clips with synthetic old-film damage.

For each clip: the first `--frames` frames, luma as 8-bit full-range codes (the clean truth),
damaged by benchmarks/damage.py (seeded: per-frame gain ±18% and offset ±8 codes, ~12 one-frame
specks a frame, Gaussian grain σ 5 codes). Then, on the same damaged frames:

- remaster's restoration (the `Restorer` the pipeline runs as the chain's front, DIS flow,
  one torch thread), stage by stage and all three;
- FFmpeg's filters through PyAV's filter graph: deflicker, deflicker + tmedian + atadenoise
  (the chain the issue names), and with nlmeans / bm3d in place of atadenoise.

Reported: luma PSNR and SSIM against the clean frames (mean over frames), and frames per second
of each method on this machine, measured in the same process, methods interleaved clip by clip.
`--pipeline` also times whole colorize runs of one 640x480 clip (book.mkv) with and without
`--restore all`, alternating, against a plain FFV1 transcode.

    python benchmarks/bench_restore.py --frames 90 --out benchmarks/RESULTS-restore.md
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from damage import Damage, damage

from remaster.media.formats import FrameBatch, SourceFormat
from remaster.media.reader import VideoReader
from remaster.quality import psnr, ssim
from remaster.stages.flow import make_flow_provider
from remaster.stages.restoration.stage import RestoreConfig, Restorer
from remaster.stages.shots import ShotDetector

CLIPS = Path(__file__).resolve().parents[2] / "shared" / "data" / "clips"
DEFAULT_CLIPS = "book.mkv,sister.mkv,hungry.mkv,car-detection.mp4,bottle-detection.mp4,one-by-one-person-detection.mp4"

OURS = {"ours: deflicker": "deflicker", "ours: deflicker+dust": "deflicker,dust", "ours: all three": "all"}
FFMPEG = {
    "ffmpeg: deflicker": [("deflicker", "size=15:mode=pm")],
    "ffmpeg: deflicker+tmedian+atadenoise": [
        ("deflicker", "size=15:mode=pm"),
        ("tmedian", "radius=1"),
        ("atadenoise", ""),
    ],
    "ffmpeg: deflicker+tmedian+nlmeans": [
        ("deflicker", "size=15:mode=pm"),
        ("tmedian", "radius=1"),
        ("nlmeans", "s=3"),
    ],
    "ffmpeg: deflicker+tmedian+bm3d": [("deflicker", "size=15:mode=pm"), ("tmedian", "radius=1"), ("bm3d", "sigma=5")],
}


def write_gray(frames: np.ndarray, path: Path, rate: int = 30) -> None:
    """A gray FFV1 film of `frames (T, H, W)` uint8 luma: the damaged input of a whole run."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("ffv1", rate=rate)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "gray"
        for i, picture in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(picture, format="gray")
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


def clean_frames(path: Path, frames: int) -> np.ndarray:
    """`(N, H, W)` uint8 full-range luma codes of the clip's first `frames` frames."""
    out = []
    with VideoReader(path, max_frames=frames) as reader:
        for batch in reader.batches(16, (1, 1)):
            out.append((batch.luma()[:, 0] * 255).round().to(torch.uint8).numpy())
    return np.concatenate(out)[:frames]


def run_ours(frames: np.ndarray, stages: str, **options) -> np.ndarray:
    n, h, w = frames.shape
    source = SourceFormat("gray", w, h, 8, True, "bt601", (0, 0), False)
    restorer = Restorer(
        RestoreConfig(stages=stages, **options),
        shots=ShotDetector(),
        shot_size=lambda hh, ww: (256, round(256 * ww / hh)),
        flow=make_flow_provider("dis"),
        device=torch.device("cpu"),
    )

    def batches():
        for i in range(0, n, 8):
            y = torch.from_numpy(np.ascontiguousarray(frames[i : i + 8]))[:, None]
            yield FrameBatch(y, tuple(range(i, i + len(y))), Fraction(1, 25), source, (1, 1), index=i)

    return np.concatenate([b.y[:, 0].numpy() for b, *_ in restorer.run(batches())])


def run_ffmpeg(frames: np.ndarray, chain: list[tuple[str, str]]) -> np.ndarray:
    """The frames through an FFmpeg filter graph (gray, full range); frames the graph drops at
    the end (atadenoise keeps its last few) are the damaged ones, so nothing is scored unseen."""
    _, h, w = frames.shape
    graph = av.filter.Graph()
    last = graph.add_buffer(width=w, height=h, format="gray", time_base=Fraction(1, 25))
    for name, args in chain:
        node = graph.add(name, args)
        last.link_to(node)
        last = node
    sink = graph.add("buffersink")
    last.link_to(sink)
    graph.configure()
    out = frames.copy()

    def pull():
        while True:
            try:
                frame = graph.pull()
            except (av.BlockingIOError, av.EOFError):
                return
            out[int(frame.pts)] = frame.to_ndarray()[:h, :w]

    for i, picture in enumerate(frames):
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(picture), format="gray")
        frame.pts, frame.time_base = i, Fraction(1, 25)
        graph.push(frame)
        pull()
    graph.push(None)
    pull()
    return out


def scores(frames: np.ndarray, clean: np.ndarray) -> tuple[float, float]:
    a = torch.from_numpy(frames).float()[:, None] / 255
    b = torch.from_numpy(clean).float()[:, None] / 255
    return float(psnr(a, b).mean()), float(ssim(a, b).mean())


def quality(args) -> list[str]:
    rows: dict[str, list] = {}
    names = [c for c in args.clips.split(",") if (CLIPS / c).is_file()]
    methods = ["damaged"] + list(OURS) + [m for m in FFMPEG if m.split("+")[-1] not in args.skip]
    for clip in names:
        clean = clean_frames(CLIPS / clip, args.frames)
        damaged, _ = damage(clean, seed=args.seed, config=Damage())
        for method in methods:
            started = time.perf_counter()
            if method == "damaged":
                out = damaged
            elif method in OURS:
                out = run_ours(damaged, OURS[method])
            else:
                out = run_ffmpeg(damaged, FFMPEG[method])
            seconds = time.perf_counter() - started
            p, s = scores(out, clean)
            rows.setdefault(method, []).append((clip, p, s, len(clean) / seconds if method != "damaged" else None))
            print(f"{clip:34s} {method:40s} {p:6.2f} dB  SSIM {s:.3f}  {len(clean) / seconds:7.1f} fps", flush=True)
    lines = [
        f"| method | {' | '.join(n.split('.')[0] for n in names)} | mean PSNR | mean SSIM | fps (mean) |",
        "|---" * (len(names) + 4) + "|",
    ]
    for method, values in rows.items():
        cells = " | ".join(f"{p:.2f} / {s:.3f}" for _, p, s, _ in values)
        fps = [f for *_, f in values if f]
        lines.append(
            f"| {method} | {cells} | {np.mean([v[1] for v in values]):.2f} | {np.mean([v[2] for v in values]):.3f} | "
            f"{np.mean(fps):.1f} |"
            if fps
            else f"| {method} | {cells} | {np.mean([v[1] for v in values]):.2f} | "
            f"{np.mean([v[2] for v in values]):.3f} | - |"
        )
    return lines


def pipeline_speed(args) -> list[str]:
    """Whole colorize runs of book.mkv (640x480, damaged) with and without --restore all,
    alternating, against a plain FFV1 transcode of the same frames: fps and ratios."""
    import tempfile

    from remaster.net.colorizer import Colorizer
    from remaster.run.config import make_config
    from remaster.run.pipeline import colorize_video

    clean = clean_frames(CLIPS / "book.mkv", args.frames)
    damaged, _ = damage(clean, seed=args.seed)
    folder = Path(tempfile.mkdtemp(prefix="bench-restore-"))
    source = folder / "damaged.mkv"
    write_gray(damaged, source, rate=25)
    colorizer = Colorizer.load(None, device="cpu")
    times: dict[str, list[float]] = {"transcode": [], "colorize": [], "colorize --restore all": []}
    cpu: dict[str, list[float]] = {k: [] for k in times}  # CPU seconds of this process (all its threads)
    stage: dict[str, dict] = {}
    for _ in range(args.repeats):
        started, cpu_started = time.perf_counter(), time.process_time()
        with av.open(str(source)) as inp, av.open(str(folder / "copy.mkv"), "w") as out:
            stream = out.add_stream("ffv1", rate=25)
            stream.width, stream.height, stream.pix_fmt = damaged.shape[2], damaged.shape[1], "yuv420p"
            for frame in inp.decode(video=0):
                for packet in stream.encode(frame.reformat(format="yuv420p")):
                    out.mux(packet)
            for packet in stream.encode(None):
                out.mux(packet)
        times["transcode"].append(time.perf_counter() - started)
        cpu["transcode"].append(time.process_time() - cpu_started)
        for name, restore in (("colorize", None), ("colorize --restore all", "all")):
            config = make_config(codec="ffv1", flow="dis", cpu_threads=1, restore={"stages": restore})
            cpu_started = time.process_time()
            report = colorize_video(source, folder / "out.mkv", config, force=True, progress=False, colorizer=colorizer)
            cpu[name].append(time.process_time() - cpu_started)
            times[name].append(report.seconds)
            stage[name] = report.stage_fps
    n = len(damaged)
    best = {k: min(v) for k, v in times.items()}
    best_cpu = {k: min(v) for k, v in cpu.items()}
    # CPU seconds do not grow when other jobs take the cores (wall time does): frames per CPU
    # second is about what one idle core gives, a floor for two.
    lines = [
        f"| run (book.mkv, 640x480, {n} frames) | best of {args.repeats}, wall s | fps (wall) | CPU s | frames per "
        "CPU s | x transcode (wall) |",
        "|---|---|---|---|---|---|",
    ]
    for name, seconds in best.items():
        lines.append(
            f"| {name} | {seconds:.2f} | {n / seconds:.1f} | {best_cpu[name]:.2f} | {n / best_cpu[name]:.1f} | "
            f"{seconds / best['transcode']:.1f} |"
        )
    lines.append("")
    lines.append(
        "Stage fps with --restore all: "
        + ", ".join(f"{k} {v}" for k, v in stage["colorize --restore all"].items() if v)
    )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", default=DEFAULT_CLIPS)
    parser.add_argument("--frames", type=int, default=90)
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--skip", default="", help="FFmpeg filters to leave out (e.g. bm3d,nlmeans): they are slow")
    parser.add_argument(
        "--pipeline", action="store_true", help="also time whole colorize runs with and without --restore"
    )
    parser.add_argument("--no-quality", action="store_true", help="only the --pipeline timing")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)  # a busy 2-core machine: one thread is fastest (benchmarks/RESULTS.md)
    if not CLIPS.is_dir():
        sys.exit(f"bench_restore: the data pack's clips are not at {CLIPS}")
    machine = f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch thread, {sys.platform}"
    lines = [
        f"Machine: {machine}; seed {args.seed}; first {args.frames} frames of each clip; PSNR dB / SSIM of the luma "
        "against the clean clip.",
        "",
    ]
    if not args.no_quality:
        lines += quality(args)
    if args.pipeline:
        lines += ["", *pipeline_speed(args)]
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
