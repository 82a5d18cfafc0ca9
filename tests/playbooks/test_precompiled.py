"""The precompiled playbook catalog: a file it holds is served from it, with the same
decisions as from its YAML; a changed file, a catalog of other code, a missing or damaged
one fall back to the YAML, never to a wrong playbook."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from chalicelib.playbooks import precompiled
from chalicelib.playbooks.catalog import Catalog
from chalicelib.playbooks.loader import PlaybookErrors, iter_playbook_files, load_playbook, load_playbooks, precompile
from chalicelib.playbooks.precompiled import Precompiled
from chalicelib.respond.guards import OwnIdentities
from chalicelib.respond.responder import decide
from chalicelib.settings import Settings
from tests.conftest import ACCOUNT, PLAYBOOKS
from trailguard import bytecode
from trailguard.playbook_tests import load_test_event

pytestmark = pytest.mark.unit

CODE = precompiled.code_version()
OWN = OwnIdentities.of(Settings(), ACCOUNT)
PLAYBOOK = """\
id: trail-stopped
title: {title}
severity: high
when:
  source: cloudtrail.amazonaws.com
  events: [StopLogging]
  if: "requestParameters.name != 'scratch'"
mode: auto
steps:
  - action: cloudtrail.start_logging
    with:
      trail: requestParameters.name
"""


def _catalog(*paths: Path) -> Precompiled:
    """What `write_catalog` keeps of these files, for this code."""
    entries = {precompiled.file_key(p.read_bytes()): precompile(p, p.read_bytes()) for p in paths}
    return Precompiled.of(entries, CODE)


def _write(folder: Path, title: str) -> Path:
    path = folder / "trail-stopped.yaml"
    path.write_text(PLAYBOOK.format(title=title))
    return path


def test_a_file_the_catalog_holds_is_served_from_it(tmp_path):
    """Served from the catalog, not parsed again: an entry for these very bytes is what
    the loader builds the playbook from (here one whose title says so)."""
    path = _write(tmp_path, "Trail stopped")
    entry = precompile(path, path.read_bytes())
    entry.document["title"] = "from the catalog"
    catalog = Precompiled.of({precompiled.file_key(path.read_bytes()): entry}, CODE)
    playbook = load_playbook(path, with_tests=False, catalog=catalog)
    assert playbook.title == "from the catalog"
    assert playbook.line == 1 and playbook.path == path
    assert playbook.condition is not None and playbook.condition.text == "requestParameters.name != 'scratch'"


def test_a_playbook_changed_since_the_catalog_is_read_from_its_yaml(tmp_path):
    path = _write(tmp_path, "Trail stopped")
    catalog = _catalog(path)
    assert load_playbook(path, with_tests=False, catalog=catalog).title == "Trail stopped"
    _write(tmp_path, "Trail stopped, edited after packaging")
    assert load_playbook(path, with_tests=False, catalog=catalog).title == "Trail stopped, edited after packaging"


def test_a_changed_playbook_with_a_mistake_is_refused_not_served_from_the_catalog(tmp_path):
    path = _write(tmp_path, "Trail stopped")
    catalog = _catalog(path)
    path.write_text(path.read_text().replace("cloudtrail.start_logging", "cloudtrail.start_loging"))
    with pytest.raises(PlaybookErrors, match=r"trail-stopped.yaml:10: steps\[0\].action: unknown action"):
        load_playbook(path, with_tests=False, catalog=catalog)


def test_an_entry_the_code_no_longer_accepts_falls_back_to_the_yaml_and_its_mistake(tmp_path):
    """An action gone since the catalog was written: the playbook is built again from its
    YAML, whose mistake names the line."""
    path = _write(tmp_path, "Trail stopped")
    entry = precompile(path, path.read_bytes())
    entry.document["steps"][0]["action"] = "cloudtrail.gone"
    catalog = Precompiled.of({precompiled.file_key(path.read_bytes()): entry}, CODE)
    assert load_playbook(path, with_tests=False, catalog=catalog).steps[0].action.name == "cloudtrail.start_logging"


def test_a_catalog_written_by_other_code_is_not_used():
    catalog = _catalog(*iter_playbook_files([PLAYBOOKS]))
    assert Precompiled.loads(catalog.dumps(), CODE) is not None
    assert Precompiled.loads(catalog.dumps(), bytes(32)) is None


def test_the_code_version_changes_with_any_source_of_chalicelib(tmp_path):
    root = tmp_path / "chalicelib"
    shutil.copytree(precompiled.CHALICELIB, root, ignore=shutil.ignore_patterns("__pycache__"))
    assert precompiled.code_version(root) == CODE
    source = root / "playbooks" / "expressions.py"
    source.write_text(source.read_text() + "\n# a new check\n")
    assert precompiled.code_version(root) != CODE


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: data[: len(data) // 2],  # truncated
        lambda data: data[:-10] + bytes(10),  # its end zeroed
        lambda data: b"",
        lambda data: b"\x80\x04 not a catalog",
        lambda data: data[:200] + bytes([data[200] ^ 1]) + data[201:],  # one bit of the payload: still marshal
    ],
    ids=["truncated", "zeroed", "empty", "garbage", "one-bit"],
)
def test_a_damaged_catalog_is_not_used(damage):
    data = _catalog(*iter_playbook_files([PLAYBOOKS])).dumps()
    assert Precompiled.loads(damage(data), CODE) is None


def test_missing_or_damaged_shipped_catalog_loads_the_yaml(tmp_path, monkeypatch):
    folder = tmp_path / "playbooks"
    folder.mkdir()
    path = _write(folder, "Trail stopped")
    monkeypatch.setattr(precompiled, "CATALOG_FILE", tmp_path / "missing.bin")
    precompiled.shipped.cache_clear()
    try:
        assert precompiled.shipped() is None
        [playbook], errors = load_playbooks([folder], with_tests=False)
        assert errors == [] and playbook.title == "Trail stopped"
        damaged = tmp_path / "damaged.bin"
        damaged.write_bytes(_catalog(path).dumps()[:-1])
        monkeypatch.setattr(precompiled, "CATALOG_FILE", damaged)
        precompiled.shipped.cache_clear()
        assert precompiled.shipped() is None
        written = tmp_path / "written.bin"
        written.write_bytes(_catalog(path).dumps())
        monkeypatch.setattr(precompiled, "CATALOG_FILE", written)
        precompiled.shipped.cache_clear()
        shipped = precompiled.shipped()
        assert shipped is not None and shipped.get(path.read_bytes()) is not None
    finally:
        precompiled.shipped.cache_clear()


def test_write_catalog_keeps_every_bundled_playbook_and_leaves_out_one_with_a_mistake(tmp_path):
    project = tmp_path / "project"
    shutil.copytree(precompiled.CHALICELIB, project / "chalicelib", ignore=shutil.ignore_patterns("__pycache__"))
    broken = tmp_path / "theirs" / "broken.yaml"
    broken.parent.mkdir()
    broken.write_text(PLAYBOOK.format(title="Broken").replace("mode: auto", "mode: sometimes"))
    written = bytecode.write_catalog(project, [PLAYBOOKS, broken.parent])
    catalog = Precompiled.loads(written.read_bytes(), precompiled.code_version(project / "chalicelib"))
    assert catalog is not None
    bundled = list(iter_playbook_files([PLAYBOOKS]))
    assert len(catalog) == len(bundled)
    assert all(catalog.get(path.read_bytes()) is not None for path in bundled)
    assert catalog.get(broken.read_bytes()) is None


def _summary(decision):
    return (
        [plan.to_dict() for plan in decision.plans],
        [(playbook.id, why) for playbook, why in decision.rejections],
        [(playbook.id, why) for playbook, why in decision.failures],
        decision.skip,
    )


def test_every_bundled_playbook_decides_alike_from_the_catalog_and_from_its_yaml():
    """Every inline test event of every bundled playbook, decided by the whole catalog as
    the Lambda loads it (from the precompiled catalog) and as read from the YAML files."""
    files = list(iter_playbook_files([PLAYBOOKS]))
    catalog = _catalog(*files)
    served = Catalog([load_playbook(path, with_tests=False, catalog=catalog) for path in files])
    parsed = Catalog([load_playbook(path, with_tests=False) for path in files])
    with_tests = Catalog.load([PLAYBOOKS])
    checked = 0
    for playbook in with_tests.playbooks:
        for test in playbook.tests:
            event = load_test_event(playbook, test)
            assert _summary(decide(served, event, OWN)) == _summary(decide(parsed, event, OWN)), test.name
            checked += 1
    assert checked > 200
    assert [(p.id, p.line, p.title, p.mode, p.events) for p in served.playbooks] == [
        (p.id, p.line, p.title, p.mode, p.events) for p in parsed.playbooks
    ]
