"""What a colorist's keyframes are worth: automatic colors vs keyframes carried through their shots.

    python benchmarks/bench_keyframes.py                    # every data-pack clip, first 120 frames
    python benchmarks/bench_keyframes.py --frames 60 --clips book.mkv,sister.mkv --json
    python benchmarks/bench_keyframes.py --frames 60 --fill hints    # the carry steering the hint model
    python benchmarks/bench_keyframes.py --frames 30 --modes first --clips sister.mkv --chroma 444   # iterating
    python benchmarks/bench_keyframes.py --frames 30 --stride 4 --modes first --chroma 444   # fast motion
    python benchmarks/bench_keyframes.py --frames 30 --stride 8 --one-shot --modes first --chroma 444   # DAVIS's way
    python benchmarks/bench_keyframes.py --frames 60 --flicker 0.18 --modes auto,first --chroma 444   # old film

For each real color clip of ../shared/data/clips (the color original is the truth), the clip is
made gray (its luma, as a black-and-white film would be), cut into shots by remaster's shot
detector, and colorized:
  - auto: the network and the temporal stage, no keyframe;
  - first: `--keyframes` with the true colors of the first frame of each shot (carried forward);
  - first+last: the first and the last frame of each shot (forward and backward, blended);
  - chained carry: each shot's first-frame true chroma moved along chained DIS flow at full size,
    no confidence, no network (the baseline DESIGN measured at 32.6-36.2 dB), in 4:4:4 and as
    delivered in 4:2:0 like remaster's output (`chained_carry_420`);
  - static: each shot's first-frame true chroma held still.
Reported per clip, over every frame that is not the first of its shot (the same frames for every
mode): mean per-frame PSNR of the RGB output against the truth, the gray film's (the floor), the
colorfulness ratio (Hasler & Süsstrunk) against the truth's, and the chroma-only warping error
(Lai et al. 2018 on the Cb, Cr planes x 255, flow on the input luma, pairs across a cut left out)
as a ratio to the truth's own.

`--chroma 420,444` runs remaster's modes twice: as delivered (the gray film is gray, so the output
is 4:2:0, as a colorist's delivery) and in 4:4:4 (the gray film written as yuv444p with neutral
chroma, so the output keeps full-resolution chroma, like the chained carry's 4:4:4); those runs
are named `<mode>_444`. Besides the whole frame, each mode's chroma error is taken where the
carry is blind (issue 20, item 6): the RMS Cb/Cr error (code values) over the *moving or
uncovered* pixels, those whose input-luma flow to the frame before moves them more than
`MOVING_PX` or fails the forward-backward test (Sundaram et al. 2010), beside the same error over
the whole frame (`chroma_rms_moving`, `chroma_rms`).
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


def flickered(rgb: list[np.ndarray], amount: float, seed: int = 0) -> list[np.ndarray]:
    """Old film's exposure flicker: every frame's light times 1 ± up to `amount` (uniform, seeded),
    as benchmarks/bench_shots.py's `jitter`; the flickered color frames are then the truth."""
    gains = 1 + np.random.default_rng(seed).uniform(-amount, amount, len(rgb))
    return [np.clip(image * g, 0, 255).astype(np.uint8) for image, g in zip(rgb, gains)]


def frames_rgb(path: Path, limit: int, stride: int = 1) -> list[np.ndarray]:
    """The first `limit` frames of every `stride`-th frame of `path` (stride 3: motion three times as fast)."""
    out = []
    with av.open(str(path)) as container:
        for number, frame in enumerate(container.decode(video=0)):
            if number % stride == 0:
                out.append(frame.to_ndarray(format="rgb24"))
            if len(out) >= limit:
                break
    return out


def write_gray(rgb: list[np.ndarray], path: Path, rate: int = 25, full_chroma: bool = False) -> None:
    """The gray film of RGB frames: their BT.601 luma, as a black-and-white film's (FFV1). With
    `full_chroma`, written as yuv444p with neutral chroma, so remaster's output is 4:4:4 too."""
    from bench_restore import write_gray as write_luma

    lumas = np.stack([cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) for image in rgb])  # (T, H, W)
    if not full_chroma:
        write_luma(lumas, path, rate=rate)
        return
    with av.open(str(path), "w") as out:
        stream = out.add_stream("ffv1", rate=rate)
        stream.width, stream.height, stream.pix_fmt = lumas.shape[2], lumas.shape[1], "yuv444p"
        stream.color_range = 2  # full range, as the gray film's luma codes
        neutral = np.full_like(lumas[0], 128)
        for i, picture in enumerate(lumas):
            frame = av.VideoFrame.from_ndarray(np.stack([picture, neutral, neutral]), format="yuv444p")
            frame.color_range = 2
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


def shot_starts(rgb: list[np.ndarray]) -> list[int]:
    """First frame of each shot, by remaster's own detector on the gray film at about 256 px."""
    from remaster.stages.shots import ShotDetector

    luma = (
        torch.from_numpy(np.stack([cv2.cvtColor(im, cv2.COLOR_RGB2GRAY) for im in rgb])[:, None]).float() / 255
    )  # (T, 1, H, W)
    scale = 256 / min(luma.shape[-2:])
    small = torch.nn.functional.interpolate(
        luma, scale_factor=scale, mode="bilinear", antialias=True, align_corners=False
    )
    cuts = ShotDetector()(small)
    return [0] + [i for i in range(1, len(rgb)) if bool(cuts[i])]


def chained_carry(rgb: list[np.ndarray], starts: list[int], still: bool = False) -> list[np.ndarray]:
    """Each shot's first-frame chroma moved along chained DIS flow (backward flow t -> t-1) at full
    size, or held still (`still`); luma the truth's."""
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    ycrcb = [cv2.cvtColor(im, cv2.COLOR_RGB2YCrCb) for im in rgb]
    h, w = rgb[0].shape[:2]
    grid = np.stack(np.meshgrid(np.arange(w), np.arange(h)), -1).astype(np.float32)
    out = []
    for t in range(len(rgb)):
        if t in starts:
            chroma = ycrcb[t][..., 1:].astype(np.float32)
        elif not still:
            flow = dis.calc(ycrcb[t][..., 0], ycrcb[t - 1][..., 0], None)
            moved = grid + flow
            chroma = cv2.remap(chroma, moved[..., 0], moved[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        image = np.concatenate([ycrcb[t][..., :1], chroma.round().clip(0, 255).astype(np.uint8)], -1)
        out.append(cv2.cvtColor(image, cv2.COLOR_YCrCb2RGB))
    return out


def as_delivered(images: list[np.ndarray]) -> list[np.ndarray]:
    """The pictures through 4:2:0 chroma (halved with area averaging, doubled bilinearly), as
    remaster's output is delivered: a baseline compared like with like."""
    out = []
    for image in images:
        ycrcb = cv2.cvtColor(image, cv2.COLOR_RGB2YCrCb)
        h, w = ycrcb.shape[:2]
        half = cv2.resize(ycrcb[..., 1:], (w // 2, h // 2), interpolation=cv2.INTER_AREA)
        ycrcb[..., 1:] = cv2.resize(half, (w, h), interpolation=cv2.INTER_LINEAR)
        out.append(cv2.cvtColor(ycrcb, cv2.COLOR_YCrCb2RGB))
    return out


class ChromaWarp:
    """Chroma-only warping error of any output of one clip, with the input's flow computed once."""

    def __init__(self, rgb: list[np.ndarray], starts: list[int]):
        from remaster.stages.flow import DISFlow

        luma = (
            torch.from_numpy(np.stack([cv2.cvtColor(im, cv2.COLOR_RGB2GRAY) for im in rgb])[:, None]).float() / 255
        )  # (T, 1, H, W)
        from remaster.stages.flow import fb_consistent

        dis = DISFlow("medium")
        self.backward = dis(luma[1:], luma[:-1])  # (T-1, 2, H, W)
        self.forward = dis(luma[:-1], luma[1:])  # (T-1, 2, H, W)
        self.keep = torch.tensor([t not in starts for t in range(1, len(rgb))])  # pairs (t-1, t) within a shot
        # Frame t's moving or uncovered pixels (t >= 1): its flow to t-1 moves them, or comes back elsewhere.
        moved = torch.hypot(self.backward[:, 0], self.backward[:, 1]) > MOVING_PX  # (T-1, H, W)
        self.moving = moved | ~fb_consistent(self.backward, self.forward)[:, 0]  # (T-1, H, W) bool

    def __call__(self, images: list[np.ndarray]) -> float:
        from remaster.measure.metrics import warping_errors

        ycrcb = np.stack([cv2.cvtColor(im, cv2.COLOR_RGB2YCrCb) for im in images]).astype(np.float32)  # (T, H, W, 3)
        chroma = torch.from_numpy(ycrcb).permute(0, 3, 1, 2).clone()  # (T, 3, H, W) in code values
        chroma[:, 0] = 0  # chroma only: the film's own luma would dominate an RGB error
        errors = warping_errors(chroma, self.backward, self.forward)  # (T-1,)
        return float(errors[self.keep].mean())


MOVING_PX = 1.0  # flow (pixels at the clip's size) beyond which a pixel counts as moving


def chroma_errors(output: list[np.ndarray], truth: list[np.ndarray], frames: list[int], warp: ChromaWarp):
    """RMS Cb/Cr error in code values over `frames`: `(whole frame, moving or uncovered pixels,
    share of pixels moving)` (`ChromaWarp.moving`)."""
    whole, moving, count, total = 0.0, 0.0, 0, 0
    for t in frames:
        a = cv2.cvtColor(output[t], cv2.COLOR_RGB2YCrCb)[..., 1:].astype(np.float64)
        b = cv2.cvtColor(truth[t], cv2.COLOR_RGB2YCrCb)[..., 1:].astype(np.float64)
        squared = ((a - b) ** 2).sum(-1)  # (H, W)
        mask = warp.moving[t - 1].numpy()
        whole += squared.mean() / 2
        moving += squared[mask].sum() / 2
        count += int(mask.sum())
        total += mask.size
    return (
        round(float(np.sqrt(whole / len(frames))), 3),
        round(float(np.sqrt(moving / max(count, 1))), 3),
        round(count / max(total, 1), 4),
    )


def scores(output: list[np.ndarray], truth: list[np.ndarray], starts: list[int], warp: ChromaWarp) -> dict:
    """PSNR, colorfulness and chroma errors over the frames that are not the first of their shot."""
    from remaster.quality import colorfulness, psnr

    frames = [t for t in range(len(truth)) if t not in starts]
    whole, moving, share = chroma_errors(output, truth, frames, warp)

    def tensor(images):
        return torch.from_numpy(np.stack([images[t] for t in frames])).permute(0, 3, 1, 2).float() / 255

    a, b = tensor(output), tensor(truth)
    gray = tensor([np.repeat(cv2.cvtColor(im, cv2.COLOR_RGB2GRAY)[..., None], 3, -1) for im in truth])
    return {
        "psnr": round(float(psnr(a, b).mean()), 2),
        "psnr_gray": round(float(psnr(gray, b).mean()), 2),
        "colorfulness_ratio": round(float(colorfulness(a).mean() / colorfulness(b).mean().clamp_min(1e-6)), 3),
        "chroma_warp": round(warp(output), 4),
        "chroma_rms": whole,
        "chroma_rms_moving": moving,
        "moving_share": share,
    }


def keyframe_folder(folder: Path, truth: list[np.ndarray], frames: list[int]) -> Path:
    folder.mkdir()
    for t in frames:
        cv2.imwrite(str(folder / f"{t:06d}.png"), cv2.cvtColor(truth[t], cv2.COLOR_RGB2BGR))
    return folder


MODES = ("auto", "first", "first+last", "chained_carry", "chained_carry_420", "static")
REMASTER_MODES = ("auto", "first", "first+last")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=120, help="frames of each clip (from its start)")
    parser.add_argument("--clips", default=None, help="comma-separated clip names (default: all in the data pack)")
    parser.add_argument("--model", default=str(ROOT / "models" / "remaster-default.safetensors"))
    parser.add_argument(
        "--working", type=int, default=None, help="the network's working short side (default: the model's)"
    )
    parser.add_argument(
        "--fill",
        default="local",
        help="keyframe_fill: local | palette | network | hints (the carry steering a hint model)",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a temporal setting, e.g. keyframe_trust=0.25 (repeatable)",
    )
    parser.add_argument(
        "--modes", default=",".join(REMASTER_MODES), help="remaster's modes to run: auto,first,first+last"
    )
    parser.add_argument(
        "--chroma",
        default="420",
        help="420 (as delivered), 444 (full-resolution output, runs named <mode>_444), or 420,444",
    )
    parser.add_argument(
        "--stride",
        type=int,
        default=1,
        help="keep every N-th frame of each clip: a film whose motion is N times as fast (fast motion, like DAVIS)",
    )
    parser.add_argument(
        "--flicker",
        type=float,
        default=0.0,
        help="old film's exposure flicker: each frame's light times 1 +- up to this (e.g. 0.18; seeded)",
    )
    parser.add_argument(
        "--one-shot",
        action="store_true",
        help="each clip is one shot, its true frame 0 the only keyframe (DAVIS-2016's protocol), no detector",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    settings = {key: float(value) for key, value in (item.split("=", 1) for item in args.set)}
    if not CLIPS.is_dir():
        raise SystemExit(f"no data pack at {CLIPS}: nothing to measure")
    from remaster.net.colorizer import Colorizer
    from remaster.run.config import make_config
    from remaster.run.pipeline import colorize_video

    torch.set_num_threads(max(1, (os.cpu_count() or 2) // 2))
    colorizer = Colorizer.load(args.model, device="cpu", working_short_side=args.working)
    names = args.clips.split(",") if args.clips else sorted(p.name for p in CLIPS.iterdir())
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-keyframes-") as tmp:
        tmp = Path(tmp)
        for name in names:
            stem = Path(name).stem
            truth = frames_rgb(CLIPS / name, args.frames, args.stride)
            if args.flicker:
                truth = flickered(truth, args.flicker)
            starts = [0] if args.one_shot else shot_starts(truth)
            lasts = [s - 1 for s in starts[1:]] + [len(truth) - 1]
            films = {}
            for chroma in args.chroma.split(","):
                films[chroma] = tmp / f"{stem}-gray-{chroma}.mkv"
                write_gray(truth, films[chroma], full_chroma=chroma == "444")
            warp = ChromaWarp(truth, starts)
            row = {
                "clip": name,
                "frames": len(truth),
                "stride": args.stride,
                "flicker": args.flicker,
                "size": f"{truth[0].shape[1]}x{truth[0].shape[0]}",
                "shots": starts,
                "truth_chroma_warp": round(warp(truth), 4),
            }
            wanted = args.modes.split(",")
            for mode, keys in (("auto", None), ("first", starts), ("first+last", sorted(set(starts + lasts)))):
                if mode not in wanted:
                    continue
                folder = None if keys is None else keyframe_folder(tmp / f"{stem}-{mode}-keys", truth, keys)
                for chroma, film in films.items():
                    name = mode if chroma == "420" else f"{mode}_{chroma}"
                    out = tmp / f"{stem}-{name}.mkv"
                    colorize_video(
                        film,
                        out,
                        make_config(flow="dis", codec="ffv1", keyframe_fill=args.fill, **settings),
                        progress=False,
                        colorizer=colorizer,
                        keyframes=folder,
                    )
                    row[name] = scores(frames_rgb(out, args.frames), truth, starts, warp)
            chained = chained_carry(truth, starts)
            row["chained_carry"] = scores(chained, truth, starts, warp)
            row["chained_carry_420"] = scores(as_delivered(chained), truth, starts, warp)
            row["static"] = scores(chained_carry(truth, starts, still=True), truth, starts, warp)
            rows.append(row)
            print(json.dumps(row), file=sys.stderr)
    machine = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count()}
    if args.json:
        print(json.dumps({"machine": machine, "rows": rows}, indent=2))
        return
    print(
        f"machine: {machine}; model {Path(args.model).name}; keyframe_fill {args.fill}; working size "
        f"{colorizer.inference.working_short_side}; first {args.frames} frames of each clip, every {args.stride}; "
        f"flicker {args.flicker}; "
        "PSNR in dB against the color original"
    )
    modes = [m for m in rows[0] if isinstance(rows[0][m], dict)]
    print("| clip | frames | shots | gray film | " + " | ".join(modes) + " |")
    print("|---" * (4 + len(modes)) + "|")
    for r in rows:
        cells = " | ".join(str(r[m]["psnr"]) for m in modes)
        print(f"| {r['clip']} | {r['frames']} | {len(r['shots'])} | {r[modes[0]]['psnr_gray']} | {cells} |")
    print("| mean | | | | " + " | ".join(f"{np.mean([r[m]['psnr'] for r in rows]):.2f}" for m in modes) + " |")
    print()
    print("RMS Cb/Cr error (code values): moving or uncovered pixels / whole frame (share of pixels moving)")
    print("| clip | moving share | " + " | ".join(modes) + " |")
    print("|---" * (2 + len(modes)) + "|")
    for r in rows:
        cells = " | ".join(f"{r[m]['chroma_rms_moving']} / {r[m]['chroma_rms']}" for m in modes)
        print(f"| {r['clip']} | {r[modes[0]]['moving_share']} | {cells} |")
    print()
    print("chroma warping error / the truth's: " + ", ".join(modes))
    for r in rows:
        ratio = lambda m: r[m]["chroma_warp"] / max(r["truth_chroma_warp"], 1e-9)
        print(f"{r['clip']}: " + " / ".join(f"{ratio(m):.2f}" for m in modes))


if __name__ == "__main__":
    main()
