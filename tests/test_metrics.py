"""The metric lines: valid EMF by AWS's specification as trailguard's own logger writes them,
with the documented names, units and dimension sets, and no dimension that grows with the
organization."""

from __future__ import annotations

import datetime as dt
import io
import json
import logging

import pytest

from chalicelib import logs
from chalicelib.metrics import METRICS, Metrics, emf_document
from tests.emf import metric_lines, problems

pytestmark = pytest.mark.unit

NOW = dt.datetime(2026, 12, 6, 15, 30, tzinfo=dt.UTC)
BOUNDED = {"Stage", "Playbook", "Mode", "State", "Function", "Output"}
"""Dimensions whose values the deployment bounds (the stage, its playbooks, modes, states, functions)."""


def every_kind_of_line(metrics: Metrics) -> None:
    metrics.slack_delivery_failed("inc-00000000000000000001", "Slack answered 429: ratelimited")
    metrics.slack_backlog(3, 1800.5)
    metrics.slack_backlog(0, 0)
    metrics.handler_error("respond_to_cloudtrail", "incident too large", eventID="e-1")
    metrics.event_rejected("not a CloudTrail record")
    metrics.heartbeat_gap("210987654321", "eu-west-1", 900)
    metrics.output_failed("securityhub", "inc-00000000000000000001", "AccessDeniedException: no")


def test_every_line_is_valid_emf_as_the_logger_writes_it(caplog):
    caplog.set_level(logging.INFO, logger="trailguard")
    every_kind_of_line(Metrics("prod", clock=lambda: NOW))
    lines = metric_lines(caplog)  # each checked against the specification
    assert [line["metric"] for line in lines] == [
        "slack delivery failed",
        "slack backlog",
        "slack backlog",
        "handler error",
        "event rejected",
        "heartbeat gap",
        "output failed",
    ]
    assert all(line["level"] == "INFO" and line["message"] == "metrics" for line in lines)
    assert all(line["_aws"]["Timestamp"] == int(NOW.timestamp() * 1000) for line in lines)


def test_a_line_through_lambdas_own_handlers_is_one_emf_object(monkeypatch):
    """In Lambda, `logs.configure` gives Chalice's handler (which does not propagate) the JSON
    formatter: the line is the EMF object itself, with no prefix, once."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(name)s - %(levelname)s - %(message)s"))
    app_logger = logging.getLogger("trailguard")
    monkeypatch.setattr(app_logger, "handlers", [handler])
    monkeypatch.setattr(app_logger, "propagate", False)
    monkeypatch.setattr(logging.getLogger(), "handlers", [])
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "trailguard-prod-respond_to_cloudtrail")
    previous = app_logger.level
    app_logger.setLevel(logging.INFO)
    try:
        assert logs.configure() is True
        Metrics("prod").event_rejected("missing field 'detail'")
    finally:
        app_logger.setLevel(previous)
    [line] = stream.getvalue().splitlines()
    assert problems(line) == []
    assert json.loads(line)["EventsRejected"] == 1 and json.loads(line)["Stage"] == "prod"


def test_lines_use_only_the_documented_names_units_and_dimension_sets(caplog):
    caplog.set_level(logging.INFO, logger="trailguard")
    every_kind_of_line(Metrics("dev"))
    for line in metric_lines(caplog):
        for directive in line["_aws"]["CloudWatchMetrics"]:
            assert directive["Namespace"] == "trailguard"
            for metric in directive["Metrics"]:
                spec = METRICS[metric["Name"]]
                assert metric["Unit"] == spec.unit
                assert [tuple(s) for s in directive["Dimensions"]] == list(spec.dimension_sets)


def test_no_dimension_grows_with_the_organization():
    """Accounts, regions, incident and event ids are fields of the line, never dimensions:
    each distinct dimension value is a paid metric."""
    for spec in METRICS.values():
        for dimension_set in spec.dimension_sets:
            assert set(dimension_set) <= BOUNDED and dimension_set[0] == "Stage", spec.name
    line = Metrics("dev").heartbeat_gap("210987654321", "eu-west-1", 60)
    dimensions = {key for d in line["_aws"]["CloudWatchMetrics"] for s in d["Dimensions"] for key in s}
    assert line["account"] == "210987654321" and dimensions == {"Stage"}


def test_a_typo_in_a_metric_name_is_refused_not_published():
    with pytest.raises(KeyError, match="unknown metric 'IncidentOpened'"):
        emf_document("trailguard", {"IncidentOpened": 1}, {"Stage": "dev"}, {}, 0)


def test_a_value_that_is_not_a_finite_number_is_left_out():
    document = emf_document("trailguard", {"HeartbeatGap": float("nan")}, {"Stage": "dev"}, {}, 0)
    assert "HeartbeatGap" not in document and problems(json.dumps(document)) == []


def test_a_missing_dimension_is_refused_and_an_empty_one_is_unknown():
    with pytest.raises(ValueError, match="HandlerErrors needs the dimensions Function"):
        emf_document("trailguard", {"HandlerErrors": 1}, {"Stage": "dev"}, {}, 0)
    line = emf_document("trailguard", {"HandlerErrors": 1}, {"Stage": "dev", "Function": None}, {}, 0)
    assert line["Function"] == "unknown" and problems(json.dumps(line)) == []


def test_a_property_may_not_overwrite_what_the_logger_writes():
    with pytest.raises(ValueError, match="may not be named level, message"):
        emf_document("trailguard", {"EventsRejected": 1}, {"Stage": "dev"}, {"message": "x", "level": "y"}, 0)


def test_a_stage_is_needed():
    with pytest.raises(ValueError, match="a stage name is needed"):
        Metrics("")


# -- the validator itself: it must accept what AWS accepts and refuse what AWS refuses -------

SPEC_EXAMPLE = {
    "_aws": {
        "Timestamp": 1574109732004,
        "CloudWatchMetrics": [
            {
                "Namespace": "lambda-function-metrics",
                "Dimensions": [["functionVersion"]],
                "Metrics": [{"Name": "time", "Unit": "Milliseconds"}],
            }
        ],
    },
    "functionVersion": "$LATEST",
    "time": 100,
    "requestId": "989ffbf8-9ace-4817-a57c-e4dd734019ee",
}


def test_the_validator_accepts_the_specifications_example_and_powertools_output():
    from aws_lambda_powertools.metrics import Metrics as PowertoolsMetrics
    from aws_lambda_powertools.metrics import MetricUnit

    assert problems(json.dumps(SPEC_EXAMPLE)) == []
    emitted = PowertoolsMetrics(namespace="trailguard", service="respond")
    emitted.add_dimension(name="Stage", value="dev")
    emitted.add_metric(name="IncidentsOpened", unit=MetricUnit.Count, value=1)
    emitted.add_metadata(key="incident", value="inc-1")
    assert problems(json.dumps(emitted.serialize_metric_set())) == []


@pytest.mark.parametrize(
    "break_it, expected",
    [
        (lambda d: d.pop("functionVersion"), "dimension 'functionVersion' is not a member"),
        (lambda d: d.update(functionVersion=1), "not a string"),
        (lambda d: d.update(time="100"), "not a number"),
        (lambda d: d.update(time=list(range(101))), "at most 100 numbers"),
        (lambda d: d["_aws"].pop("Timestamp"), "'Timestamp' is a required property"),
        (lambda d: d["_aws"]["CloudWatchMetrics"][0]["Metrics"][0].update(Unit="Minutes"), "does not match"),
        (lambda d: d["_aws"]["CloudWatchMetrics"][0].update(Dimensions=[[f"d{i}" for i in range(10)]]), "too long"),
        (lambda d: d["_aws"]["CloudWatchMetrics"][0].update(Metrics=[{"Name": "time"}] * 101), "too long"),
    ],
)
def test_the_validator_refuses_what_the_specification_forbids(break_it, expected):
    document = json.loads(json.dumps(SPEC_EXAMPLE))
    break_it(document)
    assert any(expected in problem for problem in problems(json.dumps(document))), problems(json.dumps(document))


def test_text_around_the_object_is_refused():
    assert problems("trailguard - INFO - " + json.dumps(SPEC_EXAMPLE))


def test_the_operations_page_documents_every_metric_with_its_unit_and_dimension_sets():
    from tests.conftest import ROOT

    page = (ROOT / "docs" / "operations.md").read_text()
    for spec in METRICS.values():
        sets = ", ".join("[" + ", ".join(dimension_set) + "]" for dimension_set in spec.dimension_sets)
        assert f"| `{spec.name}` | {spec.unit} | {sets} |" in page, spec.name
