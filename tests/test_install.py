"""The package as a user installs it (issue 19): a non-editable install into a fresh virtual
environment carries every preset to <prefix>/share/remaster/pipelines, and its `remaster` script,
run outside the checkout, colorizes a clip with `--pipeline restore-reel` read from there."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import make_clip

ROOT = Path(__file__).resolve().parents[1]


def _run(args, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, check=False, **kwargs)


def _can_install() -> str | None:
    """Why this machine cannot make the environment, or None."""
    if importlib.util.find_spec("venv") is None or importlib.util.find_spec("pip") is None:
        return "venv or pip is not available"
    if not (ROOT / "pyproject.toml").is_file():
        return "not a source checkout"
    return None


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A fresh venv holding a non-editable install of a copy of the repository: its prefix.

    torch, PyAV and the rest come from the running environment: `--system-site-packages` brings the
    interpreter's own, and a .pth line adds this environment's site-packages (a venv's packages are
    not the system's) as plain paths, so the checkout's editable install stays out of it."""
    reason = _can_install()
    if reason:
        pytest.skip(reason)
    work = tmp_path_factory.mktemp("install")
    source = work / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    skip = shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc")
    for folder in ("remaster", "pipelines", "models"):
        shutil.copytree(ROOT / folder, source / folder, ignore=skip)
    prefix = work / "venv"
    made = _run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", prefix], timeout=300)
    if made.returncode != 0:
        pytest.skip(f"python -m venv failed: {made.stderr.strip()[-300:]}")
    python = prefix / "bin" / "python"
    purelib = _run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip()
    ours = [p for p in site.getsitepackages() if Path(p).is_dir()]
    (Path(purelib) / "remaster-test-env.pth").write_text("\n".join(ours) + "\n")
    pip = [python, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index", "--no-cache-dir"]
    result = _run([*pip, source], timeout=600, cwd=work)
    if result.returncode != 0 and "No module named pip" in result.stderr:
        pytest.skip("pip is not importable from the new environment")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return prefix


@pytest.mark.slow
def test_every_preset_is_installed(installed):
    shipped = sorted(p.name for p in (installed / "share" / "remaster" / "pipelines").glob("*.toml"))
    assert shipped == sorted(p.name for p in (ROOT / "pipelines").glob("*.toml"))
    assert "restore-reel.toml" in shipped


@pytest.mark.slow
def test_installed_remaster_colorizes_with_restore_reel(installed, tmp_path, random_model_file):
    elsewhere = tmp_path / "elsewhere"  # outside the checkout: nothing of it on the path
    elsewhere.mkdir()
    clip = make_clip(tmp_path / "reel.mp4", frames=10, audio_tracks=1).path
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["OMP_NUM_THREADS"] = "1"
    where = _run(
        [
            installed / "bin" / "python",
            "-c",
            "import remaster, remaster.run.config as c; print(remaster.__file__); print(c.preset_path('restore-reel'))",
        ],
        cwd=elsewhere,
        env=env,
        timeout=120,
    )
    assert where.returncode == 0, where.stderr
    module, preset = where.stdout.split()
    assert Path(module).resolve().is_relative_to(installed.resolve()), f"remaster imported from {module}"
    assert Path(preset) == installed / "share" / "remaster" / "pipelines" / "restore-reel.toml"
    out = tmp_path / "restored.mkv"
    args = [installed / "bin" / "remaster", "colorize", clip, "-o", out, "--pipeline", "restore-reel"]
    args += ["--max-frames", "6", "--model", random_model_file, "--device", "cpu", "--json"]
    result = _run(args, cwd=elsewhere, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    assert report["frames"] == 6 and out.is_file()
    assert report["luma_changed_by"], "restore-reel's restoration ran (its luma is not the archive's)"
