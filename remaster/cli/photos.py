"""`remaster image`: colorize photographs. Its model, device and doubt are the run config's
(`ColorizeConfig`), as `colorize` takes them."""

from __future__ import annotations

from pathlib import Path

import click

from remaster.cli.options import CommaList, field_options, sections
from remaster.run.config import flag_fields


def _hint_color(text: str) -> tuple[float, float]:
    from remaster.net.hints import parse_color

    return parse_color(text)


HINT = CommaList(items=(float, float, _hint_color), expect="X,Y,#RRGGBB", example="410,220,#c0392b")


@click.command()
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--out-dir",
    required=True,
    type=click.Path(path_type=Path),
    help="Folder for the colorized images (created if missing).",
)
@field_options(flag_fields(), only=("model", "device"))
@click.option(
    "--compare",
    is_flag=True,
    help="Also write NAME-compare.EXT: the original (a color input) or the gray input, and the output, side by "
    "side under captions. An output already there is kept: only its missing comparison is written.",
)
@click.option(
    "--format", "suffix", default=None, help="Output format by extension (png, tif, jpg, webp); default: the input's."
)
@click.option(
    "--hint",
    "hints",
    multiple=True,
    type=HINT,
    metavar="X,Y,#RRGGBB",
    help="Steer a color: the pixel at X,Y (from the top left of the input) should be this color. Repeat for more "
    "points; a handful usually does it. Without --model, the shipped model for steered colors (remaster-hints) "
    "does the work; a --model must be hint-conditioned.",
)
@field_options(flag_fields(), only=("doubt",))
@click.option("--force", is_flag=True, help="Overwrite existing outputs.")
def image(inputs, out_dir, compare, suffix, hints, force, **flags):
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
    from remaster.errors import OutputError
    from remaster.media.sheets import compare_panels, contact_sheet
    from remaster.media.stills import read_photo, write_image
    from remaster.net.colorizer import Colorizer
    from remaster.run.config import ColorizeConfig
    from remaster.run.photos import colorize_photo

    run = ColorizeConfig(**sections(flags)["colorize"])
    photos = [(path, read_photo(path)) for path in inputs]  # fail on a bad input before any work
    points = [(x, y, *ab) for x, y, ab in hints]
    jobs = []  # (photo, output, comparison or None, which of the two to write)
    for path, photo in photos:
        extension = "." + suffix.lstrip(".") if suffix else path.suffix
        destination = out_dir / f"{path.stem}{extension}"
        sheet = out_dir / f"{path.stem}-compare{extension}" if compare else None
        write = {target for target in (destination, sheet) if target is not None and (force or not target.exists())}
        if not write:  # everything asked for is there: refuse before any work
            raise OutputError(f"{destination}: already exists (use --force to overwrite)")
        jobs.append((photo, destination, sheet, write))
    colorizer = Colorizer.load(run.model, device=run.device, hints=bool(points), doubt=run.doubt)
    if points and not colorizer.takes_hints:
        raise click.UsageError(
            f"model {colorizer.name!r} takes no hints: use a hint-conditioned model (remaster train --hints)"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    for photo, destination, sheet, write in jobs:
        colorized = colorize_photo(photo, colorizer, points)
        if destination in write:
            write_image(destination, colorized, force=force)
            click.echo(str(destination))
        else:
            click.echo(f"remaster: {destination} exists and is kept; writing only its comparison", err=True)
        if sheet in write:
            write_image(sheet, contact_sheet(compare_panels(photo, colorized)), force=force)
            click.echo(str(sheet))
