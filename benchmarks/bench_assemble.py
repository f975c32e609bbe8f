"""The assemble stage (chroma upsample, gamut fit, quantize) before and after issue 11, against x264.

    python benchmarks/bench_assemble.py                       # 3840x2160, batch 8, 5 rounds
    python benchmarks/bench_assemble.py --size 1920x1080 --rounds 3

In one process, alternating so both see the same machine state (the CPU may be shared), it times
  - `before`: the assemble of commit 13f6fb5 (whole-batch passes, copied here verbatim);
  - `after`:  `remaster.media.formats.assemble_chroma` (bands that stay in cache, in-place passes, one thread);
  - `x264`:   libx264 at the pipeline's defaults (CRF 18, preset medium) encoding the same number of
              4:2:0 pictures of a real clip scaled to the size (synthetic shapes without the data pack);
and reports frames per second, the after/before ratio, and after/x264. It also checks that the
two assembles give the same codes, up to how many differ by one code value (float rounding at a
.5 boundary) and the largest difference.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import av
import numpy as np
import torch
import torch.nn.functional as F

from remaster.measure.bench import machine
from remaster.measure.films import gray_pictures
from remaster.media.assemble import OutputLayout, assemble_chroma, chroma_to_codes

CLIP = Path(__file__).resolve().parents[2] / "shared" / "data" / "clips" / "book.mkv"


def assemble_before(luma, chroma, layout):
    """remaster/frames.py assemble_chroma at 13f6fb5 (the gamut fit as color.py had it then)."""
    size = layout.chroma_size
    chroma = chroma.to(luma.device).float()
    if chroma.shape[-2:] != size:
        chroma = F.interpolate(chroma, size=size, mode="bilinear", align_corners=False)
    small_luma = luma if luma.shape[-2:] == size else F.adaptive_avg_pool2d(luma, size)
    chroma = _fit_before(small_luma, chroma.clamp(-0.5, 0.5), layout.matrix)
    return chroma_to_codes(chroma, layout.bit_depth, layout.full_range).cpu()


def _fit_before(luma, chroma, matrix):
    kr, kb = {"bt601": (0.299, 0.114), "bt709": (0.2126, 0.0722)}[matrix]
    kg = 1.0 - kr - kb
    cb, cr = chroma.unbind(-3)
    dr = 2.0 * (1.0 - kr) * cr
    db = 2.0 * (1.0 - kb) * cb
    dg = -(kr * dr + kb * db) / kg
    y = luma.squeeze(-3)
    scale = torch.ones_like(y)
    tiny = 1e-6
    for d in (dr, dg, db):
        room_up = (1.0 - y).clamp(min=0.0) / d.clamp(min=tiny)
        room_down = y.clamp(min=0.0) / (-d).clamp(min=tiny)
        scale = torch.minimum(
            scale, torch.where(d > tiny, room_up, torch.where(d < -tiny, room_down, torch.ones_like(y)))
        )
    return chroma * scale.clamp(0.0, 1.0).unsqueeze(-3)


def inputs(width, height, frames, working):
    """Real luma (the clip scaled) and a strong, smooth chroma at the network's working size."""
    grays = list(gray_pictures(width, height, frames, CLIP if CLIP.is_file() else None))
    codes = torch.from_numpy(np.stack(grays))[:, None]  # (N, 1, H, W) uint8, treated as limited range
    luma = ((codes.float() - 16) / 219).clamp(0, 1)
    h, w = working
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
    chroma = torch.stack([0.35 * torch.sin(3 * xx + k) * torch.cos(2 * yy - k) for k in range(2 * frames)]).reshape(
        frames, 2, h, w
    )
    return codes, luma, chroma


def encode_x264(codes, width, height, crf=18, preset="medium"):
    """Seconds for libx264 to encode these gray pictures as yuv420p (flush included)."""
    out = av.open(os.devnull, "w", format="mp4")
    stream = out.add_stream("libx264", rate=25, options={"crf": str(crf), "preset": preset})
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    frames = []
    for i in range(codes.shape[0]):
        frame = av.VideoFrame.from_ndarray(codes[i, 0].numpy(), format="gray").reformat(format="yuv420p")
        frame.pts = i
        frames.append(frame)
    started = time.perf_counter()
    for frame in frames:
        for packet in stream.encode(frame):
            out.mux(packet)
    for packet in stream.encode(None):
        out.mux(packet)
    seconds = time.perf_counter() - started
    out.close()
    return seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="3840x2160")
    parser.add_argument("--frames", type=int, default=8, help="one batch (the pipeline's default batch size)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--x264-frames", type=int, default=16, help="pictures per x264 timing (its look-ahead needs a few)"
    )
    parser.add_argument("--matrix", default="bt709")
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.lower().split("x"))
    layout = OutputLayout("yuv420p", 8, False, args.matrix, (1, 1), "yuv420p", width, height)
    scale = 256 / min(width, height)
    working = (round(height * scale / 8) * 8, round(width * scale / 8) * 8)
    codes, luma, chroma = inputs(width, height, args.frames, working)
    x_codes = torch.cat([codes] * -(-args.x264_frames // args.frames))[: args.x264_frames]
    before, after = (
        assemble_before(luma, chroma, layout),
        assemble_chroma(luma, chroma, layout),
    )  # warm-up and the check
    diff = (before.int() - after.int()).abs()
    times = {"before": [], "after": [], "x264": []}
    for _ in range(args.rounds):
        for name, run in (("before", assemble_before), ("after", assemble_chroma)):
            started = time.perf_counter()
            run(luma, chroma, layout)
            times[name].append(args.frames / (time.perf_counter() - started))
        times["x264"].append(args.x264_frames / encode_x264(x_codes, width, height))
    med = {k: float(np.median(v)) for k, v in times.items()}
    result = {
        "machine": machine(torch.device("cpu")),
        "load_average": os.getloadavg(),
        "torch_threads": torch.get_num_threads(),
        "size": f"{width}x{height}",
        "fps_median": {k: round(v, 2) for k, v in med.items()},
        "after_over_before": round(med["after"] / med["before"], 2),
        "after_over_x264": round(med["after"] / med["x264"], 2),
        "before_over_x264": round(med["before"] / med["x264"], 2),
        "codes_differing": int((diff > 0).sum()),
        "codes_total": diff.numel(),
        "largest_difference": int(diff.max()),
        "rounds": {k: [round(x, 2) for x in v] for k, v in times.items()},
    }
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
