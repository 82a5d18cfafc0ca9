"""`make demo` runs the scenario end to end and exits 0 only when everything ends as the story says."""

from __future__ import annotations

import logging

from chalicelib.demo import run_demo


def test_demo_scenario_restores_every_resource(capsys):
    level = logging.getLogger("trailguard").level
    try:
        assert run_demo() == 0
    finally:
        logging.getLogger("trailguard").setLevel(level)
    out = capsys.readouterr().out
    summary = out.split("summary\n", 1)[1]
    rows = [line.split() for line in summary.splitlines()[1:5]]
    assert [(row[1], row[3], row[4]) for row in rows] == [
        ("cloudtrail-stop-logging", "remediated", "logging"),  # a stranger's Undo and a forged one changed nothing
        ("kms-key-disabled", "undone", "Disabled"),  # the on-call engineer's Undo
        ("kms-key-deletion-scheduled", "remediated", "Enabled"),
        ("s3-bucket-acl-public", "remediated", "private"),
    ]
    assert "POST /slack/interactions (undo, by U0ONCALL) -> 200" in out
    assert "Slack, only to U0DEVELOPER: You are not an approver for playbook cloudtrail-stop-logging" in out
    assert "POST /slack/interactions (undo, by U0ONCALL) -> 401" in out
    assert out.count("[ Undo ]  [ Acknowledge ]") == 4  # each remediation's message, as posted to the stub
    assert "every resource and incident is as the story says" in out
