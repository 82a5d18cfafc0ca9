"""`trailguard redrive`: hand what a dead-letter queue holds back to its function.

A message is one of two shapes (see `generate.deadletters`):
- EventBridge's dead letter: the body is the event itself; the attributes RULE_ARN,
  TARGET_ARN, ERROR_CODE, ERROR_MESSAGE, EXHAUSTED_RETRY_CONDITION say why;
- Lambda's on-failure record: `{"version": "1.0", "requestContext": {..., "condition":
  "RetriesExhausted"}, "requestPayload": <the event>, "responsePayload": {...}}`.

Each event goes to `handler`; its message is deleted only when the handler returned and
`succeeded(answer)` agrees, and kept otherwise (visible again at the end of the run, so
the queue's alarm stays on and the next run sees it). The deployed function does the work
(`invoke_function`): with its own role, the only one that may seal the incidents table.
Redriving an event that was in fact handled is harmless: the incident id comes from the
event id, so the store refuses a second incident and nothing runs twice.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

EVENTBRIDGE_ATTRIBUTES = ("RULE_ARN", "TARGET_ARN", "ERROR_CODE", "ERROR_MESSAGE", "EXHAUSTED_RETRY_CONDITION")
FAILED_ANSWERS = frozenset({"failed", "rejected", "refused"})
"""A function's `status` that says the event is still not done (a person should look)."""


class UnreadableMessage(ValueError):
    """A message that holds no event (not JSON, or not an object)."""


class FunctionFailed(Exception):
    """The function raised or timed out (Lambda's FunctionError); the message has its error."""


@dataclass
class Kept:
    message_id: str
    reason: str
    failed_before: dict[str, str] = field(default_factory=dict)


@dataclass
class RedriveReport:
    received: int = 0
    handled: int = 0
    kept: list[Kept] = field(default_factory=list)
    dry_run: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "received": self.received,
            "handled": self.handled,
            "kept": [{"messageId": k.message_id, "reason": k.reason, "before": k.failed_before} for k in self.kept],
            "dryRun": self.dry_run,
        }


def original_event(message: Mapping[str, Any]) -> tuple[dict[str, Any], str, dict[str, str]]:
    """(the event, which kind of dead letter, why it failed before) of an SQS message."""
    try:
        body = json.loads(message.get("Body") or "")
    except ValueError:
        raise UnreadableMessage("the body is not JSON") from None
    if not isinstance(body, dict):
        raise UnreadableMessage(f"the body is a JSON {type(body).__name__}, not an object")
    if {"requestContext", "requestPayload"} <= set(body):
        payload = body["requestPayload"]
        if not isinstance(payload, dict):
            raise UnreadableMessage("Lambda's failure record holds no event object (requestPayload)")
        context = body["requestContext"] if isinstance(body["requestContext"], dict) else {}
        why = {key: str(context.get(key)) for key in ("condition", "approximateInvokeCount", "functionArn")}
        response = body.get("responsePayload")
        if isinstance(response, dict) and response.get("errorMessage"):
            why["errorMessage"] = str(response["errorMessage"])
        return payload, "lambda", why
    attributes = message.get("MessageAttributes") or {}
    why = {name: str(attributes[name].get("StringValue")) for name in EVENTBRIDGE_ATTRIBUTES if name in attributes}
    return body, "eventbridge", why


def succeeded(answer: Any) -> bool:
    """A function's answer is a success unless it says `failed`, `rejected` or `refused`."""
    return not (isinstance(answer, Mapping) and answer.get("status") in FAILED_ANSWERS)


def invoke_function(lambda_client: Any, function_name: str) -> Callable[[dict[str, Any]], Any]:
    """A handler that runs the deployed function on the event and waits for its answer."""

    def invoke(event: dict[str, Any]) -> Any:
        response = lambda_client.invoke(
            FunctionName=function_name, InvocationType="RequestResponse", Payload=json.dumps(event).encode()
        )
        text = response["Payload"].read()
        try:
            answer = json.loads(text) if text else None
        except ValueError:
            answer = text.decode(errors="replace")
        if response.get("FunctionError"):
            detail = answer.get("errorMessage") if isinstance(answer, dict) else answer
            raise FunctionFailed(f"{function_name} failed ({response['FunctionError']}): {detail}")
        return answer

    return invoke


def redrive(
    sqs: Any,
    queue_url: str,
    handler: Callable[[dict[str, Any]], Any],
    *,
    judge: Callable[[Any], bool] = succeeded,
    limit: int = 1000,
    visibility_timeout: int = 300,
    wait_seconds: int = 1,
    dry_run: bool = False,
) -> RedriveReport:
    """Replay up to `limit` messages. A message stays out of sight while it is handled (the
    visibility timeout, longer than a function may run); one seen twice in a run ends it.
    With `dry_run`, nothing is handled or deleted."""
    report = RedriveReport(dry_run=dry_run)
    seen: set[str] = set()
    kept_receipts: list[str] = []
    while report.received < limit:
        answer = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=min(10, limit - report.received),
            VisibilityTimeout=visibility_timeout,
            WaitTimeSeconds=wait_seconds,
            MessageAttributeNames=["All"],
        )
        messages = answer.get("Messages") or []
        if not messages or any(m["MessageId"] in seen for m in messages):
            kept_receipts += [m["ReceiptHandle"] for m in messages]
            break
        for message in messages:
            seen.add(message["MessageId"])
            report.received += 1
            kept = _replay(message, handler, judge, dry_run)
            if kept is None:
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
                report.handled += 1
            else:
                report.kept.append(kept)
                kept_receipts.append(message["ReceiptHandle"])
    for receipt in kept_receipts:
        sqs.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=receipt, VisibilityTimeout=0)
    return report


def _replay(
    message: Mapping[str, Any], handler: Callable[[dict[str, Any]], Any], judge: Callable[[Any], bool], dry_run: bool
) -> Kept | None:
    """None when the message may go; else why it stays."""
    message_id = str(message["MessageId"])
    try:
        event, kind, why = original_event(message)
    except UnreadableMessage as error:
        return Kept(message_id, f"unreadable: {error}")
    if dry_run:
        return Kept(message_id, f"dry run ({kind} dead letter)", why)
    try:
        answer = handler(event)
    except Exception as error:
        return Kept(message_id, f"the handler raised {type(error).__name__}: {error}", why)
    if not judge(answer):
        return Kept(message_id, f"the handler answered {json.dumps(answer, default=str)[:500]}", why)
    return None
