"""Pack a photo folder small enough to travel to a rented GPU machine.

Each photo becomes the exact square thumbnail that `remaster train` caches (`data.square_thumbnail`,
short side SIZE, centre crop), saved as JPEG 4:4:4 quality 90, so training on the pack matches
training on the original folder up to one mild re-compression. Validation photos are packed
with their long side at most --long-side (what `remaster eval images` scores at by default).

    python benchmarks/pack_photos.py ../shared/data/photos/train .pack/train --size 256
    python benchmarks/pack_photos.py ../shared/data/photos/val .pack/val --long-side 512

Where everything must fit the 64 MiB a GPU call carries, WebP at quality 75 packs a 144 px
thumbnail in about 3.5 KB (JPEG 4:2:0 at quality 80 needs 5.6 KB): 12,500 photos in 44 MiB.
Its 4:2:0 chroma costs the training target nothing, as the net predicts color at 1/4 size.

    python benchmarks/pack_photos.py ../more-photos .pack/more --size 144 --format webp --quality 75

Balanced by source (issue 22): `--take PREFIX=N` keeps a seeded sample of N of the photos whose
path under SOURCE starts with PREFIX (file names start with their set: caltech-, pacs-, ...);
photos no --take names are all kept.

    python benchmarks/pack_photos.py ../more-photos .pack/more --size 192 --format webp --quality 70 \
        --take caltech-=1400 --take pacs-=700 --take imagenette-=700 --take clothing-=450
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

import cv2

from remaster.net.train_data import list_images, read_rgb, square_thumbnail


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path)
    parser.add_argument("dest", type=Path)
    parser.add_argument("--size", type=int, default=0, help="square thumbnail side (training packs)")
    parser.add_argument(
        "--long-side", type=int, default=0, help="scale so the long side is at most this (validation packs)"
    )
    parser.add_argument("--format", choices=("jpg", "webp"), default="jpg")
    parser.add_argument("--quality", type=int, default=90)
    parser.add_argument("--take", action="append", default=[], metavar="PREFIX=N", help="a seeded sample of N of these")
    args = parser.parse_args()
    args.dest.mkdir(parents=True, exist_ok=True)
    if args.format == "webp":
        params = [cv2.IMWRITE_WEBP_QUALITY, args.quality]
    else:
        params = [
            cv2.IMWRITE_JPEG_QUALITY,
            args.quality,
            cv2.IMWRITE_JPEG_SAMPLING_FACTOR,
            cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444,
        ]
    total = 0
    paths = list_images(args.source)
    for spec in args.take:
        prefix, count = spec.rsplit("=", 1)
        matching = [path for path in paths if path.relative_to(args.source).as_posix().startswith(prefix)]
        keep = set(random.Random(f"remaster-pack-{prefix}").sample(matching, min(int(count), len(matching))))
        drop = set(matching) - keep
        paths = [path for path in paths if path not in drop]
        print(f"{prefix}: {len(keep)} of {len(matching)}")
    for path in paths:
        rgb = read_rgb(path)
        if args.size:
            rgb = square_thumbnail(rgb, args.size)
        elif args.long_side and max(rgb.shape[:2]) > args.long_side:
            scale = args.long_side / max(rgb.shape[:2])
            rgb = cv2.resize(
                rgb, (round(rgb.shape[1] * scale), round(rgb.shape[0] * scale)), interpolation=cv2.INTER_AREA
            )
        out = args.dest / f"{path.stem}.{args.format}"
        cv2.imwrite(str(out), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), params)
        total += out.stat().st_size
    print(f"{args.dest}: {total / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
