"""Producing a replay's next items in a thread of its own, a bounded number ahead of the
consumer: the next S3 objects are fetched while the workers read and decide these ones
(fetching does not hold Python's lock while it waits)."""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any


def ahead[T](produce: Callable[[], Iterator[T]], most: int, name: str, join_seconds: float) -> Iterator[T]:
    """The items of `produce()`, iterated in a thread up to `most` ahead of the consumer. An
    error in the thread is raised to the consumer; a consumer that stops early stops the
    thread, which closes its iterator (so its `finally` clauses run there)."""
    done = object()
    waiting: queue.Queue[Any] = queue.Queue(maxsize=most)
    stop = threading.Event()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                waiting.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def run() -> None:
        items: Iterator[T] | None = None
        try:
            items = produce()
            for item in items:
                if not put(item):
                    return
            put(done)
        except BaseException as error:  # handed to the consumer, which raises it
            put(error)
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                with contextlib.suppress(Exception):  # the consumer has its items or its error already
                    close()

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    try:
        while True:
            item = waiting.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join(timeout=join_seconds)
