"""The one thread primitive: a worker thread joined to the caller by a bounded queue.

Every thread in remaster comes from here (DESIGN "Habits"): decoding runs as `prefetch(...)` over
a generator, encoding as a `Sink` fed by the main loop. Three rules make it safe:

- the queue is bounded, so memory is bounded by `depth` items, never by the video's length;
- an exception raised in the worker is re-raised in the consumer at its next `get`/`put`/`close`
  (torchcodec's decoding example drops it, and the reader then waits forever);
- when the consumer stops early (an error, `break`, Ctrl-C) the worker is told to stop and is
  joined; no call ever blocks without a timeout, so neither side can hang on a dead partner.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")

# How often a blocked put/get wakes up to check whether the other side is gone. Short enough to
# stop promptly on Ctrl-C, long enough to cost nothing measurable.
_POLL_SECONDS = 0.1


class _Done:
    """Queue marker: the worker finished; `error` is its exception or None."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException | None):
        self.error = error


def _put(q: queue.Queue, item, stop: threading.Event) -> bool:
    """Put unless `stop` is set first; returns False when it gave up."""
    while not stop.is_set():
        try:
            q.put(item, timeout=_POLL_SECONDS)
            return True
        except queue.Full:
            continue
    return False


def _join(thread: threading.Thread) -> None:
    """Join `thread` even through a Ctrl-C: an interrupted join would leave it running while the
    caller goes on to close the file it reads (FFmpeg then crashes the process). The thread has
    been told to stop and looks every `_POLL_SECONDS`, so this is short; the interrupt is passed
    on after."""
    interrupted = None
    while True:
        try:
            thread.join()
            break
        except KeyboardInterrupt as error:
            interrupted = error
    if interrupted is not None:
        raise interrupted


def _start(thread: threading.Thread, stop: threading.Event) -> None:
    """Start `thread`; if that is interrupted (Ctrl-C while it waits for the thread to run), the
    thread may be running with no owner to stop it: stop and join it before passing the
    interrupt on, so it never outlives what it reads or writes."""
    try:
        thread.start()
    except BaseException:
        stop.set()
        if thread.ident is not None:
            _join(thread)
        raise


class prefetch(Generic[T]):  # noqa: N801 - used like a generator function
    """Iterate `source` in a worker thread, `depth` items ahead of the consumer.

    `source` is an iterable, or a zero-argument callable returning one (so that opening a file
    also happens in the worker). Iterate it once; `close()` (or leaving its `with` block) stops
    and joins the worker, and the worker closes `source` if it is a generator. Exhausting it or
    getting the worker's exception closes it too.
    """

    def __init__(self, source: Iterable[T] | Callable[[], Iterable[T]], depth: int = 2, name: str = "prefetch"):
        if depth < 1:
            raise ValueError(f"prefetch depth must be >= 1, got {depth}")
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._finished = False
        # The worker gets the queue and the event, not `self`, so an abandoned prefetch can be
        # garbage collected and its __del__ can release the worker.
        self._thread = threading.Thread(
            target=self._work, args=(source, self._queue, self._stop), name=name, daemon=True
        )
        _start(self._thread, self._stop)

    @staticmethod
    def _work(source, q: queue.Queue, stop: threading.Event) -> None:
        error = None
        iterator = None
        try:
            iterator = iter(source() if callable(source) else source)
            for item in iterator:
                if not _put(q, item, stop):
                    break
        except BaseException as exc:  # forwarded to the consumer, never swallowed
            error = exc
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                try:
                    close()  # runs the generator's own cleanup (closing the file) in its thread
                except BaseException as exc:
                    error = error or exc
            _put(q, _Done(error), stop)

    def __iter__(self) -> Iterator[T]:
        return self

    def __next__(self) -> T:
        while not self._finished:
            try:
                item = self._queue.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                if not self._thread.is_alive() and self._queue.empty():
                    self.close()
                    raise RuntimeError(f"worker thread {self._thread.name!r} died without reporting") from None
                continue
            if isinstance(item, _Done):
                self.close()
                if item.error is not None:
                    raise item.error
                break
            return item
        raise StopIteration

    def close(self) -> None:
        """Stop the worker (it may be blocked on a full queue) and join it."""
        self._finished = True
        self._stop.set()
        if self._thread is not threading.current_thread():
            _join(self._thread)

    def __enter__(self) -> prefetch[T]:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __del__(self) -> None:  # an abandoned prefetch must not leave its worker blocked forever
        stop = getattr(self, "_stop", None)  # absent when __init__ raised
        if stop is not None:
            stop.set()


class Sink(Generic[T]):
    """Feed items to `consume(item)` in a worker thread through a bounded queue.

    `put` blocks while `depth` items are waiting and re-raises the worker's exception as soon as
    there is one; `close()` waits for the queue to drain, runs `finish()` in the worker (flushing
    an encoder, say) and re-raises any error; `abort()` drops what is queued and stops. Use it as a
    context manager: a normal exit closes, an exception aborts.
    """

    def __init__(
        self,
        consume: Callable[[T], None],
        *,
        finish: Callable[[], None] | None = None,
        depth: int = 2,
        name: str = "sink",
    ):
        if depth < 1:
            raise ValueError(f"sink depth must be >= 1, got {depth}")
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._errors: list[BaseException] = []  # written by the worker, read by the producer
        self._closed = False
        # As in `prefetch`, the worker does not hold `self`, so an abandoned Sink is collectable.
        args = (consume, finish, self._queue, self._stop, self._errors)
        self._thread = threading.Thread(target=self._work, args=args, name=name, daemon=True)
        _start(self._thread, self._stop)

    _END = object()

    @staticmethod
    def _work(consume, finish, q: queue.Queue, stop: threading.Event, errors: list) -> None:
        try:
            while not stop.is_set():
                try:
                    item = q.get(timeout=_POLL_SECONDS)
                except queue.Empty:
                    continue
                if item is Sink._END:
                    if finish is not None:
                        finish()
                    return
                consume(item)
        except BaseException as exc:  # kept for the producer's next put/close
            errors.append(exc)
            stop.set()

    def _raise_if_failed(self) -> None:
        if self._errors:
            error = self._errors.pop()
            self._closed = True
            raise error

    def put(self, item: T) -> None:
        if self._closed:
            raise RuntimeError("put() on a closed Sink")
        while True:
            self._raise_if_failed()
            if not self._thread.is_alive():
                raise RuntimeError(f"worker thread {self._thread.name!r} died without reporting")
            try:
                self._queue.put(item, timeout=_POLL_SECONDS)
                return
            except queue.Full:
                continue

    def close(self) -> None:
        """Drain, finish and join; re-raises the worker's error."""
        if self._closed:
            self._raise_if_failed()
            return
        self.put(Sink._END)
        self._closed = True
        _join(self._thread)
        self._raise_if_failed()

    def abort(self) -> None:
        """Stop without draining; errors of the worker are dropped (the caller already has one)."""
        self._closed = True
        self._stop.set()
        _join(self._thread)
        self._errors.clear()

    def __del__(self) -> None:
        stop = getattr(self, "_stop", None)  # absent when __init__ raised
        if stop is not None:
            stop.set()

    def __enter__(self) -> Sink[T]:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
