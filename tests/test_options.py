"""One source of truth for options (issue 19): the flags of `train`, `bench` and `image` come from
their dataclasses as `colorize`'s do, `--pipeline` lists the presets that exist, every comma list
fails the same way (click's usage error, exit 2), and `image --compare` adds a missing comparison."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from remaster.cli.main import main
from remaster.measure.bench import BenchOptions, run_config
from remaster.net.network import NetConfig
from remaster.net.train_config import TrainConfig
from remaster.run.config import available_presets, flag_fields
from remaster.stages.temporal import TemporalConfig


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.mark.parametrize(
    "args, option",
    [
        (("frames", "film.mp4", "--at", "0,twelve", "-o", "keys"), "--at"),
        (("train", "photos", "--out", "m.safetensors", "--widths", "8,8,16"), "--widths"),
        (("train", "photos", "--out", "m.safetensors", "--widths", "8,8,x,16"), "--widths"),
        (("bench", "--frames", "10,ten"), "--frames"),
        (("bench", "--sizes", "640x480,wide"), "--sizes"),
        (("bench", "--sizes", "64x47"), "--sizes"),  # parses, but no film has an odd side
        (("image", "g.png", "-o", "out", "--hint", "20,30"), "--hint"),
        (("image", "g.png", "-o", "out", "--hint", "20,30,red"), "--hint"),
        (("colorize", "film.mp4", "-o", "out.mp4", "--devices", ","), "--devices"),
    ],
)
def test_a_malformed_comma_list_is_a_usage_error(tmp_path, args, option):
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert f"Invalid value for '{option}'" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_comma_list_messages_say_what_was_expected():
    assert "expected frame numbers separated by commas, e.g. 0,120,300, got '0,twelve'" in invoke(
        "frames", "f.mp4", "--at", "0,twelve", "-o", "k"
    ).output.replace("\n", " ")
    widths = invoke("train", "p", "--out", "m.safetensors", "--widths", "8,8,16").output
    assert "expected four comma-separated integers, got '8,8,16'" in widths
    assert "expected #rrggbb" in invoke("image", "g.png", "-o", "o", "--hint", "20,30,red").output
    assert "expected even sides" in invoke("bench", "--sizes", "64x47").output


def test_train_flags_are_the_config_fields():
    """Every TrainConfig and NetConfig field with a help is a flag of `train`, its default shown."""
    help_text = " ".join(invoke("train", "--help").output.split())
    rows = flag_fields({"train": TrainConfig, "net": NetConfig})
    assert {f.name for _, f, _ in rows} >= {"steps", "batch_size", "lr", "device", "init", "widths", "blocks", "hints"}
    for _, f, flag in rows:
        assert f"{flag} " in help_text, flag
        default = f.default
        if default not in (None, "", False):
            shown = ",".join(map(str, default)) if isinstance(default, tuple) else str(default)
            assert f"[default: {shown}]" in help_text, (flag, shown)


def test_bench_takes_the_runs_defaults():
    """`bench --flow` is the run's --flow: absent, the config's default (auto), not a copy of its own."""
    assert BenchOptions().flow is None
    config = run_config(BenchOptions())
    assert config.temporal.flow == TemporalConfig().flow == "auto"
    assert run_config(BenchOptions(flow="none", extra={"segment_frames": 40})).pipeline.segment_frames == 40
    help_text = " ".join(invoke("bench", "--help").output.split())
    flow = help_text[help_text.index("--flow [auto|raft|raft-small|dis|none]") : help_text.index("--flow-weights")]
    assert flow.endswith("[default: auto] "), flow


def test_pipeline_help_lists_every_preset():
    presets = available_presets()
    assert {"film-reel", "news-footage", "fast", "restore-reel"} <= set(presets)
    help_text = " ".join(invoke("colorize", "--help").output.split())
    assert f"A preset ({', '.join(presets)}) or a .toml file" in help_text


def test_train_cli_builds_the_config_from_its_flags(tmp_path):
    """A real (two-step) run: the flags given land in the model's stored config, the rest are the
    dataclass defaults."""
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        cv2.imwrite(str(photos / f"p{i}.png"), rng.integers(0, 255, (40, 40, 3), dtype=np.uint8))
    out = tmp_path / "m.safetensors"
    args = ["train", photos, "--out", out, "--steps", "2", "--batch-size", "2", "--crop", "32", "--cache-size", "32"]
    args += ["--widths", "8,8,16,16", "--blocks", "1", "--device", "cpu", "--workers", "1", "--seed", "3", "--json"]
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    stored = json.loads(out.with_suffix(".json").read_text())["training"]["config"]
    bins = stored["net"]["num_bins"]  # the training data's gamut sets it
    expected = TrainConfig(
        net=NetConfig(widths=(8, 8, 16, 16), blocks=1, num_bins=bins),
        steps=2,
        batch_size=2,
        crop=32,
        cache_size=32,
        device="cpu",
        workers=1,
        seed=3,
    )
    assert stored == json.loads(json.dumps(dataclasses.asdict(expected)))


def test_image_compare_after_a_plain_run_adds_only_the_comparison(tmp_path, random_model_file):
    cv2.imwrite(str(tmp_path / "x.png"), np.tile(np.linspace(30, 220, 64, dtype=np.uint8), (48, 1)))
    args = ("image", tmp_path / "x.png", "-o", tmp_path / "img", "--model", random_model_file, "--device", "cpu")
    assert invoke(*args).exit_code == 0
    output = tmp_path / "img" / "x.png"
    before = (output.read_bytes(), output.stat().st_mtime_ns)
    result = invoke(*args, "--compare")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "img" / "x-compare.png").is_file()
    assert (output.read_bytes(), output.stat().st_mtime_ns) == before, "the existing output is left alone"
    assert f"{output} exists and is kept; writing only its comparison" in result.output
    again = invoke(*args, "--compare")  # everything asked for is there
    assert again.exit_code == 1 and "x.png: already exists (use --force to overwrite)" in again.output
    assert invoke(*args, "--compare", "--force").exit_code == 0


def test_bench_says_what_it_measures_on_stderr(tmp_path, random_model_file):
    result = subprocess.run(
        [sys.executable, "-m", "remaster.cli.main", "bench", "--sizes", "48x32", "--frames", "4", "--batch-size", "4"]
        + ["--device", "cpu", "--flow", "none", "--model", str(random_model_file), "--inputs", str(tmp_path)]
        + ["--cpu-threads", "1", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["runs"][0]["size"] == "48x32", "stdout holds only the JSON"
    lines = result.stderr.splitlines()
    for step in ("loading the model", "48x32: making the input film", "48x32: plain transcode", "pipeline run 1 of 1"):
        assert any(step in line for line in lines), (step, result.stderr)
