"""remaster: colorize black-and-white film, archival footage and photographs.

import remaster
rgb = remaster.colorize_image("scan.tif")                  # numpy array, input's size and depth
report = remaster.colorize_video("reel.mp4", "reel-color.mp4")
"""

__version__ = "0.1.0"

_API = {
    "colorize_image": "remaster.run.photos",
    "colorize_video": "remaster.run.pipeline",
    "Colorizer": "remaster.net.colorizer",
    "evaluate_images": "remaster.net.validate",
    "evaluate_video": "remaster.measure.video",
    "train": "remaster.net.train",
}
__all__ = sorted(_API)


def __getattr__(name):
    # Imported on first use: `import remaster` stays fast, and the CLI pays only for what it runs.
    if name in _API:
        import importlib

        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'remaster' has no attribute {name!r}")
