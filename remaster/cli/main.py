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

from remaster.cli.options import CommaList, field_options, sections
from remaster.errors import RemasterError
from remaster.run.config import available_presets, flag_fields


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
    help=f"A preset ({', '.join(available_presets())}) or a .toml file; flags override it.",
)
@click.option(
    "--keyframes",
    type=click.Path(path_type=Path),
    default=None,
    help="A folder of color images of some frames (NNNNNN.png is frame NNNNNN, 0-based; other names are matched by "
    "content); their colors are carried through their shots.",
)
@field_options(flag_fields())
@click.option("--force", is_flag=True, help="Overwrite OUTPUT if it exists (and drop the work of an interrupted run).")
@click.option("--resume", is_flag=True, help="Continue an interrupted run from its finished segments.")
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Colorize segments in N processes on this machine (with --ray: N Ray actors; default there: one per GPU, "
    "else per CPU). The output is the same.",
)
@click.option(
    "--devices",
    default=None,
    type=CommaList(str, expect="devices separated by commas", example="cuda:0,cuda:1"),
    metavar="DEVICE[,DEVICE...]",
    help="Devices of the --workers, round-robin, e.g. cuda:0,cuda:1 (default: every GPU, else the CPU).",
)
@click.option(
    "--ray",
    "ray_address",
    default=None,
    metavar="ADDRESS|local",
    help="Run the segments as Ray tasks: 'local' starts Ray on this machine only (127.0.0.1, no dashboard); "
    "ADDRESS joins a cluster (pip install 'remaster[ray]').",
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

    config = make_config(pipeline, **sections(flags))
    warnings = config.warnings(output)
    for line in warnings:  # before the work, not after it
        click.echo(f"remaster: note: {line}", err=True)
    scale = {"workers": workers, "devices": ",".join(devices) if devices else None, "ray": ray_address}
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
        devices = ", ".join(sorted(set(report.execution["devices"])))
        where = f"{report.execution['workers']} {report.execution['executor']} ({devices})"
    click.echo(
        f"wrote {report.output}: {report.frames} frames in {report.seconds:.1f} s "
        f"({report.fps} fps; {stages}){resumed}; "
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
    "--at",
    "at",
    required=True,
    type=CommaList(int, expect="frame numbers separated by commas", example="0,120,300"),
    help="Frame numbers, 0-based in presentation order, comma-separated: 0,120,300.",
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
    from remaster.run.keyframes import export_frames

    for path in export_frames(input_path, list(at), out_dir, force=force):
        click.echo(str(path))


def _register_commands() -> None:
    """The commands kept in their own modules (one per group, each small)."""
    from remaster.cli.demo import demo
    from remaster.cli.measure import bench, eval_group
    from remaster.cli.photos import image
    from remaster.cli.train import train
    from remaster.studio.command import studio  # the studio's own command: the CLI only lists it

    for command in (image, demo, train, bench, eval_group, studio):
        main.add_command(command)


_register_commands()


if __name__ == "__main__":
    main()
