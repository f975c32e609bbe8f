"""`remaster image` and `remaster eval images`: real files, luma kept, clear one-line errors."""

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from remaster import colorize_image
from remaster.cli.main import main


def bt601_luma(rgb: np.ndarray) -> np.ndarray:
    rgb = rgb.astype(np.float64)
    return 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]


def scene(height=61, width=83, dtype=np.uint8):
    """A gray scene with structure: gradients and a disc."""
    y, x = np.mgrid[0:height, 0:width]
    gray = 0.15 + 0.6 * x / width + 0.2 * ((y - height / 2) ** 2 + (x - width / 3) ** 2 < 150)
    scale = 65535 if dtype == np.uint16 else 255
    return np.round(gray * scale).astype(dtype)


def run(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.output, result.stderr if hasattr(result, "stderr") else ""


def test_gray_png_keeps_size_and_luma(tmp_path, random_model_file):
    gray = scene()
    cv2.imwrite(str(tmp_path / "g.png"), gray)
    code, out, _ = run("image", tmp_path / "g.png", "-o", tmp_path / "out", "--model", random_model_file, "--compare")
    assert code == 0, out
    result = cv2.cvtColor(cv2.imread(str(tmp_path / "out" / "g.png")), cv2.COLOR_BGR2RGB)
    assert result.shape == (*gray.shape, 3)
    assert np.abs(bt601_luma(result) - gray).max() <= 1.0
    chroma = np.abs(result.astype(int) - result.mean(axis=2, keepdims=True)).mean()
    assert chroma > 1.0  # really colored, not gray
    compare = cv2.cvtColor(cv2.imread(str(tmp_path / "out" / "g-compare.png")), cv2.COLOR_BGR2RGB)
    strip = caption_strip_height(compare, gray.shape[0])
    assert compare.shape[1] == 2 * gray.shape[1]  # input (gray) | remaster, under captions
    assert np.array_equal(compare[strip:, : gray.shape[1]], np.repeat(gray[:, :, None], 3, axis=2))
    assert np.array_equal(compare[strip:, gray.shape[1] :], result)


def caption_strip_height(sheet: np.ndarray, height: int) -> int:
    """The caption strip above a compare's panels: present, and with text (bright pixels) in it
    above every panel half."""
    strip = sheet.shape[0] - height
    assert 8 <= strip <= height, f"caption strip of {strip} rows above {height}-row panels"
    half = sheet.shape[1] // 2
    white = np.iinfo(sheet.dtype).max
    for part in (sheet[:strip, :half], sheet[:strip, half:]):
        assert (part > white // 2).any() and (part == 0).any()  # light text on black
    return strip


def test_compare_of_a_color_photo_shows_its_original(tmp_path, random_model_file):
    rng = np.random.default_rng(2)
    rgb = np.repeat(np.repeat(rng.integers(0, 256, (8, 10, 3), dtype=np.uint8), 6, axis=0), 6, axis=1)  # 48x60 blocks
    cv2.imwrite(str(tmp_path / "c.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    code, out, _ = run("image", tmp_path / "c.png", "-o", tmp_path / "out", "--model", random_model_file, "--compare")
    assert code == 0, out
    colorized = cv2.cvtColor(cv2.imread(str(tmp_path / "out" / "c.png")), cv2.COLOR_BGR2RGB)
    compare = cv2.cvtColor(cv2.imread(str(tmp_path / "out" / "c-compare.png")), cv2.COLOR_BGR2RGB)
    assert compare.shape[1] == rgb.shape[1] + colorized.shape[1]
    strip = caption_strip_height(compare, rgb.shape[0])
    assert np.array_equal(compare[strip:, : rgb.shape[1]], rgb)  # the original's colors, not its gray
    assert np.array_equal(compare[strip:, rgb.shape[1] :], colorized)


def test_16_bit_compare_stays_16_bit(tmp_path, random_model_file):
    gray = scene(dtype=np.uint16)
    cv2.imwrite(str(tmp_path / "scan.tif"), gray)
    code, out, _ = run(
        "image", tmp_path / "scan.tif", "-o", tmp_path / "out", "--model", random_model_file, "--compare"
    )
    assert code == 0, out
    compare = cv2.imread(str(tmp_path / "out" / "scan-compare.tif"), cv2.IMREAD_UNCHANGED)
    assert compare.dtype == np.uint16 and compare.shape[1] == 2 * gray.shape[1]
    strip = caption_strip_height(compare, gray.shape[0])
    assert np.array_equal(compare[strip:, : gray.shape[1], 0], gray)


def test_rgb_input_is_treated_as_its_luma(tmp_path, random_model_file):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "c.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    out = colorize_image(tmp_path / "c.png", model=random_model_file)
    assert out.shape == rgb.shape and out.dtype == np.uint8
    assert np.abs(bt601_luma(out) - bt601_luma(rgb)).max() <= 1.0
    # The same luma as a gray image gives the same result: only luma is used.
    gray = np.round(bt601_luma(rgb)).astype(np.uint8)
    assert np.abs(colorize_image(gray, model=random_model_file).astype(int) - out.astype(int)).max() <= 2


def test_16_bit_tiff_stays_16_bit(tmp_path, random_model_file):
    gray = scene(dtype=np.uint16)
    cv2.imwrite(str(tmp_path / "scan.tif"), gray)
    code, out, _ = run("image", tmp_path / "scan.tif", "-o", tmp_path / "out", "--model", random_model_file)
    assert code == 0, out
    result = cv2.imread(str(tmp_path / "out" / "scan.tif"), cv2.IMREAD_UNCHANGED)
    assert result.dtype == np.uint16 and result.shape == (*gray.shape, 3)
    rgb = result[..., ::-1].astype(np.float64)
    assert np.abs(bt601_luma(rgb) - gray).max() <= 1.0


def test_jpeg_and_webp_inputs(tmp_path, random_model_file):
    gray = scene()
    for name in ("a.jpg", "b.webp"):
        cv2.imwrite(str(tmp_path / name), gray)
    code, out, _ = run(
        "image", tmp_path / "a.jpg", tmp_path / "b.webp", "-o", tmp_path / "out", "--model", random_model_file
    )
    assert code == 0, out
    assert (tmp_path / "out" / "a.jpg").is_file() and (tmp_path / "out" / "b.webp").is_file()


def test_existing_output_needs_force(tmp_path, random_model_file):
    cv2.imwrite(str(tmp_path / "g.png"), scene())
    args = ("image", tmp_path / "g.png", "-o", tmp_path / "out", "--model", random_model_file)
    assert run(*args)[0] == 0
    code, out, _ = run(*args)
    assert code == 1 and "already exists (use --force" in out
    assert run(*args, "--force")[0] == 0


def test_doubt_sets_how_bold_the_colors_are(tmp_path):
    """--doubt overrides the model's own decoding: lower fades unsure colors further toward gray."""
    cv2.imwrite(str(tmp_path / "g.png"), scene(96, 128))
    chroma = {}
    for doubt in ("5", "60"):
        code, out, _ = run("image", tmp_path / "g.png", "-o", tmp_path / doubt, "--doubt", doubt)  # the shipped model
        assert code == 0, out
        rgb = cv2.cvtColor(cv2.imread(str(tmp_path / doubt / "g.png")), cv2.COLOR_BGR2RGB).astype(np.float64)
        chroma[doubt] = np.abs(rgb - bt601_luma(rgb)[..., None]).mean()
    assert chroma["5"] < 0.7 * chroma["60"], chroma
    code, out, _ = run("image", tmp_path / "g.png", "-o", tmp_path / "bad", "--doubt", "-1")
    assert code != 0 and "doubt must be 0 (no fading) or more" in out


def cli_subprocess(*args):
    return subprocess.run(
        [sys.executable, "-m", "remaster.cli.main", *map(str, args)], capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize(
    "case, message",
    [
        ("missing", "missing.png: file not found"),
        ("not-an-image", "notes.png: not a readable image"),
        ("bad-weights", "weights.safetensors: not a readable safetensors model"),
    ],
)
def test_clear_errors(tmp_path, random_model_file, case, message):
    cv2.imwrite(str(tmp_path / "ok.png"), scene())
    (tmp_path / "notes.png").write_text("these are notes, not pixels\n")
    (tmp_path / "weights.safetensors").write_bytes(b"\x00\x01garbage" * 10)
    image = {"missing": "missing.png", "not-an-image": "notes.png", "bad-weights": "ok.png"}[case]
    model = tmp_path / "weights.safetensors" if case == "bad-weights" else random_model_file
    result = cli_subprocess("image", tmp_path / image, "-o", tmp_path / "out", "--model", model)
    assert result.returncode == 1
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_eval_images_reports_model_and_baseline(tmp_path, random_model_file):
    rng = np.random.default_rng(1)
    for i in range(3):
        image = np.zeros((48, 64, 3), np.uint8)
        image[:] = rng.integers(30, 220, 3)
        image[20:] = rng.integers(30, 220, 3)
        cv2.imwrite(str(tmp_path / f"t{i}.png"), image)
    sheet = tmp_path / "sheets" / "gallery.png"
    sheet.parent.mkdir()
    code, out, _ = run("eval", "images", tmp_path, "--model", random_model_file, "--json", "--sheet", sheet)
    assert code == 0, out
    result = json.loads(out)
    summary = result["summary"]
    assert summary["images"] == 3
    for key in ("psnr", "psnr_gray", "ssim", "ssim_gray", "colorfulness", "colorfulness_truth", "colorfulness_ratio"):
        assert np.isfinite(summary[key])
    assert summary["colorfulness_truth"] > 0 and summary["psnr_gray"] > 5
    # The distribution: how many beat gray, and the worst photo named with its own gain.
    gains = {row["image"]: row["psnr"] - row["psnr_gray"] for row in result["images"]}
    assert summary["beat_gray"] == sum(g > 0 for g in gains.values())
    worst = min(gains, key=gains.get)
    assert summary["worst"][0]["image"] == worst and abs(summary["worst"][0]["psnr_gain"] - gains[worst]) < 1e-3
    gallery = cv2.imread(str(sheet))
    assert gallery is not None and gallery.shape[0] > 3 * 128  # three photos (all worst, all best), captioned


def test_demo_colorizes_the_bundled_photographs_and_runs_again(tmp_path, random_model_file):
    skimage_data = pytest.importorskip("skimage.data")
    code, out, _ = run("demo", "-o", tmp_path, "--model", random_model_file)
    assert code == 0, out
    camera = cv2.imread(str(tmp_path / "camera.png"))
    assert camera.shape == (512, 512, 3)
    coffee_compare = cv2.cvtColor(cv2.imread(str(tmp_path / "coffee-compare.png")), cv2.COLOR_BGR2RGB)
    strip = coffee_compare.shape[0] - 400
    assert coffee_compare.shape[1] == 3 * 600 and strip > 0  # input (gray) | remaster | original, under captions
    assert (coffee_compare[:strip] > 128).any()  # caption text
    gray = coffee_compare[strip:, :600]
    assert np.array_equal(gray[..., 0], gray[..., 1]) and np.array_equal(gray[..., 1], gray[..., 2])
    assert np.array_equal(coffee_compare[strip:, 1200:], skimage_data.coffee())
    # The README's first command, run a second time into the same folder, replaces its own files.
    first = sorted(p.name for p in tmp_path.iterdir())
    code, out, _ = run("demo", "-o", tmp_path, "--model", random_model_file)
    assert code == 0, out
    assert sorted(p.name for p in tmp_path.iterdir()) == first
