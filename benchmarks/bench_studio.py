"""The studio's speed (issue 21): click-to-preview latency at 640x480, and the carry's preview of a
3-second stretch, through real HTTP requests against a real studio server on this machine.

    python benchmarks/bench_studio.py [--clicks 5] [--threads N]

A click's latency is what the page waits for: POST the click, then GET the steered picture (PNG)
of the frame. The film is synthetic (moving shapes, gray FFV1, 640x480, 24 fps, 3 s).
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import sys
import tempfile
import threading
import time
from fractions import Fraction
from pathlib import Path

import av
import cv2
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from conftest import shapes_frame  # noqa: E402

from remaster.studio.engine import Engine  # noqa: E402
from remaster.studio.film import Film  # noqa: E402
from remaster.studio.project import Project  # noqa: E402
from remaster.studio.server import Studio, StudioServer  # noqa: E402

W, H, RATE, SECONDS = 640, 480, 24, 3


def make_film(path: Path) -> Path:
    with av.open(str(path), "w") as out:
        stream = out.add_stream("ffv1", rate=Fraction(RATE))
        stream.width, stream.height, stream.pix_fmt = W, H, "gray"
        for i in range(RATE * SECONDS):
            gray = cv2.cvtColor(shapes_frame(i, W, H), cv2.COLOR_RGB2GRAY)
            out.mux(stream.encode(av.VideoFrame.from_ndarray(gray, format="gray")))
        out.mux(stream.encode(None))
    return path


def call(server, method, path, body=None) -> bytes:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=600)
    headers = {"Host": f"127.0.0.1:{server.port}", "X-Studio-Token": server.studio.token}
    connection.request(method, path, body=body, headers=headers)
    reply = connection.getresponse()
    data = reply.read()
    connection.close()
    if reply.status != 200:
        raise SystemExit(f"{method} {path}: {reply.status} {data[:200]!r}")
    return data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clicks", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as folder:
        film = Film(make_film(Path(folder) / "film.mkv"))
        project = Project(Path(folder) / "film.mkv.studio", source_name=film.name, frames=film.frames)
        server = StudioServer(Studio(Engine(film, project, device="cpu")))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        call(server, "GET", "/api/frame/0/steered.png")  # warm-up: the frame read, the network's first run
        latencies = []
        for k in range(args.clicks):
            click = {"op": "point", "x": 40 + 100 * k, "y": 100 + 50 * k, "color": "#c0392b"}
            started = time.perf_counter()
            call(server, "POST", "/api/frame/0/edit", json.dumps(click).encode())
            call(server, "GET", "/api/frame/0/steered.png")
            latencies.append(time.perf_counter() - started)
        call(server, "POST", "/api/frame/0/keyframe", b'{"marked": true}')
        started = time.perf_counter()
        frames = json.loads(call(server, "POST", "/api/preview", b'{"frame": 0}'))["frames"]
        preview = time.perf_counter() - started
        server.shutdown()
    print(f"torch threads: {torch.get_num_threads()}, film {W}x{H}")
    print(
        f"click to steered preview: median {statistics.median(latencies):.3f} s, "
        f"worst {max(latencies):.3f} s over {len(latencies)} clicks"
    )
    print(f"carry preview of {frames} frames ({frames / RATE:.1f} s) at 240 px: {preview:.2f} s")


if __name__ == "__main__":
    main()
