"""The `remaster` command: a thin layer that parses options, builds configs and calls the library.

Every user-caused failure is a `RemasterError`; `main` prints it as one line on stderr and exits
1 without a traceback (`--debug` shows it).
"""

from __future__ import annotations

import contextlib
import faulthandler
import json
import sys
from pathlib import Path

import click

from remaster.cli.options import DEVICE
from remaster.errors import RemasterError
from remaster.run.config import DOUBT_HELP


class _Group(click.Group):
    """Turns project errors into one line on stderr and exit code 1."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except RemasterError as error:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            click.echo(f"remaster: {error}", err=True)
            sys.exit(1)
        except KeyboardInterrupt:
            click.echo("remaster: interrupted; nothing was written to the destination", err=True)
            sys.exit(130)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show full tracebacks for errors.")
@click.version_option(package_name="remaster")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """Colorize black-and-white film, archival footage and photographs.

    \b
    Examples:
      remaster demo -o demo/
      remaster image old-photo.jpg -o colorized/
      remaster colorize reel.mp4 -o reel-color.mp4
      remaster train my-photos/ --val my-photos-val/ --out models/mine.safetensors
      remaster eval images my-photos-val/
      remaster bench
    """
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
    # A crash in native code (FFmpeg, torch, OpenCV) would otherwise end the process without a
    # word: print every thread's Python stack on stderr instead, for the bug report. (Where
    # stderr is no file, a test runner's capture, there is nowhere to print it.)
    with contextlib.suppress(OSError, ValueError, AttributeError):
        faulthandler.enable()


@main.command()
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--out-dir",
    required=True,
    type=click.Path(path_type=Path),
    help="Folder for the colorized images (created if missing).",
)
@click.option(
    "--model", type=click.Path(path_type=Path), default=None, help="A .safetensors model (default: the shipped model)."
)
@click.option("--device", type=DEVICE, default="auto", show_default=True)
@click.option(
    "--compare",
    is_flag=True,
    help="Also write NAME-compare.EXT: the original (a color input) or the gray input, and the output, side by side under captions.",
)
@click.option(
    "--format", "suffix", default=None, help="Output format by extension (png, tif, jpg, webp); default: the input's."
)
@click.option(
    "--hint",
    "hint_texts",
    multiple=True,
    metavar="X,Y,#RRGGBB",
    help="Steer a color: the pixel at X,Y (from the top left of the input) should be this color. Repeat for more points; a handful usually does it. Without --model, the shipped model for steered colors (remaster-hints) does the work; a --model must be hint-conditioned.",
)
@click.option("--doubt", type=float, default=None, help=DOUBT_HELP)
@click.option("--force", is_flag=True, help="Overwrite existing outputs.")
def image(inputs, out_dir, model, device, compare, suffix, hint_texts, doubt, force):
    """Colorize photographs (JPEG, PNG, TIFF, WebP; 8 or 16 bit; gray or RGB).

    An RGB input is treated as its luma. Outputs keep the input's size, bit depth and luma.

    \b
    Examples:
      remaster image scan.tif -o out/
      remaster image a.jpg b.png -o out/ --compare
      remaster image scan.tif -o out/ --model models/mine.safetensors --device cpu
      remaster image family.jpg -o out/ --hint 410,220,#c0392b --hint 120,80,#2e86c1 --compare
      remaster image street.jpg -o out/ --doubt 30 --compare      # bolder colors, more often wrong
    """
    from remaster.media.sheets import compare_panels, contact_sheet
    from remaster.media.stills import read_photo, write_image
    from remaster.net.colorizer import Colorizer
    from remaster.run.photos import colorize_photo

    photos = [(path, read_photo(path)) for path in inputs]  # fail on a bad input before any work
    points = [_parse_hint(text) for text in hint_texts]
    colorizer = Colorizer.load(model, device=device, hints=bool(points), doubt=doubt)
    if points and not colorizer.takes_hints:
        raise click.UsageError(
            f"model {colorizer.name!r} takes no hints: use a hint-conditioned model (remaster train --hints)"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    for path, photo in photos:
        extension = "." + suffix.lstrip(".") if suffix else path.suffix
        colorized = colorize_photo(photo, colorizer, points)
        destination = out_dir / f"{path.stem}{extension}"
        write_image(destination, colorized, force=force)
        click.echo(str(destination))
        if compare:
            sheet = contact_sheet(compare_panels(photo, colorized))
            write_image(out_dir / f"{path.stem}-compare{extension}", sheet, force=force)


def _parse_hint(text: str) -> tuple[float, float, float, float]:
    """'X,Y,#RRGGBB' -> (x, y, a, b)."""
    from remaster.net.hints import parse_color

    parts = text.split(",")
    try:
        x, y = float(parts[0]), float(parts[1])
        if len(parts) != 3:
            raise ValueError
    except (ValueError, IndexError):
        raise click.BadParameter(
            f"expected X,Y,#RRGGBB such as 410,220,#c0392b, got {text!r}", param_hint="--hint"
        ) from None
    return (x, y, *parse_color(parts[2]))


@main.command()
@click.option(
    "-o",
    "--out-dir",
    type=click.Path(path_type=Path),
    default=Path("remaster-demo"),
    show_default=True,
    help="Folder for the demo's images (created if missing).",
)
@click.option(
    "--model", type=click.Path(path_type=Path), default=None, help="A .safetensors model (default: the shipped model)."
)
@click.option("--device", type=DEVICE, default="auto", show_default=True)
# The demo always overwrites its own files; --force is still accepted for old scripts.
@click.option("--force", is_flag=True, hidden=True)
def demo(out_dir, model, device, force):
    """Colorize the real photographs bundled with scikit-image (CC0): a first run with no files to find.

    Writes NAME.png and NAME-compare.png (gray input | remaster | original colors where known)
    for camera, coffee, chelsea and astronaut, and NAME-steered.png for the color ones:
    automatic | steered by a handful of color hints | original (the hints are where the
    automatic colors are furthest from the original; `remaster image --hint` is how you give
    your own). Running it again replaces those files (and only
    those) in the folder.

    \b
    Example:
      remaster demo -o demo/
    """
    from remaster.cli.demo import SAMPLES, run_demo
    from remaster.net.colorizer import Colorizer

    colorizer = Colorizer.load(model, device=device)
    steering = colorizer if model else Colorizer.load(device=device, hints=True)
    for path in run_demo(out_dir, colorizer, steering):
        name = path.stem
        click.echo(f"{path}   ({SAMPLES[name][0]})" if name in SAMPLES else str(path))


@main.command()
@click.argument("data_dirs", metavar="DATA_DIR...", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--val",
    "val_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="A folder of held-out color photos (none of them in DATA_DIR): PSNR, SSIM and colorfulness are measured on them during training and stored in the model's report, and the model of the best validation so far is kept beside --out as NAME.best.safetensors. Default: no validation.",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(path_type=Path),
    help="Where to write the model (.safetensors); its report goes beside it as NAME.json and its checkpoint as NAME.ckpt.safetensors.",
)
@click.option(
    "--recipe",
    type=click.Choice(["bins", "ab"]),
    default="bins",
    show_default=True,
    help="bins: classification over quantized CIELAB a,b with class rebalancing (Zhang et al. 2016); ab: rebalanced regression of a,b.",
)
@click.option(
    "--steps",
    type=int,
    default=2000,
    show_default=True,
    help="Optimizer steps (batches) to train for. The learning rate warms up over the first 100 steps, then follows a cosine down to zero.",
)
@click.option(
    "--minutes",
    type=float,
    default=None,
    help="Time budget in minutes (a resumed run counts the time before the stop): training ends at --steps or the budget, whichever comes first, and the learning-rate schedule follows whichever is further along. Default: no budget.",
)
@click.option(
    "--batch-size",
    type=int,
    default=32,
    show_default=True,
    help="Crops per optimizer step; larger uses more memory and is faster per image on a GPU.",
)
@click.option(
    "--crop",
    type=int,
    default=176,
    show_default=True,
    help="Side of the square training crops in pixels: a multiple of 16, at most --cache-size (photos are cached as squares of that side; each crop covers 0.75-1.5x its side there, with random flips).",
)
@click.option(
    "--cache-size",
    type=int,
    default=256,
    show_default=True,
    help="Photos are cached as squares of this side (short side resized, centre crop). Use the size of your smallest photos or less (e.g. 192 for 200-300 px sets): small photos are never worth upscaling.",
)
@click.option(
    "--lr",
    type=float,
    default=2e-3,
    show_default=True,
    help="Peak learning rate of the AdamW optimizer (weight decay 1e-4).",
)
@click.option(
    "--rebalance",
    type=float,
    default=0.5,
    show_default=True,
    help="Class rebalancing, the λ of Zhang et al. 2016, 0..1: 1 = every pixel weighs the same (no rebalancing); smaller = rare, saturated colors weigh more (0 = in inverse proportion to how often they occur).",
)
@click.option(
    "--doubt",
    type=float,
    default=0.0,
    show_default=True,
    help="Uncertainty-aware decoding (CIELAB units; 0 = off) used at validation and by --decoded-loss, and stored with the model: where the net's color distribution is wider than this, chroma fades toward gray.",
)
@click.option(
    "--decoded-loss",
    type=float,
    default=0.0,
    show_default=True,
    help="Weight of a second loss on the colors as decoded: each crop's color error relative to a gray crop's, what PSNR gain measures, at --doubt. 1 is comparable to the classification loss. (On a 33-minute CPU continuation it did not stop the colors growing bolder after the first 1,200 steps: benchmarks/RESULTS.md.)",
)
@click.option(
    "--widths",
    default="24,48,96,192",
    show_default=True,
    help="The network's channels at 1/2, 1/4, 1/8 and 1/16 of its working resolution: four comma-separated integers. Wider is slower; it may color better given data and time.",
)
@click.option(
    "--blocks",
    type=int,
    default=4,
    show_default=True,
    help="Dilated residual blocks at 1/16 resolution: they widen how much of the picture the network sees at once.",
)
@click.option(
    "--checkpoint-every",
    type=int,
    default=500,
    show_default=True,
    help="Steps between checkpoints (what --resume continues from) and exports of the model so far; both are also written at the end.",
)
@click.option(
    "--val-every",
    type=int,
    default=0,
    show_default=True,
    help="Steps between validations on --val; 0 = once per epoch (number of photos / batch size steps). The final model is always validated.",
)
@click.option(
    "--val-limit",
    type=int,
    default=0,
    show_default=True,
    help="Validate on the first N photos of --val (sorted by path) only; 0 = all of them.",
)
@click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    help="Seeds the network's initialisation and the crop sampler: on the CPU the same seed, photos and options give the same model.",
)
@click.option(
    "--workers",
    type=int,
    default=0,
    show_default=True,
    help="Threads decoding the photos into the in-memory cache at the start; 0 = one per CPU core, at most 8.",
)
@click.option(
    "--device",
    type=DEVICE,
    default="auto",
    show_default=True,
    help="Where to train: auto = CUDA when torch sees a GPU (bfloat16 mixed precision there), else the CPU.",
)
@click.option(
    "--hints",
    is_flag=True,
    help="Train a hint-conditioned network (Zhang et al. 2017): besides gray it takes color hints (points, palettes, a colorist's keyframes carried along the film), simulated during training; with no hints it is the automatic colorizer.",
)
@click.option(
    "--init",
    "init",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Start from this trained model (.safetensors) instead of random weights; its widths, blocks and color bins are kept. With --hints, a model without hint inputs gains them, zero-initialised, so training starts from its colors.",
)
@click.option(
    "--resume",
    is_flag=True,
    help="Continue an interrupted run from OUT's checkpoint: network, optimizer, step, time spent and sampler state. Use the same --recipe, --widths and --blocks as before.",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print the final report (steps, speed, validation scores, sha256) as JSON."
)
def train(
    data_dirs,
    val_dir,
    out,
    recipe,
    steps,
    minutes,
    batch_size,
    crop,
    cache_size,
    lr,
    rebalance,
    doubt,
    decoded_loss,
    widths,
    blocks,
    checkpoint_every,
    val_every,
    val_limit,
    seed,
    workers,
    device,
    hints,
    init,
    resume,
    as_json,
):
    """Train a colorization network on DATA_DIR, one or more folders of color photographs.

    Each DATA_DIR is searched recursively for JPEG, PNG, TIFF, WebP and BMP files. The best colors
    for a collection come from photos of that collection's world.

    \b
    Examples:
      remaster train my-photos/ --out models/mine.safetensors
      remaster train my-photos/ --val my-photos-val/ --out models/mine.safetensors --minutes 60
      remaster train my-photos/ --val my-photos-val/ --out models/mine.safetensors --minutes 60 --resume   # after Ctrl-C
      remaster train my-photos/ --out models/mine.safetensors --device cuda --batch-size 64 --steps 20000
      remaster train my-photos/ --out models/small.safetensors --widths 16,32,64,128 --blocks 2 --steps 500
      remaster train my-photos/ more-photos/ --hints --init models/remaster-default.safetensors --out hinted.safetensors --minutes 90
    """
    from remaster.net.network import NetConfig
    from remaster.net.train import TrainConfig
    from remaster.net.train import train as run_training

    try:
        width_tuple = tuple(int(w) for w in widths.split(","))
    except ValueError:
        raise click.BadParameter(
            f"expected four comma-separated integers, got {widths!r}", param_hint="--widths"
        ) from None
    config = TrainConfig(
        recipe=recipe,
        net=NetConfig(widths=width_tuple, blocks=blocks, hints=hints),
        steps=steps,
        minutes=minutes,
        batch_size=batch_size,
        crop=crop,
        cache_size=cache_size,
        lr=lr,
        rebalance=rebalance,
        doubt=doubt,
        decoded_loss=decoded_loss,
        checkpoint_every=checkpoint_every,
        val_every=val_every,
        val_limit=val_limit,
        seed=seed,
        workers=workers,
        device=device,
        init=str(init or ""),
    )
    report = run_training(config, list(data_dirs), out, val_dir=val_dir, resume=resume)
    click.echo(json.dumps(report, indent=2) if as_json else _format_training(report))


def _format_training(report: dict) -> str:
    lines = [
        f"wrote {report['out']} ({report['parameters']:,} parameters, {report['steps']} steps, {report['images_per_second']} img/s)"
    ]
    if report["validation"]:
        v = report["validation"]
        lines.append(
            f"validation: PSNR {v['psnr']:.2f} dB (gray {v['psnr_gray']:.2f}), SSIM {v['ssim']:.4f} (gray {v['ssim_gray']:.4f}), "
            f"colorfulness {v['colorfulness']:.1f} vs truth {v['colorfulness_truth']:.1f} ({100 * v['colorfulness_ratio']:.0f}%)"
        )
    return "\n".join(lines)


def _config_options(command):
    """One click option per flag field of the run's config sections (config.flag_fields): the
    flag, help, choices and the default shown in --help all come from the dataclasses."""
    from remaster.run.config import SECTIONS, flag_fields

    for section, f, flag in reversed(flag_fields()):
        default = SECTIONS[section]().__getattribute__(f.name)
        kind = {int: int, float: float}.get(type(default)) if default is not None else None
        if kind is None:
            kind = {"int | None": int, "float | None": float}.get(f.type)
        choices = f.metadata.get("choices")
        help_text = f.metadata["help"] + ("" if default is None else f" [default: {default}]")
        if isinstance(default, bool):  # a switch: absent leaves the preset's value (None)
            command = click.option(
                flag, f"{section}__{f.name}", is_flag=True, flag_value=True, default=None, help=f.metadata["help"]
            )(command)
            continue
        command = click.option(
            flag,
            f"{section}__{f.name}",
            default=None,
            help=help_text,
            type=click.Choice(list(choices)) if choices else kind,
        )(command)
    return command


@main.command()
@click.argument("input_path", metavar="INPUT", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(path_type=Path),
    help="The colorized video (.mp4, .mkv, .mov); its extension picks the container.",
)
@click.option(
    "--pipeline",
    default=None,
    help="A preset from pipelines/ (film-reel, news-footage, fast) or a .toml file; flags override it.",
)
@click.option(
    "--keyframes",
    type=click.Path(path_type=Path),
    default=None,
    help="A folder of color images of some frames (NNNNNN.png is frame NNNNNN, 0-based; other names are matched by content); their colors are carried through their shots.",
)
@_config_options
@click.option("--force", is_flag=True, help="Overwrite OUTPUT if it exists (and drop the work of an interrupted run).")
@click.option("--resume", is_flag=True, help="Continue an interrupted run from its finished segments.")
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Colorize segments in N processes on this machine (with --ray: N Ray actors; default there: one per GPU, else per CPU). The output is the same.",
)
@click.option(
    "--devices",
    default=None,
    help="Devices of the --workers, round-robin, e.g. cuda:0,cuda:1 (default: every GPU, else the CPU).",
)
@click.option(
    "--ray",
    "ray_address",
    default=None,
    metavar="ADDRESS|local",
    help="Run the segments as Ray tasks: 'local' starts Ray on this machine only (127.0.0.1, no dashboard); ADDRESS joins a cluster (pip install 'remaster[ray]').",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the final report as JSON on stdout (progress shows on stderr when it is a terminal).",
)
def colorize(input_path, output, pipeline, keyframes, force, resume, workers, devices, ray_address, as_json, **flags):
    """Colorize a black-and-white video, keeping its luma, sound and timing.

    The picture's brightness (Y plane) is the input's, unchanged unless --restore asks for it to be
    deflickered, cleaned of dust or denoised; every audio and subtitle track
    is copied packet for packet; frame timestamps, aspect ratio, rotation and color tags are kept.
    The output appears only when complete. Every film is cut at keyframes into segments (one for
    a short film) that are journaled as they finish: a stopped run continues with --resume, and
    the result is the same film, frame for frame, as a run that was never stopped.

    \b
    Examples:
      remaster colorize reel.mp4 -o reel-color.mp4
      remaster colorize reel.mkv -o master.mkv --pipeline film-reel
      remaster colorize news.mp4 -o news-color.mp4 --pipeline news-footage --crf 20
      remaster colorize clip.mp4 -o preview.mp4 --pipeline fast --max-frames 100 --force
      remaster colorize reel.mp4 -o out.mp4 --device cuda --flow raft --codec h264_nvenc --json
      remaster colorize reel.mp4 -o reel-color.mp4 --resume      # after Ctrl-C or a crash
      remaster colorize reel.mp4 -o reel-color.mp4 --keyframes graded/   # a colorist's frames
      remaster colorize reel.mp4 -o reel-color.mp4 --workers 2            # two processes
      remaster colorize reels/ -o colorized/ --ray local                  # a folder, on Ray
      remaster colorize reel.mkv -o restored.mkv --restore all   # deflicker, dust, denoise the luma too

    INPUT may be a folder: every film in it is colorized into OUTPUT, a folder, one report row
    per film (--json: a list).
    """
    from remaster.run.config import make_config
    from remaster.run.pipeline import colorize_video

    sections: dict[str, dict] = {}
    for key, value in flags.items():
        section, name = key.split("__", 1)
        sections.setdefault(section, {})[name] = value
    config = make_config(pipeline, **sections)
    warnings = config.warnings(output)
    for line in warnings:  # before the work, not after it
        click.echo(f"remaster: note: {line}", err=True)
    scale = {"workers": workers, "devices": devices, "ray": ray_address}
    if input_path.is_dir():
        _colorize_folder(
            input_path,
            output,
            config,
            keyframes,
            force=force,
            resume=resume,
            as_json=as_json,
            notes=len(warnings),
            **scale,
        )
        return
    with contextlib.redirect_stdout(sys.stderr):  # stdout is the report's: Ray prints its workers' deaths there
        report = colorize_video(
            input_path,
            output,
            config,
            force=force,
            resume=resume,
            progress=_progress(as_json),
            keyframes=keyframes,
            **scale,
        )
    for notice in report.notices[len(warnings) :]:  # what was dropped or repaired, and why
        click.echo(f"remaster: note: {notice}", err=True)
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
        return
    stages = ", ".join(f"{name} {fps} fps" for name, fps in report.stage_fps.items() if fps)
    resumed = f", {report.segments_resumed} of {report.segments} segments resumed" if report.segments_resumed else ""
    where = report.device
    if report.execution.get("executor") in ("workers", "ray"):  # stage fps are per worker there
        where = f"{report.execution['workers']} {report.execution['executor']} ({', '.join(sorted(set(report.execution['devices'])))})"
    click.echo(
        f"wrote {report.output}: {report.frames} frames in {report.seconds:.1f} s ({report.fps} fps; {stages}){resumed}; "
        f"model {report.model['model']} on {where}, flow {report.flow_provider}, {report.encoder['encoder']}"
        + (f"; luma restored by {', '.join(report.luma_changed_by)}" if report.luma_changed_by else "")
    )


def _progress(as_json: bool) -> bool:
    """Progress goes to stderr: always for a person's run; with --json when stderr is a terminal
    (someone watches), not into a script's log, where stderr carries only what went wrong."""
    return not as_json or sys.stderr.isatty()


def _colorize_folder(folder, out_dir, config, keyframes, *, as_json, notes, **options):
    from remaster.errors import ConfigError
    from remaster.run.folder import colorize_folder, format_rows

    if keyframes is not None:
        raise ConfigError("--keyframes belong to one film: colorize that film on its own (a folder run takes none)")
    with contextlib.redirect_stdout(sys.stderr):  # stdout is the report's: Ray prints its workers' deaths there
        rows = colorize_folder(folder, out_dir, config, progress=_progress(as_json), **options)
    for row in rows:
        for notice in row.report.notices[notes:] if row.report else []:
            click.echo(f"remaster: note: {notice}", err=True)
    click.echo(json.dumps([row.to_dict() for row in rows], indent=2) if as_json else format_rows(rows))
    if any(row.error for row in rows):
        sys.exit(1)


@main.command()
@click.argument("input_path", metavar="INPUT", type=click.Path(path_type=Path))
@click.option(
    "--at", "at", required=True, help="Frame numbers, 0-based in presentation order, comma-separated: 0,120,300."
)
@click.option(
    "-o",
    "--out-dir",
    required=True,
    type=click.Path(path_type=Path),
    help="Folder for NNNNNN.png (created if missing).",
)
@click.option("--force", is_flag=True, help="Overwrite existing images.")
def frames(input_path, at, out_dir, force):
    """Export frames of a film as numbered PNGs, to color as keyframes (a color film's in its colors).

    Color them in any editor, keep their names, and give the folder to
    `remaster colorize --keyframes`.

    \b
    Example:
      remaster frames reel.mp4 --at 0,120,300 -o keys/
    """
    from remaster.errors import InputError
    from remaster.run.keyframes import export_frames

    try:
        numbers = [int(n) for n in at.split(",") if n.strip()]
    except ValueError:
        raise InputError(f"--at {at}: expected frame numbers separated by commas, e.g. 0,120,300") from None
    for path in export_frames(input_path, numbers, out_dir, force=force):
        click.echo(str(path))


def _register_measuring_commands() -> None:
    from remaster.cli.measure import bench, eval_group

    main.add_command(bench)
    main.add_command(eval_group)


_register_measuring_commands()


if __name__ == "__main__":
    main()
