"""The studio's render (issue 21): the pipeline's own resumable run, from the page's Render.

A real gray film through real PyAV, a keyframe made in the studio (a click, marked), rendered with
small segments: stopped after a few frames (as the page's Stop does), then rendered again in two
worker processes, which continues from the kept segments; the output is the one `remaster
colorize --keyframes PROJECT` makes of the same film in one uninterrupted run, frame for frame.
And the studio killed (-9) mid-render: the next session's render continues."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from fractions import Fraction

import av
import cv2
import numpy as np
import pytest
from conftest import decode_all, shapes_frame
from test_studio_security import error_line, request

from remaster.run.journal import work_folder
from remaster.run.pipeline import colorize_video, make_config
from remaster.studio.engine import Engine
from remaster.studio.film import Film
from remaster.studio.project import Project
from remaster.studio.server import Studio, StudioServer

W, H, FRAMES, SEGMENT = 96, 72, 40, 12  # FFV1 has a keyframe every 12 frames: segments of 12


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    path = tmp_path_factory.mktemp("render") / "reel.mkv"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("ffv1", rate=Fraction(24))
        stream.width, stream.height, stream.pix_fmt = W, H, "gray"
        for i in range(FRAMES):
            gray = cv2.cvtColor(shapes_frame(i, W, H), cv2.COLOR_RGB2GRAY)
            out.mux(stream.encode(av.VideoFrame.from_ndarray(gray, format="gray")))
        out.mux(stream.encode(None))
    film = Film(path)
    project = Project(path.with_name("reel.mkv.studio"), source_name=film.name, frames=film.frames)
    engine = Engine(film, project, device="cpu")
    project.add(0, {"op": "point", "x": 20.0, "y": 60.0, "color": "#d02818"})
    engine.mark_keyframe(0)
    server = StudioServer(Studio(engine, render_options={"segment_frames": SEGMENT}))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, path
    server.shutdown()
    server.server_close()


def test_a_stopped_render_continues_in_two_workers(studio, tmp_path):
    server, film = studio
    render = server.studio.render
    status, _, body = request(server, "POST", "/api/render/stop", body=b"{}")
    assert status == 400 and error_line(body) == "no render is running"
    status, _, body = request(server, "POST", "/api/render", body=json.dumps({"workers": 0}).encode())
    assert status == 400 and error_line(body).startswith("workers: a whole number from 1 to")

    render.start(codec="ffv1", stop_after=SEGMENT + 2)  # stopped in the second segment, as Stop does
    state = render.wait(300)
    assert state["state"] == "stopped", state
    output = server.studio.project.folder / "render" / "reel-color.mkv"
    assert not output.exists() and work_folder(output).is_dir()
    assert state["note"] == "1 of 4 segments are kept: Render continues from them", state
    kept = 1

    status, _, body = request(server, "POST", "/api/render", body=json.dumps({"codec": "ffv1", "workers": 2}).encode())
    assert status == 200 and json.loads(body)["state"] == "running"
    state = render.wait(600)
    assert state["state"] == "done", state
    assert state["output"] == str(output) and state["done"] == state["total"] == FRAMES
    assert state["resumed"] == kept * SEGMENT and state["workers"] == 2 and state["fps"] > 0
    assert not work_folder(output).exists()
    status, _, body = request(server, "GET", "/api/render")
    assert json.loads(body)["state"] == "done"

    # The same film as `remaster colorize --keyframes PROJECT` makes it in one run, frame for frame.
    plain = tmp_path / "plain.mkv"
    config = make_config(codec="ffv1", device="cpu", segment_frames=SEGMENT)
    colorize_video(film, plain, config, progress=False, keyframes=server.studio.project.folder)
    ours, theirs = decode_all(output), decode_all(plain)
    assert len(ours.planes) == len(theirs.planes) == FRAMES
    for i in range(FRAMES):
        for k in range(3):
            assert np.array_equal(ours.planes[i][k], theirs.planes[i][k]), (i, k)


CHILD = """
import os, signal, sys, time
from pathlib import Path
from remaster.run.journal import finished
from remaster.studio.engine import Engine
from remaster.studio.film import Film
from remaster.studio.project import Project
from remaster.studio.server import Studio

film = Film(sys.argv[1])
project = Project(Path(sys.argv[2]), source_name=film.name, frames=film.frames)
studio = Studio(Engine(film, project, device="cpu"), render_options={"segment_frames": %d})
studio.render.start(codec="ffv1")
output = project.folder / "render" / "reel-color.mkv"
while finished(output)[0] < 1:  # a segment is kept: the studio dies (kill -9) mid-render
    if studio.render.state["state"] != "running":
        sys.exit(f"the render ended first: {studio.render.state}")
    time.sleep(0.005)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_render_killed_with_the_studio_continues_in_the_next_session(studio, tmp_path):
    """The studio process killed (-9) mid-render: the next session's Render continues from the
    segments the dead one finished."""
    _, film = studio
    folder = tmp_path / "project"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    child = subprocess.run(
        [sys.executable, "-c", CHILD % SEGMENT, str(film), str(folder)], env=env, capture_output=True, text=True
    )
    assert child.returncode == -9, child.stderr[-2000:]
    output = folder / "render" / "reel-color.mkv"
    assert not output.exists() and work_folder(output).is_dir()

    film_again = Film(film)
    project = Project(folder, source_name=film_again.name, frames=film_again.frames)
    again = Studio(Engine(film_again, project, device="cpu"), render_options={"segment_frames": SEGMENT})
    again.render.start(codec="ffv1")
    state = again.render.wait(300)
    assert state["state"] == "done", state
    assert SEGMENT <= state["resumed"] < FRAMES and state["done"] == FRAMES
    assert len(decode_all(output).planes) == FRAMES and not work_folder(output).exists()
