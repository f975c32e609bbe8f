"""A colorist's keyframes: color images that say what given frames of a film look like.

`read_keyframes(folder, film)` reads every image in `folder` (any format and bit depth
`remaster image` reads) and places it on a frame of the film, before any work starts:

- a file whose stem is a number (`000874.png`) is the color version of that frame, a 0-based
  index in presentation order;
- any other image is matched to the frame it fits best by luma similarity (normalised
  cross-correlation at 64 px on the short side); the match and its score are reported, and an
  image that fits no frame well is refused, naming the best candidate.

A keyframe of another size is resized; another aspect ratio, an index beyond the film, an
unreadable file or a gray image is a one-line `InputError`. The keyframe's chroma, in the
film's matrix, is what the carry (keyframe propagation) starts from.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from remaster.color import rgb_to_chroma, rgb_to_luma
from remaster.errors import ConfigError, InputError

# A match below this normalised cross-correlation of the lumas is no match: two different
# frames of one static shot still score above 0.95, another shot of the same scene below 0.8.
MATCH_THRESHOLD = 0.9
_MATCH_SIDE = 64  # short side of the lumas compared when matching by content
_GRAY = 2 / 255  # an image whose chroma never exceeds this (in [-0.5, 0.5]) holds no color
_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp"}


@dataclass(frozen=True)
class Keyframe:
    frame: int  # 0-based index in presentation order
    path: Path
    chroma: torch.Tensor  # (1, 2, H, W) float32 (Cb, Cr) offsets at the film's size, in its matrix
    luma: torch.Tensor  # (1, 1, H, W) float32 Y' in [0, 1]: the image's own, for its confidence
    score: float | None = None  # similarity of the matched frame; None when named by its index

    def describe(self) -> dict:
        return {
            "file": self.path.name,
            "frame": self.frame,
            "matched": self.score is not None,
            "similarity": None if self.score is None else round(self.score, 4),
        }


def _small(luma: torch.Tensor) -> torch.Tensor:
    """`(N, 1, H, W)` -> zero-mean, unit-norm vectors of the luma at `_MATCH_SIDE` px: `(N, D)`."""
    h, w = luma.shape[-2:]
    scale = _MATCH_SIDE / min(h, w)
    size = (max(1, round(h * scale)), max(1, round(w * scale)))
    small = F.interpolate(luma.float(), size=size, mode="bilinear", antialias=True, align_corners=False).flatten(
        1
    )  # (N, D)
    small = small - small.mean(1, keepdim=True)
    return small / small.norm(dim=1, keepdim=True).clamp_min(1e-6)


def _image(path: Path, width: int, height: int, matrix: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(luma (1, 1, H, W), chroma (1, 2, H, W)) of a color image, resized to the film's size."""
    from remaster.media.stills import read_photo

    try:
        photo = read_photo(path)
    except InputError as error:
        raise InputError(f"{path}: keyframe cannot be read ({str(error).split(': ', 1)[-1]})") from None
    if photo.rgb is None:
        raise InputError(f"{path}: keyframe is a gray image; a keyframe says what the colors are: give a color image")
    h, w = photo.rgb.shape[:2]
    if abs(w / h - width / height) > 0.01 * width / height:
        raise InputError(
            f"{path}: keyframe is {w}x{h} (aspect {w / h:.3f}), the film is {width}x{height} "
            f"(aspect {width / height:.3f}); crop it to the film's frame"
        )
    rgb = torch.from_numpy(np.asarray(photo.rgb, dtype=np.float32) / photo.scale).permute(2, 0, 1)[None]  # (1, 3, h, w)
    if (h, w) != (height, width):
        rgb = F.interpolate(rgb, size=(height, width), mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)
    luma, chroma = rgb_to_luma(rgb, matrix), rgb_to_chroma(rgb, matrix)  # (1, 1, H, W), (1, 2, H, W) signed offsets
    if float(chroma.abs().max()) <= _GRAY:
        raise InputError(f"{path}: keyframe is a gray image; a keyframe says what the colors are: give a color image")
    return luma, chroma


def read_keyframes(folder, *, width: int, height: int, frames: int, matrix: str, film_lumas=None) -> list[Keyframe]:
    """Every keyframe in `folder`, placed on a frame of a film of `frames` frames of
    `width` x `height` pixels. `film_lumas()` gives the film's lumas as `(index, (N, 1, h, w)
    tensor)` batches, read only when some image must be matched by content."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: keyframes folder not found")
    paths = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in _IMAGE_SUFFIXES)
    if not paths:
        raise InputError(f"{folder}: no images in the keyframes folder (expected .png, .jpg, .tif, .webp or .bmp)")
    images = {path: _image(path, width, height, matrix) for path in paths}  # every file checked before any work
    named, unnamed = {}, []
    for path in paths:
        if path.stem.isdigit():
            index = int(path.stem)
            if index >= frames:
                raise InputError(
                    f"{path}: keyframe for frame {index}, but the film has {frames} frames (0..{frames - 1})"
                )
            if index in named:
                raise InputError(f"{path}: a second keyframe for frame {index} (also {named[index].name})")
            named[index] = path
        else:
            unnamed.append(path)
    keyframes = [Keyframe(index, path, images[path][1], images[path][0]) for index, path in named.items()]
    if unnamed:
        keyframes += _match(unnamed, images, film_lumas)
    taken: dict[int, Keyframe] = {}
    for keyframe in sorted(keyframes, key=lambda k: k.frame):
        if keyframe.frame in taken:
            raise InputError(
                f"{keyframe.path}: fits frame {keyframe.frame}, which {taken[keyframe.frame].path.name} already colors"
            )
        taken[keyframe.frame] = keyframe
    return list(taken.values())


def _match(paths: list[Path], images: dict, film_lumas) -> list[Keyframe]:
    if film_lumas is None:
        raise InputError(
            f"{paths[0]}: keyframe is not named by a frame number, and no film was given to match it against"
        )
    wanted = torch.cat([_small(images[p][0]) for p in paths])  # (K, D)
    best = torch.full((len(paths),), -2.0)
    where = torch.zeros(len(paths), dtype=torch.long)
    for first, lumas in film_lumas():
        scores = wanted @ _small(lumas).T  # (K, N) cosine of zero-mean lumas: the correlation
        value, index = scores.max(1)
        better = value > best
        best = torch.where(better, value, best)
        where = torch.where(better, index + first, where)
    found = []
    for k, path in enumerate(paths):
        score = float(best[k])
        if score < MATCH_THRESHOLD:
            raise InputError(
                f"{path}: keyframe fits no frame of the film well: the best is frame {int(where[k])} with similarity "
                f"{score:.3f} (at least {MATCH_THRESHOLD} needed); name the file by its frame number, "
                f"e.g. {int(where[k]):06d}{path.suffix}"
            )
        found.append(Keyframe(int(where[k]), path, images[path][1], images[path][0], score))
    return found


def place_keyframes(folder, input: Path, source, frames: int, colorizer, temporal, *, progress: bool = True):
    """The colorist's keyframes, placed on the film's frames and handed to the temporal stage at
    the network's working size (a keyframe at 4K would hold 66 MB; at 256 px, under 1 MB).
    Returns them and what was handed over (workers hand it to their own chains). With `progress`,
    the pass that matches keyframes by content shows its progress, and each keyframe's place is
    said (on stderr) as soon as it is known, before any colorizing."""
    from remaster.media.reader import VideoReader
    from remaster.progress import Progress

    if temporal is None:
        raise ConfigError(
            "keyframes are carried along the film's motion: use --flow dis or raft (not none), and a strength above 0"
        )
    bar = None

    def film_lumas():  # only read when some keyframe must be matched by content
        nonlocal bar
        bar = Progress(frames, "matching keyframes to the film's frames", enabled=progress)
        with VideoReader(input) as reader:
            for batch in reader.batches(8, (1, 1)):
                yield batch.index, batch.luma()  # (N, 1, H, W)
                bar.update(len(batch))

    try:
        placed = read_keyframes(
            folder, width=source.width, height=source.height, frames=frames, matrix=source.matrix, film_lumas=film_lumas
        )
    finally:
        if bar is not None:
            bar.close()
    for keyframe in placed if progress else ():
        how = (
            f"matched by content, similarity {keyframe.score:.4f}"
            if keyframe.score is not None
            else "named by its number"
        )
        print(f"remaster: keyframe {keyframe.path.name} -> frame {keyframe.frame} ({how})", file=sys.stderr, flush=True)
    size = colorizer.working_size(source.height, source.width)
    small = lambda t: F.interpolate(t, size=size, mode="bilinear", antialias=True, align_corners=False)
    chroma, lumas = {k.frame: small(k.chroma) for k in placed}, {k.frame: small(k.luma) for k in placed}
    temporal.set_keyframes(chroma, lumas)
    return placed, (chroma, lumas)


def export_frames(input, frames: list[int], folder, *, force: bool = False) -> list[Path]:
    """Write frames `frames` (0-based, presentation order, as `--keyframes` numbers them) of the
    film `input` as PNGs `NNNNNN.png` in `folder`: the pictures a colorist colors and puts back
    under the same names. A film in color (a color print, a color transfer) gives its own colors,
    RGB as decoded; a black-and-white one gives gray pictures of its full-range luma. 16-bit
    where the film has more than 8 bits. An index past the film's end is an error naming its
    length, and then nothing is written."""
    from remaster.media.reader import VideoReader
    from remaster.media.stills import write_image

    folder = Path(folder)
    wanted = sorted(set(frames))
    if not wanted or wanted[0] < 0:
        raise InputError(f"{input}: give frame numbers from 0 up, e.g. --at 0,120,300")
    pictures = {}  # frame -> ((H, W) full-range luma codes, (H, W) decoded Y codes): a few frames
    with VideoReader(input) as reader:
        deep = reader.source.bit_depth > 8
        todo = list(wanted)
        for batch in reader.batches(8, (1, 1)):
            luma = batch.luma()  # (N, 1, H, W) in [0, 1]
            while todo and todo[0] < batch.index + len(batch):
                j = todo[0] - batch.index
                codes = np.round(luma[j, 0].numpy() * (65535 if deep else 255)).astype(np.uint16 if deep else np.uint8)
                pictures[todo.pop(0)] = (codes, batch.y[j, 0].numpy())
            if not todo:
                break
        count = reader.frames_read - reader.lead_frames if todo else None
        source = reader.source
    if todo:
        raise InputError(f"{input}: no frame {todo[0]}: the film has {count} frames (0..{count - 1}); nothing written")
    colors = {} if source.pix_fmt.startswith("gray") else _colors(input, source, pictures)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for frame, (codes, _) in pictures.items():
        path = folder / f"{frame:06d}.png"
        rgb = colors.get(frame)
        write_image(path, rgb if rgb is not None else np.repeat(codes[..., None], 3, -1), force=force)
        written.append(path)
    return written


def _colors(input, source, pictures: dict) -> dict:
    """frame -> (H, W, 3) RGB (uint8, or uint16 for a deep film) of the wanted frames that hold
    color, as FFmpeg converts them with the film's matrix and range. Each is taken from the
    picture whose Y codes are the reader's for that frame number (a frame the decoder numbers
    otherwise, in a damaged file, stays gray)."""
    import av

    deep = source.bit_depth > 8
    neutral = 2 * 257 if deep else 2  # R, G and B this close everywhere: a gray picture
    colors = {}
    with av.open(str(input)) as container:
        stream = next(s for s in container.streams.video if not s.disposition & av.stream.Disposition.attached_pic)
        stream.thread_type = "AUTO"
        for index, frame in enumerate(container.decode(stream)):
            if index in pictures:
                try:
                    same = np.array_equal(source.y_codes(frame), pictures[index][1])
                except ValueError:  # its size or format changed mid-stream: fitted, not as decoded
                    same = False
                rgb = None
                if same:
                    how = {"format": "rgb48le" if deep else "rgb24"}
                    if source.convert_to is None:  # Y'CbCr: its matrix and range (an RGB film has neither)
                        how |= {
                            "src_colorspace": "itu709" if source.matrix == "bt709" else "itu601",
                            "src_color_range": "JPEG" if source.full_range else "MPEG",
                            "dst_color_range": "JPEG",
                        }
                    rgb = frame.reformat(**how).to_ndarray()  # (H, W, 3)
                if rgb is not None and int((rgb.max(-1).astype(np.int32) - rgb.min(-1)).max()) > neutral:
                    colors[index] = rgb
            if index >= max(pictures):
                break
    return colors
