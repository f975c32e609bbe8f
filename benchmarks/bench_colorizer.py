"""Colorizer speed: inference frames/s at 640x480 and training images/s.

    python benchmarks/bench_colorizer.py                 # CPU, the shipped model
    python benchmarks/bench_colorizer.py --device cuda --batch 32

Inference is timed two ways on the same frames: the network alone (luma -> chroma at the
working resolution, what the video pipeline calls) and the whole photo path (plus chroma
upsampling, gamut fitting and RGB assembly at full resolution). Training is timed on random
crops of real photos (../shared/data/photos/val when present, else synthetic ones).
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from remaster.device import resolve_device
from remaster.net.colorizer import Colorizer, colorize_luma
from remaster.net.train import Trainer
from remaster.net.train_config import TrainConfig

PHOTOS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "photos" / "val"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()  # CPU-GPU sync: time the work, not the launches


def time_it(fn, device, repeats: int) -> float:
    fn()  # warm-up (allocations, oneDNN/cuDNN kernel choice)
    sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    sync(device)
    return (time.perf_counter() - start) / repeats


def machine(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--train-steps", type=int, default=6)
    args = parser.parse_args()
    device = resolve_device(args.device)
    colorizer = Colorizer.load(args.model, device=device)
    luma = torch.rand(args.batch, 1, 480, 640)
    net_seconds = time_it(lambda: colorizer.chroma(luma), device, args.repeats)
    full_seconds = time_it(lambda: colorize_luma(colorizer, luma), device, args.repeats)
    results = {
        "machine": machine(device),
        "torch": torch.__version__,
        "model": colorizer.describe(),
        "frame": "640x480",
        "working_size": colorizer.working_size(480, 640),
        "batch": args.batch,
        "net_fps": round(args.batch / net_seconds, 1),
        "photo_path_fps": round(args.batch / full_seconds, 1),
    }
    with tempfile.TemporaryDirectory() as tmp:
        folder = PHOTOS
        if not folder.is_dir():
            folder = Path(tmp)
            rng = np.random.default_rng(0)
            for i in range(32):
                cv2.imwrite(str(folder / f"{i}.png"), rng.integers(0, 256, (300, 400, 3), dtype=np.uint8))
        for crop, batch in ((128, 24), (176, 32)):
            config = TrainConfig(steps=10**9, crop=crop, batch_size=batch, device=str(device), net=colorizer.net.config)
            trainer = Trainer(config, folder, Path(tmp) / "m.safetensors", progress=False)
            step = lambda: trainer.train_step(0.5)
            seconds = time_it(step, device, args.train_steps)
            results[f"train_img_s_crop{crop}_batch{batch}"] = round(batch / seconds, 1)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
