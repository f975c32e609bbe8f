"""A reference dropped in the studio, matched and registered as `--keyframes` does it
(run/keyframes.py, with stages/keyframes/register.py's public functions):

- matched: the frames of the current shot near the frame it was dropped on (`MATCH_REACH` each
  way) are ranked by the tone-invariant signature, the best `CANDIDATES` are registered cheaply
  (`register.rank`), and the one it registers to best is its frame; below `MATCH_THRESHOLD`
  after registration it is refused in one line, naming the best frame and its score;
- registered: an affine map (a crop, a scale, a small rotation) and a smoothed dense refinement,
  so its colors land where the film has them; the transform, the residual and the coverage are
  kept in `project.json` and shown in the page;
- kept as the reference warped onto its frame, RGBA with the coverage as alpha
  (`references/NNNNNN.png`): the page's overlay shows it as it is, where it covers the frame;
- used as the frame's colors or as hints, always in the film's terms (`reference_chroma`): its
  chroma, divided by its tone curve's slope when its tones are not the film's
  (`register.carry_chroma`), with the film frame's own luma.

The whole film is not scanned (`--keyframes` does it in the render's first pass): a colorist drops
a reference on the frame it shows, and a neighbourhood of a shot is where a mistaken frame lies.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from remaster.color import rgb_to_chroma, rgb_to_luma
from remaster.errors import InputError
from remaster.run.keyframes import ASPECT_TOLERANCE, MATCH_THRESHOLD
from remaster.stages.keyframes import register as reg

MATCH_REACH = 48  # frames each way of the dropped-on frame, within its shot, that may be its frame
CANDIDATES = 8  # registered cheaply after the signature's ranking (as --keyframes does)
WORK_SIDE = 1024  # long side the matching and registration run at, at most (as --keyframes does)


def _shrink(image: np.ndarray, side: int = WORK_SIDE) -> np.ndarray:
    h, w = image.shape[:2]
    s = min(1.0, side / max(h, w))
    if s == 1.0:
        return image
    return cv2.resize(image, (max(8, round(w * s)), max(8, round(h * s))), interpolation=cv2.INTER_AREA)


def luma_of(rgb: np.ndarray) -> np.ndarray:
    """`(h, w, 3)` float32 RGB in [0, 1] -> `(h, w)` float32 BT.601 luma: tones only, for structure."""
    return rgb_to_luma(torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None])[0, 0].numpy()


def check_aspect(rgb: np.ndarray, width: int, height: int) -> None:
    h, w = rgb.shape[:2]
    if abs(w / h - width / height) > ASPECT_TOLERANCE * width / height:
        raise InputError(
            f"reference is {w}x{h} (aspect {w / h:.3f}), the frame is {width}x{height} "
            f"(aspect {width / height:.3f}); crop it to the frame"
        )


def match(source, index: int, rgb: np.ndarray) -> tuple[int, float]:
    """The frame near `index` in its shot that the reference `rgb` ((h, w, 3) float32) fits best,
    and its similarity after a cheap registration; a one-line `InputError` below `MATCH_THRESHOLD`."""
    shot = source.shot_of(index)
    start, end = max(shot.start, index - MATCH_REACH), min(shot.end, index + MATCH_REACH + 1)
    height, width = source.frame(index).shape
    size = reg.signature_size(height, width)
    reference = luma_of(_shrink(rgb, reg.RANK_SIDE))
    wanted = reg.signature(reference, size)
    signatures, lumas = [], []  # each frame's signature, and its luma at the ranking's size (a few KB)
    for first in range(start, end, 8):  # a few frames at a time: a shot's frames are never all held
        chunk = source.stretch(first, min(8, end - first)) if source.kind == "film" else [source.frame(index)]
        signatures += [reg.signature(luma, size) for luma in chunk]
        lumas += [_shrink(luma, reg.RANK_SIDE) for luma in chunk]
    near = lambda k: -abs(start + k - index)  # among equals (a still shot), the frame it was dropped on
    ranked = sorted(
        ((reg.signature_similarity(mine, wanted), near(k), k) for k, mine in enumerate(signatures)),
        reverse=True,
    )[:CANDIDATES]
    *_, similarity, _, k = max((*reg.rank(reference, lumas[k]), near(k), k) for *_, k in ranked)
    found = start + k
    if similarity < MATCH_THRESHOLD:
        raise InputError(
            f"the reference fits no frame near frame {index} well: the best is frame {found} with similarity "
            f"{similarity:.3f} after registration (at least {MATCH_THRESHOLD} needed); is it of this shot?"
        )
    return found, similarity


def place(rgb: np.ndarray, luma: np.ndarray) -> tuple[np.ndarray, dict]:
    """The reference `rgb` ((h, w, 3) float32 in [0, 1]) registered onto the frame whose luma is
    `luma` ((H, W) float32): `(RGBA (H, W, 4) uint8, alpha = coverage; registration's describe())`."""
    height, width = luma.shape
    small = _shrink(rgb)  # the registration maps the frame onto the reference as registered: shrunk
    registration = reg.register(luma_of(small), _shrink(luma)).at((height, width))
    warped, coverage = registration.warp(np.ascontiguousarray(small))  # (H, W, 3), (H, W)
    rgba = np.concatenate((warped, coverage[..., None]), -1)
    return (np.clip(rgba, 0, 1) * 255).round().astype(np.uint8), registration.describe()


def reference_chroma(rgba: np.ndarray, luma: np.ndarray, matrix: str) -> tuple[torch.Tensor, np.ndarray]:
    """A registered reference (`place`'s RGBA) in the film's terms on the frame whose luma is `luma`
    ((H, W)): `(chroma (1, 2, H, W), coverage (H, W) in [0, 1])`. A print's other tone curve is
    undone as `--keyframes` undoes it (`register.carry_chroma`); a frame colored with the film's own
    tones keeps its chroma as it is."""
    rgb = torch.from_numpy(rgba[..., :3].astype(np.float32) / 255).permute(2, 0, 1)[None]  # (1, 3, H, W)
    coverage = rgba[..., 3].astype(np.float32) / 255
    own = rgb_to_luma(rgb, matrix)[0, 0].numpy()
    chroma = rgb_to_chroma(rgb, matrix)[0].numpy()  # (2, H, W)
    chroma = reg.carry_chroma(chroma, own, luma.astype(np.float32), coverage)  # kept where tones agree
    return torch.from_numpy(np.ascontiguousarray(chroma, np.float32))[None], coverage
