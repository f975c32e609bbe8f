"""Decoded frames as data: the source's format, frame batches of luma codes, and code conversions.

This module is where code values meet the stages' float convention (docs/CONTRACTS.md): stages
see full-range Y' in [0, 1] and signed chroma offsets; files hold integer code values in a range
(limited "TV" or full "PC"), a bit depth and a matrix (BT.601 or BT.709). Every one of those is
decided here explicitly, from the stream's tags where it has them and by a stated rule where it
does not, and recorded in `SourceFormat.notes` for the report (DESIGN: never guess silently).
The encode side, original luma plus new chroma back to pictures, is `assemble`.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np
import torch
from torch import Tensor

# swscale flags for our conversions: accurate rounding, so a repack keeps Y codes exactly.
_EXACT = av.video.reformatter.Interpolation.BILINEAR | av.video.reformatter.Interpolation.ACCURATE_RND

# Formats whose plane 0 is the Y' plane, one little-endian sample per pixel, LSB-aligned: the
# decoded Y plane is read from them without any conversion. (yuvj* are the full-range aliases.)
_SUBSAMPLING = {"420": (1, 1), "422": (1, 0), "444": (0, 0), "440": (0, 1), "411": (2, 0), "410": (2, 2)}
_DIRECT_Y: dict[str, int] = {"gray": 8, "nv12": 8, "nv21": 8, "nv16": 8, "nv24": 8}
for _sub in _SUBSAMPLING:
    for _prefix in ("yuv", "yuvj", "yuva"):
        _DIRECT_Y[f"{_prefix}{_sub}p"] = 8
    for _bits in (9, 10, 12, 14, 16):
        _DIRECT_Y[f"yuv{_sub}p{_bits}le"] = _bits
        _DIRECT_Y[f"yuva{_sub}p{_bits}le"] = _bits
for _bits in (9, 10, 12, 14, 16):
    _DIRECT_Y[f"gray{_bits}le"] = _bits

# AVColorSpace values (libavutil/pixfmt.h) -> the matrix our color module knows.
_MATRIX_OF_COLORSPACE = {1: "bt709", 5: "bt601", 6: "bt601", 4: "bt601", 7: "bt709"}
_COLORSPACE_NAMES = {
    0: "rgb",
    1: "bt709",
    2: "unspecified",
    4: "fcc",
    5: "bt470bg",
    6: "smpte170m",
    7: "smpte240m",
    9: "bt2020nc",
    10: "bt2020c",
}
RANGE_MPEG, RANGE_JPEG = 1, 2  # AVColorRange: limited ("TV") and full ("PC")


def default_matrix(height: int) -> str:
    """The matrix players assume for untagged video: BT.709 from 720 lines up, else BT.601."""
    return "bt709" if height >= 720 else "bt601"


@dataclass(frozen=True)
class SourceFormat:
    """How the decoded input's pictures are read as luma; fixed by the first decoded frame."""

    pix_fmt: str  # decoded pixel format, e.g. "yuv420p", "yuvj420p", "gray", "rgb24"
    width: int
    height: int
    bit_depth: int  # of the Y codes we read (after `convert_to`, if any)
    full_range: bool  # Y codes span [0, 2^bits - 1] rather than [16, 235] << (bits - 8)
    matrix: str  # "bt601" | "bt709": the matrix new chroma is expressed in
    chroma_shift: tuple[int, int]  # log2 chroma subsampling (x, y) of the source; (0, 0) for gray/RGB
    has_chroma: bool  # False for gray sources
    convert_to: str | None = None  # planar format the frames are converted to first (RGB, packed...)
    notes: tuple[str, ...] = ()  # decisions taken without a tag, for the report

    @classmethod
    def from_frame(cls, frame: av.VideoFrame) -> SourceFormat:
        name = frame.format.name
        notes = []
        tagged_range = int(frame.color_range or 0)
        tagged_space = int(frame.colorspace or 2)
        is_rgb = bool(frame.format.is_rgb) or name.startswith(("gbr", "rgb", "bgr", "argb", "abgr", "0rgb", "pal8"))
        convert_to = None
        if is_rgb:
            # RGB has no Y'; we define it with the standard matrix for the size, in limited range,
            # the form every player expects, and tag the output with that choice.
            matrix = default_matrix(frame.height)
            depth = 10 if max(c.bits for c in frame.format.components) > 8 else 8
            convert_to = "yuv444p" if depth == 8 else "yuv444p10le"
            notes.append(f"RGB source ({name}) converted to Y'CbCr with {matrix}, limited range")
            return cls(name, frame.width, frame.height, depth, False, matrix, (0, 0), True, convert_to, tuple(notes))
        if name in _DIRECT_Y:
            depth = _DIRECT_Y[name]
        else:
            # Packed or exotic Y'CbCr (uyvy422, p010le, ...): repack to planar at the same depth;
            # swscale keeps Y codes when neither range nor matrix change.
            depth = max(c.bits for c in frame.format.components)
            depth = 8 if depth <= 8 else (10 if depth <= 10 else 16)
            convert_to = "yuv444p" if depth == 8 else f"yuv444p{depth}le"
            notes.append(f"{name} source repacked to {convert_to}")
        has_chroma = not name.startswith("gray")
        if name.startswith("yuvj"):
            full = True  # the yuvj formats are full range by definition
        elif tagged_range in (RANGE_MPEG, RANGE_JPEG):
            full = tagged_range == RANGE_JPEG
        elif not has_chroma:
            full = True  # swscale and players treat untagged gray as full range
            notes.append("untagged gray source read as full range")
        else:
            full = False
            notes.append("untagged range read as limited (TV) range")
        if tagged_space in _MATRIX_OF_COLORSPACE:
            matrix = _MATRIX_OF_COLORSPACE[tagged_space]
            if tagged_space == 7:
                notes.append("smpte240m matrix approximated by bt709 for new chroma")
        else:
            matrix = default_matrix(frame.height)
            if tagged_space in (2, 0):
                what = "gray source" if not has_chroma else "untagged matrix"
                notes.append(f"{what}: new chroma in {matrix} (the players' default for {frame.height} lines)")
            else:
                tagged = _COLORSPACE_NAMES.get(tagged_space, tagged_space)
                notes.append(f"matrix {tagged} not supported for new chroma; used {matrix}")
        shift = (0, 0)  # gray and converted sources: the output may take any subsampling
        if has_chroma and convert_to is None:
            semi_planar = {"nv12": (1, 1), "nv21": (1, 1), "nv16": (1, 0), "nv24": (0, 0)}
            shift = semi_planar.get(name) or _SUBSAMPLING[next(s for s in _SUBSAMPLING if s in name)]
        return cls(name, frame.width, frame.height, depth, full, matrix, shift, has_chroma, convert_to, tuple(notes))

    def matches(self, frame: av.VideoFrame) -> bool:
        """Whether `frame` has the first frame's pixel format and size (`y_codes` reads it as is)."""
        return frame.format.name == self.pix_fmt and frame.width == self.width and frame.height == self.height

    def y_codes(self, frame: av.VideoFrame) -> np.ndarray:
        """The frame's Y' plane as an `(H, W)` array of code values (a copy, `codes_to_numpy_dtype`)."""
        if not self.matches(frame):
            raise ValueError(
                f"frame format changed mid-stream: expected {self.pix_fmt} {self.width}x{self.height}, "
                f"got {frame.format.name} {frame.width}x{frame.height} (read it with fitted_y_codes)"
            )
        if self.convert_to is not None:
            frame = self._convert(frame)
        plane = plane_array(frame.planes[0], self.bit_depth, self.width, self.height)
        return plane.astype(codes_to_numpy_dtype(self.bit_depth))  # astype copies: the frame can go

    def fitted_y_codes(self, frame: av.VideoFrame) -> np.ndarray:
        """Y codes, `(H, W)` at the first frame's size, depth and range, of a later frame whose size
        or pixel format changed mid-stream (a broadcast capture across a programme change).

        The picture is scaled to fit inside the first frame's size with its aspect ratio kept and
        centred on black bars (Y 16 << (bits - 8) limited, 0 full range). Bars rather than
        stretching (which distorts every face and wheel) or cropping (which loses picture the
        archive has): nothing of the frame is lost or bent, and the bars are plainly not picture.
        Pixels are taken as square in both parts: PyAV does not expose a frame's own sample aspect.
        These frames' luma is resampled, so it is no longer the decoded codes; the reader counts
        them for the report. A frame of the first size in another pixel format is only converted
        (range and depth as the first frame's), so its Y is within a code of the decoded one.
        """
        width, height = fitted_size(frame.width, frame.height, self.width, self.height)
        name = frame.format.name
        rgb = bool(frame.format.is_rgb) or name.startswith(("gbr", "rgb", "bgr", "argb", "abgr", "0rgb", "pal8"))
        tagged = int(frame.color_range or 0)
        src_full = (
            rgb or name.startswith("yuvj") or tagged == RANGE_JPEG or (name.startswith("gray") and tagged != RANGE_MPEG)
        )
        src_matrix = _MATRIX_OF_COLORSPACE.get(int(frame.colorspace or 2), default_matrix(frame.height))
        target = self.convert_to or self.pix_fmt  # planar, plane 0 is Y' at `bit_depth` (see from_frame)
        fitted = frame.reformat(
            width=width,
            height=height,
            format=target,
            src_colorspace="itu709" if src_matrix == "bt709" else "itu601",
            dst_colorspace="itu709" if self.matrix == "bt709" else "itu601",
            src_color_range="JPEG" if src_full else "MPEG",
            dst_color_range="JPEG" if self.full_range else "MPEG",
            interpolation=av.video.reformatter.Interpolation.BICUBIC | av.video.reformatter.Interpolation.ACCURATE_RND,
        )
        black = 0 if self.full_range else 16 << (self.bit_depth - 8)
        codes = np.full((self.height, self.width), black, dtype=codes_to_numpy_dtype(self.bit_depth))
        top, left = (self.height - height) // 2, (self.width - width) // 2
        if self.height % 2 == 0:
            top -= top % 2
        if self.width % 2 == 0:
            left -= left % 2
        codes[top : top + height, left : left + width] = plane_array(fitted.planes[0], self.bit_depth, width, height)
        return codes

    def _convert(self, frame: av.VideoFrame) -> av.VideoFrame:
        space = "itu709" if self.matrix == "bt709" else "itu601"
        if self.pix_fmt.startswith(("gbr", "rgb", "bgr", "argb", "abgr", "0rgb", "pal8")):
            return frame.reformat(
                format=self.convert_to,
                src_colorspace=space,
                dst_colorspace=space,
                src_color_range="JPEG",
                dst_color_range="MPEG",
                interpolation=_EXACT,
            )
        rng = "JPEG" if self.full_range else "MPEG"
        return frame.reformat(
            format=self.convert_to,
            src_colorspace=space,
            dst_colorspace=space,
            src_color_range=rng,
            dst_color_range=rng,
            interpolation=_EXACT,
        )


def fitted_size(width: int, height: int, into_width: int, into_height: int) -> tuple[int, int]:
    """The largest size with `width`:`height`'s aspect ratio that fits in `into_width`x`into_height`.

    Rounded down to even sides where the frame's sides are even, so the bars around it (centred,
    at even offsets) do not shift the picture off a chroma sample row or column."""
    scale = min(into_width / width, into_height / height)
    fit_w = min(into_width, max(1, round(width * scale)))
    fit_h = min(into_height, max(1, round(height * scale)))
    if (fit_w, fit_h) != (into_width, into_height):
        fit_w -= fit_w % 2 if into_width % 2 == 0 and fit_w > 1 else 0
        fit_h -= fit_h % 2 if into_height % 2 == 0 and fit_h > 1 else 0
    return fit_w, fit_h


def plane_array(plane, bit_depth: int, width: int, height: int) -> np.ndarray:
    """A writable `(height, width)` numpy view of a PyAV plane (line padding cut off)."""
    dtype = np.dtype(np.uint8) if bit_depth <= 8 else np.dtype("<u2")
    return np.frombuffer(plane, dtype=dtype).reshape(-1, plane.line_size // dtype.itemsize)[:height, :width]


@dataclass
class FrameBatch:
    """A batch of decoded frames as luma code planes plus their timing.

    `y` is `(N, 1, H, W)` integer code values of the decoded Y' plane, on the CPU, in the dtype
    `code_dtype(bit_depth)` gives (torch has no full uint16 support). Only these 1-2 bytes per
    pixel travel to the accelerator; the float luma is made there.
    """

    y: Tensor  # (N, 1, H, W) uint8 | int16 | int32 code values
    pts: tuple[int, ...]  # presentation timestamps, in `time_base` units
    time_base: Fraction
    source: SourceFormat
    chroma_size: tuple[int, int]  # (Hc, Wc) of the output's chroma planes
    index: int = 0  # frame number of the first frame of the batch
    # Warm-up frames from before a segment: they prime the stages' carried state, never reach a file.
    lead: bool = False
    # Look-ahead frames from after a segment's end (restoration's windows reach past it): seen by
    # the restore stages, never colorized or written.
    tail: bool = False

    def __post_init__(self) -> None:
        if self.y.ndim != 4 or self.y.shape[1] != 1:
            raise ValueError(f"FrameBatch.y: expected shape (N, 1, H, W), got {tuple(self.y.shape)}")
        expected = code_dtype(self.source.bit_depth)
        if self.y.dtype != expected:
            raise ValueError(
                f"FrameBatch.y: expected {expected} codes for {self.source.bit_depth}-bit, got {self.y.dtype}"
            )
        if self.y.shape[-2:] != (self.source.height, self.source.width):
            expected = f"{self.source.height}x{self.source.width}"
            raise ValueError(f"FrameBatch.y: expected {expected} planes, got {tuple(self.y.shape[-2:])}")
        if len(self.pts) != self.y.shape[0]:
            raise ValueError(f"FrameBatch: {self.y.shape[0]} frames but {len(self.pts)} timestamps")
        if len(self.chroma_size) != 2 or min(self.chroma_size) < 1:
            raise ValueError(f"FrameBatch.chroma_size: expected (Hc, Wc) >= 1, got {self.chroma_size}")
        if not isinstance(self.time_base, Fraction) or self.time_base <= 0:
            raise ValueError(f"FrameBatch.time_base: expected a positive Fraction, got {self.time_base!r}")

    def __len__(self) -> int:
        return self.y.shape[0]

    def __repr__(self) -> str:  # shapes, not tensors
        return (
            f"FrameBatch(y={tuple(self.y.shape)} {self.y.dtype}, frames {self.index}..{self.index + len(self) - 1}, "
            f"pts {self.pts[0] if self.pts else None}.., time_base={self.time_base}, source={self.source.pix_fmt} "
            f"{self.source.bit_depth}-bit {'full' if self.source.full_range else 'limited'} {self.source.matrix}, "
            f"chroma_size={self.chroma_size})"
        )

    def luma(self, device: torch.device | str = "cpu") -> Tensor:
        """Full-range Y' in [0, 1], `(N, 1, H, W)` float32 on `device` (codes are moved, not floats)."""
        codes = self.y.to(device, non_blocking=True)  # host->device: 1-2 bytes per pixel
        return codes_to_luma(codes, self.source.bit_depth, self.source.full_range)


def code_dtype(bit_depth: int) -> torch.dtype:
    """Torch dtype that holds `bit_depth`-bit codes: uint8, int16 up to 15 bits, else int32."""
    return torch.uint8 if bit_depth <= 8 else (torch.int16 if bit_depth <= 15 else torch.int32)


def codes_to_numpy_dtype(bit_depth: int) -> np.dtype:
    return np.dtype(np.uint8) if bit_depth <= 8 else np.dtype(np.int16 if bit_depth <= 15 else np.int32)


def codes_to_luma(codes: Tensor, bit_depth: int, full_range: bool) -> Tensor:
    """Integer Y' codes -> full-range float Y' in [0, 1] (limited range expanded, then clipped)."""
    y = codes.float()
    if full_range:
        return y / float((1 << bit_depth) - 1)
    scale = float(1 << (bit_depth - 8))
    return ((y - 16.0 * scale) / (219.0 * scale)).clamp(0.0, 1.0)


def convert_y_depth(codes: np.ndarray, from_bits: int, to_bits: int, full_range: bool) -> np.ndarray:
    """Y codes at another bit depth: exact shifts for limited range, rounded rescale for full."""
    if from_bits == to_bits:
        return codes  # the promise: the decoded codes themselves
    wide = codes.astype(np.int64)
    if not full_range:
        out = (
            wide << (to_bits - from_bits)
            if to_bits > from_bits
            else (wide + (1 << (from_bits - to_bits - 1))) >> (from_bits - to_bits)
        )
    else:
        out = (wide * ((1 << to_bits) - 1) + ((1 << from_bits) - 1) // 2) // ((1 << from_bits) - 1)
    return out.clip(0, (1 << to_bits) - 1).astype(np.uint8 if to_bits <= 8 else np.uint16)
