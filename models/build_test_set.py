"""Build the held-out TEST set of color photos for the automatic colors (issue 22).

    python models/build_test_set.py --out ../photos-test --more ../more-photos

No training run and no model or decoding choice may use this set. Choices are made on the
validation photos (`photos/val`, `<more>-unseen`, `<more>-gray-heldout`); only the final report
of a change scores this set (benchmarks/bench_decoding.py --test), and the model card says so.

Which photos: every whole collection of MORE-PHOTOS.md (Caltech, PACS, Urban100, the interiors,
the ImageNet sample) and the data pack's own photos were in the training data of the shipped
model v2, so a test set made of whole collections would grade v2 on its own training photos.
The photos that no model here has trained on are those beyond the caps of the two capped sets
(Imagenette: 2,000 of 13,394 kept; Clothing: 1,500 of 5,756), which models/build_photos.py
never puts in a training folder (its caps are seeded and fixed). From them, with a seed of
its own:
  - Imagenette: 20 photos from each of its 10 classes (200), its train/ and val/ folders alike;
  - Clothing: 120 photos;
through the same normalisation and filters as the training folder (no prints, no flat graphics;
colour photos of gray scenes are kept, as users will bring them), and unlike (perceptual hash,
Hamming distance 10, whole image and centre square) any photo of the data pack (train and val),
of the training folder `<more>` (gray-scenes/ included), of `<more>-unseen` and of
`<more>-gray-heldout`, and any photo already taken. models/build_photos.py in turn refuses
photos like these (its --exclude defaults to ../photos-test), so a later training folder with
larger caps cannot take them in.

Needs the sets unpacked by models/build_photos.py (`<more>.sources/`), or --mirror as it takes.
"""

from __future__ import annotations

import argparse
import random
import sys
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import build_photos as bp  # noqa: E402

QUOTAS = {"imagenette": ("per class", 20), "clothing": ("total", 120)}
SEED = "remaster-test-set"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="the test folder (outside the repository)")
    parser.add_argument("--more", type=Path, required=True, help="the training folder built by models/build_photos.py")
    parser.add_argument("--mirror", type=Path, help="folder of local repository copies (OWNER+NAME/repo)")
    parser.add_argument("--pack", type=Path, default=Path(__file__).resolve().parents[1] / "../shared/data/photos")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    out, more = args.out.resolve(), args.more.resolve()
    if out.is_relative_to(Path(__file__).resolve().parents[1]):
        sys.exit(f"{out}: inside the repository; build the folder elsewhere (photos are never committed)")
    if out.exists() and any(out.iterdir()):
        sys.exit(f"{out}: exists and is not empty; remove it to rebuild")
    out.mkdir(parents=True, exist_ok=True)
    seen = [
        args.pack / "train",
        args.pack / "val",
        more,
        more.parent / (more.name + "-unseen"),
        more.parent / (more.name + "-gray-heldout"),
    ]
    index = bp.HashIndex([])
    for folder in seen:
        if not folder.is_dir():
            sys.exit(f"{folder}: missing (build the training and validation folders first)")
        index.values = np.concatenate([index.values, np.array(bp.hash_folder(folder), dtype=np.uint64)])
        print(f"hashed {folder}: {index.values.size // 2} photos so far", flush=True)

    work = more.parent / (more.name + ".sources")
    sets = {photo_set.name: photo_set for photo_set in bp.SETS}
    rows, verdicts = [], Counter()
    for name, (kind, quota) in QUOTAS.items():
        photo_set = sets[name]
        root = bp.unpack(photo_set, args.mirror, work / "downloads", work)
        _, beyond_cap = bp.candidates(photo_set, root)
        groups: dict[str, list] = {}
        for job in beyond_cap:
            klass = job[1].relative_to(root).parts[-2] if kind == "per class" else ""
            groups.setdefault(klass, []).append(job)
        for klass, jobs in sorted(groups.items()):
            jobs = sorted(jobs)
            random.Random(f"{SEED}-{name}-{klass}").shuffle(jobs)
            taken = 0
            with ProcessPoolExecutor(args.workers) as pool:
                for start in range(0, len(jobs), 32):
                    if taken >= quota:
                        break
                    batch = [(n, str(p)) for n, p in jobs[start : start + 32]]
                    for photo, path, verdict, pair, _ in pool.map(bp.examine, batch):
                        if taken >= quota:
                            break
                        if pair is not None and index.near(pair):
                            verdict = "duplicate"
                        verdicts[(name, verdict)] += 1
                        if verdict not in ("ok", "gray scene"):
                            continue
                        index.add(pair)
                        bp.save(Path(path), out / photo)
                        rows.append(
                            (photo, name, photo_set.licence, f"{photo_set.repo}:{Path(path).relative_to(root)}")
                        )
                        taken += 1
            print(f"{name} {klass}: {taken}", flush=True)
    with open(out / "MANIFEST.tsv", "w") as manifest:
        manifest.write("file\tset\tlicence\torigin\n")
        for row in sorted(rows):
            manifest.write("\t".join(row) + "\n")
    with open(out / "VERDICTS.md", "w") as notes:
        notes.write("| set | verdict | photos examined |\n|---|---|---|\n")
        for (name, verdict), count in sorted(verdicts.items()):
            notes.write(f"| {name} | {verdict} | {count} |\n")
    print(f"{out}: {len(rows)} test photos ({dict(Counter(r[1] for r in rows))})", flush=True)


if __name__ == "__main__":
    main()
