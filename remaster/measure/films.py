"""The bench's input films: black-and-white films as users have them, made to a size and length.

The pictures are a given clip scaled to the size (ping-pong looped) or synthetic moving shapes; the
film is gray yuv420p H.264 with AAC sound, a sync frame every 2 s (so a run plan has segments).
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

from remaster.errors import InputError


def gray_pictures(width: int, height: int, frames: int, clip: Path | None = None):
    """`(H, W)` uint8 pictures: a clip scaled (ping-pong looped, so no jump cut at each loop), else moving shapes."""
    if clip is not None:
        pictures = []
        with av.open(str(clip)) as container:
            for frame in container.decode(video=0):
                pictures.append(frame.reformat(width=width, height=height, format="gray").to_ndarray())
                if len(pictures) >= frames:
                    break
        if not pictures:
            raise InputError(f"{clip}: no decodable video frame")
        period = max(1, 2 * len(pictures) - 2)
        for i in range(frames):
            k = i % period
            yield pictures[k if k < len(pictures) else period - k]
        return
    y, x = np.mgrid[0:height, 0:width]
    for i in range(frames):
        image = (60 + 100 * x / width + 40 * np.sin(y / 23.0)).astype(np.float32)
        cx, cy = (i * 7) % width, height // 2
        image[(x - cx) ** 2 + (y - cy) ** 2 < (height // 6) ** 2] = 220
        noise = np.random.default_rng(i).normal(0, 4, image.shape)
        yield np.clip(image + noise, 0, 255).astype(np.uint8)


def make_input(
    path: Path, width: int, height: int, frames: int, *, rate: int = 25, audio: bool = True, clip: Path | None = None
) -> Path:
    """A black-and-white film as users have them: gray pictures in yuv420p H.264, AAC sound."""
    partial = path.with_name(path.name + ".partial" + path.suffix)
    with av.open(str(partial), "w") as out:
        # A keyframe every 2 s: the run plan cuts segments at keyframes only, so --workers has some to share out.
        video = out.add_stream("libx264", rate=rate, options={"crf": "20", "preset": "veryfast", "g": str(2 * rate)})
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        sound = out.add_stream("aac", rate=48000, layout="stereo") if audio else None
        for i, gray in enumerate(gray_pictures(width, height, frames, clip)):
            frame = av.VideoFrame.from_ndarray(gray, format="gray").reformat(format="yuv420p")
            frame.pts = i
            for packet in video.encode(frame):
                out.mux(packet)
        for packet in video.encode(None):
            out.mux(packet)
        if sound is not None:
            samples = int(48000 * frames / rate)
            tone = (0.2 * np.sin(2 * np.pi * 440 * np.arange(samples) / 48000)).astype(np.float32)
            for start in range(0, samples, 1024):
                chunk = np.repeat(tone[None, start : start + 1024], 2, axis=0)
                af = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk), format="fltp", layout="stereo")
                af.sample_rate, af.pts = 48000, start
                for packet in sound.encode(af):
                    out.mux(packet)
            for packet in sound.encode(None):
                out.mux(packet)
    partial.replace(path)  # a bench stopped mid-way leaves no half film to reuse
    return path
