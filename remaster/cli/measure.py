"""The measuring commands: `remaster bench` (throughput) and `remaster eval` (quality).

Kept apart from main.py so each command module stays small; main.py registers them on `main`.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from remaster.cli.options import DEVICE, field_options, sections
from remaster.measure.bench import RUN_OPTIONS, BenchOptions
from remaster.run.config import DOUBT_HELP, flag_fields


@click.command()
@field_options(flag_fields({"bench": BenchOptions}))
@field_options(flag_fields(), only=(*RUN_OPTIONS, "decoder", "segment_frames"))
@click.option(
    "--json", "as_json", is_flag=True, help="Print the results as JSON (end_to_end_fps, transcode_fps, ... per size)."
)
def bench(as_json, **flags):
    """Measure throughput: fps per stage and end to end, against a plain transcode of the same file.

    The plain transcode (same encoder and settings, sound copied) is the pipeline's physical
    limit; the ratio between the two is the number to compare across machines. Also reports the
    colorize + shots + temporal stages alone, peak CPU memory (RSS) and peak GPU memory. What it
    is measuring goes to stderr as it goes.

    \b
    Examples:
      remaster bench                                  # sizes suited to the device
      remaster bench --sizes 1920x1080 --frames 300 --device cuda --flow raft-small --json
      remaster bench --clip reel.mp4 --sizes 3840x2160 --frames 48
    """
    from remaster.measure.bench import format_table, run_bench

    given = sections(flags)
    run = {name: value for section in given if section != "bench" for name, value in given[section].items()}
    own = {name: run.pop(name) for name in (*RUN_OPTIONS, "decoder") if name in run}
    options = BenchOptions(**given["bench"], **own, extra=run)
    say = lambda line: click.echo(line, err=True)  # stderr: --json keeps stdout for the results
    results = run_bench(options, log=(lambda row: say(f"bench: {row}")) if as_json else None, progress=say)
    click.echo(json.dumps(results, indent=2) if as_json else format_table(results))


@click.group(name="eval")
def eval_group():
    """Measure color quality (images) and temporal consistency (videos)."""


@eval_group.command(name="images")
@click.argument("truth_dir", type=click.Path(path_type=Path))
@click.option(
    "--model", type=click.Path(path_type=Path), default=None, help="A .safetensors model (default: the shipped model)."
)
@click.option("--device", type=DEVICE, default="auto", show_default=True)
@click.option(
    "--long-side",
    type=int,
    default=512,
    show_default=True,
    help="Scale ground truth down to this long side first (0: full size).",
)
@click.option(
    "--sheet",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Also write a contact sheet (JPEG/PNG) of the 8 worst and 8 best photos by gain over gray: "
    "gray | ours | truth.",
)
@click.option("--doubt", type=float, default=None, help=DOUBT_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print summary and per-image scores as JSON.")
def eval_images(truth_dir, model, device, long_side, sheet, doubt, as_json):
    """Score the model on color photos: gray them, colorize, compare with the truth.

    Prints PSNR and SSIM of the model and of the gray baseline, the outputs' colorfulness
    (Hasler & Süsstrunk 2003) against the ground truth's, how many photos beat gray and the
    worst ones.

    \b
    Examples:
      remaster eval images my-photos-val/ --json
      remaster eval images my-photos-val/ --sheet gallery.jpg
    """
    from remaster.measure.images import gallery_sheet
    from remaster.media.stills import write_image
    from remaster.net.colorizer import Colorizer
    from remaster.net.validate import evaluate_images

    colorizer = Colorizer.load(model, device=device, doubt=doubt)
    result = evaluate_images(
        colorizer, truth_dir, long_side=long_side, progress=not as_json, keep=(lambda name: True) if sheet else None
    )
    kept = result.pop("kept")
    result["model"] = colorizer.describe()
    if sheet:
        write_image(sheet, gallery_sheet(result["images"], kept), force=True)
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    s = result["summary"]
    click.echo(f"{s['images']} images at long side {long_side}, model {colorizer.name}")
    click.echo(
        f"  PSNR          {s['psnr']:.2f} dB   gray baseline {s['psnr_gray']:.2f} dB   gain {s['psnr_gain']:+.2f} dB"
    )
    click.echo(f"  SSIM          {s['ssim']:.4f}     gray baseline {s['ssim_gray']:.4f}")
    click.echo(
        f"  colorfulness  {s['colorfulness']:.1f}       ground truth {s['colorfulness_truth']:.1f}   "
        f"ratio {100 * s['colorfulness_ratio']:.0f}%"
    )
    click.echo(
        f"  beat gray     {s['beat_gray']} of {s['images']}   median gain {s['gain_median']:+.2f} dB   "
        f"10th percentile {s['gain_p10']:+.2f} dB"
    )
    click.echo("  worst         " + ", ".join(f"{w['image']} {w['psnr_gain']:+.1f} dB" for w in s["worst"]))
    if sheet:
        click.echo(f"  gallery       {sheet}")


@eval_group.command(name="video")
@click.argument("output", type=click.Path(path_type=Path))
@click.option(
    "--truth", type=click.Path(path_type=Path), default=None, help="The true-color original, for PSNR and SSIM."
)
@click.option(
    "--input",
    "bw_input",
    type=click.Path(path_type=Path),
    default=None,
    help="The black-and-white input to take the flow from (default: the output's own luma, which is the input's).",
)
@click.option(
    "--flow",
    type=click.Choice(["dis", "raft", "raft-small"]),
    default="dis",
    show_default=True,
    help="Flow provider for the warping error.",
)
@click.option("--device", type=DEVICE, default="cpu", show_default=True)
@click.option(
    "--long-side", type=int, default=None, help="Scale frames down to this long side first (default: full size)."
)
@click.option("--max-frames", type=int, default=None, help="Score only the first N frames.")
@click.option("--json", "as_json", is_flag=True, help="Print the scores as JSON.")
def eval_video(output, truth, bw_input, flow, device, long_side, max_frames, as_json):
    """Score a colorized video's temporal consistency (and fidelity, given the truth).

    Warping error (Lai et al. 2018: flow on the input frames, occlusions and motion boundaries
    masked; lower is steadier), CDC (Jensen-Shannon divergence of color histograms at frame
    distances 1, 2, 4; lower is steadier), colorfulness, and with --truth PSNR and SSIM per frame.

    \b
    Examples:
      remaster eval video reel-color.mp4
      remaster eval video per-frame.mp4 --truth original-color.mp4 --json
    """
    from remaster.measure.video import evaluate_video

    result = evaluate_video(
        output,
        truth=truth,
        input_luma_source=bw_input,
        flow=flow,
        device=device,
        long_side=long_side,
        max_frames=max_frames,
    )
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    click.echo(
        f"{result['frames']} frames at {result['size'][0]}x{result['size'][1]}, "
        f"flow {result['flow']} on {result['flow_from']}"
    )
    truth_scores = result.get("truth", {})
    for key, label, fmt in (
        ("warping_error", "warping error", ".6f"),
        ("cdc", "CDC", ".5f"),
        ("colorfulness", "colorfulness", ".1f"),
    ):
        value, reference = result[key], truth_scores.get(key)
        line = f"  {label:<14}{'n/a' if value is None else format(value, fmt)}"
        if reference is not None:
            line += f"   ground truth {format(reference, fmt)}"
        click.echo(line)
    if truth is not None:
        click.echo(f"  PSNR          {result['psnr']:.2f} dB")
        click.echo(f"  SSIM          {result['ssim']:.4f}")
