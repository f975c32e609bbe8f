"""`remaster bench` (issue 11): the real command on a tiny film, its JSON and its table.

No timing is asserted (benchmarks are not tests): only that every figure is there and sane.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from remaster.errors import ConfigError
from remaster.measure.bench import STAGES, BenchOptions, make_input, plain_transcode

CUDA = pytest.param(
    "cuda", marks=[pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")]
)


def bench(*args, timeout=300):
    return subprocess.run(
        [sys.executable, "-m", "remaster.cli.main", "bench", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.mark.parametrize("device", ["cpu", CUDA])
def test_bench_json_has_every_figure(tmp_path, random_model_file, device):
    result = bench(
        "--sizes",
        "64x48",
        "--frames",
        "10",
        "--batch-size",
        "4",
        "--device",
        device,
        "--model",
        random_model_file,
        "--inputs",
        tmp_path,
        "--cpu-threads",
        "1",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["device"].startswith(device) and report["model"] == "random"
    (row,) = report["runs"]
    assert row["size"] == "64x48" and row["frames"] == 10 and row["flow_provider"] == "dis"
    assert row["end_to_end_fps"] > 0 and row["transcode_fps"] > 0
    assert row["ratio_to_transcode"] == pytest.approx(row["end_to_end_fps"] / row["transcode_fps"], rel=0.01)
    # Every stage is listed; one too quick to time on 10 tiny frames (under 1 ms) has no rate, not an absurd one.
    assert set(row["stage_fps"]) == set(STAGES), row["stage_fps"]
    assert all(v is None or v > 0 for v in row["stage_fps"].values()) and row["stage_fps"]["colorize"] > 0
    assert row["chain_fps"] > 0 and row["projected_minutes_film"] > 0
    assert 50 < row["peak_rss_mib"] < 64 * 1024  # a process with torch loaded, and not absurd
    assert (row["peak_gpu_mib"] is None) == (device == "cpu")
    assert (tmp_path / "bench-64x48-10.mp4").is_file(), "--inputs keeps the made film for the next call"
    assert "64x48" in result.stderr, "progress lines go to stderr with --json"


def test_bench_table_and_reused_input(tmp_path, random_model_file):
    film = make_input(tmp_path / "bench-48x32-6.mp4", 48, 32, 6)
    before = film.stat().st_mtime_ns
    result = bench(
        "--sizes",
        "48x32",
        "--frames",
        "6",
        "--batch-size",
        "6",
        "--device",
        "cpu",
        "--flow",
        "none",
        "--model",
        random_model_file,
        "--inputs",
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    header = next(line for line in lines if "end-to-end" in line)
    assert all(stage in header for stage in STAGES) and "transcode" in header and "RSS MiB" in header
    row = next(line for line in lines if line.split() and line.split()[0] == "48x32")
    assert row.split()[1] == "6"
    assert film.stat().st_mtime_ns == before, "an input of the same size and length is reused"


def test_bench_with_workers(tmp_path, random_model_file):
    """`--workers 2` runs the film's segments in two processes, as `colorize --workers` does."""
    result = bench(
        "--sizes",
        "64x48",
        "--frames",
        "60",
        "--batch-size",
        "4",
        "--device",
        "cpu",
        "--model",
        random_model_file,
        "--inputs",
        tmp_path,
        "--cpu-threads",
        "1",
        "--workers",
        "2",
        "--segment-frames",
        "25",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    (row,) = json.loads(result.stdout)["runs"]
    assert row["frames"] == 60 and row["end_to_end_fps"] > 0
    assert row["execution"]["executor"] == "workers" and row["execution"]["workers"] == 2, row["execution"]


def test_plain_transcode_counts_every_frame(tmp_path):
    film = make_input(tmp_path / "in.mp4", 64, 48, 7)
    result = plain_transcode(film, tmp_path / "out.mp4", "libx264", 18, "veryfast")
    assert result["frames"] == 7 and result["fps"] > 0


def test_bench_refuses_what_it_cannot_measure(tmp_path, random_model_file):
    with pytest.raises(ConfigError, match="precision must be one of"):
        BenchOptions(precision="int8")
    result = bench("--sizes", "64x48", "--device", "cpu", "--precision", "bf16", "--model", random_model_file)
    assert result.returncode == 1 and "needs a CUDA device" in result.stderr and "Traceback" not in result.stderr
    result = bench("--sizes", "64x47", "--device", "cpu")  # a comma-list option: click's usage error
    assert result.returncode == 2 and "expected even sides" in result.stderr
