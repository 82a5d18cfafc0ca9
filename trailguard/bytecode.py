"""Compiled bytecode that survives `chalice package` and `chalice deploy`.

Lambda's /var/task is read-only, so Python cannot cache what it compiles: a package
without valid `.pyc` files compiles every module at every cold start. Chalice zips
`chalicelib/` whole (its `__pycache__` included) and the contents of `vendor/`, but writes
every entry dated 1980-01-01: a usual `.pyc`, which records its source's modification time,
never matches in Lambda and is ignored. A *checked-hash* `.pyc` (PEP 552) records a hash
of the source instead, so it stays valid through the zip, and Python still recompiles it
if the source changed (and keeps it hash-based when it does).

This writes one for every module of `chalicelib/`, for `app.py` into `vendor/__pycache__/`
(zipped as `__pycache__/app.cpython-XY.pyc`, next to `app.py`), and for the dependencies
Chalice bundles from wheels without bytecode (`DEPENDENCIES`), compiled from this venv's
copy into `vendor/<package>/…/__pycache__/`, where the zip puts them beside the bundled
sources: the same version has the same source, so the hash matches; another version's
does not, and Python compiles that one as before (never a wrong module, at worst no gain).
Chalice's runtime is shipped as two files (`chalice/__init__.py`, `chalice/app.py`), and so
is their bytecode.
It also writes the precompiled playbook catalog (`chalicelib/playbooks/precompiled.py`) of
every playbook the package may load: the bundled ones, `settings/playbooks/`, the folders the
organization settings files (`settings/*.yaml`) name, and `TRAILGUARD_PLAYBOOKS` if set. A
file with a mistake is left out (the Lambda then reads its YAML and says what is wrong).
Run it before `chalice package` or `chalice deploy` (`make bytecode`; `make` runs it when
it installs the venv). The tag is the interpreter's: build with the Lambda's Python (3.13).

    python -m trailguard.bytecode [--check]
"""

from __future__ import annotations

import compileall
import importlib.util
import marshal
import os
import py_compile
import sys
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODE = py_compile.PycInvalidationMode.CHECKED_HASH
DEPENDENCIES = ("yaml", "jmespath", "fastjsonschema", "tenacity", "slack_sdk")
"""requirements.txt's packages as imported (boto3 comes with Lambda's runtime)."""
CHALICE_RUNTIME = ("__init__.py", "app.py")
"""What Chalice ships of itself (its packager's `_iter_app_filenames`)."""


def app_pyc(root: Path = ROOT) -> Path:
    """Where app.py's bytecode goes so that the package holds it beside app.py."""
    return root / "vendor" / Path(importlib.util.cache_from_source("app.py"))


def compile_package(root: Path = ROOT) -> None:
    """Checked-hash bytecode for `chalicelib/` and `app.py` (see the module's docstring)."""
    if not compileall.compile_dir(str(root / "chalicelib"), quiet=1, invalidation_mode=MODE, force=True):
        raise SystemExit("compiling chalicelib failed")
    target = app_pyc(root)
    target.parent.mkdir(parents=True, exist_ok=True)
    py_compile.compile(str(root / "app.py"), cfile=str(target), doraise=True, invalidation_mode=MODE)
    for name in DEPENDENCIES:
        compile_dependency(name, root / "vendor")
    compile_dependency("chalice", root / "vendor", only=CHALICE_RUNTIME)
    write_catalog(root)


def catalog_paths(root: Path = ROOT) -> list[Path]:
    """Every playbook folder a stage of this project may load (see the module's docstring)."""
    from chalicelib.organization.extensions import import_actions
    from chalicelib.organization.loader import load_organization
    from chalicelib.settings import ConfigurationError

    paths = [root / "playbooks", root / "settings" / "playbooks"]
    for settings_file in sorted((root / "settings").glob("*.yaml")):
        try:
            organization = load_organization(settings_file, root)
            import_actions(organization, root)  # their playbooks may use their actions
        except ConfigurationError:
            continue  # the stage's own start says what is wrong with it
        paths += organization.playbook_folders
    paths += [Path(p) for p in os.environ.get("TRAILGUARD_PLAYBOOKS", "").split(os.pathsep) if p]
    return paths


def write_catalog(root: Path = ROOT, paths: Iterable[Path] | None = None) -> Path:
    """The precompiled catalog of the playbooks under `paths` (default: `catalog_paths`), for
    the code under `root`; the file written."""
    from chalicelib.playbooks import precompiled
    from chalicelib.playbooks.loader import PlaybookErrors, iter_playbook_files, precompile

    entries: dict[bytes, precompiled.Entry] = {}
    for path in iter_playbook_files(catalog_paths(root) if paths is None else paths):
        try:
            data = path.read_bytes()
            entry = precompile(path, data)
            marshal.dumps((entry.document, dict(entry.trees)))  # YAML may give what marshal cannot keep (a date)
        except (OSError, PlaybookErrors, ValueError):
            continue
        entries[precompiled.file_key(data)] = entry
    target = root / "chalicelib" / "playbooks" / "__pycache__" / precompiled.CATALOG_FILE.name
    target.parent.mkdir(parents=True, exist_ok=True)
    written = target.with_name(f"{target.name}.{os.getpid()}")
    written.write_bytes(precompiled.Precompiled.of(entries, precompiled.code_version(root / "chalicelib")).dumps())
    os.replace(written, target)  # whole or not at all, for a process reading it meanwhile (tests run in parallel)
    return target


def compile_dependency(name: str, vendor: Path, only: tuple[str, ...] = ()) -> None:
    """The bytecode of an installed package (`only` these files of it, if given), laid out
    under `vendor/` as the package is in the zip (`vendor/yaml/__pycache__/…` beside the
    bundled `yaml/…`)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"{name} is not installed in this interpreter: make .venv/.installed-dev")
    package = Path(next(iter(spec.submodule_search_locations)))
    for source in package.rglob("*.py"):
        if only and source.name not in only:
            continue
        relative = source.relative_to(package.parent)
        target = vendor / Path(importlib.util.cache_from_source(str(relative)))
        target.parent.mkdir(parents=True, exist_ok=True)
        py_compile.compile(str(source), cfile=str(target), dfile=str(relative), doraise=True, invalidation_mode=MODE)


def stale(root: Path = ROOT) -> list[str]:
    """The shipped modules without a checked-hash `.pyc` of their current source."""
    sources = [*sorted((root / "chalicelib").rglob("*.py")), root / "app.py"]
    missing = []
    for source in sources:
        pyc = (
            app_pyc(root)
            if source.name == "app.py" and source.parent == root
            else Path(importlib.util.cache_from_source(str(source)))
        )
        if not _valid(source, pyc):
            missing.append(str(source.relative_to(root)))
    return missing


def _valid(source: Path, pyc: Path) -> bool:
    """Whether `pyc` is a checked-hash pyc of this interpreter for `source` as it is now."""
    try:
        data = pyc.read_bytes()
    except OSError:
        return False
    flags = int.from_bytes(data[4:8], "little")
    return (
        data[:4] == importlib.util.MAGIC_NUMBER
        and flags == 0b11  # hash-based, checked
        and data[8:16] == importlib.util.source_hash(source.read_bytes())
    )


def main(argv: list[str]) -> int:
    if "--check" in argv:
        missing = stale()
        for name in missing:
            print(f"no checked-hash bytecode for {name}: run python -m trailguard.bytecode", file=sys.stderr)
        return 1 if missing else 0
    compile_package()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
