"""What a metrics library costs a cold start: aws-lambda-powertools' Metrics against trailguard's
own EMF lines (`chalicelib.metrics`), each imported after boto3, as in every trailguard Lambda.

    .venv/bin/python -m bench.import_cost [RUNS]

Each run is a fresh interpreter with `-X importtime` that imports boto3, writes a marker to
stderr, then the candidate: the self times of the modules imported after the marker are
what the candidate adds to a process that already has boto3. A second series imports the
candidate first (its cost alone, shared dependencies included). A third repeats the first
with the candidate's package copied without bytecode, under `-B`: Chalice's deployment.zip
carries no .pyc and /var/task is read-only, so a package bundled through requirements.txt
is compiled at every cold start, while the runtime's own boto3 is not (the candidate's
third-party dependencies stay compiled: a lower bound). Wall times (perf_counter, without
-X importtime, which adds its own overhead) are measured too. Medians.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import PYTHON, ROOT, environment

RUNS = 15
MARK = "@@MARK@@"
BASE = "import boto3"
CANDIDATES = {
    "aws-lambda-powertools Metrics": (
        "from aws_lambda_powertools.metrics import Metrics, MetricUnit",
        "aws_lambda_powertools",
    ),
    "trailguard's own EMF lines (chalicelib.metrics)": ("from chalicelib.metrics import Metrics", "chalicelib"),
}
"""What each candidate imports, and the package it brings into the deployment zip."""


def _importtime(first: str, second: str, env: dict[str, str], flags: list[str], cwd: Path = ROOT) -> tuple[int, int]:
    """Self times (µs) summed before and after the marker; `cwd` comes first on sys.path."""
    code = f"{first}\nimport sys\nsys.stderr.write('{MARK}\\n')\nsys.stderr.flush()\n{second}\n"
    result = subprocess.run(
        [PYTHON, *flags, "-X", "importtime", "-c", code], env=env, cwd=cwd, capture_output=True, text=True, check=True
    )
    before = after = 0
    marked = False
    for line in result.stderr.splitlines():
        if line.strip() == MARK:
            marked = True
        elif line.startswith("import time:") and "self [us]" not in line:
            self_us = int(line.split(":", 1)[1].split("|")[0])
            after, before = (after + self_us, before) if marked else (after, before + self_us)
    return before, after


def _wall(first: str, second: str, env: dict[str, str], flags: list[str], cwd: Path = ROOT) -> float:
    """Milliseconds `second` takes after `first`, without -X importtime."""
    code = f"import time\n{first}\nt = time.perf_counter()\n{second}\nprint((time.perf_counter() - t) * 1000)\n"
    out = subprocess.run([PYTHON, *flags, "-c", code], env=env, cwd=cwd, capture_output=True, text=True, check=True)
    return float(out.stdout)


def _package_dir(package: str) -> Path:
    found = subprocess.run(
        [PYTHON, "-c", f"import {package}, os; print(os.path.dirname({package}.__file__))"],
        env=environment(),
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return Path(found.stdout.strip())


def run(runs: int = RUNS) -> dict:
    env = environment()
    subprocess.run([PYTHON, "-m", "compileall", "-q", str(ROOT / "chalicelib")], check=True)  # compiled as pip's
    series: dict[str, dict[str, float]] = {}
    for name, (statement, package) in CANDIDATES.items():
        after = [_importtime(BASE, statement, env, []) for _ in range(runs)]
        alone = [_importtime(statement, BASE, env, []) for _ in range(runs)]
        wall = [_wall(BASE, statement, env, []) for _ in range(runs)]
        with tempfile.TemporaryDirectory() as scratch:
            folder = Path(scratch)  # first on sys.path (the cwd of `-c`): its copy wins
            shutil.copytree(_package_dir(package), folder / package, ignore=shutil.ignore_patterns("__pycache__"))
            cold = [_importtime(BASE, statement, env, ["-B"], folder) for _ in range(runs)]
            cold_wall = [_wall(BASE, statement, env, ["-B"], folder) for _ in range(runs)]
        boto3_ms = statistics.median(b for b, _ in after) / 1000
        added_ms = statistics.median(a for _, a in after) / 1000
        series[name] = {
            "boto3_ms": round(boto3_ms, 1),
            "added_ms": round(added_ms, 1),
            "ratio": round(added_ms / boto3_ms, 3),
            "alone_ms": round(statistics.median(b for b, _ in alone) / 1000, 1),
            "wall_added_ms": round(statistics.median(wall), 1),
            "uncompiled_added_ms": round(statistics.median(a for _, a in cold) / 1000, 1),
            "uncompiled_wall_added_ms": round(statistics.median(cold_wall), 1),
        }
    return {"runs": runs, "python": sys.version.split()[0], "series": series, "wheel": _wheel_size()}


def _wheel_size() -> dict[str, float]:
    """What powertools would add to every function's zip (its installed files)."""
    folder = _package_dir("aws_lambda_powertools")
    files = [path for path in folder.rglob("*") if path.is_file() and "__pycache__" not in path.parts]
    return {"files": len(files), "megabytes": round(sum(path.stat().st_size for path in files) / 1e6, 1)}


def render(results: dict) -> str:
    rows = "\n".join(
        f"| {name} | {row['added_ms']} | {row['ratio']:.2f} | {row['wall_added_ms']} "
        f"| {row['uncompiled_added_ms']} ({row['uncompiled_wall_added_ms']} wall) | {row['alone_ms']} |"
        for name, row in results["series"].items()
    )
    boto3_ms = statistics.median(row["boto3_ms"] for row in results["series"].values())
    return f"""## Metrics: trailguard's own EMF lines, not aws-lambda-powertools

`.venv/bin/python -m bench.import_cost` (Python {results["python"]}, {results["runs"]} fresh
interpreters per figure, medians): what importing each candidate adds to a process that
imported boto3 already ({boto3_ms:.1f} ms of self time for boto3 here), as every trailguard
function has. "Not compiled" repeats it with the candidate's package copied without
bytecode under `-B`: Chalice's deployment.zip carries no `.pyc` and `/var/task` is
read-only, so a bundled package is compiled at every cold start (its own dependencies stay
compiled: a lower bound). "Alone" imports the candidate first, shared dependencies included.

| candidate | added after boto3, ms | ratio to boto3 | added, wall ms | added, not compiled, ms | alone, ms |
|---|---|---|---|---|---|
{rows}

powertools would also add its package, {results["wheel"]["megabytes"]} MB in {results["wheel"]["files"]} files as
installed, to every function's zip. The import cost alone would be acceptable; what decided it is that
powertools buffers a metric set and prints it when the handler returns, outside
trailguard's logger and its request id, while trailguard writes one line per fact at the
moment the conditional write made it so, carrying the incident and the account (see
`chalicelib/metrics.py`; docs/operations.md lists the metrics). The extra AWS calls each
incident costs are in docs/operations.md.
"""


if __name__ == "__main__":
    measured = run(int(sys.argv[1]) if len(sys.argv) > 1 else RUNS)
    print(render(measured))
