"""The studio's speed (issue 21): click-to-preview latency at 640x480, the carry's preview of a
3-second stretch, a dropped reference matched and registered, and the page's render against the
same run through `colorize_video`, through real HTTP requests against a real studio server on
this machine.

    python benchmarks/bench_studio.py [--clicks 5] [--threads N] [--no-render]

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
    parser.add_argument("--no-render", action="store_true", help="leave out the render's comparison")
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
        # A print of frame 40 (cropped, scaled 1.3x, another tone curve, JPEG) dropped on frame 36.
        rgb = shapes_frame(40, W, H)[12 : H - 8, 16 : W - 10]
        rgb = cv2.resize(rgb, (rgb.shape[1] * 13 // 10, rgb.shape[0] * 13 // 10), interpolation=cv2.INTER_CUBIC)
        rgb = (255 * (rgb / 255) ** 0.8).astype("uint8")
        jpeg = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes()
        started = time.perf_counter()
        placed = json.loads(call(server, "POST", "/api/frame/36/reference?use=colors", jpeg))
        dropped = time.perf_counter() - started
        started = time.perf_counter()
        call(server, "GET", f"/api/frame/{placed['frame']}/steered.png")
        as_colors = time.perf_counter() - started
        call(server, "POST", f"/api/frame/{placed['frame']}/use", b'{"use": "hints"}')
        started = time.perf_counter()
        call(server, "GET", f"/api/frame/{placed['frame']}/steered.png")
        as_hints = time.perf_counter() - started
        rendered = None if args.no_render else compare_render(server, film.path, Path(folder))
        server.shutdown()
    print(f"torch threads: {torch.get_num_threads()}, film {W}x{H}")
    print(
        f"click to steered preview: median {statistics.median(latencies):.3f} s, "
        f"worst {max(latencies):.3f} s over {len(latencies)} clicks"
    )
    print(f"carry preview of {frames} frames ({frames / RATE:.1f} s) at 240 px: {preview:.2f} s")
    r = placed["registration"]
    print(
        f"reference dropped on frame 36 -> frame {placed['frame']} (scale {r['scale'][0]:.3f}x{r['scale'][1]:.3f}, "
        f"covers {100 * r['coverage']:.0f}%): matched and registered in {dropped:.2f} s; steered view with it "
        f"as colors {as_colors:.3f} s, as hints {as_hints:.3f} s"
    )
    if rendered:
        page, plain = rendered
        print(
            f"render of {RATE * SECONDS} frames with a keyframe, FFV1, best of 2 alternating: the page's {page:.2f} s, "
            f"colorize_video {plain:.2f} s (page/plain {page / plain:.2f})"
        )


def compare_render(server, film: Path, folder: Path, repeats: int = 2) -> tuple[float, float]:
    """Best seconds of the page's render (POST, then polled to its end) and of the same run through
    `colorize_video` with the same keyframes and options, alternating, each starting from nothing."""
    from remaster.run.pipeline import colorize_video, make_config

    page, plain = [], []
    for _ in range(repeats):
        started = time.perf_counter()
        call(server, "POST", "/api/render", b'{"codec": "ffv1"}')
        while json.loads(call(server, "GET", "/api/render"))["state"] == "running":
            time.sleep(0.1)
        page.append(time.perf_counter() - started)
        state = json.loads(call(server, "GET", "/api/render"))
        if state["state"] != "done":
            raise SystemExit(f"render: {state}")
        started = time.perf_counter()
        config = make_config(codec="ffv1", device="cpu")
        keyframes = server.studio.project.folder
        colorize_video(film, folder / "plain.mkv", config, force=True, progress=False, keyframes=keyframes)
        plain.append(time.perf_counter() - started)
    print(f"render seconds, page {[round(t, 2) for t in page]}, colorize_video {[round(t, 2) for t in plain]}")
    return min(page), min(plain)


if __name__ == "__main__":
    main()
