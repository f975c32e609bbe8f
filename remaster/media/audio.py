"""Sound and subtitle tracks: copied byte for byte where the output container holds them, else
kept losslessly, never dropped without a word (DESIGN promise 2).

`plan_tracks` decides, before any work, what happens to each audio and subtitle stream of the
input; the join (join.py) carries it out. The choice (`--audio`):

    lossless (default)  copy each track the container holds; decode any other audio track and
                        store its samples as linear PCM of the same depth (A-law/µ-law, DVD
                        LPCM, ADPCM and WMA expand to PCM with no loss of what the decoder gives)
    copy                copy, and refuse a track the container cannot hold (naming a container
                        that can)
    drop                no sound or subtitles at all (said in a note)

Subtitles are always copied: a container that cannot hold a subtitle track is refused under
`copy` and `lossless` alike, with the container that would.
"""

from __future__ import annotations

from dataclasses import dataclass

from remaster.errors import OutputError
from remaster.media.encoding import container_holds

AUDIO_MODES = ("lossless", "copy", "drop")

# Decoded sample format -> the PCM encoder that stores it bit for bit.
_PCM_FOR_FORMAT = {
    "u8": "pcm_s16le",
    "u8p": "pcm_s16le",
    "s16": "pcm_s16le",
    "s16p": "pcm_s16le",
    "s32": "pcm_s32le",
    "s32p": "pcm_s32le",
    "flt": "pcm_f32le",
    "fltp": "pcm_f32le",
    "dbl": "pcm_f64le",
    "dblp": "pcm_f64le",
}
# The packed sample format each PCM encoder takes.
PCM_INPUT_FORMAT = {"pcm_s16le": "s16", "pcm_s24le": "s32", "pcm_s32le": "s32", "pcm_f32le": "flt", "pcm_f64le": "dbl"}


@dataclass(frozen=True)
class Track:
    index: int  # the input stream
    kind: str  # audio | subtitle
    codec: str  # the input's codec
    action: str  # copy | pcm | drop
    encoder: str | None = None  # for pcm: pcm_s16le, pcm_s24le, pcm_s32le, pcm_f32le or pcm_f64le
    why: str = "--audio drop"  # for drop

    def note(self, name: str) -> str | None:
        if self.action == "pcm":
            return (
                f"{name}: {self.kind} stream #{self.index} ({self.codec}) cannot be copied into this container; "
                f"its decoded samples are stored losslessly as {self.encoder}"
            )
        if self.action == "drop":
            return f"{name}: {self.kind} stream #{self.index} ({self.codec}) dropped ({self.why})"
        return None


def sample_bits(ctx) -> int:
    """Significant bits of each decoded sample: the decoder's own count (20 or 24 for DVD LPCM in
    32-bit samples) where this PyAV build exposes it, else the whole sample format's width.

    PyAV's audio codec contexts do not all have `bits_per_raw_sample` (12.3 and 18.1 have none), and a
    decoder may leave it 0; the sample format always says an upper bound, and a bound is all a
    lossless store needs (a 24-bit source in 32-bit PCM keeps every bit, a zero byte per sample more)."""
    width = ctx.format.bits if ctx.format is not None else 16
    return getattr(ctx, "bits_per_raw_sample", None) or width


def pcm_encoder(stream) -> str:
    """The linear PCM that holds a decoded audio stream's samples exactly."""
    ctx = stream.codec_context
    fmt = ctx.format.name if ctx.format is not None else "s16"
    encoder = _PCM_FOR_FORMAT.get(fmt, "pcm_f32le")
    if encoder == "pcm_s32le" and 16 < sample_bits(ctx) <= 24:
        encoder = "pcm_s24le"  # 20/24-bit sources (DVD LPCM): the low byte of their 32-bit samples is zero
    return encoder


def plan_tracks(
    input_name: str, streams, supported: set[str], container: str, output_name: str, mode: str = "lossless"
) -> list[Track]:
    """What happens to each of `streams` (the input's audio/subtitle streams) in a container
    that holds the codecs `supported`; one-line `OutputError` for what cannot be kept."""
    if mode not in AUDIO_MODES:
        raise OutputError(f"--audio must be one of {', '.join(AUDIO_MODES)}, got {mode!r}")
    tracks = []
    for stream in streams:
        codec = stream.codec_context.name if stream.codec_context else "unknown"
        if mode == "drop":
            tracks.append(Track(stream.index, stream.type, codec, "drop"))
        elif stream.type == "audio" and not (stream.codec_context.sample_rate and stream.codec_context.channels):
            # Listed in the header but never written (a capture cut before its first sound packet).
            tracks.append(Track(stream.index, stream.type, codec, "drop", why="the file holds none of its sound"))
        elif codec in supported:
            tracks.append(Track(stream.index, stream.type, codec, "copy"))
        elif stream.type == "audio" and mode == "lossless" and pcm_encoder(stream) in supported:
            tracks.append(Track(stream.index, stream.type, codec, "pcm", pcm_encoder(stream)))
        else:
            fits = [
                ext for ext, f in ((".mkv", "matroska"), (".mov", "mov"), (".mp4", "mp4")) if container_holds(f, codec)
            ]
            hint = f"write to {' or '.join(fits)} instead" if fits else "no common container holds it"
            if stream.type == "audio" and mode == "copy":
                hint += " (or --audio lossless to store its samples as PCM, --audio drop to leave the sound out)"
            raise OutputError(
                f"{input_name}: {stream.type} stream #{stream.index} ({codec}) cannot be copied into the {container} "
                f"container of {output_name}; {hint}"
            )
    return tracks
