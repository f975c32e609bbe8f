"""Rough edges a newcomer hit (issue 19, item 9): what a refusal names, what progress says and
when, per-film timings, the colors of exported frames, and cosmetic messages."""

from __future__ import annotations

import fcntl
import io
import json
import os
import pty
import struct
import subprocess
import sys
import termios
import threading
import time

import av
import cv2
import numpy as np
import pytest
import torch
from conftest import make_clip, shapes_frame

from remaster.errors import InputError, OutputError
from remaster.progress import Progress
from remaster.run.config import VideoConfig, make_config
from remaster.run.journal import Journal, identity

W, H = 64, 48


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def film(tmp_path_factory):
    """A color film (FFV1, lossless but for 4:2:0 chroma) of 24 frames."""
    return make_clip(tmp_path_factory.mktemp("film") / "color.mkv", codec="ffv1", frames=24, audio_tracks=0).path


def config(**options) -> VideoConfig:
    return make_config(None, device="cpu", flow="dis", **options)


# -- 1. --resume with other options names them, old and new, and says how to resume ------------


def test_resume_refusal_names_the_option_that_differs(tmp_path, film):
    out = tmp_path / "out.mkv"
    model = {"model": "m", "sha256": "ab" * 32, "parameters": 1}
    before = config(segment_frames=40).to_dict() | {"keyframes": []}
    Journal.open(out, identity(film, before, model, []), resume=False, force=False)
    now = config().to_dict() | {"keyframes": []}
    with pytest.raises(OutputError) as refused:
        Journal.open(out, identity(film, now, model, []), resume=True, force=False)
    message = str(refused.value)
    assert (
        "was made with different options: --segment-frames 40 (now --segment-frames 1000); "
        "to resume, repeat them (--segment-frames 40), or use --force to start over"
    ) in message, message
    # Another model file at the same path is said as such, not as "a different model".
    other = {"model": "m", "sha256": "cd" * 32, "parameters": 1}
    with pytest.raises(OutputError, match=r"another model file: m \(sha256 abababababab\), now m \(sha256 cdcdcd"):
        Journal.open(out, identity(film, before, other, []), resume=True, force=False)


# -- 2, 3. Progress: lines from the first frames on, a rate from this process's frames only -----


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_progress_rate_counts_only_this_process_after_its_start_up(monkeypatch):
    """A resumed run (500 of 1000 frames done before) whose first batch comes after 80 s of
    start-up: its first line says the time left is being estimated, not `0.1 fps, 1h...`; the
    rate then counts only the frames done here, from the first batch on."""
    clock = Clock()
    monkeypatch.setattr("remaster.progress.time.perf_counter", clock)
    stream = io.StringIO()
    bar = Progress(1000, "reel.mp4", done=500, stream=stream)
    clock.now = 80.0
    bar.update(10)
    assert stream.getvalue().splitlines() == ["remaster: reel.mp4: 510/1000 frames (51%), time left: estimating"]
    assert bar.rate() is None
    for _ in range(5):  # 50 frames in 5 s: 10 fps, whatever the 80 s before and the 500 frames of earlier runs
        clock.now += 1.0
        bar.update(10)
    assert bar.rate() == pytest.approx(10.0)
    lines = stream.getvalue().splitlines()
    assert lines[-1] == "remaster: reel.mp4: 560/1000 frames (56%), 10.0 fps, 0m44s left", lines


def test_progress_begin_counts_from_the_start_of_coarse_work(monkeypatch):
    """Whole segments at a time (Ray): the rate counts from `begin()`, so the first segments'
    time is in it and the second segment's arrival right after the first does not look instant."""
    clock = Clock()
    monkeypatch.setattr("remaster.progress.time.perf_counter", clock)
    bar = Progress(400, "reel.mp4", stream=io.StringIO())
    bar.begin()
    clock.now = 10.0
    bar.update(100)
    clock.now = 10.1
    bar.update(100)
    assert bar.rate() == pytest.approx(200 / 10.1)


def test_json_keeps_stdout_pure_and_progress_on_a_terminal(tmp_path, film, random_model_file):
    """`--json` with stderr on a terminal: the bar is there; stdout is the report alone."""
    out = tmp_path / "out.mkv"
    args = ["colorize", film, "-o", out, "--model", random_model_file, "--device", "cpu", "--flow", "dis", "--json"]
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))  # a terminal 120 wide
    seen = []

    def drain():
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # the other end closed
                return
            if not chunk:
                return
            seen.append(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = subprocess.run(
        [sys.executable, "-m", "remaster.cli.main", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=slave,
        env=env,
        timeout=300,
    )
    os.close(slave)
    reader.join(timeout=10)
    os.close(master)
    stderr = b"".join(seen).decode(errors="replace")
    assert run.returncode == 0, stderr
    assert json.loads(run.stdout)["frames"] == 24
    assert "out.mkv" in stderr and "24/24" in stderr, stderr  # tqdm's bar, with the film's name


def test_workers_report_frames_as_batches_finish(tmp_path, film, random_model_file):
    """`--workers`: frames reach the progress as each worker finishes a batch, not per segment."""
    from remaster.run.pipeline import Film, Session

    with Session(
        config(segment_frames=10, batch_size=4, model=str(random_model_file)), workers=2, progress=False
    ) as session:
        one = Film(film, tmp_path / "out.mkv")
        try:
            one.open(session)
            jobs = one.jobs()
            executor = session.executor(len(jobs))
            reports: list[int] = []
            try:
                executor.run(jobs, lambda job, outcome: one.record(job, outcome), on_frames=reports.append)
            finally:
                executor.close()
        finally:
            one.close()
    assert sum(reports) == 24 and len(jobs) == 2 and len(reports) > len(jobs), reports
    assert max(reports) <= 4  # a batch at a time


def test_a_folder_run_times_each_film_on_its_own(tmp_path, random_model_file):
    from remaster.run.folder import colorize_folder

    folder = tmp_path / "reels"
    folder.mkdir()
    make_clip(folder / "a.mkv", codec="ffv1", frames=12, audio_tracks=0)
    make_clip(folder / "b.mkv", codec="ffv1", frames=16, audio_tracks=0)
    started = time.perf_counter()
    rows = colorize_folder(folder, tmp_path / "out", config(model=str(random_model_file)), progress=False)
    run = time.perf_counter() - started
    seconds = [row.report.seconds for row in rows]
    # One process, one film after the other: each film's time is its own, so together they fit in the run.
    assert all(s > 0 for s in seconds) and sum(seconds) <= run, (seconds, run)
    assert all(row.report.fps == pytest.approx(row.report.frames / row.report.seconds, rel=0.01) for row in rows)


# -- 2. Silences: the keyframe match is said when it is made; eval video shows progress ---------


def test_keyframes_are_placed_out_loud_before_any_work(tmp_path, film, random_model_file, capsys):
    from remaster.run.pipeline import Film, Session

    keys = tmp_path / "keys"
    keys.mkdir()
    cv2.imwrite(str(keys / "000003.png"), shapes_frame(3, W, H)[..., ::-1])
    cv2.imwrite(str(keys / "graded.png"), shapes_frame(17, W, H)[..., ::-1])  # matched by content
    with Session(config(model=str(random_model_file)), progress=True) as session:
        one = Film(film, tmp_path / "out.mkv")
        try:
            one.open(session, keys)
        finally:
            one.close()
    err = capsys.readouterr().err
    assert "remaster: matching keyframes to the film's frames: " in err, err
    assert "remaster: keyframe 000003.png -> frame 3 (named by its number; registered: " in err, err
    assert "remaster: keyframe graded.png -> frame 17 (matched by content, similarity " in err, err
    assert "flow provider" not in err  # said once the run starts, not while opening


def test_eval_video_shows_progress(film, capsys):
    from remaster.measure.video import evaluate_video

    assert evaluate_video(film, progress=True)["frames"] == 24
    err = capsys.readouterr().err
    assert "remaster: evaluating color.mkv: 8/24 frames (33%)" in err, err


# -- 4. `remaster frames` keeps a color film's colors ----------------------------------------


def test_frames_of_a_color_film_are_in_its_colors(tmp_path, film):
    from remaster.run.keyframes import export_frames

    (path,) = export_frames(film, [5], tmp_path / "keys")
    rgb = cv2.imread(str(path))[..., ::-1].astype(int)  # (H, W, 3)
    with av.open(str(film)) as container:
        frame = next(f for k, f in enumerate(container.decode(video=0)) if k == 5)
        decoded = frame.reformat(
            format="rgb24", src_colorspace="itu601", src_color_range="MPEG", dst_color_range="JPEG"
        ).to_ndarray()
    assert np.array_equal(rgb, decoded)  # the film's own colors, as decoded
    assert int((rgb.max(-1) - rgb.min(-1)).max()) > 100  # color, not gray
    assert np.abs(rgb - shapes_frame(5, W, H)).mean() < 10  # close to what was filmed (4:2:0 aside)


def test_frames_of_a_gray_film_stay_gray(tmp_path):
    from remaster.run.keyframes import export_frames

    gray = make_clip(tmp_path / "gray.mkv", codec="ffv1", pix_fmt="gray", frames=6, audio_tracks=0).path
    (path,) = export_frames(gray, [2], tmp_path / "keys")
    rgb = cv2.imread(str(path))
    with av.open(str(gray)) as container:
        luma = next(f for k, f in enumerate(container.decode(video=0)) if k == 2).to_ndarray()
    assert all(np.array_equal(rgb[..., c], luma) for c in range(3))


# -- 6. Cosmetic -----------------------------------------------------------------------------


def test_a_stage_too_quick_to_measure_has_no_fps():
    from remaster.run.report import _fps

    assert _fps(1000, 0.00004, 72.0) is None  # was "shots 1868183.2 fps" in the summary
    assert _fps(1000, 0.05, 72.0) is None  # under 0.1% of the run
    assert _fps(1000, 10.0, 72.0) == 100.0
    assert _fps(0, 10.0, 72.0) is None


def test_a_still_image_is_refused_without_ffmpeg_s_format_name(tmp_path):
    from remaster.media.reader import VideoReader

    still = tmp_path / "photo.mp4"
    cv2.imwrite(str(tmp_path / "photo.png"), shapes_frame(0, W, H))
    (tmp_path / "photo.png").rename(still)
    with pytest.raises(InputError) as refused:
        VideoReader(still)
    assert str(refused.value) == f"{still}: is a still image, not a video; use `remaster image`"


def test_flow_provider_is_not_said_before_a_refusal(tmp_path, film, random_model_file, capsys):
    """`--flow auto` says which provider it picked, but only once the run is accepted."""
    from remaster.run.pipeline import Film, Session

    out = tmp_path / "out.mkv"
    Journal.open(out, identity(film, {"other": 1}, {}, []), resume=False, force=False)  # an older run's work
    auto = make_config(None, device="cpu", model=str(random_model_file))
    assert auto.temporal.flow == "auto"
    with Session(auto, progress=True) as session:
        one = Film(film, out, resume=True)
        try:
            with pytest.raises(OutputError, match="was made with different options"):
                one.open(session)
        finally:
            one.close()
    assert capsys.readouterr().err == ""
