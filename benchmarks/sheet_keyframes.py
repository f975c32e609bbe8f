"""A contact sheet of keyframe mode on a data-pack clip: input | automatic | with keyframes | truth.

    python benchmarks/sheet_keyframes.py --clip sister.mkv -o docs/keyframes-sister.jpg

The clip (its first `--frames` frames) is made gray, colorized without keyframes and with the true
colors of its first and last frames as keyframes (`--keys first` for the first only), and rows at
evenly spaced frames between them are laid out with remaster's own `contact_sheet`. The data
pack's clips are Intel's sample videos, CC BY 4.0 (../shared/data/README.md): credit them where
the sheet is shown.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

from bench_keyframes import CLIPS, frames_rgb, keyframe_folder, write_gray  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clip", default="sister.mkv")
    parser.add_argument("--frames", type=int, default=87)
    parser.add_argument("--rows", type=int, default=3)
    parser.add_argument("--keys", choices=("first", "first+last"), default="first+last")
    parser.add_argument("--width", type=int, default=320, help="width of each panel")
    parser.add_argument("-o", "--out", type=Path, required=True)
    args = parser.parse_args()
    from remaster.media.sheets import contact_sheet
    from remaster.run.config import make_config
    from remaster.run.pipeline import colorize_video

    truth = frames_rgb(CLIPS / args.clip, args.frames)
    last = len(truth) - 1
    with tempfile.TemporaryDirectory(prefix="sheet-") as tmp:
        tmp = Path(tmp)
        film = tmp / "gray.mkv"
        write_gray(truth, film)
        keys = keyframe_folder(tmp / "keys", truth, [0] if args.keys == "first" else [0, last])
        colorize_video(film, tmp / "auto.mkv", make_config(flow="dis", codec="ffv1"), progress=False)
        colorize_video(film, tmp / "keys.mkv", make_config(flow="dis", codec="ffv1"), progress=False, keyframes=keys)
        auto, keyed = frames_rgb(tmp / "auto.mkv", args.frames), frames_rgb(tmp / "keys.mkv", args.frames)
    # Rows strictly between the keyframes: frames whose colors came from the carry.
    rows = [round(last * (r + 1) / (args.rows + 1)) for r in range(args.rows)]
    height = round(args.width * truth[0].shape[0] / truth[0].shape[1])
    small = lambda im: cv2.resize(im, (args.width, height), interpolation=cv2.INTER_AREA)
    sheets = []
    for t in rows:
        gray = np.repeat(cv2.cvtColor(truth[t], cv2.COLOR_RGB2GRAY)[..., None], 3, -1)
        keyed_name = "keyframes 0" if args.keys == "first" else f"keyframes 0 and {last}"
        sheets.append(
            contact_sheet(
                [
                    (f"frame {t}: input", small(gray)),
                    ("automatic", small(auto[t])),
                    (keyed_name, small(keyed[t])),
                    ("truth", small(truth[t])),
                ]
            )
        )
    sheet = np.concatenate(sheets, 0)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.out), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 88])
    print(f"{args.out}: {sheet.shape[1]}x{sheet.shape[0]}, {args.out.stat().st_size // 1024} KB, rows at frames {rows}")


if __name__ == "__main__":
    main()
