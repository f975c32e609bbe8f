"""Scale-out on one machine (issue 11): `--workers N` gives the film a plain run gives, frame for
frame, timestamp for timestamp and audio packet for audio packet; a worker killed mid-run ends
the run with one line and `--resume` finishes it identically; a folder of films gives one
output and one report row per film.

The workers are real spawned processes; the kill is a real SIGKILL from the `REMASTER_KILL_AT`
hook (remaster.faults.fault), which the workers inherit with the environment.
"""

from __future__ import annotations

import json

import pytest
from conftest import decode_all, make_clip
from test_corpus import run_cli
from test_resume import args_for, assert_same_film


@pytest.fixture(scope="module")
def model(random_model_file):
    return random_model_file


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """40 frames, keyframes at most 8 apart, two audio tracks: 3 segments at --segment-frames 10."""
    return make_clip(
        tmp_path_factory.mktemp("clip") / "reel.mp4",
        frames=40,
        audio_tracks=2,
        options={"preset": "fast", "crf": "20", "g": "8"},
    )


@pytest.fixture(scope="module")
def reference(tmp_path_factory, clip, model):
    out = tmp_path_factory.mktemp("reference") / "out.mp4"
    result = run_cli(args_for(clip, out, model))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["segments"] == 3
    return decode_all(out)


def test_two_workers_give_the_plain_film(tmp_path, clip, model, reference):
    out = tmp_path / "out.mp4"
    result = run_cli(args_for(clip, out, model, "--workers", "2"))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["segments"] == 3 and report["frames"] == 40 and report["segments_resumed"] == 0
    assert (
        report["stage_seconds"]["colorize"] > 0 and report["stage_seconds"]["encode"] > 0
    )  # the workers' timings reach the report
    assert_same_film(decode_all(out), reference)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]  # work folder, lock, partials gone


def test_killed_worker_ends_the_run_and_resume_completes_it(tmp_path, clip, model, reference):
    out = tmp_path / "out.mp4"
    killed = run_cli(args_for(clip, out, model, "--workers", "2"), env={"REMASTER_KILL_AT": "segment 1 batch 1"})
    assert killed.returncode == 1, killed.stderr
    lines = [line for line in killed.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, lines  # one line, no traceback
    assert "killed by signal 9 while colorizing segment 1 of reel.mp4" in lines[0] and "--resume" in lines[0], lines
    assert not out.exists()
    journal = json.loads((tmp_path / ".out.mp4.remaster-work" / "journal.json").read_text())
    kept = len(journal["done"])
    # The other worker finished the segment it was on (kept); nothing new was started.
    assert "1" not in journal["done"] and 1 <= kept <= 2

    resumed = run_cli(args_for(clip, out, model, "--workers", "2", "--resume"))
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["segments_resumed"] == kept
    assert_same_film(decode_all(out), reference)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]


def test_a_device_the_machine_lacks_is_refused_before_any_work(tmp_path, clip, model):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    out = tmp_path / "out.mp4"
    result = run_cli(args_for(clip, out, model, "--workers", "2", "--devices", "cuda:0,cuda:1"))
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "no CUDA GPU" in lines[0], lines
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_ray_without_ray_installed_says_how_to_install_it(tmp_path, clip, model):
    """A `ray` package that cannot be imported stands in for a missing one."""
    fake = tmp_path / "fake" / "ray"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('No module named ray')\n")
    import os

    path = os.pathsep.join([str(fake.parent), os.environ.get("PYTHONPATH", "")])
    result = run_cli(args_for(clip, tmp_path / "out.mp4", model, "--ray", "local"), env={"PYTHONPATH": path})
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == ["remaster: --ray needs Ray, which is not installed: pip install 'remaster[ray]'"], lines
    assert not (tmp_path / "out.mp4").exists()


@pytest.fixture(scope="module")
def reels(tmp_path_factory):
    """Three tiny films (two MP4 with sound, one FFV1 Matroska without) and a text file that is not a film."""
    folder = tmp_path_factory.mktemp("reels")
    make_clip(folder / "a.mp4", frames=12, audio_tracks=1)
    make_clip(folder / "b.mkv", frames=10, audio_tracks=0, codec="ffv1")
    make_clip(folder / "c.mp4", frames=14, audio_tracks=2, width=48, height=32)
    (folder / "notes.txt").write_text("not a film")
    return folder


def test_a_folder_gives_one_output_and_one_row_per_film(tmp_path, reels, model):
    out = tmp_path / "colorized"
    args = ["colorize", reels, "-o", out, "--model", model, "--device", "cpu", "--flow", "dis", "--segment-frames", "6"]
    result = run_cli([*args, "--json"])
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [r["input"].rsplit("/", 1)[-1] for r in rows] == ["a.mp4", "b.mkv", "c.mp4"]
    assert [r["report"]["frames"] for r in rows] == [12, 10, 14] and all(r["error"] is None for r in rows)
    assert sorted(p.name for p in out.iterdir()) == ["a.mp4", "b.mkv", "c.mp4"]
    for name, frames in (("a.mp4", 12), ("b.mkv", 10), ("c.mp4", 14)):
        film, source = decode_all(out / name), decode_all(reels / name)
        assert len(film.planes) == frames and film.times == source.times and film.packets == source.packets

    table = run_cli([*args, "--force"])  # the table: a header, three rows, a total
    assert table.returncode == 0, table.stderr
    lines = table.stdout.strip().splitlines()
    assert (
        len(lines) == 5
        and lines[0].split()[:2] == ["film", "frames"]
        and lines[-1].startswith("3 of 3 films written, 36 frames")
    )
    assert [line.split()[0] for line in lines[1:4]] == ["a.mp4", "b.mkv", "c.mp4"]


def test_a_film_that_cannot_be_read_gets_its_row_and_the_others_are_written(tmp_path, reels, model):
    import shutil

    folder = tmp_path / "in"
    shutil.copytree(reels, folder)
    (folder / "broken.mp4").write_bytes(b"not a film at all")
    out = tmp_path / "out"
    result = run_cli(["colorize", folder, "-o", out, "--model", model, "--device", "cpu", "--flow", "dis", "--json"])
    assert result.returncode == 1  # a film failed
    rows = {r["input"].rsplit("/", 1)[-1]: r for r in json.loads(result.stdout)}
    assert set(rows) == {"a.mp4", "b.mkv", "broken.mp4", "c.mp4"}
    assert rows["broken.mp4"]["report"] is None and "broken.mp4" in rows["broken.mp4"]["error"]
    assert sorted(p.name for p in out.iterdir()) == ["a.mp4", "b.mkv", "c.mp4"]
