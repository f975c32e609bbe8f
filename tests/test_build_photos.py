"""models/build_photos.py: which photos become training data (issue 10).

Black-and-white and toned prints are dropped; color photographs of gray scenes are kept (a
network that never saw one colors every scene), and half of them held out to measure on.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "models" / "build_photos.py"


@pytest.fixture(scope="module")
def build_photos():
    spec = importlib.util.spec_from_file_location("build_photos", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _from_lab(lightness: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    lab = np.stack([lightness, a, b], -1).astype(np.float32)
    return np.clip(cv2.cvtColor(lab, cv2.COLOR_LAB2RGB) * 255 + 0.5, 0, 255).astype(np.uint8)


def _lightness(size: int = 160) -> np.ndarray:
    y, x = np.mgrid[0:size, 0:size]
    return 20 + 60 * (x + y) / (2 * size - 2) + 5 * np.sin(x / 7.0)  # a textured gradient, L 20..85


def test_a_gray_scene_is_kept_and_prints_are_not(build_photos):
    rng = np.random.default_rng(0)
    lightness = _lightness()
    zero = np.zeros_like(lightness)
    # Asphalt with a little sensor noise and one small red car (1.6% of the picture): mean
    # chroma under 2.
    a, b = rng.normal(0, 1.0, lightness.shape), rng.normal(-1.0, 1.0, lightness.shape)
    a[70:90, 70:90], b[70:90, 70:90] = 20.0, 15.0
    scene = _from_lab(lightness, a, b)
    gray_print = _from_lab(lightness, zero, zero)
    toned_print = _from_lab(lightness, zero + 0.8, zero + 1.5)  # a faint selenium/sepia tone
    for name, rgb in (("scene", scene), ("gray print", gray_print), ("toned print", toned_print)):
        assert build_photos.is_near_gray(rgb), name
    assert not build_photos.is_monochrome(scene)
    assert build_photos.is_monochrome(gray_print)
    assert build_photos.is_monochrome(toned_print)


def test_gray_scenes_are_held_out_by_a_stable_coin(build_photos):
    names = [f"caltech-thing-image-{i:04d}.jpg" for i in range(400)]
    held = [build_photos.held_out(name) for name in names]
    assert held == [build_photos.held_out(name) for name in names]  # the same photos every rebuild
    assert 150 < sum(held) < 250  # about half
