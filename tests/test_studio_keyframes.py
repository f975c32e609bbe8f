"""The studio's keyframes as `--keyframes` reads them (issue 21): named by their frame, 16-bit
PNGs when the film has more than 8 bits, so the network's chroma is not rounded to 8 bits on its
way to the render. Real films (10-bit and 8-bit FFV1) through real PyAV; read back by
`run/keyframes.py`'s own `read_keyframes`."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from conftest import make_clip

from remaster.color import rgb_to_chroma
from remaster.run.keyframes import read_keyframes
from remaster.studio.engine import Engine
from remaster.studio.film import Film
from remaster.studio.project import Project


@pytest.mark.parametrize(("pix_fmt", "dtype"), [("yuv420p10le", np.uint16), ("yuv420p", np.uint8)])
def test_a_keyframe_keeps_the_films_bits(tmp_path, pix_fmt, dtype):
    options = {"width": 64, "height": 48, "frames": 6, "audio_tracks": 0, "codec": "ffv1", "pix_fmt": pix_fmt}
    clip = make_clip(tmp_path / "film.mkv", **options)
    film = Film(clip.path)
    project = Project(tmp_path / "film.mkv.studio", source_name=film.name, frames=film.frames)
    engine = Engine(film, project, device="cpu")
    project.add(2, {"op": "point", "x": 20.0, "y": 30.0, "color": "#d02818"})
    engine.mark_keyframe(2)
    written = cv2.imread(str(project.keyframe_path(2)), cv2.IMREAD_UNCHANGED)
    assert written.dtype == dtype and written.shape == (48, 64, 3)

    (keyframe,) = read_keyframes(project.folder, width=64, height=48, frames=film.frames, matrix=film.matrix)
    assert keyframe.frame == 2
    steered = rgb_to_chroma(engine.steered_rgb(2), film.matrix)  # (1, 2, H, W), as the page made it
    error = float((keyframe.chroma - steered).abs().max())
    assert error < (1e-4 if dtype is np.uint16 else 4e-3), error  # 16-bit: no 8-bit rounding on the way
