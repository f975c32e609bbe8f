"""Encoders: the codec choices, the planar format each one is handed, and its options.

`CODECS` is the one list of `--codec` names. `choose_layout` decides the output's pixel format
from the source's (keeping its subsampling and depth where the encoder takes them), and
`encoder_options` maps CRF and preset onto each encoder's own options.
"""

from __future__ import annotations

import io

import av

from remaster.errors import ConfigError
from remaster.media.assemble import OutputLayout
from remaster.media.formats import SourceFormat

CODECS = ("libx264", "libx265", "h264_nvenc", "hevc_nvenc", "prores", "ffv1")

# (bit depths, chroma subsamplings as log2 (x, y)) each encoder takes as planar input.
_SUB420, _SUB422, _SUB444 = (1, 1), (1, 0), (0, 0)
_ENCODER_FORMATS = {
    "libx264": ((8, 10), (_SUB420, _SUB422, _SUB444)),
    "libx265": ((8, 10, 12), (_SUB420, _SUB422, _SUB444)),
    "h264_nvenc": ((8,), (_SUB420, _SUB444)),
    "hevc_nvenc": ((8, 10), (_SUB420, _SUB444)),
    "prores": ((10,), (_SUB422, _SUB444)),
    "ffv1": ((8, 9, 10, 12, 14, 16), (_SUB420, _SUB422, _SUB444)),
}
# FFmpeg encoder behind each --codec name: prores_ks is FFmpeg's full-featured ProRes encoder.
_ENCODER_NAME = {"prores": "prores_ks"}
# x264-style --preset names to NVENC's p1 (fastest) .. p7 (best).
_NVENC_PRESETS = {
    "ultrafast": "p1",
    "superfast": "p1",
    "veryfast": "p2",
    "faster": "p3",
    "fast": "p3",
    "medium": "p4",
    "slow": "p5",
    "slower": "p6",
    "veryslow": "p7",
    "placebo": "p7",
}
X26X_PRESETS = (
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
    "placebo",
)


def choose_layout(source: SourceFormat, codec: str) -> OutputLayout:
    """The planar format we hand `codec`: the source's subsampling and depth where it takes them.

    Subsampled formats need even sizes in x264/x265/NVENC/ProRes, so odd-sized sources go 4:4:4
    (chroma is ours anyway; luma stays exact). Gray sources get 4:2:0 (4:2:2 for ProRes).
    """
    if codec not in _ENCODER_FORMATS:
        raise ConfigError(f"unknown codec {codec!r}: expected one of {', '.join(CODECS)}")
    depths, subsamplings = _ENCODER_FORMATS[codec]
    shift = source.chroma_shift if source.has_chroma and source.convert_to is None else _SUB420
    if shift not in subsamplings:
        shift = _SUB420 if _SUB420 in subsamplings else _SUB422
    odd = source.width % 2 or source.height % 2
    if odd and shift != _SUB444 and codec != "ffv1":
        shift = _SUB444
    depth = (
        source.bit_depth
        if source.bit_depth in depths
        else min((d for d in depths if d >= source.bit_depth), default=max(depths))
    )
    sub = {_SUB420: "420", _SUB422: "422", _SUB444: "444"}[shift]
    pix_fmt = f"yuv{sub}p" + ("" if depth == 8 else f"{depth}le")
    encoder_pix_fmt = pix_fmt
    if codec.endswith("_nvenc") and depth > 8:
        encoder_pix_fmt = "p010le" if shift == _SUB420 else "yuv444p16le"  # NVENC's 10-bit inputs
    return OutputLayout(
        pix_fmt, depth, source.full_range, source.matrix, shift, encoder_pix_fmt, source.width, source.height
    )


def encoder_options(codec: str, crf: int, preset: str, layout: OutputLayout) -> tuple[str, dict, list[str]]:
    """(FFmpeg encoder name, its options, notes on options it ignores)."""
    notes: list[str] = []
    if codec in ("libx264", "libx265"):
        if preset not in X26X_PRESETS:
            raise ConfigError(
                f"--preset {preset!r} is not an {codec} preset: expected one of {', '.join(X26X_PRESETS)}"
            )
        options = {"crf": str(crf), "preset": preset}
        if codec == "libx264" and crf == 0:
            # CRF 0 is lossless only at 8 bits; QP 0 is lossless at every depth (x264 --qp 0).
            options = {"qp": "0", "preset": preset}
        if codec == "libx265":
            # x265's CRF 0 is not lossless; its lossless mode is a separate switch.
            options["x265-params"] = "log-level=error" + (":lossless=1" if crf == 0 else "")
        return codec, options, notes
    if codec.endswith("_nvenc"):
        nv_preset = _NVENC_PRESETS.get(preset, preset)
        if nv_preset not in {f"p{i}" for i in range(1, 8)}:
            raise ConfigError(f"--preset {preset!r} is not an NVENC preset: expected p1..p7 or an x264 preset name")
        # Constant quality: NVENC's analogue of CRF (-cq with VBR and no bitrate cap).
        return codec, {"rc": "vbr", "cq": str(max(crf, 1)), "b": "0", "preset": nv_preset}, notes
    if codec == "prores":
        notes.append("prores: --crf and --preset do not apply (quality is set by the profile)")
        return _ENCODER_NAME[codec], {"profile": "4" if layout.chroma_shift == _SUB444 else "3"}, notes
    if codec == "ffv1":
        notes.append("ffv1 is lossless: --crf and --preset do not apply")
        # Version 3 with slice CRCs: the archival profile (RFC 9043); intra-only for robust cuts.
        options = {"level": "3", "slicecrc": "1", "g": "1"}
        if min(layout.width, layout.height) < 32:
            # FFmpeg's automatic slice count cannot cut tiny frames (2x3 4:2:0 fails to open
            # with ENOSYS); one slice works at every size (tests/test_properties.py found it).
            options["slices"] = "1"
        return codec, options, notes
    raise ConfigError(f"unknown codec {codec!r}: expected one of {', '.join(CODECS)}")


def container_holds(format_name: str, codec_name: str) -> bool:
    """Whether FFmpeg's `format_name` muxer can hold a stream of `codec_name`."""
    try:
        with av.open(io.BytesIO(), "w", format=format_name) as probe:
            return codec_name in probe.supported_codecs
    except Exception:
        return False
