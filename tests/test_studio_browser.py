"""The studio's page in a real headless Chromium (issue 21): Debian's chromium and chromium-driver,
driven by selenium; skipped where they are not installed.

On a small gray film of two shots, started with the real `remaster studio` command: the page
opens with the printed token, three clicks with colors change the steered view where they land
(pixels read back from the page's canvas), a reference is dropped, two keyframes are marked, the
carry is previewed and the film rendered. The output has every frame, the film's luma bit for bit
(FFV1), and the clicked colors at the clicked points of the keyframe.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import torch
from conftest import decode_all, shapes_frame

from remaster.color import rgb_to_chroma

selenium = pytest.importorskip("selenium", reason="selenium is not installed (pip install -e .[test])")
from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and DRIVER), reason="no headless browser: apt-get install chromium chromium-driver"
)
W, H, FRAMES, CUT = 128, 96, 24, 12
# (x, y) in the film's pixels and the color clicked there: the sky, the ground, the sky's right.
CLICKS = [((20, 40), "#d02818"), ((64, 80), "#1838d0"), ((110, 30), "#20b040")]


def print_of(rgb: np.ndarray) -> np.ndarray:
    """A print of a frame: 4 px cropped left, 2 right, 3 top, 1 bottom, scaled 1.5x, a gamma of 0.8."""
    crop = rgb[3 : rgb.shape[0] - 1, 4 : rgb.shape[1] - 2]
    big = cv2.resize(crop, (crop.shape[1] * 3 // 2, crop.shape[0] * 3 // 2), interpolation=cv2.INTER_CUBIC)
    return np.clip(255 * (big / 255) ** 0.8, 0, 255).astype(np.uint8)


def film_picture(i: int) -> np.ndarray:
    """RGB of frame i: the moving shapes, then (a second shot) the same upside down and mirrored."""
    rgb = shapes_frame(i, W, H)
    return rgb if i < CUT else np.ascontiguousarray(rgb[::-1, ::-1])


@pytest.fixture(scope="module")
def film(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("studio") / "reel.mkv"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("ffv1", rate=Fraction(24))
        stream.width, stream.height, stream.pix_fmt = W, H, "gray"
        for i in range(FRAMES):
            gray = cv2.cvtColor(film_picture(i), cv2.COLOR_RGB2GRAY)
            out.mux(stream.encode(av.VideoFrame.from_ndarray(gray, format="gray")))
        out.mux(stream.encode(None))
    return path


@pytest.fixture(scope="module")
def studio(film):
    """The real command, on an ephemeral port; yields the address it printed."""
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    command = [sys.executable, "-m", "remaster.cli.main", "studio", str(film), "--device", "cpu", "--no-browser"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:") and "?token=" in url, (url, process.stderr.read())
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1280,1000",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium')}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_script_timeout(60)
    yield driver
    driver.quit()


def settle(driver, timeout=120):
    """Until the page has no request in flight."""
    WebDriverWait(driver, timeout, poll_frequency=0.1).until(
        lambda d: d.execute_script("return document.body.dataset.busy") == "0"
    )


def drawn(driver) -> int:
    return int(driver.execute_script("return Number(document.body.dataset.drawn || 0)"))


def pixel(driver, x, y) -> np.ndarray:
    """RGB of the frame view's canvas at the film's pixel (x, y)."""
    return np.array(
        driver.execute_script(
            "return Array.from(document.getElementById('view').getContext('2d').getImageData(arguments[0], "
            "arguments[1], 1, 1).data.slice(0, 3))",
            x,
            y,
        )
    )


def chroma(rgb) -> np.ndarray:
    """(Cb, Cr) offsets of RGB values `(..., 3)` in [0, 255]."""
    values = torch.as_tensor(np.asarray(rgb, np.float32) / 255).reshape(-1, 3).T[None, :, :, None]
    return rgb_to_chroma(values)[0, :, :, 0].T.numpy().reshape(*np.shape(rgb)[:-1], 2)


def hex_rgb(color: str) -> np.ndarray:
    return np.array([int(color[i : i + 2], 16) for i in (1, 3, 5)])


def cosine(a, b) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-9))


def click(driver, x, y, color):
    """Pick `color` and click the film's pixel (x, y) on the page; wait for the new steered view."""
    driver.execute_script(
        "const c = document.getElementById('color'); c.value = arguments[0];"
        "c.dispatchEvent(new Event('input')); c.dispatchEvent(new Event('change'));",
        color,
    )
    marks = driver.find_element(By.ID, "marks")
    box = driver.execute_script("const r = arguments[0].getBoundingClientRect(); return [r.width, r.height];", marks)
    before = drawn(driver)
    offset = ((x + 0.5) * box[0] / W - box[0] / 2, (y + 0.5) * box[1] / H - box[1] / 2)  # from the centre
    ActionChains(driver).move_to_element_with_offset(marks, *offset).click().perform()
    WebDriverWait(driver, 120, poll_frequency=0.1).until(lambda d: drawn(d) > before)
    settle(driver)


def go_to(driver, frame):
    before = drawn(driver)
    driver.execute_script(
        "const s = document.getElementById('scrubber'); s.value = arguments[0];s.dispatchEvent(new Event('change'));",
        frame,
    )
    WebDriverWait(driver, 120, poll_frequency=0.1).until(lambda d: drawn(d) > before)
    settle(driver)


def test_color_keyframes_preview_and_render_in_the_page(studio, browser, film, tmp_path):
    driver = browser
    driver.get(studio)
    WebDriverWait(driver, 120, poll_frequency=0.1).until(lambda d: drawn(d) >= 1)
    settle(driver)
    assert "?token=" not in driver.current_url  # the token went into a cookie
    assert len(driver.find_elements(By.CSS_SELECTOR, "#shots figure")) == 2  # the two shots, found

    # Three clicks with colors: the steered view takes each color where it was clicked.
    project = Path(f"{film}.studio")
    for (x, y), color in CLICKS:
        before = pixel(driver, x, y)
        click(driver, x, y, color)
        after, wanted = chroma(pixel(driver, x, y)), chroma(hex_rgb(color))
        assert cosine(after, wanted) > 0.8, (color, before, pixel(driver, x, y))
        assert np.linalg.norm(after - wanted) < np.linalg.norm(chroma(before) - wanted), (color, before)
    assert driver.find_element(By.ID, "edits").text == "3 edits"
    driver.find_element(By.ID, "undo").click()  # undo and redo the last click
    settle(driver)
    assert driver.find_element(By.ID, "edits").text == "2 edits"
    driver.find_element(By.ID, "redo").click()
    settle(driver)
    assert driver.find_element(By.ID, "edits").text == "3 edits"
    driver.find_element(By.ID, "keyframe").click()
    settle(driver)
    assert (project / "000000.png").is_file()

    # The second shot: a print of frame 15 (cropped, scaled 1.5x, another tone curve, JPEG) dropped
    # on frame 13: matched to frame 15 and registered as --keyframes does, the page says how.
    go_to(driver, 13)
    reference = tmp_path / "print.jpg"
    cv2.imwrite(str(reference), cv2.cvtColor(print_of(film_picture(15)), cv2.COLOR_RGB2BGR))
    before = drawn(driver)
    driver.find_element(By.ID, "reference").send_keys(str(reference))
    WebDriverWait(driver, 120, poll_frequency=0.1).until(lambda d: drawn(d) > before)
    settle(driver)
    assert (project / "references" / "000015.png").is_file()
    assert driver.execute_script("return frame") == 15
    registration = driver.find_element(By.ID, "registration").text
    assert registration.startswith("matched to frame 15 (dropped on 13)"), registration
    scale = [float(v) for v in re.search(r"scale ([\d.]+)\u00d7([\d.]+)", registration).groups()]
    assert np.allclose(scale, 1.5, atol=0.02), registration
    assert f"covers {round(100 * (W - 6) * (H - 4) / (W * H))}%" in registration, registration
    # Accepted as the frame's colors: the steered view takes the print's colors where it covers the frame.
    before = drawn(driver)
    driver.execute_script(
        "const s = document.getElementById('reference-use'); s.value = 'colors'; s.dispatchEvent(new Event('change'));"
    )
    WebDriverWait(driver, 120, poll_frequency=0.1).until(lambda d: drawn(d) > before)
    settle(driver)
    for x, y in ((64, 10), (100, 70)):  # the ground (upside down: at the top), the sky
        assert cosine(chroma(pixel(driver, x, y)), chroma(film_picture(15)[y, x])) > 0.9, (x, y, pixel(driver, x, y))
    driver.find_element(By.ID, "keyframe").click()
    settle(driver)
    assert (project / "000015.png").is_file()
    keyed = driver.find_elements(By.CSS_SELECTOR, "#shots figure.keyed")
    assert len(keyed) == 2

    # The carry's preview of the first shot, from its keyframe: frames in colors, playing.
    go_to(driver, 3)
    driver.find_element(By.ID, "preview").click()
    WebDriverWait(driver, 300, poll_frequency=0.2).until(
        lambda d: d.execute_script("return document.body.dataset.preview")
    )
    frames = int(driver.execute_script("return document.body.dataset.preview"))
    assert frames == CUT  # the rest of the shot (under 3 s)
    x, y = CLICKS[0][0]
    carried = driver.execute_script(
        "const c = document.getElementById('carry'); const k = c.width / arguments[2];"
        "return Array.from(c.getContext('2d').getImageData(arguments[0] * k, arguments[1] * k, 1, 1).data.slice(0, 3))",
        x,
        y,
        W,
    )
    assert cosine(chroma(np.array(carried)), chroma(hex_rgb(CLICKS[0][1]))) > 0.5, carried

    # Render, lossless, with the two keyframes.
    go_to(driver, 0)
    driver.find_element(By.CSS_SELECTOR, "#codec option[value=ffv1]").click()
    driver.find_element(By.ID, "render").click()
    WebDriverWait(driver, 600, poll_frequency=0.5).until(
        lambda d: d.execute_script("return document.body.dataset.render") in ("done", "failed")
    )
    status = driver.find_element(By.ID, "render-status").text
    output = project / "render" / "reel-color.mkv"
    assert driver.execute_script("return document.body.dataset.render") == "done", status
    assert str(output) in status and f"{FRAMES}/{FRAMES} frames" in status
    go_to(driver, 15)  # the screenshot: the print's frame, its registration said, the render done
    assert driver.find_element(By.ID, "registration").text == registration
    shot = os.environ.get("REMASTER_STUDIO_SCREENSHOT")
    driver.save_screenshot(shot or str(tmp_path / "studio.png"))

    source, result = decode_all(film), decode_all(output)
    assert len(result.planes) == FRAMES
    for i in range(FRAMES):  # the film's luma, bit for bit
        assert np.array_equal(result.planes[i][0], source.planes[i][0]), i
    cb, cr = (result.planes[0][k].astype(np.float64) for k in (1, 2))  # 4:2:0, full range: 128 + 255 * offset
    sy, sx = H // cb.shape[0], W // cb.shape[1]
    for (x, y), color in CLICKS:
        got = np.array([cb[y // sy, x // sx], cr[y // sy, x // sx]]) / 255 - 128 / 255
        assert cosine(got, chroma(hex_rgb(color))) > 0.8, (color, got)
    assert sorted(p.name for p in film.parent.iterdir()) == ["reel.mkv", "reel.mkv.studio"]
    assert driver.execute_script("return fetch('/api/state').then(r => r.status)") == 200  # still serving
