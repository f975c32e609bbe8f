"""Keyframes carried forward and backward through their shots (issue 9, item 3), through the real
command: gray films of moving, occluding colored shapes written with PyAV, keyframes that are the
true colors of some frames, a random network, DIS flow.

What a colorist can count on: a keyframe's own frame comes out in its colors; a shape colored
only at the first frame of the shot keeps its color 40 frames on, and one colored only at the
last frame is right at the first; colors never cross a cut; memory does not grow with the
film's length; and a run stopped and resumed gives the same film as a plain one, also when a
keyframe after a segment boundary reaches back into the segment before it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import av
import cv2
import numpy as np
import pytest
import torch
from conftest import decode_all, shapes_frame
from test_corpus import run_cli

from remaster.color import rgb_to_ycbcr
from remaster.stages.keyframes.window import backward_windows, carry_range

W, H = 160, 96  # wide enough that the red square (3 px a frame) does not wrap within 41 frames


def write_gray(path, frames_rgb, gop: int = 1):
    """A gray FFV1 film (full range) of the lumas of `frames_rgb`, 25 fps."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("ffv1", rate=25, options={"g": str(gop)})
        stream.height, stream.width = frames_rgb[0].shape[:2]
        stream.pix_fmt = "gray"
        for i, image in enumerate(frames_rgb):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(
                format="gray", dst_colorspace="itu601", dst_color_range="JPEG"
            )
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def keyframes(folder, truth, frames):
    folder.mkdir()
    for t in frames:
        cv2.imwrite(str(folder / f"{t:06d}.png"), cv2.cvtColor(truth[t], cv2.COLOR_RGB2BGR))
    return folder


def true_chroma(rgb) -> np.ndarray:
    """Full-range 4:2:0 chroma codes `(2, H/2, W/2)` of an RGB frame (a gray source is full range)."""
    ycc = rgb_to_ycbcr(torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255, "bt601")[0, 1:]
    return (torch.nn.functional.avg_pool2d(ycc[None], 2)[0].numpy() - 0.5) * 255 + 128


def chroma_errors(path, truth, mask=None) -> list[float]:
    """Mean |chroma - true chroma| per frame in code values, where `mask(t)` (at 4:2:0) says."""
    errors = []
    for t, planes in enumerate(decode_all(path).planes):
        diff = np.abs(np.stack(planes[1:]).astype(np.float64) - true_chroma(truth[t])).mean(0)  # (H/2, W/2)
        errors.append(float(diff[mask(t)].mean() if mask is not None else diff.mean()))
    return errors


def shape_mask(truth, color):
    """Where the shape of `color` is, at 4:2:0, in frame t (its grain is ±6 codes)."""

    def mask(t):
        near = np.all(np.abs(truth[t].astype(int) - color) <= 8, axis=-1)
        return cv2.resize(near.astype(np.uint8), (W // 2, H // 2), interpolation=cv2.INTER_AREA) == 1

    return mask


RED, BLUE = (140, 20, 20), (30, 60, 220)


def film_frame(index: int) -> np.ndarray:
    """The suite's shapes with the square a darker red: the conftest's red (210, 40, 30) has about
    the luma of the sky behind it, so no luma-based motion can follow it, nor could a colorist's
    carry."""
    image = shapes_frame(index, W, H).astype(np.int16)
    square = np.all(np.abs(image - (210, 40, 30)) <= 6, axis=-1)
    image[square] += np.array(RED) - (210, 40, 30)
    return np.clip(image, 0, 255).astype(np.uint8)


def colorize(film, out, model, *extra):
    args = [
        "colorize",
        film,
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


@pytest.fixture(scope="module")
def shapes(tmp_path_factory, random_model_file):
    """41 frames of moving shapes (the disc passes in front of the square around frame 29) and
    the film colorized without keyframes."""
    folder = tmp_path_factory.mktemp("shapes")
    truth = [film_frame(i) for i in range(41)]
    film = write_gray(folder / "gray.mkv", truth)
    colorize(film, folder / "auto.mkv", random_model_file)
    return folder, truth, film, chroma_errors(folder / "auto.mkv", truth)


def test_a_keyframe_comes_out_in_its_own_colors(tmp_path, shapes, random_model_file):
    folder, truth, film, auto = shapes
    report = colorize(
        film, tmp_path / "out.mkv", random_model_file, "--keyframes", keyframes(tmp_path / "keys", truth, [23])
    )
    assert report["keyframes"][0]["frame"] == 23
    errors = chroma_errors(tmp_path / "out.mkv", truth)
    assert errors[23] < 2.5, errors[23]  # within the working size and 4:2:0 of the truth
    assert auto[23] > 4 * errors[23], (auto[23], errors[23])


def test_a_shape_colored_at_frame_0_keeps_its_color_at_frame_40(tmp_path, shapes, random_model_file):
    """The disc keeps its color to frame 40; so does the square until the disc hides it wholly
    (frames 29-33). After that nothing carried explains the square: the fill takes what the
    keyframe's colors by tone (red) and the carry (the disc's blue, dragged over it) agree on, a
    muted color, safer than either guess alone (on real clips the colors by tone are the wrong one
    more often: a hand taking blue bottles' blue), and still nearer the truth than no keyframe."""
    folder, truth, film, auto = shapes
    colorize(film, tmp_path / "out.mkv", random_model_file, "--keyframes", keyframes(tmp_path / "keys", truth, [0]))
    for color, t, most, share in ((BLUE, 40, 12, 0.5), (RED, 24, 12, 0.5), (RED, 40, 24, 0.9)):
        with_key = chroma_errors(tmp_path / "out.mkv", truth, shape_mask(truth, color))
        without = chroma_errors(folder / "auto.mkv", truth, shape_mask(truth, color))
        assert with_key[t] < most and with_key[t] < share * without[t], (color, t, with_key[t], without[t])


def test_a_shape_colored_at_its_last_frame_is_right_at_the_first(tmp_path, shapes, random_model_file):
    """Backward carry: the only keyframe is the shot's last frame."""
    folder, truth, film, auto = shapes
    colorize(film, tmp_path / "out.mkv", random_model_file, "--keyframes", keyframes(tmp_path / "keys", truth, [40]))
    whole = chroma_errors(tmp_path / "out.mkv", truth)
    assert whole[0] < 0.5 * auto[0] and np.mean(whole[:40]) < 0.5 * np.mean(auto[:40]), (whole[:5], auto[:5])
    for color in (RED, BLUE):
        with_key = chroma_errors(tmp_path / "out.mkv", truth, shape_mask(truth, color))
        without = chroma_errors(folder / "auto.mkv", truth, shape_mask(truth, color))
        assert with_key[0] < 12 and with_key[0] < 0.5 * without[0], (color, with_key[0], without[0])


def test_two_keyframes_of_a_shot_are_blended(tmp_path, shapes, random_model_file):
    """With the first and the last frame given, the frames between come closer to the truth
    than with either alone, and each keyframe comes out in its own colors."""
    folder, truth, film, auto = shapes
    errors = {}
    for name, frames in (("first", [0]), ("last", [40]), ("both", [0, 40])):
        colorize(
            film, tmp_path / f"{name}.mkv", random_model_file, "--keyframes", keyframes(tmp_path / name, truth, frames)
        )
        errors[name] = chroma_errors(tmp_path / f"{name}.mkv", truth)
    assert errors["both"][0] < 2.5 and errors["both"][40] < 2.5, (errors["both"][0], errors["both"][40])
    between = {name: np.mean(e[1:40]) for name, e in errors.items()}
    assert between["both"] <= min(between["first"], between["last"]) + 0.05, between


def test_a_flickering_films_keyframe_carries_through_the_flicker(tmp_path, random_model_file):
    """Old film's exposure flicker (every frame's light ±15%, seeded) is no cut: the temporal stage
    never starts over, and the colors of a keyframe at frame 0 still hold the shapes as on the
    steady film: the disc at frame 40, the square until the disc hides it."""
    rng = np.random.default_rng(7)
    gains = 1 + rng.uniform(-0.15, 0.15, 41)
    truth = [np.clip(film_frame(i) * gains[i], 0, 255).astype(np.uint8) for i in range(41)]
    film = write_gray(tmp_path / "flicker.mkv", truth)
    auto = colorize(film, tmp_path / "auto.mkv", random_model_file)
    assert auto["temporal"]["cuts"] == 0, auto["temporal"]["cuts"]
    colorize(film, tmp_path / "out.mkv", random_model_file, "--keyframes", keyframes(tmp_path / "keys", truth, [0]))
    for color, t in ((BLUE, 40), (RED, 24)):  # the square until the disc hides it (as on the steady film)
        near = lambda t, color=color: shape_mask(truth, np.clip(np.array(color) * gains[t], 0, 255))(t)
        with_key = chroma_errors(tmp_path / "out.mkv", truth, near)
        without = chroma_errors(tmp_path / "auto.mkv", truth, near)
        assert with_key[t] < 12 and with_key[t] < 0.5 * without[t], (color, t, with_key[t], without[t])


def test_colors_do_not_cross_a_cut(tmp_path, random_model_file):
    """Two shots (the second is the picture turned upside down): a keyframe in one shot leaves
    every frame of the other exactly as the automatic mode makes it, forward and backward."""
    truth = [film_frame(i) for i in range(20)] + [
        np.ascontiguousarray(film_frame(i)[::-1, ::-1]) for i in range(20, 40)
    ]
    film = write_gray(tmp_path / "cut.mkv", truth)
    colorize(film, tmp_path / "auto.mkv", random_model_file)
    colorize(film, tmp_path / "first.mkv", random_model_file, "--keyframes", keyframes(tmp_path / "a", truth, [0]))
    colorize(film, tmp_path / "last.mkv", random_model_file, "--keyframes", keyframes(tmp_path / "b", truth, [39]))
    auto, first, last = (decode_all(tmp_path / f"{n}.mkv").planes for n in ("auto", "first", "last"))
    for t in range(20, 40):  # the keyframe at 0 does not reach past the cut
        assert all(np.array_equal(first[t][k], auto[t][k]) for k in (1, 2)), (
            f"frame {t} took color from frame 0 across the cut"
        )
    for t in range(20):  # nor does the keyframe at 39 reach back before it
        assert all(np.array_equal(last[t][k], auto[t][k]) for k in (1, 2)), (
            f"frame {t} took color from frame 39 across the cut"
        )
    assert not np.array_equal(last[20][1], auto[20][1])  # while it does reach its own shot's first frame


def _peak_rss_mb(args) -> float:
    """Peak resident memory of `remaster ARGS` in a child process, in MB."""
    code = (
        "import resource, sys, runpy; sys.argv = ['remaster'] + sys.argv[1:]\n"
        "try:\n    runpy.run_module('remaster.cli.main', run_name='__main__')\n"
        "except SystemExit as e:\n    assert not e.code, e.code\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return int(result.stderr.strip().splitlines()[-1]) / 1024


def test_memory_stays_flat_with_far_apart_keyframes(tmp_path, random_model_file):
    """A film 5x longer, with its two keyframes 210 frames apart and a reach of 30 frames (so each is
    carried forward and backward as far as it goes, with a stretch no keyframe reaches between),
    peaks at the same memory as a short film with two keyframes: windows are bounded by the reach,
    spilled to the work folder, and let go. At 320x240 holding the film's frames would add ~40 MB
    per 100 frames, ~100 MB here; the margin (40 MB) is what bounded queues filling up or not
    on a loaded machine move the peak by (up to ~30 MB measured). Both films have two keyframes
    because registering each one to its frame costs some memory of its own (measured about 8 MB
    each here, mostly the allocator's), which depends on the keyframes, not on the film's length.
    Both films have frames no keyframe governs, so both run the network (which runs only there:
    on_demand.ChromaOnDemand) and hold its working memory."""
    width, height = 320, 240
    peaks = {}
    for frames in (60, 300):
        truth = [shapes_frame(i % 40, width, height) for i in range(frames)]
        film = write_gray(tmp_path / f"film{frames}.mkv", truth, gop=30)
        keys = keyframes(tmp_path / f"keys{frames}", truth, [14, 24] if frames == 60 else [44, 254])
        peaks[frames] = _peak_rss_mb(
            [
                "colorize",
                film,
                "-o",
                tmp_path / f"out{frames}.mkv",
                "--model",
                random_model_file,
                "--device",
                "cpu",
                "--flow",
                "dis",
                "--dis-preset",
                "ultrafast",
                "--codec",
                "ffv1",
                "--keyframes",
                keys,
                "--keyframe-reach",
                "30",
            ]
        )
    assert peaks[300] < peaks[60] + 40, peaks


def test_plan_reads_tail_frames_for_a_keyframe_after_the_segment():
    windows = backward_windows([0, 30, 95], reach=50)
    assert windows == [(1, 30), (46, 95)]  # from the keyframe before, or `reach - 1` frames back
    assert carry_range(windows, 0, 16) == (1, 30)  # frames 16..30: tail, read and not written
    assert carry_range(windows, 32, 48) == (46, 95)
    assert carry_range(windows, 30, 46) is None


@pytest.mark.parametrize("kills", [("segment-done 0",), ("segment 1 batch 1", "segment-done 1")])
def test_resumed_run_with_keyframes_is_the_plain_run(tmp_path, shapes, random_model_file, kills):
    """Segments of 16 frames; the keyframe at 30 is in the second segment and reaches back into
    the first (tail frames). Killed runs resumed give the plain run's film bit for bit, and a film
    of one segment differs from it by at most a code value (the network's warm-up)."""
    folder, truth, film, auto = shapes
    keys = keyframes(tmp_path / "keys", truth, [0, 30])
    args = lambda out, *extra: [
        "colorize",
        film,
        "-o",
        out,
        "--model",
        random_model_file,
        "--device",
        "cpu",
        "--flow",
        "dis",
        "--codec",
        "ffv1",
        "--batch-size",
        "4",
        "--segment-frames",
        "16",
        "--keyframes",
        keys,
        "--json",
        *extra,
    ]
    plain = run_cli(args(tmp_path / "plain.mkv"))
    assert plain.returncode == 0, plain.stderr
    assert json.loads(plain.stdout)["segments"] == 3
    for point in kills:
        killed = run_cli(args(tmp_path / "resumed.mkv", "--resume"), env={"REMASTER_KILL_AT": point})
        assert killed.returncode == -9, f"expected SIGKILL at {point!r}: {killed.returncode} {killed.stderr[-300:]}"
    assert run_cli(args(tmp_path / "resumed.mkv", "--resume")).returncode == 0
    a, b = decode_all(tmp_path / "plain.mkv").planes, decode_all(tmp_path / "resumed.mkv").planes
    assert len(a) == len(b) == 41
    assert all(np.array_equal(x[k], y[k]) for x, y in zip(a, b) for k in range(3))
    whole = decode_all(colorize_one(film, tmp_path / "one.mkv", random_model_file, keys)).planes
    worst = max(int(np.abs(x[k].astype(int) - y[k].astype(int)).max()) for x, y in zip(a, whole) for k in (1, 2))
    assert worst <= 1, f"segments differ from the uncut film by up to {worst} code values"


def test_the_carrys_finer_flow_is_the_same_resumed_and_on_two_workers(tmp_path, shapes, random_model_file):
    """At a working size under the film's (48 px short side for a 96x160 film), a keyframe's carry
    estimates its flow on the decoded luma (`carry_flow_short_side`), in the backward pass and in
    the frame loop alike: a run killed and resumed and a run on two workers give the plain run's
    film bit for bit, and the finer flow is really used (flow at the working size gives another)."""
    folder, truth, film, auto = shapes
    keys = keyframes(tmp_path / "keys", truth, [0, 30])

    def pipeline(name, carry_side):
        path = tmp_path / f"{name}.toml"
        path.write_text(f"[colorize]\nworking_short_side = 48\n[temporal]\ncarry_flow_short_side = {carry_side}\n")
        return path

    fine, coarse = pipeline("fine", 360), pipeline("coarse", 16)
    args = lambda out, toml, *extra: [
        "colorize", film, "-o", out, "--model", random_model_file, "--device", "cpu", "--flow", "dis",
        "--codec", "ffv1", "--batch-size", "4", "--segment-frames", "16", "--keyframes", keys,
        "--pipeline", toml, *extra,
    ]  # fmt: skip
    for out, toml, extra, kill in (
        ("plain.mkv", fine, (), None),
        ("resumed.mkv", fine, ("--resume",), "segment 1 batch 1"),
        ("workers.mkv", fine, ("--workers", "2"), None),
        ("coarse.mkv", coarse, (), None),
    ):
        if kill is not None:
            killed = run_cli(args(tmp_path / out, toml, *extra), env={"REMASTER_KILL_AT": kill})
            assert killed.returncode == -9, killed.stderr[-300:]
        result = run_cli(args(tmp_path / out, toml, *extra))
        assert result.returncode == 0, result.stderr
    plain = decode_all(tmp_path / "plain.mkv").planes
    assert len(plain) == 41
    for other in ("resumed.mkv", "workers.mkv"):
        planes = decode_all(tmp_path / other).planes
        assert all(np.array_equal(x[k], y[k]) for x, y in zip(plain, planes) for k in range(3)), other
    coarse_planes = decode_all(tmp_path / "coarse.mkv").planes
    assert any(not np.array_equal(x[k], y[k]) for x, y in zip(plain, coarse_planes) for k in (1, 2))


def colorize_one(film, out, model, keys):
    colorize(film, out, model, "--keyframes", keys)
    return out


def test_frames_exports_numbered_pictures_to_color(tmp_path, shapes):
    """`remaster frames`: the frames a colorist colors, named as `--keyframes` reads them, with
    the film's own luma; a frame past the end is one line and nothing is written."""
    folder, truth, film, auto = shapes
    result = run_cli(["frames", film, "--at", "40,0,7", "-o", tmp_path / "keys"])
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "keys").iterdir()) == ["000000.png", "000007.png", "000040.png"]
    with av.open(str(film)) as container:
        lumas = [f.to_ndarray() for f in container.decode(video=0)]  # gray: the Y codes themselves
    for t in (0, 7, 40):
        image = cv2.imread(str(tmp_path / "keys" / f"{t:06d}.png"))
        assert (
            image.shape == (H, W, 3)
            and np.array_equal(image[..., 0], lumas[t])
            and np.array_equal(image[..., 1], lumas[t])
        )
    refused = run_cli(["frames", film, "--at", "3,41", "-o", tmp_path / "more"])
    assert refused.returncode == 1 and "no frame 41: the film has 41 frames (0..40); nothing written" in refused.stderr
    assert not (tmp_path / "more").exists() and refused.stderr.count("\n") == 1


def test_keyframes_steering_the_hint_model(tmp_path, shapes, random_model_file):
    """`--keyframe-fill hints`: the carry becomes the input of a hint-conditioned network (the
    shipped remaster-hints, since the film's model takes none). The keyframe's frame keeps its
    colors; 40 frames on, the disc keeps its color and the whole frame is closer to the truth
    than with the unsteered network filling in (`--keyframe-fill network`).

    Not asserted, because it does not hold: the dark red square, once the disc has passed over
    it and the carry no longer trusts it, drifts to the hint network's own idea of a dark square
    (chroma error 66 codes at frame 40, against 27 with the network fill); the fill by tone
    (`local`, the default) keeps it (the test above)."""
    folder, truth, film, auto = shapes
    keys = keyframes(tmp_path / "keys", truth, [0])
    colorize(film, tmp_path / "hints.mkv", random_model_file, "--keyframes", keys, "--keyframe-fill", "hints")
    colorize(film, tmp_path / "network.mkv", random_model_file, "--keyframes", keys, "--keyframe-fill", "network")
    steered, unsteered = chroma_errors(tmp_path / "hints.mkv", truth), chroma_errors(tmp_path / "network.mkv", truth)
    assert steered[0] < 2.5, steered[0]
    assert steered[40] < 0.85 * unsteered[40], (steered[40], unsteered[40])
    disc = chroma_errors(tmp_path / "hints.mkv", truth, shape_mask(truth, BLUE))
    assert (
        disc[40] < 15 and disc[40] < 0.5 * chroma_errors(tmp_path / "network.mkv", truth, shape_mask(truth, BLUE))[40]
    ), disc[40]
    lumas = zip(decode_all(tmp_path / "hints.mkv").planes, decode_all(tmp_path / "network.mkv").planes)
    assert all(np.array_equal(a[0], b[0]) for a, b in lumas)  # luma untouched either way


def test_the_network_runs_only_where_its_colors_show(tmp_path, shapes, random_model_file, monkeypatch):
    """With keyframes the network's colors weigh nothing on the frames a keyframe governs fully
    (its carry or its fill by tone, `carry.needs_colors`), so the network is not run there
    (on_demand.ChromaOnDemand): with a keyframe at frame 0 reaching 12 frames, the first batch runs no
    network, the frames past the reach do, and the film is the same, bit for bit, as one made with
    the network run on every frame."""
    from remaster.net.colorizer import Colorizer
    from remaster.run.config import make_config
    from remaster.run.pipeline import colorize_video
    from remaster.stages.temporal import TemporalStage

    folder, truth, film, _ = shapes
    keys = keyframes(tmp_path / "keys", truth, [0])
    colorizer = Colorizer.load(random_model_file, device="cpu")
    made = []
    real_chroma = colorizer.chroma
    colorizer.chroma = lambda luma, **kw: made.append(len(luma)) or real_chroma(luma, **kw)
    config = make_config(flow="dis", codec="ffv1", keyframe_reach=12, batch_size=8)
    colorize_video(film, tmp_path / "lazy.mkv", config, progress=False, colorizer=colorizer, keyframes=keys)
    lazy_frames, made[:] = sum(made), []
    monkeypatch.setattr(TemporalStage, "takes_chroma_on_demand", lambda self: False)
    colorize_video(film, tmp_path / "eager.mkv", config, progress=False, colorizer=colorizer, keyframes=keys)
    assert sum(made) == len(truth) and lazy_frames == len(truth) - 8, (lazy_frames, made)
    lazy, eager = decode_all(tmp_path / "lazy.mkv").planes, decode_all(tmp_path / "eager.mkv").planes
    assert len(lazy) == len(truth) and all(all(np.array_equal(a, b) for a, b in zip(p, q)) for p, q in zip(lazy, eager))


def test_a_palette_reference_colors_its_shot_by_tone(tmp_path, shapes, random_model_file):
    """A picture of the place that is no frame (frame 40's colors, cropped to 4:5, another tone
    curve), named `palette-...`: the shot takes its colors by tone, nearer the truth than the gray
    film and the network's colors without it (tones that several colors share, the sky and the
    square, are shrunk toward gray: measured 25.5 codes against 32.6 gray and 39.1 automatic)."""
    folder, truth, film, auto = shapes
    keys = tmp_path / "keys"
    keys.mkdir()
    photo = (((truth[40][:, 10 : 10 + round(H * 4 / 5)] / 255.0) ** 1.3) * 255 + 0.5).astype(np.uint8)
    cv2.imwrite(str(keys / "palette-the-scene.png"), cv2.cvtColor(photo, cv2.COLOR_RGB2BGR))
    report = colorize(film, tmp_path / "palette.mkv", random_model_file, "--keyframes", keys)
    assert [k["palette"] for k in report["keyframes"]] == [True]
    errors = chroma_errors(tmp_path / "palette.mkv", truth)
    gray = [float(np.abs(true_chroma(truth[t]) - 128).mean()) for t in range(len(truth))]
    assert np.mean(errors) < 0.85 * np.mean(gray) and np.mean(errors) < 0.7 * np.mean(auto), (
        np.mean(errors),
        np.mean(gray),
        np.mean(auto),
    )


def hand_frame(index: int) -> np.ndarray:
    """A still, lightly textured warm wall with three small blue caps, and from frame 12 a red
    sleeve of about the caps' luma coming in from the left edge (5 px a frame), as a hand comes in
    front of blue bottles in the data pack's bottle-detection clip."""
    rng = np.random.default_rng(0)  # the wall's texture stays put: the flow has something to hold
    image = np.clip(np.array(WALL) + rng.integers(-8, 9, (H, W, 1)), 0, 255).astype(np.int16)  # (H, W, 3)
    for left in (100, 120, 140):
        image[40:50, left : left + 8] = CAP
    reach = 5 * (index - 12)
    if reach > 0:
        texture = np.random.default_rng(1).integers(-10, 11, (30, 60, 1))  # moves with the sleeve
        sleeve = np.clip(np.array(SLEEVE) + texture[:, -reach:], 0, 255)
        image[30:60, : min(reach, 60)] = sleeve[:, :60]
    return np.clip(image, 0, 255).astype(np.uint8)


WALL, CAP, SLEEVE = (200, 192, 178), (30, 60, 220), (150, 40, 45)


def test_something_coming_in_takes_no_bold_color_from_a_like_toned_object(tmp_path, random_model_file):
    """A sleeve of the caps' gray comes in where the keyframe saw only the wall: the keyframe's
    colors by tone say blue (the caps'), the carry drags in the wall's beige. Where the two
    guesses differ, the fill goes toward gray instead of painting the sleeve the caps' blue; the
    caps themselves stay blue."""
    truth = [hand_frame(i) for i in range(30)]
    film = write_gray(tmp_path / "hand.mkv", truth)
    colorize(film, tmp_path / "out.mkv", random_model_file, "--keyframes", keyframes(tmp_path / "keys", truth, [0]))
    planes = decode_all(tmp_path / "out.mkv").planes
    for t in (22, 26, 29):
        cb = planes[t][1].astype(np.float64) - 128  # (H/2, W/2): blue-difference, at 4:2:0
        sleeve = cb[17:28, 2 : min(5 * (t - 12), 60) // 2 - 2]  # inside the sleeve, its edges left out
        caps = cb[21:24, [51, 61, 71]]
        assert caps.mean() > 60, (t, caps.mean())  # the caps' own blue is +85 codes of Cb
        # The sleeve's truth is -16; the caps' blue by tone, muted, put it at +55 (before the fill
        # took what the guesses agree on); toward gray it is +14.
        assert sleeve.mean() < caps.mean() / 3, (t, sleeve.mean(), caps.mean())


def walker_frame(index: int) -> np.ndarray:
    """A still camera on a wall of red, green and blue blocks of one gray (luma about 100, a fixed
    texture of 4 px cells on them), and a dark figure walking past from the left edge, 5 px a frame: after it
    has passed, nothing but the keyframe tells the blocks' colors apart."""
    rng = np.random.default_rng(0)
    colors = np.array([(200, 60, 60), (40, 140, 80), (60, 90, 230)])  # luma 102, 103, 97
    blocks = colors[(np.arange(W)[None, :] // 16 + np.arange(H)[:, None] // 16) % 3]  # (H, W, 3)
    texture = np.kron(rng.integers(-40, 41, (H // 4, W // 4)), np.ones((4, 4), int))  # 4 px cells
    image = blocks + texture[..., None]
    left = 5 * index - 30
    image[10:90, max(left, 0) : max(left + 30, 0)] = 40  # the figure, its own texture
    return np.clip(image, 0, 255).astype(np.uint8)


def test_a_still_cameras_background_comes_back_in_its_keyframe_colors(tmp_path, random_model_file):
    """Where the walking figure has passed, the carry lost the blocks behind it (trust never rises
    again), and their colors by tone cannot tell red, green and blue of one gray apart. The frame
    shows the keyframe's own picture at the same place again, so those pixels are taken back
    from it (carry.reacquired)."""
    truth = [walker_frame(i) for i in range(36)]
    film = write_gray(tmp_path / "walker.mkv", truth)
    colorize(film, tmp_path / "out.mkv", random_model_file, "--keyframes", keyframes(tmp_path / "keys", truth, [0]))
    rows, columns = np.mgrid[0 : H // 2, 0 : W // 2]
    behind = lambda t: (columns < 50) & (rows >= 6) & (rows < 44)  # the figure has left x < 100 by frame 26
    errors = chroma_errors(tmp_path / "out.mkv", truth, behind)
    assert max(errors[26:]) < 8, errors[26:]  # 41 codes without taking them back
