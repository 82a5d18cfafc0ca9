"""The worker processes of a replay: each reads a segment of files, selects its candidates
(its own DuckDB, one thread, or the Python reader), decides them, and sends back only the
rows worth reporting and counts (`deciding`).

Deciding where the records are read keeps the parent to what only it can do (the order,
duplicates, counters and the output): it was deciding every candidate alone while DuckDB
selected, and holding every incident. Segments are handed out a bounded number ahead
(`AHEAD` per worker) and their results taken back in order, so the output is in file order
whichever worker finishes first, and memory (and an S3 replay's scratch files) is bounded by
the segments in flight.

The processes come from a fork server (forking a process that runs threads can copy a held
lock into the child); it imports this module once, and each worker gets the playbooks
once, when it starts: the replay process's catalog, pickled (`deciding.Recipe`).
"""

from __future__ import annotations

import collections
import multiprocessing
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from trailguard.replay import deciding, engines
from trailguard.replay.selection import Selection

AHEAD = 4
"""Segments given to each worker at once: one it works on, the others waiting, so that a
worker that is slower for a while (a busy machine) does not leave the others idle while its
segment holds up the order. What waits is a list of files, and what is done a few rows."""

_decide: deciding.Decider | None = None
_selection: Selection | None = None
_connection: Any = None


def _start(recipe: deciding.Recipe, selection: Selection) -> None:
    """A worker's start: the playbooks loaded, once."""
    global _decide, _selection
    _decide, _selection = recipe.build(), selection


def _work(segment: engines.Segment) -> list[deciding.Item]:
    """A segment read, selected and decided: its rows and counts, in order."""
    global _connection
    kind, group = segment
    assert _decide is not None and _selection is not None, "the worker was not started"
    if kind == "duckdb" and _connection is None:
        from trailguard.replay import duckdb_engine

        _connection = duckdb_engine.connect(threads=1)  # the other workers use the other cores
    return list(deciding.decided(engines.segment_items(kind, group, _selection, _connection), _decide))


PRELOAD = [__name__, "duckdb"]
"""What the fork server imports once for all its workers (a module that is not installed is
skipped; a server already running, started by someone else, keeps what it has)."""


def decided(
    segments: Iterable[engines.Segment], selection: Selection, recipe: deciding.Recipe, workers: int
) -> Iterator[tuple[list[engines.Source], list[deciding.Item]]]:
    """Each segment with its decided items, in the order of `segments`, decided by `workers`
    processes; the processes end with the iteration (or when its consumer stops). A worker
    that dies (killed, out of memory) ends the replay with `WorkerDied`, never a hang."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_start, initargs=(recipe, selection))
    pending: collections.deque[tuple[list[engines.Source], Future[list[deciding.Item]]]] = collections.deque()
    try:
        for segment in segments:
            pending.append((segment[1], pool.submit(_work, segment)))
            if len(pending) >= AHEAD * workers:
                yield _result(*pending.popleft())
        while pending:
            yield _result(*pending.popleft())
    finally:
        pool.shutdown(wait=not pending, cancel_futures=True)


class WorkerDied(RuntimeError):
    """A worker process ended without finishing its segment."""


def _result(
    group: list[engines.Source], future: Future[list[deciding.Item]]
) -> tuple[list[engines.Source], list[deciding.Item]]:
    try:
        return group, future.result()
    except BrokenProcessPool as error:
        first = group[0].label if group else "?"
        raise WorkerDied(
            f"a replay worker process died while reading {len(group)} files from {first} ({error}); if the "
            "machine ran out of memory, --engine python's workers hold less"
        ) from None
