"""Compiled expressions answer exactly as jmespath does: every expression of the bundled
playbooks over every record the tests carry (invictus, and each playbook's own test
events), and jmespath's corner cases one by one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jmespath
import pytest
import yaml
from jmespath import exceptions as jmespath_errors

from bench.corpus import default_datasets, invictus_records
from chalicelib.playbooks.expressions import FIELDS_BY_SOURCE, DomainFunctions, Expression, ExpressionError, Fields
from tests.conftest import PLAYBOOKS

pytestmark = pytest.mark.unit


def _bundled() -> tuple[dict[str, Fields | None], list[dict[str, Any]]]:
    """Every expression of the bundled playbooks, with the fields of what it runs over (a
    finding's for a finding playbook), and every record their tests hold."""
    expressions: dict[str, Fields | None] = {}
    events: list[dict[str, Any]] = []
    for path in sorted(Path(PLAYBOOKS).glob("*.yaml")):
        playbook = yaml.safe_load(path.read_text())
        when = playbook.get("when", {})
        fields = FIELDS_BY_SOURCE.get(when.get("source"))
        unless = when.get("unless") or []
        texts = [when["if"]] if when.get("if") else []
        texts += unless if isinstance(unless, list) else [unless]
        for step in playbook.get("steps", []):
            texts += [value for value in (step.get("with") or {}).values() if isinstance(value, str)]
        expressions.update((text, fields) for text in texts)
        for test in playbook.get("tests", []):
            event = test.get("event")
            if isinstance(event, dict):
                events.append(event.get("detail", event))
    return dict(sorted(expressions.items())), events


def _reference(text: str, data: Any) -> Any:
    try:
        return (
            "value",
            jmespath.compile(text).search(data, options=jmespath.Options(custom_functions=DomainFunctions())),
        )
    except jmespath_errors.JMESPathError:
        return ("error", None)
    except TypeError:  # jmespath orders a number and a string with Python's `<`: so does the compiled form
        return ("TypeError", None)


def _compiled(text: str, data: Any) -> Any:
    try:
        return ("value", Expression(text).search(data))
    except ExpressionError:
        return ("error", None)
    except TypeError:
        return ("TypeError", None)


def test_every_bundled_expression_answers_as_jmespath_on_every_record():
    expressions, events = _bundled()
    records = events + invictus_records(default_datasets())
    assert len(expressions) > 50 and len(records) > 2000
    compiled = {text: Expression(text, fields) for text, fields in expressions.items()}
    different = []
    for text, expression in compiled.items():
        reference = jmespath.compile(text)
        for record in records:
            try:
                want = ("value", reference.search(record, options=jmespath.Options(custom_functions=DomainFunctions())))
            except jmespath_errors.JMESPathError:
                want = ("error", None)
            try:
                got = ("value", expression.search(record))
            except ExpressionError:
                got = ("error", None)
            if got != want:
                different.append((text, record.get("eventID"), want, got))
    assert different == []


R = "requestParameters"


@pytest.mark.parametrize(
    "text, request_parameters",
    [
        (f"{R}.a == `0`", {"a": False}),
        (f"{R}.a == `1`", {"a": True}),
        (f"{R}.a != `0`", {"a": False}),
        (f"{R}.a == `false`", {"a": False}),
        (f"!({R}.a)", {"a": 0}),
        (f"!({R}.a)", {"a": []}),
        (f"!({R}.a)", {"a": "x"}),
        (f"{R}.a < {R}.b", {"a": "a", "b": "b"}),
        (f"{R}.a < {R}.b", {"a": 1, "b": "b"}),
        (f"{R}.a >= {R}.b", {"a": True, "b": 0}),
        (f"{R}.a || 'x'", {"a": []}),
        (f"{R}.a || 'x'", {"a": 0}),
        (f"{R}.a && 'x'", {"a": {}}),
        (f"{R}.a.b.c", {"a": [1]}),
        (f"{R}.a.b.c", {"a": {"b": "s"}}),
        (f"{R}.a.[b, c]", {"a": None}),
        (f"{R}.[a, b]", {"a": 1}),
        (f"contains({R}.a, 'x')", {"a": 5}),
        (f"length({R}.a) > `0`", {"a": None}),
        (f"{R}.a[?b == 'x'].c", {"a": [{"b": "x", "c": 1}, {"b": "y", "c": 2}]}),
        (f"{R}.a[0].b", {"a": [{"b": 3}]}),
        ("@", {"a": 1}),
    ],
)
def test_jmespaths_corner_cases_are_kept(text, request_parameters):
    data = {"requestParameters": request_parameters}
    assert _compiled(text, data) == _reference(text, data)


@pytest.mark.parametrize(
    "text",
    [
        "userIdentity.type == 'Root' && awsRegion != 'us-east-1'",
        "contains(named_list('break_glass_roles'), userIdentity.sessionContext.sessionIssuer.arn || '')",
        "!(requestParameters.BucketLoggingStatus.LoggingEnabled) || length(public_acl_grants(requestParameters)) > `0`",
        "contains(['a', 'b'], requestParameters.name)",
    ],
)
def test_the_common_shapes_run_as_python_without_jmespaths_interpreter(text, monkeypatch):
    from jmespath import visitor

    def no_interpreter(self, node, *args, **kwargs):
        raise AssertionError(f"jmespath's interpreter visited {node['type']}")

    monkeypatch.setattr(visitor.TreeInterpreter, "visit", no_interpreter)
    record = {"userIdentity": {"type": "IAMUser"}, "awsRegion": "eu-west-1", "requestParameters": {"name": "a"}}
    Expression(text).search(record)
