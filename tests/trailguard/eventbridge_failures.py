"""What moto cannot do: a Lambda target that fails every attempt.

moto delivers to SQS targets but cannot invoke a Lambda target (its PutEvents answers 500
for one). `lambda_targets_fail` stands in for what the EventBridge user guide documents for
a target whose retries are exhausted ("Using dead-letter queues to process undelivered
events"): the event itself goes to the target's DeadLetterConfig queue, with the message
attributes RULE_ARN, TARGET_ARN, ERROR_CODE, ERROR_MESSAGE, EXHAUSTED_RETRY_CONDITION and
RETRY_ATTEMPTS; without a queue, the event is dropped. The rule, its pattern matching, the
target's configuration (what bootstrap wrote) and SQS are moto's own. It also leaves out
schedule rules, which moto offers every put event to (AWS does not).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import boto3

from tests.conftest import REGION


@contextlib.contextmanager
def lambda_targets_fail(error_code: str = "SDK_CLIENT_ERROR", retries: int = 185) -> Iterator[list[dict[str, Any]]]:
    """While open, every Lambda target fails every attempt; yields the events dropped."""
    from moto.events.models import Rule
    from moto.utilities.arns import parse_arn

    original = Rule.send_to_targets
    dropped: list[dict[str, Any]] = []

    def send_to_targets(self: Any, event: dict[str, Any], transform_input: bool = True) -> None:
        if self.scheduled_expression or not self.event_pattern.matches_event(event):
            return
        failing = [target for target in self.targets if parse_arn(target["Arn"]).service == "lambda"]
        for target in failing:
            queue = (target.get("DeadLetterConfig") or {}).get("Arn")
            if not queue:
                dropped.append(event)
                continue
            body = dict(event)
            if not str(body.get("time", "")).endswith("Z"):
                body["time"] = dt.datetime.fromtimestamp(float(body["time"]), dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            sqs = boto3.client("sqs", region_name=REGION)
            url = sqs.get_queue_url(QueueName=queue.rsplit(":", 1)[-1])["QueueUrl"]
            attributes = {
                "RULE_ARN": self.arn,
                "TARGET_ARN": target["Arn"],
                "ERROR_CODE": error_code,
                "ERROR_MESSAGE": f"Lambda could not be invoked ({error_code})",
                "EXHAUSTED_RETRY_CONDITION": "MaximumRetryAttemptsExhausted",
                "RETRY_ATTEMPTS": str(retries),
            }
            sqs.send_message(
                QueueUrl=url,
                MessageBody=json.dumps(body),
                MessageAttributes={k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()},
            )
        others = [target for target in self.targets if target not in failing]
        if others:
            kept = self.targets
            self.targets = others
            try:
                original(self, event, transform_input)
            finally:
                self.targets = kept

    Rule.send_to_targets = send_to_targets  # type: ignore[method-assign]
    try:
        yield dropped
    finally:
        Rule.send_to_targets = original  # type: ignore[method-assign]
