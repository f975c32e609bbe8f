"""Shot detection on synthetic films: hard cuts found, old film's troubles not taken for cuts, the
same flags however the film is cut into batches."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from remaster.errors import ConfigError
from remaster.stages.chain import Work
from remaster.stages.shots import ShotConfig, ShotDetector, detect_cuts, frame_features

CUDA = pytest.param(
    "cuda", marks=[pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")]
)
H, W = 96, 128


def scene(
    seed: int, frames: int, step: int = 2, mean: float = 0.45, spread: float = 0.15, scale: int = 12
) -> torch.Tensor:
    """A textured scene (blobs of about `scale` px) panning `step` px per frame, `(T, 1, H, W)`,
    with the given mean and std."""
    g = torch.Generator().manual_seed(seed)
    s = abs(step)
    coarse = torch.rand(1, 1, H // scale + 2, (W + s * frames) // scale + 2, generator=g)
    big = F.interpolate(coarse, size=(H, W + s * frames), mode="bicubic", align_corners=False)
    big = (big - big.mean()) / big.std() * spread + mean
    shot = torch.cat([big[..., s * i : s * i + W] for i in range(frames)]).clamp(0, 1)  # (T, 1, H, W)
    return shot if step >= 0 else shot.flip(0)


def film(*shots: torch.Tensor) -> tuple[torch.Tensor, list[int]]:
    starts, total = [], 0
    for shot in shots[:-1]:
        total += len(shot)
        starts.append(total)
    return torch.cat(shots), starts


def cuts_of(luma: torch.Tensor, batch: int = 8, device="cpu", config: ShotConfig | None = None) -> list[int]:
    detector = ShotDetector(config, device=device)
    flags = torch.cat([detector(luma[i : i + batch]) for i in range(0, len(luma), batch)])
    assert flags.dtype == torch.bool and flags.shape == (len(luma),)
    return torch.nonzero(flags.cpu()).flatten().tolist()


def gains(frames: int, amount: float, seed: int = 5) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return 1 + amount * (2 * torch.rand(frames, 1, 1, 1, generator=g) - 1)  # (T, 1, 1, 1)


def grain(luma: torch.Tensor, sigma: float = 5 / 255, seed: int = 7) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (luma + sigma * torch.randn(luma.shape, generator=g)).clamp(0, 1)


def test_hard_cuts_are_found_even_between_shots_of_the_same_brightness():
    luma, starts = film(scene(0, 20), scene(1, 17), scene(2, 25), scene(0, 12, step=-3))
    for i in range(len(luma) - 1):  # every shot has the same mean and spread: only the picture differs
        assert abs(luma[i].mean() - luma[i + 1].mean()) < 0.02
    assert cuts_of(luma) == starts


def test_old_film_troubles_are_not_cuts_but_the_cut_under_them_is():
    clean = torch.cat([scene(0, 30), scene(1, 30)])
    flicker = clean * gains(len(clean), 0.18)  # ±18% exposure, frame to frame
    damaged = grain(flicker)
    # one-frame dust: a black and a white speck on every third frame
    damaged[::3, :, 10:16, 20:26] = 0.0
    damaged[1::3, :, 60:66, 90:96] = 1.0
    assert cuts_of(flicker.clamp(0, 1)) == [30]
    assert cuts_of(damaged) == [30]


def test_a_fade_to_black_and_back_is_no_cut():
    shot = scene(3, 50, step=1)  # the reference is the last frame before the black: slow motion
    ramp = torch.cat(
        [torch.linspace(1, 0, 13)[1:], torch.zeros(6), torch.linspace(0, 1, 13)[1:], torch.ones(20)]
    )  # (50,)
    faded = shot * ramp[:, None, None, None]
    assert cuts_of(faded) == []
    assert cuts_of(grain(faded)) == []  # grain that does not fade with the picture, as a scanner adds it


def test_a_fade_into_another_shot_is_a_cut_where_the_new_picture_appears():
    out = scene(3, 20) * torch.linspace(1, 0, 20)[:, None, None, None]
    black = torch.zeros(5, 1, H, W)
    # Across a fade the tones must differ too (the layout alone moves on during the black): the new
    # shot here is darker with skewed tones; the old and new textures alone have the same histogram.
    into = scene(4, 20, mean=0.0, spread=1.0).sigmoid() ** 3
    into = into * torch.linspace(0, 1, 20)[:, None, None, None]
    luma = torch.cat([out, black, into])
    found = cuts_of(luma)
    assert len(found) == 1 and 25 <= found[0] <= 32  # the first frame of the new shot bright enough to judge


def test_a_light_switched_on_is_no_cut():
    shot = scene(5, 40, mean=0.4)
    lit = shot.clone()
    lit[15:] = (lit[15:] * 1.4).clamp(0, 1)  # +40% held for the rest of the shot, highlights clipped
    assert cuts_of(lit) == []
    assert cuts_of(grain(lit * gains(40, 0.18)).clamp(0, 1)) == []


@pytest.mark.parametrize("batch", [1, 3, 8])
def test_batches_do_not_change_the_flags(batch):
    middle = scene(1, 23, step=1)
    clean = torch.cat(
        [scene(0, 13), middle[:11], torch.zeros(3, 1, H, W), middle[14:], scene(2, 14)]
    )  # a blackout within a shot
    luma = grain(clean * gains(len(clean), 0.18)).clamp(0, 1)
    whole = cuts_of(luma, batch=len(luma))
    assert cuts_of(luma, batch=batch) == whole
    assert whole == [13, 36]  # the black frames and the same shot after them start nothing


def test_a_segment_after_its_warm_up_has_the_whole_films_flags():
    """Segments start fresh and see `warmup_frames` frames before their first (stages/chain.py): their
    flags must be the whole film's, even with a fade to black across the segment's start."""
    middle = scene(1, 40, step=1)
    ramp = torch.cat(
        [torch.linspace(1, 0, 9)[1:], torch.zeros(6), torch.linspace(0, 1, 9)[1:], torch.ones(18)]
    )  # (40,)
    luma = torch.cat(
        [scene(0, 20), middle * ramp[:, None, None, None], scene(2, 20), torch.zeros(30, 1, H, W), scene(2, 10)]
    )
    whole = ShotDetector()(luma)
    assert torch.nonzero(whole).flatten().tolist() == [20, 60, 110]  # no cut in the fade; after 30 black frames, a cut
    warm = ShotDetector().warmup_frames
    for start in (26, 30, 33, 62, 95, 105, 110):
        detector = ShotDetector()
        flags = detector(luma[max(0, start - warm) :])
        assert torch.equal(flags[start - max(0, start - warm) :], whole[start:]), start


def test_state_give_and_take_continues_exactly():
    luma, starts = film(scene(0, 10), scene(1, 10), scene(2, 10))
    first = ShotDetector()
    head = first(luma[:10])
    state = first.state()
    assert set(state) == {"layout", "tones", "since", "has_ref"} and all(v.device.type == "cpu" for v in state.values())
    second = ShotDetector()
    second.load_state(state)
    tail = second(luma[10:])
    assert torch.nonzero(torch.cat([head, tail])).flatten().tolist() == starts
    # Without the state, the first frame of a batch has nothing to be cut from.
    fresh = ShotDetector()
    assert not fresh(luma[10:])[0]
    fresh.load_state(state)
    fresh.reset()
    assert fresh.state() == {} and not fresh(luma[10:])[0]
    with pytest.raises(ValueError, match="shots state expects keys has_ref, layout, since, tones, got luma"):
        second.load_state({"luma": torch.zeros(1)})


def test_flow_trust_is_an_optional_second_opinion():
    luma = scene(0, 6)
    trusted = torch.tensor([0.0, 0.9, 0.01, 0.9, 0.9, 0.9])  # frame 0 has no predecessor: ignored
    cut, _, _ = detect_cuts(luma, None, ShotConfig(), trusted)
    assert torch.nonzero(cut).flatten().tolist() == [2]


def test_process_sets_the_cuts_of_a_work_batch():
    luma, starts = film(scene(0, 6), scene(1, 6))
    work = Work(batch=None, luma=luma, chroma=torch.zeros(len(luma), 2, H // 2, W // 2))
    shots = ShotDetector()
    shots.process(work)
    assert torch.nonzero(work.cuts).flatten().tolist() == starts and shots.cuts == 1
    assert shots.name == "shots" and shots.warmup_frames == ShotConfig().max_gap + 1


def test_features_and_errors():
    layout, tones, contrast = frame_features(scene(0, 2))
    assert layout.shape == (2, 256) and tones.shape == (2, 32) and contrast.shape == (2,)
    assert torch.allclose(tones.sum(1), torch.ones(2))
    with pytest.raises(ValueError, match=r"shots expect luma \(N, 1, h, w\), got \(2, 3, 8, 8\)"):
        frame_features(torch.zeros(2, 3, 8, 8))
    with pytest.raises(ConfigError, match="layout_threshold"):
        ShotConfig(layout_threshold=0)


@pytest.mark.parametrize("device", ["cpu", CUDA])
def test_same_cuts_on_each_device(device):
    luma, starts = film(scene(0, 12), scene(1, 12), scene(2, 12))
    assert cuts_of(luma, batch=5, device=device) == starts
