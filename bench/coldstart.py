"""Cold start: importing `app` (playbooks loaded and compiled) against importing boto3 alone.

Each import runs in a fresh interpreter, alternating the two, so that both see the same
machine state; the figure is the ratio of the medians.
"""

from __future__ import annotations

import re
import subprocess

from bench.common import PYTHON, ROOT, environment, median, timed

RUNS = 15
TARGET = 1.3


def run(runs: int = RUNS) -> dict:
    baseline, app = [], []
    timed([PYTHON, "-c", "import app"])  # warm the file cache and the .pyc files first
    for _ in range(runs):
        baseline.append(timed([PYTHON, "-c", "import boto3"]))
        app.append(timed([PYTHON, "-c", "import app"]))
    ratio = median(app) / median(baseline)
    return {
        "runs": runs,
        "boto3_median_ms": round(median(baseline) * 1000, 1),
        "app_median_ms": round(median(app) * 1000, 1),
        "ratio": round(ratio, 2),
        "target": TARGET,
        "met": ratio <= TARGET,
        "top_imports": top_imports(),
    }


def top_imports(count: int = 10) -> list[tuple[str, float, int]]:
    """`python -X importtime -c 'import app'`: the modules `app` imports, one and two levels
    down, with the largest cumulative time."""
    result = subprocess.run(
        [PYTHON, "-X", "importtime", "-c", "import app"],
        capture_output=True,
        text=True,
        env=environment(),
        cwd=ROOT,
        check=True,
    )
    rows = []
    for line in result.stderr.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
        if match and len(match.group(3)) in (3, 5):  # imported by app, or by what app imports
            rows.append((match.group(4), int(match.group(2)) / 1000, 1 if len(match.group(3)) == 3 else 2))
    return sorted(rows, key=lambda row: -row[1])[:count]


if __name__ == "__main__":
    print(run())
