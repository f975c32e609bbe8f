"""References as archives hold them (issue 20, items 1-3): prints registered to their frames.

A gray film (FFV1, written with PyAV) that pans over a colored texture, so every frame has
structure to register on; references written with OpenCV as a colorist would get them: a print
cropped unevenly, scaled, given another tone curve and saved as JPEG, a frame grab shifted by a
few pixels, a picture of another film. Registration is checked against the geometry the test
made, at the film's size.
"""

from __future__ import annotations

import json

import av
import cv2
import numpy as np
import pytest
import torch
from test_corpus import run_cli

from remaster.color import rgb_to_chroma, rgb_to_luma
from remaster.errors import InputError
from remaster.media.reader import VideoReader
from remaster.run.keyframes import MATCH_THRESHOLD, read_keyframes
from remaster.stages.keyframes.register import carry_chroma

W, H, FRAMES = 160, 120, 24
PAN = (3, 2)  # px per frame, x and y


def texture(seed: int) -> np.ndarray:
    """RGB float32 in [0, 1], large enough to pan over: colored blobs of several sizes."""
    rng = np.random.default_rng(seed)
    size = (H + PAN[1] * FRAMES + 16, W + PAN[0] * FRAMES + 16)
    layers = [cv2.GaussianBlur(rng.standard_normal((*size, 3)).astype(np.float32), (0, 0), s) * s for s in (2, 5)]
    image = sum(layers)
    image = (image - image.min()) / (image.max() - image.min())
    return np.clip(0.5 + 1.8 * (image - image.mean()), 0, 1)


def view(tex: np.ndarray, t: int, dx: int = 0, dy: int = 0) -> np.ndarray:
    """Frame `t` of the pan, as uint8 RGB (offset by (dx, dy) px on the texture)."""
    x, y = 8 + PAN[0] * t + dx, 8 + PAN[1] * t + dy
    return (tex[y : y + H, x : x + W] * 255 + 0.5).astype(np.uint8)


def write_gray(path, frames_rgb):
    with av.open(str(path), "w") as out:
        stream = out.add_stream("ffv1", rate=25)
        stream.height, stream.width, stream.pix_fmt = H, W, "gray"
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


@pytest.fixture(scope="module")
def film(tmp_path_factory):
    tex = texture(1)
    return write_gray(tmp_path_factory.mktemp("refs") / "pan.mkv", [view(tex, t) for t in range(FRAMES)]), tex


def film_lumas(path):
    def batches():
        with VideoReader(path) as reader:
            for batch in reader.batches(8, (1, 1)):
                yield batch.index, batch.luma()

    return batches


def read(folder, path):
    return read_keyframes(folder, width=W, height=H, frames=FRAMES, matrix="bt601", film_lumas=film_lumas(path))


def write(path, rgb, quality=None):
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if quality else []
    assert cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), params)
    return path


def a_print(rgb: np.ndarray, crop=(5, 2, 1, 6), scale=0.8, gamma=0.7) -> tuple[np.ndarray, np.ndarray]:
    """A print of `rgb`: cropped (left, top, right, bottom px), scaled, another tone curve.
    Returns it and the true map frame px -> print px (3x3, pixel centres)."""
    left, top, right, bottom = crop
    cropped = rgb[top : H - bottom, left : W - right]
    ch, cw = cropped.shape[:2]
    pw, ph = round(cw * scale), round(ch * scale)
    toned = (cv2.resize(cropped, (pw, ph), interpolation=cv2.INTER_AREA) / 255.0) ** gamma
    sx, sy = pw / cw, ph / ch
    truth = np.array([[sx, 0, (0.5 - left) * sx - 0.5], [0, sy, (0.5 - top) * sy - 0.5], [0, 0, 1]])
    return (toned * 255 + 0.5).astype(np.uint8), truth


def mapped(registration: dict, x: float, y: float, reference: tuple[int, int]) -> np.ndarray:
    """Where the reported transform puts frame pixel (x, y) on the reference (rotation ~0)."""
    (rw, rh), (sx, sy), (dx, dy) = reference, registration["scale"], registration["shift"]
    return np.array([(rw - 1) / 2 + dx + sx * (x - (W - 1) / 2), (rh - 1) / 2 + dy + sy * (y - (H - 1) / 2)])


def test_a_print_is_matched_and_registered(tmp_path, film):
    """Cropped unevenly (aspect 1.367 against the film's 1.333, 2.5% off), scaled 0.8x, toned
    (gamma 0.7), JPEG quality 80, not named by a number: matched to its frame and registered
    within 1 px at the film's size."""
    path, tex = film
    rgb, truth = a_print(view(tex, 13))
    ph, pw = rgb.shape[:2]
    assert 0.02 < abs(pw / ph - W / H) / (W / H) <= 0.05
    write(tmp_path / "from-the-archive.jpg", rgb, quality=80)
    (keyframe,) = read(tmp_path, path)
    assert keyframe.frame == 13 and keyframe.score >= MATCH_THRESHOLD
    r = keyframe.registration
    assert abs(r["rotation"]) < 0.2
    for x, y in ((0, 0), (W - 1, 0), (0, H - 1), (W - 1, H - 1), (W / 2, H / 2)):
        error = np.hypot(*(mapped(r, x, y, (pw, ph)) - (truth @ [x, y, 1])[:2])) / truth[0, 0]  # film px
        assert error < 1.0, (x, y, error, r)
    # The print covers all but what was cropped; uncovered pixels carry no confidence.
    cropped = 1 - (W - 6) * (H - 8) / (W * H)
    assert abs((1 - r["coverage"]) - cropped) < 0.02, r
    assert float(keyframe.coverage[0, 0, :, 0].max()) < 0.5 and float(keyframe.coverage[0, 0, H // 2, W // 2]) == 1
    # Its luma is the film's own, never the print's tones.
    assert float((keyframe.luma[0, 0, H // 2, W // 2] - view(tex, 13)[H // 2, W // 2].mean() / 255).abs()) < 0.05


def test_a_numbered_frame_grab_shifted_a_few_pixels_is_registered(tmp_path, film):
    path, tex = film
    write(tmp_path / "000007.png", view(tex, 7, dx=3, dy=2))  # frame px x is print px x - (3, 2)
    (keyframe,) = read(tmp_path, path)
    r = keyframe.registration
    assert keyframe.frame == 7 and keyframe.score is None
    assert np.allclose(r["shift"], [-3, -2], atol=0.3) and np.allclose(r["scale"], [1, 1], atol=0.01), r
    assert 0.03 < 1 - r["coverage"] < 0.08, r  # the strips the grab does not hold


def test_a_picture_of_another_film_is_refused_in_one_line(tmp_path, film):
    path, _ = film
    write(tmp_path / "another-film.jpg", view(texture(7), 5), quality=80)
    with pytest.raises(InputError, match=r"another-film.jpg: keyframe fits no frame of the film well") as caught:
        read(tmp_path, path)
    message = str(caught.value)
    assert "\n" not in message
    assert "the best is frame" in message and "with similarity" in message and ".jpg" in message.split("e.g.")[-1]


def test_registration_is_deterministic(tmp_path, film):
    path, tex = film
    write(tmp_path / "print.jpg", a_print(view(tex, 20), crop=(2, 4, 6, 1))[0], quality=80)
    one, two = read(tmp_path, path), read(tmp_path, path)
    assert one[0].registration == two[0].registration and bool((one[0].chroma == two[0].chroma).all())


def test_the_report_carries_each_references_transform_and_coverage(tmp_path, film, random_model_file):
    path, tex = film
    keys = tmp_path / "keys"
    keys.mkdir()
    write(keys / "print.jpg", a_print(view(tex, 4))[0], quality=80)
    write(keys / "000018.png", view(tex, 18, dx=-2, dy=1))
    args = ["colorize", path, "-o", tmp_path / "out.mkv", "--model", random_model_file, "--device", "cpu"]
    result = run_cli([*args, "--flow", "dis", "--codec", "ffv1", "--json", "--keyframes", keys])
    assert result.returncode == 0, result.stderr
    placed = {k["file"]: k for k in json.loads(result.stdout)["keyframes"]}
    assert placed["print.jpg"]["frame"] == 4 and placed["000018.png"]["frame"] == 18
    for k in placed.values():
        r = k["registration"]
        assert set(r) >= {"scale", "shift", "rotation", "residual", "coverage", "similarity"}
        assert 0.8 < r["coverage"] < 1 and r["residual"] < 1
    assert np.allclose(placed["000018.png"]["registration"]["shift"], [2, -1], atol=0.3)


def test_a_palette_reference_is_placed_on_a_shot_by_tone(tmp_path, film):
    """A picture of the place that is no frame of the film (another framing, 4:5 where the film is
    4:3, another tone curve), named `palette-...`: accepted whatever its aspect, placed on the frame
    it resembles most (or the one its name gives), covering nothing (only its colors by tone are
    used), its tones mapped onto that frame's; the same picture not named a palette is refused for
    its aspect."""
    path, tex = film
    wide = (tex[20 : 20 + H, 30 : 30 + round(H * 4 / 5)] ** 0.7 * 255 + 0.5).astype(np.uint8)  # (H, 4H/5, 3)
    write(tmp_path / "palette-the-street.jpg", wide, quality=80)
    write(tmp_path / "palette-000010.png", wide)
    placed = {k.path.name: k for k in read(tmp_path, path)}
    matched, named = placed["palette-the-street.jpg"], placed["palette-000010.png"]
    assert named.frame == 10 and named.score is None and matched.score is not None
    assert 0 <= matched.frame < FRAMES and matched.frame != 10
    for keyframe in (matched, named):
        assert keyframe.palette and keyframe.registration is None and keyframe.describe()["palette"]
        assert float(keyframe.coverage.max()) == 0 and keyframe.chroma.shape == (1, 2, H, W)
        # Its tones are the frame's, by quantiles: the print's gamma 0.7 is taken out.
        frame = view(tex, keyframe.frame).astype(np.float32).mean(-1) / 255
        assert abs(float(keyframe.luma.median()) - float(np.median(frame))) < 0.03
    other = tmp_path / "plain"
    other.mkdir()
    write(other / "the-street.jpg", wide, quality=80)
    with pytest.raises(InputError, match=r"the-street.jpg: keyframe is \d+x\d+ \(aspect"):
        read(other, path)


def _print_of(rgb: np.ndarray, gamma: float, lift: float) -> np.ndarray:
    """`rgb` (float32 in [0, 1]) through a print's tone curve per channel, a little softer (1 px) and 8-bit
    rounded as a scan would be: the softness makes the two lumas disagree a little per pixel."""
    toned = lift + (1 - lift) * rgb**gamma
    return np.round(cv2.GaussianBlur(toned, (0, 0), 1.0) * 255) / 255


def _planes(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`rgb (h, w, 3)` float32 -> its luma `(h, w)` and chroma `(2, h, w)` as remaster takes them."""
    tensor = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))[None]
    return rgb_to_luma(tensor, "bt601")[0, 0].numpy(), rgb_to_chroma(tensor, "bt601")[0].numpy()


@pytest.mark.parametrize("gamma, lift", [(1.13, 0.033), (0.8, 0.05)])
def test_a_prints_tone_curve_does_not_amplify_a_near_gray_films_chroma(gamma, lift):
    """A near-gray film (a narrow band of tones, chroma a few code values of noise): the print's
    chroma in the film's terms keeps the film's chroma amplitude. The slope of the tone curve is
    about 1 over such a band, and a fit that regressed toward the mean (the per-bin mean print
    luma) made it flat and amplified that noise by 1.3x and more."""
    rng = np.random.default_rng(3)
    tones = cv2.GaussianBlur(rng.uniform(0.4, 0.5, (H, W)).astype(np.float32), (0, 0), 3)
    tones = 0.45 + (tones - tones.mean()) * (0.05 / tones.std())  # a narrow band around mid-gray
    noise = cv2.GaussianBlur(rng.standard_normal((H, W, 3)).astype(np.float32), (0, 0), 1.5) * 0.01
    film = np.clip(tones[..., None] + noise, 0, 1).astype(np.float32)
    printed = _print_of(film, gamma, lift).astype(np.float32)

    film_luma, _ = _planes(film)
    print_luma, print_chroma = _planes(printed)
    carried = carry_chroma(print_chroma, print_luma, film_luma, np.ones_like(film_luma))
    # A per-channel tone curve scales chroma by its slope at the pixel's tone: undone by its inverse.
    slope = (1 - lift) * gamma * 0.45 ** (gamma - 1)
    assert np.std(carried) / np.std(print_chroma) == pytest.approx(1 / slope, rel=0.1)


def test_a_prints_gamma_is_undone_on_a_colorful_film():
    """A film of everyday colors (a third of the texture's saturation) through a dark print's curve
    (gamma 1.4): its chroma in the film's terms is nearer the film's own than the print's raw chroma."""
    vivid = texture(5).astype(np.float32)
    gray = vivid.mean(axis=2, keepdims=True)
    film = gray + (vivid - gray) / 3
    printed = _print_of(film, 1.4, 0.0).astype(np.float32)

    film_luma, film_chroma = _planes(film)
    print_luma, print_chroma = _planes(printed)
    carried = carry_chroma(print_chroma, print_luma, film_luma, np.ones_like(film_luma))
    error = lambda chroma: float(np.sqrt(np.mean((chroma - film_chroma) ** 2)))  # noqa: E731
    assert error(carried) < 0.8 * error(print_chroma)
