"""A broadcast capture whose picture size changes mid-stream keeps every frame (the later ones
fitted to the first size, with a notice), and `SourceFormat.fitted_y_codes` on its own.

The archive formats themselves (DV, MPEG-2 PS, MJPEG, ProRes, v210, DNxHR in MXF, AV1) are cases
of the corpus (tests/make_corpus.py), checked by tests/test_corpus.py.
"""

from __future__ import annotations

import json
from fractions import Fraction

import av
import numpy as np
from make_corpus import _frames, _size_change_ts
from test_corpus import _copied_packets, _video_truth, run_cli

from remaster.media.formats import SourceFormat, fitted_size
from remaster.media.reader import VideoReader
from remaster.run.report import size_notice


def test_fitted_size_keeps_aspect_on_even_sides():
    assert fitted_size(480, 270, 640, 360) == (640, 360)  # same aspect: scaled, no bars
    assert fitted_size(96, 54, 64, 48) == (64, 36)  # wider: letterbox
    assert fitted_size(48, 48, 64, 48) == (48, 48)  # narrower: pillarbox
    assert fitted_size(1920, 1080, 33, 17) == (30, 17)  # odd target side: not rounded to even


def _frame(width, height, pix_fmt):
    return next(_frames(1, width, height, pix_fmt))


def test_fitted_y_codes_pillarbox_and_format_change():
    first = _frame(64, 48, "yuv420p")
    source = SourceFormat.from_frame(first)
    narrow = _frame(32, 48, "yuv420p")  # 2:3 into 4:3: bars left and right, picture as is
    codes = source.fitted_y_codes(narrow)
    assert codes.shape == (48, 64) and codes.dtype == np.uint8
    assert (codes[:, :16] == 16).all() and (codes[:, -16:] == 16).all()
    truth = np.frombuffer(narrow.planes[0], np.uint8).reshape(-1, narrow.planes[0].line_size)[:48, :32]
    assert np.abs(codes[:, 16:48].astype(int) - truth).max() <= 1
    ten = _frame(64, 48, "yuv420p10le")  # same size, other depth: converted, Y within a code
    codes = source.fitted_y_codes(ten)
    truth = np.frombuffer(ten.planes[0], "<u2").reshape(-1, ten.planes[0].line_size // 2)[:48, :64].astype(int) / 4
    assert np.abs(codes.astype(int) - truth).max() <= 1
    full = SourceFormat.from_frame(_frame(64, 48, "yuvj420p"))
    assert (full.fitted_y_codes(narrow)[:, :16] == 0).all()  # full-range black


def test_size_change_mid_stream_keeps_every_frame(tmp_path, random_model_file):
    """640x360 for 50 frames, then 480x270 for 50 (one PID, MPEG-TS, MP2 sound): 100
    frames out, the first 50 Y planes bit-exact (FFV1), every time and sound packet kept, and
    the report says which frames were scaled."""
    source = _size_change_ts(tmp_path / "capture.ts", [(640, 360, 50), (480, 270, 50)])
    truth_planes, truth_times = _video_truth(source)
    assert len(truth_planes) == 100 and truth_planes[50].shape == (270, 480)
    with VideoReader(source) as reader:
        assert sum(len(b) for b in reader.batches(16, (180, 320))) == 100
        assert reader.resized == [[50, 50, "480x270 yuv420p"]]
        notice = (
            "capture.ts: 50 frames of 480x270 scaled to 640x360 (aspect kept): "
            "the picture size changed mid-stream at frame 50"
        )
        assert size_notice(reader.path, reader.source, reader.resized) == [notice]
    output = tmp_path / "out.mkv"
    result = run_cli(
        [
            "colorize",
            source,
            "-o",
            output,
            "--model",
            random_model_file,
            "--device",
            "cpu",
            "--flow",
            "dis",
            "--codec",
            "ffv1",
            "--json",
        ],
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["frames"] == 100 and notice in report["notices"]
    planes, times = _video_truth(output)
    # Matroska stores milliseconds: the TS's 1/90000 s times come back rounded to them (the
    # corpus's size-change-ts case checks them exactly, in MP4).
    assert len(planes) == 100 and times == [Fraction(round(t * 1000), 1000) for t in truth_times]
    assert all(np.array_equal(a, b) for a, b in zip(truth_planes[:50], planes[:50]))
    assert all(p.shape == (360, 640) for p in planes)
    assert _copied_packets(output) == _copied_packets(source) != []
    with av.open(str(output)) as container:
        assert container.streams.video[0].codec_context.name == "ffv1"
