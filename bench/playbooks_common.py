"""Playbooks at volume: +1,000 playbooks on the write calls the corpus holds most.

`bench.scaling` adds playbooks on calls that never occur (the index keeps them free); an
organization's own playbooks name the common calls, so each such record is tested against
every condition. Here 1,000 generated playbooks share the corpus's 12 most frequent write
calls, each with an `if` of the most common shape (a field compared with a literal) that
does not hold, so both runs report the same incidents and differ only in the conditions
evaluated. `trailguard replay` with the built-ins alone and with them + 1,000, alternating,
CPU of the replay and its worker processes (user + system), medians (the checkout's precompiled catalog, which holds
the built-ins); and `import app` with each catalog
(`TRAILGUARD_PLAYBOOKS`), the same way: each with the precompiled catalog its package would
ship (`trailguard.bytecode.write_catalog` of its playbooks, written before each import, as
`make bytecode` writes it before `chalice package`), and each again without one (the YAML
path, as before the precompiled catalog). The checkout's catalog is written again at the end.

    .venv/bin/python -m bench.playbooks_common [--import-only] [RUNS]
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


def _tree_cpu(command: list[str]) -> float:
    """CPU of a replay and of every process it starts: its workers are children of a fork
    server it does not wait for, which `RUSAGE_CHILDREN` of this process would miss
    (`bench.replay_scale.measure` reaps and counts them)."""
    from bench.replay_scale import measure

    return measure(command)["cpu"]


def _cpu(command: list[str], env: dict[str, str] | None = None) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(
        command, check=True, cwd=ROOT, env=env or environment(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _import_cpu(env: dict[str, str], catalog: list[Path] | None) -> float:
    """CPU of `import app` in a fresh interpreter, the precompiled catalog written for
    `catalog` first (None: no catalog at all, the YAML path)."""
    from chalicelib.playbooks.precompiled import CATALOG_FILE
    from trailguard.bytecode import write_catalog

    if catalog is None:
        CATALOG_FILE.unlink(missing_ok=True)
    else:
        write_catalog(ROOT, catalog)
    return _cpu([PYTHON, "-c", "import app"], env)


def run(runs: int = RUNS, replay: bool = True) -> dict:
    from chalicelib.settings import PROJECT_PLAYBOOKS
    from trailguard.bytecode import catalog_paths, write_catalog

    corpus = ensure_corpus(ROOT / "bench" / ".corpus" / str(RECORDS), RECORDS) if replay else None
    figures: dict[str, list[float]] = {key: [] for key in ("replay", "replay_many", "import", "import_many")}
    figures.update(import_yaml=[], import_many_yaml=[])
    with tempfile.TemporaryDirectory() as tmp:
        extra = generate(Path(tmp))
        import_builtin = {**environment(), "TRAILGUARD_PLAYBOOKS": str(PROJECT_PLAYBOOKS)}
        import_many = {**environment(), "TRAILGUARD_PLAYBOOKS": f"{PROJECT_PLAYBOOKS}{os.pathsep}{extra}"}
        shipped = catalog_paths(ROOT)
        try:
            for _ in range(runs):
                if corpus is not None:
                    write_catalog(ROOT)  # replay as from a checkout: its own catalog (the built-ins)
                    figures["replay"].append(_tree_cpu(replay_command(corpus, [str(PROJECT_PLAYBOOKS)])))
                    figures["replay_many"].append(
                        _tree_cpu(replay_command(corpus, [str(PROJECT_PLAYBOOKS), str(extra)]))
                    )
                figures["import"].append(_import_cpu(import_builtin, shipped))
                figures["import_many"].append(_import_cpu(import_many, [*shipped, extra]))
                figures["import_yaml"].append(_import_cpu(import_builtin, None))
                figures["import_many_yaml"].append(_import_cpu(import_many, None))
        finally:
            write_catalog(ROOT)  # the checkout's own
    cpu = {key: statistics.median(values) for key, values in figures.items() if values}
    import_ratio = cpu["import_many"] / cpu["import"]
    result = {
        "records": RECORDS,
        "playbooks_added": GENERATED,
        "cpu_s": {key: round(value, 3) for key, value in cpu.items()},
        "import_ratio": round(import_ratio, 2),
        "import_yaml_ratio": round(cpu["import_many_yaml"] / cpu["import_yaml"], 2),
        "target": TARGET,
        "import_met": import_ratio <= TARGET,
    }
    if corpus is not None:
        replay_ratio = cpu["replay_many"] / cpu["replay"]
        result.update(replay_ratio=round(replay_ratio, 2), replay_met=replay_ratio <= TARGET)
    return result


if __name__ == "__main__":
    import sys

    arguments = [argument for argument in sys.argv[1:] if argument != "--import-only"]
    print(run(int(arguments[0]) if arguments else RUNS, replay="--import-only" not in sys.argv))


def section(result: dict) -> str:
    """docs/benchmarks.md's section (issue 24)."""
    cpu = result["cpu_s"]
    replay = (
        f"| `trailguard replay` | {cpu['replay']} s | {cpu['replay_many']} s | **{result['replay_ratio']}x** "
        f"| at most {result['target']}x: {'met' if result['replay_met'] else '**not met**'} |\n"
        if "replay_ratio" in result
        else ""
    )
    return f"""## Playbooks at volume: +{result["playbooks_added"]:,} on common calls

`python -m bench.playbooks_common` (part of `make bench`; `--import-only` skips replay):
{result["playbooks_added"]:,} generated playbooks on the 12 write calls the corpus holds most, each
`if: "userIdentity.type == 'NoSuchTypeN' && awsRegion != 'xx-none-1'"` (never true: the same incidents
either way); a {result["records"]:,}-record corpus; CPU of the replay with its worker processes,
and of `import app` (interpreter, imports, exit), alternating, medians. `import app` runs with
the precompiled catalog its package would ship (written for its playbooks before each run, as
`make bytecode` writes it before `chalice package`), and again without any (every playbook read from its YAML).

| | built-ins alone | + {result["playbooks_added"]:,} | ratio | target |
|---|---|---|---|---|
{replay}| `import app` | {cpu["import"]} s | {cpu["import_many"]} s | **{result["import_ratio"]}x** \
| at most {result["target"]}x: {"met" if result["import_met"] else "**not met**"} |
| `import app` without a precompiled catalog | {cpu["import_yaml"]} s | {cpu["import_many_yaml"]} s \
| {result["import_yaml_ratio"]}x | |

Conditions run as Python closures compiled from jmespath's tree (`chalicelib/playbooks/compiled.py`) on
first use, and the playbooks of one call whose `if` tests `path == 'text'` are indexed by that field
(`Catalog.ruled_out`): a record meets one dictionary lookup per tested field, not one condition per
playbook. Before both, the same command gave replay 4.98x and `import app` 2.07x; with them, `import
app` 1.69x. The precompiled catalog (`chalicelib/playbooks/precompiled.py`) then removes YAML, the
schema and JMESPath's parser from a cold start for every file it holds: what is left per playbook is
reading and hashing its file (the key that keeps a changed playbook from being served stale) and
building the playbook from the checked document. The bundled playbooks alone gain most (their YAML
is large): `import app` costs {cpu["import"]} s with the catalog against {cpu["import_yaml"]} s
without, which also makes the ratio's denominator smaller."""
