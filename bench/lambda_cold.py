"""Cold start as Lambda runs it: `import app` from the package `chalice package` builds.

The deployment.zip is unpacked twice: as shipped (with the checked-hash bytecode that
`python -m trailguard.bytecode` writes, see trailguard/bytecode.py) and with every `.pyc`
removed (what a package without bytecode gives: Lambda's /var/task is read-only, so Python
compiles every module at every cold start). Each import runs in a fresh interpreter with
the unpacked folder first on the path and bytecode writing off, alternating with `import
boto3` (the baseline: boto3 comes with Lambda's runtime, compiled); CPU seconds (user +
system, of the child) and wall time, medians. At 256 MB Lambda gives about 0.15 vCPU, so a
CPU second there takes about 6.7 s; at 1,024 MB (0.58 vCPU) about 1.7 s.

    .venv/bin/python -m bench.lambda_cold
"""

from __future__ import annotations

import resource
import shutil
import statistics
import subprocess
import tempfile
import time
import zipfile
from pathlib import Path

from bench.common import PYTHON, ROOT, environment

RUNS = 11
TARGET = 1.0
"""`import app` as shipped, at most `import boto3` (CPU)."""
VCPU_PER_MB = 1 / 1769
"""Lambda's CPU share grows with memory: one vCPU at 1,769 MB."""


def package(out: Path) -> Path:
    """`chalice package` of the dev stage, after writing the bytecode."""
    env = {**environment(), "AWS_DEFAULT_REGION": "us-east-1"}
    subprocess.run([PYTHON, "-m", "trailguard.bytecode"], check=True, cwd=ROOT, env=env)
    chalice = str(Path(PYTHON).with_name("chalice"))
    subprocess.run(
        [chalice, "package", "--stage", "dev", str(out)], check=True, cwd=ROOT, env=env, stdout=subprocess.DEVNULL
    )
    return out / "deployment.zip"


def _child(command: str, path: Path | None) -> tuple[float, float]:
    """CPU and wall seconds of one fresh interpreter running `command`."""
    env = {**environment(), "PYTHONDONTWRITEBYTECODE": "1"}
    if path is not None:
        env["PYTHONPATH"] = str(path)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run([PYTHON, "-c", command], check=True, cwd=path or ROOT, env=env)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), wall


def run(runs: int = RUNS) -> dict:
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        archive = package(work / "out")
        shipped, bare = work / "shipped", work / "bare"
        with zipfile.ZipFile(archive) as zipped:
            zipped.extractall(shipped)
            zipped.extractall(bare)
            pycs = sum(1 for name in zipped.namelist() if name.endswith(".pyc"))
        for pyc in bare.rglob("*.pyc"):
            pyc.unlink()
        for folder in list(bare.rglob("__pycache__")):
            shutil.rmtree(folder, ignore_errors=True)
        results: dict[str, list[tuple[float, float]]] = {"boto3": [], "shipped": [], "bare": []}
        _child("import app", shipped)  # the file cache warm for every side
        for _ in range(runs):
            results["boto3"].append(_child("import boto3", None))
            results["shipped"].append(_child("import app", shipped))
            results["bare"].append(_child("import app", bare))
    cpu = {key: statistics.median(c for c, _ in values) for key, values in results.items()}
    wall = {key: statistics.median(w for _, w in values) for key, values in results.items()}
    ratio = cpu["shipped"] / cpu["boto3"]
    return {
        "runs": runs,
        "pycs_in_package": pycs,
        "cpu_ms": {key: round(value * 1000, 1) for key, value in cpu.items()},
        "wall_ms": {key: round(value * 1000, 1) for key, value in wall.items()},
        "shipped_vs_boto3": round(ratio, 2),
        "bare_vs_boto3": round(cpu["bare"] / cpu["boto3"], 2),
        "at_256mb_ms": round(cpu["shipped"] * 1000 / (256 * VCPU_PER_MB)),
        "bare_at_256mb_ms": round(cpu["bare"] * 1000 / (256 * VCPU_PER_MB)),
        "target": TARGET,
        "met": ratio <= TARGET,
    }


def section(result: dict) -> str:
    """docs/benchmarks.md's section (issue 24)."""
    cpu, wall = result["cpu_ms"], result["wall_ms"]
    return f"""## Cold start as Lambda runs it

`python -m bench.lambda_cold` (part of `make bench`): `chalice package --stage dev` after `python -m
trailguard.bytecode`, the deployment.zip unpacked as shipped ({result["pycs_in_package"]} checked-hash
`.pyc` files) and again without any `.pyc`; `python -c "import app"` in a fresh interpreter with the
unpacked folder first on the path and bytecode writing off (Lambda's /var/task is read-only),
alternating with `import boto3`, medians of {result["runs"]}, CPU of the child (user + system):

| | CPU ms | wall ms | / `import boto3` (CPU) | estimated at 256 MB (0.145 vCPU) |
|---|---|---|---|---|
| `import boto3` (Lambda's runtime, compiled) | {cpu["boto3"]} | {wall["boto3"]} | 1.0x | |
| `import app`, package as shipped | {cpu["shipped"]} | {wall["shipped"]} | **{result["shipped_vs_boto3"]}x** \
| {result["at_256mb_ms"]} ms |
| `import app`, package without bytecode | {cpu["bare"]} | {wall["bare"]} | {result["bare_vs_boto3"]}x \
| {result["bare_at_256mb_ms"]} ms |

Target: `import app` as shipped at most {result["target"]}x `import boto3`: \
{"met" if result["met"] else "**not met**"}. The bundled dependencies' bytecode (PyYAML, jmespath,
fastjsonschema, tenacity, slack_sdk, Chalice's runtime) is compiled from the venv's copies, which
`make` installs from the same requirements.txt as the package; a version that differs would only be
compiled at cold start, as before. At 256 MB a CPU second takes about 6.9 s (1 vCPU at 1,769 MB).
The package also ships the precompiled playbook catalog, which takes YAML, the schema and
JMESPath's parser out of `import app` for the bundled playbooks (`chalicelib/playbooks/precompiled.py`)."""


if __name__ == "__main__":
    result = run()
    print(result)
    print(section(result))
