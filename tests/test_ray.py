"""`--ray local` on a real local Ray instance (issue 11): the segments run as Ray actor tasks and
the film is the plain run's, frame for frame, timestamp for timestamp, packet for packet; a
folder's films share the cluster; the instance listens on the loopback address only and has no
dashboard (ShadowRay, CVE-2023-48022). Skipped where Ray is not installed (`remaster[ray]`).
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from conftest import decode_all, make_clip
from test_corpus import run_cli
from test_resume import args_for, assert_same_film
from test_scale import clip, model  # noqa: F401  (the same film and model fixtures)

from remaster.run.config import make_config

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def local_ray():
    """One local instance for the module, started the way `--ray local` starts it (2 CPUs)."""
    from remaster.run.ray_cluster import start_local

    if ray.is_initialized():
        ray.shutdown()
    start_local(num_cpus=2)
    yield ray
    ray.shutdown()


def config_for(model, **extra):
    # The options of test_resume.args_for, as a config.
    return make_config(
        **{
            "model": str(model),
            "device": "cpu",
            "flow": "dis",
            "segment_frames": 10,
            "batch_size": 4,
            "crf": 0,
            **extra,
        }
    )


def test_ray_local_gives_the_plain_film(local_ray, tmp_path, clip, model):
    from remaster.run.pipeline import colorize_video

    plain = tmp_path / "plain.mp4"
    result = run_cli(args_for(clip, plain, model))
    assert result.returncode == 0, result.stderr
    out = tmp_path / "ray.mp4"
    report = colorize_video(clip.path, out, config_for(model), ray="local", progress=False)
    assert report.segments == 3 and report.frames == 40 and report.stage_seconds["colorize"] > 0
    assert_same_film(decode_all(out), decode_all(plain))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plain.mp4", "ray.mp4"]  # work folder and lock gone
    assert ray.is_initialized()  # a Ray instance the caller started is left running


def test_the_local_instance_listens_on_loopback_only_without_a_dashboard(local_ray):
    node = ray.nodes()[0]
    assert node["NodeManagerAddress"] == "127.0.0.1"
    host, port = ray.get_runtime_context().gcs_address.rsplit(":", 1)
    assert host == "127.0.0.1"
    listening = _listening()
    assert int(port) in listening and listening[int(port)] <= {"127.0.0.1", "::ffff:127.0.0.1"}, listening.get(
        int(port)
    )
    assert 8265 not in listening  # the dashboard's port
    try:  # and nothing answers at the machine's own network address
        address = socket.gethostbyname(socket.gethostname())
    except OSError:
        return
    if not address.startswith("127."):
        with pytest.raises(OSError):
            socket.create_connection((address, int(port)), timeout=2).close()


def _listening() -> dict[int, set[str]]:
    """Port -> local addresses of the listening TCP sockets (Linux /proc/net/tcp, tcp6)."""
    ports: dict[int, set[str]] = {}
    for name, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        try:
            lines = Path(name).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            if state != "0A":  # LISTEN
                continue
            hex_address, hex_port = local.split(":")
            raw = bytes.fromhex(hex_address)
            if width == 8:
                address = socket.inet_ntop(socket.AF_INET, raw[::-1])
            else:
                address = socket.inet_ntop(socket.AF_INET6, b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4)))
            ports.setdefault(int(hex_port, 16), set()).add(address)
    return ports


def test_a_folder_on_ray_gives_one_row_per_film(local_ray, tmp_path, model):
    from remaster.run.folder import colorize_folder

    folder = tmp_path / "reels"
    folder.mkdir()
    for name, frames in (("a.mp4", 12), ("b.mp4", 16), ("c.mkv", 10)):
        make_clip(folder / name, frames=frames, audio_tracks=1, options={"g": "4"} if name != "c.mkv" else None)
    # Three actors on two CPUs: each asks for a share that fits (a whole CPU each would leave one
    # waiting for ever, with the segments handed to it).
    rows = colorize_folder(
        folder, tmp_path / "out", config_for(model, segment_frames=4), ray="local", workers=3, progress=False
    )
    assert all(r.error is None for r in rows), [r.error for r in rows]
    assert rows[0].report.execution["executor"] == "ray" and rows[0].report.execution["workers"] == 3
    assert [Path(r.input).name for r in rows] == ["a.mp4", "b.mp4", "c.mkv"] and all(r.error is None for r in rows)
    assert [r.report.frames for r in rows] == [12, 16, 10]
    assert sum(r.report.segments for r in rows) > 3  # segments of several films shared the actors
    for name in ("a.mp4", "b.mp4", "c.mkv"):
        film, source = decode_all(tmp_path / "out" / name), decode_all(folder / name)
        assert film.times == source.times and film.packets == source.packets
    assert (
        json.loads(json.dumps([r.to_dict() for r in rows]))[2]["report"]["frames"] == 10
    )  # rows are plain data (--json)


def test_a_task_whose_actor_dies_is_retried_on_a_restarted_actor(tmp_path, clip, model):
    """`--ray local` from the command line (its own instance, shut down at the end). The first
    actor to reach segment 1 is killed with SIGKILL (the hook is in the environment the actors
    inherit); Ray restarts the actor and retries the task, and the run completes with the
    plain run's film. (When every try dies, the run ends with one line "Ray lost segment 1 of
    reel.mp4 after 2 retries ..." and --resume finishes it: checked by hand, see benchmarks/RESULTS.md
    (the --workers section).)"""
    plain = tmp_path / "plain.mp4"
    assert run_cli(args_for(clip, plain, model)).returncode == 0
    out = tmp_path / "out.mp4"
    marker = tmp_path / "killed-once"
    result = run_cli(
        args_for(clip, out, model, "--ray", "local"),
        env={"REMASTER_KILL_AT": "segment 1 batch 1", "REMASTER_KILL_ONCE": str(marker)},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert marker.exists()  # an actor was killed mid-segment
    report = json.loads(result.stdout)
    assert report["segments_resumed"] == 0 and report["execution"]["executor"] == "ray"
    assert_same_film(decode_all(out), decode_all(plain))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["killed-once", "out.mp4", "plain.mp4"]


def test_ray_local_with_keyframes_gives_the_plain_film(local_ray, tmp_path, clip, model):
    """A colorist's keyframes on Ray: the carry forward from frame 5 and backward from frame 30
    (into the segment before its own) are the plain run's, byte for byte in every plane."""
    import av
    import cv2

    from remaster.run.pipeline import colorize_video

    keys = tmp_path / "keys"
    keys.mkdir()
    with av.open(str(clip.path)) as container:
        for number, frame in enumerate(container.decode(video=0)):
            if number in (5, 30):
                cv2.imwrite(
                    str(keys / f"{number:06d}.png"), cv2.cvtColor(frame.to_ndarray(format="rgb24"), cv2.COLOR_RGB2BGR)
                )
    plain, out = tmp_path / "plain.mp4", tmp_path / "ray.mp4"
    colorize_video(clip.path, plain, config_for(model), keyframes=keys, progress=False)
    report = colorize_video(clip.path, out, config_for(model), keyframes=keys, ray="local", progress=False)
    assert report.segments == 3 and [k["frame"] for k in report.keyframes] == [5, 30]
    assert_same_film(decode_all(out), decode_all(plain))
