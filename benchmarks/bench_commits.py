"""Two versions of remaster on the same films, alternating: speed, file size and peak memory.

    python benchmarks/bench_commits.py --old df25190                       # vs the working tree
    python benchmarks/bench_commits.py --old df25190 --new HEAD --frames 250,1500 --repeats 2

Each version runs `remaster colorize` in a fresh process (the command users run, with the
shipped model, DIS flow and x264 CRF 18), one version after the other for every repeat, so both
see the same machine state; a noisy shared machine moves both. `--old`/`--new` name git
revisions, checked out into temporary worktrees (`--new` defaults to this working tree). The
input is a black-and-white film at the size (a data-pack clip scaled, else moving shapes) with
AAC sound, made by bench_video.make_input. Reported: best seconds and fps per version, the
ratio new/old of speed, of output size and of peak RSS.
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_video import make_input  # noqa: E402

# The child runs the command and prints its peak RSS (VmHWM of that very process).
_CHILD = """
import sys
from pathlib import Path
try:
    from remaster.cli.main import main  # the layered package (issue 19)
except ImportError:
    from remaster.cli import main  # revisions before it
try:
    main(sys.argv[1:], standalone_mode=False)
finally:
    peak = next(l for l in Path('/proc/self/status').read_text().splitlines() if l.startswith('VmHWM:'))
    print('PEAK', int(peak.split()[1]) // 1024, file=sys.stderr)
"""


def checkout(revision: str | None, folder: Path) -> Path:
    if revision is None:
        return ROOT
    path = folder / f"rev-{revision.replace('/', '_')}"
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(path), revision], check=True, capture_output=True
    )
    return path


def run(tree: Path, film: Path, out: Path, model: Path, threads: int) -> dict:
    args = [
        "colorize",
        str(film),
        "-o",
        str(out),
        "--model",
        str(model),
        "--device",
        "cpu",
        "--flow",
        "dis",
        "--json",
        "--force",
        "--cpu-threads",
        str(threads),
    ]
    env = {**os.environ, "PYTHONPATH": str(tree)}
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", _CHILD, *args], capture_output=True, text=True, env=env, cwd=tree)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{tree}: run failed: {result.stderr.strip()[-500:]}")
    peak = int(next(line for line in result.stderr.splitlines() if line.startswith("PEAK")).split()[1])
    return {"seconds": seconds, "bytes": out.stat().st_size, "peak_rss_mib": peak}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--old", required=True, help="git revision of the baseline")
    parser.add_argument("--new", default=None, help="git revision to compare (default: this working tree)")
    parser.add_argument("--size", default="640x480")
    parser.add_argument("--frames", default="250,1500", help="film lengths in frames (25 fps)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--cpu-threads", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    width, height = map(int, args.size.split("x"))
    folder = Path(tempfile.mkdtemp(prefix="bench-commits-"))
    model = ROOT / "models" / "remaster-default.safetensors"
    trees = {"old": checkout(args.old, folder), "new": checkout(args.new, folder)}
    rows = []
    try:
        for frames in (int(n) for n in args.frames.split(",")):
            film = make_input(folder / f"film-{frames}.mp4", width, height, frames)
            results: dict[str, list[dict]] = {"old": [], "new": []}
            for repeat in range(args.repeats):
                for name in ("old", "new") if repeat % 2 == 0 else ("new", "old"):
                    out = folder / f"out-{name}-{frames}.mp4"
                    results[name].append(run(trees[name], film, out, model, args.cpu_threads))
                    print(f"{frames} frames, {name}, repeat {repeat}: {results[name][-1]}", file=sys.stderr)
            best = {name: min(r["seconds"] for r in runs) for name, runs in results.items()}
            rows.append(
                {
                    "frames": frames,
                    "old_fps": round(frames / best["old"], 2),
                    "new_fps": round(frames / best["new"], 2),
                    "speed_new_vs_old": round(best["old"] / best["new"], 3),
                    "size_new_vs_old": round(results["new"][-1]["bytes"] / results["old"][-1]["bytes"], 4),
                    "peak_rss_mib_old": max(r["peak_rss_mib"] for r in results["old"]),
                    "peak_rss_mib_new": max(r["peak_rss_mib"] for r in results["new"]),
                }
            )
    finally:
        for tree in trees.values():
            if tree != ROOT:
                subprocess.run(
                    ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], capture_output=True
                )
    machine = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(), "load": os.getloadavg()}
    if args.json:
        print(
            json.dumps({"machine": machine, "old": args.old, "new": args.new or "working tree", "rows": rows}, indent=2)
        )
        return
    print(f"{args.size}, old {args.old} vs new {args.new or 'working tree'}; machine {machine}")
    print("| frames | old fps | new fps | speed new/old | size new/old | peak RSS old | peak RSS new |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['frames']} | {r['old_fps']} | {r['new_fps']} | {r['speed_new_vs_old']} | {r['size_new_vs_old']} | "
            f"{r['peak_rss_mib_old']} MiB | {r['peak_rss_mib_new']} MiB |"
        )


if __name__ == "__main__":
    main()
