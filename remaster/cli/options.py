"""Options every command shares, so each is written once: the device choice, comma lists."""

from __future__ import annotations

import click

DEVICE = click.Choice(["auto", "cpu", "cuda"])  # one device choice for every command
