"""The studio's promises as a local server (issue 21, item 5), with real HTTP requests against a
real server on an ephemeral port: a token on every request, the Host header checked (DNS
rebinding), no path from the client used on disk, uploads capped and decoded or refused in one
line, loopback only unless asked, and writes only in the project folder."""

from __future__ import annotations

import hashlib
import http.client
import json
import socket
import threading

import cv2
import numpy as np
import pytest
from conftest import make_clip
from test_corpus import run_cli

from remaster.errors import ConfigError
from remaster.studio.command import check_host
from remaster.studio.engine import MAX_UPLOAD, Engine
from remaster.studio.film import Film
from remaster.studio.project import Project
from remaster.studio.server import Studio, StudioServer


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    folder = tmp_path_factory.mktemp("film")
    clip = make_clip(folder / "film.mkv", width=64, height=48, frames=12, audio_tracks=0, codec="ffv1")
    before = hashlib.sha256(clip.path.read_bytes()).hexdigest()
    film = Film(clip.path)
    project = Project(folder / "film.mkv.studio", source_name=film.name, frames=film.frames)
    server = StudioServer(Studio(Engine(film, project, device="cpu")))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, clip, before
    server.shutdown()
    server.server_close()


def request(server, method, path, *, token=True, host=None, headers=None, body=None):
    """(status, headers, body) of one real request; `token` True sends the right one as a header."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    sent = {"Host": f"127.0.0.1:{server.port}" if host is None else host, **(headers or {})}
    if token is True:
        sent["X-Studio-Token"] = server.studio.token
    elif token:
        sent["X-Studio-Token"] = token
    connection.request(method, path, body=body, headers=sent)
    reply = connection.getresponse()
    result = reply.status, dict(reply.getheaders()), reply.read()
    connection.close()
    return result


def error_line(body: bytes) -> str:
    message = json.loads(body)["error"]
    assert "\n" not in message and message
    return message


def test_every_request_needs_the_token(studio):
    server, _, _ = studio
    for path in ("/", "/assets/studio.js", "/api/state", "/api/frame/0/gray.png", "/api/thumb/0.png"):
        assert request(server, "GET", path, token=None)[0] == 403, path
        assert request(server, "GET", path, token="wrong")[0] == 403, path
        assert request(server, "GET", path)[0] == 200, path
    status, _, body = request(server, "POST", "/api/frame/0/edit", token=None, body=b"{}")
    assert status == 403 and "token" in error_line(body)
    assert request(server, "GET", "/api/state?token=wrong", token=None)[0] == 403
    # ?token= once: a cookie bound to this port, and the address bar cleared
    status, headers, _ = request(server, "GET", f"/?token={server.studio.token}", token=None)
    assert status == 303 and headers["Location"] == "/"
    cookie = headers["Set-Cookie"]
    assert cookie.startswith(f"remaster-studio-{server.port}=") and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert request(server, "GET", "/api/state", token=None, headers={"Cookie": cookie.split(";")[0]})[0] == 200
    wrong = f"remaster-studio-{server.port}=x"
    assert request(server, "GET", "/api/state", token=None, headers={"Cookie": wrong})[0] == 403


def test_a_foreign_host_or_origin_is_refused(studio):
    server, _, _ = studio
    for host in (f"evil.example:{server.port}", "127.0.0.1:1", "attacker.test", ""):
        status, _, body = request(server, "GET", "/api/state", host=host)
        assert status == 403, host
        assert "refused" in error_line(body)
    assert request(server, "GET", "/api/state", host=f"localhost:{server.port}")[0] == 200
    status, _, body = request(
        server, "POST", "/api/frame/0/undo", headers={"Origin": "http://evil.example"}, body=b"{}"
    )
    assert status == 403 and "another site" in error_line(body)
    same = {"Origin": f"http://127.0.0.1:{server.port}"}
    assert request(server, "POST", "/api/frame/0/undo", headers=same, body=b"{}")[0] == 200


@pytest.mark.parametrize(
    "path",
    [
        "/../pyproject.toml",
        "/assets/../../../etc/passwd",
        "/assets/..%2f..%2fetc%2fpasswd",
        "/assets/index.html/../../server.py",
        "/film.mkv",
        "/api/frame/0/../../../../etc/passwd",
        "/api/frame/0/%2e%2e.png",
        "/api/thumb/7.png",
        "//etc/passwd",
        "/etc/passwd",
    ],
)
def test_no_path_outside_the_project(studio, path):
    server, _, _ = studio
    status, _, body = request(server, "GET", path)
    assert status in (403, 404), (path, status)
    assert b"root:" not in body and b"[build-system]" not in body


def test_a_frame_out_of_range_or_an_unknown_view_is_one_line(studio):
    server, _, _ = studio
    status, _, body = request(server, "GET", "/api/frame/12/gray.png")
    assert status == 400 and error_line(body) == "no frame 12: the film has 12 frames (0..11)"
    status, _, body = request(server, "GET", "/api/frame/1/secret.png")
    assert status == 400 and "no view 'secret'" in error_line(body)


def test_uploads_are_images_or_refused_in_one_line(studio):
    server, clip, _ = studio
    status, _, body = request(server, "POST", "/api/frame/2/reference", body=b"#!/bin/sh\nrm -rf /\n")
    assert status == 400
    assert error_line(body) == "upload refused: not an image (JPEG, PNG, TIFF, WebP or BMP expected)"
    headers = {"Content-Length": str(MAX_UPLOAD + 1)}
    status, _, body = request(server, "POST", "/api/frame/2/reference", headers=headers, body=b"")
    assert status == 413 and "at most 32 MiB" in error_line(body)
    square = cv2.imencode(".png", np.zeros((40, 40, 3), np.uint8))[1].tobytes()
    status, _, body = request(server, "POST", "/api/frame/2/reference", body=square)
    assert status == 400 and "crop it to the frame" in error_line(body)
    status, _, body = request(server, "POST", "/api/frame/2/edit", body=b"not json")
    assert status == 400 and error_line(body) == "the request body is not JSON"
    status, _, body = request(server, "POST", "/api/frame/2/edit", body=json.dumps({"op": "point", "x": 1}).encode())
    assert status == 400 and "expected #rrggbb" in error_line(body)
    # A picture of something else: one line, naming the best frame near the one it was dropped on.
    other = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    status, _, body = request(server, "POST", "/api/frame/2/reference", body=cv2.imencode(".png", other)[1].tobytes())
    assert status == 400 and error_line(body).startswith("the reference fits no frame near frame 2 well: the best is")
    # A real reference, twice the size: matched, registered, kept in the project folder, named by its frame.
    big = cv2.resize(clip_frame(clip.path, 2), (128, 96))
    status, _, body = request(server, "POST", "/api/frame/2/reference", body=cv2.imencode(".png", big)[1].tobytes())
    state = json.loads(body)
    assert status == 200 and state["reference"] is True and state["frame"] == 2
    assert state["registration"]["coverage"] == 1.0 and state["registration"]["scale"] == [2.0, 2.0]
    status, _, body = request(server, "POST", "/api/frame/2/use", body=b'{"use": "../../etc"}')
    assert status == 400 and error_line(body) == "a reference is used as hints or as colors, not '../../etc'"
    status, _, body = request(server, "POST", "/api/frame/3/use", body=b'{"use": "colors"}')
    assert status == 400 and error_line(body) == "frame 3 has no reference image"
    status, _, body = request(server, "POST", "/api/frame/2/use", body=b'{"use": "colors"}')
    assert status == 200 and json.loads(body)["reference_use"] == "colors"
    saved = server.studio.project.folder / "references" / "000002.png"
    assert cv2.imread(str(saved), cv2.IMREAD_UNCHANGED).shape == (48, 64, 4)  # RGBA: alpha its coverage


def clip_frame(path, index: int) -> np.ndarray:
    """Frame `index` of a clip as decoded, BGR (as OpenCV writes it)."""
    import av

    with av.open(str(path)) as container:
        for k, frame in enumerate(container.decode(video=0)):
            if k == index:
                return frame.to_ndarray(format="bgr24")
    raise IndexError(index)


def _outside_address() -> str | None:
    """An address of this machine that is not loopback, where it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("10.255.255.255", 1))  # no packet is sent: it only picks the interface
            address = probe.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


def test_it_listens_on_loopback_only(studio):
    server, _, _ = studio
    assert server.socket.getsockname()[0] == "127.0.0.1"
    outside = _outside_address()
    if outside is not None:
        with pytest.raises(OSError):
            socket.create_connection((outside, server.port), timeout=2).close()
    with pytest.raises(ConfigError, match="add --allow-remote to mean it"):
        check_host("0.0.0.0", allow_remote=False)
    assert check_host("0.0.0.0", allow_remote=True) == "0.0.0.0"
    assert check_host("::1", allow_remote=False) == "::1"
    result = run_cli(["studio", "missing.mkv", "--host", "0.0.0.0", "--no-browser"])
    assert result.returncode == 1 and result.stderr.count("\n") == 1
    assert "--allow-remote" in result.stderr


def test_edits_are_kept_in_the_project_and_nothing_else_is_written(studio):
    server, clip, before = studio
    edit = {"op": "point", "x": 10, "y": 20, "color": "#00ff00"}
    status, _, body = request(server, "POST", "/api/frame/5/edit", body=json.dumps(edit).encode())
    assert status == 200 and json.loads(body)["edits"] == [edit]
    assert request(server, "POST", "/api/frame/5/keyframe", body=b'{"marked": true}')[0] == 200
    # A new session reads the same project back: every click, and the keyframe as --keyframes reads it.
    again = Project(server.studio.project.folder, source_name="film.mkv", frames=12)
    assert again.edits(5) == [edit] and again.keyframes() == [5]
    assert (server.studio.project.folder / "000005.png").is_file()
    assert hashlib.sha256(clip.path.read_bytes()).hexdigest() == before
    assert sorted(p.name for p in clip.path.parent.iterdir()) == ["film.mkv", "film.mkv.studio"]
