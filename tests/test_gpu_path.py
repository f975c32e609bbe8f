"""The GPU path (issue 11): NVDEC decoding with its fallback, stage timing without per-stage
syncs, chroma back through pinned memory, bf16 on CUDA. Each runs on the CPU where it can (the
fallbacks and the CPU branches); the `cuda` ones need a GPU and are skipped without one
(benchmarks/device.sh runs them there)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import decode_all

from remaster.errors import ConfigError
from remaster.media.assemble import OutputLayout, assemble_chroma, assemble_chroma_async
from remaster.media.reader import VideoReader
from remaster.net.colorizer import Colorizer
from remaster.run.pipeline import colorize_video, make_config
from remaster.stages.shots import ShotDetector
from remaster.timing import StageTimer

HAS_CUDA = torch.cuda.is_available()
cuda = pytest.mark.skipif(not HAS_CUDA, reason="no CUDA GPU")
DEVICES = ["cpu", pytest.param("cuda", marks=[pytest.mark.cuda, cuda])]


def codes_of(reader: VideoReader) -> list[np.ndarray]:
    return [b.y.numpy().copy() for b in reader.batches(4, (1, 1))]


def test_nvdec_gives_the_cpu_decoders_codes_or_falls_back_with_a_note(clip_h264):
    with VideoReader(clip_h264.path) as reader:
        expected = codes_of(reader)
        assert reader.decoder == "cpu" and reader.decoder_note is None
    with VideoReader(clip_h264.path, decoder="nvdec") as reader:
        got = codes_of(reader)
        if reader.decoder == "cpu":  # no NVDEC here: said in one line, and the CPU decoded
            assert (
                reader.decoder_note and "decoded on the CPU" in reader.decoder_note and "\n" not in reader.decoder_note
            )
        else:
            assert reader.decoder_note is None
        assert reader.describe()["decoder"] == reader.decoder
    assert len(got) == len(expected) and all(np.array_equal(a, b) for a, b in zip(got, expected))


def test_unknown_decoder_is_refused(clip_h264):
    with pytest.raises(ConfigError, match="decoder must be one of cpu, nvdec"):
        VideoReader(clip_h264.path, decoder="vaapi")
    with pytest.raises(ConfigError, match="decoder must be one of cpu, nvdec"):
        make_config(decoder="gpu")


def test_nvdec_run_keeps_luma_and_says_how_it_decoded(tmp_path, clip_h264):
    device = "cuda" if HAS_CUDA else "cpu"
    colorizer = Colorizer.random(seed=0, device=device)
    out = tmp_path / "out.mp4"
    report = colorize_video(
        clip_h264.path,
        out,
        make_config(decoder="nvdec", flow="dis", codec="libx264", crf=0, batch_size=4),
        progress=False,
        colorizer=colorizer,
    )
    source, result = decode_all(clip_h264.path), decode_all(out)
    assert len(result.planes) == len(source.planes) and result.times == source.times
    for index, (a, b) in enumerate(zip(source.planes, result.planes)):
        assert np.array_equal(a[0], b[0]), f"frame {index}: Y plane differs"
    decoded_by = report.source["decoder"]
    assert decoded_by in ("cpu", "nvdec")
    assert (decoded_by == "cpu") == any("NVDEC" in n for n in report.notices), report.notices


@pytest.mark.parametrize("device", DEVICES)
def test_stage_timer_counts_each_stage(device):
    timer = StageTimer(device, names=["a"])
    x = torch.ones(256, 256, device=device)
    for _ in range(3):
        timer.collect()  # as the chain does once per batch: never waits
        with timer("a"):
            x = x @ x / 256
        with timer("b"):
            x = x + 1
    seconds = timer.seconds  # waits for what is pending
    assert set(seconds) == {"a", "b"} and seconds["a"] > 0 and seconds["b"] > 0
    assert not timer._pending


@pytest.mark.parametrize("device", DEVICES)
def test_shot_detector_counts_cuts_on_its_device(device):
    from test_shots import scene

    shots = ShotDetector(device=device)
    flags = torch.cat([shots(part.to(device)) for part in torch.cat([scene(1, 6), scene(2, 6)]).split(4)])
    assert isinstance(shots.cuts, int) and shots.cuts == int(flags.sum()) == 1


@pytest.mark.cuda
@cuda
def test_assemble_on_cuda_matches_the_cpu_through_pinned_memory():
    layout = OutputLayout("yuv420p", 8, False, "bt709", (1, 1), "yuv420p", 64, 48)
    generator = torch.Generator().manual_seed(3)
    luma = torch.rand(4, 1, 48, 64, generator=generator)
    chroma = torch.rand(4, 2, 16, 24, generator=generator) - 0.5
    expected = assemble_chroma(luma, chroma, layout)
    codes, ready = assemble_chroma_async(luma.cuda(), chroma.cuda(), layout)
    assert ready is not None and codes.device.type == "cpu" and codes.is_pinned()
    ready()
    assert (codes.int() - expected.int()).abs().max() <= 1  # GPU and CPU float rounding may differ by a code


@pytest.mark.cuda
@cuda
def test_cuda_colorizer_runs_bf16_channels_last():
    colorizer = Colorizer.random(seed=0, device="cuda")
    if torch.cuda.is_bf16_supported():
        assert colorizer.precision == "bfloat16"
    chroma = colorizer.chroma(torch.rand(2, 1, 64, 96, device="cuda"))
    assert chroma.device.type == "cuda" and chroma.dtype == torch.float32 and torch.isfinite(chroma).all()
    colorizer.set_precision("fp32")
    assert colorizer.precision == "float32"


def test_cpu_precision_is_float32_only():
    colorizer = Colorizer.random(seed=0)
    assert colorizer.precision == "float32"
    with pytest.raises(ConfigError, match="needs a CUDA device"):
        colorizer.set_precision("bf16")
