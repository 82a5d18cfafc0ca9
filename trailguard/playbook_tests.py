"""Running the `tests:` written inside playbooks, through the same decision path as Lambda.

A test gives an event and what the playbook must make of it: `ignore`, or the mode and
steps of its plan (optionally with the resolved parameters). Guards apply as they do in
production, so "a failed call is ignored" is a test like any other.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chalicelib.events import event as events
from chalicelib.events.event import Event
from chalicelib.events.record import EventError
from chalicelib.playbooks.catalog import Catalog
from chalicelib.playbooks.playbook import Playbook, PlaybookTest
from chalicelib.respond.controls import Controls
from chalicelib.respond.guards import OwnIdentities
from chalicelib.respond.responder import NO_CONTROLS, Decision, decide
from trailguard.eventfiles import read_event_file


@dataclass(frozen=True)
class TestResult:
    playbook: Playbook
    test: PlaybookTest
    problem: str | None = None

    @property
    def passed(self) -> bool:
        return self.problem is None

    @property
    def location(self) -> str:
        return f"{self.playbook.path}:{self.test.line}" if self.playbook.path else self.playbook.id


def run_tests(playbooks: Iterable[Playbook], own: OwnIdentities, controls: Controls = NO_CONTROLS) -> list[TestResult]:
    """Each playbook's tests, through the decision path; `controls`: a stage's scope and mode
    ceilings, which then apply as in that stage (none by default: the playbook's own)."""
    results = []
    for playbook in playbooks:
        catalog = Catalog([playbook])
        for test in playbook.tests:
            results.append(TestResult(playbook, test, _problem(catalog, playbook, test, own, controls)))
    return results


def _problem(
    catalog: Catalog, playbook: Playbook, test: PlaybookTest, own: OwnIdentities, controls: Controls
) -> str | None:
    try:
        event = load_test_event(playbook, test)
    except EventError as error:
        return f"the test's event is not usable: {error}"
    decision = decide(catalog, event, own, test.lists, controls)
    if test.expect == "ignore":
        return _expect_ignored(decision)
    return _expect_plan(decision, test.expect)


def load_test_event(playbook: Playbook, test: PlaybookTest) -> Event:
    where = f"test {test.name!r}"
    if not isinstance(test.event, str):
        return events.from_any(as_json(test.event), where)
    base = playbook.path.parent if playbook.path else Path(".")
    found = list(read_event_file(base / test.event))
    problems = [item for item in found if isinstance(item, EventError)]
    if problems:
        raise problems[0]
    if len(found) != 1:
        raise EventError(f"{test.event} holds {len(found)} events; a test's file must hold exactly one", where)
    event = found[0]
    assert event is not None and not isinstance(event, EventError)
    return event


def as_json(value: Any) -> Any:
    """YAML data as JSON would have it: plain dicts and lists, times as CloudTrail writes them.

    (JMESPath's functions only accept exact dicts and lists, and YAML reads an unquoted
    `eventTime: 2024-07-31T13:06:24Z` as a datetime.)
    """
    if isinstance(value, dict):
        return {key: as_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [as_json(item) for item in value]
    if isinstance(value, dt.datetime):
        utc = value.astimezone(dt.UTC) if value.tzinfo else value
        return utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def _describe(decision: Decision) -> str:
    if decision.skip:
        return f"skipped ({decision.skip.code}: {decision.skip.reason})"
    if decision.failures:
        return f"matched but not planned: {decision.failures[0][1]}"
    if decision.plans:
        plan = decision.plans[0]
        steps = ", ".join(f"{step.action}({_params(step.params)})" for step in plan.steps)
        lowered = f", {plan.lowered_by}" if plan.lowered_by else ""
        return f"a plan (mode {plan.mode}{lowered}): {steps or 'no steps'}"
    if decision.rejections:
        return f"left alone by its condition ({decision.rejections[0][1]})"
    return "not selected (its when.source/events do not name this event)"


def _params(params: dict[str, Any]) -> str:
    return ", ".join(f"{key}={value!r}" for key, value in params.items())


def _expect_ignored(decision: Decision) -> str | None:
    if decision.plans or decision.failures:
        return f"expected the event to be ignored, got {_describe(decision)}"
    return None


def _expect_plan(decision: Decision, expect: dict[str, Any]) -> str | None:
    if not decision.plans:
        return f"expected a plan, got {_describe(decision)}"
    plan = decision.plans[0]
    if "mode" in expect and expect["mode"] != plan.mode:
        lowered = f" ({plan.lowered_by})" if plan.lowered_by else ""
        return f"expected mode {expect['mode']}, got {plan.mode}{lowered}"
    if "steps" not in expect:
        return None
    expected_steps = [step if isinstance(step, dict) else {"action": step} for step in expect["steps"]]
    actual = [step.action for step in plan.steps]
    if [step["action"] for step in expected_steps] != actual:
        return f"expected steps {[step['action'] for step in expected_steps]}, got {actual}"
    for number, (wanted, step) in enumerate(zip(expected_steps, plan.steps, strict=True), 1):
        for key, value in wanted.get("params", {}).items():
            if step.params.get(key) != value:
                return f"step {number} ({step.action}): expected {key}={value!r}, got {key}={step.params.get(key)!r}"
    return None
