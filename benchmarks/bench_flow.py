"""Speed of the flow providers and of the temporal stage at the chroma working resolution.

    python benchmarks/bench_flow.py [--device cpu|cuda] [--size 256x352] [--frames 32] [--batch 8]

Feeds a real clip (../shared/data/clips/book.mkv when present, else a moving synthetic texture)
through each provider and through `TemporalStage`, and prints frames per second. RAFT runs with
random weights unless torchvision's are cached (speed does not depend on the weights' values).
Timings, not tests: report them with the machine they ran on.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from remaster.stages.flow import make_flow_provider
from remaster.stages.temporal import TemporalConfig, TemporalStage

CLIP = Path(__file__).resolve().parents[2] / "shared" / "data" / "clips" / "book.mkv"


def load_luma(frames: int, size: tuple[int, int]) -> torch.Tensor:
    if CLIP.is_file():
        import av

        with av.open(str(CLIP)) as container:
            grays = [
                torch.from_numpy(f.to_ndarray(format="gray")) for f, _ in zip(container.decode(video=0), range(frames))
            ]
        luma = torch.stack(grays)[:, None].float() / 255  # (T, 1, H, W)
    else:
        g = torch.Generator().manual_seed(0)
        scene = F.interpolate(
            torch.rand(1, 1, 64, 96, generator=g), size=(size[0] + 8, size[1] + 4 * frames), mode="bicubic"
        )
        luma = torch.cat([scene[..., :, 4 * i : 4 * i + size[1]] for i in range(frames)])
    return F.interpolate(luma, size=size, mode="bilinear", antialias=True, align_corners=False).clamp(
        0, 1
    )  # (T, 1, h, w)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()  # sync point: honest timings only


def timed(fn, device, repeats: int = 3) -> float:
    fn()  # warm-up (cuDNN autotune, thread pools, lazy init)
    sync(device)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync(device)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--size", default="256x352", help="chroma working resolution HxW")
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--providers", default="dis-fast,dis-medium,raft-small,raft")
    args = parser.parse_args()
    device = torch.device(args.device)
    h, w = map(int, args.size.split("x"))
    luma = load_luma(args.frames, (h, w)).to(device)  # (T, 1, h, w)
    chroma = 0.1 * torch.randn(len(luma), 2, h, w, device=device)  # (T, 2, h, w)
    results = {
        "machine": platform.processor() or platform.machine(),
        "device": str(device),
        "size": [h, w],
        "frames": len(luma),
    }
    if device.type == "cuda":
        results["gpu"] = torch.cuda.get_device_name(device)
    results["torch_threads"] = torch.get_num_threads()
    for name in args.providers.split(","):
        flow, preset = (name.split("-", 1) + ["medium"])[:2] if name.startswith("dis") else (name, "medium")
        weights = None
        try:
            provider = make_flow_provider(flow, device=device, dis_preset=preset)
            if provider.name != flow:
                raise RuntimeError("fell back")
        except Exception:
            weights = "random"
            provider = make_flow_provider(flow, device=device, weights="random", dis_preset=preset)
        pairs = lambda: [
            provider(luma[i + 1 : i + 1 + args.batch], luma[i : i + args.batch])
            for i in range(0, len(luma) - 1, args.batch)
        ]
        seconds = timed(pairs, device)
        stage_config = TemporalConfig(flow=flow, dis_preset=preset, flow_weights=weights)

        def run_stage():
            stage = TemporalStage(stage_config, device=device)
            for i in range(0, len(luma), args.batch):
                stage(luma[i : i + args.batch], chroma[i : i + args.batch])

        stage_seconds = timed(run_stage, device, repeats=2)
        results[name] = {
            "flow_pairs_per_s": round((len(luma) - 1) / seconds, 1),
            "stage_fps": round(len(luma) / stage_seconds, 1),
            "weights": weights or "pretrained",
        }
        print(name, results[name], flush=True)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
