"""`colorize_video`: a black-and-white film in, a colorized one out, with its luma, sound and time.

    plan (plan.py) ──► for each segment: run_segment (run/segment.py) ──► segment file ──► join (join.py)
                       decode ─► chain of stages ─► assemble ─► encode        + every audio packet

Every run follows its plan: the film is cut at keyframes into segments (one, for a short film),
each colorized by the one frame loop with a fresh encoder and the same warm-up, then the
segments are joined with the input's audio and subtitle packets. The stages are built once per
run (once per worker). Finished segments are journaled in a work folder beside the output
(journal.py), so a run stopped in any way continues with `resume=True`, and the film is the same,
frame for frame and packet for packet, however the run was executed: in this process, in
`workers` processes (run/processes.py) or on a Ray cluster (run/ray_cluster.py); run/executors.py says how.

A `Session` holds what a run shares (the model, the chain, the executor); a `Film` is one
input's preflight, plan, journal, join and report. A folder run (folder.py) is one session over
several films, whose segments all go to the same executor.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

import torch

from remaster.atomic import sha256_of
from remaster.device import threads_per_worker, worker_devices
from remaster.errors import ConfigError, OutputError, RemasterError
from remaster.faults import fault
from remaster.lock import DestinationLock
from remaster.media.audio import plan_tracks
from remaster.media.encoding import choose_layout
from remaster.media.join import join_segments
from remaster.media.reader import VideoReader
from remaster.media.writer import VideoWriter, check_destination
from remaster.progress import Progress
from remaster.run.config import VideoConfig, available_presets, load_preset, make_config
from remaster.run.executors import InProcess, Job, Outcome, WorkerSetup
from remaster.run.journal import Journal, identity, kept_message, remove_stale_partials
from remaster.run.keyframes import place_keyframes
from remaster.run.plan import plan_segments
from remaster.run.report import RunReport, build_report, damage_notice, loss_notice, size_notice, stream_notices
from remaster.stages.chain import build_chain


def colorize_video(
    input,
    output,
    config: VideoConfig | None = None,
    *,
    force: bool = False,
    resume: bool = False,
    progress: bool = True,
    colorizer=None,
    keyframes=None,
    workers: int = 1,
    devices=None,
    ray: str | None = None,
) -> RunReport:
    """Colorize the video `input` into `output`, keeping its luma, sound and timing.

    `keyframes`: a folder of color images of some frames (run/keyframes.py); their colors are
    carried forward along the motion through their shots.

    `force` overwrites an existing output (and drops an interrupted run's work); `resume`
    continues an interrupted run from its finished segments. Pass a `Colorizer` to reuse one.
    `workers` > 1 colorizes segments in that many processes, on `devices` round-robin (e.g.
    "cuda:0,cuda:1"; default: every GPU, else the CPU); `ray` ("local" or a cluster's address)
    runs them as Ray tasks instead. The output is the same either way.
    Raises `InputError` for a bad input and `OutputError` for an output that cannot or must not
    be written; the destination is then untouched.
    """
    with Session(
        config or VideoConfig(), colorizer, workers=workers, devices=devices, ray=ray, progress=progress
    ) as session:
        film = Film(input, output, force=force, resume=resume)
        try:
            film.open(session, keyframes)
            session.run([film], film.output.name)
        finally:
            film.close()
    return film.report


class Session:
    """What the films of one run share: the model and chain (built once, on first need), the
    executor of their segments, and torch's thread count (restored on close)."""

    def __init__(
        self,
        config: VideoConfig,
        colorizer=None,
        *,
        workers: int = 1,
        devices=None,
        ray: str | None = None,
        progress: bool = True,
    ):
        if not isinstance(workers, int) or workers < 1:
            raise ConfigError(f"workers must be an integer >= 1, got {workers!r}")
        if devices and workers == 1 and ray is None:
            raise ConfigError("--devices assigns devices to --workers; for one process use --device")
        if ray is not None:
            from remaster.run.ray_cluster import require_ray

            require_ray()  # before any work: a one-line answer with the install command
        self.config, self.colorizer, self.loaded = config, colorizer, colorizer is None
        self.workers, self.devices, self.ray, self.progress = workers, devices, ray, progress
        self.chain = None
        self.keyframes: tuple | None = None  # (chroma, luma) per keyframe at working size, for the workers' chains
        self._threads = torch.get_num_threads()
        self.execution: dict = {}  # the executor's describe(): where the segments ran

    def build(self):
        """The model and chain of this process (the plain run's, and the report's)."""
        if self.chain is None:
            c = self.config.colorize
            if self.colorizer is None:
                from remaster.net.colorizer import Colorizer

                self.colorizer = Colorizer.load(
                    c.model, device=c.device, working_short_side=c.working_short_side, doubt=c.doubt
                )
            if self.colorizer.device.type == "cpu" and c.cpu_threads:
                torch.set_num_threads(c.cpu_threads)  # restored on close: a library must not keep it
            self.chain = build_chain(self.config, self.colorizer)
        return self.chain

    def _say_flow(self) -> None:
        """DESIGN: `auto` says which provider it picked; once the run is accepted, not before a refusal."""
        temporal = self.chain.stage("temporal") if self.chain is not None else None
        if self.config.temporal.flow == "auto" and temporal is not None and self.progress:
            print(f"remaster: flow provider: {temporal.provider_name}", file=sys.stderr)

    def executor(self, jobs: int):
        """What runs the `jobs` segments: never more workers than segments (each costs a start)."""
        if self.ray is None and self.workers == 1:
            return InProcess(self.build(), self.config)
        setup = WorkerSetup.of(self.config, self.colorizer, self.loaded, self.keyframes)
        if self.ray is not None:
            from remaster.run.ray_cluster import RayExecutor

            return RayExecutor(
                self.ray, setup, workers=self.workers if self.workers > 1 else None, devices=self.devices, limit=jobs
            )
        workers = min(self.workers, jobs)
        devices = worker_devices(workers, self.devices, self.config.colorize.device)
        from remaster.run.processes import WorkerPool

        return WorkerPool(setup, devices, threads_per_worker(workers, self.config.colorize.cpu_threads))

    def run(self, films: list[Film], name: str) -> None:
        """Colorize every pending segment of the opened `films`, join each film once its last
        segment is in, and leave each film's `report` (or the error that stopped the run)."""
        films = [f for f in films if f.journal is not None]
        jobs = [job for film in films for job in film.jobs()]
        if films:
            self._say_flow()
        bar = Progress(
            sum(f.plan.frames for f in films), name, enabled=self.progress, done=sum(f.resumed_frames for f in films)
        )
        # Each film is timed on its own: from when its first segment starts to its join. Segments
        # start in job order as executors free up: the first `slots` at once, then job k when the
        # (k - slots + 1)th has finished, so the finishing times say when each began.
        first_job = {}
        for k, job in enumerate(jobs):
            first_job.setdefault(job.film, k)
        finished: list[float] = []
        slots, started = 1, time.perf_counter()

        def on_done(job: Job, outcome: Outcome) -> None:
            film = films[job.film]
            film.record(job, outcome)
            if not film.pending:
                k = first_job[job.film]
                film.finish(self, finished[k - slots] if 0 <= k - slots < len(finished) else started)
            finished.append(time.perf_counter())

        try:
            executor = self.executor(len(jobs)) if jobs else None
            self.execution = (
                executor.describe() if executor is not None else {"executor": "none (every segment was resumed)"}
            )
            try:
                if executor is not None:
                    slots = self.execution.get("workers", 1)
                    if getattr(executor, "coarse", False):  # whole segments at a time: rate from the start
                        bar.begin()
                    executor.run(jobs, on_done, on_frames=bar.update)
            finally:
                if executor is not None:
                    executor.close()
                bar.close()
            for film in films:
                if film.report is None:
                    film.finish(self)  # nothing was left to colorize (a resumed, finished run)
        except KeyboardInterrupt:
            stopped = [f for f in films if f.stop_interrupted(self)]
            if stopped:
                raise OutputError(
                    stopped[0].kept("interrupted") if len(films) == 1 else _kept_films(stopped, "interrupted")
                ) from None
            if any(f.report is None for f in films):
                raise
        except RemasterError as error:
            stopped = [f for f in films if f.report is None]
            for film in stopped:
                film.stop()
            if len(films) == 1 and stopped:
                raise type(error)(f"{error} ({stopped[0].kept('stopped')})") from None
            if stopped:
                raise type(error)(f"{error} ({_kept_films(stopped, 'stopped')})") from None
            raise

    def close(self) -> None:
        torch.set_num_threads(self._threads)

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def _kept_films(films: list[Film], what: str) -> str:
    kept = [f for f in films if f.kept_segments]
    if not kept:
        return f"{what}; nothing was written for {len(films)} film(s)"
    return (
        f"{what}; {len(films)} film(s) not written; the finished segments of {len(kept)} are kept in their work "
        "folders: rerun with --resume to continue"
    )


class Film:
    """One input of a run: opened (checked, planned, journaled, its output locked), then its
    segments recorded as they finish, then joined into its output with a `report`."""

    def __init__(self, input, output, *, force: bool = False, resume: bool = False, index: int = 0):
        self.input, self.output = Path(input), Path(output)
        self.force, self.resume, self.index = force, resume, index
        self.opening = 0.0  # seconds spent opening (checking, planning) this film
        self.began: float | None = None  # when its first segment started (its join, when none was left)
        self.lock = None
        self.journal: Journal | None = None
        self.report: RunReport | None = None
        self.pending: set[int] = set()
        self.seconds: dict[str, float] = {"decode": 0.0}
        self.made = self.cuts = 0
        self.joined = False  # True once the complete film is at the destination

    def open(self, session: Session, keyframes=None) -> None:
        started = time.perf_counter()
        try:
            self._open(session, keyframes)
        finally:
            self.opening = time.perf_counter() - started

    def _open(self, session: Session, keyframes=None) -> None:
        config, input, output = session.config, self.input, self.output
        check_destination(input, output, self.force)
        self.lock = DestinationLock(output)  # one writer per output: a second run refuses
        self.lock.acquire()
        remove_stale_partials(output)  # of runs killed before they could clean up (we hold the lock)
        with VideoReader(
            input, max_frames=config.pipeline.max_frames, strict=config.pipeline.strict, decoder=config.pipeline.decoder
        ) as reader:
            self.layout = choose_layout(reader.source, config.encode.codec)
            notices = (
                config.warnings(output)
                + stream_notices(reader, self.layout)
                + ([reader.decoder_note] if reader.decoder_note else [])
            )
            # Preflight: the output container takes every stream and the encoder starts. Fail
            # now, not after hours, when the segments are joined.
            preflight = VideoWriter(
                output,
                reader,
                self.layout,
                codec=config.encode.codec,
                crf=config.encode.crf,
                preset=config.encode.preset,
            )
            self.encoder = preflight.describe()
            preflight.discard()
            self.tracks = plan_tracks(
                str(input),
                reader.copy_streams,
                preflight.supported,
                preflight.container_name,
                output.name,
                config.encode.audio,
            )
            notices += [note for track in self.tracks if (note := track.note(input.name))]
            self.source, source_format = reader.describe(), reader.source
        chain = session.build()
        p = config.pipeline
        plan = plan_segments(input, p.segment_frames, p.max_frames, warmup=chain.warmup_frames, strict=p.strict)
        notices += plan.notes
        self.placed = []
        if keyframes is not None:  # read and placed before any work: every problem is one line now
            self.placed, session.keyframes = place_keyframes(
                keyframes,
                input,
                source_format,
                plan.frames,
                session.colorizer,
                chain.stage("temporal"),
                progress=session.progress,
            )
            anchors = tuple(k.frame for k in self.placed)
            plan = plan_segments(
                input,
                p.segment_frames,
                p.max_frames,
                warmup=chain.warmup_frames,
                strict=p.strict,
                anchors=anchors,
                reach=config.temporal.keyframe_reach,
            )
        self.plan, self.notices, self.source_format = plan, notices, source_format
        options = config.to_dict() | {"keyframes": [k.describe() | {"sha256": sha256_of(k.path)} for k in self.placed]}
        ident = identity(input, options, session.colorizer.describe(), plan.segments)
        self.journal = Journal.open(output, ident, resume=self.resume, force=self.force)
        self.resumed = len(self.journal.done)
        self.resumed_frames = sum(d["frames"] for d in self.journal.done.values())
        self.pending = {s.index for s in self.journal.pending()}

    def jobs(self) -> list[Job]:
        # Absolute paths: a worker or a Ray actor may run in another folder (or on another node).
        return [
            Job(self.index, self.input.absolute(), s, self.journal.segment_path(s).absolute(), self.layout)
            for s in self.journal.pending()
        ]

    def record(self, job: Job, outcome: Outcome) -> None:
        self.journal.record(job.segment, outcome.result)  # the segment now counts as done
        self.pending.discard(job.segment.index)
        fault(f"segment-done {job.segment.index}")
        self.made += outcome.result.frames
        self.cuts += outcome.cuts
        for name, seconds in outcome.result.seconds.items():
            self.seconds[name] = self.seconds.get(name, 0.0) + seconds

    @property
    def kept_segments(self) -> int:
        return len(self.journal.done) if self.journal is not None else 0

    def finish(self, session: Session, began: float | None = None) -> None:
        """Join the segments into the output, remove the work folder, and write the report.
        `began`: when the film's first segment started (None: none was left to do)."""
        t = time.perf_counter()
        self.began = t if began is None else began
        join_segments(
            self.input,
            self.output,
            self.journal.parts(),
            self.tracks,
            max_frames=session.config.pipeline.max_frames,
            force=self.force,
        )
        self.joined = True
        join = time.perf_counter() - t
        self.journal.remove()
        self.report = self._report(session, join)

    def _report(self, session: Session, join: float) -> RunReport:
        """`seconds`: this film's own, opening it and from its first segment's start to its join."""
        chain, journal, input = session.chain, self.journal, self.input
        stages = {"decode": self.seconds.get("decode", 0.0), **{n: self.seconds.get(n, 0.0) for n in chain.seconds}}
        seconds = (
            stages | {k: v for k, v in self.seconds.items() if k not in stages} | {"join": join}
        )  # in pipeline order
        damaged = journal.damaged()
        report = build_report(
            input=input,
            output=self.output,
            config=session.config,
            frames=journal.frames,
            made=self.made,
            seconds=self.opening + time.perf_counter() - (self.began or time.perf_counter()),
            segments=len(self.plan.segments),
            resumed=self.resumed,
            stage_seconds=seconds,
            colorizer=session.colorizer,
            chain=chain,
            encoder=self.encoder,
            layout=self.layout,
            source=self.source,
            damaged=damaged,
            keyframes=[k.describe() for k in self.placed],
            notices=self.notices
            + damage_notice(input, damaged)
            + size_notice(input, self.source_format, journal.resized())
            + loss_notice(input, journal.cut_short(), journal.retimed()),
        )
        if report.temporal:  # this film's cuts, wherever its segments ran (the chain counts all of its own)
            report = dataclasses.replace(report, temporal=report.temporal | {"cuts": self.cuts})
        return dataclasses.replace(report, execution=dict(session.execution))

    def stop(self) -> None:
        """The run stopped before this film was joined: keep its finished segments, if any."""
        if self.journal is not None and not self.journal.done:
            self.journal.remove()  # nothing worth keeping: leave the folder as it was

    def stop_interrupted(self, session: Session) -> bool:
        """Ctrl-C: True when this film has finished segments to keep (and is not joined)."""
        if self.report is not None or self.journal is None:
            return False
        if self.joined:  # the film is complete at the destination: a Ctrl-C this late only cut the cleanup short
            self.journal.remove()
            self.report = self._report(session, 0.0)
            return False
        if self.journal.done:
            return True
        self.journal.remove()  # nothing finished: nothing to keep
        return False

    def kept(self, what: str) -> str:
        return kept_message(self.output, what)

    def close(self) -> None:
        if self.lock is not None:
            self.lock.release()
            self.lock = None


__all__ = [
    "Film",
    "RunReport",
    "Session",
    "VideoConfig",
    "available_presets",
    "colorize_video",
    "load_preset",
    "make_config",
]
