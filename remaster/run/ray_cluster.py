"""`--ray [ADDRESS|local]`: the run plan's segments as Ray Core actor tasks, on one machine or many.

    driver (this process): plan, journal, join, sound ──► Ray: SegmentActor × N ──► segment files
                                                          (model + chain loaded once per actor)

Each actor loads the model and builds the chain once (on its GPU when the cluster has GPUs:
`num_gpus` is set and Ray gives each actor its own), then colorizes the segments it is handed
with the same `run_segment` as every other execution, so the film is the same. A task whose
actor dies (a node lost, a crash) is retried on a restarted actor (`max_restarts`,
`max_task_retries`); an error in the film itself (a bad input) is not retried but ends the run
with one line, and `--resume` keeps the finished segments.

Inputs, segment files and outputs are plain paths: on a cluster they must be on a file system
every node sees at the same path (NFS, a cluster file system), since actors read the input and
write segments into the work folder beside the output. The driver joins and copies the sound.

Ray had no authentication in older releases (2.52 added tokens; README says when they are on),
and dashboards reachable from a network have been taken over (ShadowRay, CVE-2023-48022).
`local` therefore starts an instance bound to 127.0.0.1 only, with no dashboard; a cluster is the
operator's to keep private (README).
"""

from __future__ import annotations

import os
from collections import deque

from remaster.device import cores
from remaster.errors import ConfigError, RemasterError, WorkerError, one_line
from remaster.run.executors import Job, WorkerSetup, execute

RETRIES = 2  # restarts of a dead actor, and retries of the task it was running


def require_ray():
    """Ray, or a one-line error saying how to install it."""
    try:
        import ray
    except ImportError:
        raise ConfigError("--ray needs Ray, which is not installed: pip install 'remaster[ray]'") from None
    return ray


def start_local(num_cpus: int | None = None, num_gpus: int | None = None) -> None:
    """A Ray instance on this machine only: every server bound to 127.0.0.1, no dashboard.

    On Linux Ray resolves "localhost" to the machine's network address and its servers listen
    on all interfaces. With RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER off it takes the loopback address
    as the node's and binds its servers there (checked with `ss -ltn`: GCS, raylet and workers
    on 127.0.0.1 only; tests/test_ray.py reads /proc/net/tcp). The variable is read by the
    processes Ray starts, and by this one as a constant when `ray` was imported, so both are
    set while the instance starts. The address is checked after: an instance that is not on
    the loopback address is shut down again, not used.
    """
    ray = require_ray()
    from ray._private import ray_constants

    saved = os.environ.get(_CLUSTER_VARIABLE), getattr(ray_constants, "ENABLE_RAY_CLUSTER", None)
    os.environ[_CLUSTER_VARIABLE] = "0"
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        ray.init(
            num_cpus=num_cpus or cores(),
            num_gpus=num_gpus,
            include_dashboard=False,
            _node_ip_address="127.0.0.1",
            configure_logging=False,
            log_to_driver=False,
        )
    finally:
        if saved[0] is None:
            os.environ.pop(_CLUSTER_VARIABLE, None)
        else:
            os.environ[_CLUSTER_VARIABLE] = saved[0]
        if saved[1] is not None:
            ray_constants.ENABLE_RAY_CLUSTER = saved[1]
    host = ray.get_runtime_context().gcs_address.rsplit(":", 1)[0]
    if host not in ("127.0.0.1", "localhost", "::1"):
        ray.shutdown()
        raise ConfigError(
            f"--ray local: this Ray {ray.__version__} would listen on {host}, not only on 127.0.0.1; "
            "start a private cluster yourself (README, Scaling out) and pass its address"
        )


_CLUSTER_VARIABLE = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


def connect(address: str) -> bool:
    """Join the cluster at `address`, or start a local instance for "local". Returns True when
    this call started the connection (the caller shuts it down), False when Ray was already up
    in this process (a test's, or an application's own instance: it is left running)."""
    ray = require_ray()
    if ray.is_initialized():
        return False
    if address == "local":
        start_local()
        return True
    try:
        ray.init(address=address, configure_logging=False, log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as error:
        raise ConfigError(
            f"--ray {address}: cannot connect to the Ray cluster ({one_line(error)}); start it with `ray start --head`"
        ) from None
    return True


class SegmentActor:
    """One chain, built once, colorizing segments one at a time (wrapped by `ray.remote`)."""

    def __init__(self, setup: WorkerSetup, device: str, threads: int):
        self.setup = setup
        self.chain = setup.build(device, threads)

    def run(self, job: Job):
        return execute(self.chain, job, self.setup.config)


class RayExecutor:
    """`run(jobs, on_done)` like `WorkerPool`: one actor per GPU of the cluster (or per CPU, or
    `workers` of them; at most `limit`), the next pending segment to whichever actor is free."""

    name = "ray"
    coarse = True  # frames are reported a whole segment at a time, when its task returns

    def __init__(
        self, address: str, setup: WorkerSetup, *, workers: int | None = None, devices=None, limit: int | None = None
    ):
        self.ray = ray = require_ray()
        if devices:
            raise ConfigError("--devices is for --workers on one machine; with --ray, Ray gives each actor its GPU")
        self._started = connect(address)
        try:
            resources = ray.cluster_resources()
            gpus, cpus = int(resources.get("GPU", 0)), max(1, int(resources.get("CPU", 1)))
            gpu = gpus > 0 and setup.config.colorize.device != "cpu"
            count = workers or (gpus if gpu else cpus)
            count = min(count, limit or count)  # never more actors than segments: each loads the model
            # Shares that fit the cluster: an actor asking for more than is free would wait for
            # ever, and the segments handed to it with it.
            share = cpus / count
            options = {"num_cpus": int(share) if share >= 1 else share}
            threads = max(1, int(share))
            if gpu:  # Ray sets CUDA_VISIBLE_DEVICES per actor, so each sees its GPU as cuda:0
                options, device = {"num_gpus": min(1.0, gpus / count), "num_cpus": min(1.0, share)}, "cuda"
            else:
                device = "cpu"
            actor = ray.remote(SegmentActor).options(max_restarts=RETRIES, max_task_retries=RETRIES, **options)
            self.actors = [actor.remote(setup, device, threads) for _ in range(count)]
            self._described = {
                "executor": self.name,
                "workers": count,
                "devices": [device] * count,
                "torch_threads": threads,
                "address": address,
                "nodes": len([n for n in ray.nodes() if n.get("Alive")]),
                "resources": {k: resources[k] for k in ("CPU", "GPU") if k in resources},
            }
        except BaseException:
            self.close()
            raise

    def describe(self) -> dict:
        return self._described

    def run(self, jobs: list[Job], on_done, on_frames=None) -> None:
        ray = self.ray
        pending, idle = deque(jobs), list(self.actors)
        running: dict = {}  # object ref -> (actor, job)
        failure: BaseException | None = None
        while pending or running:
            while idle and pending:
                actor, job = idle.pop(), pending.popleft()
                running[actor.run.remote(job)] = (actor, job)
            ready, _ = ray.wait(list(running), num_returns=1)
            for ref in ready:
                actor, job = running.pop(ref)
                idle.append(actor)
                try:
                    outcome = self._get(ref, job)
                except Exception as error:  # start nothing more; segments in flight finish and are kept
                    failure = failure or error
                    pending.clear()
                    continue
                if on_frames is not None:
                    on_frames(outcome.result.frames)
                on_done(job, outcome)
        if failure is not None:
            raise failure

    def _get(self, ref, job: Job):
        ray = self.ray
        try:
            return ray.get(ref)
        except ray.exceptions.RayTaskError as error:
            cause = getattr(error, "cause", None)
            if isinstance(cause, RemasterError):
                raise type(cause)(one_line(cause)) from None  # the user's problem, as its own one line
            what = f"{type(cause).__name__}: {one_line(cause)}" if cause is not None else one_line(error)
            raise WorkerError(f"a Ray task failed on {job.describe()}: {what}") from error
        except ray.exceptions.RayError as error:  # the actor died more often than it may restart
            raise WorkerError(f"Ray lost {job.describe()} after {RETRIES} retries: {one_line(error)}") from error

    def close(self) -> None:
        ray = self.ray
        for actor in getattr(self, "actors", []):
            try:
                ray.kill(actor)
            except Exception:  # already gone
                pass
        self.actors = []
        if self._started and ray.is_initialized():
            ray.shutdown()
