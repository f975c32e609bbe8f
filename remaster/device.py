"""Which torch device a run uses: one resolver for every entry point (CLI, API, stages)."""

from __future__ import annotations

import torch

from .errors import ConfigError


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
