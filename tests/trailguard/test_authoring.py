"""The playbook author's loop: `new` from a real record, `validate`, `test` (once or --watch),
`replay --playbook` over logs, and the JSON Schema every playbook names for editors."""

from __future__ import annotations

import os
import selectors
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from chalicelib.playbooks.catalog import Catalog
from chalicelib.respond.guards import OwnIdentities
from tests.conftest import PLAYBOOKS, ROOT
from trailguard.authoring import AuthoringError, pick_record, schema_reference
from trailguard.cli import main
from trailguard.playbook_tests import run_tests

pytestmark = pytest.mark.integration

STRATUS = "stratus-detonation-logs"


def _new(*args: str):
    return CliRunner().invoke(main, ["new", *args], catch_exceptions=False)


@pytest.mark.parametrize(
    "technique, event_name",
    [
        ("aws.defense-evasion.dns-delete-logs", None),  # a call no bundled playbook answers
        ("aws.defense-evasion.cloudtrail-stop", "StopLogging"),
        ("aws.persistence.iam-create-admin-user", "CreateUser"),
    ],
)
def test_new_from_a_dataset_record_writes_a_valid_playbook_whose_tests_pass(datasets, tmp_path, technique, event_name):
    source = datasets / STRATUS / f"{technique}.json"
    args = ["draft-playbook", "--from", str(source), "--out", str(tmp_path)]
    result = _new(*args, *(["--event-name", event_name] if event_name else []))
    assert result.exit_code == 0, result.output
    target = tmp_path / "draft-playbook.yaml"
    assert f"wrote {target}" in result.output and f"test --watch {target}" in result.output
    assert CliRunner().invoke(main, ["validate", str(target)]).output == "ok: 1 playbook valid\n"
    (playbook,) = Catalog.load([target]).playbooks
    event = pick_record(source, event_name)
    assert (playbook.source, playbook.events, playbook.mode) == (event.source, (event.name,), "notify")
    results = run_tests([playbook], OwnIdentities())
    assert [r.passed for r in results] == [True, True], [r.problem for r in results]
    assert [t.expect for t in playbook.tests][1] == "ignore"  # the same call, failed
    assert CliRunner().invoke(main, ["test", str(target)]).exit_code == 0
    assert "&id" not in target.read_text()  # plain YAML a reviewer can read, no anchors


def test_new_lists_the_actions_of_the_service_as_the_next_step(datasets, tmp_path):
    _new(
        "stopped",
        "--from",
        str(datasets / STRATUS / "aws.defense-evasion.cloudtrail-stop.json"),
        "--out",
        str(tmp_path),
        "--event-name",
        "StopLogging",
    )
    text = (tmp_path / "stopped.yaml").read_text()
    assert "#   - action: cloudtrail.start_logging\n#     with: {trail: ...}" in text
    assert text.startswith(f"# yaml-language-server: $schema={PLAYBOOKS / 'playbook.schema.json'}\n")


def test_new_refuses_clearly(datasets, tmp_path):
    leave = datasets / STRATUS / "aws.defense-evasion.organizations-leave.json"
    failed = _new("leave", "--from", str(leave), "--out", str(tmp_path))
    assert failed.exit_code == 2
    assert (
        "no successful write call to start from: AssumeRole (read-only), LeaveOrganization (errorCode AccessDenied)"
        in failed.output
    )
    stop = datasets / STRATUS / "aws.defense-evasion.cloudtrail-stop.json"
    missing = _new("stop", "--from", str(stop), "--out", str(tmp_path), "--event-name", "DeleteTrail")
    assert missing.exit_code == 2 and "no record with an event named DeleteTrail (it has: " in missing.output
    bad_id = _new("Stop_It", "--from", str(stop), "--out", str(tmp_path), "--event-name", "StopLogging")
    assert bad_id.exit_code == 2 and "expected lower-case letters, digits and dashes" in bad_id.output
    assert _new("stop", "--from", str(stop), "--out", str(tmp_path), "--event-name", "StopLogging").exit_code == 0
    again = _new("stop", "--from", str(stop), "--out", str(tmp_path), "--event-name", "StopLogging")
    assert again.exit_code == 2 and "exists; choose another id, or --force" in again.output
    not_json = tmp_path / "notes.json"
    not_json.write_text("{oops")
    with pytest.raises(AuthoringError, match=r"notes\.json"):
        pick_record(not_json)


def test_every_bundled_playbook_names_the_json_schema_for_editors():
    for path in sorted(PLAYBOOKS.glob("*.yaml")):
        assert path.read_text().startswith("# yaml-language-server: $schema=./playbook.schema.json\n"), path
    assert schema_reference(PLAYBOOKS / "new.yaml") == "./playbook.schema.json"
    assert schema_reference(ROOT / "team" / "playbooks" / "x.yaml") == "../../playbooks/playbook.schema.json"


def test_failing_tests_print_a_one_line_rerun_hint(tmp_path):
    text = (
        (PLAYBOOKS / "cloudtrail-stop-logging.yaml")
        .read_text()
        .replace("    expect:\n      mode: auto\n", "    expect:\n      mode: approve\n", 1)
    )
    broken = tmp_path / "broken.yaml"
    broken.write_text(text)
    result = CliRunner().invoke(main, ["test", str(broken)])
    assert result.exit_code == 1
    assert f"rerun: python -m trailguard test {broken}   (or add --watch)" in result.output


def _read_until(process: subprocess.Popen[bytes], text: str, seconds: float = 60) -> str:
    """What the process printed up to `text`; fails after `seconds` instead of hanging."""
    assert process.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    printed = b""
    deadline = time.monotonic() + seconds
    while text.encode() not in printed:
        if not selector.select(timeout=max(0.0, deadline - time.monotonic())):
            raise AssertionError(f"no {text!r} within {seconds} s; printed: {printed.decode()}")
        chunk = os.read(process.stdout.fileno(), 65536)
        if not chunk:
            raise AssertionError(f"the process ended; printed: {printed.decode()}")
        printed += chunk
    return printed.decode()


def test_watch_runs_the_tests_again_when_a_playbook_changes(datasets, tmp_path):
    _new(
        "watched",
        "--from",
        str(datasets / STRATUS / "aws.defense-evasion.cloudtrail-stop.json"),
        "--out",
        str(tmp_path),
        "--event-name",
        "StopLogging",
    )
    target = tmp_path / "watched.yaml"
    process = subprocess.Popen(
        [sys.executable, "-m", "trailguard", "test", "--watch", str(tmp_path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert "1 playbooks, 2 tests: 2 passed, 0 failed" in _read_until(process, "watching for changes")
        time.sleep(0.1)
        target.write_text(target.read_text().replace("mode: notify ", "mode: dry-run ", 1))
        out = _read_until(process, "watching for changes")
        assert f"changed: {target}" in out and "2 passed" not in out and "FAIL watched" in out
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_replay_one_playbook_counts_and_shows_examples(datasets):
    result = CliRunner().invoke(
        main, ["replay", str(datasets), "--playbook", "cloudtrail-stop-logging"], catch_exceptions=False
    )
    footer = result.stdout.split("matches per playbook:\n")[1]
    lines = footer.splitlines()
    assert lines[0].split() == ["cloudtrail-stop-logging", "3"]  # Stratus's, Panther's and StreamAlert's
    assert len(lines) == 4 and all("e.g. " in line and " StopLogging in " in line for line in lines[1:])
    assert "kms-key-disabled" not in result.stdout
    unknown = CliRunner().invoke(main, ["replay", str(datasets), "--playbook", "no-such-playbook"])
    assert unknown.exit_code == 2 and "no playbook no-such-playbook" in unknown.output
