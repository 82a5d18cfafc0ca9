"""One selection, two engines: the candidate SQL on DuckDB selects exactly what the
pure-Python definition (`Selection.takes`) selects, and a replay gives the same output
whichever engine reads the files.

On a generated organization corpus in the real layout (with deliveries across midnight, a
second trail without an organization, and files outside the layout) and on the real
datasets, for selections that exercise every predicate."""

from __future__ import annotations

import datetime as dt
import gzip
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from bench import orgcorpus
from chalicelib.playbooks.catalog import Catalog
from tests.conftest import PLAYBOOKS, record
from trailguard.cli import main
from trailguard.replay import athena, duckdb_engine, engines
from trailguard.replay.selection import Selection, layout_partition, record_partition
from trailguard.replay.table import exact_record

pytestmark = pytest.mark.integration

NOW = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
PAIRS = Catalog.load([PLAYBOOKS]).answered()


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory, datasets: Path) -> Path:
    root = tmp_path_factory.mktemp("corpus")
    pool = orgcorpus.invictus_pool(datasets)
    orgcorpus.write(orgcorpus.CorpusSpec(records=12000, per_file=200, days=3.0), root, pool)
    plain = orgcorpus.CorpusSpec(
        records=3000,
        per_file=200,
        days=3.0,
        accounts=("444444444444",),
        regions=("ap-south-1",),
        organization=None,
        prefix="legacy/",
        seed=8,
    )
    orgcorpus.write(plain, root, pool)
    loose = root / "exports"
    loose.mkdir()
    with gzip.open(loose / "export.jsonl.gz", "wt") as lines:
        for item in pool[:200]:
            lines.write(json.dumps(item) + "\n")
    (loose / "outside-the-layout.json").write_text(json.dumps({"Records": pool[200:600]}))
    return root


def delivery_files(root: Path) -> list[Path]:
    return [path for path in sorted(root.rglob("*.json*")) if duckdb_engine.is_delivery_file(path)]


def python_selection(files: list[Path], selection: Selection) -> list[str]:
    found = []
    for path in files:
        data = path.read_bytes()
        records = json.loads(gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data)["Records"]
        for item in records:
            partition = layout_partition(str(path)) or record_partition(item)
            if selection.takes(item, partition):
                found.append(identity(item, str(path)))
    return sorted(found)


def identity(item: dict[str, Any], path: str) -> str:
    """What tells candidates apart (hand-written fixtures repeat or lack eventIDs)."""
    return json.dumps([item.get(key) for key in ("eventID", "eventTime", "eventName", "requestID")] + [path])


def duckdb_selection(files: list[Path], selection: Selection) -> list[str]:
    """The Athena candidate query itself, run on DuckDB over the view."""
    connection = duckdb_engine.connect()
    connection.execute(duckdb_engine.view_sql(files))
    result = connection.execute(athena.candidate_query(selection))
    names = [column[0] for column in result.description]
    rows = [dict(zip(names, row, strict=True)) for row in result.fetchall()]
    count = connection.execute(athena.candidate_query(selection, columns="count")).fetchone()
    assert count is not None and count[0] == len(rows)
    return sorted(
        json.dumps([row[key] for key in ("eventid", "eventtime", "eventname", "requestid")] + [row["$path"]])
        for row in rows
    )


def assert_same_selection(files: list[Path], selection: Selection) -> int:
    expected = python_selection(files, selection)
    assert duckdb_selection(files, selection) == expected
    return len(expected)


SELECTIONS: dict[str, dict[str, Any]] = {
    "everything": dict(since="2000-01-01"),
    "one day, late deliveries after midnight": dict(since="2024-01-02", until="2024-01-02"),
    "hours inside a day": dict(since="2024-01-02T07:13:20Z", until="2024-01-02T09:00:00Z"),
    "accounts": dict(since="2000-01-01", accounts=["222222222222", "444444444444"]),
    "regions": dict(since="2000-01-01", regions=["eu-west-1", "ap-south-1"]),
    "all filters": dict(
        since="2024-01-01T12:00:00Z", until="2024-01-03", accounts=["111111111111"], regions=["us-east-1"]
    ),
}


@pytest.mark.parametrize("name", SELECTIONS)
def test_the_candidate_query_on_duckdb_selects_what_python_selects(generated: Path, name: str) -> None:
    selection = Selection.build(PAIRS, now=NOW, **SELECTIONS[name])
    assert assert_same_selection(delivery_files(generated), selection) > 0


def test_failed_calls_are_left_out_only_when_asked(generated: Path) -> None:
    files = delivery_files(generated)
    successful = assert_same_selection(files, Selection.build(PAIRS, "2000-01-01", now=NOW))
    every = assert_same_selection(files, Selection.build(PAIRS, "2000-01-01", now=NOW, successful_only=False))
    assert successful < every


def test_the_late_delivery_margin_decides_what_each_engine_reads(generated: Path) -> None:
    files = delivery_files(generated)
    wide = Selection.build(PAIRS, "2024-01-02", "2024-01-02", now=NOW)
    none = Selection.build(PAIRS, "2024-01-02", "2024-01-02", now=NOW, late_delivery=dt.timedelta(0))
    assert assert_same_selection(files, none) < assert_same_selection(files, wide)


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory, datasets: Path) -> list[Path]:
    """The real records as delivery files: invictus's are; Stratus's arrays are wrapped."""
    root = tmp_path_factory.mktemp("real")
    for path in sorted((datasets / "stratus-detonation-logs").glob("*.json")):
        (root / path.name).write_text(json.dumps({"Records": json.loads(path.read_text())}))
    return sorted((datasets / "invictus-aws-2023" / "CloudTrail").glob("*.json")) + sorted(root.glob("*.json"))


def test_the_candidate_query_on_duckdb_selects_what_python_selects_on_the_real_datasets(real: list[Path]) -> None:
    assert assert_same_selection(real, Selection.build(PAIRS, "2000-01-01", now=NOW)) > 0


def test_names_with_quotes_select_only_themselves(generated: Path) -> None:
    hostile = Selection.build([("cloudtrail.amazonaws.com", "StopLogging') OR ('1'='1")], "2000-01-01", now=NOW)
    assert assert_same_selection(delivery_files(generated), hostile) == 0


def test_duckdb_rebuilds_every_candidate_exactly(real: list[Path]) -> None:
    """A local replay loses nothing: each candidate is the record as written (nulls aside),
    managementEvent and the identity fields AWS's Athena table has no column for included."""
    selection = Selection.build(PAIRS, successful_only=False)
    originals = {}
    for path in real:
        for item in json.loads(path.read_text())["Records"]:
            originals[item["eventID"]] = {key: value for key, value in item.items() if value is not None}
    found = duckdb_engine.batch(duckdb_engine.connect(), real, selection)
    rebuilt = [exact_record(row) for rows in found.files.values() for _, row in rows.candidates]
    assert len(rebuilt) > 90 and not found.refused
    for item in rebuilt:
        assert item == originals[item["eventID"]]
    assert any("managementEvent" in item for item in rebuilt)


def replay(*args: Any) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["replay", *map(str, args)], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def same_replay(*args: Any) -> str:
    """The output of replay with each engine, checked to be the same; the summary line."""
    _, python_out, python_err = replay(*args, "--engine", "python")
    _, duckdb_out, duckdb_err = replay(*args, "--engine", "duckdb")
    assert duckdb_out == python_out
    assert duckdb_err.rsplit(",", 1)[0] == python_err.rsplit(",", 1)[0]  # all but the seconds
    return python_err


def test_replay_gives_the_same_output_with_either_engine_on_the_real_datasets(datasets: Path) -> None:
    summary = same_replay(datasets, "--format", "jsonl", "--all")
    assert "replay: 3808 events read, 138 matched, 59 skipped by guards, 13 malformed" in summary


@pytest.mark.parametrize(
    "options",
    [
        ["--format", "jsonl", "--all"],
        ["--since", "2024-01-02", "--until", "2024-01-02", "--accounts", "111111111111,444444444444"],
        ["--since", "2024-01-01T12:00:00Z", "--regions", "eu-west-1", "--format", "jsonl"],
    ],
)
def test_replay_gives_the_same_output_with_either_engine_on_a_generated_organization(
    generated: Path, options: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engines, "BATCH_FILES", 7)  # many batches, selected ahead of the decisions
    summary = same_replay(generated, *options)
    assert " matched, " in summary and " 0 matched" not in summary


def test_a_file_duckdb_refuses_is_read_by_the_python_reader_in_its_turn(tmp_path: Path, datasets: Path) -> None:
    invictus = sorted((datasets / "invictus-aws-2023" / "CloudTrail").glob("*.json"))
    for path in invictus[:3]:
        (tmp_path / path.name).write_bytes(path.read_bytes())
    stop = record("StopLogging", "cloudtrail.amazonaws.com", {"name": "t"})
    (tmp_path / "b-not-records.json").write_text(json.dumps({"Records": [stop, "not a record"]}))
    (tmp_path / "c-cut.json.gz").write_bytes(gzip.compress(json.dumps({"Records": [stop]}).encode())[:-10])
    found = duckdb_engine.batch(duckdb_engine.connect(), delivery_files(tmp_path), Selection(PAIRS))
    assert sorted(path.name for path, _ in found.refused) == ["b-not-records.json", "c-cut.json.gz"]
    summary = same_replay(tmp_path, "--format", "jsonl")
    assert f"malformed: {tmp_path / 'b-not-records.json'} record 2: expected a CloudTrail record object" in summary
    assert f"malformed: {tmp_path / 'c-cut.json.gz'}: cannot read file" in summary


def test_auto_reads_a_few_mb_with_python_and_more_with_duckdb_when_it_is_installed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert engines.choose("auto", engines.SMALL_INPUT_BYTES - 1) == "python"
    assert engines.choose("auto", engines.SMALL_INPUT_BYTES) == "duckdb"
    assert engines.choose("python", 10**12) == "python"
    monkeypatch.setattr(engines, "duckdb_available", lambda: False)
    assert engines.choose("auto", 10**12) == "python"
    code, _, err = replay(tmp_path, "--engine", "duckdb")
    assert code == 2 and "DuckDB is not installed (pip install duckdb, or --engine python)" in err


def test_a_gzip_bomb_is_not_given_to_duckdb_and_is_cut_at_the_cap_by_the_python_reader(
    tmp_path: Path, datasets: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DuckDB inflates a gzip file whole, whatever its maximum_object_size: a file whose
    trailer says it inflates past the cap (or too large for the trailer to be believed) is
    read by the Python reader, which stops at the cap."""
    from trailguard import eventfiles

    monkeypatch.setattr(duckdb_engine, "MAX_OBJECT_BYTES", 2**20)
    monkeypatch.setattr(eventfiles, "MAX_INFLATED_BYTES", 2**20)
    bomb = tmp_path / "a-bomb.json.gz"
    bomb.write_bytes(gzip.compress(b'{"Records":[{"eventID":"' + b"A" * (8 * 2**20) + b'"}]}'))
    stop = record("StopLogging", "cloudtrail.amazonaws.com", {"name": "t"})
    (tmp_path / "b-after.json").write_text(json.dumps({"Records": [stop]}))
    assert duckdb_engine.is_delivery_file(bomb) and not duckdb_engine.fits(bomb)
    assert duckdb_engine.fits(tmp_path / "b-after.json")
    small = tmp_path / "small.json.gz"
    small.write_bytes(gzip.compress(json.dumps({"Records": [stop]}).encode()))
    assert duckdb_engine.fits(small)
    monkeypatch.setattr(duckdb_engine, "MAX_GZIP_BYTES", 10)  # too large for its trailer to be believed
    assert not duckdb_engine.fits(small)
    small.unlink()
    code, out, err = replay(tmp_path, "--format", "jsonl", "--engine", "duckdb")
    assert code == 0 and json.loads(out)["eventName"] == "StopLogging"
    assert f"malformed: {tmp_path / 'a-bomb.json.gz'}: cannot read file: it inflates to more than 1 MiB" in err
