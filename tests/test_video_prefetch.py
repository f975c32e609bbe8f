"""The thread primitive: order, bounded queues, errors forwarded both ways, and no hangs."""

from __future__ import annotations

import threading
import time

import pytest

from remaster.prefetch import Sink, prefetch


def test_prefetch_yields_in_order():
    assert list(prefetch(range(100), depth=3)) == list(range(100))


def test_prefetch_calls_a_factory_in_the_worker():
    seen = []

    def source():
        seen.append(threading.current_thread().name)
        yield from "abc"

    assert list(prefetch(source, depth=1, name="decode")) == ["a", "b", "c"]
    assert seen == ["decode"]


def test_prefetch_queue_is_bounded():
    produced = []

    def source():
        for i in range(1000):
            produced.append(i)
            yield i

    items = prefetch(source, depth=2)
    assert next(items) == 0
    time.sleep(0.3)
    # one handed out, two waiting in the queue, one blocked in put: never the whole source
    assert len(produced) <= 5, f"expected at most 5 items read ahead, got {len(produced)}"
    items.close()


def test_prefetch_forwards_worker_exception():
    def source():
        yield 1
        raise ValueError("bad frame 2")

    items = prefetch(source, depth=2)
    assert next(items) == 1
    with pytest.raises(ValueError, match="bad frame 2"):
        next(items)
    with pytest.raises(StopIteration):  # and it is over, not hanging
        next(items)


def test_prefetch_error_on_open_is_forwarded():
    def source():
        raise FileNotFoundError("no such reel")

    with pytest.raises(FileNotFoundError, match="no such reel"):
        list(prefetch(source))


def test_consumer_leaving_early_stops_and_cleans_up_the_worker():
    closed = threading.Event()

    def source():
        try:
            yield from range(10**9)
        finally:
            closed.set()  # the generator's own cleanup (closing a file) runs

    items = prefetch(source, depth=2)
    for i in items:
        if i == 3:
            break
    started = time.perf_counter()
    items.close()
    assert time.perf_counter() - started < 2.0
    assert closed.wait(2.0)
    assert not items._thread.is_alive()


def test_context_manager_closes_on_consumer_error():
    with pytest.raises(RuntimeError, match="consumer failed"):
        with prefetch(iter(range(10**9)), depth=1) as items:
            next(items)
            raise RuntimeError("consumer failed")
    assert not items._thread.is_alive()


def test_abandoned_prefetch_releases_its_worker():
    import gc

    items = prefetch(iter(range(10**9)), depth=1)
    thread = items._thread
    del items
    gc.collect()
    thread.join(2.0)
    assert not thread.is_alive()


def test_sink_consumes_in_order_and_finishes_once():
    got, finished = [], []
    with Sink(got.append, finish=lambda: finished.append(len(got)), depth=2) as sink:
        for i in range(50):
            sink.put(i)
    assert got == list(range(50)) and finished == [50]


def test_sink_error_surfaces_on_put():
    def consume(item):
        if item == 3:
            raise OSError("disk full")

    sink = Sink(consume, depth=1)
    with pytest.raises(OSError, match="disk full"):
        for i in range(1000):  # the producer learns within a few items, never blocks forever
            sink.put(i)
    sink.abort()


def test_sink_error_in_finish_surfaces_on_close():
    def finish():
        raise OSError("flush failed")

    sink = Sink(lambda item: None, finish=finish)
    sink.put(1)
    with pytest.raises(OSError, match="flush failed"):
        sink.close()


def test_sink_abort_on_producer_error_skips_finish():
    finished = []
    with pytest.raises(KeyError):
        with Sink(lambda item: time.sleep(0.01), finish=lambda: finished.append(True)) as sink:
            sink.put(1)
            raise KeyError("producer failed")
    assert finished == []
    assert not sink._thread.is_alive()


@pytest.mark.parametrize("depth", [0, -1])
def test_depth_must_be_positive(depth):
    with pytest.raises(ValueError, match="depth must be >= 1"):
        prefetch(range(3), depth=depth)
    with pytest.raises(ValueError, match="depth must be >= 1"):
        Sink(print, depth=depth)


def test_an_interrupted_thread_start_leaves_no_thread_reading(monkeypatch):
    """Ctrl-C while `prefetch` starts its thread: the interrupt goes on, and the thread is
    stopped and joined first (its source closed in it), never left reading a file that the
    caller closes next (that crashed FFmpeg: SIGSEGV)."""
    closed = threading.Event()

    def source():
        try:
            while True:
                yield 1
        finally:
            closed.set()

    started = []
    original = threading.Thread.start

    def start_then_interrupt(thread):
        original(thread)
        started.append(thread)
        raise KeyboardInterrupt

    monkeypatch.setattr(threading.Thread, "start", start_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        prefetch(source, depth=1)
    assert started and not started[0].is_alive() and closed.is_set()


def test_a_join_goes_on_through_an_interrupt(monkeypatch):
    """An interrupt inside close()'s join is passed on only once the thread has ended."""
    feed = prefetch(iter(range(1000)), depth=1)
    next(feed)
    thread = feed._thread
    original, calls = threading.Thread.join, []

    def join_interrupted_once(self, timeout=None):
        calls.append(1)
        if len(calls) == 1:
            raise KeyboardInterrupt
        return original(self, timeout)

    monkeypatch.setattr(threading.Thread, "join", join_interrupted_once)
    with pytest.raises(KeyboardInterrupt):
        feed.close()
    assert len(calls) == 2 and not thread.is_alive()
