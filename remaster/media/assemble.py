"""Pictures for the encoder: the decoded Y plane, code for code, plus the new chroma planes.

The encode side of `formats`: chroma from the stages (signed offsets at working resolution) is
upsampled to the output's chroma planes, fitted inside the gamut for the original luma, quantized to
code values, and packed with the untouched Y plane into an `av.VideoFrame` (DESIGN promise 1).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from remaster.color import gamut_scale
from remaster.media.formats import SourceFormat, convert_y_depth, plane_array

COLORSPACE_OF_MATRIX = {"bt709": 1, "bt601": 6}  # tags written when we chose the matrix


@dataclass(frozen=True)
class OutputLayout:
    """The planar Y'CbCr pictures we assemble for the encoder."""

    pix_fmt: str  # planar format we write planes into, e.g. "yuv420p", "yuv422p10le"
    bit_depth: int
    full_range: bool
    matrix: str
    chroma_shift: tuple[int, int]
    encoder_pix_fmt: str  # what the encoder takes; differs only for nvenc's semi-planar p010le
    width: int
    height: int

    @property
    def chroma_size(self) -> tuple[int, int]:
        """(Hc, Wc) of the chroma planes: rounded up, as FFmpeg does for odd sizes."""
        sx, sy = self.chroma_shift
        return (-(-self.height >> sy), -(-self.width >> sx))


def chroma_to_codes(chroma: Tensor, bit_depth: int, full_range: bool) -> Tensor:
    """Signed chroma offsets in [-0.5, 0.5] -> integer Cb, Cr codes (neutral = 128 << (bits - 8))."""
    scale = float(1 << (bit_depth - 8))
    if full_range:
        codes = chroma * float((1 << bit_depth) - 1) + 128.0 * scale
        low, high = 0.0, float((1 << bit_depth) - 1)
    else:
        codes = chroma * (224.0 * scale) + 128.0 * scale
        low, high = 16.0 * scale, 240.0 * scale
    return codes.round().clamp(low, high).to(torch.int16)  # int16: holds every code up to 15 bits


# Elements per channel that one pass of the CPU's gamut fit works on: small enough that its dozen
# passes read and write the level-2 cache, not main memory (at 4K, whole-batch passes made the
# assemble stage slower than x264: issue 11). The passes run on one torch thread: on a busy
# machine each of these thousands of small ops otherwise waited for a descheduled OpenMP partner,
# which made 2 threads 20x slower than 1 (measured at load 12-21 on 2 cores, 4K: 0.2 against 4.5
# fps; benchmarks/bench_assemble.py); the encoder and decoder threads have the other cores.
_CPU_CHUNK = 1 << 15


def assemble_chroma(luma: Tensor, chroma: Tensor, layout: OutputLayout) -> Tensor:
    """New chroma for the output planes, as integer codes on the CPU.

    luma: `(N, 1, H, W)` full-range Y' of the frames (any device); chroma: `(N, 2, h, w)` offsets
    from the stages at working resolution. Chroma is upsampled to the output's chroma planes and
    scaled into the RGB gamut of each pixel's own luma (`fit_chroma_to_gamut` keeps Y' exact), so
    that no player has to clip RGB and shift the brightness the archive had.
    Returns `(N, 2, Hc, Wc)` int16 codes on the CPU: only chroma travels back.
    """
    codes, ready = assemble_chroma_async(luma, chroma, layout)
    if ready is not None:
        ready()
    return codes


def assemble_chroma_async(luma: Tensor, chroma: Tensor, layout: OutputLayout):
    """`assemble_chroma` without waiting for a GPU: `(codes, ready)`, where `ready` is None on the
    CPU and otherwise a function that waits until `codes` (pinned host memory, filled by a
    non-blocking copy) hold the values. The encode thread calls it, so the calling thread goes on
    to queue the next batch while the copy runs: no host sync in the frame loop for it."""
    if (
        luma.ndim != 4
        or luma.shape[1] != 1
        or chroma.ndim != 4
        or chroma.shape[1] != 2
        or luma.shape[0] != chroma.shape[0]
    ):
        raise ValueError(
            f"expected luma (N, 1, H, W) and chroma (N, 2, h, w), got {tuple(luma.shape)} and {tuple(chroma.shape)}"
        )
    size = layout.chroma_size
    chroma = chroma.to(luma.device).float()
    if chroma.shape[-2:] != size:
        chroma = F.interpolate(
            chroma, size=size, mode="bilinear", align_corners=False
        )  # (N, 2, Hc, Wc), ours to change
    else:
        chroma = chroma.clone()  # the stages' tensor: fitted in place below
    small_luma = luma if luma.shape[-2:] == size else F.adaptive_avg_pool2d(luma, size)  # (N, 1, Hc, Wc)
    codes = torch.empty(chroma.shape, dtype=torch.int16, device=chroma.device)  # (N, 2, Hc, Wc)
    n, _, hc, wc = chroma.shape
    # On a GPU one pass over the whole batch; on the CPU bands of rows (of all frames, or of one
    # frame at a time when a row of all of them is already more than a chunk).
    frames, rows = [slice(None)], hc
    if chroma.device.type == "cpu":
        if n * wc <= _CPU_CHUNK:
            rows = _CPU_CHUNK // (n * wc)
        else:
            frames, rows = [slice(i, i + 1) for i in range(n)], max(1, _CPU_CHUNK // wc)
    threads = torch.get_num_threads()
    if chroma.device.type == "cpu" and threads > 1:
        torch.set_num_threads(1)  # see _CPU_CHUNK; this thread is the only one running torch ops meanwhile
    try:
        for frame in frames:
            for top in range(0, hc, rows):
                band = slice(top, top + rows)
                _fit_and_quantize(small_luma[frame, :, band], chroma[frame, :, band], codes[frame, :, band], layout)
    finally:
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
    if codes.device.type != "cuda":
        return codes, None
    host = torch.empty(codes.shape, dtype=codes.dtype, pin_memory=True)  # from torch's cached pinned blocks
    host.copy_(codes, non_blocking=True)  # device->host copy, queued: no wait here
    copied = torch.cuda.Event()
    copied.record()
    return host, copied.synchronize  # the reader of `host` waits on this (CPU-GPU sync point, in its thread)


def _fit_and_quantize(luma: Tensor, chroma: Tensor, codes: Tensor, layout: OutputLayout) -> None:
    """`chroma` (changed in place) clamped, fitted into the gamut and quantized into `codes`: the
    same arithmetic as `fit_chroma_to_gamut` then `chroma_to_codes`, without temporaries."""
    chroma.clamp_(-0.5, 0.5)
    chroma.mul_(gamut_scale(luma, chroma, layout.matrix).unsqueeze(-3))
    bits = layout.bit_depth
    scale = float(1 << (bits - 8))
    if layout.full_range:
        chroma.mul_(float((1 << bits) - 1)).add_(128.0 * scale)
        low, high = 0.0, float((1 << bits) - 1)
    else:
        chroma.mul_(224.0 * scale).add_(128.0 * scale)
        low, high = 16.0 * scale, 240.0 * scale
    codes.copy_(chroma.round_().clamp_(low, high))


def build_frame(
    y_codes: np.ndarray,
    chroma_codes: np.ndarray,
    pts: int,
    time_base: Fraction,
    source: SourceFormat,
    layout: OutputLayout,
    tags: dict,
) -> av.VideoFrame:
    """One output picture: the source's Y codes (depth-converted only if the output's depth
    differs) and our Cb, Cr codes, in `layout.encoder_pix_fmt`, with pts and color tags set.

    y_codes: `(H, W)` integer codes; chroma_codes: `(2, Hc, Wc)` int16 codes.
    """
    frame = av.VideoFrame(layout.width, layout.height, layout.pix_fmt)
    y = np.asarray(y_codes)
    y = convert_y_depth(y, source.bit_depth, layout.bit_depth, layout.full_range)
    plane_array(frame.planes[0], layout.bit_depth, layout.width, layout.height)[...] = y
    hc, wc = layout.chroma_size
    out_dtype = np.uint8 if layout.bit_depth <= 8 else np.uint16
    for k in (0, 1):
        plane_array(frame.planes[1 + k], layout.bit_depth, wc, hc)[...] = chroma_codes[k].astype(out_dtype)
    frame.pts = pts
    frame.time_base = time_base
    for key, value in tags.items():
        setattr(frame, key, value)
    if layout.encoder_pix_fmt != layout.pix_fmt:
        # nvenc takes semi-planar p010le; swscale repacks without touching code values.
        frame = frame.reformat(format=layout.encoder_pix_fmt)
        frame.pts = pts
        frame.time_base = time_base
    return frame
