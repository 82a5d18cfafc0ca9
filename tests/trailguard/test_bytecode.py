"""The package ships bytecode Lambda can use: checked-hash `.pyc` files survive Chalice's zip
(every entry dated 1980-01-01, which voids the usual mtime-based ones), and a changed source
is compiled again rather than run from stale bytecode."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from trailguard import bytecode

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def _project(tmp_path: Path) -> Path:
    """app.py and chalicelib/ without any bytecode, as a clone has them."""
    project = tmp_path / "project"
    shutil.copytree(ROOT / "chalicelib", project / "chalicelib", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "app.py", project / "app.py")
    return project


def _as_chalice_zips_it(project: Path, out: Path) -> Path:
    """app.py, chalicelib/ and vendor/'s contents in a zip dated as Chalice dates every entry,
    unpacked as Lambda unpacks it (the mtimes are the entries' 1980 dates)."""
    archive = out / "deployment.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        files = [(p, p.relative_to(project)) for p in [project / "app.py", *(project / "chalicelib").rglob("*")]]
        files += [(p, p.relative_to(project / "vendor")) for p in (project / "vendor").rglob("*")]
        for path, name in files:
            if path.is_file():
                zipped.writestr(zipfile.ZipInfo(str(name), date_time=(1980, 1, 1, 0, 0, 0)), path.read_bytes())
    task = out / "task"
    with zipfile.ZipFile(archive) as zipped:
        for info in zipped.infolist():
            zipped.extract(info, task)
            os.utime(task / info.filename, (315532800, 315532800))
    return task


def _loaded_from_bytecode(task: Path, module: str) -> str:
    """`python -v` of importing `module` from `task`, bytecode writing off (/var/task is read-only)."""
    env = {**os.environ, "PYTHONPATH": str(task), "PYTHONDONTWRITEBYTECODE": "1", "AWS_DEFAULT_REGION": "us-east-1"}
    result = subprocess.run(
        [sys.executable, "-v", "-c", f"import {module}"], cwd=task, env=env, capture_output=True, text=True, check=True
    )
    return result.stderr


def test_checked_hash_bytecode_survives_the_zip_and_python_uses_it(tmp_path):
    project = _project(tmp_path)
    assert bytecode.stale(project)  # a clone has none
    bytecode.compile_package(project)
    assert bytecode.stale(project) == []
    task = _as_chalice_zips_it(project, tmp_path)
    log = _loaded_from_bytecode(task, "chalicelib.playbooks.catalog")
    catalog_pyc = task / "chalicelib" / "playbooks" / "__pycache__" / f"catalog.{sys.implementation.cache_tag}.pyc"
    assert f"code object from '{catalog_pyc}'" in log
    yaml_pyc = task / "yaml" / "__pycache__" / f"__init__.{sys.implementation.cache_tag}.pyc"
    assert yaml_pyc.exists()  # the dependency's bytecode, beside where Chalice bundles its source
    assert (task / "__pycache__" / f"app.{sys.implementation.cache_tag}.pyc").exists()


def test_usual_bytecode_is_void_after_the_zip(tmp_path):
    """Why the checked-hash mode: mtime-based bytecode, which a checkout's Python writes, does
    not match the 1980 dates and Python compiles every module again."""
    project = _project(tmp_path)
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(project / "chalicelib")], check=True)
    task = _as_chalice_zips_it(project, tmp_path)
    log = _loaded_from_bytecode(task, "chalicelib.playbooks.catalog")
    assert "# bytecode is stale for 'chalicelib.playbooks.catalog'" in log
    assert not [line for line in log.splitlines() if line.startswith("# code object from '") and "chalicelib" in line]


def test_a_changed_source_is_compiled_again_not_run_from_stale_bytecode(tmp_path):
    project = _project(tmp_path)
    bytecode.compile_package(project)
    source = project / "chalicelib" / "text.py"
    source.write_text(source.read_text() + "\nCHANGED = True\n")
    assert bytecode.stale(project) == ["chalicelib/text.py"]
    env = {**os.environ, "PYTHONPATH": str(project), "PYTHONDONTWRITEBYTECODE": "1"}
    result = subprocess.run(
        [sys.executable, "-c", "import chalicelib.text as t; print(t.CHANGED)"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == "True"


def test_the_precompiled_playbook_catalog_survives_the_zip_and_holds_every_bundled_playbook(tmp_path):
    """Written beside chalicelib's bytecode, zipped with it, and valid where Lambda unpacks
    it: the code it was written for is the code unpacked, and it holds every playbook file."""
    project = _project(tmp_path)
    shutil.copytree(ROOT / "playbooks", project / "playbooks")
    shutil.copytree(ROOT / "playbooks", project / "vendor" / "playbooks")  # vendor/playbooks links to it
    bytecode.compile_package(project)
    task = _as_chalice_zips_it(project, tmp_path)
    catalog = task / "chalicelib" / "playbooks" / "__pycache__" / f"playbooks.{sys.implementation.cache_tag}.bin"
    assert catalog.exists()
    env = {**os.environ, "PYTHONPATH": str(task), "PYTHONDONTWRITEBYTECODE": "1"}
    code = (
        "from chalicelib.playbooks import precompiled\n"
        "from chalicelib.playbooks.loader import iter_playbook_files\n"
        "catalog = precompiled.shipped()\n"
        "files = list(iter_playbook_files(['playbooks']))\n"
        "print(len(files), sum(catalog.get(path.read_bytes()) is not None for path in files))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=task, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    files, held = map(int, result.stdout.split())
    assert files >= 70 and held == files
