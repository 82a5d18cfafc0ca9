"""Replay at organization scale (issue 22): local replay against DuckDB alone and jq, memory
from 200k to 2M records, S3 replay from moto's server against local replay, --compare
against one replay, the candidates' selectivity and the Athena estimate.

    .venv/bin/python -m bench.replay_scale [--runs 3] [--json FILE]

Every ratio is of two commands run alternately in the same run, medians of `--runs`; each
command is a fresh process (its start, imports and all), timed and measured (peak resident
memory) by a parent that only waits for it. The corpora are made by `bench.orgcorpus` (3
accounts under an organization, 2 regions, files named for their delivery) into
`bench/.corpus/`, once.
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
TARGET_MEMORY_GROWTH = 2.0
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
import resource, subprocess, sys, time
started = time.perf_counter()
subprocess.run(sys.argv[1:] if len(sys.argv) > 2 else sys.argv[1], shell=len(sys.argv) == 2, check=True,
               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print(time.perf_counter() - started, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def measure(command: list[str] | str, env: dict[str, str] | None = None) -> tuple[float, float]:
    """Wall seconds and peak resident MB of one run of `command` (a list, or a shell line)."""
    argv = [PYTHON, "-c", MEASURED] + ([command] if isinstance(command, str) else command)
    out = subprocess.run(argv, check=True, capture_output=True, text=True, env=env or environment(), cwd=ROOT)
    seconds, kilobytes = out.stdout.split()
    return float(seconds), int(kilobytes) / 1024


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
    """Each command `runs` times, alternating; median seconds and the largest peak MB."""
    seconds: dict[str, list[float]] = {name: [] for name in commands}
    memory: dict[str, float] = dict.fromkeys(commands, 0.0)
    for _ in range(runs):
        for name, command in commands.items():
            took, peak = measure(*command) if isinstance(command, tuple) else measure(command)
            seconds[name].append(took)
            memory[name] = max(memory[name], peak)
    return {name: {"s": round(statistics.median(seconds[name]), 2), "mb": round(memory[name], 1)} for name in commands}


def jq_command(folder: Path) -> str:
    from chalicelib.playbooks.catalog import Catalog
    from chalicelib.settings import PROJECT_PLAYBOOKS

    names = sorted({name for group in Catalog.load([PROJECT_PLAYBOOKS]).event_names().values() for name in group})
    wanted = ",".join(f'"{name}"' for name in names)
    files = " ".join(shlex.quote(str(path)) for path in sorted(folder.rglob("*.json.gz")))
    return f"gzip -dc {files} | jq -c '.Records[] | select(.eventName | IN({wanted}))'"


def local(runs: int) -> dict[str, Any]:
    """Local replay against DuckDB alone (both sizes), jq and the Python reader (200k)."""
    small, large = corpus(200_000), corpus(2_000_000)
    result: dict[str, Any] = {}
    subprocess.run(replay_command(small), check=True, capture_output=True, env=environment(), cwd=ROOT)  # warm
    result["200k"] = alternate(
        {
            "replay": replay_command(small),
            "duckdb": [PYTHON, "-c", DUCKDB_ALONE, str(small)],
            "jq": jq_command(small),
            "python_reader": replay_command(small, "--engine", "python"),
        },
        runs,
    )
    large_commands = {"replay": replay_command(large), "duckdb": [PYTHON, "-c", DUCKDB_ALONE, str(large)]}
    result["2m"] = alternate(large_commands, runs)
    for size in ("200k", "2m"):
        figures = result[size]
        figures["vs_duckdb"] = round(figures["replay"]["s"] / figures["duckdb"]["s"], 2)
        figures["events_per_s"] = int((200_000 if size == "200k" else 2_000_000) / figures["replay"]["s"])
    result["200k"]["jq_vs_replay"] = round(result["200k"]["jq"]["s"] / result["200k"]["replay"]["s"], 2)
    result["memory_growth"] = round(result["2m"]["replay"]["mb"] / result["200k"]["replay"]["mb"], 2)
    result["met_duckdb"] = all(result[size]["vs_duckdb"] <= TARGET_VS_DUCKDB for size in ("200k", "2m"))
    result["met_memory"] = result["memory_growth"] <= TARGET_MEMORY_GROWTH
    result["met_jq"] = result["200k"]["jq_vs_replay"] >= TARGET_VS_JQ
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


def run(runs: int = RUNS) -> dict[str, Any]:
    if shutil.which("jq") is None:
        raise SystemExit("bench.replay_scale: jq is needed on the PATH (apt-get install jq)")
    result: dict[str, Any] = {"runs": runs, "local": local(runs), "s3": from_s3(runs), "compare": compare(runs)}
    result["selectivity"] = selectivity()
    result["athena"] = athena_estimate(result["selectivity"]["invictus_files"]["gz_bytes_per_event"])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=RUNS)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    figures = run(args.runs)
    text = json.dumps(figures, indent=2)
    if args.json:
        args.json.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    sys.exit(main())
