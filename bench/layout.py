"""The layout in figures: what ships to Lambda, how deep its imports go, and its cycles.

    .venv/bin/python -m bench.layout [CHECKOUT] [--json]

For the checkout (default: this one) it counts the Python files of the runtime package
(`chalicelib/`, which Chalice zips with `app.py`) and of the tooling beside it, and walks
the imports of every runtime module with `ast`: every import, at module level, inside a
function or under TYPE_CHECKING, since each is a dependency a reader has to follow. An
import names a module (`from chalicelib.x import y` is `chalicelib.x.y` when that is a
module, else `chalicelib.x`). Cycles are the strongly connected components of more than
one module; the levels are the longest chain of imports once each cycle is taken as one
module (a module importing nothing of ours is level 1).

`--compare DIR` puts another checkout beside this one (an older commit:
`git archive COMMIT | tar -x -C DIR`) and adds, for both, the size of the Lambda package
(`chalice package`, needs PyPI or pip's cache) and the cold start (`python -c "import app"`,
fresh interpreters alternating between the two checkouts, medians), from compiled files and
from source (Lambda's package holds no .pyc). It removes and rewrites their __pycache__.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from bench.common import PYTHON, ROOT, environment, median

RUNTIME = "chalicelib"
TOOLING = "trailguard"


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def modules(root: Path, package: str) -> dict[str, Path]:
    found = {module_name(root, path): path for path in sorted((root / package).rglob("*.py"))}
    return {name: path for name, path in found.items() if "__pycache__" not in str(found[name])}


def imported(tree: ast.AST, name: str, is_package: bool, known: set[str]) -> set[str]:
    """The modules of `known` that the module `name` imports, anywhere in its code."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from the module's own package
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                origin = ".".join([*base, node.module] if node.module else base)
            else:
                origin = node.module or ""
            targets = [
                f"{origin}.{alias.name}" if f"{origin}.{alias.name}" in known else origin for alias in node.names
            ]
        else:
            continue
        for target in targets:
            while target and target not in known:  # `import a.b.c` of a name inside a module
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def graph(root: Path, package: str = RUNTIME) -> dict[str, set[str]]:
    found = modules(root, package)
    known = set(found)
    return {
        name: imported(ast.parse(path.read_text()), name, path.name == "__init__.py", known)
        for name, path in found.items()
    }


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(edges[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for node in sorted(edges):
        if node not in index:
            visit(node)
    return sorted(found)


def levels(edges: dict[str, set[str]]) -> tuple[int, list[str]]:
    """The longest import chain (each cycle counted as one module), and one such chain."""
    component = {name: name for name in edges}
    for members in cycles(edges):
        for member in members:
            component[member] = "{" + ", ".join(members) + "}"
    condensed: dict[str, set[str]] = {}
    for name, targets in edges.items():
        own = component[name]
        condensed.setdefault(own, set()).update(component[t] for t in targets if component[t] != own)
    chain: dict[str, list[str]] = {}

    def longest(node: str) -> list[str]:
        if node not in chain:
            below = [longest(target) for target in sorted(condensed[node])]
            chain[node] = [node, *max(below, key=len, default=[])]
        return chain[node]

    deepest = max((longest(node) for node in sorted(condensed)), key=len, default=[])
    return len(deepest), deepest


def lines(paths: list[Path]) -> int:
    return sum(len(path.read_text().splitlines()) for path in paths)


def measure(root: Path) -> dict:
    runtime = modules(root, RUNTIME)
    tooling = modules(root, TOOLING) if (root / TOOLING).is_dir() else {}
    edges = graph(root)
    depth, chain = levels(edges)
    found_cycles = cycles(edges)
    return {
        "runtime_files": len(runtime),
        "runtime_lines": lines(list(runtime.values())),
        "top_level_runtime_modules": sorted(
            name for name, path in runtime.items() if name.count(".") == 1 and path.name != "__init__.py"
        ),
        "tooling_files": len(tooling),
        "tooling_lines": lines(list(tooling.values())),
        "import_edges": sum(len(targets) for targets in edges.values()),
        "levels": depth,
        "deepest_chain": chain,
        "cycles": found_cycles,
    }


def package(root: Path) -> dict:
    """`chalice package` of the checkout's dev stage: the zip's size and what it holds."""
    chalice = Path(PYTHON).parent / "chalice"
    with tempfile.TemporaryDirectory() as out:
        subprocess.run(
            [str(chalice), "package", "--stage", "dev", out],
            cwd=root,
            env={**environment(), "PATH": os.environ.get("PATH", "")},
            check=True,
            capture_output=True,
        )
        path = Path(out) / "deployment.zip"
        names = zipfile.ZipFile(path).namelist()
        return {
            "zip_bytes": path.stat().st_size,
            "zip_files": len(names),
            "zip_runtime_files": sum(1 for name in names if name.startswith(f"{RUNTIME}/")),
            "zip_tooling_files": sum(1 for name in names if name.startswith(f"{TOOLING}/")),
        }


def _bytecode(root: Path, compiled: bool) -> None:
    """Remove the checkout's compiled files; with `compiled`, compile app.py and chalicelib/ again."""
    for cache in [*root.glob("__pycache__"), *(root / RUNTIME).rglob("__pycache__")]:
        shutil.rmtree(cache)
    if compiled:
        subprocess.run([PYTHON, "-m", "compileall", "-q", "app.py", RUNTIME], cwd=root, check=True)


def coldstart(roots: list[Path], runs: int = 15, compiled: bool = True) -> list[float]:
    """Median milliseconds of `python -c "import app"` in each checkout, alternating.

    `compiled`: from .pyc files, as on a developer's machine; else from source, as in
    Lambda, whose package holds no .pyc and whose code folder is read-only."""
    for root in roots:
        _bytecode(root, compiled)
    times: list[list[float]] = [[] for _ in roots]
    for root in roots:  # warm the file cache first
        subprocess.run([PYTHON, "-c", "import app"], cwd=root, env=environment(), check=True)
    for _ in range(runs):
        for index, root in enumerate(roots):
            started = time.perf_counter()
            subprocess.run([PYTHON, "-c", "import app"], cwd=root, env=environment(), check=True)
            times[index].append(time.perf_counter() - started)
    return [round(median(found) * 1000, 1) for found in times]


def compare(before: Path, after: Path, runs: int) -> dict:
    figures = {"before": {**measure(before), **package(before)}, "after": {**measure(after), **package(after)}}
    for compiled, key in ((True, "coldstart_ms"), (False, "coldstart_source_ms")):
        figures["before"][key], figures["after"][key] = coldstart([before, after], runs, compiled)
    return figures


ROWS = (
    ("runtime_files", "files in chalicelib/ (shipped)"),
    ("runtime_lines", "lines in chalicelib/"),
    ("tooling_files", "files in trailguard/ (not shipped)"),
    ("import_edges", "imports between runtime modules"),
    ("levels", "import levels (longest chain)"),
    ("cycles", "import cycles"),
    ("zip_bytes", "deployment.zip, bytes"),
    ("zip_files", "files in deployment.zip"),
    ("coldstart_ms", "cold start, `import app` from .pyc, median ms"),
    ("coldstart_source_ms", "cold start, `import app` from source (as in Lambda), median ms"),
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkout", nargs="?", default=str(ROOT))
    parser.add_argument("--json", action="store_true", help="print every figure as JSON")
    parser.add_argument("--compare", metavar="DIR", help="another checkout to measure beside this one")
    parser.add_argument("--runs", type=int, default=15, help="cold starts per checkout (with --compare)")
    args = parser.parse_args()
    if args.compare:
        both = compare(Path(args.compare).resolve(), Path(args.checkout).resolve(), args.runs)
        if args.json:
            print(json.dumps(both, indent=2))
            return 0
        print("| | before | after |\n|---|---|---|")
        for key, label in ROWS:
            shown = [both[side][key] for side in ("before", "after")]
            shown = [len(value) if isinstance(value, list) else value for value in shown]
            print(f"| {label} | {shown[0]:,} | {shown[1]:,} |")
        return 0
    figures = measure(Path(args.checkout).resolve())
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    print(f"runtime package: {figures['runtime_files']} files, {figures['runtime_lines']:,} lines")
    print(f"  top-level modules: {len(figures['top_level_runtime_modules'])}")
    print(f"tooling: {figures['tooling_files']} files, {figures['tooling_lines']:,} lines")
    print(f"imports: {figures['import_edges']} edges, {figures['levels']} levels, {len(figures['cycles'])} cycles")
    print("  deepest: " + " -> ".join(figures["deepest_chain"]))
    for cycle in figures["cycles"]:
        print("  cycle: " + " <-> ".join(cycle))
    return 0


if __name__ == "__main__":
    sys.exit(main())
