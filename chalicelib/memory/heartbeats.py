"""When trailguard last saw each account and region: the heartbeat's receipts.

The heartbeat (`posture.heartbeat`) tags a canary SSM parameter trailguard owns in every
account and region in scope; CloudTrail records the tag write (`AddTagsToResource`, a
management event every trail records), EventBridge carries it to the rules' handler, and
the handler notes it here instead of answering it (`is_beat`). A beat whose event has not
come back within the grace period means trailguard is blind there.

One document per account and region: `SeenAt`, the time of the last beat whose event
arrived, and `WaitingSince`, the first beat sent since then (None while nothing is awaited).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from chalicelib.events.synthetic import api_call_record

CANARY_TAG = "trailguard:heartbeat"
"""The tag the heartbeat writes on its canary (its value: the beat's time)."""
EVENT_SOURCE = "ssm.amazonaws.com"
EVENT_NAME = "AddTagsToResource"


def canary_name(stage: str) -> str:
    """The canary parameter, one per account and region: `/trailguard/<stage>/heartbeat`."""
    return f"/trailguard/{stage}/heartbeat"


def key(account: str, region: str) -> str:
    return f"heartbeat#{account}#{region}"


def parse_time(value: Any) -> dt.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _text(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def is_beat(record: Mapping[str, Any], canary: str) -> bool:
    """Whether a CloudTrail record is a heartbeat: a successful tag write on the canary
    parameter, with the heartbeat's tag. Who made it is for the caller to check (trailguard's
    own identities): anyone could tag a parameter of that name in an account they control."""
    if record.get("eventSource") != EVENT_SOURCE or record.get("eventName") != EVENT_NAME or record.get("errorCode"):
        return False
    request = record.get("requestParameters")
    if not isinstance(request, Mapping) or request.get("resourceType") != "Parameter":
        return False
    resource = str(request.get("resourceId") or "")
    if resource != canary and resource.rsplit(":parameter", 1)[-1] != canary:
        return False
    tags = request.get("tags")
    return isinstance(tags, list) and any(isinstance(t, Mapping) and t.get("key") == CANARY_TAG for t in tags)


def seen(memory: Any, account: str, region: str, at: dt.datetime) -> None:
    """A beat's event arrived, made at `at`: the account and region are seen up to then."""

    def change(stored: dict[str, Any] | None) -> dict[str, Any] | None:
        document = dict(stored or {})
        last = parse_time(document.get("SeenAt"))
        if last is None or at > last:
            document["SeenAt"] = _text(at)
        waiting = parse_time(document.get("WaitingSince"))
        if waiting is not None and at >= waiting:  # the beat awaited (or a later one) arrived
            document["WaitingSince"] = None
        return document if document != (stored or {}) else None

    memory.amend(key(account, region), change)


def sent(memory: Any, account: str, region: str, at: dt.datetime) -> dict[str, Any]:
    """A beat was sent at `at`: what is awaited since the first unanswered one. Returns the
    document as stored."""

    def change(stored: dict[str, Any] | None) -> dict[str, Any] | None:
        document = dict(stored or {})
        if document.get("WaitingSince"):
            return None
        document["WaitingSince"] = _text(at.replace(microsecond=0))
        return document

    return memory.amend(key(account, region), change) or {}


def state(memory: Any, account: str, region: str) -> dict[str, Any]:
    return dict(memory.recall(key(account, region)) or {})


def blind_since(document: Mapping[str, Any], now: dt.datetime, grace: dt.timedelta) -> dt.datetime | None:
    """Since when the account and region have not been seen, if a beat has waited longer than
    `grace` for its event; None while they are seen (or nothing was sent yet)."""
    waiting = parse_time(document.get("WaitingSince"))
    if waiting is None or now - waiting < grace:
        return None
    return parse_time(document.get("SeenAt")) or waiting


def mark(memory: Any, account: str, region: str, incident: str | None) -> None:
    """Remember the incident that says the account and region are blind (None: resolved)."""

    def change(stored: dict[str, Any] | None) -> dict[str, Any] | None:
        document = dict(stored or {})
        if document.get("Incident") == incident:
            return None
        document["Incident"] = incident
        return document

    memory.amend(key(account, region), change)


def beat_record(account: str, region: str, canary: str, at: dt.datetime, identity: Mapping[str, Any]) -> dict[str, Any]:
    """The CloudTrail record of one beat, as CloudTrail writes SSM's AddTagsToResource
    (requestParameters in the API's own camel case), for the demo, the tests and the benchmark."""
    when = _text(at)
    return api_call_record(
        EVENT_NAME,
        EVENT_SOURCE,
        {"resourceType": "Parameter", "resourceId": canary, "tags": [{"key": CANARY_TAG, "value": when}]},
        identity={**identity, "accountId": account},
        region=region,
        event_time=when,
        recipientAccountId=account,
        userAgent="Boto3/1.44 md/Botocore#1.44 trailguard-heartbeat",
    )


def role_identity(account: str, role: str, session: str) -> dict[str, Any]:
    """The userIdentity of a call made in a session of `role` (what CloudTrail writes)."""
    return {
        "type": "AssumedRole",
        "principalId": f"AROAEXAMPLEHEARTBEAT:{session}",
        "arn": f"arn:aws:sts::{account}:assumed-role/{role}/{session}",
        "accountId": account,
        "sessionContext": {
            "sessionIssuer": {
                "type": "Role",
                "principalId": "AROAEXAMPLEHEARTBEAT",
                "arn": f"arn:aws:iam::{account}:role/{role}",
                "accountId": account,
                "userName": role,
            },
            "attributes": {"creationDate": _text(dt.datetime.now(dt.UTC)), "mfaAuthenticated": "false"},
        },
    }
