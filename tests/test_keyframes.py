"""A colorist's keyframes (issue 9, item 1): reading them and placing them on the film's frames.

Real images written with OpenCV, real film frames decoded with PyAV: a numbered file is that
frame; any other is matched by luma; every problem is one line before any work.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from conftest import make_clip, shapes_frame

from remaster.errors import InputError
from remaster.media.reader import VideoReader
from remaster.run.keyframes import MATCH_THRESHOLD, read_keyframes


@pytest.fixture(scope="module")
def film(tmp_path_factory):
    return make_clip(
        tmp_path_factory.mktemp("film") / "film.mkv", width=96, height=64, frames=30, audio_tracks=0, codec="ffv1"
    )


def film_lumas(path):
    def batches():
        with VideoReader(path) as reader:
            layout_size = (reader.height // 2, reader.width // 2)
            for batch in reader.batches(8, layout_size):
                yield batch.index, batch.luma()

    return batches


def write_rgb(path, rgb):
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return path


def read(folder, film, **overrides):
    options = {
        "width": film.width,
        "height": film.height,
        "frames": film.frames,
        "matrix": "bt601",
        "film_lumas": film_lumas(film.path),
    }
    return read_keyframes(folder, **{**options, **overrides})


def test_numbered_and_matched_keyframes(tmp_path, film):
    write_rgb(tmp_path / "000004.png", shapes_frame(4, film.width, film.height))
    # Another name, another size (same aspect): matched by content to frame 17, resized.
    big = cv2.resize(
        shapes_frame(17, film.width, film.height), (film.width * 2, film.height * 2), interpolation=cv2.INTER_CUBIC
    )
    write_rgb(tmp_path / "print-from-the-archive.jpg", big)
    keyframes = read(tmp_path, film)
    assert [k.frame for k in keyframes] == [4, 17]
    assert keyframes[0].score is None and keyframes[1].score >= MATCH_THRESHOLD
    assert keyframes[1].chroma.shape == (1, 2, film.height, film.width)
    described = keyframes[1].describe()
    assert {k: described[k] for k in ("file", "frame", "matched", "similarity")} == {
        "file": "print-from-the-archive.jpg",
        "frame": 17,
        "matched": True,
        "similarity": round(keyframes[1].score, 4),
    }
    assert described["registration"]["coverage"] > 0.99  # the whole frame, scaled 2x: registered, nothing cut
    # The chroma is the image's own: a red patch of the frame is red (Cr > 0) in the keyframe.
    red = np.all(shapes_frame(4, film.width, film.height) == (200, 40, 40), axis=-1)
    if red.any():
        assert float(keyframes[0].chroma[0, 1][torch.from_numpy(red)].mean()) > 0.1


@pytest.mark.parametrize(
    "name,make,message",
    [
        ("000099.png", lambda f: shapes_frame(0, f.width, f.height), r"frame 99, but the film has 30 frames \(0..29\)"),
        (
            "000003.png",
            lambda f: np.repeat(shapes_frame(3, f.width, f.height).mean(2, keepdims=True).astype(np.uint8), 3, 2),
            "gray image",
        ),
        (
            "000003.png",
            lambda f: shapes_frame(3, f.width, f.width),
            r"keyframe is 96x96 \(aspect 1.000\), the film is 96x64",
        ),
        (
            "unknown.png",
            lambda f: np.random.default_rng(0).integers(0, 255, (f.height, f.width, 3), dtype=np.uint8),
            r"fits no frame of the film well: the best is frame \d+ with similarity",
        ),
    ],
)
def test_each_problem_is_one_line_before_any_work(tmp_path, film, name, make, message):
    write_rgb(tmp_path / name, make(film))
    with pytest.raises(InputError, match=message):
        read(tmp_path, film)


def test_unreadable_and_empty_folders(tmp_path, film):
    with pytest.raises(InputError, match="no images in the keyframes folder"):
        read(tmp_path, film)
    (tmp_path / "000001.png").write_bytes(b"not a picture")
    with pytest.raises(InputError, match="000001.png: keyframe cannot be read"):
        read(tmp_path, film)
    with pytest.raises(InputError, match="keyframes folder not found"):
        read(tmp_path / "missing", film)
