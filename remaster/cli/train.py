"""`remaster train`: train a colorization network on your photos. Its options are the fields of
`TrainConfig` and `NetConfig` (remaster/net/train.py, network.py): the flags, help and defaults come
from there."""

from __future__ import annotations

import json
from pathlib import Path

import click

from remaster.cli.options import field_options, sections
from remaster.net.network import NetConfig
from remaster.net.train_config import TrainConfig
from remaster.run.config import flag_fields


@click.command()
@click.argument("data_dirs", metavar="DATA_DIR...", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--val",
    "val_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="A folder of held-out color photos (none of them in DATA_DIR): PSNR, SSIM and colorfulness are measured "
    "on them during training and stored in the model's report, and the model of the best validation so far is kept "
    "beside --out as NAME.best.safetensors. Default: no validation.",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(path_type=Path),
    help="Where to write the model (.safetensors); its report goes beside it as NAME.json and its checkpoint as "
    "NAME.ckpt.safetensors.",
)
@field_options(flag_fields({"train": TrainConfig, "net": NetConfig}))
@click.option(
    "--resume",
    is_flag=True,
    help="Continue an interrupted run from OUT's checkpoint: network, optimizer, step, time spent and sampler "
    "state. Use the same --recipe, --widths and --blocks as before.",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print the final report (steps, speed, validation scores, sha256) as JSON."
)
def train(data_dirs, val_dir, out, resume, as_json, **flags):
    """Train a colorization network on DATA_DIR, one or more folders of color photographs.

    Each DATA_DIR is searched recursively for JPEG, PNG, TIFF, WebP and BMP files. The best colors
    for a collection come from photos of that collection's world.

    \b
    Examples:
      remaster train my-photos/ --out models/mine.safetensors
      remaster train my-photos/ --val my-photos-val/ --out models/mine.safetensors --minutes 60
      remaster train my-photos/ --val my-photos-val/ --out models/mine.safetensors --minutes 60 --resume  # after Ctrl-C
      remaster train my-photos/ --out models/mine.safetensors --device cuda --batch-size 64 --steps 20000
      remaster train my-photos/ --out models/small.safetensors --widths 16,32,64,128 --blocks 2 --steps 500
      remaster train my-photos/ more-photos/ --hints --init models/remaster-default.safetensors \\
          --out hinted.safetensors --minutes 90
    """
    from remaster.net.train import train as run_training

    given = sections(flags)
    config = TrainConfig(net=NetConfig(**given["net"]), **given["train"])
    report = run_training(config, list(data_dirs), out, val_dir=val_dir, resume=resume)
    click.echo(json.dumps(report, indent=2) if as_json else format_training(report))


def format_training(report: dict) -> str:
    lines = [
        f"wrote {report['out']} ({report['parameters']:,} parameters, {report['steps']} steps, "
        f"{report['images_per_second']} img/s)"
    ]
    if report["validation"]:
        v = report["validation"]
        lines.append(
            f"validation: PSNR {v['psnr']:.2f} dB (gray {v['psnr_gray']:.2f}), SSIM {v['ssim']:.4f} "
            f"(gray {v['ssim_gray']:.4f}), colorfulness {v['colorfulness']:.1f} vs truth "
            f"{v['colorfulness_truth']:.1f} ({100 * v['colorfulness_ratio']:.0f}%)"
        )
    return "\n".join(lines)
