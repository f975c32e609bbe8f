"""Seeded synthetic old-film damage for the restoration benchmark and tests.

    damaged = gain_t * clean + offset_t + grain        (per-frame exposure flicker, film grain)
              then one-frame specks painted on top      (dust and dirt: dark and bright blobs)

`damage(frames, seed)` is a pure function of its inputs: the same seed gives the same damage
on any machine (numpy's PCG64), so the benchmark's numbers can be reproduced.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Damage:
    gain: float = 0.18  # per-frame gain drawn from 1 ± this (uniform): a flickering gate/lamp
    offset: float = 8.0  # per-frame offset drawn from ± this many codes (uniform)
    specks: int = 12  # mean number of specks per frame (Poisson)
    speck_radius: tuple[float, float] = (1.0, 4.0)  # px, uniform
    grain: float = 5.0  # std of the Gaussian grain, in codes


def damage(frames: np.ndarray, seed: int = 0, config: Damage = Damage()) -> tuple[np.ndarray, np.ndarray]:
    """`frames (N, H, W)` uint8 full-range luma codes -> `(damaged (N, H, W) uint8, speck mask
    (N, H, W) bool)`. Specks are soft-edged discs, dark (dirt) or bright (dust on the negative)."""
    rng = np.random.default_rng(seed)
    n, h, w = frames.shape
    out = np.empty_like(frames)
    mask = np.zeros((n, h, w), dtype=bool)
    ys, xs = np.mgrid[0:h, 0:w]
    for t in range(n):
        gain = 1 + rng.uniform(-config.gain, config.gain)
        offset = rng.uniform(-config.offset, config.offset)
        picture = frames[t].astype(np.float32) * gain + offset + rng.normal(0, config.grain, (h, w)).astype(np.float32)
        for _ in range(rng.poisson(config.specks)):
            cy, cx = rng.uniform(0, h), rng.uniform(0, w)
            radius = rng.uniform(*config.speck_radius)
            value = rng.uniform(0, 40) if rng.random() < 0.6 else rng.uniform(215, 255)
            y0, y1 = max(0, int(cy - radius - 2)), min(h, int(cy + radius + 3))
            x0, x1 = max(0, int(cx - radius - 2)), min(w, int(cx + radius + 3))
            d = np.hypot(ys[y0:y1, x0:x1] - cy, xs[y0:y1, x0:x1] - cx)
            alpha = np.clip(radius + 0.5 - d, 0, 1)  # a one-pixel soft rim
            picture[y0:y1, x0:x1] = picture[y0:y1, x0:x1] * (1 - alpha) + value * alpha
            mask[t, y0:y1, x0:x1] |= alpha > 0
        out[t] = np.clip(np.rint(picture), 0, 255).astype(np.uint8)
    return out, mask
