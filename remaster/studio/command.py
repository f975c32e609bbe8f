"""`remaster studio FILM` (or `remaster studio PHOTO...`): the colorist's local web page."""

from __future__ import annotations

import ipaddress
import sys
import threading
from pathlib import Path

import click

from remaster.errors import ConfigError

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")


def project_folder(paths: list[Path], keyframes: Path | None) -> Path:
    """`--keyframes DIR`, else `FILM.studio/` beside the film (beside the first photograph)."""
    if keyframes is not None:
        return keyframes
    first = paths[0]
    return first.with_name(first.name + ".studio")


def check_host(host: str, allow_remote: bool) -> str:
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        raise ConfigError(f"--host {host!r}: give an IP address of this machine, e.g. 127.0.0.1") from None
    if not loopback and not allow_remote:
        raise ConfigError(
            f"--host {host} would let other machines reach the studio, which reads and writes files here: "
            "add --allow-remote to mean it"
        )
    return host


def _scan(film) -> None:
    """The film read through (frames, shots, thumbnails), its progress on the terminal as in the page."""
    from remaster.errors import RemasterError
    from remaster.progress import Progress

    bar = Progress(film.loading["total"], "reading the film's frames and shots")
    try:
        film.scan(bar.update)
    except RemasterError as error:
        click.echo(f"remaster: {error}", err=True)
    except Exception as error:  # shown in the page too (film.error); the server goes on
        click.echo(f"remaster: {film.path}: {type(error).__name__}: {error}", err=True)
    finally:
        bar.close()
    if film.ready.is_set():
        shots = len(film.shots)
        click.echo(f"remaster: {film.frames} frames, {shots} shot{'' if shots == 1 else 's'}", err=True)


@click.command()
@click.argument("paths", metavar="FILM|PHOTO...", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--keyframes",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="The project folder: keyframes as --keyframes reads them, and project.json (default: FILM.studio/).",
)
@click.option("--model", default=None, help="The automatic colors' model (default: the shipped model).")
@click.option("--hints-model", default=None, help="The model clicks steer (default: the shipped hint model).")
@click.option("--device", default="auto", show_default=True, help="cpu, cuda, cuda:1, mps or auto.")
@click.option("--pipeline", default=None, help="The render's preset (it can be changed in the page).")
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1),
    help="Processes the render colorizes the film's segments in (the page can ask for another count).",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="The address to listen on.")
@click.option("--allow-remote", is_flag=True, help="Allow a --host other machines can reach (with a warning).")
@click.option("--port", default=0, show_default=True, help="The port (0: a free one).")
@click.option("--no-browser", is_flag=True, help="Do not open a browser; just print the address.")
def studio(paths, keyframes, model, hints_model, device, pipeline, workers, host, allow_remote, port, no_browser):
    """A local web page to color a film's keyframes by clicking, preview the carry and render.

    It prints its address with an access token on a line of its own, and opens a browser where
    there is one. Its work lives in the project folder only; the film is never touched.

    \b
    Examples:
      remaster studio reel.mp4
      remaster studio reel.mp4 --keyframes reel-keys/
      remaster studio scan1.jpg scan2.tif
    """
    from remaster.device import resolve_device
    from remaster.studio.engine import Engine
    from remaster.studio.film import open_source
    from remaster.studio.project import Project
    from remaster.studio.server import Studio, StudioServer

    host = check_host(host, allow_remote)
    if host not in LOOPBACK_NAMES and not ipaddress.ip_address(host).is_loopback:
        click.echo(
            f"remaster: warning: the studio listens on {host}: anyone who can reach it and has the token "
            "can read the film's frames and write in the project folder",
            err=True,
        )
    source = open_source(list(paths), scan=False)  # the header only: the page opens while the film is read
    if source.kind == "film":
        threading.Thread(target=_scan, args=(source,), name="studio-scan", daemon=True).start()
    project = Project(project_folder(list(paths), keyframes), source_name=source.name, frames=source.frames)
    engine = Engine(source, project, model=model, hints_model=hints_model, device=str(resolve_device(device)))
    studio_ = Studio(engine, pipeline=pipeline, workers=workers)
    server = StudioServer(studio_, "127.0.0.1" if host == "localhost" else host, port)
    click.echo(f"remaster: the studio's project folder: {project.folder}", err=True)
    click.echo(server.url())
    sys.stdout.flush()
    if not no_browser:
        import webbrowser

        try:
            webbrowser.open(server.url())
        except Exception:  # no browser here: the printed address is enough
            pass
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        click.echo("remaster: studio stopped", err=True)
    finally:
        server.server_close()
