"""`colorize_folder`: every film of a folder, one report row each.

All films are checked, planned and journaled first (a film that cannot be opened gets its row
with the reason, and the others go on); then their pending segments go to one executor, so with
`workers` or `ray` the segments of every film share the processes or the cluster, and each film
is joined as soon as its last segment is in. Each film's work folder sits beside its output, so
`resume=True` continues a stopped folder run film by film.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from remaster.errors import ConfigError, InputError, OutputError, RemasterError, one_line
from remaster.run.config import VideoConfig
from remaster.run.pipeline import Film, RunReport, Session

# Containers FFmpeg reads that hold films (not stills, not sound alone).
VIDEO_EXTENSIONS = (
    ".mp4",
    ".m4v",
    ".mov",
    ".mkv",
    ".webm",
    ".avi",
    ".mxf",
    ".ts",
    ".mts",
    ".m2ts",
    ".mpg",
    ".mpeg",
    ".vob",
    ".dv",
    ".wmv",
    ".flv",
    ".3gp",
    ".ogv",
    ".nut",
)
# Containers remaster writes; a film in another one is written as Matroska, which holds any codec.
OUTPUT_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv")


@dataclass(frozen=True)
class FilmRow:
    """One film of a folder run: its report, or the one line that says why it has none."""

    input: str
    output: str
    report: RunReport | None = None
    error: str | None = None

    def to_dict(self) -> dict:
        return {
            "input": self.input,
            "output": self.output,
            "error": self.error,
            "report": self.report.to_dict() if self.report else None,
        }


def films_in(folder: Path) -> list[Path]:
    """The films directly in `folder` (not in subfolders; hidden files, such as a run's own
    temporary files, are left out), sorted by name."""
    if not folder.is_dir():
        raise InputError(f"{folder}: not a folder")
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in VIDEO_EXTENSIONS
    )


def output_for(film: Path, out_dir: Path) -> Path:
    suffix = film.suffix.lower() if film.suffix.lower() in OUTPUT_SUFFIXES else ".mkv"
    return out_dir / f"{film.stem}{suffix}"


def colorize_folder(
    folder,
    out_dir,
    config: VideoConfig | None = None,
    *,
    force: bool = False,
    resume: bool = False,
    progress: bool = True,
    colorizer=None,
    workers: int = 1,
    devices=None,
    ray: str | None = None,
) -> list[FilmRow]:
    """Colorize every film in `folder` into `out_dir` (created if missing) under its own name
    (extension kept for MP4/MOV/MKV, else .mkv). Returns one `FilmRow` per film, in name order;
    a film that fails has its error there and the others are still written."""
    folder, out_dir = Path(folder), Path(out_dir)
    inputs = films_in(folder)
    if not inputs:
        raise InputError(f"{folder}: no films in this folder (looked for {', '.join(VIDEO_EXTENSIONS[:6])}, ...)")
    outputs = [output_for(p, out_dir) for p in inputs]
    clash = next((o for k, o in enumerate(outputs) if o in outputs[:k]), None)
    if clash is not None:
        names = [p.name for p, o in zip(inputs, outputs) if o == clash]
        raise ConfigError(f"{folder}: {' and '.join(names)} would both be written to {clash.name}; rename one")
    if out_dir.resolve() == folder.resolve():
        raise OutputError(f"{out_dir}: the output folder must not be the input folder")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OutputError(f"{out_dir}: cannot create the output folder: {(error.strerror or '').lower()}") from None
    errors: dict[int, str] = {}
    films: list[Film] = []
    with Session(
        config or VideoConfig(), colorizer, workers=workers, devices=devices, ray=ray, progress=progress
    ) as session:
        try:
            for k, (source, output) in enumerate(zip(inputs, outputs)):
                film = Film(source, output, force=force, resume=resume, index=len(films))
                try:
                    film.open(session)
                except RemasterError as error:
                    film.close()
                    errors[k] = one_line(error)
                    continue
                films.append(film)
            opened = [k for k in range(len(inputs)) if k not in errors]
            try:
                session.run(films, folder.name or str(folder))
            except RemasterError as error:  # the run stopped: every film not yet joined says why
                for k, film in zip(opened, films):
                    if film.report is None:
                        errors[k] = one_line(error)
        finally:
            for film in films:
                film.close()
    reports = {k: film.report for k, film in zip(opened, films)}
    return [FilmRow(str(p), str(o), reports.get(k), errors.get(k)) for k, (p, o) in enumerate(zip(inputs, outputs))]


def format_rows(rows: list[FilmRow]) -> str:
    """A table: one line per film, then a total."""
    lines = [f"{'film':<28} {'frames':>7} {'fps':>7} {'segments':>8} {'seconds':>8}  output"]
    for row in rows:
        name = Path(row.input).name
        if row.report is None:
            lines.append(f"{name:<28} {'-':>7} {'-':>7} {'-':>8} {'-':>8}  failed: {row.error}")
            continue
        r = row.report
        resumed = f" ({r.segments_resumed} resumed)" if r.segments_resumed else ""
        fps = f"{r.fps:.1f}" if r.fps else "-"
        lines.append(f"{name:<28} {r.frames:>7} {fps:>7} {r.segments:>8} {r.seconds:>8.1f}  {row.output}{resumed}")
    done = [r for r in rows if r.report is not None]
    lines.append(f"{len(done)} of {len(rows)} films written, {sum(r.report.frames for r in done)} frames")
    return "\n".join(lines)
