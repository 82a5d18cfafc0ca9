"""Replay at organization scale (issues 22 and 24): local replay against DuckDB alone and jq,
memory and the parent process's share of the CPU from 200k to 2M records, S3 replay from
moto's server against local replay, --compare against one replay, the candidates'
selectivity and the Athena estimate.

    .venv/bin/python -m bench.replay_scale [--runs 3] [--sizes 200k,2m] [--only local] [--json FILE]

Every ratio is of two commands run alternately in the same run, medians of `--runs`; each
command is a fresh process (its start, imports and all), timed and measured by a parent that
only waits for it (`MEASURED`): the peak resident memory of the largest process of the tree
(the command, its workers, DuckDB's threads are in their process), and the CPU of the command
itself and of the whole tree, from `wait4` and `getrusage`. The parent is a child subreaper,
so that the replay's workers, children of a fork server the replay does not wait for, are
reaped and counted there too. The corpora are made by `bench.orgcorpus` (3 accounts under an
organization, 2 regions, files named for their delivery) into `bench/.corpus/`, once.
"""

from __future__ import annotations

import argparse
import gzip
import json
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.common import PYTHON, ROOT, environment

CORPUS = ROOT / "bench" / ".corpus"
SIZES = {200_000: 7.0, 2_000_000: 30.0}
"""Records, and the days they span."""
RUNS = 3

TARGET_VS_DUCKDB = 1.25
TARGET_MEMORY_GROWTH = 1.2
TARGET_PARENT_CPU = 0.15
"""The replay process's share of the CPU of its tree (it and its workers): issue 24."""
TARGET_VS_JQ = 3.0
TARGET_S3_VS_LOCAL = 1.5
TARGET_COMPARE_VS_REPLAY = 1.2

ORG_EVENTS_PER_DAY = 500_000_000
ATHENA_USD_PER_TB = 5.0
WINDOW = ("--since", "2024-01-01", "--until", "2024-01-07")
"""The 200k corpus's week (from 2024-01-01, 7 days), for the S3 replay and the local one it
is compared with: every record of the corpus, each account's and region's day folders."""

DUCKDB_ALONE = """
import sys
from pathlib import Path
from chalicelib.playbooks.catalog import Catalog
from chalicelib.settings import PROJECT_PLAYBOOKS
from trailguard.replay import athena, duckdb_engine
from trailguard.replay.selection import Selection
files = sorted(Path(sys.argv[1]).rglob("*.json.gz"))
selection = Selection(Catalog.load([PROJECT_PLAYBOOKS]).answered(), successful_only=False)
connection = duckdb_engine.connect()
connection.execute(duckdb_engine.view_sql(files))
where = "\\n  AND ".join(athena.predicate(selection))
query = f'SELECT * EXCLUDE ("$row", "$rows") FROM cloudtrail_logs WHERE {where}'
connection.execute(f"COPY ({query}) TO '/dev/stdout' (FORMAT JSON)")
"""
"""DuckDB alone returning the candidate records a replay decides on (the same conditions,
every column of the view), as JSON Lines: one query over every file, what the issue timed."""

MEASURED = """
import ctypes, json, os, resource, subprocess, sys, time
ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER: orphaned descendants are reaped here
started = time.perf_counter()
argv = sys.argv[1:] if len(sys.argv) > 2 else sys.argv[1]
child = subprocess.Popen(argv, shell=len(sys.argv) == 2, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
_, status, own = os.wait4(child.pid, 0)
seconds = time.perf_counter() - started
if status:
    sys.exit(f"{argv}: exit status {status}")
while True:
    try:
        os.wait()
    except ChildProcessError:
        break
tree = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"s": seconds, "mb": tree.ru_maxrss / 1024, "parent_mb": own.ru_maxrss / 1024,
                  "parent_cpu": own.ru_utime + own.ru_stime, "cpu": tree.ru_utime + tree.ru_stime}))
"""
"""Runs a command and reports its wall seconds, the peak resident MB of the largest process
of its tree, its own (the parent's) peak, and the CPU seconds of the parent and of the tree
(`own` is what `wait4` says of the command: itself, and the children it waited for)."""


def measure(command: list[str] | str, env: dict[str, str] | None = None) -> dict[str, float]:
    """The figures of one run of `command` (a list, or a shell line): see `MEASURED`."""
    argv = [PYTHON, "-c", MEASURED] + ([command] if isinstance(command, str) else command)
    out = subprocess.run(argv, check=True, capture_output=True, text=True, env=env or environment(), cwd=ROOT)
    figures: dict[str, float] = json.loads(out.stdout)
    return figures


def replay_command(*args: str | Path) -> list[str]:
    return [PYTHON, "-m", "trailguard", "replay", *map(str, args), "--format", "jsonl"]


def corpus(records: int) -> Path:
    from bench import orgcorpus

    folder = CORPUS / f"org-{records}"
    marker = folder / ".complete"
    if not marker.exists():
        shutil.rmtree(folder, ignore_errors=True)
        orgcorpus.write(orgcorpus.CorpusSpec(records=records, days=SIZES[records]), folder)
        marker.touch()
    return folder


def alternate(commands: dict[str, Any], runs: int) -> dict[str, dict[str, float]]:
    """Each command `runs` times, alternating: median seconds, the largest peak MB (of any
    process of its tree, and of the command itself), and the command's median share of the
    CPU of its tree."""
    runs_of: dict[str, list[dict[str, float]]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, command in commands.items():
            runs_of[name].append(measure(*command) if isinstance(command, tuple) else measure(command))
    result = {}
    for name, measured in runs_of.items():
        result[name] = {
            "s": round(statistics.median(run["s"] for run in measured), 2),
            "mb": round(max(run["mb"] for run in measured), 1),
            "parent_mb": round(max(run["parent_mb"] for run in measured), 1),
            "cpu_s": round(statistics.median(run["cpu"] for run in measured), 2),
            "parent_cpu_share": round(statistics.median(run["parent_cpu"] / run["cpu"] for run in measured), 3),
        }
    return result


def jq_command(folder: Path) -> str:
    from chalicelib.playbooks.catalog import Catalog
    from chalicelib.settings import PROJECT_PLAYBOOKS

    names = sorted({name for group in Catalog.load([PROJECT_PLAYBOOKS]).event_names().values() for name in group})
    wanted = ",".join(f'"{name}"' for name in names)
    files = " ".join(shlex.quote(str(path)) for path in sorted(folder.rglob("*.json.gz")))
    return f"gzip -dc {files} | jq -c '.Records[] | select(.eventName | IN({wanted}))'"


def local(runs: int, sizes: tuple[str, ...] = ("200k", "2m")) -> dict[str, Any]:
    """Local replay against DuckDB alone (each size), jq and the Python reader (200k)."""
    records = {"200k": 200_000, "2m": 2_000_000}
    result: dict[str, Any] = {}
    for size in sizes:
        folder = corpus(records[size])
        subprocess.run(replay_command(folder), check=True, capture_output=True, env=environment(), cwd=ROOT)  # warm
        commands = {"replay": replay_command(folder), "duckdb": [PYTHON, "-c", DUCKDB_ALONE, str(folder)]}
        if size == "200k":
            commands |= {"jq": jq_command(folder), "python_reader": replay_command(folder, "--engine", "python")}
        figures = result[size] = alternate(commands, runs)
        figures["vs_duckdb"] = round(figures["replay"]["s"] / figures["duckdb"]["s"], 2)
        figures["events_per_s"] = int(records[size] / figures["replay"]["s"])
        figures["parent_cpu_share"] = figures["replay"]["parent_cpu_share"]
        if size == "200k":
            figures["jq_vs_replay"] = round(figures["jq"]["s"] / figures["replay"]["s"], 2)
            result["met_jq"] = figures["jq_vs_replay"] >= TARGET_VS_JQ
    result["met_duckdb"] = all(result[size]["vs_duckdb"] <= TARGET_VS_DUCKDB for size in sizes)
    result["met_parent_cpu"] = all(result[size]["parent_cpu_share"] <= TARGET_PARENT_CPU for size in sizes)
    if set(sizes) == set(records):
        result["memory_growth"] = round(result["2m"]["replay"]["mb"] / result["200k"]["replay"]["mb"], 2)
        result["met_memory"] = result["memory_growth"] <= TARGET_MEMORY_GROWTH
    return result


def from_s3(runs: int) -> dict[str, Any]:
    """`replay s3://...` from moto's server on loopback against a local replay of the same files."""
    import logging

    import boto3
    from moto.server import ThreadedMotoServer

    from bench.orgcorpus import CorpusSpec

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    folder = corpus(200_000)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        env = environment() | {"AWS_ENDPOINT_URL": endpoint}
        client = boto3.client(
            "s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="b", aws_secret_access_key="b"
        )
        client.create_bucket(Bucket="bench")
        for path in sorted(folder.rglob("*.json.gz")):
            client.put_object(Bucket="bench", Key=str(path.relative_to(folder)), Body=path.read_bytes())
        location = f"s3://bench/AWSLogs/{CorpusSpec(records=1).organization}/"
        figures = alternate(
            {
                "s3": (replay_command(location, *WINDOW), env),
                "local": (replay_command(folder, *WINDOW), env),
            },
            runs,
        )
    finally:
        server.stop()
    figures["s3_vs_local"] = round(figures["s3"]["s"] / figures["local"]["s"], 2)
    figures["met"] = figures["s3_vs_local"] <= TARGET_S3_VS_LOCAL
    return figures


def compare(runs: int) -> dict[str, Any]:
    """`replay --compare` (the bundled playbooks against a copy of them) against one replay."""
    from chalicelib.settings import PROJECT_PLAYBOOKS

    folder = corpus(200_000)
    with tempfile.TemporaryDirectory() as scratch:
        other = Path(scratch) / "playbooks"
        shutil.copytree(PROJECT_PLAYBOOKS, other)
        figures = alternate(
            {"compare": replay_command(folder, "--compare", other), "replay": replay_command(folder)}, runs
        )
    figures["compare_vs_replay"] = round(figures["compare"]["s"] / figures["replay"]["s"], 2)
    figures["met"] = figures["compare_vs_replay"] <= TARGET_COMPARE_VS_REPLAY
    return figures


def selectivity() -> dict[str, Any]:
    """The share of records that are candidates (successful calls of the pairs the bundled
    playbooks answer), on the corpora and the real datasets; and the real delivery files'
    size per event, from which the Athena estimate follows."""
    from chalicelib.playbooks.catalog import Catalog
    from chalicelib.settings import PROJECT_PLAYBOOKS
    from trailguard.generate.docs import default_datasets
    from trailguard.replay import duckdb_engine
    from trailguard.replay.selection import Selection

    selection = Selection(Catalog.load([PROJECT_PLAYBOOKS]).answered())
    result: dict[str, Any] = {"pairs": len(selection.pairs)}

    def share(files: list[Path]) -> dict[str, Any]:
        found = duckdb_engine.batch(duckdb_engine.connect(), files, selection)
        records = sum(rows.records for rows in found.files.values())
        candidates = sum(len(rows.candidates) for rows in found.files.values())
        return {"records": records, "candidates": candidates, "share": round(candidates / records, 4)}

    for records in SIZES:
        result[f"corpus_{records}"] = share(sorted(corpus(records).rglob("*.json.gz")))
    datasets = default_datasets()
    invictus = sorted((datasets / "invictus-aws-2023" / "CloudTrail").glob("*.json"))
    result["invictus"] = share(invictus)
    with tempfile.TemporaryDirectory() as scratch:  # Stratus's arrays, as delivery files
        wrapped = []
        for path in sorted((datasets / "stratus-detonation-logs").glob("*.json")):
            target = Path(scratch) / path.name
            target.write_text(json.dumps({"Records": json.loads(path.read_text())}))
            wrapped.append(target)
        result["stratus"] = share(wrapped)
    raw = [path.read_bytes() for path in invictus]
    events = sum(len(json.loads(data)["Records"]) for data in raw)
    result["invictus_files"] = {
        "files": len(raw),
        "events": events,
        "json_bytes_per_event": round(sum(map(len, raw)) / events, 1),
        "gz_bytes_per_event": round(sum(len(gzip.compress(data)) for data in raw) / events, 1),
    }
    return result


def athena_estimate(gz_bytes_per_event: float) -> dict[str, Any]:
    """What Athena scans (and bills, at $5 per TB) for a 1,000-account organization writing
    500 million events a day: every object of the partitions a query selects is read whole."""
    day = ORG_EVENTS_PER_DAY * gz_bytes_per_event / 10**12
    return {
        "tb_per_day": round(day, 3),
        "usd_per_day": round(day * ATHENA_USD_PER_TB, 2),
        "tb_30_days": round(30 * day, 2),
        "usd_30_days": round(30 * day * ATHENA_USD_PER_TB, 2),
        "tb_per_year": round(365 * day, 1),
        "usd_per_year": round(365 * day * ATHENA_USD_PER_TB),
        "usd_weekly_30_day_replays_per_year": round(52 * 30 * day * ATHENA_USD_PER_TB),
    }


SECTIONS = ("local", "s3", "compare", "selectivity")


def run(runs: int = RUNS, sizes: tuple[str, ...] = ("200k", "2m"), only: tuple[str, ...] = SECTIONS) -> dict[str, Any]:
    if "local" in only and shutil.which("jq") is None:
        raise SystemExit("bench.replay_scale: jq is needed on the PATH (apt-get install jq)")
    result: dict[str, Any] = {"runs": runs}
    if "local" in only:
        result["local"] = local(runs, sizes)
    if "s3" in only:
        result["s3"] = from_s3(runs)
    if "compare" in only:
        result["compare"] = compare(runs)
    if "selectivity" in only:
        result["selectivity"] = selectivity()
        result["athena"] = athena_estimate(result["selectivity"]["invictus_files"]["gz_bytes_per_event"])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=RUNS)
    parser.add_argument("--sizes", default="200k,2m", help="corpora of the local comparison: 200k, 2m or both")
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"sections to run, of {', '.join(SECTIONS)}")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    figures = run(args.runs, tuple(args.sizes.split(",")), tuple(args.only.split(",")))
    text = json.dumps(figures, indent=2)
    if args.json:
        args.json.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    sys.exit(main())
