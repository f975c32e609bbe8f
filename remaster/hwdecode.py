"""Where a film is decoded: FFmpeg on the CPU, or NVDEC on an NVIDIA GPU through PyAV's hardware
acceleration, falling back to the CPU with a one-line note wherever NVDEC is not offered (no GPU,
no driver, an FFmpeg without CUDA, a codec NVDEC does not decode)."""

from __future__ import annotations

from .errors import InputError, one_line

DECODERS = ("cpu", "nvdec")


def nvdec():
    """PyAV's settings for decoding with NVDEC (CUDA), pictures downloaded to host memory.

    The codes are the same as the CPU decoder's: H.264, HEVC, VP9 and AV1 decoding is exact by
    their standards, so only where the decoding runs changes (tests/test_gpu_path.py checks it
    on a GPU). Streams NVDEC cannot decode fall back to FFmpeg's software decoder."""
    from av.codec.hwaccel import HWAccel

    return HWAccel("cuda", allow_software_fallback=True)


def open_decoding(reader, decoder: str) -> None:
    """Open `reader` (a `VideoReader` being built: its `_open(hwaccel)`) with `decoder`; set its
    `decoder` to what decodes and its `decoder_note` to why NVDEC, asked for, is not used."""
    if decoder == "nvdec":
        try:
            reader._open(nvdec())
        except InputError:
            raise
        except Exception as error:  # noqa: BLE001 - no GPU, no driver, an FFmpeg without CUDA (PyAV raises several kinds): the CPU decodes
            reader.decoder_note = (
                f"{reader.path.name}: NVDEC is not available here ({one_line(error)}); decoded on the CPU"
            )
        else:
            if reader.video.codec_context.is_hwaccel:
                reader.decoder = "nvdec"
                return
            name = reader.video.codec_context.name
            reader.decoder_note = f"{reader.path.name}: NVDEC does not decode this {name} stream; decoded on the CPU"
            reader.close()
    reader._open(None)
