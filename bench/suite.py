"""The test suite's own speed, against the targets of the fresh-clone issue: the unit tier
(`make test-fast`) at most 20 s, the whole of `make test` (lint, format, types, every test on
both cores) at most 120 s. Measured in the checkout's .venv, packages already installed: a
fresh clone first spends about a minute in pip (README). The ruff and mypy caches are removed
first, so lint is timed as CI runs it.
"""

from __future__ import annotations

import shutil

from bench.common import PYTHON, ROOT, timed

TARGET_UNIT_S = 20.0
TARGET_FULL_S = 120.0


def run() -> dict:
    bin_dir = ROOT / ".venv" / "bin"
    for cache in (".mypy_cache", ".ruff_cache"):
        shutil.rmtree(ROOT / cache, ignore_errors=True)
    lint = sum(
        timed(command)
        for command in (
            [str(bin_dir / "ruff"), "check", "."],
            [str(bin_dir / "ruff"), "format", "--check", "."],
            [str(bin_dir / "mypy")],
        )
    )
    unit = timed([PYTHON, "-m", "pytest", "-m", "unit", "-n", "0", "-q", "-p", "no:cacheprovider"])
    tests = timed([PYTHON, "-m", "pytest", "-n", "auto", "-q", "-p", "no:cacheprovider"])
    return {
        "lint_s": round(lint, 1),
        "unit_s": round(unit, 1),
        "tests_s": round(tests, 1),
        "full_s": round(lint + tests, 1),
        "target_unit_s": TARGET_UNIT_S,
        "target_full_s": TARGET_FULL_S,
        "met": unit <= TARGET_UNIT_S and lint + tests <= TARGET_FULL_S,
    }
