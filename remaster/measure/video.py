"""Evaluate a colorized video: how steady are its colors, and how close to the truth.

`evaluate_video(output, truth=None, input=None)` streams the output video (and the true-color
original and the black-and-white input when given) in lockstep and reports:

- `warping_error` (Lai et al., ECCV 2018) with flow computed on the *input* frames. Without an
  `input` file the output's own luma is used: the pipeline keeps the input's luma untouched
  (DESIGN.md, promise 1), so it *is* the input's.
- `cdc` (Liu et al. 2021): Jensen-Shannon divergence of per-channel histograms at frame
  distances 1, 2, 4.
- `colorfulness` (Hasler & Süsstrunk 2003), mean over frames.
- with `truth`: mean per-frame `psnr` and `ssim` against it, and the truth's own warping error,
  CDC and colorfulness — the floor a perfect colorization would reach.

Frames are decoded to 8-bit RGB by FFmpeg's converter (the same for output and truth), and
optionally scaled so the long side is at most `long_side`. Nothing holds the whole video:
memory is a few frames whatever the duration.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from remaster.color import rgb_to_luma
from remaster.device import resolve_device
from remaster.errors import InputError, one_line
from remaster.measure.metrics import color_histograms, js_divergence, warping_errors
from remaster.progress import Progress
from remaster.quality import colorfulness, psnr, ssim
from remaster.stages.flow import make_flow_provider

CDC_DISTANCES = (1, 2, 4)


def read_rgb_frames(path: str | Path, long_side: int | None = None) -> Iterator[Tensor]:
    """Decode the first video stream of `path` frame by frame as `(3, H, W)` float32 RGB in
    [0, 1], scaled (area-averaged) so the long side is at most `long_side` when given."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, UnicodeDecodeError) as error:
        raise InputError(f"{path}: not a readable video ({error.__class__.__name__})") from error
    with container:
        if not container.streams.video:
            raise InputError(f"{path}: has no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        try:
            for frame in container.decode(stream):
                rgb = torch.from_numpy(frame.to_ndarray(format="rgb24")).permute(2, 0, 1)  # (3, H, W) uint8
                rgb = rgb.float() / 255.0
                if long_side and max(rgb.shape[-2:]) > long_side:
                    scale = long_side / max(rgb.shape[-2:])
                    size = (max(1, round(rgb.shape[1] * scale)), max(1, round(rgb.shape[2] * scale)))
                    rgb = F.interpolate(rgb[None], size=size, mode="area")[0]  # (3, h, w)
                yield rgb
        except av.error.FFmpegError as error:
            raise InputError(f"{path}: decoding failed ({one_line(error)})") from error


def _frame_count(path: Path) -> int | None:
    """The frame count the container claims, or its duration times its rate (Matroska has no
    count): for progress only; None when it says neither."""
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                return None
            stream = container.streams.video[0]
            if stream.frames:
                return stream.frames
            if container.duration and stream.average_rate:
                return round(container.duration / 1_000_000 * stream.average_rate) or None
            return None
    except (av.error.FFmpegError, UnicodeDecodeError, OSError):
        return None  # read_rgb_frames says what is wrong


class _Consistency:
    """Streaming warping error, CDC and colorfulness of one video, fed frame batches in order."""

    def __init__(self, provider):
        self.provider = provider
        self.frames = 0
        self.warp_errors: list[float] = []
        self.colorfulness: list[float] = []
        self._last_rgb: Tensor | None = None  # (1, 3, H, W)
        self._last_luma: Tensor | None = None  # (1, 1, H, W)
        self._histograms: deque[Tensor] = deque(maxlen=max(CDC_DISTANCES))  # (3, 256) each
        self._js_sums = {d: 0.0 for d in CDC_DISTANCES}
        self._js_counts = {d: 0 for d in CDC_DISTANCES}

    def add(self, rgb: Tensor, flow_luma: Tensor, flows: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, Tensor]:
        """`rgb (B, 3, H, W)`, `flow_luma (B, 1, H, W)`; `flows` = (backward, forward) for the pairs
        ending in this batch, to reuse between output and truth. Returns the flows used."""
        self.colorfulness += colorfulness(rgb).tolist()
        for histogram in color_histograms(rgb):  # (3, 256)
            for d in CDC_DISTANCES:
                if len(self._histograms) >= d:
                    self._js_sums[d] += js_divergence(self._histograms[-d], histogram).mean().item()
                    self._js_counts[d] += 1
            self._histograms.append(histogram)
        frames = rgb if self._last_rgb is None else torch.cat([self._last_rgb, rgb])  # (P+1, 3, H, W)
        lumas = flow_luma if self._last_luma is None else torch.cat([self._last_luma, flow_luma])  # (P+1, 1, H, W)
        if flows is None and len(frames) > 1:
            backward = self.provider(lumas[1:], lumas[:-1])  # (P, 2, H, W)
            forward = self.provider(lumas[:-1], lumas[1:])  # (P, 2, H, W)
            flows = (backward, forward)
        if len(frames) > 1:
            self.warp_errors += warping_errors(frames, *flows).tolist()
        self._last_rgb, self._last_luma = rgb[-1:], flow_luma[-1:]
        self.frames += len(rgb)
        return flows

    def summary(self) -> dict:
        per_distance = [self._js_sums[d] / self._js_counts[d] for d in CDC_DISTANCES if self._js_counts[d]]
        return {
            "warping_error": float(np.mean(self.warp_errors)) if self.warp_errors else None,
            "cdc": float(np.mean(per_distance)) if per_distance else None,
            "colorfulness": float(np.mean(self.colorfulness)) if self.colorfulness else None,
        }


def _batches(iterator: Iterator[Tensor], size: int) -> Iterator[Tensor]:
    while batch := list(itertools.islice(iterator, size)):
        yield torch.stack(batch)  # (B, C, H, W)


def evaluate_video(
    output_path: str | Path,
    truth: str | Path | None = None,
    input_luma_source: str | Path | None = None,
    *,
    long_side: int | None = None,
    flow: str = "dis",
    device="cpu",
    batch_size: int = 8,
    max_frames: int | None = None,
    progress: bool = True,
) -> dict:
    """Temporal consistency (and fidelity, given `truth`) of a colorized video; see module doc.

    `input_luma_source`: the black-and-white input to take the flow from (default: the output's
    own luma). `flow`: a provider name for `make_flow_provider` (`dis` by default, which needs no
    weights). All videos must have the same frame count and size. `progress`: lines on stderr
    as frames are scored (a long film takes minutes).
    """
    device = resolve_device(device)
    provider = make_flow_provider(flow, device=device)
    paths = {"output": Path(output_path)}
    if truth is not None:
        paths["truth"] = Path(truth)
    if input_luma_source is not None:
        paths["input"] = Path(input_luma_source)
    streams = {name: read_rgb_frames(path, long_side) for name, path in paths.items()}
    if max_frames is not None:
        streams = {name: itertools.islice(stream, max_frames) for name, stream in streams.items()}
    batched = {name: _batches(stream, batch_size) for name, stream in streams.items()}

    scores = {"output": _Consistency(provider)}
    if truth is not None:
        scores["truth"] = _Consistency(provider)
    psnrs: list[float] = []
    ssims: list[float] = []
    size = None
    total = _frame_count(paths["output"])
    if max_frames is not None:
        total = min(total, max_frames) if total else max_frames
    bar = Progress(total, f"evaluating {paths['output'].name}", enabled=progress)
    for group in itertools.zip_longest(*batched.values()):
        batch = dict(zip(batched, group))
        counted = {name: 0 if b is None else len(b) for name, b in batch.items()}
        if len(set(counted.values())) > 1:
            # A stream that filled the batch may go on; one that came up short has ended.
            seen = scores["output"].frames
            lengths = ", ".join(
                f"{name} {'more than ' if n == batch_size else ''}{seen + n - (n == batch_size)}"
                for name, n in counted.items()
            )
            raise InputError(f"{paths['output']}: videos differ in length: expected equal frame counts, got {lengths}")
        out = batch["output"].to(device)  # (B, 3, H, W)
        size = tuple(out.shape[-2:])
        for name, frames in batch.items():
            if frames.shape[-2:] != out.shape[-2:]:
                raise InputError(
                    f"{paths[name]}: frame size {frames.shape[-1]}x{frames.shape[-2]} does not match the "
                    f"output's {out.shape[-1]}x{out.shape[-2]}"
                )
        source = batch.get("input", batch["output"]).to(device)  # (B, 3, H, W)
        flow_luma = rgb_to_luma(source)  # (B, 1, H, W)
        flows = scores["output"].add(out, flow_luma)
        if truth is not None:
            true = batch["truth"].to(device)  # (B, 3, H, W)
            scores["truth"].add(true, flow_luma, flows)
            psnrs += psnr(out, true).tolist()
            ssims += ssim(out, true).tolist()
        bar.update(len(out))
    bar.close()
    frames = scores["output"].frames
    if frames == 0:
        raise InputError(f"{paths['output']}: has no video frames")
    result = {
        "video": str(paths["output"]),
        "frames": frames,
        "size": [size[1], size[0]],  # width, height as evaluated
        "flow": provider.name,
        "flow_from": str(paths["input"]) if "input" in paths else "output luma",
        **scores["output"].summary(),
    }
    if truth is not None:
        finite = [p for p in psnrs if np.isfinite(p)]
        result["psnr"] = float(np.mean(finite)) if finite else float("inf")
        result["ssim"] = float(np.mean(ssims))
        result["truth"] = {"video": str(paths["truth"]), **scores["truth"].summary()}
    return result
