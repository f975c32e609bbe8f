"""The measuring commands: `remaster bench` (throughput) and `remaster eval` (quality).

Kept apart from cli.py so each command module stays small; cli.py registers them on `main`.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from remaster.cli.options import DEVICE
from remaster.run.config import DOUBT_HELP


@click.command()
@click.option(
    "--sizes",
    default=None,
    help="Comma-separated WIDTHxHEIGHT list (default: 640x480,1920x1080 on the CPU, 1920x1080,3840x2160 on CUDA).",
)
@click.option(
    "--frames",
    default=None,
    help="Frames per size: one number, or one per size (default: 32,16 on the CPU, 600,240 on CUDA).",
)
@click.option(
    "--clip",
    type=click.Path(path_type=Path),
    default=None,
    help="A video whose pictures are scaled to each size (default: synthetic moving shapes).",
)
@click.option("--device", type=DEVICE, default="auto", show_default=True)
@click.option(
    "--flow",
    default="dis",
    show_default=True,
    help="Flow provider of the temporal stage: dis, raft, raft-small, none or auto.",
)
@click.option(
    "--flow-weights",
    default=None,
    help="A local RAFT weights file (.safetensors or .pth) instead of torchvision's download.",
)
@click.option("--batch-size", type=int, default=8, show_default=True, help="Frames per batch through the networks.")
@click.option(
    "--precision",
    type=click.Choice(["auto", "fp32", "bf16", "fp16"]),
    default="auto",
    show_default=True,
    help="The network's arithmetic on CUDA (auto: bf16 where the GPU has it); the CPU runs fp32.",
)
@click.option(
    "--codec",
    default="libx264",
    show_default=True,
    help="Video encoder, for the pipeline and the plain transcode alike.",
)
@click.option("--crf", type=int, default=18, show_default=True)
@click.option("--preset", default="medium", show_default=True)
@click.option(
    "--model", type=click.Path(path_type=Path), default=None, help="A .safetensors model (default: the shipped model)."
)
@click.option(
    "--repeats", type=int, default=1, show_default=True, help="Pipeline runs per size; the fastest is reported."
)
@click.option(
    "--workers",
    type=int,
    default=None,
    help="Colorize segments in this many processes, as `colorize --workers` does (their start counts).",
)
@click.option(
    "--decoder",
    type=click.Choice(["cpu", "nvdec"]),
    default=None,
    help="Decode on the CPU or with NVDEC (falls back to the CPU with a note).",
)
@click.option("--cpu-threads", type=int, default=None, help="Torch threads when the networks run on the CPU.")
@click.option(
    "--segment-frames",
    type=int,
    default=None,
    help="Frames per segment of the run plan (what --workers share out; default: the run's).",
)
@click.option(
    "--inputs",
    type=click.Path(path_type=Path),
    default=None,
    help="A folder to keep the made films in and reuse on the next call (default: a temporary folder).",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print the results as JSON (end_to_end_fps, transcode_fps, ... per size)."
)
def bench(
    sizes,
    frames,
    clip,
    device,
    flow,
    flow_weights,
    batch_size,
    precision,
    codec,
    crf,
    preset,
    model,
    repeats,
    workers,
    decoder,
    cpu_threads,
    segment_frames,
    inputs,
    as_json,
):
    """Measure throughput: fps per stage and end to end, against a plain transcode of the same file.

    The plain transcode (same encoder and settings, sound copied) is the pipeline's physical
    limit; the ratio between the two is the number to compare across machines. Also reports the
    colorize + shots + temporal stages alone, peak CPU memory (RSS) and peak GPU memory.

    \b
    Examples:
      remaster bench                                  # sizes suited to the device
      remaster bench --sizes 1920x1080 --frames 300 --device cuda --flow raft-small --json
      remaster bench --clip reel.mp4 --sizes 3840x2160 --frames 48
    """
    from remaster.measure.bench import BenchOptions, format_table, parse_size, run_bench

    size_list = tuple(parse_size(s) for s in sizes.split(",")) if sizes else None
    try:
        frame_list = tuple(int(n) for n in frames.split(",")) if frames else None
    except ValueError:
        raise click.BadParameter(
            f"expected comma-separated frame counts, got {frames!r}", param_hint="--frames"
        ) from None
    options = BenchOptions(
        sizes=size_list,
        frames=frame_list,
        device=device,
        flow=flow,
        flow_weights=flow_weights,
        batch_size=batch_size,
        precision=precision,
        codec=codec,
        crf=crf,
        preset=preset,
        clip=clip,
        model=str(model) if model else None,
        repeats=repeats,
        workers=workers,
        decoder=decoder,
        cpu_threads=cpu_threads,
        inputs=inputs,
        extra={"segment_frames": segment_frames} if segment_frames else {},
    )
    log = (lambda line: click.echo(line, err=True)) if as_json else None  # progress on stderr with --json
    results = run_bench(options, log=log)
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
    help="Also write a contact sheet (JPEG/PNG) of the 8 worst and 8 best photos by gain over gray: gray | ours | truth.",
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
        f"  colorfulness  {s['colorfulness']:.1f}       ground truth {s['colorfulness_truth']:.1f}   ratio {100 * s['colorfulness_ratio']:.0f}%"
    )
    click.echo(
        f"  beat gray     {s['beat_gray']} of {s['images']}   median gain {s['gain_median']:+.2f} dB   10th percentile {s['gain_p10']:+.2f} dB"
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
        f"{result['frames']} frames at {result['size'][0]}x{result['size'][1]}, flow {result['flow']} on {result['flow_from']}"
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
