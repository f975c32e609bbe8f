"""Encrypted (DRM) films are refused when the reader opens them, before any work (issue 19).

A DRM-protected WMV used to be colorized in full and refused only at the join, with FFmpeg's
"Invalid data found when processing input: 'avcodec_send_packet()'". The files here are real
films written by PyAV's muxers, then marked protected the way their formats say it: an ASF
Content Encryption or Extended Content Encryption object inserted into a WMV's header (valid GUID
and sizes, the header's object count updated), an MP4 whose sample entry is `encv` with the
`sinf` box that names the original format. FFmpeg still opens and decodes each of them (the
payload is in fact clear), so only the reader's check can refuse them.
"""

from __future__ import annotations

import struct
import uuid
from fractions import Fraction

import av
import numpy as np
import pytest
from conftest import shapes_frame
from test_corpus import run_cli

from remaster.errors import InputError
from remaster.media.reader import VideoReader

FRAMES = 12


def _film(path, video_codec: str, audio_codec: str | None):
    """A real short film: shapes on gray, with a tone where `audio_codec` is given."""
    with av.open(str(path), "w") as out:
        video = out.add_stream(video_codec, rate=Fraction(25))
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        sound = out.add_stream(audio_codec, rate=44100, layout="mono") if audio_codec else None
        if sound is not None:
            sound.codec_context.bit_rate = 64000  # WMA's encoder needs one
        for i in range(FRAMES):
            frame = av.VideoFrame.from_ndarray(shapes_frame(i, 64, 48), format="rgb24").reformat(format="yuv420p")
            frame.pts = i
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        if sound is not None:
            samples = 44100 * FRAMES // 25
            tone = (0.25 * np.sin(np.arange(samples) * 2 * np.pi * 440 / 44100)).astype(np.float32)
            for start in range(0, samples, 2048):
                chunk = av.AudioFrame.from_ndarray(tone[None, start : start + 2048], format="fltp", layout="mono")
                chunk.sample_rate, chunk.pts = 44100, start
                out.mux(sound.encode(chunk))
            out.mux(sound.encode(None))
    return path


def _asf_object(guid: str, body: bytes) -> bytes:
    return uuid.UUID(guid).bytes_le + struct.pack("<Q", 24 + len(body)) + body


def _content_encryption() -> bytes:
    """ASF Content Encryption Object (ASF spec 3.14): secret data, protection type, key id, licence URL."""
    fields = [b"\x5a" * 16, b"DRM\x00", b"remaster-test-key\x00", b"http://licence.invalid/\x00"]
    return _asf_object("2211B3FB-BD23-11D2-B4B7-00A0C955FC6E", b"".join(struct.pack("<I", len(f)) + f for f in fields))


def _extended_content_encryption() -> bytes:
    """ASF Extended Content Encryption Object (3.15): a DRM header of the data's own (here a WRMHEADER stub)."""
    data = "<WRMHEADER version='2.0.0.0'><DATA><KID>cmVtYXN0ZXI=</KID></DATA></WRMHEADER>".encode("utf-16-le")
    return _asf_object("298AE614-2622-4C17-B935-DAE07EE9289C", struct.pack("<I", len(data)) + data)


def _protect_asf(source, destination, obj: bytes):
    """`source` with `obj` as the first object of its ASF header (the header's size and count updated)."""
    data = bytearray(source.read_bytes())
    assert data[:16] == uuid.UUID("75B22630-668E-11CF-A6D9-00AA0062CE6C").bytes_le
    size, count = struct.unpack_from("<QI", data, 16)
    struct.pack_into("<QI", data, 16, size + len(obj), count + 1)
    destination.write_bytes(bytes(data[:30]) + obj + bytes(data[30:]))
    return destination


def _box(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", 8 + len(body)) + kind + body


def _protect_mp4(source, destination):
    """`source` (moov after mdat, so no chunk offset moves) with its `avc1` sample entry made `encv`
    and a `sinf` (frma avc1, schm cenc) appended to it, every enclosing box's size grown to match."""
    data = bytearray(source.read_bytes())
    entry = data.index(b"stsd", data.index(b"moov")) + 12  # after stsd's type, version, flags and entry count
    assert data[entry + 4 : entry + 8] == b"avc1"
    sinf = _box(b"sinf", _box(b"frma", b"avc1") + _box(b"schm", b"\0\0\0\0" + b"cenc" + struct.pack(">I", 0x10000)))
    data[entry + 4 : entry + 8] = b"encv"
    end = entry + struct.unpack_from(">I", data, entry)[0]
    data[end:end] = sinf
    for kind in (b"encv", b"stsd", b"stbl", b"minf", b"mdia", b"trak", b"moov"):
        at = data.rindex(kind, 0, entry + 8) - 4
        assert at + struct.unpack_from(">I", data, at)[0] >= end, kind  # it encloses the entry
        struct.pack_into(">I", data, at, struct.unpack_from(">I", data, at)[0] + len(sinf))
    assert data.index(b"moov") > data.index(b"mdat")
    destination.write_bytes(bytes(data))
    return destination


@pytest.fixture(scope="module")
def films(tmp_path_factory):
    folder = tmp_path_factory.mktemp("drm")
    wmv = _film(folder / "clear.wmv", "wmv2", "wmav2")
    mp4 = _film(folder / "clear.mp4", "libx264", None)
    return {
        "clear.wmv": wmv,
        "clear.mp4": mp4,
        "content-encryption.wmv": _protect_asf(wmv, folder / "content-encryption.wmv", _content_encryption()),
        "extended-encryption.wmv": _protect_asf(wmv, folder / "extended.wmv", _extended_content_encryption()),
        "encv.mp4": _protect_mp4(mp4, folder / "encv.mp4"),
    }


def _decoded_frames(path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


PROTECTED = {
    "content-encryption.wmv": "ASF Content Encryption",
    "extended-encryption.wmv": "ASF Extended Content Encryption",
    "encv.mp4": "MP4 'encv' sample entry",
}


@pytest.mark.parametrize("name", sorted(PROTECTED))
def test_reader_refuses_an_encrypted_film_that_ffmpeg_opens(films, name):
    path = films[name]
    assert _decoded_frames(path) == FRAMES  # FFmpeg plays it: only our check can tell
    with pytest.raises(InputError, match=rf"^{path}: the video is encrypted \(DRM: {PROTECTED[name]}\); remaster"):
        VideoReader(path)


@pytest.mark.parametrize("name", ["clear.wmv", "clear.mp4"])
def test_the_same_films_unprotected_are_read(films, name):
    with VideoReader(films[name]) as reader:
        assert sum(len(batch.pts) for batch in reader.batches(4, (32, 24))) == FRAMES


def test_colorize_refuses_an_encrypted_wmv_in_one_line_before_any_work(films, tmp_path, random_model_file):
    source = tmp_path / "film.wmv"
    source.write_bytes(films["content-encryption.wmv"].read_bytes())
    out = tmp_path / "out.mkv"
    args = ["colorize", source, "-o", out, "--model", random_model_file, "--device", "cpu", "--codec", "ffv1"]
    result = run_cli(args)
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [
        f"remaster: {source}: the video is encrypted (DRM: ASF Content Encryption); remaster cannot decode it: "
        "use an unprotected copy"
    ], result.stderr
    assert result.stdout == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["film.wmv"]  # no output, no segments, no journal
