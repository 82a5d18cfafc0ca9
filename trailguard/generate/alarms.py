"""The alarms an operator needs, defined once and written for both deployment paths: `to_cfn`
for the merge template, `to_api` for `put_metric_alarm` in bootstrap.

Every alarm notifies the stage's SNS topic (subscribe an address, a chat webhook or a pager
to it), when it fires and when it clears. Missing data is "not breaching", except where
silence is the failure (the sweep not running). CloudWatch alarms cannot use SEARCH, so an
alarm over several series lists them, summed with metric math.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from chalicelib.metrics import HANDLER, NAMESPACE
from trailguard.generate.operations import StageLayout, cfn_name

OUTPUTS = ("securityhub", "eventbridge")
"""The `Output` dimension's values of OutputsFailed (`chalicelib.outputs`)."""


@dataclass(frozen=True)
class Query:
    """One metric (or expression) of a metric-math alarm."""

    id: str
    namespace: str | None = None
    metric_name: str | None = None
    dimensions: dict[str, str] = field(default_factory=dict)
    stat: str | None = None
    expression: str | None = None
    return_data: bool = False


@dataclass(frozen=True)
class AlarmSpec:
    name: str
    description: str
    threshold: float
    comparison: str
    period: int
    namespace: str | None = None
    metric_name: str | None = None
    dimensions: dict[str, str] = field(default_factory=dict)
    statistic: str | None = None
    extended_statistic: str | None = None
    queries: tuple[Query, ...] = ()
    evaluation_periods: int = 1
    treat_missing_data: str = "notBreaching"

    def _common(self) -> dict[str, Any]:
        common: dict[str, Any] = {
            "AlarmName": self.name,
            "AlarmDescription": self.description,
            "Threshold": self.threshold,
            "ComparisonOperator": self.comparison,
            "EvaluationPeriods": self.evaluation_periods,
            "TreatMissingData": self.treat_missing_data,
        }
        if self.queries:
            common["Metrics"] = [self._query(query) for query in self.queries]
            return common
        common.update(
            Namespace=self.namespace,
            MetricName=self.metric_name,
            Dimensions=_dimensions(self.dimensions),
            Period=self.period,
        )
        if self.extended_statistic:
            common["ExtendedStatistic"] = self.extended_statistic
        else:
            common["Statistic"] = self.statistic
        return common

    def _query(self, query: Query) -> dict[str, Any]:
        item: dict[str, Any] = {"Id": query.id, "ReturnData": query.return_data}
        if query.expression is not None:
            item["Expression"] = query.expression
        else:
            item["MetricStat"] = {
                "Metric": {
                    "Namespace": query.namespace,
                    "MetricName": query.metric_name,
                    "Dimensions": _dimensions(query.dimensions),
                },
                "Period": self.period,
                "Stat": query.stat,
            }
        return item

    def to_cfn(self, topic: Any) -> dict[str, Any]:
        return {
            "Type": "AWS::CloudWatch::Alarm",
            "Properties": {**self._common(), "AlarmActions": [topic], "OKActions": [topic]},
        }

    def to_api(self, topic_arn: str) -> dict[str, Any]:
        return {**self._common(), "AlarmActions": [topic_arn], "OKActions": [topic_arn], "ActionsEnabled": True}


def _dimensions(dimensions: dict[str, str]) -> list[dict[str, str]]:
    return [{"Name": key, "Value": value} for key, value in dimensions.items()]


def alarm_specs(layout: StageLayout) -> list[AlarmSpec]:
    stage, ops = layout.stage, layout.ops
    specs = [
        AlarmSpec(
            name=layout.alarm_name("remediation-failed"),
            description=f"trailguard ({stage}): an incident failed (a step, its plan or an undo); its message says why",
            namespace=NAMESPACE,
            metric_name="IncidentsSettled",
            dimensions={"Stage": stage, "State": "failed"},
            statistic="Sum",
            period=300,
            threshold=1,
            comparison="GreaterThanOrEqualToThreshold",
        ),
        AlarmSpec(
            name=layout.alarm_name("slack-undelivered"),
            description=(
                f"trailguard ({stage}): a change has not reached Slack for more than {ops.undelivered_minutes} "
                "minutes (the token, the channel, or Slack itself)"
            ),
            namespace=NAMESPACE,
            metric_name="OldestPendingDeliveryAge",
            dimensions={"Stage": stage},
            statistic="Maximum",
            period=ops.sweep_minutes * 60,
            threshold=ops.undelivered_minutes * 60,
            comparison="GreaterThanThreshold",
        ),
        AlarmSpec(
            name=layout.alarm_name("time-to-remediate-p99"),
            description=(
                f"trailguard ({stage}): p99 of the time from a CloudTrail call to its automatic remediation is over "
                f"{ops.remediate_p99_seconds} s"
            ),
            namespace=NAMESPACE,
            metric_name="TimeToRemediate",
            dimensions={"Stage": stage, "Mode": "auto"},
            extended_statistic="p99",
            period=3600,
            threshold=ops.remediate_p99_seconds,
            comparison="GreaterThanThreshold",
        ),
        AlarmSpec(
            name=layout.alarm_name("outputs-failed"),
            description=f"trailguard ({stage}): Security Hub or EventBridge did not take a finding or an event",
            queries=(
                *(
                    Query(output, NAMESPACE, "OutputsFailed", {"Stage": stage, "Output": output}, "Sum")
                    for output in OUTPUTS
                ),
                Query("failed", expression=" + ".join(f"FILL({output}, 0)" for output in OUTPUTS), return_data=True),
            ),
            period=300,
            threshold=1,
            comparison="GreaterThanOrEqualToThreshold",
        ),
        AlarmSpec(
            name=layout.alarm_name("events-rejected"),
            description=f"trailguard ({stage}): the rules delivered events trailguard could not read",
            namespace=NAMESPACE,
            metric_name="EventsRejected",
            dimensions={"Stage": stage},
            statistic="Sum",
            period=300,
            threshold=1,
            comparison="GreaterThanOrEqualToThreshold",
        ),
    ]
    specs.append(
        AlarmSpec(
            name=layout.alarm_name("heartbeat-gap"),
            description=(
                f"trailguard ({stage}): an account and region have sent no heartbeat event for over "
                f"{ops.heartbeat_grace_minutes} minutes: trailguard cannot see them (its incident names them)"
            ),
            namespace=NAMESPACE,
            metric_name="HeartbeatGap",
            dimensions={"Stage": stage},
            statistic="Maximum",
            period=ops.heartbeat_minutes * 60,
            threshold=ops.heartbeat_grace_minutes * 60,
            comparison="GreaterThanThreshold",
        )
    )
    for function in layout.scheduled_functions:
        specs.append(
            AlarmSpec(
                name=layout.alarm_name(f"{function}-not-running"),
                description=f"trailguard ({stage}): {function} has not run for two of its intervals",
                namespace="AWS/Lambda",
                metric_name="Invocations",
                dimensions={"FunctionName": layout.function_name(function)},
                statistic="Sum",
                period=ops.minutes_between_runs(function) * 60 * 2,
                threshold=1,
                comparison="LessThanThreshold",
                treat_missing_data="breaching",
            )
        )
    for function in layout.background_functions:
        specs.append(
            AlarmSpec(
                name=layout.alarm_name(f"{function}-dead-letters"),
                description=(
                    f"trailguard ({stage}): events {function} never finished wait in "
                    f"{layout.dead_letter_queue(function)}; fix the cause, then trailguard redrive --stage {stage} "
                    f"--function {function}"
                ),
                namespace="AWS/SQS",
                metric_name="ApproximateNumberOfMessagesVisible",
                dimensions={"QueueName": layout.dead_letter_queue(function)},
                statistic="Maximum",
                period=300,
                threshold=0,
                comparison="GreaterThanThreshold",
            )
        )
    for function in layout.all_functions:
        caught = HANDLER if function in layout.rule_functions else function
        specs.append(
            AlarmSpec(
                name=layout.alarm_name(f"{function}-errors"),
                description=(
                    f"trailguard ({stage}): {layout.function_name(function)} failed (crashed or timed out: Lambda's "
                    "Errors; or answered with a failure it caught: trailguard's HandlerErrors)"
                ),
                queries=(
                    Query("crashed", "AWS/Lambda", "Errors", {"FunctionName": layout.function_name(function)}, "Sum"),
                    Query("caught", NAMESPACE, "HandlerErrors", {"Stage": stage, "Function": caught}, "Sum"),
                    Query("errors", expression="FILL(crashed, 0) + FILL(caught, 0)", return_data=True),
                ),
                period=300,
                threshold=1,
                comparison="GreaterThanOrEqualToThreshold",
            )
        )
    for function in layout.targeted_functions:
        specs.append(
            AlarmSpec(
                name=layout.alarm_name(f"{function}-events-lost"),
                description=(
                    f"trailguard ({stage}): EventBridge could deliver an event neither to {function} nor to its "
                    "dead-letter queue: the event is lost"
                ),
                namespace="AWS/Events",
                metric_name="InvocationsFailedToBeSentToDLQ",
                dimensions={"RuleName": layout.rule_name(function)},
                statistic="Sum",
                period=300,
                threshold=1,
                comparison="GreaterThanOrEqualToThreshold",
            )
        )
    return specs


TOPIC_LOGICAL_ID = "AlarmTopic"


def topic_reference(layout: StageLayout) -> Any:
    """What the alarms notify in the template: the stage's own topic, or the one the stage names."""
    return layout.ops.alarm_topic or {"Ref": TOPIC_LOGICAL_ID}


def cfn_alarm_topic(layout: StageLayout) -> dict[str, Any]:
    """The stage's own topic, unless it names one. Not encrypted with the AWS managed SNS key:
    CloudWatch could not publish to it (that key's policy cannot be changed); alarm texts
    hold no secret."""
    if layout.ops.alarm_topic:
        return {}
    return {
        TOPIC_LOGICAL_ID: {
            "Type": "AWS::SNS::Topic",
            "Properties": {"TopicName": layout.alarm_topic_name(), "DisplayName": f"trailguard {layout.stage} alarms"},
        }
    }


def cfn_alarms(layout: StageLayout) -> dict[str, Any]:
    topic = topic_reference(layout)
    prefix = layout.alarm_name("")
    return {cfn_name(spec.name.removeprefix(prefix)) + "Alarm": spec.to_cfn(topic) for spec in alarm_specs(layout)}
