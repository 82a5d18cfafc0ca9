"""CloudTrail records trailguard writes itself, shaped exactly like the ones CloudTrail writes.

The posture sweep turns what it finds into records (`sweep_record`), so that they go
through the same playbooks as a real event, saying plainly that no event was received.
The demo, the tests and the benchmarks make records of calls (`api_call_record`) and the
EventBridge events that carry them (`eventbridge_envelope`, what `CloudTrailEvent.from_eventbridge`
reads).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections.abc import Mapping
from typing import Any

from chalicelib.events.record import CLOUDTRAIL_DETAIL_TYPE, SWEEP_EVENT_TYPE

SWEEPER = "trailguard-sweep"
"""Who the sweep's records name as the caller, and who the history names for its decisions."""


def api_call_record(
    event_name: str,
    source: str,
    request: Mapping[str, Any] | None,
    *,
    identity: Mapping[str, Any],
    region: str,
    response: Mapping[str, Any] | None = None,
    event_time: str | None = None,
    source_ip: str = "203.0.113.7",
    user_agent: str = "aws-cli/2.15.0",
    **fields: Any,
) -> dict[str, Any]:
    """A complete CloudTrail record of a successful write call by `identity` in its account,
    with fresh event and request ids (for the demo, the tests and the benchmarks; `fields`
    set or override any other key)."""
    record: dict[str, Any] = {
        "eventVersion": "1.09",
        "userIdentity": dict(identity),
        "eventTime": event_time or dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": source,
        "eventName": event_name,
        "awsRegion": region,
        "sourceIPAddress": source_ip,
        "userAgent": user_agent,
        "requestParameters": request,
        "responseElements": response,
        "requestID": str(uuid.uuid4()),
        "eventID": str(uuid.uuid4()),
        "readOnly": False,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": identity.get("accountId"),
    }
    record.update(fields)
    return record


def eventbridge_envelope(record: Mapping[str, Any], event_id: str, source: str | None = None) -> dict[str, Any]:
    """The event EventBridge delivers for `record` (for the demo, tests and synthetic events)."""
    return {
        "version": "0",
        "id": event_id,
        "detail-type": CLOUDTRAIL_DETAIL_TYPE,
        "source": source or "aws." + str(record.get("eventSource", "")).split(".")[0],
        "account": record.get("recipientAccountId"),
        "time": record.get("eventTime"),
        "region": record.get("awsRegion"),
        "resources": [],
        "detail": dict(record),
    }


def sweep_record(
    account: str,
    region: str,
    source: str,
    name: str,
    request: dict[str, Any],
    finding: str,
    occurrence: str,
    now: dt.datetime,
) -> dict[str, Any]:
    """A CloudTrail-shaped record of what the sweep found, clearly not from CloudTrail.

    Its eventID is stable for one finding (resource and occurrence), so the next sweep
    finding the same thing opens no second incident.
    """
    digest = hashlib.sha256(f"{account}\n{region}\n{name}\n{occurrence}".encode()).hexdigest()[:32]
    return {
        "eventVersion": "1.08",
        "eventID": f"{SWEEPER}-{digest}",
        "eventTime": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": source,
        "eventName": name,
        "eventType": SWEEP_EVENT_TYPE,
        "awsRegion": region,
        "recipientAccountId": account,
        "readOnly": False,
        "sourceIPAddress": SWEEPER,
        "userAgent": SWEEPER,
        "userIdentity": {"type": "Unknown", "principalId": SWEEPER, "accountId": account, "invokedBy": SWEEPER},
        "requestParameters": request,
        "responseElements": None,
        "additionalEventData": {
            "trailguardSweep": f"no CloudTrail event was received; the posture sweep found {finding}"
        },
    }
