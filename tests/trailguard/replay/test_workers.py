"""Replay decides in the worker processes that read the files, and the parent keeps only
what it reports: the same output as deciding every event in one process (order, duplicates,
malformed records, counts), and a parent whose memory does not grow with what matched."""

from __future__ import annotations

import gc
import gzip
import json
import shutil
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from chalicelib.events.record import CloudTrailEvent
from chalicelib.playbooks.catalog import Catalog
from chalicelib.respond.guards import OwnIdentities
from tests.conftest import PLAYBOOKS, record
from trailguard.cli import main
from trailguard.replay import ReplayCounts, ReplayLine, deciding, engines, replay, run, workers
from trailguard.replay.selection import Selection

pytestmark = pytest.mark.integration

CATALOG = Catalog.load([PLAYBOOKS], with_tests=False)


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory, datasets: Path) -> Path:
    """The datasets, a malformed file in the middle (by name: read between the others), and
    a second delivery of a file with matches at the end (its events are duplicates, decided
    by another worker than the first delivery)."""
    root = tmp_path_factory.mktemp("logs")
    shutil.copytree(datasets, root / "data")
    stop = record("StopLogging", "cloudtrail.amazonaws.com", {"name": "t"})
    middle = root / "data" / "m-malformed"
    middle.mkdir()
    (middle / "a-not-records.json").write_text(json.dumps({"Records": [stop, "not a record", stop]}))
    whole = gzip.compress(json.dumps({"Records": [stop]}).encode())
    (middle / "b-cut.json.gz").write_bytes(whole[: len(whole) // 2])  # cut inside the JSON, whatever its ids
    (again,) = (datasets / "invictus-aws-2023" / "CloudTrail").glob("*_ZtUNbBkwAu98FPZb.json")  # 7 matches
    (root / "zz-again").mkdir()
    shutil.copy(again, root / "zz-again" / again.name)
    return root


def replayed(*args: Any) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["replay", *map(str, args)], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr.rsplit(",", 1)[0]  # all but the seconds


@pytest.fixture
def spied(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many segments went to worker processes (the real pool, counted)."""
    segments: list[int] = []
    real = workers.decided

    def counted(parts: Any, *args: Any) -> Any:
        for group, items in real(parts, *args):
            segments.append(len(group))
            yield group, items

    monkeypatch.setattr(workers, "decided", counted)
    return segments


@pytest.mark.parametrize("engine", ["python", "duckdb"])
@pytest.mark.parametrize("options", [["--format", "jsonl", "--all"], ["--format", "table"]])
def test_workers_decide_as_one_process_does_on_the_datasets_with_a_malformed_file_in_the_middle(
    logs: Path, engine: str, options: list[str], monkeypatch: pytest.MonkeyPatch, spied: list[int]
) -> None:
    monkeypatch.setattr(engines, "IN_PROCESS_BYTES", 10**12)
    here = replayed(logs, "--engine", engine, *options)
    assert not spied
    monkeypatch.setattr(engines, "IN_PROCESS_BYTES", 0)
    monkeypatch.setattr(engines, "BATCH_FILES", 7)  # many segments, spread over the workers
    assert replayed(logs, "--engine", engine, *options) == here
    assert len(spied) > 4
    code, out, err = here
    assert code == 0
    # The datasets' 3808, 138, 59 and 13; then the middle's 3 records (one call, its repeat,
    # a string: one malformed) and its cut gzip file (the JSON cut short, and the gzip: two);
    # then the second delivery's 70 records (7 matches, each now a duplicate).
    assert "replay: 3881 events read, 139 matched, 67 skipped by guards, 16 malformed" in err
    assert f"malformed: {logs / 'data' / 'm-malformed' / 'a-not-records.json'} record 2: expected" in err
    assert f"malformed: {logs / 'data' / 'm-malformed' / 'b-cut.json.gz'}: cannot read file" in err
    if "--all" in options:
        skipped = [json.loads(line) for line in out.splitlines() if '"skipped"' in line]
        # the datasets repeat 29 eventIDs; then the repeated call and the second delivery
        assert sum(line["skipped"] == "duplicate" for line in skipped) == 29 + 1 + 7


def test_workers_compare_as_one_process_does(
    logs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spied: list[int]
) -> None:
    old = tmp_path / "old"
    shutil.copytree(PLAYBOOKS, old)
    stopped = old / "cloudtrail-stop-logging.yaml"
    stopped.write_text(stopped.read_text().replace("\nmode: auto\n", "\nmode: approve\n", 1))
    (old / "console-login-without-mfa.yaml").unlink()
    monkeypatch.setattr(engines, "IN_PROCESS_BYTES", 10**12)
    here = replayed(logs, "--compare", old, "--format", "jsonl")
    monkeypatch.setattr(engines, "IN_PROCESS_BYTES", 0)
    monkeypatch.setattr(engines, "BATCH_FILES", 7)
    assert replayed(logs, "--compare", old, "--format", "jsonl") == here
    assert spied
    code, out, err = here
    assert code == 1 and "newly matched" in out and "changed" in out
    assert "compare: 3881 events read, " in err and "16 malformed" in err


def matching_events(count: int) -> Iterator[CloudTrailEvent]:
    """`count` calls the bundled playbooks answer, each with its own eventID, made as they
    are read (what the loop keeps of them is all that stays)."""
    for n in range(count):
        yield CloudTrailEvent.from_record(record("StopLogging", "cloudtrail.amazonaws.com", {"name": f"trail-{n}"}))


def retained_bytes(items: Any) -> tuple[int, ReplayCounts]:
    """What the replay loop holds when it has read everything (its lines are written and
    dropped, as the command does): bytes allocated and still alive, and the counts."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for line in replay(items, CATALOG, OwnIdentities()):
            if isinstance(line, ReplayCounts):
                gc.collect()  # what is garbage is not kept
                return tracemalloc.get_traced_memory()[0] - before, line
            assert isinstance(line, ReplayLine)
    finally:
        tracemalloc.stop()
    raise AssertionError("no counts")


def test_what_the_replay_loop_keeps_does_not_grow_with_what_matched() -> None:
    """It used to keep every incident (about 2.9 KB each): now only each answered incident's
    id (to tell a duplicate delivery), and at most 3 examples per playbook."""
    small, small_counts = retained_bytes(matching_events(300))
    large, large_counts = retained_bytes(matching_events(1500))
    assert (small_counts.matched, large_counts.matched) == (300, 1500)
    assert large - small < 1200 * 250  # the ids, in a set: about 160 bytes per incident more
    assert all(len(kept) <= 3 for kept in large_counts.examples.values())


def test_rows_from_workers_are_kept_no_longer_than_they_are_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spied: list[int]
) -> None:
    """Decided in two worker processes from a file of 2,000 matching calls: no row, line or
    incident outlives its line in the parent; the number alive at the end is the same as
    with a file of 200."""

    def alive_after(count: int) -> tuple[int, int]:
        path = tmp_path / f"calls-{count}.jsonl"
        path.write_text("".join(json.dumps(event.record) + "\n" for event in matching_events(count)))
        second = tmp_path / f"calls-{count}-b.jsonl"
        shutil.copy(path, second)  # two files: one segment for each worker
        selection = Selection(CATALOG.answered(), successful_only=False)
        decide = deciding.ReplayDecider(CATALOG, OwnIdentities())
        items = run.local([str(path), str(second)], selection, "python", 2, run.Shown(None), decide)
        counts = None
        for line in replay(items, CATALOG, OwnIdentities()):
            counts = line if isinstance(line, ReplayCounts) else counts
        gc.collect()
        kept = [obj for obj in gc.get_objects() if isinstance(obj, (deciding.Decided, ReplayLine))]
        assert counts is not None and counts.matched == count and counts.skipped == count  # the copy: duplicates
        return len(kept), counts.read

    monkeypatch.setattr(engines, "IN_PROCESS_BYTES", 0)
    monkeypatch.setattr(engines, "BATCH_FILES", 1)
    assert alive_after(200) == (0, 400)
    assert alive_after(2000) == (0, 4000)
    assert spied == [1, 1, 1, 1]  # each file decided by a worker
