"""What a colorist's keyframe is worth: automatic colors vs a keyframe carried through the shot.

    python benchmarks/bench_keyframes.py                    # every data-pack clip, first 120 frames
    python benchmarks/bench_keyframes.py --frames 60 --clips book.mkv,sister.mkv --json

For each real color clip of ../shared/data/clips (the color original is the truth), the clip is
made gray (its luma, as a black-and-white film would be) and colorized three ways:
  - auto: the network and the temporal stage, no keyframe;
  - keyframe: `--keyframes` with the true colors of frame 0, carried by the temporal stage;
  - naive carry: frame 0's true chroma moved along chained DIS flow with no confidence and no
    network (the baseline DESIGN measured at 32.6-36.2 dB; a carry that trusts less must not
    fall far below it, and should hold up better where the motion breaks).
Reported per clip, over the frames after frame 0: mean per-frame PSNR of the RGB output against
the truth, the gray film's (the floor), and the colorfulness ratio (Hasler & Süsstrunk) against
the truth's.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

import av
import cv2
import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
CLIPS = ROOT.parent / "shared" / "data" / "clips"


def frames_rgb(path: Path, limit: int) -> list[np.ndarray]:
    out = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            out.append(frame.to_ndarray(format="rgb24"))
            if len(out) >= limit:
                break
    return out


def write_gray(rgb: list[np.ndarray], path: Path, rate: int = 25) -> None:
    with av.open(str(path), "w") as out:
        stream = out.add_stream("ffv1", rate=rate)
        stream.height, stream.width = rgb[0].shape[:2]
        stream.pix_fmt = "gray"
        for i, image in enumerate(rgb):
            gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)  # BT.601 luma, as the gray film's
            frame = av.VideoFrame.from_ndarray(gray, format="gray")
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


def naive_carry(rgb: list[np.ndarray]) -> list[np.ndarray]:
    """Frame 0's chroma moved along chained DIS flow (backward flow t -> t-1), luma the truth's."""
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    ycrcb = [cv2.cvtColor(im, cv2.COLOR_RGB2YCrCb) for im in rgb]
    chroma = ycrcb[0][..., 1:].astype(np.float32)
    h, w = chroma.shape[:2]
    grid = np.stack(np.meshgrid(np.arange(w), np.arange(h)), -1).astype(np.float32)
    out = [rgb[0]]
    for t in range(1, len(rgb)):
        flow = dis.calc(ycrcb[t][..., 0], ycrcb[t - 1][..., 0], None)
        moved = grid + flow
        chroma = cv2.remap(chroma, moved[..., 0], moved[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        image = np.concatenate([ycrcb[t][..., :1], chroma.round().clip(0, 255).astype(np.uint8)], -1)
        out.append(cv2.cvtColor(image, cv2.COLOR_YCrCb2RGB))
    return out


def scores(output: list[np.ndarray], truth: list[np.ndarray]) -> dict:
    """Over the frames after the keyframe (its own frame is the truth for the carries)."""
    from remaster.metrics import colorfulness, psnr

    output, truth = output[1:], truth[1:]
    def tensor(images):
        return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255

    a, b = tensor(output), tensor(truth)
    gray = tensor([np.repeat(cv2.cvtColor(im, cv2.COLOR_RGB2GRAY)[..., None], 3, -1) for im in truth])
    return {
        "psnr": round(float(psnr(a, b).mean()), 2),
        "psnr_gray": round(float(psnr(gray, b).mean()), 2),
        "colorfulness_ratio": round(float(colorfulness(a).mean() / colorfulness(b).mean().clamp_min(1e-6)), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=120, help="frames of each clip (its first shot)")
    parser.add_argument("--clips", default=None, help="comma-separated clip names (default: all in the data pack)")
    parser.add_argument("--model", default=str(ROOT / "models" / "remaster-default.safetensors"))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not CLIPS.is_dir():
        raise SystemExit(f"no data pack at {CLIPS}: nothing to measure")
    from remaster.config import make_config
    from remaster.model import Colorizer
    from remaster.pipeline import colorize_video

    torch.set_num_threads(max(1, (os.cpu_count() or 2) // 2))
    colorizer = Colorizer.load(args.model, device="cpu")
    names = args.clips.split(",") if args.clips else sorted(p.name for p in CLIPS.iterdir())
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-keyframes-") as tmp:
        tmp = Path(tmp)
        for name in names:
            truth = frames_rgb(CLIPS / name, args.frames)
            film = tmp / f"{Path(name).stem}-gray.mkv"
            write_gray(truth, film)
            keyframes = tmp / f"{Path(name).stem}-keyframes"
            keyframes.mkdir()
            cv2.imwrite(str(keyframes / "000000.png"), cv2.cvtColor(truth[0], cv2.COLOR_RGB2BGR))
            row = {"clip": name, "frames": len(truth), "size": f"{truth[0].shape[1]}x{truth[0].shape[0]}"}
            for mode, extra in (("auto", None), ("keyframe", keyframes)):
                out = tmp / f"{Path(name).stem}-{mode}.mkv"
                colorize_video(film, out, make_config(flow="dis", codec="ffv1"), progress=False, colorizer=colorizer, keyframes=extra)
                row[mode] = scores(frames_rgb(out, args.frames), truth)
            row["naive_carry"] = scores(naive_carry(truth), truth)
            rows.append(row)
            print(json.dumps(row), file=sys.stderr)
    machine = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count()}
    if args.json:
        print(json.dumps({"machine": machine, "rows": rows}, indent=2))
        return
    print(f"machine: {machine}; model {Path(args.model).name}; first {args.frames} frames of each clip; PSNR in dB against the color original")
    print("| clip | frames | gray film | auto | keyframe at frame 0 | naive carry | colorfulness auto / keyframe |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['clip']} | {r['frames']} | {r['auto']['psnr_gray']} | {r['auto']['psnr']} | {r['keyframe']['psnr']} | "
              f"{r['naive_carry']['psnr']} | {r['auto']['colorfulness_ratio']:.0%} / {r['keyframe']['colorfulness_ratio']:.0%} |")  # fmt: skip


if __name__ == "__main__":
    main()
