"""Encrypted (DRM) input, found when the file is opened, before any work (issue 19).

FFmpeg opens many protected files and even "decodes" them: the pictures are noise or every packet
is rejected, and the run fails, if at all, only at the end. `refuse_encrypted` looks where each
format says its content is protected:

- ASF/WMV: a Content Encryption, Extended Content Encryption or (PlayReady) Advanced Content
  Encryption object in the header, or a stream whose properties say "encrypted content";
- MP4/MOV: a protected sample entry (`encv`, `enca`, ... CENC and FairPlay, `drms`/`drmi` iTunes);
- anything FFmpeg marks itself: the ASF tags it sets for those objects, Matroska/WebM's
  ContentEncryption key id (`enc_key_id`).
"""

from __future__ import annotations

import struct
import uuid
from pathlib import Path

from remaster.errors import InputError

_READ_LIMIT = 64 << 20  # header bytes read at most (a moov box of a long film is a few MB)


def _guid(text: str) -> bytes:
    return uuid.UUID(text).bytes_le  # ASF stores GUIDs little-endian


_ASF_HEADER = _guid("75B22630-668E-11CF-A6D9-00AA0062CE6C")
_ASF_HEADER_EXTENSION = _guid("5FBF03B5-A92E-11CF-8EE3-00C00C205365")
_ASF_STREAM_PROPERTIES = _guid("B7DC0791-A9B7-11CF-8EE6-00C00C205365")
_ASF_ENCRYPTION = {
    _guid("2211B3FB-BD23-11D2-B4B7-00A0C955FC6E"): "ASF Content Encryption",
    _guid("298AE614-2622-4C17-B935-DAE07EE9289C"): "ASF Extended Content Encryption",
    _guid("43058533-6981-49E6-9B74-AD12CB86D58C"): "ASF Advanced Content Encryption (PlayReady)",
}
_MP4_PROTECTED = {b"encv", b"enca", b"encs", b"enct", b"encm", b"drms", b"drmi"}  # ISO 23001-7, iTunes
_MP4_PATH = (b"moov", b"trak", b"mdia", b"minf", b"stbl", b"stsd")
_FFMPEG_TAGS = ("encryption", "ASF_Protection_Type", "ASF_Key_ID", "ASF_License_URL")


def refuse_encrypted(path: Path, container) -> None:
    """A one-line `InputError` if the opened `container` (of the file at `path`) is encrypted."""
    what = encryption(path, container)
    if what is not None:
        raise InputError(
            f"{path}: the video is encrypted (DRM: {what}); remaster cannot decode it: use an unprotected copy"
        )


def encryption(path: Path, container) -> str | None:
    """What says the file is encrypted, or None."""
    fmt = container.format.name.split(",")
    tags = container.metadata or {}
    if "asf" in fmt and any(key in tags for key in _FFMPEG_TAGS):
        return tags.get("encryption") or "ASF Content Encryption"
    for stream in container.streams:
        if "enc_key_id" in (stream.metadata or {}):
            return f"Matroska ContentEncryption on stream #{stream.index}"
    try:
        with open(path, "rb") as file:
            if "asf" in fmt:
                return _asf(file)
            if "mov" in fmt or "mp4" in fmt:
                return _mp4(file)
    except (OSError, struct.error, ValueError):
        return None  # unreadable or odd headers: FFmpeg's own reading decides
    return None


def _asf(file) -> str | None:
    head = file.read(30)
    if len(head) < 30 or head[:16] != _ASF_HEADER:
        return None
    size = struct.unpack_from("<Q", head, 16)[0]
    header = head + file.read(min(size, _READ_LIMIT) - 30)
    return _asf_objects(header, 30, len(header))


def _asf_objects(data: bytes, start: int, end: int) -> str | None:
    """Walk the ASF objects in `data[start:end]` (the header's, and the header extension's)."""
    at = start
    while at + 24 <= end:
        guid, size = data[at : at + 16], struct.unpack_from("<Q", data, at + 16)[0]
        if size < 24:
            return None
        if guid in _ASF_ENCRYPTION:
            return _ASF_ENCRYPTION[guid]
        if guid == _ASF_STREAM_PROPERTIES and at + 74 <= end:
            flags = struct.unpack_from("<H", data, at + 72)[0]
            if flags & 0x8000:  # Encrypted Content Flag
                return f"ASF stream {flags & 0x7F} flagged encrypted"
        if guid == _ASF_HEADER_EXTENSION and at + 46 <= end:
            found = _asf_objects(data, at + 46, min(at + size, end))  # after reserved GUID, WORD, data size
            if found:
                return found
        at += size
    return None


def _mp4(file) -> str | None:
    """The protected sample entry of any track, following moov/trak/mdia/minf/stbl/stsd."""
    file.seek(0, 2)
    end = file.tell()
    for kind, start, size in _boxes_in_file(file, end):
        if kind == b"moov" and size <= _READ_LIMIT:
            file.seek(start)
            return _protected_entry(file.read(size), 1)
    return None


def _boxes_in_file(file, end: int):
    at = 0
    while at + 8 <= end:
        file.seek(at)
        size, kind = struct.unpack(">I4s", file.read(8))
        header = 8
        if size == 1:
            size, header = struct.unpack(">Q", file.read(8))[0], 16
        elif size == 0:
            size = end - at
        if size < header:
            return
        yield kind, at + header, size - header
        at += size


def _boxes(data: bytes, at: int = 0):
    while at + 8 <= len(data):
        size, kind = struct.unpack_from(">I4s", data, at)
        header = 8
        if size == 1:
            size, header = struct.unpack_from(">Q", data, at + 8)[0], 16
        elif size == 0:
            size = len(data) - at
        if size < header:
            return
        yield kind, data[at + header : at + size]
        at += size


def _protected_entry(data: bytes, depth: int) -> str | None:
    for kind, body in _boxes(data):
        if kind != _MP4_PATH[depth]:
            continue
        if kind == b"stsd":  # version and flags, entry count, then the sample entries
            for entry, _ in _boxes(body, 8):
                if entry in _MP4_PROTECTED:
                    return f"MP4 '{entry.decode('latin-1')}' sample entry"
            continue
        found = _protected_entry(body, depth + 1)
        if found:
            return found
    return None
