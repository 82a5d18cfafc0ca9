"""Guards: the events trailguard must never act on, whatever a playbook says.

They run before any playbook's conditions: a failed call changed nothing; a read-only
call changes nothing; a call made by trailguard's own roles (in any account) would start
a remediation loop. Duplicates are caught later, when the incident is recorded, because
only the store knows what was already seen.
"""

from __future__ import annotations

from collections.abc import Set as AbstractSet
from dataclasses import dataclass

from chalicelib.events import CloudTrailEvent


@dataclass(frozen=True)
class Skip:
    """Why an event was left alone: a stable code for machines, a sentence for people."""

    code: str
    reason: str


def skip_reason(event: CloudTrailEvent, own_role_names: AbstractSet[str]) -> Skip | None:
    if event.failed:
        return Skip("failed-call", f"the call failed ({event.error_code}), so it changed nothing")
    if event.read_only:
        return Skip("read-only", "the call is read-only, so it changed nothing")
    role = event.actor.role_name
    if role and role in own_role_names:
        return Skip("own-identity", f"the call was made by trailguard's own role {role}")
    return None
