"""A colorist's keyframe carried through its shot (issue 9), through the real command.

A gray film of moving shapes; the keyframe is the true color version of its first frame. With
it, the colors of the following frames come close to the truth; a random network alone does
not. The carry is part of the temporal stage (one mechanism), follows the plan (a film cut in
segments gets the same colors within a code value), and stops at a cut.
"""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch
from conftest import decode_all, make_clip, shapes_frame
from test_corpus import run_cli

from remaster.color import rgb_to_ycbcr

W, H, FRAMES = 128, 96, 40


@pytest.fixture(scope="module")
def film(tmp_path_factory):
    folder = tmp_path_factory.mktemp("film")
    clip = make_clip(
        folder / "gray.mkv",
        width=W,
        height=H,
        frames=FRAMES,
        audio_tracks=1,
        codec="ffv1",
        pix_fmt="gray",
        options={"g": "1"},
    )
    keyframes = folder / "keyframes"
    keyframes.mkdir()
    cv2.imwrite(str(keyframes / "000000.png"), cv2.cvtColor(shapes_frame(0, W, H), cv2.COLOR_RGB2BGR))
    return clip, keyframes


def chroma_error(path) -> list[float]:
    """Mean |chroma - true chroma| per frame, in 8-bit code values (4:2:0 planes vs the truth's).
    A gray source is full range, so the output's chroma codes are 128 + 255 * offset."""
    errors = []
    for i, planes in enumerate(decode_all(path).planes):
        truth = rgb_to_ycbcr(torch.from_numpy(shapes_frame(i, W, H)).permute(2, 0, 1)[None].float() / 255, "bt601")[
            0, 1:
        ]
        truth = (torch.nn.functional.avg_pool2d(truth[None], 2)[0].numpy() - 0.5) * 255 + 128  # full-range 4:2:0 codes
        got = np.stack(planes[1:]).astype(np.float64)
        errors.append(float(np.abs(got - truth).mean()))
    return errors


def colorize(film, out, model, *extra):
    args = [
        "colorize",
        film.path,
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
        "--json",
        *extra,
    ]
    result = run_cli(args)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_keyframe_colors_are_carried_through_the_shot(tmp_path, film, random_model_file):
    clip, keyframes = film
    report = colorize(clip, tmp_path / "with.mkv", random_model_file, "--keyframes", keyframes)
    (placed,) = report["keyframes"]
    assert {k: placed[k] for k in ("file", "frame", "matched", "similarity")} == {
        "file": "000000.png",
        "frame": 0,
        "matched": False,
        "similarity": None,
    }
    assert placed["registration"]["coverage"] == 1.0  # the frame itself: registered onto itself, all of it
    colorize(clip, tmp_path / "without.mkv", random_model_file)
    with_keyframe, without = chroma_error(tmp_path / "with.mkv"), chroma_error(tmp_path / "without.mkv")
    assert with_keyframe[0] < 2.5, with_keyframe[0]  # the keyframe's own frame: its colors
    # Ten frames on, the carried colors are still far closer to the truth than a random net's.
    assert np.mean(with_keyframe[1:11]) < 0.5 * np.mean(without[1:11]), (with_keyframe[:11], without[:11])


def test_keyframe_carry_follows_the_plan(tmp_path, film, random_model_file):
    """Cut into segments (the second starts 16 frames after the keyframe, within its reach), the
    film warms up from the keyframe itself: the same colors as one segment, within a code value."""
    clip, keyframes = film
    one = colorize(clip, tmp_path / "one.mkv", random_model_file, "--keyframes", keyframes)
    cut = colorize(clip, tmp_path / "cut.mkv", random_model_file, "--keyframes", keyframes, "--segment-frames", "16")
    assert one["segments"] == 1 and cut["segments"] == 3
    a, b = decode_all(tmp_path / "one.mkv"), decode_all(tmp_path / "cut.mkv")
    worst = max(
        int(np.abs(x[k].astype(int) - y[k].astype(int)).max()) for x, y in zip(a.planes, b.planes) for k in range(3)
    )
    assert worst <= 1, f"segments differ from the uncut film by up to {worst} code values"
    assert a.packets == b.packets


def test_keyframes_need_motion(tmp_path, film, random_model_file):
    clip, keyframes = film
    args = [
        "colorize",
        clip.path,
        "-o",
        tmp_path / "out.mkv",
        "--model",
        random_model_file,
        "--device",
        "cpu",
        "--flow",
        "none",
        "--keyframes",
        keyframes,
    ]
    result = run_cli(args)
    assert result.returncode == 1 and "keyframes are carried along the film's motion" in result.stderr
    assert not (tmp_path / "out.mkv").exists()
