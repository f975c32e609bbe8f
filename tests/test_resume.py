"""Resume (issue 4): a run killed with SIGKILL anywhere continues with `--resume` and gives the
same film as a run that was never stopped: identical frames (decoded planes, all three), identical
audio packets, identical timestamps; and no seam where segments meet.

The kill points come from the `REMASTER_KILL_AT` hook in segments.py, which sends the process a
real SIGKILL at a named point: mid-segment, between two segments, and during the final join.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import decode_all, make_clip
from test_corpus import run_cli

from remaster.run.config import make_config


@pytest.fixture(scope="module")
def model(random_model_file):
    return random_model_file


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """40 frames with keyframes at most 8 apart (x264 adds scene-cut ones), two audio tracks:
    with 10-frame segments the plan has 3 segments (each starts at the first keyframe 10 or
    more frames after the previous start; here frames 0, 10 and 26)."""
    folder = tmp_path_factory.mktemp("clip")
    return make_clip(folder / "reel.mp4", frames=40, audio_tracks=2, options={"preset": "fast", "crf": "20", "g": "8"})


def args_for(clip, output, model, *extra):
    # x264 with B-frames into MP4 (edit lists, reordered times), lossless (QP 0): the frames are
    # ours to the last code value. At CRF 18 this FFmpeg build's x264 does not give the same
    # pictures twice for the same input (measured, even with one thread), so a lossy encoder
    # cannot show what remaster itself keeps identical.
    return [
        "colorize",
        clip.path,
        "-o",
        output,
        "--model",
        model,
        "--device",
        "cpu",
        "--flow",
        "dis",
        "--segment-frames",
        "10",
        "--batch-size",
        "4",
        "--crf",
        "0",
        "--json",
        *extra,
    ]


@pytest.fixture(scope="module")
def reference(tmp_path_factory, clip, model):
    out = tmp_path_factory.mktemp("reference") / "out.mp4"
    result = run_cli(args_for(clip, out, model))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["segments"] == 3 and report["frames"] == 40
    return decode_all(out)


def assert_same_film(a, b):
    assert len(a.planes) == len(b.planes)
    assert a.times == b.times
    for i, (x, y) in enumerate(zip(a.planes, b.planes)):
        for k in range(len(x)):
            assert np.array_equal(x[k], y[k]), f"frame {i} plane {k} differs"
    assert a.packets == b.packets  # every audio packet, byte for byte


@pytest.mark.parametrize("point", ["segment 1 batch 1", "segment-done 1", "join 20"])
def test_killed_run_resumes_identically(point, tmp_path, clip, model, reference):
    out = tmp_path / "out.mp4"
    killed = run_cli(args_for(clip, out, model), env={"REMASTER_KILL_AT": point})
    assert killed.returncode == -9, f"expected SIGKILL at {point!r}: {killed.returncode} {killed.stderr[-300:]}"
    assert not out.exists()
    work = tmp_path / ".out.mp4.remaster-work"
    journal = json.loads((work / "journal.json").read_text())
    finished = len(journal["done"])
    assert finished == {"segment 1 batch 1": 1, "segment-done 1": 2, "join 20": 3}[point]

    refused = run_cli(args_for(clip, out, model))  # without --resume: refuses, keeps the work
    assert refused.returncode == 1 and "continue it with --resume" in refused.stderr, refused.stderr
    assert work.exists()

    resumed = run_cli(args_for(clip, out, model, "--resume"))
    assert resumed.returncode == 0, resumed.stderr
    report = json.loads(resumed.stdout)
    assert report["segments_resumed"] == finished  # at most the unfinished segment is redone
    assert_same_film(decode_all(out), reference)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]  # work, lock, partials gone


def test_resume_with_other_options_refuses(tmp_path, clip, model):
    out = tmp_path / "out.mp4"
    killed = run_cli(args_for(clip, out, model), env={"REMASTER_KILL_AT": "segment-done 0"})
    assert killed.returncode == -9
    other = run_cli(args_for(clip, out, model, "--resume", "--crf", "30"))
    assert other.returncode == 1
    lines = [line for line in other.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "different options" in lines[0] and "--force" in lines[0], lines
    fresh = run_cli(args_for(clip, out, model, "--force"))  # --force drops the old work
    assert fresh.returncode == 0, fresh.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]


def test_no_seam_between_segments(tmp_path, clip, model):
    """Segmented and one-segment runs agree (lossless FFV1) within a code value: each segment
    warms the temporal stage up on the frames before it, so colors continue across a join."""
    one = tmp_path / "one.mkv"
    seg = tmp_path / "seg.mkv"
    assert run_cli(args_for(clip, one, model, "--codec", "ffv1", "--segment-frames", "1000")).returncode == 0
    result = run_cli(args_for(clip, seg, model, "--codec", "ffv1"))
    assert result.returncode == 0 and json.loads(result.stdout)["segments"] == 3
    a, b = decode_all(one), decode_all(seg)
    assert a.times == b.times and a.packets == b.packets
    worst = max(
        int(np.abs(x[k].astype(int) - y[k].astype(int)).max()) for x, y in zip(a.planes, b.planes) for k in range(3)
    )
    assert worst <= 1, f"chroma differs by up to {worst} code values between segmented and one-pass runs"


def test_segments_warm_up_without_a_seam(tmp_path, clip):
    """Every segment starts its stages fresh and warms them up on the frames before its start
    (decoded from the keyframe before them, never written): a film cut in three lands within a
    code value of the same film in one segment; cut with no warm-up, the seam shows."""
    import dataclasses

    import torch

    from remaster.media.encoding import choose_layout
    from remaster.media.reader import VideoReader
    from remaster.net.colorizer import Colorizer
    from remaster.run.plan import plan_segments
    from remaster.run.segment import run_segment
    from remaster.stages.chain import build_chain

    torch.set_num_threads(1)
    colorizer = Colorizer.random(seed=0)
    config = make_config(flow="dis", codec="ffv1", batch_size=4)
    chain = build_chain(config, colorizer)
    with VideoReader(clip.path) as reader:
        layout = choose_layout(reader.source, "ffv1")
    whole = plan_segments(clip.path, 1000, warmup=chain.warmup_frames).segments
    cut = plan_segments(clip.path, 10, warmup=16).segments
    assert len(whole) == 1 and len(cut) == 3 and cut[1].lead_pts == cut[0].start_pts  # 16 back from frame 10 is frame 0

    def chroma(path):
        return [np.stack(p[1:]).astype(int) for p in decode_all(path).planes]

    run_segment(clip.path, whole[0], tmp_path / "whole.mkv", chain, config, layout)
    reference = chroma(tmp_path / "whole.mkv")
    worst_warm, total_warm, total_cold = 0, 0, 0
    for segment in cut[1:]:
        cold = dataclasses.replace(segment, lead_pts=None, lead_frames=0, sync_pts=None)
        run_segment(clip.path, segment, tmp_path / f"warm-{segment.index}.mkv", chain, config, layout)
        run_segment(clip.path, cold, tmp_path / f"cold-{segment.index}.mkv", chain, config, layout)
        truth = reference[segment.first_frame : segment.first_frame + segment.frames]
        warm, cold_planes = (
            chroma(tmp_path / f"warm-{segment.index}.mkv"),
            chroma(tmp_path / f"cold-{segment.index}.mkv"),
        )
        worst_warm = max(worst_warm, max(int(np.abs(a - b).max()) for a, b in zip(warm, truth)))
        total_warm += sum(int(np.abs(a - b).sum()) for a, b in zip(warm, truth))
        total_cold += sum(int(np.abs(a - b).sum()) for a, b in zip(cold_planes, truth))
    assert worst_warm <= 1, f"warmed-up segments differ from the uncut film by up to {worst_warm} code values"
    # A random net's colors barely move on this slow clip, so the cold seam is small too; but
    # it is there, and the warm-up removes most of it.
    assert total_warm * 2 < total_cold, f"summed chroma difference: warm {total_warm}, cold {total_cold}"


@pytest.mark.parametrize("segment_frames", [10, 1000], ids=["three-segments", "one-segment"])
def test_plain_resumed_and_twice_killed_runs_agree(segment_frames, tmp_path, clip, model):
    """The output is a function of input, model and options (DESIGN promise 8): a plain run, a
    `--resume` run that was never stopped, and a run killed with SIGKILL twice then resumed give
    the same frames, timestamps and audio packets, for a film of three segments and of one."""
    args = lambda out, *extra: args_for(clip, out, model, "--segment-frames", str(segment_frames), *extra)
    plain = tmp_path / "plain.mp4"
    assert run_cli(args(plain)).returncode == 0
    never_stopped = tmp_path / "never.mp4"
    assert run_cli(args(never_stopped, "--resume")).returncode == 0
    twice = tmp_path / "twice.mp4"
    kills = ("segment 0 batch 1", "segment 2 batch 0") if segment_frames == 10 else ("segment 0 batch 2", "join 10")
    for point in kills:
        killed = run_cli(args(twice, "--resume"), env={"REMASTER_KILL_AT": point})
        assert killed.returncode == -9, f"expected SIGKILL at {point!r}: {killed.returncode} {killed.stderr[-300:]}"
    assert run_cli(args(twice, "--resume")).returncode == 0
    reference = decode_all(plain)
    assert_same_film(decode_all(never_stopped), reference)
    assert_same_film(decode_all(twice), reference)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["never.mp4", "plain.mp4", "twice.mp4"]


def test_stages_are_built_once_per_run(tmp_path, clip, monkeypatch):
    """The flow provider (and RAFT's weights) load once for the whole run, not per segment."""
    import remaster.stages.temporal
    from remaster.net.colorizer import Colorizer
    from remaster.run.pipeline import colorize_video

    built = []
    real = remaster.stages.temporal.make_flow_provider
    monkeypatch.setattr(
        remaster.stages.temporal, "make_flow_provider", lambda *a, **k: built.append(1) or real(*a, **k)
    )
    report = colorize_video(
        clip.path,
        tmp_path / "out.mkv",
        make_config(flow="dis", codec="ffv1", segment_frames=10),
        progress=False,
        colorizer=Colorizer.random(seed=0),
    )
    assert report.segments == 3 and report.flow_provider.startswith("dis")
    assert len(built) == 1, f"flow provider built {len(built)} times for one run"


def test_disk_full_keeps_finished_segments_for_resume(tmp_path, clip, model):
    """A full disk stops the run with one line saying what is kept; once there is room,
    `--resume` finishes it and the film is the same as an unbroken run's."""
    import resource
    import signal

    def limit():  # every file this run writes may grow to 12 kB: a segment fits, the join does not
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (12_000, 12_000))

    out = tmp_path / "out.mkv"
    full = run_cli(args_for(clip, out, model, "--codec", "ffv1", "--batch-size", "8"), preexec_fn=limit)
    assert full.returncode == 1, full.stderr
    lines = [line for line in full.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "file too large" in lines[0], lines
    assert not out.exists()
    work = tmp_path / ".out.mkv.remaster-work"
    if "--resume" in lines[0]:
        assert work.exists()
    resumed = run_cli(args_for(clip, out, model, "--codec", "ffv1", "--batch-size", "8", "--resume"))
    assert resumed.returncode == 0, resumed.stderr
    reference = tmp_path / "reference.mkv"
    assert run_cli(args_for(clip, reference, model, "--codec", "ffv1", "--batch-size", "8")).returncode == 0
    assert_same_film(decode_all(out), decode_all(reference))


def test_damaged_packets_in_a_segmented_run(tmp_path, model):
    """Damage mid-film in segment mode: count and timing kept, the damage reported once."""
    from make_corpus import _flip_packets

    base = make_clip(
        tmp_path / "base.mkv",
        frames=30,
        audio_tracks=1,
        codec="ffv1",
        options={"slicecrc": "1", "level": "3", "g": "1"},
    )
    damaged = _flip_packets(base.path, tmp_path / "damaged.mkv", (12, 13))
    out = tmp_path / "out.mkv"
    result = run_cli(
        [
            "colorize",
            damaged,
            "-o",
            out,
            "--model",
            model,
            "--device",
            "cpu",
            "--flow",
            "dis",
            "--codec",
            "ffv1",
            "--segment-frames",
            "10",
            "--json",
        ]
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["segments"] == 3 and report["frames"] == 30 and report["damaged_frames"] == 2
    assert "2 damaged frame(s) (12, 13)" in result.stderr
    assert decode_all(out).times == decode_all(base.path).times


def test_segments_of_an_mpeg_ts(tmp_path, model):
    """MPEG-TS has no index: a seek lands by estimate, so segments aim early and drop what is
    before their keyframe. Every frame, timestamp and Y plane must still be there, once."""
    from test_video_errors import remux

    mkv = make_clip(
        tmp_path / "in.mkv", frames=40, audio_tracks=1, options={"preset": "medium", "crf": "20", "g": "8"}
    ).path
    ts = tmp_path / "in.ts"
    remux(mkv, ts)
    out = tmp_path / "out.mkv"
    result = run_cli(
        [
            "colorize",
            ts,
            "-o",
            out,
            "--model",
            model,
            "--device",
            "cpu",
            "--flow",
            "dis",
            "--codec",
            "ffv1",
            "--segment-frames",
            "10",
            "--json",
        ]
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["segments"] == 3
    a, b = decode_all(ts), decode_all(out)
    assert len(b.planes) == 40 and a.times == b.times
    assert all(np.array_equal(x[0], y[0]) for x, y in zip(a.planes, b.planes))
