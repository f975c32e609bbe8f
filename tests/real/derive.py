"""Make the truncated and damaged members of the real corpus from real files (run once; outputs committed).

Every derived file is a real file written by others (see MANIFEST.tsv) with a documented change:
- `trunc-*`: the first N bytes of the source (N written here, so the cut is reproducible);
- `damaged-*`: the source with K bytes XOR-ed with non-zero values at positions drawn by
  `random.Random(seed)` from a byte window that avoids the file's headers;
- `dv-ntsc-411-2frames.dv`: the first two DV frames (2 x 120000 bytes; DV frames are independent)
  of dv-toolbox's `sony_good_quality.dv` (5 frames, 600000 bytes, too large to ship whole). That
  source is not in this repository: pass `--dv-source PATH` to remake it; without it the committed
  file is only checked against its recorded sha256.

    python tests/real/derive.py [--dv-source sony_good_quality.dv] [--check]

`--check` verifies that every output exists and has the recorded sha256 (nothing is written).
"""

from __future__ import annotations

import argparse
import hashlib
import random
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

# (output, source, cut at byte N)
TRUNCATED = [
    ("trunc-h264-444-chapters.mkv", "h264-444-chapters.mkv", 42_000),  # ~59%: Matroska duration says more
    ("trunc-vp9-10bit.webm", "vp9-10bit-hidden-frames.webm", 60_000),  # ~49%: a cluster cut in its middle
    ("trunc-mpeg2-avi-mp3.avi", "mpeg2-avi-mp3.avi", 35_000),  # ~69%: AVI index (idx1) lost
    ("trunc-mpeg4-moov-first.mp4", "mpeg4-part2.mp4", 30_000),  # ~64%: moov first, mdat cut short
    ("trunc-mpeg2-ts.ts", "mpeg2-ts-mp2.ts", 40_001),  # not a multiple of 188: last TS packet cut
]

# (output, source, seed, bytes to damage, window start, window end as fractions of the file)
DAMAGED = [
    ("damaged-dv-pal.dv", "dv-pal.dv", 1, 64, 0.55, 0.95),  # inside the second of two DV frames
    ("damaged-vp9-odd.webm", "vp9-odd-161x121.webm", 2, 16, 0.40, 0.80),
    ("damaged-h264-444-chapters.mkv", "h264-444-chapters.mkv", 3, 24, 0.30, 0.80),
    ("damaged-mpeg2-avi-mp3.avi", "mpeg2-avi-mp3.avi", 4, 24, 0.30, 0.70),
    ("damaged-vc1-wmapro.wmv", "vc1-wmapro.wmv", 5, 32, 0.30, 0.80),
]

DV_CUT = ("dv-ntsc-411-2frames.dv", 2 * 120_000)
DV_SOURCE_SHA256 = "459e3aa2499c7a117985ed9d32e61942189729d79b05391a7a5fd2b7fbb9c511"

# sha256 of every output, so a rerun (or a changed source) is noticed
EXPECTED = {
    "trunc-h264-444-chapters.mkv": "147787e85ca302b1ee7cb76080581a74ddc0412910544dd5686873c6b34a4193",
    "trunc-vp9-10bit.webm": "9f9207d579871d349773493bee6e2ac2e21b0427e3e0a05d0848014ffa1b2ac9",
    "trunc-mpeg2-avi-mp3.avi": "37eea79e1386ae67c9f4fa11b745b0abe58984caf55469ab5fb8315fb2393638",
    "trunc-mpeg4-moov-first.mp4": "2e63a79428a0816c42d64ba13dc4e78cb1e9cac4ef7559f2ebc8542b55363380",
    "trunc-mpeg2-ts.ts": "f2133e38efb3a6438d8f15f23f9677106ec351d88201ac2198aa5e3ee9e0dacd",
    "damaged-dv-pal.dv": "aad755ff909880a49884bdbc0dc4316f198bb59a9c81e637df2beeee3fb5e039",
    "damaged-vp9-odd.webm": "ad52577ba9252b5d52bac377ab1730c880e2a49f8dfb7c3bb22cb9ffb303af18",
    "damaged-h264-444-chapters.mkv": "66e3321eecd03418fffb3eb889924819c1d8ede69567f4b59575765865c3cbeb",
    "damaged-mpeg2-avi-mp3.avi": "018c6ea70742e48e4574ffde165f20fb62e4145bb7359f579eb784c29c2efb6a",
    "damaged-vc1-wmapro.wmv": "e889ca1a6a5d73effefe6fba09a7d2c25ed36e1e2f19f7b7f81cbce7e0ee6cc8",
    "dv-ntsc-411-2frames.dv": "6b63094047d45db1622477f3e79faea18a5e74f0b2181403265c5140a071da09",
}


def truncate(data: bytes, size: int) -> bytes:
    assert size < len(data), (size, len(data))
    return data[:size]


def damage(data: bytes, seed: int, count: int, start: float, end: float) -> bytes:
    rng = random.Random(seed)
    out = bytearray(data)
    lo, hi = int(len(data) * start), int(len(data) * end)
    for position in sorted(rng.sample(range(lo, hi), count)):
        out[position] ^= rng.randrange(1, 256)
    return bytes(out)


def outputs(dv_source: Path | None) -> dict[str, bytes | None]:
    made: dict[str, bytes | None] = {}
    for name, source, size in TRUNCATED:
        made[name] = truncate((HERE / source).read_bytes(), size)
    for name, source, seed, count, start, end in DAMAGED:
        made[name] = damage((HERE / source).read_bytes(), seed, count, start, end)
    if dv_source is not None:
        data = dv_source.read_bytes()
        if hashlib.sha256(data).hexdigest() != DV_SOURCE_SHA256:
            sys.exit(f"{dv_source}: not the recorded sony_good_quality.dv (sha256 differs)")
        made[DV_CUT[0]] = truncate(data, DV_CUT[1])
    else:
        made[DV_CUT[0]] = None  # kept as committed
    return made


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dv-source", type=Path)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    bad = []
    for name, data in outputs(args.dv_source).items():
        path = HERE / name
        if data is None:
            data = path.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        if EXPECTED and EXPECTED.get(name) != digest:
            bad.append(name)
        if not args.check:
            path.write_bytes(data)
        print(f'    "{name}": "{digest}",')
    if bad:
        sys.exit(f"sha256 differs from the recorded one: {bad}")


if __name__ == "__main__":
    main()
