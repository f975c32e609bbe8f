"""A before/after contact sheet of restoration, made by running the tool on a damaged clip.

The data pack's `book.mkv` (Intel sample videos, CC BY 4.0) is damaged by damage.py (seeded),
written losslessly, and colorized by `remaster colorize --restore all` (the Python API, the
shipped model, DIS flow). The sheet shows, for a few frames: the damaged input, the luma the
tool wrote, and the colorized output, side by side, each a 320x240 crop of the picture's centre at 1:1.

    python benchmarks/restore_sheet.py --out docs/restore-contact-sheet.jpg
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import av
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_restore import CLIPS, clean_frames, write_gray
from damage import damage

from remaster.run.config import make_config
from remaster.run.pipeline import colorize_video


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", default="book.mkv")
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--show", default="8,19,30", help="frame numbers on the sheet")
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--out", type=Path, default=Path("docs/restore-contact-sheet.jpg"))
    args = parser.parse_args()
    clean = clean_frames(CLIPS / args.clip, args.frames)
    damaged, _ = damage(clean, seed=args.seed)
    folder = Path(tempfile.mkdtemp(prefix="restore-sheet-"))
    write_gray(damaged, folder / "damaged.mkv")
    config = make_config(codec="ffv1", flow="dis", cpu_threads=1, restore={"stages": "all"})
    report = colorize_video(folder / "damaged.mkv", folder / "restored.mkv", config, progress=False)
    print(f"luma changed by {report.luma_changed_by}; {report.frames} frames at {report.fps} fps")
    with av.open(str(folder / "restored.mkv")) as container:
        pictures = list(container.decode(video=0))
    shown = [int(v) for v in args.show.split(",")]
    cell_w, cell_h = 320, 240
    labels = [
        "damaged input (synthetic flicker, dust, grain)",
        "luma written with --restore all",
        "colorized (shipped model)",
    ]
    sheet = Image.new("RGB", (3 * cell_w, 18 + len(shown) * cell_h), "white")
    draw = ImageDraw.Draw(sheet)
    for c, label in enumerate(labels):
        draw.text((c * cell_w + 6, 3), label, fill="black")
    for r, index in enumerate(shown):
        frame = pictures[index]
        cells = [
            Image.fromarray(damaged[index]).convert("RGB"),
            Image.fromarray(frame.to_ndarray(format="gray")).convert("RGB"),
            frame.to_image(),
        ]
        for c, cell in enumerate(cells):
            # 1:1 pixels of the picture's centre: scaled down, grain and small specks would vanish
            left, top = (cell.width - cell_w) // 2, (cell.height - cell_h) // 2
            sheet.paste(cell.crop((left, top, left + cell_w, top + cell_h)), (c * cell_w, 18 + r * cell_h))
        draw.text((6, 18 + r * cell_h + 4), f"frame {index}", fill="yellow")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out, quality=85, optimize=True)
    print(f"{args.out}: {args.out.stat().st_size // 1024} KB")


if __name__ == "__main__":
    main()
