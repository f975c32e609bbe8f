"""`remaster demo`: a first run on real photographs, with nothing to download or find.

scikit-image ships a few CC0 photographs inside its wheel. `camera` is a real black-and-white
photograph; `coffee`, `chelsea` and `astronaut` are color photographs that the demo turns gray
first, so the output can be put beside the truth.
"""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np

from remaster.cli.options import field_options, sections
from remaster.errors import InputError
from remaster.run.config import flag_fields

# name -> (what it is, whether it is a color original we gray first)
SAMPLES = {
    "camera": ("black-and-white photograph, CC0 by Lav Varshney", False),
    "coffee": ("color photograph turned gray, CC0 by Rachel Michetti", True),
    "chelsea": ("color photograph turned gray, CC0 by Stefan van der Walt", True),
    "astronaut": ("color photograph turned gray (NASA, public domain)", True),
}


def sample_photo(name: str) -> np.ndarray:
    """A bundled sample as an array: `(H, W)` gray or `(H, W, 3)` RGB uint8."""
    try:
        import skimage.data
    except ImportError:
        raise InputError("the demo photos come with scikit-image: pip install scikit-image") from None
    if name not in SAMPLES:
        raise InputError(f"unknown demo photo {name!r}: expected one of {', '.join(SAMPLES)}")
    return getattr(skimage.data, name)()


def output_names(name: str) -> tuple[str, str]:
    """The files the demo writes for a sample: NAME.png and NAME-compare.png."""
    return f"{name}.png", f"{name}-compare.png"


STEER_NAME = "{name}-steered.png"
CLICKS = 6  # "a handful of hint points"


def colorist_clicks(
    automatic: np.ndarray, truth: np.ndarray, count: int = CLICKS
) -> list[tuple[float, float, float, float]]:
    """Where a colorist would click: the `count` places where the automatic colors are furthest
    from the original's, each hinted with the original's color there: `(x, y, a, b)`.

    The demo knows the truth, so it plays the colorist; with your own photo you click yourself
    (`remaster image --hint X,Y,#RRGGBB`). Places are at least a tenth of the picture apart.
    """
    import cv2

    def lab(rgb):
        return cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)

    true_lab = cv2.blur(lab(truth), (9, 9))
    error = np.linalg.norm(cv2.blur(lab(automatic), (9, 9))[..., 1:] - true_lab[..., 1:], axis=-1)
    height, width = error.shape
    gap = max(height, width) // 10
    points = []
    for _ in range(count):
        y, x = np.unravel_index(np.argmax(error), error.shape)
        if error[y, x] <= 0:
            break
        points.append((float(x), float(y), float(true_lab[y, x, 1]), float(true_lab[y, x, 2])))
        error[max(0, y - gap) : y + gap, max(0, x - gap) : x + gap] = 0
    return points


def mark_clicks(rgb: np.ndarray, points) -> np.ndarray:
    """The picture with a ring at each hint, so the sheet shows where the colorist clicked."""
    import cv2

    marked = np.ascontiguousarray(rgb.copy())
    radius = max(4, min(rgb.shape[:2]) // 60)
    for x, y, _, _ in points:
        cv2.circle(marked, (round(x), round(y)), radius + 2, (0, 0, 0), 2, cv2.LINE_AA)
        cv2.circle(marked, (round(x), round(y)), radius, (255, 255, 255), 2, cv2.LINE_AA)
    return marked


def run_demo(out_dir: Path, colorizer, steering=None) -> list[Path]:
    """Colorize every sample; write NAME.png and NAME-compare.png (gray input | remaster | original).

    With a hint-conditioned `steering` model (default: `colorizer`), each color sample also gets
    NAME-steered.png: automatic | with a handful of hints | original, the hints drawn as rings
    (`colorist_clicks`).

    The demo overwrites its own earlier outputs, so it can be run again into the same folder; it
    writes only the names of `output_names`, never anything else there.
    """
    from remaster.media.sheets import contact_sheet, gray_panel, original_panel
    from remaster.media.stills import photo_from_array, write_image
    from remaster.run.photos import colorize_photo

    out_dir.mkdir(parents=True, exist_ok=True)
    steering = steering or colorizer
    written = []
    for name, (_, has_truth) in SAMPLES.items():
        photo = photo_from_array(sample_photo(name))  # the network sees only the luma
        colorized = colorize_photo(photo, colorizer)
        panels = [("input (gray)", gray_panel(photo)), ("remaster", colorized)]
        if has_truth:
            panels.append(("original", original_panel(photo)))
        image_name, compare_name = output_names(name)
        outputs = [(out_dir / image_name, colorized), (out_dir / compare_name, contact_sheet(panels))]
        if has_truth and steering.takes_hints:
            truth = original_panel(photo)
            points = colorist_clicks(colorized, truth)
            steered = colorize_photo(photo, steering, points)
            sheet = contact_sheet(
                [("automatic", colorized), (f"{len(points)} hints", mark_clicks(steered, points)), ("original", truth)]
            )
            outputs.append((out_dir / STEER_NAME.format(name=name), sheet))
        for path, image in outputs:
            write_image(path, image, force=True)  # only our own file names: see output_names
            written.append(path)
    return written


@click.command()
@click.option(
    "-o",
    "--out-dir",
    type=click.Path(path_type=Path),
    default=Path("remaster-demo"),
    show_default=True,
    help="Folder for the demo's images (created if missing).",
)
@field_options(flag_fields(), only=("model", "device"))
# The demo always overwrites its own files; --force is still accepted for old scripts.
@click.option("--force", is_flag=True, hidden=True)
def demo(out_dir, force, **flags):
    """Colorize the real photographs bundled with scikit-image (CC0): a first run with no files to find.

    Writes NAME.png and NAME-compare.png (gray input | remaster | original colors where known)
    for camera, coffee, chelsea and astronaut, and NAME-steered.png for the color ones:
    automatic | steered by a handful of color hints | original (the hints are where the
    automatic colors are furthest from the original; `remaster image --hint` is how you give
    your own). Running it again replaces those files (and only
    those) in the folder. To click colors yourself and see the answer at once, open a photo
    or a film in the studio: `remaster studio demo/camera.png`.

    \b
    Example:
      remaster demo -o demo/
    """
    from remaster.net.colorizer import Colorizer
    from remaster.run.config import ColorizeConfig

    run = ColorizeConfig(**sections(flags)["colorize"])
    colorizer = Colorizer.load(run.model, device=run.device)
    steering = colorizer if run.model else Colorizer.load(device=run.device, hints=True)
    for path in run_demo(out_dir, colorizer, steering):
        name = path.stem
        click.echo(f"{path}   ({SAMPLES[name][0]})" if name in SAMPLES else str(path))
    click.echo(f"Click your own colors in the studio: remaster studio {Path(out_dir) / 'camera.png'}")
