"""trailguard's metrics, as CloudWatch embedded metric format (EMF) lines in its own logs.

A metric is one log line that trailguard's JSON logger writes (`logs.JsonLines`): its
fields are the metric values, their dimensions and an `_aws` member saying which is which,
and CloudWatch Logs turns it into metrics with no agent and no PutMetricData call (EMF:
https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html).
The rest of the line (the incident, the account and region, a reason) stays searchable in
Logs Insights.

Not aws-lambda-powertools' Metrics (docs/benchmarks.md measures its import cost): it
buffers a metric set and prints it when the handler returns, outside the logger and its
request id, while trailguard writes one line per fact at the moment it happened (after
the conditional write that made it so), carrying the incident with it.

Dimensions are chosen for cost: each distinct combination of dimension values is a custom
metric, billed monthly. `Stage`, `Playbook`, `Mode`, `State`, `Function` and `Output` are
bounded by the deployment; the account and region are not (an organization has hundreds of
accounts), so they are fields of the line, never dimensions: per-account figures are Logs
Insights queries over the same lines (docs/operations.md).
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from chalicelib.clock import utc_now

NAMESPACE = "trailguard"
MESSAGE = "metrics"
"""The message of every metric line (`filter message = "metrics"` in Logs Insights)."""
DIMENSION_VALUE_LIMIT = 1024
"""CloudWatch's longest dimension value."""

STAGE, PLAYBOOK, MODE, STATE, FUNCTION, OUTPUT = "Stage", "Playbook", "Mode", "State", "Function", "Output"
HANDLER, SWEEP, WORKER, ENDPOINT = "respond_to_cloudtrail", "posture_sweep", "slack_worker", "api_handler"
HEARTBEAT = "heartbeat"
"""The `Function` dimension's values: Chalice's names of the functions."""

log = logging.getLogger("trailguard")


@dataclass(frozen=True)
class MetricSpec:
    """One metric: its name, unit and the dimension sets it is published under (each set is
    its own CloudWatch metric: a cost, and a line on a graph)."""

    name: str
    unit: str
    dimension_sets: tuple[tuple[str, ...], ...]
    description: str


def _spec(name: str, unit: str, sets: Sequence[Sequence[str]], description: str) -> tuple[str, MetricSpec]:
    return name, MetricSpec(name, unit, tuple(tuple(s) for s in sets), description)


METRICS: Mapping[str, MetricSpec] = dict(
    [
        _spec(
            "IncidentsOpened",
            "Count",
            [[STAGE], [STAGE, PLAYBOOK, MODE]],
            "a new incident (never a duplicate delivery: the store refused those)",
        ),
        _spec(
            "IncidentsSettled",
            "Count",
            [[STAGE, STATE], [STAGE, PLAYBOOK, STATE]],
            "an incident came to rest in a state (proposed, remediated, failed, denied, undone, ...); one "
            "remediated and later undone counts once in each",
        ),
        _spec(
            "RemediationStepsFailed",
            "Count",
            [[STAGE], [STAGE, PLAYBOOK]],
            "the steps that failed, when an incident moved to failed",
        ),
        _spec(
            "TimeToRemediate",
            "Seconds",
            [[STAGE, MODE], [STAGE, PLAYBOOK]],
            "from CloudTrail's eventTime to the remediation applied (p50 and p99 are CloudWatch percentiles); "
            "includes the wait for a person in approve mode, hence the Mode dimension",
        ),
        _spec("SlackDeliveriesFailed", "Count", [[STAGE]], "a Slack post or update that failed (it stays due)"),
        _spec("SlackDeliveriesPending", "Count", [[STAGE]], "incidents whose message is due, counted by each sweep"),
        _spec(
            "OldestPendingDeliveryAge",
            "Seconds",
            [[STAGE]],
            "how long the oldest change not yet shown in Slack has waited, measured by each sweep",
        ),
        _spec(
            "HandlerErrors",
            "Count",
            [[STAGE, FUNCTION]],
            "a function answered with a failure it caught (Lambda's own Errors metric counts the ones it did not)",
        ),
        _spec("EventsRejected", "Count", [[STAGE]], "an event that is not a CloudTrail record trailguard can read"),
        _spec(
            "HeartbeatGap",
            "Seconds",
            [[STAGE]],
            "time since the last heartbeat event arrived from an account and region (each heartbeat run, per "
            "account and region in the line's fields)",
        ),
        _spec(
            "OutputsFailed",
            "Count",
            [[STAGE, OUTPUT]],
            "a finding or event Security Hub or EventBridge did not take",
        ),
    ]
)
"""Every metric trailguard writes (docs/operations.md lists each; a test checks it does)."""

_RESERVED = frozenset({"time", "level", "logger", "message", "requestId", "error", "_aws"})
"""Members `logs.JsonLines` writes itself: a property of that name would overwrite one."""


def _dimension_value(value: Any) -> str:
    text = str(value) if value not in (None, "") else "unknown"
    return text[:DIMENSION_VALUE_LIMIT]


def emf_document(
    namespace: str,
    values: Mapping[str, float],
    dimensions: Mapping[str, Any],
    properties: Mapping[str, Any],
    timestamp_ms: int,
) -> dict[str, Any]:
    """The members of one EMF line: a directive per group of dimension sets, each metric and
    dimension a top-level member, the properties beside them.

    A value that is not a finite number is left out (CloudWatch would refuse the whole
    line); a metric not in `METRICS` is refused: a typo must not create a new paid metric.
    """
    directives: dict[tuple[tuple[str, ...], ...], list[dict[str, str]]] = {}
    members: dict[str, float] = {}
    for name, value in values.items():
        spec = METRICS.get(name)
        if spec is None:
            raise KeyError(f"unknown metric {name!r} (known: {', '.join(sorted(METRICS))})")
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            continue
        missing = {key for dimension_set in spec.dimension_sets for key in dimension_set} - set(dimensions)
        if missing:
            raise ValueError(f"metric {name} needs the dimensions {', '.join(sorted(missing))}")
        directives.setdefault(spec.dimension_sets, []).append({"Name": name, "Unit": spec.unit})
        members[name] = value
    clash = sorted(_RESERVED & set(properties))
    if clash:
        raise ValueError(f"a metric line's properties may not be named {', '.join(clash)}")
    used = {key for sets in directives for dimension_set in sets for key in dimension_set}
    return {
        **properties,
        **{key: _dimension_value(dimensions[key]) for key in sorted(used)},
        **members,
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [
                {"Namespace": namespace, "Dimensions": [list(s) for s in sets], "Metrics": metrics}
                for sets, metrics in directives.items()
            ],
        },
    }


class Metrics:
    """The metric lines of one stage, each written as it happens through trailguard's logger;
    every method also returns the line's members (tests read them)."""

    def __init__(self, stage: str, namespace: str = NAMESPACE, clock: Callable[[], dt.datetime] = utc_now) -> None:
        if not stage:
            raise ValueError("a stage name is needed: every metric has a Stage dimension")
        self.stage = stage
        self.namespace = namespace
        self.clock = clock

    def write(
        self, what: str, values: Mapping[str, float], dimensions: Mapping[str, Any], properties: Mapping[str, Any]
    ) -> dict[str, Any]:
        """One line: `what` names it (`metric` in Logs Insights), the values are METRICS'."""
        document = emf_document(
            self.namespace,
            values,
            {STAGE: self.stage, **dimensions},
            {"metric": what, **properties},
            int(self.clock().timestamp() * 1000),
        )
        log.info(MESSAGE, extra=document)
        return document

    def slack_delivery_failed(self, incident_id: str, reason: str) -> dict[str, Any]:
        return self.write(
            "slack delivery failed", {"SlackDeliveriesFailed": 1}, {}, {"incident": incident_id, "reason": reason}
        )

    def slack_backlog(self, pending: int, oldest_seconds: float) -> dict[str, Any]:
        return self.write(
            "slack backlog",
            {"SlackDeliveriesPending": pending, "OldestPendingDeliveryAge": oldest_seconds if pending else 0.0},
            {},
            {},
        )

    def handler_error(self, function: str, reason: str, count: int = 1, **properties: Any) -> dict[str, Any]:
        return self.write(
            "handler error", {"HandlerErrors": count}, {FUNCTION: function}, {"reason": reason, **properties}
        )

    def event_rejected(self, reason: str) -> dict[str, Any]:
        return self.write("event rejected", {"EventsRejected": 1}, {}, {"reason": reason})

    def heartbeat_gap(self, account: str, region: str, seconds: float) -> dict[str, Any]:
        return self.write("heartbeat gap", {"HeartbeatGap": seconds}, {}, {"account": account, "region": region})

    def output_failed(self, output: str, incident_id: str, reason: str) -> dict[str, Any]:
        return self.write(
            "output failed", {"OutputsFailed": 1}, {OUTPUT: output}, {"incident": incident_id, "reason": reason}
        )
