"""Where a film is decoded: FFmpeg on the CPU, or NVDEC on an NVIDIA GPU through PyAV's hardware
acceleration, falling back to the CPU with a one-line note wherever NVDEC is not offered (no GPU,
no driver, an FFmpeg without CUDA, a codec NVDEC does not decode)."""

from __future__ import annotations

DECODERS = ("cpu", "nvdec")


def nvdec():
    """PyAV's settings for decoding with NVDEC (CUDA), pictures downloaded to host memory.

    The codes are the same as the CPU decoder's: H.264, HEVC, VP9 and AV1 decoding is exact by
    their standards, so only where the decoding runs changes (tests/test_gpu_path.py checks it
    on a GPU). Streams NVDEC cannot decode fall back to FFmpeg's software decoder."""
    from av.codec.hwaccel import HWAccel

    return HWAccel("cuda", allow_software_fallback=True)
