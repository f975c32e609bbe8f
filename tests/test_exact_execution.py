"""The output is a function of input, model and options (DESIGN promise 8, issue 19): how a run
is executed (one process with two torch threads, two worker processes with one each) and how many
cores decode the input change no byte of the film.

Three causes were found and are pinned here: the network's one small matrix product, which MKL
split by thread count (`net.network.one_cpu_thread`); the decoder's slice threads, whose
concealment of damaged data raced and depended on the core count (the reader decodes on one
thread); Matroska's random UIDs and date (the muxer writes bit-exact headers).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import decode_all, make_clip
from test_corpus import run_cli
from test_resume import assert_same_film


@pytest.fixture(scope="module")
def film(tmp_path_factory):
    """Two segments at --segment-frames 24: a sync frame every 12 frames, shapes moving, sound."""
    return make_clip(
        tmp_path_factory.mktemp("film") / "film.mp4",
        width=160,
        height=120,
        frames=48,
        audio_tracks=1,
        options={"preset": "fast", "crf": "20", "g": "12"},
    )


def _colorize(film, out, *extra):
    # Default options (the shipped model, auto flow: DIS on a CPU) but the lossless codec, so the
    # file holds exactly the pictures the run made.
    args = ["colorize", film.path, "-o", out, "--device", "cpu", "--codec", "ffv1", "--segment-frames", "24"]
    result = run_cli([*args, "--json", *extra])
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_a_plain_run_on_two_threads_and_two_workers_give_the_same_bytes(tmp_path, film):
    plain, workers = tmp_path / "plain.mkv", tmp_path / "workers.mkv"
    report = _colorize(film, plain, "--cpu-threads", "2")
    assert report["segments"] == 2
    _colorize(film, workers, "--workers", "2")
    assert_same_film(decode_all(workers), decode_all(plain))
    assert workers.read_bytes() == plain.read_bytes()  # headers too: no random UIDs, no date


def test_the_colorizer_gives_the_same_chroma_on_one_and_two_threads():
    from remaster.net.colorizer import Colorizer

    colorizer = Colorizer.load(None, device="cpu")
    luma = torch.rand(8, 1, 240, 320, generator=torch.Generator().manual_seed(0))  # a batch of 8 frames
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = colorizer.chroma(luma)
        torch.set_num_threads(2)
        two = colorizer.chroma(luma)
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(one, two), (one - two).abs().max().item()


def test_the_reader_decodes_on_one_thread(tmp_path, film):
    from remaster.media.reader import VideoReader

    reader = VideoReader(film.path)
    try:
        context = reader.video.codec_context
        assert (context.thread_count, str(context.thread_type)) in ((1, "NONE"), (1, "ThreadType.NONE")), (
            context.thread_count,
            context.thread_type,
        )
        assert np.asarray(next(iter(reader.batches(4, (film.height, film.width)))).y).shape[0] == 4
    finally:
        reader.close()
