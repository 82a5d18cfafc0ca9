"""`make demo` runs the scenario end to end and exits 0 only when every resource is restored."""

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
        ("cloudtrail-stop-logging", "remediated", "logging"),
        ("kms-key-disabled", "remediated", "Enabled"),
        ("kms-key-deletion-scheduled", "remediated", "Enabled"),
        ("s3-bucket-acl-public", "remediated", "private"),
    ]
    assert "every resource is back as it was" in out
