"""The `chalice deploy` path of what the merge template adds for operators: `ensure` creates or
corrects it with boto3, idempotently, saying what it did; `drift` reports, read-only, what
is not as `ensure` leaves it.

`bootstrap` runs `ensure` after `chalice deploy`, and must run it again after every later
deploy: Chalice puts each rule's target again as `{"Id": "1", "Arn": <function>}`
(chalice 1.34, `TypedAWSClient.connect_rule_to_lambda`), which drops the target's
dead-letter config and retry policy. `trailguard bootstrap --check` runs `drift`, for CI
or a schedule. Each `ensure_*` reads first and writes only what differs.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from trailguard.generate.alarms import alarm_specs
from trailguard.generate.dashboard import dashboard_body
from trailguard.generate.deadletters import queue_policy
from trailguard.generate.operations import QUEUE_RETENTION_SECONDS, AsyncInvokePolicy, RetryPolicy, StageLayout

ClientFactory = Callable[[str], Any]
"""`boto3.client`, or a session's: called with a service name."""


class BootstrapError(Exception):
    """Something bootstrap cannot fix by itself; the message says what to do."""


def ensure_dead_letter_queue(sqs: Any, name: str, rule_arn: str | None, role_arn: str) -> tuple[str, list[str]]:
    """The queue with its retention, encryption and policy; (its ARN, what was done)."""
    done: list[str] = []
    try:
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    except sqs.exceptions.QueueDoesNotExist:
        url = sqs.create_queue(QueueName=name)["QueueUrl"]
        done.append(f"created queue {name}")
    current = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    arn = current["QueueArn"]
    wanted = {
        "MessageRetentionPeriod": str(QUEUE_RETENTION_SECONDS),
        "SqsManagedSseEnabled": "true",
        "Policy": json.dumps(queue_policy(arn, rule_arn, role_arn), separators=(",", ":")),
    }

    def differs(key: str) -> bool:
        if key == "Policy":
            return key not in current or json.loads(current[key]) != json.loads(wanted[key])
        return bool(current.get(key) != wanted[key])

    changed = {key: value for key, value in wanted.items() if differs(key)}
    if changed:
        sqs.set_queue_attributes(QueueUrl=url, Attributes=changed)
        done.append(f"set {', '.join(sorted(changed))} on queue {name}")
    return arn, done


def ensure_rule_target(events: Any, rule: str, function_arn: str, queue_arn: str, retry: RetryPolicy) -> list[str]:
    """The dead-letter queue and retry policy on the rule's target that invokes the function,
    the rest of the target (its id, input) as it is."""
    try:
        targets = events.list_targets_by_rule(Rule=rule)["Targets"]
    except events.exceptions.ResourceNotFoundException:
        raise BootstrapError(f"rule {rule} does not exist: run chalice deploy first") from None
    ours = [target for target in targets if target["Arn"] == function_arn]
    if not ours:
        raise BootstrapError(f"rule {rule} has no target invoking {function_arn}: run chalice deploy again")
    wanted = {"DeadLetterConfig": {"Arn": queue_arn}, "RetryPolicy": retry.to_api()}
    stale = [target for target in ours if any(target.get(key) != value for key, value in wanted.items())]
    if not stale:
        return []
    answer = events.put_targets(Rule=rule, Targets=[{**target, **wanted} for target in stale])
    if answer.get("FailedEntryCount"):
        raise BootstrapError(f"rule {rule}: EventBridge refused the target: {answer['FailedEntries']}")
    return [f"rule {rule}: dead-letter queue and retry policy set on target {', '.join(t['Id'] for t in stale)}"]


def ensure_async_config(
    lambda_: Any,
    function: str,
    queue_arn: str,
    policy: AsyncInvokePolicy,
    attempts: int = 5,
    sleep: Callable[[float], None] = time.sleep,
) -> list[str]:
    """Lambda's retries and on-failure destination. Lambda checks that the function's role may
    send to the queue when the config is put, and a role policy just written may not be seen
    yet (IAM is eventually consistent): that refusal is tried again a few times."""
    wanted = {
        "MaximumRetryAttempts": policy.maximum_retry_attempts,
        "MaximumEventAgeInSeconds": policy.maximum_event_age_seconds,
    }
    try:
        current = lambda_.get_function_event_invoke_config(FunctionName=function)
    except lambda_.exceptions.ResourceNotFoundException:
        current = {}
    destination = current.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
    if all(current.get(key) == value for key, value in wanted.items()) and destination == queue_arn:
        return []
    for attempt in range(attempts):
        try:
            lambda_.put_function_event_invoke_config(
                FunctionName=function,
                Qualifier="$LATEST",
                DestinationConfig={"OnFailure": {"Destination": queue_arn}},
                **wanted,
            )
            return [f"function {function}: what fails every retry goes to its dead-letter queue"]
        except lambda_.exceptions.InvalidParameterValueException:
            if attempt == attempts - 1:
                raise
            sleep(2.0 * (attempt + 1))
    raise AssertionError("unreachable")


def ensure_log_retention(logs: Any, group: str, days: int) -> list[str]:
    """The group with its retention, whether Lambda created it already or not."""
    done: list[str] = []
    try:
        logs.create_log_group(logGroupName=group)
        done.append(f"created log group {group}")
    except logs.exceptions.ResourceAlreadyExistsException:
        pass
    if _retention(logs, group) != days:
        logs.put_retention_policy(logGroupName=group, retentionInDays=days)
        done.append(f"log group {group} keeps {days} days")
    return done


def _retention(logs: Any, group: str) -> int | None:
    found = [g for g in logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"] if g["logGroupName"] == group]
    return found[0].get("retentionInDays") if found else None


def ensure_alarms(sns: Any, cloudwatch: Any, layout: StageLayout) -> list[str]:
    """The stage's topic (CreateTopic is idempotent) unless it names one, and every alarm
    (PutMetricAlarm replaces one of the same name: the definitions here always win)."""
    topic = layout.ops.alarm_topic or sns.create_topic(Name=layout.alarm_topic_name())["TopicArn"]
    specs = alarm_specs(layout)
    pages = cloudwatch.get_paginator("describe_alarms").paginate(AlarmNamePrefix=layout.alarm_name(""))
    existing = {alarm["AlarmName"] for page in pages for alarm in page.get("MetricAlarms", [])}
    for spec in specs:
        cloudwatch.put_metric_alarm(**spec.to_api(topic))
    new = [spec.name for spec in specs if spec.name not in existing]
    return [f"{len(specs)} alarms notify {topic}" + (f" ({len(new)} new)" if new else "")]


def ensure_dashboard(cloudwatch: Any, layout: StageLayout, region: str) -> list[str]:
    name = layout.dashboard_name()
    body = json.dumps(dashboard_body(layout, region), separators=(",", ":"))
    answer = cloudwatch.put_dashboard(DashboardName=name, DashboardBody=body)
    if answer.get("DashboardValidationMessages"):
        raise BootstrapError(
            f"dashboard {name}: CloudWatch refused parts of it: {answer['DashboardValidationMessages']}"
        )
    return [f"dashboard {name} is up to date"]


def deployed(client: ClientFactory, layout: StageLayout) -> bool:
    """Whether `chalice deploy` has made the stage's functions (the first rule's, at least)."""
    lambda_ = client("lambda")
    try:
        lambda_.get_function(FunctionName=layout.function_name(layout.rule_functions[0]))
    except lambda_.exceptions.ResourceNotFoundException:
        return False
    return True


def ensure(client: ClientFactory, layout: StageLayout) -> list[str]:
    """Everything the merge template adds for operators, on a stage `chalice deploy` made."""
    sqs, events, lambda_, logs, cloudwatch = (client(s) for s in ("sqs", "events", "lambda", "logs", "cloudwatch"))
    done: list[str] = []
    for function in layout.background_functions:
        name = layout.function_name(function)
        try:
            configuration = lambda_.get_function(FunctionName=name)["Configuration"]
        except lambda_.exceptions.ResourceNotFoundException:
            raise BootstrapError(f"function {name} does not exist: run chalice deploy --stage {layout.stage}") from None
        rule_arn = None
        if function in layout.targeted_functions:
            try:
                rule_arn = events.describe_rule(Name=layout.rule_name(function))["Arn"]
            except events.exceptions.ResourceNotFoundException:
                raise BootstrapError(f"rule {layout.rule_name(function)} does not exist: run chalice deploy") from None
        function_arn = configuration["FunctionArn"]
        queue_arn, lines = ensure_dead_letter_queue(
            sqs, layout.dead_letter_queue(function), rule_arn, configuration["Role"]
        )
        done += lines
        if rule_arn is not None:
            done += ensure_rule_target(
                events, layout.rule_name(function), function_arn, queue_arn, layout.retry_policy(function)
            )
        done += ensure_async_config(lambda_, name, queue_arn, layout.async_policy(function))
    for function in layout.all_functions:
        done += ensure_log_retention(logs, layout.log_group(function), layout.ops.log_retention_days)
    done += ensure_alarms(client("sns"), cloudwatch, layout)
    done += ensure_dashboard(cloudwatch, layout, lambda_.meta.region_name)
    return done


def drift(client: ClientFactory, layout: StageLayout) -> list[str]:
    """What is not as `ensure` leaves it (after a `chalice deploy`: the rules' targets)."""
    events, lambda_, logs = client("events"), client("lambda"), client("logs")
    problems: list[str] = []
    for function in layout.targeted_functions:
        rule = layout.rule_name(function)
        try:
            targets = events.list_targets_by_rule(Rule=rule)["Targets"]
        except events.exceptions.ResourceNotFoundException:
            problems.append(f"rule {rule} does not exist")
            continue
        for target in targets:
            if not target.get("DeadLetterConfig", {}).get("Arn"):
                problems.append(f"rule {rule} target {target['Id']} has no dead-letter queue")
            if target.get("RetryPolicy") != layout.retry_policy(function).to_api():
                problems.append(f"rule {rule} target {target['Id']} has not the stage's retry policy")
    for function in layout.background_functions:
        name = layout.function_name(function)
        try:
            config = lambda_.get_function_event_invoke_config(FunctionName=name)
        except lambda_.exceptions.ResourceNotFoundException:
            config = {}
        if not config.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination"):
            problems.append(f"function {name} has no on-failure destination")
    for function in layout.all_functions:
        group = layout.log_group(function)
        days = _retention(logs, group)
        if days != layout.ops.log_retention_days:
            problems.append(f"log group {group} keeps its lines {f'{days} days' if days else 'forever'}")
    if layout.table:
        status = client("dynamodb").describe_continuous_backups(TableName=layout.table)["ContinuousBackupsDescription"]
        if status.get("PointInTimeRecoveryDescription", {}).get("PointInTimeRecoveryStatus") != "ENABLED":
            problems.append(f"table {layout.table} has no point-in-time recovery")
    return problems
