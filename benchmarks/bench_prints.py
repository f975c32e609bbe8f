"""Colors from a print (issue 20, item 8): print-like references through `remaster colorize --keyframes`.

    python benchmarks/bench_prints.py                        # 3 .mkv clips + car-detection.mp4, 60 frames each
    python benchmarks/bench_prints.py --frames 120 --clips all --json
    python benchmarks/bench_prints.py --sheet docs/prints-sheet.jpg     # and a contact sheet of 3 clips

For each data-pack clip (../shared/data/clips; the color original is the truth; its first
`--frames` frames), the clip is made gray, cut into shots by remaster's shot detector, and the
true colors of each shot's first frame are made into a print-like reference by this script's own
generator (seeded: `--seed`): another tone curve per print (a gamma of 0.7-1.4, blacks lifted by
0-6%, an S-curve of 0-30%, the same for R, G and B), 15% less saturation, cropped unevenly by 1-5%
a side, scaled to 0.8x, saved as JPEG quality 80 under a name that is no frame number. Then:
  - auto: `remaster colorize` (CPU, DIS flow, FFV1), no keyframes;
  - prints: the same with `--keyframes` of the prints: matched, registered, carried;
  - naive carry, perfectly registered: the same print files put back on their frames by the
    geometry that made them (edges repeated where the crop took picture away), their raw Cb/Cr on
    the truth's luma carried along chained DIS flow (bench_keyframes.chained_carry, 4:4:4).
Reported per clip, over every frame that is not the first of its shot: PSNR (RGB) against the
truth, where each print was matched and how it registered (the run's JSON report), and the CPU
time (user + system of the `remaster` process, model loading included) of prints against auto.
The data pack's clips are Intel's sample videos, CC BY 4.0: credit them where a sheet is shown.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_keyframes import CLIPS, ChromaWarp, chained_carry, frames_rgb, scores, shot_starts, write_gray  # noqa: E402

DEFAULT_CLIPS = "book.mkv,hungry.mkv,sister.mkv,car-detection.mp4"
SCALE, QUALITY, DESATURATE = 0.8, 80, 0.15


def tone_curve(rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """A print's tone curve: a 256-entry lookup (uint8), and its description."""
    gamma, lift, s = rng.uniform(0.7, 1.4), rng.uniform(0, 0.06), rng.uniform(0, 0.3)
    x = np.linspace(0, 1, 256)
    y = x**gamma
    y = (1 - s) * y + s * (0.5 - 0.5 * np.cos(np.pi * y))  # an S-curve mixed in
    y = lift + (1 - lift) * y
    return (y * 255 + 0.5).clip(0, 255).astype(np.uint8), f"gamma {gamma:.2f}, lift {lift:.3f}, S {s:.2f}"


def make_print(rgb: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """A print-like reference of `rgb` (uint8 RGB): returns its RGB after JPEG, and how it was made."""
    lut, curve = tone_curve(rng)
    toned = cv2.LUT(rgb, lut).astype(np.float32)
    luma = cv2.cvtColor(toned, cv2.COLOR_RGB2GRAY)[..., None]
    toned = (luma + (1 - DESATURATE) * (toned - luma)).round().clip(0, 255).astype(np.uint8)
    h, w = rgb.shape[:2]
    left, right, top, bottom = rng.uniform(0.01, 0.05, 4)
    x0, x1, y0, y1 = round(left * w), w - round(right * w), round(top * h), h - round(bottom * h)
    size = (round(SCALE * (x1 - x0)), round(SCALE * (y1 - y0)))  # (w, h)
    small = cv2.resize(toned[y0:y1, x0:x1], size, interpolation=cv2.INTER_AREA)
    ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(small, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, QUALITY])
    assert ok
    decoded = cv2.cvtColor(cv2.imdecode(jpeg, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    return decoded, {"curve": curve, "crop": [x0, y0, x1, y1], "size": list(size), "jpeg": jpeg}


def registered(print_rgb: np.ndarray, made: dict, shape: tuple[int, int]) -> np.ndarray:
    """The print put back on its frame by the geometry that made it (pixel centres; edges repeated)."""
    (h, w), (x0, y0, x1, y1) = shape, made["crop"]
    sx, sy = print_rgb.shape[1] / (x1 - x0), print_rgb.shape[0] / (y1 - y0)
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    map_x, map_y = (xs - x0 + 0.5) * sx - 0.5, (ys - y0 + 0.5) * sy - 0.5
    return cv2.remap(print_rgb, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def on_luma(colors: np.ndarray, luma_of: np.ndarray) -> np.ndarray:
    """The raw Cb/Cr of `colors` on the luma of `luma_of` (both uint8 RGB)."""
    ycrcb = cv2.cvtColor(colors, cv2.COLOR_RGB2YCrCb)
    ycrcb[..., 0] = cv2.cvtColor(luma_of, cv2.COLOR_RGB2YCrCb)[..., 0]
    return cv2.cvtColor(ycrcb, cv2.COLOR_YCrCb2RGB)


def remaster(film: Path, out: Path, keys: Path | None) -> tuple[dict, float, float]:
    """`remaster colorize` as a user runs it (CPU, DIS, FFV1): its report, CPU seconds and wall seconds."""
    command = [sys.executable, "-m", "remaster.cli.main", "colorize", str(film), "-o", str(out)]
    command += ["--device", "cpu", "--flow", "dis", "--codec", "ffv1", "--force", "--json"]
    command += ["--keyframes", str(keys)] if keys else []
    before, started = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    wall, after = time.perf_counter() - started, resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return json.loads(done.stdout), cpu, wall


def sheet_row(name: str, reference: np.ndarray, key: dict, placed: np.ndarray, truth, output, starts, width: int):
    """reference | its registered colors on the matched frame | result | truth, for the clip's first shot."""
    from remaster.media.sheets import contact_sheet

    t = (starts[1] - 1) if len(starts) > 1 else len(truth) - 1  # the first shot's last frame: carried farthest
    height = round(width * truth[0].shape[0] / truth[0].shape[1])
    small = lambda im, w=width: cv2.resize(im, (w, height), interpolation=cv2.INTER_AREA)  # noqa: E731
    aspect = reference.shape[1] / reference.shape[0]
    return contact_sheet(
        [
            (f"{name}: the print", small(reference, round(height * aspect))),
            (f"registered on frame {key['frame']}", small(placed)),
            (f"result, frame {t}", small(output[t])),
            (f"truth, frame {t}", small(truth[t])),
        ]
    )


def placed_by_remaster(keys: Path, film: Path, shape: tuple[int, int]) -> dict:
    """file -> the reference's registered colors on its frame's luma (uint8 RGB), by remaster's own
    read_keyframes (as the run places them), and where its coverage is 0, a dimmed gray."""
    import torch

    from remaster.color import luma_chroma_to_rgb
    from remaster.media.reader import VideoReader
    from remaster.run.keyframes import read_keyframes

    def film_lumas():
        with VideoReader(film) as reader:
            for batch in reader.batches(8, (1, 1)):
                yield batch.index, batch.luma()

    h, w = shape
    out = {}
    for k in read_keyframes(keys, width=w, height=h, frames=10**6, matrix="bt601", film_lumas=film_lumas):
        rgb = luma_chroma_to_rgb(k.luma, k.chroma).clamp(0, 1)
        if k.coverage is not None:
            rgb = torch.where(k.coverage > 0.5, rgb, 0.5 * k.luma)
        out[k.path.name] = (rgb[0].permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=60, help="frames of each clip (from its start)")
    parser.add_argument("--clips", default=DEFAULT_CLIPS, help="comma-separated clip names, or 'all'")
    parser.add_argument("--seed", type=int, default=20)
    parser.add_argument("--sheet", type=Path, default=None, help="also write a contact sheet (JPEG) here")
    parser.add_argument("--sheet-clips", type=int, default=3, help="rows of the sheet: the first N clips")
    parser.add_argument("--width", type=int, default=240, help="width of each panel of the sheet")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not CLIPS.is_dir():
        raise SystemExit(f"no data pack at {CLIPS}: nothing to measure")
    names = sorted(p.name for p in CLIPS.iterdir()) if args.clips == "all" else args.clips.split(",")
    rng = np.random.default_rng(args.seed)
    rows, sheets = [], []
    with tempfile.TemporaryDirectory(prefix="bench-prints-") as tmp:
        tmp = Path(tmp)
        for number, name in enumerate(names):
            stem = Path(name).stem
            truth = frames_rgb(CLIPS / name, args.frames)
            starts = shot_starts(truth)
            film, keys = tmp / f"{stem}-gray.mkv", tmp / f"{stem}-prints"
            write_gray(truth, film)
            keys.mkdir()
            prints, made = {}, []
            for shot, t in enumerate(starts):
                reference, how = make_print(truth[t], rng)
                file = f"print-{stem}-{chr(ord('a') + shot)}.jpg"
                (keys / file).write_bytes(how.pop("jpeg").tobytes())
                prints[file] = (reference, how)
                made.append({"file": file, "shot_start": t} | how)
            _, auto_cpu, auto_wall = remaster(film, tmp / f"{stem}-auto.mkv", None)
            auto = frames_rgb(tmp / f"{stem}-auto.mkv", args.frames)
            report, keys_cpu, keys_wall = remaster(film, tmp / f"{stem}-prints.mkv", keys)
            result = frames_rgb(tmp / f"{stem}-prints.mkv", args.frames)
            naive_start = list(truth)
            for t, (reference, how) in zip(starts, prints.values()):
                naive_start[t] = on_luma(registered(reference, how, truth[0].shape[:2]), truth[t])
            naive = chained_carry(naive_start, starts)
            row = {
                "clip": name,
                "frames": len(truth),
                "size": f"{truth[0].shape[1]}x{truth[0].shape[0]}",
                "shots": starts,
                "prints": made,
                "placed": report["keyframes"],
                "auto": scores(auto, truth, starts, warp := ChromaWarp(truth, starts)),
                "prints_mode": scores(result, truth, starts, warp),
                "naive_registered": scores(naive, truth, starts, warp),
                "cpu_s": {"auto": round(auto_cpu, 1), "prints": round(keys_cpu, 1)},
                "wall_s": {"auto": round(auto_wall, 1), "prints": round(keys_wall, 1)},
            }
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
            if args.sheet and number < args.sheet_clips:
                key = report["keyframes"][0]
                placed = placed_by_remaster(keys, film, truth[0].shape[:2])[key["file"]]
                reference = prints[key["file"]][0]
                sheets.append(sheet_row(name, reference, key, placed, truth, result, starts, args.width))
    if args.sheet:
        width = max(s.shape[1] for s in sheets)
        sheet = np.concatenate(
            [np.pad(s, ((0, 0), (0, width - s.shape[1]), (0, 0)), constant_values=255) for s in sheets]
        )
        args.sheet.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(args.sheet), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])
        print(
            f"{args.sheet}: {sheet.shape[1]}x{sheet.shape[0]}, {args.sheet.stat().st_size // 1024} KB", file=sys.stderr
        )
    load = os.getloadavg()
    machine = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(), "load": load}
    if args.json:
        print(json.dumps({"machine": machine, "rows": rows}, indent=2))
        return
    print(f"machine: {machine}; first {args.frames} frames of each clip; seed {args.seed}; PSNR (dB) against the truth")
    print(
        "| clip | shots | gray | auto | prints (keyframe mode) | naive carry, registered | difference "
        "| CPU s auto / prints |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        diff = r["prints_mode"]["psnr"] - r["naive_registered"]["psnr"]
        print(
            f"| {r['clip']} | {len(r['shots'])} | {r['auto']['psnr_gray']} | {r['auto']['psnr']} | "
            f"{r['prints_mode']['psnr']} | {r['naive_registered']['psnr']} | {diff:+.2f} | "
            f"{r['cpu_s']['auto']} / {r['cpu_s']['prints']} ({r['cpu_s']['prints'] / r['cpu_s']['auto']:.2f}x) |"
        )
    mean = lambda m: np.mean([r[m]["psnr"] for r in rows])
    cpu = lambda m: sum(r["cpu_s"][m] for r in rows)
    print(
        f"| mean | | | {mean('auto'):.2f} | {mean('prints_mode'):.2f} | {mean('naive_registered'):.2f} | "
        f"{mean('prints_mode') - mean('naive_registered'):+.2f} | {cpu('auto'):.0f} / {cpu('prints'):.0f} "
        f"({cpu('prints') / cpu('auto'):.2f}x) |"
    )
    for r in rows:
        for p in r["placed"]:
            g = p["registration"] or {}
            print(
                f"{r['clip']}: {p['file']} -> frame {p['frame']} (shots start at {r['shots']}), similarity "
                f"{p['similarity']}, scale {g.get('scale')}, shift {g.get('shift')}, rotation {g.get('rotation')}, "
                f"residual {g.get('residual')} px, coverage {g.get('coverage')}, refined {g.get('refined')}"
            )


if __name__ == "__main__":
    main()
