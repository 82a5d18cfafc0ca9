"""The stage's CloudWatch dashboard: the headline figures per playbook (metrics) and per
account (Logs Insights over the same metric lines: the account is a field of each line,
never a dimension, see `chalicelib.metrics`).

`dashboard_body` is what CloudWatch takes (PutDashboard's DashboardBody, the template's
DashboardBody); the region is a parameter, so that the template passes `${AWS::Region}`
through Fn::Sub and bootstrap its client's region.
"""

from __future__ import annotations

import json
from typing import Any

from chalicelib.metrics import NAMESPACE as NS
from trailguard.generate.operations import StageLayout


def _search(stage: str, dimensions: str, metric: str, stat: str, period: int = 3600) -> str:
    """A SEARCH expression: one line per value of the other dimensions, without listing them."""
    return f"SEARCH('{{{NS},{dimensions}}} MetricName=\"{metric}\" Stage=\"{stage}\"', '{stat}', {period})"


def _metrics(title: str, region: str, series: list[Any], x: int, y: int, **extra: Any) -> dict[str, Any]:
    return {
        "type": "metric",
        "x": x,
        "y": y,
        "width": 12,
        "height": 6,
        "properties": {"title": title, "region": region, "metrics": series, "view": "timeSeries", **extra},
    }


def _logs(title: str, region: str, groups: list[str], query: str, x: int, y: int) -> dict[str, Any]:
    sources = " | ".join(f"SOURCE '{group}'" for group in groups)
    return {
        "type": "log",
        "x": x,
        "y": y,
        "width": 12,
        "height": 6,
        "properties": {"title": title, "region": region, "query": f"{sources} | {query}", "view": "table"},
    }


PER_ACCOUNT_QUERIES = {
    "Incidents by account and playbook": (
        'filter message = "metrics" and metric = "incident opened" '
        "| stats sum(IncidentsOpened) as incidents by account, Playbook | sort incidents desc | limit 50"
    ),
    "Time to remediate by account (s)": (
        'filter message = "metrics" and metric = "incident settled" and ispresent(TimeToRemediate) '
        "| stats pct(TimeToRemediate, 50) as p50, pct(TimeToRemediate, 99) as p99, count(*) as remediated "
        "by account | sort p99 desc | limit 50"
    ),
    "Failures by account and playbook": (
        'filter message = "metrics" and metric = "incident settled" and State = "failed" '
        "| stats count(*) as failed by account, Playbook | sort failed desc | limit 50"
    ),
    "What did not finish, newest first": (
        'filter message = "metrics" and metric in ["handler error", "output failed", "slack delivery failed"] '
        "| fields @timestamp, metric, Function, Output, incident, reason | sort @timestamp desc | limit 50"
    ),
}
"""The Logs Insights queries behind the per-account widgets (docs/operations.md has them too)."""


def dashboard_body(layout: StageLayout, region: str) -> dict[str, Any]:
    stage = layout.stage
    groups = [layout.log_group(function) for function in layout.background_functions]
    queues = [layout.dead_letter_queue(function) for function in layout.background_functions]
    auto = [NS, "TimeToRemediate", "Stage", stage, "Mode", "auto"]
    widgets: list[dict[str, Any]] = [
        {
            "type": "text",
            "x": 0,
            "y": 0,
            "width": 24,
            "height": 2,
            "properties": {
                "markdown": f"# trailguard · {stage}\nTime from a CloudTrail call to its remediation; incidents by "
                "playbook and by account; and what did not finish (dead-letter queues, the Slack backlog). "
                "docs/operations.md says what each figure means and what to do."
            },
        },
        _metrics(
            "Time to remediate, automatic (s): p50 / p99",
            region,
            [[*auto, {"stat": "p50", "label": "p50"}], [*auto, {"stat": "p99", "label": "p99"}]],
            0,
            2,
            period=300,
        ),
        _metrics(
            "Time to remediate by playbook (s): p99",
            region,
            [[{"expression": _search(stage, "Stage,Playbook", "TimeToRemediate", "p99"), "id": "ttr"}]],
            12,
            2,
        ),
        _metrics(
            "Incidents opened by playbook",
            region,
            [[{"expression": _search(stage, "Stage,Playbook,Mode", "IncidentsOpened", "Sum"), "id": "opened"}]],
            0,
            8,
            stacked=True,
        ),
        _metrics(
            "Incidents settled by state",
            region,
            [[{"expression": _search(stage, "Stage,State", "IncidentsSettled", "Sum"), "id": "settled"}]],
            12,
            8,
            stacked=True,
        ),
        _metrics(
            "Failures",
            region,
            [
                [NS, "RemediationStepsFailed", "Stage", stage, {"stat": "Sum"}],
                [NS, "SlackDeliveriesFailed", "Stage", stage, {"stat": "Sum"}],
                [NS, "EventsRejected", "Stage", stage, {"stat": "Sum"}],
                [{"expression": _search(stage, "Stage,Function", "HandlerErrors", "Sum", 300), "id": "errors"}],
                [{"expression": _search(stage, "Stage,Output", "OutputsFailed", "Sum", 300), "id": "outputs"}],
            ],
            0,
            14,
            period=300,
        ),
        _metrics(
            "Not finished: dead letters and the Slack backlog",
            region,
            [
                *(
                    ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", q, {"stat": "Maximum"}]
                    for q in queues
                ),
                [NS, "SlackDeliveriesPending", "Stage", stage, {"stat": "Maximum"}],
            ],
            12,
            14,
            period=300,
        ),
    ]
    for index, (title, query) in enumerate(PER_ACCOUNT_QUERIES.items()):
        widgets.append(_logs(title, region, groups, query, 12 * (index % 2), 20 + 6 * (index // 2)))
    return {"widgets": widgets}


DASHBOARD_LOGICAL_ID = "Dashboard"


def cfn_dashboard(layout: StageLayout) -> dict[str, Any]:
    body = json.dumps(dashboard_body(layout, "${AWS::Region}"), separators=(",", ":"))
    return {
        DASHBOARD_LOGICAL_ID: {
            "Type": "AWS::CloudWatch::Dashboard",
            "Properties": {"DashboardName": layout.dashboard_name(), "DashboardBody": {"Fn::Sub": body}},
        }
    }
