"""Opening a long film in the studio (issue 21): the page opens at once and shows how far the
film's scan (every frame's time, the shots, their thumbnails) has got, instead of a silent start.

A real film through real PyAV: before its scan the studio answers its state with the header's
estimate and the scan's progress, and a frame with one line saying it is still reading; the scan
reports its frames as it goes, and then the page has every frame and shot."""

from __future__ import annotations

import json
import threading

import pytest
from conftest import make_clip
from test_studio_security import error_line, request

from remaster.studio.engine import Engine
from remaster.studio.film import open_source
from remaster.studio.project import Project
from remaster.studio.server import Studio, StudioServer


@pytest.mark.parametrize("codec", ["libx264", "ffv1"])  # an MP4 lists its frames; a Matroska file does not
def test_the_page_shows_the_scan_of_a_film_as_it_goes(tmp_path, codec):
    suffix = ".mp4" if codec == "libx264" else ".mkv"
    clip = make_clip(tmp_path / f"long{suffix}", width=64, height=48, frames=60, audio_tracks=0, codec=codec)
    film = open_source([clip.path], scan=False)
    assert not film.ready.is_set() and film.loading == {"done": 0, "total": film.frames, "shots": 0}
    assert abs(film.frames - 60) <= 1  # the header's estimate
    project = Project(tmp_path / "project", source_name=film.name, frames=film.frames)
    server = StudioServer(Studio(Engine(film, project, device="cpu")))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        state = json.loads(request(server, "GET", "/api/state")[2])["source"]
        assert state["ready"] is False and state["loading"]["done"] == 0 and state["shots"] == []
        status, _, body = request(server, "GET", "/api/frame/3/gray.png")
        assert status == 400 and error_line(body) == f"still reading the film: 0 of {film.frames} frames; wait a moment"
        status, _, body = request(server, "POST", "/api/render", body=b"{}")
        assert status == 400 and error_line(body).startswith("still reading the film")

        seen = []
        film.scan(lambda n: seen.append(dict(film.loading)))
        assert [s["done"] for s in seen] == sorted({s["done"] for s in seen}) and seen[-1]["done"] == 60
        assert len(seen) > 1  # more than one report on the way
        state = json.loads(request(server, "GET", "/api/state")[2])["source"]
        assert state["ready"] is True and state["frames"] == 60 and state["loading"]["done"] == 60
        assert state["shots"] == [[0, 60]]
        assert request(server, "GET", "/api/frame/59/gray.png")[0] == 200
    finally:
        server.shutdown()
        server.server_close()
