"""Replay throughput over a bulk corpus, against two baselines on the same files in the same run:

(a) jq selecting the records whose eventName is one the playbooks name (`gzip -dc | jq`);
(b) the least Python can do: decompress and parse every file with the standard library.

Runs alternate (a), (b) and trailguard, several times, and compare medians. Peak memory
is each process's maximum resident set; replaying a quarter of the corpus shows whether
memory grows with the corpus (it must not: files are streamed).
"""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

from bench.common import PYTHON, ROOT, environment, median, timed

RUNS = 3
TARGET_VS_STDLIB = 1.2
TARGET_VS_JQ = 3.0

STDLIB_LOOP = """
import gzip, json, pathlib, sys
count = 0
for path in sorted(pathlib.Path(sys.argv[1]).rglob('*.json.gz')):
    with gzip.open(path) as stream:
        count += len(json.load(stream)['Records'])
print(count)
"""


def files(corpus: Path) -> list[str]:
    return sorted(str(path) for path in corpus.rglob("*.json.gz"))


def jq_command(corpus: Path, names: list[str]) -> str:
    wanted = ",".join(f'"{name}"' for name in names)
    return (
        f"gzip -dc {' '.join(shlex.quote(f) for f in files(corpus))} "
        f"| jq -c '.Records[] | select(.eventName | IN({wanted}))'"
    )


def replay_command(corpus: Path, playbooks: list[str] | None = None) -> list[str]:
    command = [PYTHON, "-m", "trailguard", "replay", str(corpus), "--format", "jsonl"]
    for path in playbooks or []:
        command += ["--playbooks", path]
    return command


def peak_rss_mb(command: list[str] | str) -> float:
    """The peak resident memory of `command`, measured by a parent that only waits for it."""
    probe = (
        "import resource, subprocess, sys; "
        "subprocess.run(sys.argv[1:] if len(sys.argv) > 2 else sys.argv[1], shell=len(sys.argv) == 2, "
        "check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    argv = [PYTHON, "-c", probe] + ([command] if isinstance(command, str) else command)
    out = subprocess.run(argv, check=True, capture_output=True, text=True, env=environment(), cwd=ROOT).stdout
    return int(out.strip()) / 1024


def count_records(corpus: Path) -> int:
    out = subprocess.run([PYTHON, "-c", STDLIB_LOOP, str(corpus)], check=True, capture_output=True, text=True)
    return int(out.stdout)


def run(corpus: Path, small_corpus: Path, runs: int = RUNS) -> dict:
    from chalicelib.playbooks.catalog import Catalog
    from chalicelib.settings import PROJECT_PLAYBOOKS

    names = sorted({name for group in Catalog.load([PROJECT_PLAYBOOKS]).event_names().values() for name in group})
    records = count_records(corpus)
    jq, stdlib, ours = [], [], []
    timed(replay_command(corpus), stderr=subprocess.DEVNULL)  # warm the page cache
    for _ in range(runs):
        jq.append(timed(jq_command(corpus, names), shell=True))
        stdlib.append(timed([PYTHON, "-c", STDLIB_LOOP, str(corpus)]))
        ours.append(timed(replay_command(corpus), stderr=subprocess.DEVNULL))
    memory_full = peak_rss_mb(replay_command(corpus))
    memory_small = peak_rss_mb(replay_command(small_corpus))
    return {
        "records": records,
        "runs": runs,
        "jq_s": round(median(jq), 2),
        "stdlib_s": round(median(stdlib), 2),
        "trailguard_s": round(median(ours), 2),
        "events_per_s": int(records / median(ours)),
        "vs_stdlib": round(median(ours) / median(stdlib), 2),
        "vs_jq": round(median(jq) / median(ours), 2),
        "met_stdlib": median(ours) / median(stdlib) <= TARGET_VS_STDLIB,
        "met_jq": median(jq) / median(ours) >= TARGET_VS_JQ,
        "peak_mb": round(memory_full, 1),
        "peak_mb_quarter_corpus": round(memory_small, 1),
        "stdlib_peak_mb": round(peak_rss_mb([PYTHON, "-c", STDLIB_LOOP, str(corpus)]), 1),
    }
