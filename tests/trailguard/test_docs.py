"""docs/playbooks.md is generated from the code, and says why where trailguard does not act."""

from __future__ import annotations

import json

import pytest

from chalicelib.actions import registered_actions
from chalicelib.playbooks.catalog import Catalog
from tests.conftest import PLAYBOOKS
from trailguard.generate.docs import DOCS_FILE, NOT_ANSWERED, WITHOUT_LOG, leaves_alone, render, stratus_coverage

pytestmark = pytest.mark.unit


def test_the_committed_reference_is_current(datasets):
    catalog = Catalog.load([PLAYBOOKS])
    expected = render(catalog, stratus_coverage(catalog, datasets / "stratus-detonation-logs"), leaves_alone(datasets))
    assert DOCS_FILE.read_text() == expected, "docs/playbooks.md is stale: run python -m trailguard docs"


def test_every_technique_is_answered_or_says_why_not(datasets):
    coverage = stratus_coverage(Catalog.load([PLAYBOOKS]), datasets / "stratus-detonation-logs")
    techniques = [row.technique for row in coverage]
    # Every current technique (Stratus's list at the table's commit): 35 with a detonation log,
    # 9 without, each listed once.
    assert len(techniques) == len(set(techniques)) == 44 and set(NOT_ANSWERED) <= set(techniques)
    assert {row.technique for row in coverage if not row.log} == set(WITHOUT_LOG)
    for row in coverage:
        if row.answered:
            assert row.technique not in NOT_ANSWERED, f"{row.technique} is answered; drop its reason"
        else:
            assert row.note, f"{row.technique} is not answered and no reason says why"


def test_every_false_remediation_case_is_in_the_reference_with_its_decision(datasets):
    text = DOCS_FILE.read_text()
    for case in leaves_alone(datasets):
        assert case["expected"] != "auto"
        assert f"| {case['id']} | {case['change']} | {case['by']} | {case['expected']} |" in text


def test_the_reference_names_every_action_and_playbook():
    text = DOCS_FILE.read_text()
    assert all(f"### `{name}`" in text for name in registered_actions())
    assert all(f"| `{path.stem}` |" in text for path in PLAYBOOKS.glob("*.yaml"))


def test_the_committed_slack_examples_are_current():
    from trailguard.generate.slack_examples import EXAMPLES_FILE, render_examples

    expected = render_examples(Catalog.load([PLAYBOOKS]))
    assert EXAMPLES_FILE.read_text() == expected, "docs/slack-messages.md is stale: run python -m trailguard docs"


def test_every_message_kind_has_an_example_slack_would_take(slack_stub):
    from chalicelib.incidents.model import State
    from chalicelib.slack.client import web_client
    from chalicelib.slack.messages import render
    from trailguard.generate.slack_examples import ACCOUNT_NAMES, examples

    shown = examples(Catalog.load([PLAYBOOKS]))
    assert {incident.state for _, _, incident in shown} == set(State) - {State.REMEDIATING, State.UNDOING}
    client = web_client(slack_stub.token, slack_stub.base_url)
    for _, _, incident in shown:
        message = render(incident, ACCOUNT_NAMES)
        assert client.chat_postMessage(channel="#docs", text=message.text, blocks=message.blocks)["ok"]


def test_the_digest_example_is_one_slack_would_take(slack_stub):
    """docs/slack-messages.md's digest: several incidents of one playbook in one account, as
    the sweep posts them past the channel's rate, and a message the stub's Slack accepts."""
    from chalicelib.slack.client import web_client
    from chalicelib.slack.messages import render_digest
    from trailguard.generate.slack_examples import ACCOUNT_NAMES, EXAMPLES_FILE, digest_example

    incidents = digest_example(Catalog.load([PLAYBOOKS]))
    assert len(incidents) > 1 and len({(i.playbook_id, i.event.account) for i in incidents}) == 1
    message = render_digest(incidents, ACCOUNT_NAMES)
    assert all(incident.id in json.dumps(message.blocks) for incident in incidents)
    client = web_client(slack_stub.token, slack_stub.base_url)
    assert client.chat_postMessage(channel="#docs", text=message.text, blocks=message.blocks)["ok"]
    assert "## Digest" in EXAMPLES_FILE.read_text()


def test_the_reference_names_every_nested_playbook_key():
    from chalicelib.playbooks.schema import SCHEMA

    text = DOCS_FILE.read_text()
    nested = [
        f"{parent}.{child}" for parent, spec in SCHEMA["properties"].items() for child in spec.get("properties", {})
    ]
    assert "slack.approvers" in nested
    assert all(f"| `{key}` |" in text for key in nested)
