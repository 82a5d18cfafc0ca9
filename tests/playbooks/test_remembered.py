"""The command line remembers the playbooks it compiled (as Python keeps __pycache__): a
file of the same bytes is built from what was kept, with the same decisions; a changed file,
a damaged entry, another code's entries or a folder that cannot be written fall back to the
YAML, never to a wrong playbook. The Lambda and the commands that run tests never use it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from chalicelib.playbooks import loader, precompiled
from chalicelib.playbooks.loader import load_playbooks
from chalicelib.playbooks.precompiled import Remembered
from tests.conftest import record
from trailguard.cli import main

pytestmark = pytest.mark.unit

PLAYBOOK = """\
id: {id}
title: {title}
severity: low
when:
  source: ec2.amazonaws.com
  events: [CreateKeyPair]
  if: "userIdentity.type == 'Root'"
mode: notify
"""


@pytest.fixture
def cache(tmp_path):
    folder = tmp_path / "cache"
    precompiled.remember_in(folder)
    yield folder
    precompiled.remember_in(None)


def _folder(tmp_path: Path, count: int = 3, title: str = "Key pair by root") -> Path:
    folder = tmp_path / "playbooks"
    folder.mkdir(exist_ok=True)
    for number in range(count):
        (folder / f"p{number}.yaml").write_text(PLAYBOOK.format(id=f"p{number}", title=title))
    return folder


def _kept(cache: Path, code: bytes | None = None) -> int:
    """How many playbook files the cache in `cache` holds (for this code)."""
    file = cache / precompiled.CATALOG_FILE.name
    found = precompiled.Precompiled.loads(file.read_bytes(), code or precompiled.code_version())
    return len(found) if found is not None else 0


def _without_yaml(monkeypatch):
    def refused(*args, **kwargs):
        raise AssertionError("a remembered playbook was parsed again")

    monkeypatch.setattr(loader, "read_playbook", refused)


def _shape(playbooks):
    return [(p.id, p.title, p.events, p.condition.text if p.condition else None, p.line) for p in playbooks]


def test_a_file_loaded_once_is_built_from_what_was_kept_the_next_time(tmp_path, cache, monkeypatch):
    folder = _folder(tmp_path)
    first, errors = load_playbooks([folder], with_tests=False)
    assert errors == [] and _kept(cache) == 3
    _without_yaml(monkeypatch)
    again, errors = load_playbooks([folder], with_tests=False)
    assert errors == [] and _shape(again) == _shape(first)
    root = record("CreateKeyPair", "ec2.amazonaws.com")
    root["userIdentity"] = {**root["userIdentity"], "type": "Root"}
    condition = again[0].condition
    assert condition is not None
    assert condition.search(root) is True and condition.search(record("CreateKeyPair", "ec2.amazonaws.com")) is False


def test_the_same_bytes_elsewhere_are_the_same_entry(tmp_path, cache, monkeypatch):
    """Kept by content: `--compare GIT_REF` extracts the old playbooks to a new folder each time."""
    folder = _folder(tmp_path)
    load_playbooks([folder], with_tests=False)
    elsewhere = tmp_path / "elsewhere"
    folder.rename(elsewhere)
    _without_yaml(monkeypatch)
    playbooks, _ = load_playbooks([elsewhere], with_tests=False)
    assert [str(p.path) for p in playbooks] == [str(elsewhere / f"p{n}.yaml") for n in range(3)]


def test_a_changed_file_is_read_from_its_yaml(tmp_path, cache):
    folder = _folder(tmp_path)
    load_playbooks([folder], with_tests=False)
    _folder(tmp_path, title="Changed since")
    playbooks, _ = load_playbooks([folder], with_tests=False)
    assert {p.title for p in playbooks} == {"Changed since"}
    assert _kept(cache) == 6  # the new bytes kept beside the old


@pytest.mark.parametrize("damage", ["flip", "truncate", "empty"])
def test_a_damaged_cache_is_a_cache_of_nothing_not_a_wrong_playbook(tmp_path, cache, damage):
    folder = _folder(tmp_path, count=1)
    load_playbooks([folder], with_tests=False)
    kept = cache / precompiled.CATALOG_FILE.name
    data = bytearray(kept.read_bytes())
    if damage == "flip":
        data[-5] ^= 0xFF
    kept.write_bytes(bytes(data[: len(data) // 2]) if damage == "truncate" else b"" if damage == "empty" else data)
    assert len(Remembered(cache, precompiled.code_version())._kept) == 0
    [playbook], errors = load_playbooks([folder], with_tests=False)
    assert errors == [] and playbook.title == "Key pair by root"
    assert _kept(cache) == 1  # written again, whole


def test_what_other_code_kept_is_never_read_and_is_replaced(tmp_path):
    folder = _folder(tmp_path, count=1)
    key = precompiled.file_key((folder / "p0.yaml").read_bytes())
    entry = loader.precompile(folder / "p0.yaml", (folder / "p0.yaml").read_bytes())
    older = Remembered(tmp_path / "cache", b"\x01" * 32)
    older.keep(key, entry)
    older.save()
    assert Remembered(tmp_path / "cache", b"\x01" * 32).find(key) is not None
    this = Remembered(tmp_path / "cache", b"\x02" * 32)
    assert this.find(key) is None
    this.keep(key, entry)
    this.save()
    assert _kept(tmp_path / "cache", b"\x02" * 32) == 1 and _kept(tmp_path / "cache", b"\x01" * 32) == 0


def test_the_cache_keeps_what_was_used_last_up_to_its_limit(tmp_path, cache, monkeypatch):
    monkeypatch.setattr(precompiled, "REMEMBERED_LIMIT", 4)
    first = _folder(tmp_path, count=3)
    load_playbooks([first], with_tests=False)
    other = tmp_path / "other"
    other.mkdir()
    for number in range(3):
        (other / f"q{number}.yaml").write_text(PLAYBOOK.format(id=f"q{number}", title="Other"))
    load_playbooks([other], with_tests=False)
    assert _kept(cache) == 4
    _without_yaml(monkeypatch)
    playbooks, _ = load_playbooks([other], with_tests=False)  # the last used are all kept
    assert [p.id for p in playbooks] == ["q0", "q1", "q2"]


def test_a_folder_that_cannot_be_written_keeps_nothing_and_loads_all(tmp_path):
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the cache folder would be")
    precompiled.remember_in(blocked)
    try:
        playbooks, errors = load_playbooks([_folder(tmp_path)], with_tests=False)
    finally:
        precompiled.remember_in(None)
    assert errors == [] and len(playbooks) == 3


def test_loading_with_tests_neither_reads_nor_keeps(tmp_path, cache):
    """`validate` and `test` check the inline tests, which what is kept leaves out."""
    load_playbooks([_folder(tmp_path)], with_tests=True)
    assert not cache.exists()


def test_a_playbook_with_a_mistake_is_not_kept_and_still_reported(tmp_path, cache):
    folder = _folder(tmp_path, count=1)
    (folder / "p1.yaml").write_text(PLAYBOOK.format(id="p1", title="x").replace("notify", "auto"))
    for _ in range(2):
        _, errors = load_playbooks([folder], with_tests=False)
        assert [error.key for error in errors] == ["mode"]
    assert _kept(cache) == 1


def test_the_cache_folder_follows_the_environment():
    assert precompiled.cache_folder({"TRAILGUARD_CACHE_DIR": ""}) is None
    assert precompiled.cache_folder({"TRAILGUARD_CACHE_DIR": "/x"}) == Path("/x")
    assert precompiled.cache_folder({"XDG_CACHE_HOME": "/c"}) == Path("/c/trailguard")
    assert precompiled.cache_folder({}) == Path(os.path.expanduser("~")) / ".cache" / "trailguard"


def test_replay_remembers_and_decides_alike_from_what_it_kept(tmp_path, monkeypatch):
    folder = _folder(tmp_path, count=2)
    raw = record("CreateKeyPair", "ec2.amazonaws.com", {"keyName": "k"})
    raw["userIdentity"] = {**raw["userIdentity"], "type": "Root"}
    logs = tmp_path / "logs.json"
    logs.write_text(json.dumps({"Records": [raw]}))
    monkeypatch.setenv("TRAILGUARD_CACHE_DIR", str(tmp_path / "cache"))
    command = ["replay", str(logs), "--playbooks", str(folder), "--format", "jsonl"]
    try:
        first = CliRunner().invoke(main, command, catch_exceptions=False)
        assert _kept(tmp_path / "cache") == 2
        _without_yaml(monkeypatch)
        second = CliRunner().invoke(main, command, catch_exceptions=False)
    finally:
        precompiled.remember_in(None)
    assert first.exit_code == second.exit_code == 0
    [decided] = [json.loads(line) for line in first.stdout.splitlines() if line.startswith("{")]
    assert [match["playbook"] for match in decided["matches"]] == ["p0", "p1"]
    assert second.stdout == first.stdout


def test_the_cache_is_not_read_while_the_shipped_catalog_holds_every_file(tmp_path):
    """A replay of the bundled playbooks (all in the checkout's catalog) costs no cache read."""
    path = _folder(tmp_path, count=1) / "p0.yaml"
    data = path.read_bytes()
    shipped = precompiled.Precompiled.of(
        {precompiled.file_key(data): loader.precompile(path, data)}, precompiled.code_version()
    )
    remembered = Remembered(tmp_path / "cache", precompiled.code_version())
    playbook = loader.load_playbook(path, False, shipped, remembered)
    assert playbook.id == "p0" and "_kept" not in vars(remembered)
    remembered.save()
    assert not (tmp_path / "cache").exists()
