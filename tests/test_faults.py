"""Faults while writing, through the real command in a subprocess (DESIGN promise 5, issue 4):
disk full, a missing or unusable output folder, output = input, two runs on one output, Ctrl-C.
Each must end with one clear line, a non-zero exit, and nothing at the destination.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import make_clip
from test_corpus import run_cli


@pytest.fixture(scope="module")
def model(random_model_file):
    return random_model_file


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """Long enough (96 frames at 128x96) that a run is still busy a second after it starts, with a
    keyframe every 16 frames so that `--segment-frames 16` really makes six segments (x264's
    default GOP of 250 made one, and Ctrl-C then raced the final join)."""
    options = {"crf": "20", "preset": "veryfast", "g": "16", "keyint_min": "16", "sc_threshold": "0"}
    return make_clip(
        tmp_path_factory.mktemp("clip") / "reel.mkv", width=128, height=96, frames=96, audio_tracks=1, options=options
    )


def args_for(clip_path, output, model, *extra):
    return [
        "colorize",
        clip_path,
        "-o",
        output,
        "--model",
        model,
        "--device",
        "cpu",
        "--flow",
        "dis",
        "--codec",
        "ffv1",
        "--json",
        *extra,
    ]


def one_line(result) -> str:
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got {lines}"
    assert lines[0].startswith("remaster: ")
    return lines[0]


def test_disk_full(tmp_path, clip, model):
    """A file-size limit makes every write past 40 kB fail with EFBIG, as a full disk fails with
    ENOSPC (SIGXFSZ ignored, so the write returns the error instead of killing the process)."""

    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (40_000, 40_000))

    out = tmp_path / "out.mkv"
    result = run_cli(args_for(clip.path, out, model), preexec_fn=limit)
    assert result.returncode == 1
    line = one_line(result)
    assert str(out) in line and "file too large" in line, line
    assert list(tmp_path.iterdir()) == [], [p.name for p in tmp_path.iterdir()]


def test_output_folder_missing(tmp_path, clip, model):
    out = tmp_path / "no" / "such" / "out.mkv"
    result = run_cli(args_for(clip.path, out, model))
    assert result.returncode == 1
    assert "does not exist" in one_line(result)
    assert list(tmp_path.iterdir()) == []


def test_output_folder_is_a_file(tmp_path, clip, model):
    # Tests run as root, for whom chmod does not forbid anything: a path under a regular file is
    # the folder no one can write into.
    (tmp_path / "notes.txt").write_text("not a folder")
    result = run_cli(args_for(clip.path, tmp_path / "notes.txt" / "out.mkv", model))
    assert result.returncode == 1
    assert "notes.txt is a file, not a folder" in one_line(result)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run the command as another user")
def test_output_folder_not_writable(tmp_path_factory, clip, model):
    """As the unprivileged user `nobody` (root itself ignores permissions), into a folder it may
    read but not write."""
    import shutil

    base = Path(tempfile_dir := f"/tmp/remaster-faults-{os.getpid()}")
    base.mkdir(mode=0o755)
    try:
        shutil.copy(clip.path, base / "reel.mkv")
        shutil.copy(model, base / "model.safetensors")
        locked = base / "locked"
        locked.mkdir(mode=0o555)
        for path in (base / "reel.mkv", base / "model.safetensors"):
            path.chmod(0o644)

        def drop():
            os.setgid(65534)
            os.setuid(65534)

        env = {"HOME": str(base), "TORCHINDUCTOR_CACHE_DIR": str(base), "MPLCONFIGDIR": str(base)}
        try:
            result = run_cli(
                args_for(base / "reel.mkv", locked / "out.mkv", base / "model.safetensors"),
                preexec_fn=drop,
                env=env,
                cwd=str(base),
            )
        except PermissionError as error:  # e.g. the interpreter lives under /root (pyenv)
            pytest.skip(f"the Python interpreter is not usable by nobody: {error}")
        if result.returncode != 1 and "Permission denied" in result.stderr and "locked" not in result.stderr:
            pytest.skip(f"the project is not readable by nobody: {result.stderr[-200:]}")
        assert result.returncode == 1, result.stderr
        line = one_line(result)
        assert "cannot create a file in" in line and "permission denied" in line, line
        assert list(locked.iterdir()) == []
    finally:
        shutil.rmtree(tempfile_dir)


def test_output_is_the_input(tmp_path, clip, model):
    # Spelled differently (a symbolic link to it): still the same file, never written.
    link = tmp_path / "link.mkv"
    link.symlink_to(clip.path)
    before = clip.path.read_bytes()
    result = run_cli(args_for(clip.path, link, model, "--force"))
    assert result.returncode == 1
    assert "is the input file" in one_line(result)
    assert clip.path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["link.mkv"]


def _default_sigint() -> None:
    # A suite started in the background by a non-interactive shell inherits SIGINT ignored, and
    # Python then never raises KeyboardInterrupt: give the run the Ctrl-C a user's terminal gives.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start(args, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "remaster.cli.main", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        preexec_fn=_default_sigint,
        **kwargs,
    )


def _wait_for(predicate, process, seconds=180.0):  # a loaded machine takes long to start torch
    deadline = time.monotonic() + seconds
    while not predicate():
        assert process.poll() is None, f"the run ended early: {process.communicate()}"
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


def test_two_runs_on_one_output(tmp_path, clip, model):
    """The first run holds the output's lock; stopped (SIGSTOP) so it surely still holds it, a
    second run on the same output refuses at once, and the first one then finishes untouched."""
    out = tmp_path / "out.mkv"
    first = _start(args_for(clip.path, out, model))
    try:
        _wait_for(lambda: (tmp_path / ".out.mkv.lock").exists(), first)
        first.send_signal(signal.SIGSTOP)
        second = run_cli(args_for(clip.path, out, model, "--force"), timeout=60)
        assert second.returncode == 1
        line = one_line(second)
        assert "another remaster run" in line and str(first.pid) in line, line
    finally:
        first.send_signal(signal.SIGCONT)
        stdout, stderr = first.communicate(timeout=120)
    assert first.returncode == 0, stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mkv"]


def test_ctrl_c(tmp_path, clip, model):
    out = tmp_path / "out.mkv"
    run = _start(args_for(clip.path, out, model))
    try:
        work = tmp_path / ".out.mkv.remaster-work"
        _wait_for(lambda: work.exists() and any(p.name.startswith(".segment-") for p in work.iterdir()), run)
        # Mid-run: frames are being colorized and written. Stop it first so that neither a fast
        # machine nor a loaded one lets it finish the film before Ctrl-C lands; the pending
        # SIGINT is handled as soon as it continues.
        run.send_signal(signal.SIGSTOP)
        run.send_signal(signal.SIGINT)
        run.send_signal(signal.SIGCONT)
        stdout, stderr = run.communicate(timeout=180)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 130, stderr
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert lines == ["remaster: interrupted; nothing was written to the destination"], lines
    assert list(tmp_path.iterdir()) == [], [p.name for p in tmp_path.iterdir()]


def test_ctrl_c_in_a_segmented_run_keeps_the_work(tmp_path, clip, model):
    """Ctrl-C after the first segments: one line that says what is kept and how to continue;
    `--resume` then finishes the film, and the same output appears as from an unbroken run."""
    out = tmp_path / "out.mkv"
    args = args_for(clip.path, out, model, "--segment-frames", "16")
    run = _start(args)
    journal = tmp_path / ".out.mkv.remaster-work" / "journal.json"
    try:
        _wait_for(lambda: journal.exists() and '"file"' in journal.read_text(), run)
        # Stop it first so a loaded machine cannot let it finish the film before Ctrl-C lands;
        # the pending SIGINT is handled as soon as it continues.
        run.send_signal(signal.SIGSTOP)
        run.send_signal(signal.SIGINT)
        run.send_signal(signal.SIGCONT)
        stdout, stderr = run.communicate(timeout=180)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 1, stderr
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "interrupted" in lines[0] and "--resume" in lines[0], lines
    assert not out.exists()
    resumed = run_cli([*args, "--resume"])
    assert resumed.returncode == 0, resumed.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mkv"]
