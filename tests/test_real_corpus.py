"""Real files written by others (tests/real, see MANIFEST.tsv) through the real `remaster colorize`.

Issue "Every film FFmpeg can play comes out": whatever FFmpeg decodes, remaster must colorize, with
(DESIGN promises 1-3):
- as many frames as PyAV decodes from the input (packets that fail to decode are skipped, as a
  tolerant player does; the frames the decoder conceals count);
- frame order and luma: output Y plane i equals the decoder's frame i Y plane (bit-exact for 8-bit
  4:2:0 sources with FFV1, within 1 code value after a format conversion otherwise);
- timestamps: each frame's time kept (up to Matroska's millisecond clock and one constant shift
  below 0.1 s for a negative start);
- every audio track kept: packets byte-identical where stream-copied, or the same decoded samples
  where the codec had to change (sound that no container we write can hold, stored losslessly).
A file FFmpeg itself cannot open must be refused cleanly (exit 1, one `remaster: ` line).

Files that fail today are marked xfail (not strict) with the line remaster printed, in KNOWN below:
the suite stays green and the fixer sees what fails and why. Every run prints one summary line per
file (`pytest -rA tests/test_real_corpus.py`); REMASTER_REAL_STATUS=1 rewrites tests/real/STATUS.md.
"""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from test_corpus import run_cli

from remaster.media.recover import demux_resilient

REAL = Path(__file__).resolve().parent / "real"
MANIFEST = {
    row["file"]: row for row in csv.DictReader((REAL / "MANIFEST.tsv").read_text().splitlines(), delimiter="\t")
}
pytestmark = pytest.mark.slow  # about 40 runs of the CLI (2-9 s each, torch import included), two at a time
TIME_LIMIT = 120  # seconds per file; the slowest healthy one takes about 10 s on 2 shared cores

# file -> what fails today: the one line remaster printed (exit 1), or for "exit 0, but" the failed check.
# Remove an entry when the reader handles the file; the test then has to pass.
KNOWN: dict[str, str] = {}


def _probe(path: Path):
    """Y planes, frame times (seconds, None where the frame has no pts) and pixel format of every frame
    PyAV decodes from the first video stream, packet by packet. A packet that fails to decode gives
    a None plane (with the packet's time), so a caller can count either way. None when FFmpeg cannot
    open the file or finds no video in it."""
    planes, times, fmt = [], [], None
    try:
        container = av.open(str(path))
    except av.FFmpegError:
        return None
    with container:
        streams = [s for s in container.streams.video if not s.disposition & av.stream.Disposition.attached_pic]
        if not streams:
            return None
        # One thread, as the reader decodes: with slice threads FFmpeg's concealment of damaged
        # MPEG-2 races (the reference itself varied from run to run) and H.264's depends on the count.
        streams[0].thread_type, streams[0].thread_count = "NONE", 1
        for packet in container.demux(streams[0]):
            try:
                frames = packet.decode()
            except av.FFmpegError:
                planes.append(None)
                times.append(None if packet.pts is None else Fraction(packet.pts) * Fraction(packet.time_base))
                continue
            for frame in frames:
                fmt = fmt or frame.format.name
                planes.append(_luma(frame))
                times.append(None if frame.pts is None else Fraction(frame.pts) * Fraction(frame.time_base))
    return planes, times, fmt


def _luma(frame) -> np.ndarray:
    """The Y plane as uint8/uint16 `(H, W)`; RGB and other non-YUV frames are converted to yuv444p first."""
    if not frame.format.name.startswith(("yuv", "gray")):
        frame = frame.reformat(format="yuv444p")
    depth = max(c.bits for c in frame.format.components)
    dtype = np.uint8 if depth <= 8 else np.dtype("<u2")
    plane = frame.planes[0]
    row = plane.line_size // np.dtype(dtype).itemsize
    return np.frombuffer(plane, dtype).reshape(-1, row)[: plane.height, : plane.width].copy()


def _audio(path: Path) -> list[tuple[str, list[bytes]]]:
    """(codec, packet payloads) per audio stream, in file order; PCM as one byte string (demuxers cut
    stored samples into reads of their own choosing). ADTS headers are dropped (a muxer may remove them)."""
    try:
        container = av.open(str(path))
    except av.FFmpegError:
        return []
    with container:
        streams = list(container.streams.audio)
        if not streams:
            return []
        packets = {s.index: [] for s in streams}
        for packet in demux_resilient(container, *streams):  # a file cut short: as far as it goes
            if packet.size:
                data = bytes(packet)
                if data[:2] in (b"\xff\xf1", b"\xff\xf9") and packet.stream.codec_context.name == "aac":
                    data = data[7 if data[1] & 1 else 9 :]
                packets[packet.stream.index].append(data)
        out = []
        for s in streams:
            if not packets[s.index]:  # listed in the header, never written (cut before its first packet)
                continue
            name = s.codec_context.name
            out.append((name, [b"".join(packets[s.index])] if name.startswith("pcm_") else packets[s.index]))
        return out


def _samples(path: Path) -> list[np.ndarray]:
    """Decoded samples per audio stream, float64 `(channels, samples)` scaled to [-1, 1], decode errors skipped."""
    scale = {"u8": 128.0, "s16": 32768.0, "s32": 2.0**31, "s64": 2.0**63}
    out = []
    with av.open(str(path)) as container:
        count = len(container.streams.audio)
    for k in range(count):
        chunks = []
        with av.open(str(path)) as container:
            for packet in container.demux(audio=k):
                try:
                    frames = packet.decode()
                except av.FFmpegError:
                    continue
                for frame in frames:
                    kind = frame.format.name.rstrip("p")
                    array = frame.to_ndarray().astype(np.float64)
                    array = (array - (128 if kind == "u8" else 0)) / scale.get(kind, 1.0)
                    channels = len(frame.layout.channels)
                    chunks.append(array if frame.format.is_planar else array.reshape(-1, channels).T)
        out.append(np.concatenate(chunks, axis=1) if chunks else np.zeros((0, 0)))
    return out


@pytest.fixture(scope="module")
def results(random_model_file, tmp_path_factory) -> dict:
    """Run every file (two at a time); name -> (output path, CompletedProcess or TimeoutExpired)."""
    root = tmp_path_factory.mktemp("real")

    def one(name: str):
        output = root / name / "out.mkv"
        output.parent.mkdir()
        args = [
            "colorize",
            REAL / name,
            "-o",
            output,
            "--codec",
            "ffv1",
            "--model",
            random_model_file,
            "--device",
            "cpu",
            "--flow",
            "none",
            "--json",
        ]
        try:
            result = run_cli(args, timeout=TIME_LIMIT)
        except subprocess.TimeoutExpired as error:
            result = error
        return name, (output, result)

    only = os.environ.get("REAL_ONLY")  # e.g. REAL_ONLY=dv-pal.dv,mxf-jpeg2000.mxf while debugging
    chosen = [n for n in MANIFEST if not only or n in only.split(",")]
    with ThreadPoolExecutor(max_workers=2) as pool:
        done = dict(pool.map(one, chosen))
    if os.environ.get("REMASTER_REAL_STATUS"):
        _write_status(done)
    return done


def _answer(result) -> str:
    if isinstance(result, subprocess.TimeoutExpired):
        return f"no answer within {TIME_LIMIT} s"
    if result.returncode == 0:
        return "ok"
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    line = lines[-1] if lines else "(nothing on stderr)"
    line = re.sub(r"\S*/real\d*/([^/\s]+)/out\.mkv", r"OUT(\1)/out.mkv", line.replace(str(REAL) + "/", ""))
    return f"exit {result.returncode}: {line}"


def _write_status(done: dict) -> None:
    lines = [
        "# Real corpus: what remaster does with each file today",
        "",
        "Written by `REMASTER_REAL_STATUS=1 pytest tests/test_real_corpus.py`. `ok` means exit 0;",
        "the test then also checks frames, luma, timestamps and sound (see the test's result).",
        "",
        "| file | category | result today |",
        "|---|---|---|",
    ]
    for name in sorted(done):
        answer = _answer(done[name][1])
        if answer == "ok" and name in KNOWN:  # ran, but a check fails
            answer = KNOWN[name]
        answer = answer.replace("|", "\\|")
        lines.append(f"| {name} | {MANIFEST[name]['category']} | {answer} |")
    (REAL / "STATUS.md").write_text("\n".join(lines) + "\n")


def test_manifest_matches_files():
    """Every file in tests/real is in the manifest with its sha256, and the other way round."""
    import hashlib

    media = {p.name for p in REAL.iterdir() if p.suffix not in (".tsv", ".py", ".md") and p.is_file()}
    assert media == set(MANIFEST), f"not in MANIFEST.tsv: {media - set(MANIFEST)}; missing: {set(MANIFEST) - media}"
    for name, row in MANIFEST.items():
        assert hashlib.sha256((REAL / name).read_bytes()).hexdigest() == row["sha256"], name
        assert row["licence"] and row["source"], name
    assert sum(int(r["bytes"]) for r in MANIFEST.values()) < 6_000_000


def _params():
    for name in MANIFEST:
        marks = [pytest.mark.xfail(reason=KNOWN[name], strict=False)] if name in KNOWN else []
        yield pytest.param(name, marks=marks, id=name)


@pytest.mark.parametrize("name", list(_params()))
def test_real_file(name, results):
    if name not in results:
        pytest.skip("not chosen by REAL_ONLY")
    output, result = results[name]
    print(f"REAL {name} [{MANIFEST[name]['category']}]: {_answer(result)}")
    assert not isinstance(result, subprocess.TimeoutExpired), f"{name}: no answer within {TIME_LIMIT} s (a hang)"
    assert "Traceback" not in result.stderr, f"{name}: traceback on stderr:\n{result.stderr}"
    truth = _probe(REAL / name)
    if truth is None or not any(
        p is not None for p in truth[0]
    ):  # FFmpeg cannot play it either: a clean refusal is right
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert result.returncode == 1 and len(lines) == 1 and lines[0].startswith("remaster: "), result.stderr
        assert not output.exists()
        return
    assert result.returncode == 0, f"{name}: {_answer(result)}"
    report = json.loads(result.stdout)
    truth_planes, truth_times, truth_fmt = truth
    got = _probe(output)
    assert got is not None, f"{name}: the output has no readable video"
    planes, times, fmt = got
    failed = sum(p is None for p in truth_planes)
    decodable = len(truth_planes) - failed
    # The issue counts what the decoder gives, skipping packets it refuses; the README's damaged-data
    # rule instead puts the previous good frame in their place (and reports them). Either is accepted.
    if len(planes) == decodable:
        pairs = [(t, tt) for t, tt in zip(truth_planes, truth_times) if t is not None]
    else:
        assert failed and len(planes) == len(truth_planes), (
            f"{name}: PyAV decodes {decodable} frames from the input ({failed} packets fail), the output has"
            f" {len(planes)} (report: {report['frames']} frames, {report.get('damaged_frames', 0)} damaged)"
        )
        entries = list(zip(truth_planes, truth_times))
        if all(tt is not None for tt in truth_times):  # packets fail in decode order; frames come in time order
            entries.sort(key=lambda entry: entry[1])
        pairs, last = [], None
        for t, tt in entries:
            last = t if t is not None else last
            pairs.append((last, tt))
    assert report["frames"] == len(planes), (
        f"{name}: report says {report['frames']} frames, the output has {len(planes)}"
    )
    exact = truth_fmt == "yuv420p" and fmt == "yuv420p"
    for i, ((a, _), b) in enumerate(zip(pairs, planes)):
        if a is None:  # nothing decodable before it: no reference to compare with
            continue
        assert a.shape == b.shape, f"{name}: frame {i} is {b.shape}, the input's is {a.shape}"
        if a.dtype != b.dtype:  # another depth: compare in the input's code values
            shift = 8 * (b.dtype.itemsize - a.dtype.itemsize)
            b = (b.astype(np.int64) >> shift) if shift > 0 else (b.astype(np.int64) << -shift)
        diff = np.abs(a.astype(np.int64) - b.astype(np.int64)).max()
        assert diff <= (0 if exact else 1), (
            f"{name}: Y plane of frame {i} differs by up to {diff} (wrong order or luma changed)"
        )
    # The decoder gives pictures in display order; where the container's times are unusable its
    # labels come out of order (AVI with B-frames: 2, 3, 5, 4, 6, 9, 8, ...) or repeated (a WMV
    # whose last two packets share a time). A player shows the labels in increasing order, and a
    # repeated one cannot be kept (times must grow): those frames need only come later.
    expected = [t for _, t in pairs]
    if all(t is not None for t in expected) and expected != sorted(expected):
        expected = sorted(expected)
    expected = [None if i and t is not None and t == expected[i - 1] else t for i, t in enumerate(expected)]
    known = [(t, u) for t, u in zip(expected, times) if t is not None and u is not None]
    if known:
        # Matroska keeps milliseconds, and cannot start below zero: one constant shift under 0.1 s
        # (sync kept) and each time within 1 ms of the input's.
        shift = known[0][1] - known[0][0]
        assert -Fraction(1, 1000) <= shift < Fraction(1, 10), f"{name}: timestamps shifted by {float(shift):.4f} s"
        worst = max(abs(u - t - shift) for t, u in known)
        assert worst <= Fraction(1, 1000), f"{name}: a frame's time moved by {float(worst) * 1000:.1f} ms"
    source_audio, output_audio = _audio(REAL / name), _audio(output)
    assert len(output_audio) == len(source_audio), (
        f"{name}: {len(source_audio)} audio tracks in, {len(output_audio)} out"
        f" ({[c for c, _ in source_audio]} -> {[c for c, _ in output_audio]})"
    )
    decoded = None
    for k, ((codec_in, packets_in), (codec_out, packets_out)) in enumerate(zip(source_audio, output_audio)):
        if codec_in == codec_out:
            assert packets_out == packets_in, f"{name}: audio track {k} ({codec_in}) packets differ"
            continue
        decoded = decoded or (_samples(REAL / name), _samples(output))  # stored in another codec: same samples
        a, b = decoded[0][k], decoded[1][k]
        assert a.shape == b.shape and np.allclose(a, b, atol=1e-4), (
            f"{name}: audio track {k} ({codec_in} stored as {codec_out}) decodes to other samples: {a.shape} vs "
            f"{b.shape}"
        )


LOSSES = ("truncated", "damaged", "cannot be read")  # the notes of a run that recovered a film


@pytest.fixture(scope="module")
def strict_results(results, random_model_file, tmp_path_factory) -> dict:
    """The damaged and cut-short files again, with --strict."""
    root = tmp_path_factory.mktemp("strict")
    names = [n for n in results if re.search("damaged|truncated", MANIFEST[n]["category"])]

    def one(name: str):
        output = root / name / "out.mkv"
        output.parent.mkdir()
        args = [
            "colorize",
            REAL / name,
            "-o",
            output,
            "--codec",
            "ffv1",
            "--model",
            random_model_file,
            "--device",
            "cpu",
            "--flow",
            "none",
            "--strict",
            "--json",
        ]
        return name, (output, run_cli(args, timeout=TIME_LIMIT))

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(pool.map(one, names))


def test_strict_refuses_exactly_what_recovery_recovers(results, strict_results):
    """`--strict` refuses, in one line and with nothing left behind, every file whose normal run
    recovered something (its notes say truncated, damaged or unreadable), and only those."""
    assert strict_results, "no damaged or truncated files chosen"
    refused = 0
    for name, (output, strict) in strict_results.items():
        _, normal = results[name]
        if normal.returncode != 0:  # FFmpeg cannot open it either: refused both ways
            assert strict.returncode == 1, f"{name}: {strict.stderr}"
            continue
        losses = [n for n in json.loads(normal.stdout)["notices"] if any(word in n for word in LOSSES)]
        lines = [line for line in strict.stderr.splitlines() if line.strip()]
        if losses:
            refused += 1
            assert strict.returncode == 1 and len(lines) == 1 and lines[0].startswith("remaster: "), (
                f"{name}: {strict.stderr}"
            )
            assert name in lines[0] and not output.exists() and list(output.parent.iterdir()) == [], f"{name}: {lines}"
        else:
            assert strict.returncode == 0, f"{name}: nothing was lost, yet --strict refused: {strict.stderr}"
    assert refused >= len(strict_results) // 2, f"only {refused} of {len(strict_results)} damaged or cut files refused"
