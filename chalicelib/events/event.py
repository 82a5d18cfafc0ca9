"""Any event the decision path answers: a CloudTrail record (`record.CloudTrailEvent`) or a
detector's verdict (`finding.Finding`), told apart by the envelope's `detail-type`, or, for a
bare record (a log file, a playbook's test), by the fields only one of them has.

Both models answer the same questions (an id for duplicates, what it is, when, where, about
whom, the summary an incident keeps), so guards, playbooks, the responder and messages take
an `Event` and need not know which it is.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chalicelib.events.finding import DETAIL_TYPES, GUARDDUTY, INSIGHTS, SECURITY_HUB, Finding
from chalicelib.events.record import CloudTrailEvent

Event = CloudTrailEvent | Finding


def from_eventbridge(envelope: Any, where: str | None = None) -> Event:
    """An EventBridge event: a finding by its detail-type, else a CloudTrail API call (whose
    model refuses anything else, saying what it expected)."""
    if isinstance(envelope, dict) and envelope.get("detail-type") in DETAIL_TYPES:
        return Finding.from_eventbridge(envelope, where)
    return CloudTrailEvent.from_eventbridge(envelope, where)


def finding_kind(record: Any) -> str | None:
    """Which detector wrote a bare record, None for a CloudTrail record (or anything else)."""
    if not isinstance(record, Mapping):
        return None
    if record.get("eventType") == "AwsCloudTrailInsight":
        return INSIGHTS
    if "ProductArn" in record and "AwsAccountId" in record:
        return SECURITY_HUB
    if "eventSource" not in record and "type" in record and "accountId" in record and "severity" in record:
        return GUARDDUTY
    return None


def from_any(data: Any, where: str | None = None) -> Event:
    """An EventBridge envelope, a bare finding, or a bare CloudTrail record, whichever `data` is."""
    if isinstance(data, dict) and "detail-type" in data:
        return from_eventbridge(data, where)
    kind = finding_kind(data)
    if kind is not None:
        return Finding.from_record(kind, data, where)
    return CloudTrailEvent.from_record(data, where)
