"""remaster: colorize black-and-white film, archival footage and photographs."""

__version__ = "0.1.0"
