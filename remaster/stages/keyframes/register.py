"""A colorist's reference registered to its frame: a print, a scan or a frame grab from another
transfer is cropped, scaled and toned otherwise than the film, so its colors are put where the
film's own picture has them before anything is carried.

Everything here compares *structure*, never tones: a print has another tone curve than the film's
transfer, so both lumas are first locally normalised (each pixel's difference from its
neighbourhood's mean, over the neighbourhood's spread), which a monotone tone curve changes little.

- `signature(luma)`: a small, tone-invariant map of a picture, for ranking a film's frames
  against a reference (`signature_similarity`) before registering the best few (`rank`);
- `register(reference, frame)`: a global affine map estimated coarse to fine with OpenCV's ECC on
  the normalised lumas (starting from the stretch of one picture onto the other), then an optional
  dense refinement (DIS flow between the registered reference and the frame, smoothed: a print's
  local distortions), kept only where it improves the fit; the result says its transform, its
  similarity, its residual (px) and how much of the frame the reference covers;
- `Registration.warp(image)`: the reference's pixels put on the frame, and its coverage
  (0 where the reference has no picture: a crop);
- `carry_chroma`: the print's chroma in the film's terms (undoing its tone curve's slope).

Deterministic: OpenCV runs single-threaded inside `register` (`_one_thread`), so a run gives the
same maps whatever its worker count. Pure numpy/OpenCV: no files.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

import cv2
import numpy as np

SIGNATURE_SIDE = 48  # short side of a signature (px)
_LEVEL_SIDE = 40  # the coarsest ECC level's short side (px)
_FINE_SIDE = 1024  # the finest level's long side at most: past it, maps are scaled up (a 4K film)
_SIGMA = 2.5  # the normalisation's neighbourhood (Gaussian sigma, px at each level)
RANK_SIDE = 256  # candidates are ranked registered at this long side at most
_SNAP = 0.05
_SLIDE = 0.1  # a signature's border left out when sliding it over a frame's


@contextlib.contextmanager
def _one_thread():
    before = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        yield
    finally:
        cv2.setNumThreads(before)


def normalised(luma: np.ndarray, sigma: float = _SIGMA) -> np.ndarray:
    """`(h, w)` float32 luma -> its local structure: (y - mean) / spread over a Gaussian
    neighbourhood of `sigma` px (a floor keeps flat areas at zero, not amplified noise)."""
    luma = luma.astype(np.float32)
    mean = cv2.GaussianBlur(luma, (0, 0), sigma)
    centred = luma - mean
    spread = np.sqrt(cv2.GaussianBlur(centred * centred, (0, 0), 2 * sigma))
    return centred / (spread + 0.02)


def _resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """`image` to `size` (h, w): INTER_AREA when shrinking, bilinear otherwise."""
    h, w = size
    if image.shape[:2] == (h, w):
        return image
    shrink = h < image.shape[0] or w < image.shape[1]
    return cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def signature(luma: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A picture's structure at a small `size` (h, w): its normalised luma, blurred. Give a
    film's frames and a reference the same `size` (the reference is stretched onto it)."""
    return cv2.GaussianBlur(normalised(_resize(luma.astype(np.float32), size), 2.0), (0, 0), 1.0)


def signature_size(height: int, width: int) -> tuple[int, int]:
    scale = SIGNATURE_SIDE / min(height, width)
    return max(8, round(height * scale)), max(8, round(width * scale))


def _centres(s: float) -> np.ndarray:
    """3x3: pixel-centre coordinates of a picture -> those of the same picture scaled by `s`."""
    return np.array([[s, 0, (s - 1) / 2], [0, s, (s - 1) / 2], [0, 0, 1]], dtype=np.float64)


@dataclass
class Registration:
    """Where each pixel of the frame (`size`, h x w) is on the reference: `matrix` (3x3, frame
    pixel -> reference pixel, pixel centres) plus `flow` ((h, w, 2) px on the frame, or None),
    the dense refinement, applied before the matrix."""

    size: tuple[int, int]
    reference_size: tuple[int, int]
    matrix: np.ndarray
    flow: np.ndarray | None
    similarity: float  # tone-invariant fit after registration, over the covered pixels
    residual: float  # px: the median motion left between the registered reference and the frame
    coverage: float  # the fraction of the frame the reference covers

    def maps(self) -> tuple[np.ndarray, np.ndarray]:
        """`(map_x, map_y)`, each `(h, w)` float32: the reference pixel each frame pixel takes."""
        h, w = self.size
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
        if self.flow is not None:
            xs, ys = xs + self.flow[..., 0], ys + self.flow[..., 1]
        m = self.matrix
        return (
            (m[0, 0] * xs + m[0, 1] * ys + m[0, 2]).astype(np.float32),
            (m[1, 0] * xs + m[1, 1] * ys + m[1, 2]).astype(np.float32),
        )

    def warp(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """`image` ((rh, rw) or (rh, rw, C) float32, the reference) on the frame: `(warped (h, w[, C]),
        coverage (h, w) in [0, 1])`. Beyond the reference's edges the warped image repeats its edge
        (so a resize mixes no black in) and the coverage is 0."""
        map_x, map_y = self.maps()
        with _one_thread():
            warped = cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            ones = np.ones(image.shape[:2], np.float32)
            coverage = cv2.remap(ones, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        return warped, coverage

    def at(self, size: tuple[int, int]) -> Registration:
        """The same registration for the frame at `size` (h, w) (it was found at a smaller one)."""
        if tuple(size) == tuple(self.size):
            return self
        (h, w), (H, W) = self.size, size
        sx, sy = w / W, h / H
        scale = np.array([[sx, 0, (sx - 1) / 2], [0, sy, (sy - 1) / 2], [0, 0, 1]], dtype=np.float64)
        flow = None
        if self.flow is not None:
            flow = cv2.resize(self.flow, (W, H), interpolation=cv2.INTER_LINEAR) / np.array([sx, sy], np.float32)
        return Registration(tuple(size), self.reference_size, self.matrix @ scale, flow, *self._measures())

    def _measures(self) -> tuple[float, float, float]:
        return self.similarity, self.residual, self.coverage

    def describe(self) -> dict:
        """The transform in a person's terms: scale (reference px per frame px, x and y),
        rotation (degrees), shift (px, where the frame's centre lands on the reference, from the
        reference's centre), residual (px) and coverage."""
        m = self.matrix
        h, w = self.size
        rh, rw = self.reference_size
        centre = m @ np.array([(w - 1) / 2, (h - 1) / 2, 1.0])
        return {
            "scale": [round(math.hypot(m[0, 0], m[1, 0]), 4), round(math.hypot(m[0, 1], m[1, 1]), 4)],
            "rotation": round(math.degrees(math.atan2(m[1, 0], m[0, 0])), 3),
            "shift": [round(float(centre[0] - (rw - 1) / 2), 2), round(float(centre[1] - (rh - 1) / 2), 2)],
            "refined": self.flow is not None,
            "similarity": round(self.similarity, 4),
            "residual": round(self.residual, 3),
            "coverage": round(self.coverage, 4),
        }


def _stretch(size: tuple[int, int], reference_size: tuple[int, int]) -> np.ndarray:
    """3x3: frame pixel -> reference pixel when the reference is stretched onto the frame."""
    (h, w), (rh, rw) = size, reference_size
    sx, sy = rw / w, rh / h
    return np.array([[sx, 0, (sx - 1) / 2], [0, sy, (sy - 1) / 2], [0, 0, 1]], dtype=np.float64)


def _fit(frame_n: np.ndarray, reference_n: np.ndarray, matrix: np.ndarray, flow=None) -> tuple[float, np.ndarray]:
    """(similarity, coverage (h, w)) of the normalised frame and reference under `matrix` (+ `flow`)."""
    r = Registration(frame_n.shape, reference_n.shape, matrix, flow, 0.0, 0.0, 0.0)
    warped, coverage = r.warp(reference_n)
    inside = coverage > 0.999
    if inside.sum() < 64:
        return -1.0, coverage
    a, b = frame_n[inside], warped[inside]
    a, b = a - a.mean(), b - b.mean()
    return float((a @ b) / max(float(np.linalg.norm(a) * np.linalg.norm(b)), 1e-9)), coverage


def _ecc(frame: np.ndarray, reference: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """The affine map, coarse to fine from `matrix`, ECC on the normalised lumas at each level."""
    h, w = frame.shape
    finest = min(1.0, _FINE_SIDE / max(h, w))
    levels = [finest]
    while min(h, w) * levels[-1] / 2 >= _LEVEL_SIDE:
        levels.append(levels[-1] / 2)
    criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 60, 1e-5)
    for s in reversed(levels):
        f = normalised(_resize(frame, (max(8, round(h * s)), max(8, round(w * s)))))
        rh, rw = reference.shape
        r = normalised(_resize(reference, (max(8, round(rh * s)), max(8, round(rw * s)))))
        at_level = (_centres(s) @ matrix @ np.linalg.inv(_centres(s)))[:2].astype(np.float32)
        try:
            _, at_level = cv2.findTransformECC(f, r, at_level, cv2.MOTION_AFFINE, criteria, None, 3)
        except cv2.error:  # did not converge at this level: keep what the coarser levels found
            continue
        matrix = np.linalg.inv(_centres(s)) @ np.vstack([at_level.astype(np.float64), [0, 0, 1]]) @ _centres(s)
    return matrix


def _dense(frame_n: np.ndarray, reference_n: np.ndarray, matrix: np.ndarray, coverage: np.ndarray) -> np.ndarray:
    """`(h, w, 2)`: the flow from the frame to the registered reference (DIS on the normalised
    lumas as 8-bit pictures), smoothed to a print's slow distortions; uncovered pixels take the
    covered ones' flow."""
    warped, _ = Registration(frame_n.shape, reference_n.shape, matrix, None, 0, 0, 0).warp(reference_n)
    as8 = lambda n: np.clip(n * 40 + 128, 0, 255).astype(np.uint8)
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    flow = dis.calc(as8(frame_n), as8(warped), None)  # (h, w, 2)
    sigma = max(2.0, min(frame_n.shape) / 24)
    weight = cv2.GaussianBlur(coverage, (0, 0), sigma) + 1e-6
    return np.stack([cv2.GaussianBlur(flow[..., c] * coverage, (0, 0), sigma) / weight for c in range(2)], -1)


def _residual(frame_n: np.ndarray, reference_n: np.ndarray, registration: Registration) -> float:
    """The median motion (px) DIS still finds between the registered reference and the frame,
    over covered pixels with structure."""
    warped, coverage = registration.warp(reference_n)
    as8 = lambda n: np.clip(n * 40 + 128, 0, 255).astype(np.uint8)
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    flow = dis.calc(as8(frame_n), as8(warped), None)
    keep = (coverage > 0.999) & (np.abs(frame_n) > 0.5)
    if keep.sum() < 16:
        return 0.0
    return float(np.median(np.hypot(flow[..., 0], flow[..., 1])[keep]))


def signature_similarity(frame: np.ndarray, reference: np.ndarray) -> float:
    """Two `signature`s compared: the reference's central part slid over the frame's (a crop or
    a shift of a few percent), the best normalised correlation."""
    h, w = reference.shape
    dy, dx = max(1, round(h * _SLIDE)), max(1, round(w * _SLIDE))
    return float(cv2.matchTemplate(frame, reference[dy : h - dy, dx : w - dx], cv2.TM_CCOEFF_NORMED).max())


# A reference whose luma is the film frame's within this (mean absolute, of full scale, where it
# covers the frame) is that frame colored, not a print of another tone curve: its chroma is taken as
# it is. A slope fitted to two equal lumas is not exactly 1 (the per-bin fit before the quantiles
# put 2.4 code values of chroma error everywhere on a true keyframe: one-by-one, -8 dB).
SAME_TONES = 0.01


def carry_chroma(chroma: np.ndarray, own: np.ndarray, luma: np.ndarray, coverage: np.ndarray) -> np.ndarray:
    """A print's `chroma (2, h, w)` (registered, made with its own luma `own (h, w)`) in the film's
    terms: a print's tone curve g (film luma -> print luma) scales its chroma by about g' (the
    curve's slope), so the chroma is divided by that slope, bounded to [1/2, 2]. Measured on the
    data pack's clips against raw Cb/Cr and Cb/Cr scaled by the luma ratio (benchmarks/RESULTS.md).

    g is fitted by quantiles where the print covers the frame (`coverage`): the two lumas, each
    sorted, are its points (a histogram match), and its slope is taken across `_SLOPE_SPAN` of the
    pixels on either side. A fit by the mean print luma in each bin of film luma regresses toward
    the mean wherever the two lumas disagree a little (the JPEG, the print's softness): on a
    narrow histogram its slope came out flat and it amplified a near-gray film's chroma noise by
    up to 1.6x (car-detection.mp4: 3.4 dB below the raw chroma).

    Where the two lumas agree within `SAME_TONES` the picture is the frame colored in the film's
    own tones, not a print, and its chroma is returned as it is."""
    keep = coverage > 0.999
    if keep.sum() < 64 or float(np.abs(own - luma)[keep].mean()) <= SAME_TONES:
        return chroma
    film, printed = np.quantile(luma[keep], _QUANTILES), np.quantile(own[keep], _QUANTILES)
    span = round(_SLOPE_SPAN * (len(_QUANTILES) - 1))
    run, rise = film[2 * span :] - film[: -2 * span], printed[2 * span :] - printed[: -2 * span]
    # Across a run of tones narrower than `_FLAT_RUN` the slope is not known: left at 1 (raw chroma).
    slope = np.where(run > _FLAT_RUN, rise / np.maximum(run, 1e-6), 1.0)
    factor = np.clip(1 / np.maximum(np.interp(luma, film[span:-span], slope), 1e-3), 0.5, 2.0)
    return (chroma * factor[None]).astype(np.float32)


_QUANTILES = np.linspace(0.01, 0.99, 50)  # the tone curve's points: the 1st to the 99th percentile
_SLOPE_SPAN = 0.16  # the slope at a tone: across this share of the covered pixels on either side
_FLAT_RUN = 4 / 255  # tones closer than this (a flat picture) tell no slope


def rank(reference: np.ndarray, frame: np.ndarray) -> tuple[float, float]:
    """How well `reference` registers onto `frame`: `(similarity x coverage, similarity)` after
    an affine registration at `RANK_SIDE` px at most, no refinement (cheaper than `register`).
    The coverage counts: in a pan, a cropped print of one frame is also a crop of the next, as
    similar, but it covers less of it."""
    s = min(1.0, RANK_SIDE / max(frame.shape))
    shrink = lambda y: _resize(y, (max(8, round(y.shape[0] * s)), max(8, round(y.shape[1] * s))))
    found = register(shrink(reference), shrink(frame), dense=False, measure=False)
    return found.similarity * found.coverage, found.similarity


def register(reference: np.ndarray, frame: np.ndarray, *, dense: bool = True, measure: bool = True) -> Registration:
    """`reference (rh, rw)` float32 luma (the print's, any tones) onto `frame (h, w)` float32 luma.

    Starts from the stretch of the reference onto the frame, refines an affine map coarse to fine
    (ECC), and keeps whichever of the two fits better (a pixel-exact frame grab stays exactly
    the stretch); then, with `dense`, a smoothed DIS refinement when it improves the fit. With
    `measure`, the residual is measured (a DIS pass), else left at 0."""
    size, reference_size = frame.shape, reference.shape
    with _one_thread():
        frame_n, reference_n = normalised(frame), normalised(reference)
        start = _stretch(size, reference_size)
        best, (score, coverage) = start, _fit(frame_n, reference_n, start)
        moved = _ecc(frame, reference, start)
        moved_score, moved_coverage = _fit(frame_n, reference_n, moved)
        h, w = size
        corners = np.array([[0, 0, 1], [w - 1, 0, 1], [0, h - 1, 1], [w - 1, h - 1, 1]], dtype=np.float64).T
        if moved_score > score and np.abs((moved - start) @ corners).max() > _SNAP:
            best, score, coverage = moved, moved_score, moved_coverage
        flow = None
        if dense and score > 0:
            refine = _dense(frame_n, reference_n, best, coverage)
            refined_score, refined_coverage = _fit(frame_n, reference_n, best, refine)
            if refined_score > score + 0.01:
                flow, score, coverage = refine.astype(np.float32), refined_score, refined_coverage
        registration = Registration(size, reference_size, best, flow, score, 0.0, float(coverage.mean()))
        if measure:
            registration.residual = _residual(frame_n, reference_n, registration)
    return registration
