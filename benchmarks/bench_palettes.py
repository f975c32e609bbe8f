"""A reference of no frame (issue 20, item 4): a picture of the same place as a shot's palette.

    python benchmarks/bench_palettes.py                      # every data-pack clip, first 60 frames
    python benchmarks/bench_palettes.py --clips sister.mkv --frames 30

For each real color clip of ../shared/data/clips the film is its first `--frames` frames made gray
(bench_keyframes.write_gray). The reference is a picture of the same place that is *no frame of
the film*: the clip's own last frame (past the film's end; another moment, another framing),
made into a period photograph by a seeded generator: cropped to 4:5 (another aspect), another
tone curve (gamma 1.3 with blacks lifted 4%), 20% less saturation, JPEG quality 75. It is
handed over as `palette-<clip>.jpg` (`--keyframes`; matched to the frame it resembles most,
run/keyframes.py). The control, "wrong place": the same treatment of the *next* clip's last
frame, named alike (what a colorist who names the wrong picture a palette gets).

Reported per clip, over every frame: PSNR (RGB, dB) against the truth for the gray film, the
automatic mode, the palette from the same place and from the wrong place, and each one's
colorfulness as a ratio to the truth's. remaster runs in one process (CPU, DIS, FFV1, 4:2:0).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_keyframes import CLIPS, ROOT, frames_rgb, write_gray  # noqa: E402


def last_frame(path: Path) -> np.ndarray:
    import av

    last = None
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            last = frame
    return last.to_ndarray(format="rgb24")


def period_photo(rgb: np.ndarray, seed: int) -> np.ndarray:
    """`rgb` as an old photograph of the place: cropped to 4:5 at a seeded place, toned, paler."""
    rng = np.random.default_rng(seed)
    h, w = rgb.shape[:2]
    cw = min(w, round(h * 4 / 5))
    x = int(rng.integers(0, w - cw + 1))
    image = rgb[:, x : x + cw].astype(np.float32) / 255
    image = 0.04 + 0.96 * image**1.3  # another tone curve, blacks lifted
    gray = image.mean(-1, keepdims=True)
    image = gray + 0.8 * (image - gray)  # 20% less saturation
    return (image.clip(0, 1) * 255).round().astype(np.uint8)


def score(output: list[np.ndarray], truth: list[np.ndarray]) -> dict:
    from remaster.quality import colorfulness, psnr

    a = torch.from_numpy(np.stack(output)).permute(0, 3, 1, 2).float() / 255
    b = torch.from_numpy(np.stack(truth)).permute(0, 3, 1, 2).float() / 255
    return {
        "psnr": round(float(psnr(a, b).mean()), 2),
        "colorfulness_ratio": round(float(colorfulness(a).mean() / colorfulness(b).mean().clamp_min(1e-6)), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--clips", default=None, help="comma-separated clip names (default: all in the data pack)")
    parser.add_argument("--model", default=str(ROOT / "models" / "remaster-default.safetensors"))
    args = parser.parse_args()
    if not CLIPS.is_dir():
        raise SystemExit(f"no data pack at {CLIPS}: nothing to measure")
    from remaster.net.colorizer import Colorizer
    from remaster.run.config import make_config
    from remaster.run.pipeline import colorize_video

    torch.set_num_threads(max(1, (os.cpu_count() or 2) // 2))
    colorizer = Colorizer.load(args.model, device="cpu")
    every = sorted(p.name for p in CLIPS.iterdir())
    names = args.clips.split(",") if args.clips else every
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-palettes-") as tmp:
        tmp = Path(tmp)
        for n, name in enumerate(names):
            stem = Path(name).stem
            truth = frames_rgb(CLIPS / name, args.frames)
            film = tmp / f"{stem}-gray.mkv"
            write_gray(truth, film)
            gray = [np.repeat(cv2.cvtColor(im, cv2.COLOR_RGB2GRAY)[..., None], 3, -1) for im in truth]
            row = {"clip": name, "frames": len(truth), "gray": score(gray, truth)}
            other = every[(every.index(name) + 1) % len(every)]
            for mode, source in (("auto", None), ("palette", name), ("wrong_place", other)):
                folder = None
                if source is not None:
                    folder = tmp / f"{stem}-{mode}"
                    folder.mkdir()
                    photo = period_photo(last_frame(CLIPS / source), seed=20 + n)
                    cv2.imwrite(
                        str(folder / f"palette-{Path(source).stem}.jpg"),
                        cv2.cvtColor(photo, cv2.COLOR_RGB2BGR),
                        [cv2.IMWRITE_JPEG_QUALITY, 75],
                    )
                out = tmp / f"{stem}-{mode}.mkv"
                report = colorize_video(
                    film,
                    out,
                    make_config(flow="dis", codec="ffv1"),
                    progress=False,
                    colorizer=colorizer,
                    keyframes=folder,
                )
                row[mode] = score(frames_rgb(out, args.frames), truth)
                if source is not None:
                    row[mode]["placed_at"] = [k["frame"] for k in report.keyframes]
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
    machine = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count()}
    print(f"machine: {machine}; first {args.frames} frames of each clip; PSNR (dB) / colorfulness vs the truth")
    modes = ("gray", "auto", "palette", "wrong_place")
    print("| clip | " + " | ".join(modes) + " |")
    print("|---" * (1 + len(modes)) + "|")
    for r in rows:
        cells = " | ".join(f"{r[m]['psnr']} / {r[m]['colorfulness_ratio']}" for m in modes)
        print(f"| {r['clip']} | {cells} |")
    print("| mean | " + " | ".join(f"{np.mean([r[m]['psnr'] for r in rows]):.2f}" for m in modes) + " |")
    beats = lambda m, base: sum(r[m]["psnr"] > r[base]["psnr"] for r in rows)
    print(
        f"palette beats auto on {beats('palette', 'auto')}/{len(rows)}, gray on {beats('palette', 'gray')}/{len(rows)}"
    )
    worst = min(r["palette"]["psnr"] - r["auto"]["psnr"] for r in rows)
    print(f"worst palette - auto: {worst:+.2f} dB")


if __name__ == "__main__":
    main()
