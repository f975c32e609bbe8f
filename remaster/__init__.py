"""remaster: colorize black-and-white film, archival footage and photographs.

import remaster
rgb = remaster.colorize_image("scan.tif")                  # numpy array, input's size and depth
report = remaster.colorize_video("reel.mp4", "reel-color.mp4")
"""

__version__ = "0.1.0"

_API = {
    "colorize_image": "remaster.image",
    "colorize_video": "remaster.pipeline",
    "Colorizer": "remaster.model",
    "evaluate_images": "remaster.evaluate",
    "evaluate_video": "remaster.evaluate_video",
    "train": "remaster.train",
}
__all__ = sorted(_API)


def __getattr__(name):
    # Imported on first use: `import remaster` stays fast, and the CLI pays only for what it runs.
    if name in _API:
        import importlib

        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'remaster' has no attribute {name!r}")
