"""Progress for long runs: a live bar on a terminal, a few plain lines in a log.

A bar redrawn with carriage returns is what a person at a terminal wants; in a log file (stderr
redirected, a CI job, a cluster's task output) it becomes one enormous line. So when stderr is not
a terminal, progress is a plain line when the first frames are done, then about every tenth of
what is left (and at least every minute), each with frames, fps and the time left.
"""

from __future__ import annotations

import sys
import time


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}h{seconds // 60 % 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"


class Progress:
    """`update(n)` as frames are done; `close()` at the end. Does nothing when not `enabled`.

    The rate (and the time left) counts only frames done in this process, and only from the
    first `update` on (or from `begin()`): the start-up before it (loading the model, a resumed
    run's earlier frames, a segment's warm-up) says nothing about the time the rest will take.
    Until a rate is known a line says so instead of guessing. Whoever reports only coarsely (a
    whole segment at a time, from Ray) calls `begin()` when the work starts, so the first
    segments' time counts and the estimate stays steady."""

    def __init__(self, total: int | None, name: str, *, enabled: bool = True, done: int = 0, stream=None):
        self.stream = stream or sys.stderr
        self.total, self.name, self.done = total, name, done
        self.enabled = enabled
        self._bar = None
        self._base: tuple[float, int] | None = None  # (time, frames done) the rate counts from
        # A line at the first frames, then every tenth of what is left to do, and at least every minute.
        self._next_fraction = 0.0
        self._next_time = time.perf_counter() + 60
        if enabled and getattr(self.stream, "isatty", lambda: False)():
            from tqdm import tqdm

            self._bar = tqdm(
                total=total, initial=done, unit="frame", desc=name, dynamic_ncols=True, smoothing=0.1, file=self.stream
            )

    def begin(self) -> None:
        """The work starts now: the rate counts from here (for coarse reports, see the class doc)."""
        self._base = (time.perf_counter(), self.done)
        if self._bar is not None:
            self._bar.unpause()  # tqdm's clock too: the time before is not the work's

    def rate(self, now: float | None = None) -> float | None:
        """Frames per second done in this process since the rate's start; None until known."""
        if self._base is None:
            return None
        elapsed = (now or time.perf_counter()) - self._base[0]
        frames = self.done - self._base[1]
        return frames / elapsed if elapsed > 0 and frames > 0 else None

    def update(self, frames: int) -> None:
        first = self._base is None
        if first and self._bar is not None:
            self._bar.unpause()  # the start-up is not counted in tqdm's rate either
        self.done += frames
        if self._bar is not None:
            self._bar.update(frames)
        if first:  # the first frames carry the start-up: the rate counts from after them
            self._base = (time.perf_counter(), self.done)
        if self._bar is None and self.enabled:
            now = time.perf_counter()
            fraction = self.done / self.total if self.total else 0.0
            if fraction >= self._next_fraction or now >= self._next_time:
                self._line(now)
                if self.total:
                    step = max(0.1 * (1 - fraction), 0.01)  # tenths of what is left
                    self._next_fraction = fraction + step
                else:
                    self._next_fraction = float("inf")
                self._next_time = now + 60

    def line(self, text: str) -> None:
        """A message between progress lines (on a terminal, above the bar)."""
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.write(f"remaster: {text}", file=self.stream)
        else:
            print(f"remaster: {text}", file=self.stream, flush=True)

    def _line(self, now: float) -> None:
        fps = self.rate(now)
        text = f"remaster: {self.name}: {self.done}"
        if self.total:
            text += f"/{self.total} frames ({100 * self.done / self.total:.0f}%)"
            if fps:
                text += f", {fps:.1f} fps, {_duration((self.total - self.done) / fps)} left"
            elif self.done < self.total:
                text += ", time left: estimating"
        else:
            text += " frames" + (f", {fps:.1f} fps" if fps else "")
        print(text, file=self.stream, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
