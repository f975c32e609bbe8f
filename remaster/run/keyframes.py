"""A colorist's keyframes: color images that say what given frames of a film look like.

`read_keyframes(folder, film)` reads every image in `folder` (any format and bit depth
`remaster image` reads) and places it on a frame of the film, before any work starts:

- a file whose stem is a number (`000874.png`) is the color version of that frame, a 0-based
  index in presentation order;
- any other image is matched by content: the film's frames are ranked by a tone-invariant
  similarity (locally normalised luma: a print's other tone curve changes it little), the best
  few are registered to the image, and the one it registers best to is its frame. An image that
  registers to no frame well is refused, naming the best candidate.

A *palette reference*, a file named `palette-...` (a period photograph of the same place, a
costume still: a picture of no frame of the film), gives its colors by tone to a shot, not its
colors by place: `palette-000874.jpg` to the shot of frame 874, `palette-street.jpg` to the shot
of the frame it resembles most (ranked as above, with no threshold: the name says what it is).
Its tones are first matched to that frame's (quantile mapping, so a print's other tone curve
does not move its colors to other tones), and it is handed on as a keyframe of that frame that
covers nothing (coverage 0): the carry keeps none of it, and the fill colors the shot with its
palette (RESULTS.md, "A reference of no frame").

Any other image is *registered* to its frame (stages/keyframes/register.py): an affine map
(a crop, a scale, a small rotation: a print, a scan, a frame grab from another transfer) and a
smoothed dense refinement, so its colors land where the film has them; the pixels it does not
cover get no confidence, and the carry's fill colors them. Only its color is used, never its
tones: the keyframe's chroma is taken in the film's terms (`register.carry_chroma`) and its luma
is the film frame's own. An aspect ratio more than `ASPECT_TOLERANCE` off the film's, an index
beyond the film, an unreadable file or a gray image is a one-line `InputError`.
"""

from __future__ import annotations

import heapq
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from remaster.color import rgb_to_chroma, rgb_to_luma
from remaster.errors import ConfigError, InputError
from remaster.stages.keyframes import register as reg

# A match below this tone-invariant similarity after registration is no match: on the data
# pack's clips, print-like references (cropped, scaled, toned, JPEG) of a frame register to it at
# 0.55-0.92, to frames of another film at 0.12 at most.
MATCH_THRESHOLD = 0.4
ASPECT_TOLERANCE = 0.12  # a crop of up to about 10% a side, which registration explains
# An image at the film's size whose luma is the frame's within this at 99% of its pixels (5 code
# values: rounding, a lossy copy) is the frame itself: it is not registered (a shift of a pixel or
# more moves every edge by far more than this on more than 1% of a real picture).
SAME_PICTURE = 0.02
FINE_SHORT_SIDE = 720  # the finest a keyframe's chroma is carried at (the output's chroma planes, at most)
_CANDIDATES = 8  # frames registered per image matched by content, the best ranked by signature
_GRAY = 2 / 255  # an image whose chroma never exceeds this (in [-0.5, 0.5]) holds no color
_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp"}
PALETTE_PREFIX = "palette-"  # a reference of no frame: its colors by tone, for a shot


@dataclass(frozen=True)
class Keyframe:
    frame: int  # 0-based index in presentation order
    path: Path
    chroma: torch.Tensor  # (1, 2, H, W) float32 (Cb, Cr) offsets at the film's size, in its matrix
    luma: torch.Tensor  # (1, 1, H, W) float32 Y' in [0, 1]: the film frame's (the image's own without a film)
    score: float | None = None  # similarity of the matched frame; None when named by its index
    coverage: torch.Tensor | None = None  # (1, 1, H, W) in [0, 1]: where the image has picture (None: all)
    registration: dict | None = None  # register.Registration.describe(); None when not registered
    palette: bool = False  # a palette reference: its colors by tone for the frame's shot, none by place

    def describe(self) -> dict:
        return {
            "file": self.path.name,
            "frame": self.frame,
            "matched": self.score is not None,
            "similarity": None if self.score is None else round(self.score, 4),
            "registration": self.registration,
            "palette": self.palette,
        }


def _work_size(height: int, width: int) -> tuple[int, int]:
    """The size the film's frames are registered at: the film's, at most `register._FINE_SIDE` long."""
    s = min(1.0, reg._FINE_SIDE / max(height, width))
    return max(8, round(height * s)), max(8, round(width * s))


def _image(path: Path, width: int, height: int) -> np.ndarray:
    """A color image `(h, w, 3)` float32 RGB in [0, 1], at most the film's scale (larger ones shrunk);
    of about the film's aspect unless it is a palette reference (a picture of no frame)."""
    from remaster.media.stills import read_photo

    try:
        photo = read_photo(path)
    except InputError as error:
        raise InputError(f"{path}: keyframe cannot be read ({str(error).split(': ', 1)[-1]})") from None
    if photo.rgb is None:
        raise InputError(f"{path}: keyframe is a gray image; a keyframe says what the colors are: give a color image")
    h, w = photo.rgb.shape[:2]
    if abs(w / h - width / height) > ASPECT_TOLERANCE * width / height and not _is_palette(path):
        raise InputError(
            f"{path}: keyframe is {w}x{h} (aspect {w / h:.3f}), the film is {width}x{height} "
            f"(aspect {width / height:.3f}); crop it to the film's frame"
        )
    rgb = np.ascontiguousarray(np.asarray(photo.rgb, dtype=np.float32) / photo.scale)  # (h, w, 3)
    s = max(width / w, height / h)
    if s < 1:
        rgb = reg._resize(rgb, (max(8, round(h * s)), max(8, round(w * s))))
    chroma = rgb_to_chroma(torch.from_numpy(rgb).permute(2, 0, 1)[None])
    if float(chroma.abs().max()) <= _GRAY:
        raise InputError(f"{path}: keyframe is a gray image; a keyframe says what the colors are: give a color image")
    return rgb


def _is_palette(path: Path) -> bool:
    return path.stem.lower().startswith(PALETTE_PREFIX)


def _luma_of(rgb: np.ndarray) -> np.ndarray:
    return rgb_to_luma(torch.from_numpy(rgb).permute(2, 0, 1)[None])[0, 0].numpy()  # (h, w) bt601: tones only


def _stretched(path, rgb, width: int, height: int, matrix: str, score) -> Keyframe:
    """Without the film's frame: the image stretched onto the film's size, its own luma (frame to be set)."""
    t = torch.from_numpy(rgb).permute(2, 0, 1)[None]
    if t.shape[-2:] != (height, width):
        t = F.interpolate(t, size=(height, width), mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)
    return Keyframe(-1, path, rgb_to_chroma(t, matrix), rgb_to_luma(t, matrix), score)


def _placed(path, rgb, frame: int, luma: np.ndarray, width: int, height: int, matrix: str, score) -> Keyframe:
    """The image registered to the film's frame `frame` (its luma `luma`, at the work size)."""
    film = torch.from_numpy(reg._resize(luma.astype(np.float32), (height, width)))[None, None]  # (1, 1, H, W)
    if rgb.shape[:2] == (height, width):
        image = torch.from_numpy(rgb).permute(2, 0, 1)[None]  # (1, 3, H, W)
        difference = (rgb_to_luma(image, matrix) - film).abs().flatten()
        if float(difference.quantile(0.99) if difference.numel() <= 1 << 24 else difference.max()) <= SAME_PICTURE:
            # The film's own frame colored (a true keyframe, a frame exported and colored without
            # reframing): it sits where it is, and registering it would cost ~0.35 s for nothing.
            return Keyframe(
                frame,
                path,
                rgb_to_chroma(image, matrix),
                film,
                score,
                None,
                reg.Registration((height, width), (height, width), np.eye(3), None, 1.0, 0.0, 1.0).describe(),
            )
    registration = reg.register(_luma_of(rgb), luma).at((height, width))
    warped, coverage = registration.warp(rgb)  # (H, W, 3), (H, W)
    warped = torch.from_numpy(np.ascontiguousarray(warped)).permute(2, 0, 1)[None]  # (1, 3, H, W)
    own = rgb_to_luma(warped, matrix)
    chroma = rgb_to_chroma(warped, matrix)[0].numpy()  # (2, H, W)
    chroma = reg.carry_chroma(chroma, own[0, 0].numpy(), film[0, 0].numpy(), coverage)  # kept where tones agree
    return Keyframe(
        frame,
        path,
        torch.from_numpy(chroma)[None],
        film,
        score,
        torch.from_numpy(coverage)[None, None] if float(coverage.min()) < 1 else None,  # None: all of it
        registration.describe(),
    )


def _palette_of(path, rgb, frame: int, luma: np.ndarray, width: int, height: int, matrix: str, score) -> Keyframe:
    """A palette reference for frame `frame` (its luma `luma`, at the work size): the image's
    colors at the film's size with its tones mapped onto the frame's by quantiles (a print's tone
    curve, another exposure), covering nothing, so only its colors by tone are used."""
    t = torch.from_numpy(rgb).permute(2, 0, 1)[None]  # (1, 3, h, w)
    if t.shape[-2:] != (height, width):
        t = F.interpolate(t, size=(height, width), mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)
    own = rgb_to_luma(t, matrix)[0, 0].numpy()  # (H, W)
    steps = np.linspace(0, 1, 257)
    tones = np.interp(own, np.quantile(own, steps), np.quantile(luma.astype(np.float32), steps))  # (H, W)
    mapped = torch.from_numpy(tones.astype(np.float32))[None, None]  # (1, 1, H, W)
    return Keyframe(frame, path, rgb_to_chroma(t, matrix), mapped, score, torch.zeros_like(mapped), None, True)


def read_keyframes(folder, *, width: int, height: int, frames: int, matrix: str, film_lumas=None) -> list[Keyframe]:
    """Every keyframe in `folder`, placed on a frame of a film of `frames` frames of
    `width` x `height` pixels. `film_lumas()` gives the film's lumas as `(index, (N, 1, h, w)
    tensor)` batches (any size); without it, numbered images are stretched onto their frames and
    images not named by a number are refused."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: keyframes folder not found")
    paths = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in _IMAGE_SUFFIXES)
    if not paths:
        raise InputError(f"{folder}: no images in the keyframes folder (expected .png, .jpg, .tif, .webp or .bmp)")
    images = {path: _image(path, width, height) for path in paths}  # every file checked before any work
    named, unnamed, palettes = {}, [], {}  # palettes: path -> the frame it names, or None
    for path in paths:
        if _is_palette(path):
            number = path.stem[len(PALETTE_PREFIX) :]
            palettes[path] = int(number) if number.isdigit() else None
            if number.isdigit() and int(number) >= frames:
                raise InputError(
                    f"{path}: palette for the shot of frame {number}, but the film has {frames} frames "
                    f"(0..{frames - 1})"
                )
        elif path.stem.isdigit():
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
    if (unnamed or palettes) and film_lumas is None:
        raise InputError(
            f"{(unnamed or list(palettes))[0]}: keyframe is matched against the film's frames, and no film was given"
        )
    if film_lumas is None:
        keyframes = [
            replace(_stretched(path, images[path], width, height, matrix, None), frame=index)
            for index, path in named.items()
        ]
    else:
        numbered = set(named) | {f for f in palettes.values() if f is not None}
        to_match = unnamed + [p for p, f in palettes.items() if f is None]
        lumas, candidates = _scan(film_lumas, numbered, {p: images[p] for p in to_match}, width, height)
        keyframes = [  # a frame the film does not hold after all (a damaged file): stretched onto it
            _placed(path, images[path], index, lumas[index], width, height, matrix, None)
            if index in lumas
            else replace(_stretched(path, images[path], width, height, matrix, None), frame=index)
            for index, path in named.items()
        ]
        keyframes += [_match(path, images[path], candidates[path], width, height, matrix) for path in unnamed]
        for path, frame in palettes.items():
            if frame is None:  # the frame it resembles most: its shot is the one it shows
                score, index, frame_luma = _best_candidate(_luma_of(images[path]), candidates[path])
                keyframes.append(_palette_of(path, images[path], index, frame_luma, width, height, matrix, score))
            else:  # a frame the film does not hold after all (a damaged file): the image's own tones
                luma = lumas.get(frame, _luma_of(images[path]))
                keyframes.append(_palette_of(path, images[path], frame, luma, width, height, matrix, None))
    taken: dict[int, Keyframe] = {}
    for keyframe in sorted(keyframes, key=lambda k: k.frame):
        if keyframe.frame in taken:
            raise InputError(
                f"{keyframe.path}: fits frame {keyframe.frame}, which {taken[keyframe.frame].path.name} already colors"
            )
        taken[keyframe.frame] = keyframe
    return list(taken.values())


def _scan(film_lumas, named: set, unnamed: dict, width: int, height: int) -> tuple[dict, dict]:
    """One pass over the film: the lumas of the `named` frames (at the work size), and for each
    image of `unnamed` (path -> RGB) its `_CANDIDATES` best frames by signature, as
    `[(signature similarity, frame, luma at the work size)]`. Stops once nothing more is needed."""
    work = _work_size(height, width)
    size = reg.signature_size(height, width)
    wanted = {path: reg.signature(_luma_of(rgb), size) for path, rgb in unnamed.items()}
    heaps: dict[Path, list] = {path: [] for path in unnamed}
    lumas = {}
    for first, batch in film_lumas():
        for n in range(len(batch)):
            index = first + n
            luma = batch[n, 0].float().numpy()  # (h, w)
            if index in named:
                lumas[index] = reg._resize(luma, work).copy()  # not a view: the batch is let go
            if not wanted:
                continue
            mine = reg.signature(luma, size)
            for path, theirs in wanted.items():
                item = (reg.signature_similarity(mine, theirs), -index)
                heap = heaps[path]
                if len(heap) < _CANDIDATES or item > heap[0][:2]:
                    entry = (*item, reg._resize(luma, work).astype(np.float16))
                    (heapq.heappush if len(heap) < _CANDIDATES else heapq.heapreplace)(heap, entry)
        if not wanted and len(lumas) == len(named):
            break
    candidates = {
        path: [(score, -negative, luma.astype(np.float32)) for score, negative, luma in sorted(heap, reverse=True)]
        for path, heap in heaps.items()
    }
    return lumas, candidates


def _best_candidate(luma: np.ndarray, candidates: list) -> tuple[float, int, np.ndarray]:
    """`(score, frame, its luma)` of the candidate the image's `luma` registers to best (`register.rank`;
    ties to the earlier frame)."""
    _, score, negative, frame_luma = max(
        ((*reg.rank(luma, frame_luma), -index, frame_luma) for _, index, frame_luma in candidates), key=lambda s: s[:3]
    )
    return score, -negative, frame_luma


def _match(path: Path, rgb: np.ndarray, candidates: list, width: int, height: int, matrix: str) -> Keyframe:
    """The candidate frame the image registers to best (`register.rank`), registered fully; or a
    one-line refusal naming the best candidate and its score."""
    score, index, frame_luma = _best_candidate(_luma_of(rgb), candidates)
    if score >= MATCH_THRESHOLD:
        keyframe = _placed(path, rgb, index, frame_luma, width, height, matrix, score)
        score = keyframe.registration["similarity"]
        if score >= MATCH_THRESHOLD:
            return replace(keyframe, score=score)
    raise InputError(
        f"{path}: keyframe fits no frame of the film well: the best is frame {index} with similarity "
        f"{score:.3f} after registration (at least {MATCH_THRESHOLD} needed); name the file by its frame number, "
        f"e.g. {index:06d}{path.suffix}, or {PALETTE_PREFIX}{index:06d}{path.suffix} if it is a picture of the place, "
        "not of a frame"
    )


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
        if keyframe.palette:
            how += "; a palette: its colors by tone for the frame's shot"
        if keyframe.registration is not None:
            r = keyframe.registration
            how += (
                f"; registered: scale {r['scale'][0]:.3f}x{r['scale'][1]:.3f}, shift {r['shift'][0]:+.1f},"
                f"{r['shift'][1]:+.1f} px, rotation {r['rotation']:.2f} deg, residual {r['residual']:.2f} px, "
                f"covers {100 * r['coverage']:.0f}%"
            )
        print(f"remaster: keyframe {keyframe.path.name} -> frame {keyframe.frame} ({how})", file=sys.stderr, flush=True)
    size = colorizer.working_size(source.height, source.width)
    small = lambda t, to=size: F.interpolate(t, size=to, mode="bilinear", antialias=True, align_corners=False)
    chroma, lumas = {k.frame: small(k.chroma) for k in placed}, {k.frame: small(k.luma) for k in placed}
    coverage = {k.frame: small(k.coverage) for k in placed if k.coverage is not None and float(k.coverage.min()) < 1}
    # The carry samples each keyframe's chroma at the output's chroma size (stages/keyframes/carry.py,
    # `fine_hint`): a still pixel keeps the colorist's color at full resolution, not the working size's
    # upsampled (on the data pack's near-still clips that resampling alone caps the carry at 47-50 dB).
    # At most FINE_SHORT_SIDE px, so a 4K keyframe holds 7 MB, not 66.
    scale = min(1.0, FINE_SHORT_SIDE / min(source.height, source.width))
    fine_size = (max(1, round(source.height * scale)), max(1, round(source.width * scale)))
    fine = {k.frame: k.chroma if scale == 1 else small(k.chroma, fine_size) for k in placed}
    temporal.set_keyframes(chroma, lumas, coverage, fine)
    return placed, (chroma, lumas, coverage, fine)


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
