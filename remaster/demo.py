"""A first run on real photographs, with nothing to download or find.

scikit-image ships a few CC0 photographs inside its wheel. `camera` is a real black-and-white
photograph; `coffee`, `chelsea` and `astronaut` are color photographs that the demo turns gray
first, so the output can be put beside the truth.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import InputError

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


def run_demo(out_dir: Path, colorizer) -> list[Path]:
    """Colorize every sample; write NAME.png and NAME-compare.png (gray input | remaster | original).

    The demo overwrites its own earlier outputs, so it can be run again into the same folder; it
    writes only the names of `output_names`, never anything else there.
    """
    from .image import (
        colorize_photo,
        contact_sheet,
        gray_panel,
        original_panel,
        photo_from_array,
        write_image,
    )

    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, (_, has_truth) in SAMPLES.items():
        photo = photo_from_array(sample_photo(name))  # the network sees only the luma
        colorized = colorize_photo(photo, colorizer)
        panels = [("input (gray)", gray_panel(photo)), ("remaster", colorized)]
        if has_truth:
            panels.append(("original", original_panel(photo)))
        image_name, compare_name = output_names(name)
        for path, image in ((out_dir / image_name, colorized), (out_dir / compare_name, contact_sheet(panels))):
            write_image(path, image, force=True)  # only our own file names: see output_names
            written.append(path)
    return written
