"""Choose the decoding of a model: annealed-mean temperature and uncertainty-aware `doubt`.

For each photo of `photos/val` (and of any --photos folder) and a sample of frames from every
data-pack clip (color originals: turned gray for input, the original is the truth), the network
runs once and every
decoding setting is scored on its output: PSNR gain over the gray image, how many beat gray,
and the colorfulness ratio to the truth. Never one number alone (issue 10).

    python benchmarks/bench_decoding.py --model models/remaster-default.safetensors
    python benchmarks/bench_decoding.py --model run.safetensors --temperatures 0.38,0.5 --doubts 0,20,30,45
    python benchmarks/bench_decoding.py --doubts 30 --photos gray-scenes=../more-photos-gray-heldout
    python benchmarks/bench_decoding.py --model run.safetensors --save models/remaster-default.safetensors \
        --choose 0.38,20

The held-out TEST set (issue 22, models/build_test_set.py) is scored only with --test, for the
final report of a change, after every choice was made on the validation sets (photos/val,
--photos unseen=../more-photos-unseen, --photos gray-scenes=../more-photos-gray-heldout):

    python benchmarks/bench_decoding.py --model M --doubts 20 --photos unseen=../more-photos-unseen \
        --photos gray-scenes=../more-photos-gray-heldout --test ../photos-test

Prints a table per setting; --json writes every score. `--save PATH --choose T,DOUBT` writes a
copy of the model whose stored decoding is that setting (no measuring).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import av
import numpy as np
import torch
from torch import nn

from remaster.color import rgb_to_luma
from remaster.net.colorizer import Colorizer, colorize_luma
from remaster.net.train_data import list_images
from remaster.net.validate import load_truth
from remaster.quality import colorfulness, psnr

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


class _Replay(nn.Module):
    """Stands in for the net: returns the output recorded on the first call for this input."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net, self.recorded = net, None
        self.config = net.config

    def forward(self, lightness, hints=None):
        if self.recorded is None:
            self.recorded = self.net(lightness, hints)
        return self.recorded

    def decode_ab(self, *args):
        return self.net.decode_ab(*args)


def clip_frames(path: Path, count: int, long_side: int) -> list[torch.Tensor]:
    """`count` frames spread evenly over the clip, as `(1, 3, H, W)` RGB in [0, 1]."""
    with av.open(str(path)) as container:
        total = sum(1 for packet in container.demux(video=0) if packet.size)
    picks = set(np.linspace(0, total - 1, count).round().astype(int).tolist())
    with av.open(str(path)) as container:
        frames = [frame.to_ndarray(format="rgb24") for i, frame in enumerate(container.decode(video=0)) if i in picks]
    out = []
    for frame in frames:
        rgb = torch.from_numpy(frame).permute(2, 0, 1)[None].float() / 255.0
        scale = long_side / max(rgb.shape[-2:])
        if scale < 1:
            rgb = torch.nn.functional.interpolate(rgb, scale_factor=scale, mode="area")
        out.append(rgb)
    return out


def score(colorizer: Colorizer, truth: torch.Tensor, settings: list[tuple[float, float]]) -> list[dict]:
    luma = torch.round(rgb_to_luma(truth) * 255.0) / 255.0  # (1, 1, H, W), an 8-bit gray picture
    gray = luma.expand(-1, 3, -1, -1)
    gray_psnr = psnr(gray, truth).item()
    true_colorfulness = colorfulness(truth).item()
    replay = _Replay(colorizer.net)
    real_net, colorizer.net = colorizer.net, replay
    rows = []
    try:
        for temperature, doubt in settings:
            colorizer.inference = type(colorizer.inference)(colorizer.inference.working_short_side, temperature, doubt)
            output = torch.round(colorize_luma(colorizer, luma).cpu() * 255.0) / 255.0
            rows.append(
                {
                    "gain": psnr(output, truth).item() - gray_psnr,
                    "colorfulness": colorfulness(output).item(),
                    "colorfulness_truth": true_colorfulness,
                }
            )
    finally:
        colorizer.net = real_net
    return rows


def summarize(rows: list[dict]) -> dict:
    gains = np.array([r["gain"] for r in rows])
    return {
        "n": len(rows),
        "gain": float(gains.mean()),
        "beat_gray": int((gains > 0).sum()),
        "p10": float(np.percentile(gains, 10)),
        "worst": float(gains.min()),
        "colorfulness_ratio": float(
            np.mean([r["colorfulness"] for r in rows]) / np.mean([r["colorfulness_truth"] for r in rows])
        ),
    }


def _named_folder(text: str) -> tuple[str, Path]:
    name, sep, folder = text.partition("=")
    if not sep or not name or not Path(folder).is_dir():
        raise SystemExit(f"--photos {text!r}: expected NAME=FOLDER with an existing folder")
    return name, Path(folder)


def save_with_decoding(model: Path, out: Path, temperature: float, doubt: float) -> None:
    """The same weights and metadata, with the inference config's decoding replaced."""
    from dataclasses import replace

    from remaster.net.colorizer import InferenceConfig, net_from_weights, read_weights, save_weights

    tensors, metadata = read_weights(model)
    net = net_from_weights(tensors, metadata, model)
    inference = replace(
        InferenceConfig(**json.loads(metadata.get("inference", "{}"))), temperature=temperature, doubt=doubt
    )
    keep = {
        k: v
        for k, v in metadata.items()
        if k not in ("format", "format_version", "net_config", "inference", "parameters")
    }
    card = save_weights(net, out, inference=inference, extra=keep)
    print(f"{out}: decoding T={temperature}, doubt={doubt}; sha256 {card['sha256']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--temperatures", default="0.38,0.5")
    parser.add_argument("--doubts", default="0,15,25,35,50")
    parser.add_argument("--long-side", type=int, default=512)
    parser.add_argument("--frames-per-clip", type=int, default=12)
    parser.add_argument("--val-limit", type=int, default=0, help="score the first N photos of each photo set only")
    parser.add_argument(
        "--photos",
        action="append",
        default=[],
        metavar="NAME=FOLDER",
        help="another folder of color photos to score beside photos/val, e.g. gray-scenes=../more-photos-gray-heldout",
    )
    parser.add_argument(
        "--test", type=Path, default=None, help="the held-out test set: final reports only, never to choose on"
    )
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument(
        "--save", type=Path, default=None, help="write a copy of the model with --choose as its decoding"
    )
    parser.add_argument("--choose", default=None, help="T,DOUBT for --save")
    args = parser.parse_args()
    if args.save:
        save_with_decoding(args.model, args.save, *(float(v) for v in args.choose.split(",")))
        return
    torch.set_grad_enabled(False)
    colorizer = Colorizer.load(args.model, device="cpu")
    settings = [(float(t), float(d)) for t in args.temperatures.split(",") for d in args.doubts.split(",")]
    started = time.time()
    sets: dict[str, list[list[dict]]] = {}  # set name -> per item -> per setting
    photo_sets = {"val": args.data / "photos" / "val", **dict(_named_folder(text) for text in args.photos)}
    if args.test:
        photo_sets["TEST"] = _named_folder(f"TEST={args.test}")[1]
        print("scoring the held-out TEST set: a final report, not a choice (models/MODEL_CARD.md)", flush=True)
    for name, folder in photo_sets.items():
        for path in list_images(folder)[: args.val_limit or None]:
            sets.setdefault(name, []).append(score(colorizer, load_truth(path, args.long_side), settings))
    for clip in sorted((args.data / "clips").glob("*.m*")):
        for truth in clip_frames(clip, args.frames_per_clip, args.long_side):
            sets.setdefault(clip.name, []).append(score(colorizer, truth, settings))
    print(f"model {colorizer.name}; {time.time() - started:.0f} s on the CPU\n")
    report = {"model": colorizer.name, "settings": settings, "sets": {}}
    clip_names = [name for name in sets if name not in photo_sets]
    header = ["T", "doubt"]
    for name in photo_sets:
        header += [f"{name} gain dB", f"{name} beat gray", f"{name} worst", f"{name} colorfulness"]
    header += ["clips mean gain", "worst clip", "clips colorfulness"] if clip_names else []
    print("| " + " | ".join(header) + " |\n" + "|---" * len(header) + "|")
    for k, (temperature, doubt) in enumerate(settings):
        per_set = {name: summarize([item[k] for item in items]) for name, items in sets.items()}
        report["sets"][f"T={temperature},doubt={doubt}"] = per_set
        cells = [f"{temperature}", f"{doubt:g}"]
        for name in photo_sets:
            got = per_set[name]
            cells += [
                f"{got['gain']:+.2f}",
                f"{got['beat_gray']}/{got['n']}",
                f"{got['worst']:+.1f}",
                f"{100 * got['colorfulness_ratio']:.0f}%",
            ]
        if clip_names:
            worst_clip = min(clip_names, key=lambda n: per_set[n]["gain"])
            cells += [
                f"{np.mean([per_set[n]['gain'] for n in clip_names]):+.2f}",
                f"{worst_clip} {per_set[worst_clip]['gain']:+.2f}",
                f"{100 * np.mean([per_set[n]['colorfulness_ratio'] for n in clip_names]):.0f}%",
            ]
        print("| " + " | ".join(cells) + " |")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
