"""The run report: what a video run did, built by one function for every kind of run.

`RunReport` is what `colorize_video` returns and what `remaster colorize --json` prints
(`to_dict()`). A run that resumed earlier work reports the same film; its timings are this run's.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import av

from remaster.media.formats import fitted_size


@dataclass(frozen=True)
class RunReport:
    input: str
    output: str
    frames: int  # in the output film
    seconds: float  # this run, wall clock
    fps: float | None  # frames this run made / seconds
    segments: int  # in the run plan
    segments_resumed: int  # finished by earlier runs and kept
    stage_seconds: dict  # decode, colorize, temporal, ..., assemble, encode, join
    stage_fps: dict  # frames this run made / the stage's seconds; None where that time is not measurable
    model: dict
    device: str
    flow_provider: str  # what `auto` resolved to; "none" without a temporal stage
    temporal: dict  # the temporal stage's options and the scene cuts it saw
    encoder: dict  # codec (the --codec name), encoder (FFmpeg's, e.g. prores_ks), pix_fmt, options
    output_format: dict  # pix_fmt, range, matrix
    source: dict
    damaged_frames: int
    # The stages that changed the luma that was written, in order; [] = the input's luma,
    # untouched (DESIGN promise 1). `restore`: their options and what they did.
    luma_changed_by: list[str] = field(default_factory=list)
    restore: dict = field(default_factory=dict)
    notices: list[str] = field(default_factory=list)  # what was dropped, repaired or questionable, and why
    keyframes: list[dict] = field(default_factory=list)  # a colorist's keyframes: file, frame, how it was placed
    config: dict = field(default_factory=dict)
    execution: dict = field(default_factory=dict)  # where the segments ran: in-process, workers (devices), ray

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def build_report(
    *,
    input,
    output,
    config,
    frames: int,
    made: int,
    seconds: float,
    segments: int,
    resumed: int,
    stage_seconds: dict,
    colorizer,
    chain,
    encoder: dict,
    layout,
    source: dict,
    damaged: list[int],
    notices: list[str],
    keyframes: list[dict] = (),
) -> RunReport:
    """`made`: frames this run colorized (the others were resumed)."""
    temporal = chain.stage("temporal")
    return RunReport(
        input=str(input),
        output=str(output),
        frames=frames,
        seconds=round(seconds, 3),
        fps=round(made / seconds, 2) if seconds and made else None,
        segments=segments,
        segments_resumed=resumed,
        stage_seconds={k: round(v, 3) for k, v in stage_seconds.items()},
        stage_fps={k: _fps(made, v, seconds) for k, v in stage_seconds.items() if k != "join"},
        model=colorizer.describe(),
        device=str(colorizer.device),
        flow_provider=temporal.provider_name if temporal is not None else "none",
        temporal=temporal.describe() if temporal is not None else {},
        encoder=encoder,
        output_format={
            "pix_fmt": layout.encoder_pix_fmt,
            "range": "full" if layout.full_range else "limited",
            "matrix": layout.matrix,
        },
        source=source,
        damaged_frames=len(damaged),
        luma_changed_by=chain.luma_changed_by,
        restore=chain.front.describe() if chain.front is not None else {},
        notices=list(notices),
        keyframes=list(keyframes),
        config=config.to_dict(),
    )


def _fps(frames: int, stage: float, run: float) -> float | None:
    """A stage's frames per second, or None where its time is too small to measure: under a
    millisecond, or under 0.1% of the run (a shot detector's 40 microseconds would say 1.8 million fps)."""
    if not frames or stage < max(0.001, 0.001 * run):
        return None
    return round(frames / stage, 1)


def stream_notices(reader, layout) -> list[str]:
    """One line for everything of the input that does not make it into the output, and why
    (DESIGN: never drop silently). The CLI prints them on stderr; `--json` reports them too.
    Called while the input is open (stream contexts die with the file)."""
    lines = []
    for stream in reader.container.streams:
        if stream is reader.video or stream in reader.copy_streams:
            continue
        name = stream.codec_context.name if stream.codec_context else "unknown"
        if stream.type == "video" and stream.disposition & av.stream.Disposition.attached_pic:
            why = "a cover-art picture, not part of the film"
        elif stream.type == "video":
            why = f"only the first video stream (#{reader.video.index}) is colorized"
        elif stream.type == "data" and name in ("none", "unknown") and "timecode" in stream.metadata:
            why = f"a timecode track; its start {stream.metadata['timecode']} is carried as the video's timecode"
        else:
            why = f"{stream.type} streams are not copied"
        lines.append(f"{reader.path.name}: stream #{stream.index} ({stream.type}, {name}) dropped: {why}")
    if reader.source.pix_fmt.startswith("yuva"):
        lines.append(f"{reader.path.name}: alpha plane dropped: the output is {layout.encoder_pix_fmt}, which has none")
    return lines


def loss_notice(path, cut_short: list | None, retimed: int) -> list[str]:
    """Where unreadable data ended the film, and frames whose time had to be made up."""
    lines = []
    if cut_short:
        lines.append(
            f"{path.name}: the film ends at frame {cut_short[0]}: the data after it cannot be read ({cut_short[1]}); "
            "every frame before it is colorized"
        )
    if retimed:
        lines.append(
            f"{path.name}: {retimed} frame(s) had no usable timestamp and were given the next one at the film's rate"
        )
    return lines


def damage_notice(path, damaged: list[int]) -> list[str]:
    lines = []
    if damaged:
        shown = ", ".join(map(str, damaged[:10])) + (", ..." if len(damaged) > 10 else "")
        lines.append(
            f"{path.name}: {len(damaged)} damaged frame(s) ({shown}): undecodable ones repeat the previous "
            "good frame, concealed ones are kept"
        )
    return lines


def size_notice(path, source, resized: list[list]) -> list[str]:
    """One line per picture size/format met mid-stream and fitted to the first frame's (DESIGN:
    never drop or change frames silently), e.g. "capture.ts: 50 frames of 480x270 scaled to
    640x360 (aspect kept, bars added): the picture size changed mid-stream at frame 50".
    `resized`: runs [first frame, count, "WxH pix_fmt"] as `VideoReader.resized` holds them;
    `source`: the film's `SourceFormat`."""
    groups: dict[str, list] = {}
    for first, count, what in resized:
        group = groups.setdefault(what, [0, []])
        group[0] += count
        group[1].append(first)
    lines = []
    for what, (count, starts) in groups.items():
        size, pix_fmt = what.split(" ")
        width, height = (int(v) for v in size.split("x"))
        sized = (width, height) != (source.width, source.height)
        formatted = pix_fmt != source.pix_fmt
        shown = ", ".join(map(str, starts[:10])) + (", ..." if len(starts) > 10 else "")
        at = f"at frame{'s' if len(starts) > 1 else ''} {shown}"
        if sized:
            bars = fitted_size(width, height, source.width, source.height) != (source.width, source.height)
            how = "aspect kept, bars added" if bars else "aspect kept"
            if formatted:
                how += f", converted from {pix_fmt} to {source.pix_fmt}"
            lines.append(
                f"{path.name}: {count} frame{'s' if count > 1 else ''} of {size} scaled to "
                f"{source.width}x{source.height} ({how}): the picture size changed mid-stream {at}"
            )
        else:
            lines.append(
                f"{path.name}: {count} frame{'s' if count > 1 else ''} of {pix_fmt} converted to {source.pix_fmt}: "
                f"the pixel format changed mid-stream {at}"
            )
    return lines
