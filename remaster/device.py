"""Which torch device a run uses: one resolver for every entry point (CLI, API, stages)."""

from __future__ import annotations

import os

import torch

from remaster.errors import ConfigError


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """'auto' (or None) -> CUDA when present, else CPU; asking for CUDA without it is a clear error."""
    if isinstance(device, torch.device):
        requested = device
    elif device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    elif device == "cpu" or str(device).startswith("cuda"):
        requested = torch.device(device)
    else:
        raise ConfigError(f"unknown device {device!r}: expected auto, cpu or cuda")
    if requested.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda was asked for, but torch sees no CUDA GPU: use --device cpu or auto")
    return requested


def cores() -> int:
    """CPU cores this process may run on (a container or taskset may allow fewer than exist)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def worker_devices(workers: int, devices: str | list[str] | None, device: str) -> list[str]:
    """The device of each worker: `devices` round-robin (e.g. "cuda:0,cuda:1"); without it,
    every GPU torch sees round-robin when `device` allows CUDA, else the CPU."""
    if isinstance(devices, str):
        devices = [d.strip() for d in devices.split(",") if d.strip()]
    if not devices:
        if device != "cpu" and torch.cuda.is_available():
            devices = (
                [f"cuda:{i}" for i in range(torch.cuda.device_count())] if device in ("auto", "cuda") else [device]
            )
        else:
            devices = ["cpu"]
    from remaster.device import resolve_device

    for name in dict.fromkeys(devices):
        resolve_device(name)  # a clear error for a device this machine lacks, before any worker starts
    return [devices[k % len(devices)] for k in range(workers)]


def threads_per_worker(workers: int, cpu_threads: int | None) -> int:
    """Torch threads for each of `workers` processes: the cores shared out, so N workers do not
    oversubscribe them (every extra OpenMP thread waits at barriers on a busy machine)."""
    return cpu_threads or max(1, cores() // max(1, workers))
