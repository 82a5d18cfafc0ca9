"""`replay --compare`: what a playbook change would do, over the same events, through the
decision path a replay runs; Markdown that a record cannot shape; an exit status for CI."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tests.conftest import PLAYBOOKS
from trailguard.cli import main
from trailguard.replay.compare import (
    CHANGED,
    NEWLY_MATCHED,
    NO_LONGER_MATCHED,
    Comparison,
    Difference,
    Match,
    exit_code,
    to_markdown,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def change(tmp_path: Path) -> tuple[Path, Path]:
    """The bundled playbooks (old) and a change of them (new): the stop-logging playbook
    goes from auto to approve, the console sign-in one is removed, and a new playbook
    answers a call no old playbook names (PutBucketVersioning, an S3 call in the Stratus logs)."""
    old, new = tmp_path / "old", tmp_path / "new"
    shutil.copytree(PLAYBOOKS, old)
    shutil.copytree(PLAYBOOKS, new)
    stopped = new / "cloudtrail-stop-logging.yaml"
    stopped.write_text(stopped.read_text().replace("\nmode: auto\n", "\nmode: approve\n", 1))
    (new / "console-login-without-mfa.yaml").unlink()
    (new / "s3-versioning-changed.yaml").write_text(
        "id: s3-versioning-changed\n"
        "title: Bucket versioning changed\n"
        "severity: low\n"
        "description: Someone changed a bucket's versioning.\n"
        "when:\n  source: s3.amazonaws.com\n  events: [PutBucketVersioning]\n"
        "mode: notify\n"
        "steps: []\n"
    )
    return old, new


def compare(*args: Any) -> Any:
    return CliRunner().invoke(main, ["replay", *map(str, args)], catch_exceptions=False)


def test_compare_prints_only_the_differences_and_fails_ci(datasets: Path, change: tuple[Path, Path]) -> None:
    old, new = change
    result = compare(datasets, "--playbooks", new, "--compare", old, "--format", "jsonl")
    assert result.exit_code == 1
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    kinds = {(line["kind"], line["playbook"]) for line in lines}
    assert kinds == {
        (CHANGED, "cloudtrail-stop-logging"),
        (NO_LONGER_MATCHED, "console-login-without-mfa"),
        (NEWLY_MATCHED, "s3-versioning-changed"),
    }
    changed = next(line for line in lines if line["kind"] == CHANGED)
    assert (changed["old"]["mode"], changed["new"]["mode"]) == ("auto", "approve")
    assert changed["old"]["steps"] == changed["new"]["steps"] and changed["eventName"] == "StopLogging"
    assert "compare: 3808 events read, " in result.stderr


def test_the_same_playbooks_give_no_difference_and_exit_zero(datasets: Path) -> None:
    result = compare(datasets, "--compare", PLAYBOOKS, "--markdown", "-")
    assert result.exit_code == 0, result.stderr
    assert "No difference: every event is answered as before." in result.stdout


def test_fail_on_chooses_the_kinds_that_fail_ci(datasets: Path, change: tuple[Path, Path], tmp_path: Path) -> None:
    old, new = change
    only_removed = ["--playbooks", new, "--compare", old, "--markdown", tmp_path / "comment.md"]
    assert compare(datasets, *only_removed, "--fail-on", "no-longer-matched").exit_code == 1
    assert compare(datasets, *only_removed, "--fail-on", "nothing").exit_code == 0
    kept = shutil.copytree(new, tmp_path / "kept")
    shutil.copy(old / "console-login-without-mfa.yaml", kept)
    assert compare(datasets, "--playbooks", kept, "--compare", old, "--fail-on", "no-longer-matched").exit_code == 0
    comment = (tmp_path / "comment.md").read_text()
    assert comment.startswith("### What this playbook change would do (against ")
    assert "** newly matched, **" in comment and "#### Changed (" in comment
    assert "mode auto → approve" in comment


def test_compare_with_a_git_ref_reads_the_same_folders_at_that_commit(
    datasets: Path, tmp_path: Path, change: tuple[Path, Path]
) -> None:
    old, new = change
    repo = tmp_path / "repo"
    shutil.copytree(old, repo / "playbooks")

    def git(*args: str) -> None:
        subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)

    git("init", "-q")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "before")
    shutil.rmtree(repo / "playbooks")
    shutil.copytree(new, repo / "playbooks")
    by_ref = compare(datasets, "--playbooks", repo / "playbooks", "--compare", "HEAD", "--format", "jsonl")
    by_folder = compare(datasets, "--playbooks", new, "--compare", old, "--format", "jsonl")
    assert by_ref.exit_code == 1
    assert by_ref.stdout == by_folder.stdout
    unknown = compare(datasets, "--playbooks", repo / "playbooks", "--compare", "no-such-ref")
    assert unknown.exit_code == 2 and "--compare no-such-ref:" in unknown.stderr


EVENT = {
    "eventID": "e5",
    "eventTime": "2024-01-02T03:04:05Z",
    "eventName": "StopLogging",
    "where": "111111111111/us-east-1",
    "actor": "x | @org/security-team <img src=x> [link](http://e) `code` #12\nnew row",
}


def test_record_text_cannot_format_the_comment_or_mention_anyone() -> None:
    comparison = Comparison(read=1, events=1, matched_old=1)
    comparison.differences.append(
        Difference(NO_LONGER_MATCHED, "cloudtrail-stop-logging", EVENT, Match("x", "auto", ("a(b=c)",)), None)
    )
    text = to_markdown(comparison, title="t")
    row = next(line for line in text.splitlines() if line.startswith("| cloudtrail-stop-logging"))
    assert row.count(" | ") == 5  # six cells: the pipe in the actor is escaped
    assert "@org" not in row and "@\u200borg" in row
    assert "<img" not in row and "&lt;img" in row
    assert "[link]" not in row and "\\`code\\`" in row and "#\u200b12" in row
    assert "\n" not in row


def test_markdown_caps_long_tables_and_exit_code_refuses_unknown_kinds() -> None:
    comparison = Comparison()
    for number in range(7):
        event = {**EVENT, "eventID": f"e{number}", "actor": "alice"}
        comparison.differences.append(Difference(NEWLY_MATCHED, "p", event, None, Match("p", "notify")))
    text = to_markdown(comparison, title="t", limit=3)
    assert text.count("| p |") == 3 and "...and 4 more." in text
    assert exit_code(comparison) == 1 and exit_code(comparison, [CHANGED]) == 0
    with pytest.raises(ValueError, match="unknown difference kind"):
        exit_code(comparison, ["removed"])


def test_compare_with_a_git_ref_reads_the_stages_and_the_organizations_folders_at_that_commit(
    datasets: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --playbooks, the other side is the stage's playbooks as the stage loads them,
    each folder as it is at the ref: the shipped ones (TRAILGUARD_PLAYBOOKS) and the
    organization's own (`playbooks.folders` of its settings file). Before, the organization's
    folders were left out at the ref: each of their matches came out as newly matched."""
    repo = tmp_path / "repo"
    shutil.copytree(PLAYBOOKS, repo / "shipped")
    ours = repo / "acme" / "playbooks"
    ours.mkdir(parents=True)
    (ours / "s3-versioning-changed.yaml").write_text(
        "id: s3-versioning-changed\ntitle: Bucket versioning changed\nseverity: low\n"
        "description: Someone changed a bucket's versioning.\n"
        "when:\n  source: s3.amazonaws.com\n  events: [PutBucketVersioning]\nmode: notify\nsteps: []\n"
    )
    for args in (
        ["init", "-q"],
        ["add", "."],
        ["-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "x"],
    ):
        subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)
    settings = tmp_path / "settings.yaml"
    settings.write_text(f"playbooks:\n  folders: [{ours}]\n")
    monkeypatch.setenv("TRAILGUARD_PLAYBOOKS", str(repo / "shipped"))
    same = compare(datasets, "--settings", settings, "--compare", "HEAD", "--format", "jsonl")
    assert (same.exit_code, same.stdout) == (0, ""), same.stderr
    assert "(143 matched before, 143 after), 13 malformed: 0 newly matched, 0 no longer matched" in same.stderr
    (ours / "s3-versioning-changed.yaml").unlink()
    (repo / "shipped" / "console-login-without-mfa.yaml").unlink()
    changed = compare(datasets, "--settings", settings, "--compare", "HEAD", "--format", "jsonl")
    assert changed.exit_code == 1
    kinds = {(line["kind"], line["playbook"]) for line in map(json.loads, changed.stdout.splitlines())}
    assert kinds == {(NO_LONGER_MATCHED, "s3-versioning-changed"), (NO_LONGER_MATCHED, "console-login-without-mfa")}
