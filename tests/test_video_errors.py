"""Bad inputs and protected outputs through the real `remaster colorize` command (click's runner).

DESIGN promise 6: a one-line message naming the file and the problem, a non-zero exit, no
traceback, and no output file (not even the temporary one).
"""

from __future__ import annotations

import hashlib

import av
import pytest
import torch
from click.testing import CliRunner
from conftest import decode_all

from remaster.cli.main import main
from remaster.errors import InputError
from remaster.net.colorizer import Colorizer
from remaster.run.pipeline import colorize_video, make_config


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # see test_video_pipeline.py
    yield
    torch.set_num_threads(threads)


def colorize(args):
    return CliRunner().invoke(main, ["colorize", *map(str, args)], catch_exceptions=False)


def assert_clean_failure(result, out_dir, *expected):
    assert result.exit_code == 1, f"expected exit 1, got {result.exit_code}: {result.output}"
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got {lines}"
    assert lines[0].startswith("remaster: ")
    assert "Traceback" not in result.output
    for text in expected:
        assert text in lines[0], f"expected {text!r} in {lines[0]!r}"
    leftovers = [p.name for p in out_dir.iterdir() if p.suffix in (".mp4", ".mkv") and not p.name.startswith("in")]
    assert leftovers == [], f"output left behind: {leftovers}"


def remux(source, destination, **options):
    """Stream-copy every stream of `source` into `destination` (no re-encode)."""
    with av.open(str(source)) as inp, av.open(str(destination), "w", options=options) as out:
        streams = {s.index: out.add_stream_from_template(s) for s in inp.streams}
        for packet in inp.demux():
            if packet.size:
                packet.stream = streams[packet.stream.index]
                out.mux(packet)


def test_missing_file(tmp_path, random_model_file):
    result = colorize([tmp_path / "nope.mp4", "-o", tmp_path / "out.mp4", "--model", random_model_file])
    assert_clean_failure(result, tmp_path, "nope.mp4", "no such file")


def test_text_file_named_mp4(tmp_path, random_model_file):
    bad = tmp_path / "in-notes.mp4"
    bad.write_text("these are my notes, not a film\n" * 20)
    result = colorize([bad, "-o", tmp_path / "out.mp4", "--model", random_model_file])
    assert_clean_failure(result, tmp_path, "in-notes.mp4", "not a readable video file")


def test_zero_byte_file(tmp_path, random_model_file):
    empty = tmp_path / "in-empty.mp4"
    empty.touch()
    result = colorize([empty, "-o", tmp_path / "out.mp4", "--model", random_model_file])
    assert_clean_failure(result, tmp_path, "in-empty.mp4", "empty file")


def test_truncated_mp4(tmp_path, random_model_file, clip_h264):
    data = clip_h264.path.read_bytes()
    cut = tmp_path / "in-cut.mp4"
    cut.write_bytes(data[: len(data) // 2])  # moov is at the end: the index is gone
    result = colorize([cut, "-o", tmp_path / "out.mp4", "--model", random_model_file])
    assert_clean_failure(result, tmp_path, "in-cut.mp4")


def test_truncated_faststart_mp4(tmp_path, random_model_file, clip_h264):
    # With the index first (faststart) the file opens and decodes until the data runs out:
    # the error surfaces in the decode thread, mid-stream, and must still end cleanly.
    fast = tmp_path / "in-fast.mp4"
    remux(clip_h264.path, fast, movflags="faststart")
    data = fast.read_bytes()
    cut = tmp_path / "in-fastcut.mp4"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    args = [cut, "--model", random_model_file, "--device", "cpu", "--flow", "none", "--json"]
    strict = colorize([*args, "-o", tmp_path / "strict.mp4", "--strict"])
    assert_clean_failure(strict, tmp_path, "in-fastcut.mp4", "truncated")
    # Without --strict the film is recovered: every frame that decodes, and a note (issue 8).
    import json

    recovered = colorize([*args, "-o", tmp_path / "out.mp4"])
    assert recovered.exit_code == 0, recovered.output
    report = json.loads(recovered.stdout)
    assert 0 < report["frames"] < clip_h264.frames
    assert any("truncated" in note for note in report["notices"]), report["notices"]


def test_audio_only_file(tmp_path, random_model_file):
    audio = tmp_path / "in-audio.m4a"
    with av.open(str(audio), "w") as out:
        stream = out.add_stream("aac", rate=48000, layout="mono")
        import numpy as np

        for start in range(0, 48000, 1024):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 48000, start
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    result = colorize([audio, "-o", tmp_path / "out.mp4", "--model", random_model_file])
    assert_clean_failure(result, tmp_path, "in-audio.m4a", "no video stream (found audio)")


def test_existing_output_needs_force(tmp_path, random_model_file, clip_h264):
    out = tmp_path / "out.mp4"
    out.write_bytes(b"precious earlier result")
    args = [clip_h264.path, "-o", out, "--model", random_model_file, "--device", "cpu", "--flow", "none", "--json"]
    result = colorize(args)
    assert result.exit_code == 1
    assert result.stderr.strip() == f"remaster: {out}: already exists (use --force to overwrite)"
    assert out.read_bytes() == b"precious earlier result"
    assert [p.name for p in tmp_path.iterdir()] == ["out.mp4"]
    result = colorize([*args, "--force"])
    assert result.exit_code == 0, result.output
    assert len(decode_all(out).planes) == clip_h264.frames


def test_input_is_never_written(tmp_path, random_model_file, clip_h264_mkv):
    before = hashlib.sha256(clip_h264_mkv.path.read_bytes()).hexdigest()
    mtime = clip_h264_mkv.path.stat().st_mtime_ns
    result = colorize([clip_h264_mkv.path, "-o", clip_h264_mkv.path, "--force", "--model", random_model_file])
    assert_clean_failure(result, tmp_path, "is the input file")
    assert hashlib.sha256(clip_h264_mkv.path.read_bytes()).hexdigest() == before
    assert clip_h264_mkv.path.stat().st_mtime_ns == mtime


def test_cli_success_prints_json_report(tmp_path, random_model_file, clip_h264):
    import json

    out = tmp_path / "out.mkv"
    result = colorize(
        [
            clip_h264.path,
            "-o",
            out,
            "--model",
            random_model_file,
            "--device",
            "cpu",
            "--flow",
            "none",
            "--codec",
            "ffv1",
            "--json",
        ]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["frames"] == clip_h264.frames and report["encoder"]["codec"] == "ffv1"
    assert report["model"]["model"] == "random" and report["flow_provider"] == "none"


def test_preset_and_flag_override(tmp_path, random_model_file, clip_h264):
    import json

    out = tmp_path / "out.mp4"
    args = [
        clip_h264.path,
        "-o",
        out,
        "--model",
        random_model_file,
        "--device",
        "cpu",
        "--pipeline",
        "fast",
        "--flow",
        "none",
        "--crf",
        "30",
    ]
    result = colorize([*args, "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["config"]["encode"]["preset"] == "veryfast"  # from pipelines/fast.toml
    assert report["config"]["encode"]["crf"] == 30 and report["config"]["temporal"]["flow"] == "none"  # flags win


def test_unknown_preset(tmp_path, random_model_file, clip_h264):
    result = colorize(
        [clip_h264.path, "-o", tmp_path / "out.mp4", "--pipeline", "nosuch", "--model", random_model_file]
    )
    assert_clean_failure(result, tmp_path, "unknown pipeline 'nosuch'", "film-reel")


def test_decode_error_in_worker_reaches_caller(tmp_path, clip_h264):
    """Python API: a damage error raised in the decode thread (--strict) is an InputError here."""
    fast = tmp_path / "fast.mp4"
    remux(clip_h264.path, fast, movflags="faststart")
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(fast.read_bytes()[: int(fast.stat().st_size * 0.6)])
    with pytest.raises(InputError, match=r"cut\.mp4: .*truncated"):
        colorize_video(
            cut,
            tmp_path / "out.mp4",
            make_config(flow="none", strict=True),
            progress=False,
            colorizer=Colorizer.random(0),
        )
    assert not (tmp_path / "out.mp4").exists() and not list(tmp_path.glob(".out*"))


def test_corrupt_data_mid_file(tmp_path, random_model_file, clip_h264):
    # Index intact, picture data overwritten with garbage in the middle: the decoder fails there.
    fast = tmp_path / "in-fast.mp4"
    remux(clip_h264.path, fast, movflags="faststart")
    data = bytearray(fast.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 3000] = bytes((k * 7) % 256 for k in range(3000))
    bad = tmp_path / "in-corrupt.mp4"
    bad.write_bytes(bytes(data))
    result = colorize(
        [bad, "-o", tmp_path / "out.mp4", "--model", random_model_file, "--device", "cpu", "--flow", "none", "--json"]
    )
    # Issue 4: damage mid-stream is not the end of the film. The run keeps going, keeps the frame
    # count and timing (a lost picture repeats the previous good one) and reports the damage.
    import json

    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["frames"] == clip_h264.frames and report["damaged_frames"] > 0
    assert "damaged frame" in result.stderr and "in-corrupt.mp4" in result.stderr
