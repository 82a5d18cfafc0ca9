"""`make bench`: every benchmark, then docs/benchmarks.md rewritten with the results.

    .venv/bin/python -m bench.run [--quick]

Each figure is a ratio against a baseline run in the same command, because these machines
are noisy; absolute times are given for scale. --quick runs fewer repetitions (a smoke
run; its file is not meant to be committed).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import sys
import time
from pathlib import Path

from bench import (
    audit_chain,
    coldstart,
    handler,
    import_cost,
    interaction,
    lambda_cold,
    layout,
    load,
    member_accounts,
    playbooks_common,
    replay,
    replay_scale,
    scaling,
    slack_cold,
    suite,
)
from bench.common import ROOT, ensure_corpus, machine

CORPUS = ROOT / "bench" / ".corpus"
RECORDS = 200_000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions, for a smoke run")
    parser.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"))
    args = parser.parse_args()
    missing = [tool for tool in ("gzip", "jq") if shutil.which(tool) is None]
    if missing:
        print(
            f"bench: the replay baseline needs {' and '.join(missing)} on the PATH (apt-get install jq)",
            file=sys.stderr,
        )
        return 2
    started = time.perf_counter()
    corpus = ensure_corpus(CORPUS / str(RECORDS), RECORDS)
    quarter = ensure_corpus(CORPUS / str(RECORDS // 4), RECORDS // 4)
    runs = 1 if args.quick else None
    results = {
        "coldstart": coldstart.run(5 if args.quick else coldstart.RUNS),
        "replay": replay.run(corpus, quarter, runs or replay.RUNS),
        "replay_scale": replay_scale.run(runs or replay_scale.RUNS),
        "scaling": scaling.run(corpus, runs or scaling.RUNS),
        "handler": handler.run(50 if args.quick else handler.EVENTS),
        "interaction": interaction.run(50 if args.quick else interaction.CLICKS),
        "load": _load(1_000 if args.quick else 10_000),
        "suite": suite.run(),
        "layout": {**layout.measure(ROOT), **layout.package(ROOT)},
        "import_cost": import_cost.run(3 if args.quick else import_cost.RUNS),
        "lambda_cold": lambda_cold.run(3 if args.quick else lambda_cold.RUNS),
        "slack_cold": slack_cold.run(1 if args.quick else slack_cold.RUNS),
        "member_accounts": member_accounts.run(),
        "playbooks_common": playbooks_common.run(1 if args.quick else playbooks_common.RUNS),
    }
    results["seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(results, indent=2))
    audit = audit_chain.section(5 if args.quick else audit_chain.ACCOUNTS)  # its own section (issue 18)
    Path(args.out).write_text(render(results, quick=args.quick).rstrip("\n") + "\n\n" + audit + "\n")
    print(f"wrote {args.out} in {results['seconds']} s", file=sys.stderr)
    return 0


def _load(events: int) -> dict:
    """The burst in 8 threads, and the same handler in one thread on a fifth of it (the baseline)."""
    from dataclasses import asdict

    burst = asdict(load.burst(events, events // 10, threads=8))
    single = asdict(load.burst(events // 5, events // 50, threads=1))
    burst["ratio_to_one_thread"] = round(burst["deliveries_per_second"] / single["deliveries_per_second"], 2)
    burst["one_thread_per_second"] = single["deliveries_per_second"]
    return burst


LAYOUT_ISSUE = """Before and after the layout issue (one package per stage of the flow, tooling out of the Lambda
package), on the machine above, with `git archive 815ec49 | tar -x -C /tmp/before` and then
`python -m bench.layout --compare /tmp/before --runs 31` (the two checkouts side by side;
each cold start alternates between them, 31 fresh interpreters each, medians; both
checkouts compiled alike):

| | before (815ec49) | after |
|---|---|---|
| files in chalicelib/ (shipped) | 71 | 73 |
| modules directly under chalicelib/ | 43 | 7 (and 10 packages) |
| lines in chalicelib/ | 14,095 | 10,662 (of them 414 generated: the playbook validator) |
| files in trailguard/ (not shipped) | 0 | 25 |
| imports between runtime modules | 233 | 178 |
| import levels (longest chain) | 13 | 11 |
| import cycles | 1 (plan <-> playbook) | 0 |
| deployment.zip, bytes | 1,542,316 | 1,503,473 |
| files in deployment.zip | 347 | 349 |
| cold start, `import app` from .pyc, median ms | 155.2 | 138.7 |
| cold start, `import app` from source (as in Lambda), median ms | 227.7 | 227.4 |

From source (Lambda compiles the package at each cold start), `python -X importtime -c "import
app"` over 41 alternating runs gave medians of 194.1 and 185.0 ms, then 198.9 and 190.2 ms. The
layout itself loads more, smaller modules (56 instead of 43 at `import app`): what keeps the
cold start from growing is that each function imports what only it uses when it first builds
it, and that the playbook validator is generated once and committed instead of at each cold
start."""


def replay_scale_section(scale: dict) -> str:
    """docs/benchmarks.md's section of bench.replay_scale's figures (issues 22 and 24)."""
    local, s3, compare = scale["local"], scale["s3"], scale["compare"]
    small, big = local["200k"], local["2m"]
    share = scale["selectivity"]
    athena = scale["athena"]
    files = share["invictus_files"]
    return f"""## Replay at organization scale

`python -m bench.replay_scale` (part of `make bench`): corpora made by `python -m bench.orgcorpus`
(real invictus records with fresh ids and times, 3 accounts under an organization, 2 regions, 2,000
records per file, each file named for its delivery): 200,000 records over 7 days (100 files,
32 MB) and 2,000,000 over 30 days (1,000 files, 310 MB). Each figure is a fresh process (its start
and imports included), the commands alternated, medians of {scale["runs"]} runs. Peak memory is
the largest resident set of any process of the command's tree (the replay, its fork server and
workers: the measuring process is a child subreaper, so it reaps and counts them), and the
replay process's own; CPU is from `wait4` and `getrusage`: the replay process's own against
the whole tree's.

| | 200k records | 2M records |
|---|---|---|
| `trailguard replay CORPUS --format jsonl` (workers select with DuckDB and decide) | \
{small["replay"]["s"]} s, {small["events_per_s"]:,} events/s | \
{big["replay"]["s"]} s, {big["events_per_s"]:,} events/s |
| its peak memory: largest process / the replay process | {small["replay"]["mb"]} MB / \
{small["replay"]["parent_mb"]} MB | {big["replay"]["mb"]} MB / {big["replay"]["parent_mb"]} MB |
| its CPU: the whole tree, and the replay process's share | {small["replay"]["cpu_s"]} s, \
{small["parent_cpu_share"]:.1%} | {big["replay"]["cpu_s"]} s, {big["parent_cpu_share"]:.1%} |
| DuckDB alone returning the same candidate records as JSON (one query over every file) | \
{small["duckdb"]["s"]} s, {small["duckdb"]["mb"]} MB, {small["duckdb"]["cpu_s"]} s CPU | \
{big["duckdb"]["s"]} s, {big["duckdb"]["mb"]} MB, {big["duckdb"]["cpu_s"]} s CPU |
| replay / DuckDB alone | {small["vs_duckdb"]}x | {big["vs_duckdb"]}x |
| jq selecting the answered event names (`gzip -dc | jq`) | {small["jq"]["s"]} s | (not run: about 10x the 200k) |
| the pure-Python reader (`--engine python`) | {small["python_reader"]["s"]} s, {small["python_reader"]["mb"]} MB | |

Replay's peak memory grows {local["memory_growth"]}x from 200k to 2M records: the worker
processes read, select (DuckDB, one thread each) and decide segments of at most 4 MB of files
and send back only the rows the output needs; the replay process writes them as they come and
keeps counters and the ids of the incidents answered (duplicates are told there).

From S3: `trailguard replay s3://bench/AWSLogs/o-a1b2c3d4e5/ --since 2024-01-01 --until 2024-01-07`
against moto's server on loopback (in the measuring process), {s3["s3"]["s"]} s, against the
same command on the same files on disk, {s3["local"]["s"]} s: {s3["s3_vs_local"]}x.
`replay --compare` of the bundled playbooks against a copy of them: {compare["compare"]["s"]} s
against one replay's {compare["replay"]["s"]} s, {compare["compare_vs_replay"]}x.

Selectivity, with the {share["pairs"]} (eventSource, eventName) pairs the bundled playbooks
answer (successful calls only): {share["corpus_200000"]["share"]:.2%} of the 200k corpus
({share["corpus_200000"]["candidates"]:,} records), {share["corpus_2000000"]["share"]:.2%} of the 2M
one, {share["invictus"]["share"]:.2%} of invictus ({share["invictus"]["candidates"]} of
{share["invictus"]["records"]:,}) and {share["stratus"]["share"]:.2%} of the Stratus logs
({share["stratus"]["candidates"]} of {share["stratus"]["records"]}). CloudTrail's own delivery files
(invictus, {files["files"]} files) hold {files["json_bytes_per_event"]} bytes of JSON and
{files["gz_bytes_per_event"]} bytes gzipped per event, so Athena scans, for a 1,000-account
organization writing 500 million events a day, {athena["tb_per_day"]} TB a day (${athena["usd_per_day"]}
at $5 per TB), {athena["tb_30_days"]} TB for a 30-day replay (${athena["usd_30_days"]}) and
{athena["tb_per_year"]} TB for a year (${athena["usd_per_year"]}); docs/replay.md says what bounds it."""


def _mark(met: bool) -> str:
    return "met" if met else "**not met**"


def render(results: dict, quick: bool = False) -> str:
    cold, rep, scale, hand = results["coldstart"], results["replay"], results["scaling"], results["handler"]
    click, load, suite = results["interaction"], results["load"], results["suite"]
    shape = results["layout"]
    org = results["replay_scale"]
    big, small = org["local"]["2m"], org["local"]["200k"]
    top = "\n".join(f"| `{module}` | {depth} | {ms:.1f} |" for module, ms, depth in cold["top_imports"])
    rows = "\n".join(
        f"| {label} | {hand[key]['median_ms']} | {hand[key]['p99_ms']} | {hand[key]['ours_median_ms']} "
        f"| {hand[key]['ours_p99_ms']} |"
        for key, label in (
            ("matched", "StopLogging, remediated (incident in DynamoDB)"),
            ("not_named", "a call no playbook names"),
            ("guard_skipped", "a failed call (guard)"),
        )
    )
    click_rows = "\n".join(
        f"| {label} | {click[key]['median_ms']} | {click[key]['max_ms']} | {click[key]['ours_median_ms']} |"
        for key, label in (
            ("approve", "Approve on a proposal: decided, handed to the worker"),
            ("not_approver", "a click by someone who is not an approver"),
            ("forged", "a forged signature (401)"),
            ("empty_route", "baseline: a Chalice route that only returns 200"),
        )
    )
    return f"""# Benchmarks

Produced by `make bench` (`.venv/bin/python -m bench.run{" --quick" if quick else ""}`) on
{dt.date.today().isoformat()}, on {machine()}; the whole run took {results["seconds"]} s.
Every speed is a ratio against a baseline measured in the same run. The scripts are in
`bench/`; the corpus is built by `python -m bench.corpus` (deterministic, from the invictus
records in `tests/data/`) into `bench/.corpus/`.

| benchmark | result | target | |
|---|---|---|---|
| cold start: `import app` / `import boto3` | {cold["ratio"]}x ({cold["app_median_ms"]} ms / \
{cold["boto3_median_ms"]} ms) | at most {cold["target"]}x | {_mark(cold["met"])} |
| replay / stdlib gzip+json loop | {rep["vs_stdlib"]}x ({rep["trailguard_s"]} s / {rep["stdlib_s"]} s) \
| at most {replay.TARGET_VS_STDLIB}x | {_mark(rep["met_stdlib"])} |
| jq / replay | {rep["vs_jq"]}x faster ({rep["jq_s"]} s / {rep["trailguard_s"]} s) \
| at least {replay.TARGET_VS_JQ}x | {_mark(rep["met_jq"])} |
| replay / DuckDB alone returning the same candidates, 200k and 2M records | {small["vs_duckdb"]}x \
({small["replay"]["s"]} s / {small["duckdb"]["s"]} s), {big["vs_duckdb"]}x \
({big["replay"]["s"]} s / {big["duckdb"]["s"]} s) \
| at most {replay_scale.TARGET_VS_DUCKDB}x | {_mark(org["local"]["met_duckdb"])} |
| replay's peak memory, 2M records / 200k | {org["local"]["memory_growth"]}x ({big["replay"]["mb"]} MB / \
{small["replay"]["mb"]} MB) | at most {replay_scale.TARGET_MEMORY_GROWTH}x | {_mark(org["local"]["met_memory"])} |
| the replay process's share of its tree's CPU, 200k and 2M records | {small["parent_cpu_share"]:.1%}, \
{big["parent_cpu_share"]:.1%} | under {replay_scale.TARGET_PARENT_CPU:.0%} | {_mark(org["local"]["met_parent_cpu"])} |
| jq / replay, 200k organization records | {small["jq_vs_replay"]}x faster \
({small["jq"]["s"]} s / {small["replay"]["s"]} s) \
| at least {replay_scale.TARGET_VS_JQ}x | {_mark(org["local"]["met_jq"])} |
| replay from S3 (moto's server) / local replay of the same files | {org["s3"]["s3_vs_local"]}x \
({org["s3"]["s3"]["s"]} s / {org["s3"]["local"]["s"]} s) | at most {replay_scale.TARGET_S3_VS_LOCAL}x \
| {_mark(org["s3"]["met"])} |
| `replay --compare` / one replay, 200k records | {org["compare"]["compare_vs_replay"]}x \
({org["compare"]["compare"]["s"]} s / {org["compare"]["replay"]["s"]} s) \
| at most {replay_scale.TARGET_COMPARE_VS_REPLAY}x | {_mark(org["compare"]["met"])} |
| replay with +200 playbooks / built-ins only | {scale["ratio"]}x ({scale["with_200_s"]} s / \
{scale["builtin_s"]} s) | at most {scale["target"]}x | {_mark(scale["met"])} |
| matched event through the handler, median | {hand["matched"]["median_ms"]} ms \
({hand["matched"]["ours_median_ms"]} ms ours) | | |
| Slack click answered (Approve), median / max | {click["approve"]["median_ms"]} ms / {click["approve"]["max_ms"]} ms \
({click["ratio_to_empty_route"]}x an empty route) | median under {click["target_median_ms"]:g} ms, max under 3 s \
| {_mark(click["met"])} |
| `make test` / `make test-fast` (packages installed) | {suite["full_s"]} s / {suite["unit_s"]} s \
| at most {suite["target_full_s"]:g} s / {suite["target_unit_s"]:g} s | {_mark(suite["met"])} |
| the Lambda package (`chalice package`): deployment.zip | {shape["zip_bytes"]:,} bytes, {shape["zip_files"]} files \
| no tooling in it | {_mark(shape["zip_tooling_files"] == 0)} |

## Cold start

Wall time of `python -c "import app"` (the Chalice app with every playbook loaded,
schema-checked and compiled; no boto3 client is created) against `python -c "import
boto3"`, alternating, {cold["runs"]} fresh interpreters each, medians. boto3 itself is
not imported by `app` at all: clients are created on the first event.

Largest imports under `app` (`python -X importtime -c "import app"`, cumulative ms; depth 1
is imported by `app.py`, depth 2 by those modules):

| module | depth | ms |
|---|---|---|
{top}

## Layout

`python -m bench.layout` reads the runtime package's imports with `ast`: {shape["runtime_files"]} files
and {shape["runtime_lines"]:,} lines in `chalicelib/` (what ships to Lambda), {shape["tooling_files"]}
files in `trailguard/` (what does not), {shape["import_edges"]} imports between runtime modules,
{shape["levels"]} levels in the longest chain, {len(shape["cycles"])} cycles. `chalice package` makes
a deployment.zip of {shape["zip_bytes"]:,} bytes ({shape["zip_files"]} files,
{shape["zip_tooling_files"]} of the tooling).

{LAYOUT_ISSUE}

## Replay throughput

`python -m trailguard replay CORPUS --format jsonl` over {rep["records"]:,} records
(100 `.json.gz` files in CloudTrail's S3 layout), against the same files in the same run:

- (a) `gzip -dc FILES | jq -c '.Records[] | select(.eventName | IN(...))'` with the event
  names the playbooks answer: {rep["jq_s"]} s;
- (b) a Python loop that only decompresses (`gzip`) and parses (`json`) each file: {rep["stdlib_s"]} s;
- trailguard: {rep["trailguard_s"]} s, **{rep["events_per_s"]:,} events/s**.

Medians of {rep["runs"]} alternating runs. Peak memory (maximum resident set, workers
included): {rep["peak_mb"]} MB for the whole corpus, {rep["peak_mb_quarter_corpus"]} MB for a
quarter of it (the stdlib loop: {rep["stdlib_peak_mb"]} MB): memory does not grow with the
corpus, because files are streamed one at a time (and gzip files over 16 MB line by line).

What makes it fast: files are decompressed in one zlib call (not a stream of 32 KB reads),
parsed with orjson, in one process per CPU (files are independent; order is kept), and a
record whose (eventSource, eventName) no playbook names is counted without being checked
or wrapped, as EventBridge's rules would drop it before the Lambda.

{replay_scale_section(org)}

## Scaling with playbooks

The same replay with the built-in playbooks and with {scale["playbooks_added"]} generated
playbooks added (on event names that do not occur in the corpus, each with an `if`):
{scale["builtin_s"]} s against {scale["with_200_s"]} s. Playbooks are indexed by
(eventSource, eventName): a record costs one set lookup however many there are.

## Per-event latency in the handler

`chalice.test.Client` invoking `respond_to_cloudtrail` in-process, against moto in-process,
{hand["events"]} events each (after 5 warm-up events: the first creates the clients). "Ours"
subtracts the time spent inside moto's request handler (STS, CloudTrail, DynamoDB), so it
includes botocore's own work of building and parsing requests, which is real in Lambda too.

| event | median ms | p99 ms | ours median ms | ours p99 ms |
|---|---|---|---|---|
{rows}

## Slack interaction answer time

Signed requests (slack_sdk's `SignatureVerifier`, as Slack signs them) posted through
`chalice.test.Client` to `POST /slack/interactions`, in-process, {click["clicks"]} each after 5
warm-up requests, with the deployed wiring: incidents in DynamoDB and the work handed to the
`slack_worker` Lambda by an asynchronous invoke (both moto, in-process). Each Approve lands
on a fresh proposal, so each answer holds the whole decision: signature, payload, incident
read, approver check, conditional write, hand-over. The AWS work of the approval is not in
the answer: it runs in the worker, after Slack has its 200. "Ours" subtracts moto's time.

| request | median ms | max ms | ours median ms |
|---|---|---|---|
{click_rows}

Slack gives up after 3,000 ms; the slowest answer here is {click["approve"]["max_ms"]} ms. The
first Approve after the container had handled its first event (the interaction handler
and the Lambda client not made yet) took {click["approve"]["first_ms"]} ms. In Lambda, add the network round trips to
DynamoDB and Lambda (a few ms each in one region) and, on a cold container, its start (see
cold start).

## A burst of events with duplicates

`bench/load.py` (`.venv/bin/python -m bench.load`; `tests/test_load.py` runs it at a fifth of
the size on every `make test`): {results["load"]["distinct"]:,} distinct events and
{results["load"]["duplicates"]:,} duplicate deliveries of random ones, shuffled, through the
rules' handler in {results["load"]["threads"]} threads, with the incidents in DynamoDB (moto
in-process, its item writes made atomic as DynamoDB's are). Nine in ten are console
sign-ins without MFA (an incident, no AWS call), one in ten a StopLogging (a remediation).

| figure | value |
|---|---|
| wall time | {results["load"]["seconds"]} s |
| deliveries per second, {results["load"]["threads"]} threads | {results["load"]["deliveries_per_second"]} |
| deliveries per second, 1 thread (baseline, same run) | {results["load"]["one_thread_per_second"]} |
| ratio | {results["load"]["ratio_to_one_thread"]}x |
| incidents opened | {results["load"]["opened"]:,} (one per distinct event) |
| duplicates collapsed | {results["load"]["duplicates_collapsed"]:,} |
| lost / extra / errors | {len(load["lost"])} / {load["extra"]} / {len(load["errors"])} |
| final states | {", ".join(f"{k} {v:,}" for k, v in sorted(results["load"]["states"].items()))} |

Threads do not make this faster (the ratio above): moto and the handler share one
interpreter and its lock, so this measures correctness under concurrency, not speed. In Lambda each delivery has its
own container, and DynamoDB's conditional writes decide which one opens the incident.

{import_cost.render(results["import_cost"])}
## The test suite

`bench/suite.py`: what `make test` costs once the packages are in `.venv` (a fresh clone first
installs them: about 70 s here for `make test`, 40 s for `make demo`). The caches of ruff and mypy
are removed first, as on CI; the tests run on {os.cpu_count()} cores with pytest-xdist.

| part | seconds | target |
|---|---|---|
| lint: `ruff check`, `ruff format --check`, `mypy` | {suite["lint_s"]} | |
| unit tier alone (`make test-fast`: `pytest -m unit -n 0`) | {suite["unit_s"]} | at most {suite["target_unit_s"]:g} s |
| every test (`pytest -n auto`) | {suite["tests_s"]} | |
| `make test` (lint + every test) | {suite["full_s"]} | at most {suite["target_full_s"]:g} s |

{lambda_cold.section(results["lambda_cold"])}

{slack_cold.section(results["slack_cold"])}

{member_accounts.section(results["member_accounts"])}

{playbooks_common.section(results["playbooks_common"])}
"""


if __name__ == "__main__":
    sys.exit(main())
