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


def run_demo(out_dir: Path, colorizer, *, force: bool = False) -> list[Path]:
    """Colorize every sample; write NAME.png and NAME-compare.png (gray | colorized | truth)."""
    from .image import colorize_photo, photo_from_array, side_by_side, write_image

    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, (_, has_truth) in SAMPLES.items():
        original = sample_photo(name)
        photo = photo_from_array(original)  # an RGB original is reduced to its luma here
        colorized = colorize_photo(photo, colorizer)
        compare = side_by_side(photo, colorized)
        if has_truth:
            compare = np.concatenate((compare, original), axis=1)
        for path, image in ((out_dir / f"{name}.png", colorized), (out_dir / f"{name}-compare.png", compare)):
            write_image(path, image, force=force)
            written.append(path)
    return written
