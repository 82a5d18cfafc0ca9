"""Playbooks at volume: +1,000 playbooks on the write calls the corpus holds most.

`bench.scaling` adds playbooks on calls that never occur (the index keeps them free); an
organization's own playbooks name the common calls, so each such record is tested against
every condition. Here 1,000 generated playbooks share the corpus's 12 most frequent write
calls, each with an `if` of the most common shape (a field compared with a literal) that
does not hold, so both runs report the same incidents and differ only in the conditions
evaluated. `trailguard replay` with the built-ins alone and with them + 1,000, alternating,
CPU of the child (user + system), medians; and `import app` with each catalog
(`TRAILGUARD_PLAYBOOKS`), the same way.

    .venv/bin/python -m bench.playbooks_common
"""

from __future__ import annotations

import collections
import os
import resource
import statistics
import subprocess
import tempfile
from pathlib import Path

from bench.common import PYTHON, ROOT, ensure_corpus, environment
from bench.replay import replay_command

RUNS = 3
GENERATED = 1000
RECORDS = 50_000
TARGET = 1.5
TEMPLATE = """id: common-{number}
title: Generated playbook {number} on a common call
severity: low
when:
  source: {source}
  events: [{name}]
  if: "userIdentity.type == 'NoSuchType{number}' && awsRegion != 'xx-none-1'"
mode: notify
"""


def common_calls(count: int = 12) -> list[tuple[str, str]]:
    from bench.corpus import default_datasets, invictus_records

    counted = collections.Counter(
        (r["eventSource"], r["eventName"]) for r in invictus_records(default_datasets()) if not r.get("readOnly")
    )
    return [call for call, _ in counted.most_common(count)]


def generate(folder: Path, count: int = GENERATED) -> Path:
    calls = common_calls()
    for number in range(count):
        source, name = calls[number % len(calls)]
        (folder / f"common-{number}.yaml").write_text(TEMPLATE.format(number=number, source=source, name=name))
    return folder


def _cpu(command: list[str], env: dict[str, str] | None = None) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(
        command, check=True, cwd=ROOT, env=env or environment(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def run(runs: int = RUNS) -> dict:
    from chalicelib.settings import PROJECT_PLAYBOOKS

    corpus = ensure_corpus(ROOT / "bench" / ".corpus" / str(RECORDS), RECORDS)
    with tempfile.TemporaryDirectory() as tmp:
        extra = generate(Path(tmp))
        builtin_replay = replay_command(corpus, [str(PROJECT_PLAYBOOKS)])
        many_replay = replay_command(corpus, [str(PROJECT_PLAYBOOKS), str(extra)])
        import_builtin = {**environment(), "TRAILGUARD_PLAYBOOKS": str(PROJECT_PLAYBOOKS)}
        import_many = {**environment(), "TRAILGUARD_PLAYBOOKS": f"{PROJECT_PLAYBOOKS}{os.pathsep}{extra}"}
        figures: dict[str, list[float]] = {"replay": [], "replay_many": [], "import": [], "import_many": []}
        for _ in range(runs):
            figures["replay"].append(_cpu(builtin_replay))
            figures["replay_many"].append(_cpu(many_replay))
            figures["import"].append(_cpu([PYTHON, "-c", "import app"], import_builtin))
            figures["import_many"].append(_cpu([PYTHON, "-c", "import app"], import_many))
    cpu = {key: statistics.median(values) for key, values in figures.items()}
    replay_ratio = cpu["replay_many"] / cpu["replay"]
    import_ratio = cpu["import_many"] / cpu["import"]
    return {
        "records": RECORDS,
        "playbooks_added": GENERATED,
        "cpu_s": {key: round(value, 2) for key, value in cpu.items()},
        "replay_ratio": round(replay_ratio, 2),
        "import_ratio": round(import_ratio, 2),
        "target": TARGET,
        "replay_met": replay_ratio <= TARGET,
        "import_met": import_ratio <= TARGET,
    }


if __name__ == "__main__":
    print(run())


def section(result: dict) -> str:
    """docs/benchmarks.md's section (issue 24)."""
    cpu = result["cpu_s"]
    return f"""## Playbooks at volume: +{result["playbooks_added"]:,} on common calls

`python -m bench.playbooks_common` (part of `make bench`): {result["playbooks_added"]:,} generated playbooks
on the 12 write calls the corpus holds most, each `if: "userIdentity.type == 'NoSuchTypeN' && awsRegion
!= 'xx-none-1'"` (never true: the same incidents either way); a {result["records"]:,}-record corpus; CPU
of the child, alternating, medians.

| | built-ins alone | + {result["playbooks_added"]:,} | ratio | target |
|---|---|---|---|---|
| `trailguard replay` | {cpu["replay"]} s | {cpu["replay_many"]} s | **{result["replay_ratio"]}x** \
| at most {result["target"]}x: {"met" if result["replay_met"] else "**not met**"} |
| `import app` | {cpu["import"]} s | {cpu["import_many"]} s | **{result["import_ratio"]}x** \
| at most {result["target"]}x: {"met" if result["import_met"] else "**not met**"} |

Conditions run as Python closures compiled from jmespath's tree (`chalicelib/playbooks/compiled.py`),
and the playbooks of one call whose `if` tests `path == 'text'` are indexed by that field
(`Catalog.ruled_out`): a record meets one dictionary lookup per tested field, not one condition per
playbook. Before both, the same command gave replay 4.98x and `import app` 2.07x; with the closures
alone, replay 2.42x. `import app` still parses, validates and compiles each playbook at every cold
start: a precompiled catalog would be the next step."""
