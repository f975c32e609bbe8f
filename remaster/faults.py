"""The test hook that stops a run at a named point, so tests can prove that a stopped run resumes.

It lives in the core because every layer that writes part of a film (the segment runner, the
joiner, the pipeline) has a point worth stopping at, and a hook must not make them import each other.
"""

from __future__ import annotations

import os
import signal


def fault(point: str) -> None:
    """Test hook: `REMASTER_KILL_AT=POINT` kills this process with SIGKILL at POINT, to prove
    that a run stopped there resumes (tests/test_resume.py). With `REMASTER_KILL_ONCE=FILE`
    only the first process to get there is killed (it creates FILE), so a retried task then
    passes (tests/test_ray.py). Nothing happens otherwise."""
    if os.environ.get("REMASTER_KILL_AT") == point:
        once = os.environ.get("REMASTER_KILL_ONCE")
        if once:
            try:
                os.close(os.open(once, os.O_CREAT | os.O_EXCL))
            except FileExistsError:
                return
        os.kill(os.getpid(), signal.SIGKILL)
