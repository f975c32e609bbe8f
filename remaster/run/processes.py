"""`--workers N`: the run plan's segments in N processes on this machine.

Each worker is a fresh interpreter (the spawn start method: a forked child of a process that has
started torch's thread pools, or CUDA, can deadlock). It loads the model and builds the chain
once, on its own device, then colorizes the segments the driver hands it, one at a time, over a
pipe of its own. The driver gives the next pending segment to whichever worker is free, so a
slow segment never holds up the others, and it alone records finished segments in the journal,
so a worker that dies (a crash, the OOM killer, kill -9) loses only its segment in progress:
the run ends with one line and `--resume` keeps every finished segment.
"""

from __future__ import annotations

import multiprocessing as mp
import signal
import traceback
from collections import deque
from dataclasses import dataclass
from multiprocessing.connection import wait

from remaster import errors
from remaster.errors import WorkerError, one_line
from remaster.run.executors import Job, WorkerSetup, execute


@dataclass
class _Worker:
    number: int
    device: str
    process: mp.Process
    conn: object  # the driver's end of the worker's pipe
    job: Job | None = None


class WorkerPool:
    """`run(jobs, on_done, on_frames)` spreads jobs over the workers and calls `on_done(job, outcome)`
    in this thread as each finishes, in the order they finish; `on_frames(n)` as a worker finishes
    each batch of frames (it says so over its pipe), for progress. Raises `WorkerError` (or the worker's own
    `RemasterError`) when one fails; then every worker is stopped."""

    name = "workers"

    def __init__(self, setup: WorkerSetup, devices: list[str], threads: int):
        context = mp.get_context("spawn")
        self.devices, self.threads = list(devices), threads
        self._workers: list[_Worker] = []
        for number, device in enumerate(devices):
            parent, child = context.Pipe()
            process = context.Process(
                target=_serve, args=(child, setup, device, threads), name=f"remaster-worker-{number}", daemon=True
            )
            process.start()
            child.close()  # the worker's end lives in the worker: its death closes the pipe
            self._workers.append(_Worker(number, device, process, parent))

    def describe(self) -> dict:
        return {
            "executor": self.name,
            "workers": len(self.devices),
            "devices": self.devices,
            "torch_threads": self.threads,
        }

    def run(self, jobs: list[Job], on_done, on_frames=None) -> None:
        pending = deque(jobs)
        failure: BaseException | None = None
        while True:
            for worker in self._workers:
                if worker.job is None and pending:
                    worker.job = pending.popleft()
                    worker.conn.send(worker.job)
            busy = [w for w in self._workers if w.job is not None]
            if not busy:
                break
            ready = wait([w.conn for w in busy] + [w.process.sentinel for w in busy])
            for worker in busy:
                if worker.conn in ready or worker.process.sentinel in ready:
                    try:
                        self._collect(worker, on_done, on_frames)
                    except Exception as error:
                        # Start nothing more, but let the other workers finish the segments
                        # they are on: they are kept for --resume. The first failure is told.
                        worker.job = None
                        failure = failure or error
                        pending.clear()
        if failure is not None:
            raise failure

    def _collect(self, worker: _Worker, on_done, on_frames) -> None:
        job = worker.job
        try:
            if not worker.conn.poll():  # the process ended and said nothing
                raise EOFError
            kind, payload = worker.conn.recv()
        except (EOFError, OSError):
            worker.process.join(timeout=5)
            code = worker.process.exitcode
            how = f"was killed by signal {-code}" if code is not None and code < 0 else f"exited with code {code}"
            raise WorkerError(
                f"worker {worker.number} ({worker.device}) {how} while colorizing {job.describe()}"
            ) from None
        if kind == "frames":  # a batch done: the segment goes on
            if on_frames is not None:
                on_frames(payload)
            return
        worker.job = None
        if kind == "done":
            on_done(job, payload)
            return
        name, message, remote = payload
        cls = getattr(errors, name, None)
        if isinstance(cls, type) and issubclass(cls, errors.RemasterError):
            raise cls(message)  # the user's problem (a bad input, a full disk): its own one line
        raise WorkerError(
            f"worker {worker.number} ({worker.device}) failed on {job.describe()}: {name}: {message}"
        ) from RemoteError(remote)

    def close(self) -> None:
        """Stop every worker: a clean exit when idle, SIGTERM (then SIGKILL) when not."""
        for worker in self._workers:
            if worker.process.is_alive() and worker.job is None:
                try:
                    worker.conn.send(None)
                except OSError:
                    pass
        for worker in self._workers:
            worker.process.join(timeout=5 if worker.job is None else 0)
            if worker.process.is_alive():
                worker.process.terminate()
                worker.process.join(timeout=5)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()
            worker.conn.close()
        self._workers = []

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


class RemoteError(Exception):
    """A worker's traceback, as text: shown under `--debug`."""


def _serve(conn, setup: WorkerSetup, device: str, threads: int) -> None:
    """A worker's life: build the chain, then colorize each job received until told to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's to handle: it stops us
    try:
        chain = setup.build(device, threads)
    except BaseException as error:  # no chain, no work: say why on the first job
        chain, failure = None, error
    while True:
        try:
            job = conn.recv()
        except EOFError:  # the driver is gone
            return
        if job is None:
            return
        try:
            if chain is None:
                raise failure
            conn.send(("done", execute(chain, job, setup.config, lambda n: conn.send(("frames", n)))))
        except BaseException as error:
            conn.send(("failed", (type(error).__name__, one_line(error), traceback.format_exc())))
            return
