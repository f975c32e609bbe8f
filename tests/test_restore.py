"""Restoration (issue 12): deflicker, dust and denoise, each on its own synthetic damage; real
exposure changes (a fade, a light switched on, a cut) kept; the luma untouched without --restore;
a segmented run restoring exactly as a one-pass run; memory bounded by the windows.

Frames are small (96x128) moving textures, damaged the way benchmarks/damage.py damages the
data pack's clips; flow is real (OpenCV DIS) and the shot detector is the chain's.
"""

from __future__ import annotations

import json
from fractions import Fraction

import numpy as np
import pytest
import torch
from conftest import decode_all, make_clip
from test_corpus import run_cli

from remaster.errors import ConfigError
from remaster.media.formats import FrameBatch, SourceFormat
from remaster.stages.flow import make_flow_provider
from remaster.stages.restoration.stage import RestoreConfig, Restorer
from remaster.stages.shots import ShotDetector

H, W = 96, 128


def scene(frames: int, seed: int = 0, speed: int = 1) -> np.ndarray:
    """`(N, H, W)` float luma in [0, 1]: a smooth random texture panning `speed` px a frame,
    with a dark bar moving the other way (a moving edge)."""
    rng = np.random.default_rng(seed)
    big = rng.random((H // 8 + 2, (W + frames * speed) // 8 + 3))
    texture = np.kron(big, np.ones((8, 8)))  # blocks...
    kernel = np.ones(5) / 5
    for axis in (0, 1):  # ...softened, so flow has gradients everywhere
        texture = np.apply_along_axis(lambda v: np.convolve(v, kernel, mode="same"), axis, texture)
    out = np.empty((frames, H, W))
    for t in range(frames):
        picture = 0.2 + 0.6 * texture[:H, t * speed : t * speed + W]
        left = (W - 20 - 2 * t) % (W - 12)
        picture[20:70, left : left + 6] = 0.1  # the bar
        out[t] = picture
    return out


SOURCE = SourceFormat("gray", W, H, 8, True, "bt601", (0, 0), False)


def to_codes(luma: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(luma * 255), 0, 255).astype(np.uint8)


def restore(codes: np.ndarray, stages: str, batch: int = 8, **options) -> tuple[np.ndarray, Restorer]:
    """Run the Restorer over `codes (N, H, W)` uint8 in batches; `(restored codes, restorer)`."""
    restorer = Restorer(
        RestoreConfig(stages=stages, **options),
        shots=ShotDetector(),
        shot_size=lambda h, w: (h, w),
        flow=make_flow_provider("dis"),
        device=torch.device("cpu"),
    )

    def batches():
        for i in range(0, len(codes), batch):
            y = torch.from_numpy(np.ascontiguousarray(codes[i : i + batch]))[:, None]
            yield FrameBatch(y, tuple(range(i, i + len(y))), Fraction(1, 25), SOURCE, (H // 2, W // 2), index=i)

    out = [b.y[:, 0].numpy() for b, *_ in restorer.run(batches())]
    return np.concatenate(out), restorer


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(255.0**2 / np.mean((a.astype(float) - b.astype(float)) ** 2)))


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_deflicker_removes_gain_and_offset_jitter():
    clean = scene(40)
    rng = np.random.default_rng(1)
    gain, offset = 1 + rng.uniform(-0.18, 0.18, 40), rng.uniform(-0.03, 0.03, 40)
    damaged = to_codes(clean * gain[:, None, None] + offset[:, None, None])
    restored, _ = restore(damaged, "deflicker")
    truth = to_codes(clean)
    assert psnr(restored, truth) > psnr(damaged, truth) + 6, (psnr(damaged, truth), psnr(restored, truth))
    # the frame-to-frame jump of the mean brightness is what a viewer sees as flicker
    jumps = lambda v: np.abs(np.diff(v.reshape(len(v), -1).mean(1))).mean()
    assert jumps(restored) < 0.3 * jumps(damaged)


@pytest.mark.parametrize("change", ["fade-out", "light-on", "cut"])
def test_deflicker_keeps_real_brightness_changes(change):
    """A fade to near black, a light switched on (a step within the shot) and a cut to a
    brighter shot are exposure the film really has: the restored frames keep them, frame by frame."""
    frames = 40
    clean = scene(frames)
    level = np.ones(frames)
    if change == "fade-out":
        level[15:35] = np.linspace(1, 0.1, 20)
        level[35:] = 0.1
        clean = clean * level[:, None, None]
    elif change == "light-on":
        level[20:] = 1.6
        clean = np.clip(clean * level[:, None, None], 0, 1)
    else:
        other = 0.5 + 0.45 * scene(frames, seed=7)[:, ::-1]  # another place, brighter and flatter
        clean[20:] = other[20:]
    rng = np.random.default_rng(2)
    flicker = 1 + rng.uniform(-0.1, 0.1, frames)
    damaged = to_codes(clean * flicker[:, None, None])
    restored, restorer = restore(damaged, "deflicker")
    means = lambda v: v.reshape(len(v), -1).mean(1).astype(float)
    truth, got = means(to_codes(clean)), means(restored)
    # every frame lands near its true brightness, through the change, not on a smoothed line
    assert np.abs(got - truth).max() < 0.06 * 255, np.round(got - truth, 1)
    if change == "light-on":
        assert got[20:].mean() / got[:20].mean() > 1.45  # the step is there
        # ...and stays sharp: the last dark frame is not lifted toward the light (next to a step the
        # window's median leans a little its way, by up to the flicker itself), the first bright one is bright
        assert got[19] < 0.8 * truth[20] and abs(got[20] - truth[20]) < 0.06 * 255
    if change == "fade-out":
        assert got[36:].mean() < 0.2 * got[:14].mean()
    if change == "cut":
        assert restorer.cuts == [20]  # the window reset there
        assert got[20:].mean() - got[:20].mean() > 0.8 * (truth[20:].mean() - truth[:20].mean())


def test_dust_removes_one_frame_specks_and_leaves_motion_alone():
    clean = to_codes(scene(16))
    damaged = clean.copy()
    specks = np.zeros(damaged.shape, bool)
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:H, 0:W]
    for t in range(1, 15):
        for _ in range(4):
            cy, cx, r = rng.uniform(8, H - 8), rng.uniform(8, W - 8), rng.uniform(1.5, 3)
            disc = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
            damaged[t][disc] = 250 if rng.random() < 0.5 else 5
            specks[t] |= disc
    restored, restorer = restore(damaged, "dust")
    inner = slice(1, 15)  # the first and last frames have one neighbour: left as they are
    err = lambda v: np.abs(v[inner].astype(int) - clean[inner].astype(int))
    assert err(restored)[specks[inner]].mean() < 0.2 * err(damaged)[specks[inner]].mean()
    # away from the specks (and their rim) nearly nothing is touched: not the texture, not the moving bar
    rim = np.stack([np.convolve(s.ravel(), np.ones(1), "same").reshape(s.shape) for s in specks]).astype(bool)
    for _ in range(2):
        rim = rim | np.roll(rim, 1, 1) | np.roll(rim, -1, 1) | np.roll(rim, 1, 2) | np.roll(rim, -1, 2)
    touched = (restored != damaged) & ~rim
    assert touched[inner].mean() < 0.002, f"{touched[inner].mean():.4f} of the pixels away from specks changed"
    assert restorer.counts["speck_pixels"] > 0


def test_denoise_softens_grain_along_the_motion():
    clean = scene(20)
    rng = np.random.default_rng(4)
    damaged = to_codes(clean + rng.normal(0, 5 / 255, clean.shape))
    truth = to_codes(clean)
    full, _ = restore(damaged, "denoise")
    half, _ = restore(damaged, "denoise", denoise_strength=0.5)
    before, after, softer = psnr(damaged, truth), psnr(full, truth), psnr(half, truth)
    assert after > before + 3, (before, after)
    assert before < softer < after  # strength keeps part of the grain
    # grain softened, not erased: the output is not a smooth picture
    assert np.std(full.astype(float) - truth) > 1.0


def test_all_stages_together_and_memory_bounded():
    """Flicker, dust and grain together; the restorer holds a window's worth of frames, never the film."""
    frames = 60
    clean = scene(frames)
    rng = np.random.default_rng(5)
    gain = 1 + rng.uniform(-0.18, 0.18, frames)
    damaged = clean * gain[:, None, None] + rng.normal(0, 5 / 255, clean.shape)
    damaged[5:, 40:44, 60:64] = np.where(np.arange(frames - 5)[:, None, None] % 7 == 0, 1.0, damaged[5:, 40:44, 60:64])
    damaged = to_codes(damaged)
    restorer_sizes = []
    original = Restorer._trim

    def spy(self):
        original(self)
        restorer_sizes.append(max(len(self.raw), len(self.toned), len(self.clean), len(self.done), len(self.stats)))

    Restorer._trim = spy
    try:
        restored, restorer = restore(damaged, "all", batch=4)
    finally:
        Restorer._trim = original
    assert restored.shape == damaged.shape
    truth = to_codes(clean)
    assert psnr(restored, truth) > psnr(damaged, truth) + 4
    reach = restorer.config.reach
    assert max(restorer_sizes) <= 2 * reach + 2 * 4 + 2, f"held up to {max(restorer_sizes)} frames"


def test_presets_restore_reel_restores_and_film_reel_does_not():
    from remaster.run.config import make_config

    assert make_config("restore-reel").restore.names == ("deflicker", "dust", "denoise")
    assert not make_config("film-reel").restore.enabled
    assert make_config("restore-reel", restore={"stages": "deflicker"}).restore.names == ("deflicker",)


def test_config_names_and_errors():
    assert RestoreConfig(stages="all").names == ("deflicker", "dust", "denoise")
    assert RestoreConfig(stages="denoise, deflicker").names == ("deflicker", "denoise")
    assert not RestoreConfig().enabled
    with pytest.raises(
        ConfigError, match="restore stage 'despeckle' unknown: expected deflicker, dust, denoise or all"
    ):
        RestoreConfig(stages="despeckle")
    with pytest.raises(ConfigError, match="denoise_strength must be in"):
        RestoreConfig(stages="denoise", denoise_strength=2.0)


# -- through the CLI: the written luma --------------------------------------------------------


@pytest.fixture(scope="module")
def reel(tmp_path_factory):
    """40 frames with keyframes at most 8 apart: with 10-frame segments, three segments."""
    return make_clip(
        tmp_path_factory.mktemp("reel") / "reel.mp4",
        frames=40,
        audio_tracks=1,
        options={"preset": "fast", "crf": "20", "g": "8"},
    )


def _run(reel, out, model, *extra):
    result = run_cli(
        [
            "colorize",
            reel.path,
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
            "--batch-size",
            "4",
            "--cpu-threads",
            "1",
            "--json",
            *extra,
        ]
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout), decode_all(out)


def test_luma_bit_exact_without_restore_and_restored_with_it(tmp_path, reel, random_model_file):
    source = decode_all(reel.path)
    plain_report, plain = _run(reel, tmp_path / "plain.mkv", random_model_file)
    assert plain_report["luma_changed_by"] == [] and plain_report["restore"] == {}
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(plain.planes, source.planes))
    report, restored = _run(reel, tmp_path / "restored.mkv", random_model_file, "--restore", "all")
    assert report["luma_changed_by"] == ["deflicker", "dust", "denoise"]
    assert report["restore"]["frames"] == 40 and "restore" in report["stage_seconds"]
    assert len(restored.planes) == 40 and restored.times == plain.times and restored.packets == plain.packets
    assert any(not np.array_equal(a[0], b[0]) for a, b in zip(restored.planes, source.planes))


def test_segmented_restore_equals_one_pass(tmp_path, reel, random_model_file):
    """Each segment warms up on the frames before it and looks ahead at frames after it that it
    does not write: the restored luma of a film cut in three is the one-pass film's, exactly."""
    one_report, one = _run(
        reel, tmp_path / "one.mkv", random_model_file, "--restore", "all", "--segment-frames", "1000"
    )
    cut_report, cut = _run(reel, tmp_path / "cut.mkv", random_model_file, "--restore", "all", "--segment-frames", "10")
    assert one_report["segments"] == 1 and cut_report["segments"] == 3
    assert one.times == cut.times and len(one.planes) == len(cut.planes) == 40
    for i, (a, b) in enumerate(zip(one.planes, cut.planes)):
        assert np.array_equal(a[0], b[0]), f"frame {i}: restored luma differs between segmented and one-pass runs"
    worst = max(
        int(np.abs(a[k].astype(int) - b[k].astype(int)).max()) for a, b in zip(one.planes, cut.planes) for k in (1, 2)
    )
    assert worst <= 1, f"chroma differs by up to {worst} code values"
