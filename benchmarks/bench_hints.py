"""How far a handful of color hints steer a model (issue 9): `photos/val` colored automatically,
then again with the hints a colorist would give (`demo.colorist_clicks`: the places where the
automatic colors are furthest from the original's, each given the original's color there).

    python benchmarks/bench_hints.py --model models/remaster-default.safetensors
    python benchmarks/bench_hints.py --model a.safetensors --model b.safetensors --clicks 6 --limit 50
    python benchmarks/bench_hints.py --model models/remaster-hints.safetensors --step none --step edges
    python benchmarks/bench_hints.py --model models/remaster-hints.safetensors \
        --auto-model models/remaster-default.safetensors

--auto-model: the automatic colors the clicks correct and the gain is measured against (default:
the hinted model's own, without hints). The studio shows the shipped default model's automatic
colors and the hint model's steered ones, so `--auto-model models/remaster-default.safetensors`
is the gain a colorist sees there.

--step picks the step after the network (`net/edge_aware.py`, issue 21): `none` (the default, as
shipped: the network's colors as they are), `edges` (geodesic attenuation of the hint-induced
change over the luma, then a guided filter), `geodesic` (the attenuation alone) or `guided` (the
guided filter alone, no attenuation).

For each model: PSNR of automatic and hinted against the original, the gain the hints bring
(mean, median, worst), how many photos the hints improve, and how much of the color error at
the clicked places is gone (the hint's own spot: a model that ignores hints scores 0%).
Photos are scored at long side --long-side (512), one network pass each way.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
import torch

from remaster.cli.demo import colorist_clicks
from remaster.media.stills import photo_from_array
from remaster.net.colorizer import Colorizer
from remaster.net.edge_aware import EdgeAware
from remaster.net.train_data import list_images, read_rgb
from remaster.run.photos import colorize_photo


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / max(mse, 1e-10)))


def _spot_error(rgb: np.ndarray, truth: np.ndarray, points) -> float:
    """Mean (a, b) distance to the original at the clicked places (9 px blur, as clicks pick)."""
    lab = lambda image: cv2.blur(cv2.cvtColor(image.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB), (9, 9))
    ours, true = lab(rgb), lab(truth)
    return float(
        np.mean([np.linalg.norm(ours[round(y), round(x), 1:] - true[round(y), round(x), 1:]) for x, y, _, _ in points])
    )


STEPS = {
    "edges": EdgeAware(),
    "geodesic": EdgeAware(radius=0),
    "guided": EdgeAware(reach=0, radius=8),
    "none": None,
}


def score(
    model: Path, photos: list[Path], clicks: int, long_side: int, step: str = "none", auto_model: Path | None = None
) -> dict:
    colorizer = Colorizer.load(model, device="cpu")
    if not colorizer.takes_hints:
        raise SystemExit(f"{model}: this model takes no hints")
    automatic_colorizer = Colorizer.load(auto_model, device="cpu") if auto_model else colorizer
    rows = []
    for path in photos:
        truth = read_rgb(path)
        scale = long_side / max(truth.shape[:2])
        if scale < 1:
            truth = cv2.resize(
                truth, (round(truth.shape[1] * scale), round(truth.shape[0] * scale)), interpolation=cv2.INTER_AREA
            )
        photo = photo_from_array(truth)
        automatic = colorize_photo(photo, automatic_colorizer)
        points = colorist_clicks(automatic, truth, clicks)
        hinted = colorize_photo(photo, colorizer, points, edges=STEPS[step])
        before, after = _spot_error(automatic, truth, points), _spot_error(hinted, truth, points)
        rows.append(
            {
                "photo": path.stem,
                "psnr_auto": _psnr(automatic, truth),
                "psnr_hinted": _psnr(hinted, truth),
                "spot_error_auto": before,
                "spot_error_hinted": after,
            }
        )
    gains = np.array([r["psnr_hinted"] - r["psnr_auto"] for r in rows])
    spot = 1 - np.mean([r["spot_error_hinted"] for r in rows]) / max(
        1e-9, np.mean([r["spot_error_auto"] for r in rows])
    )
    worst = sorted(rows, key=lambda r: r["psnr_hinted"] - r["psnr_auto"])[:3]
    return {
        "model": str(model),
        "step": step,
        "auto_model": str(auto_model or model),
        "photos": len(rows),
        "clicks": clicks,
        "psnr_auto": float(np.mean([r["psnr_auto"] for r in rows])),
        "psnr_hinted": float(np.mean([r["psnr_hinted"] for r in rows])),
        "gain_mean": float(gains.mean()),
        "gain_median": float(np.median(gains)),
        "improved": int((gains > 0).sum()),
        "spot_error_removed": float(spot),
        "worst": [(r["photo"], round(r["psnr_hinted"] - r["psnr_auto"], 2)) for r in worst],
        "rows": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, action="append", required=True)
    parser.add_argument("--data", type=Path, default=Path("../shared/data/photos/val"))
    parser.add_argument("--clicks", type=int, default=6)
    parser.add_argument("--limit", type=int, default=0, help="the first N photos (sorted by name); 0 = all")
    parser.add_argument("--long-side", type=int, default=512)
    parser.add_argument("--auto-model", type=Path, default=None, help="the automatic colors to beat (default: MODEL's)")
    parser.add_argument("--step", action="append", choices=sorted(STEPS), help="repeatable; default: none")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    photos = list_images(args.data)[: args.limit or None]
    results = []
    print(
        "model                          step      photos  auto dB  hinted dB  gain mean  median  improved  "
        "spot error removed  worst"
    )
    for model in args.model:
        for step in args.step or ["none"]:
            r = score(model, photos, args.clicks, args.long_side, step, args.auto_model)
            results.append(r)
            worst = ", ".join(f"{name} {gain:+.2f}" for name, gain in r["worst"])
            print(
                f"{str(model)[-30:]:30} {step:9} {r['photos']:6} {r['psnr_auto']:8.2f} {r['psnr_hinted']:10.2f} "
                f"{r['gain_mean']:+10.2f} {r['gain_median']:+7.2f} {r['improved']:5}/{r['photos']:<3} "
                f"{100 * r['spot_error_removed']:17.0f}%  {worst}"
            )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
