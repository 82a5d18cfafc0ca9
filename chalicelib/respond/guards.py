"""Guards: the events trailguard must never act on, whatever a playbook says.

They run before any playbook's conditions: a failed call changed nothing; a read-only
call changes nothing; a call made by trailguard's own roles would start a remediation
loop. Duplicates are caught later, when the incident is recorded, because only the store
knows what was already seen.

"Our own role" is decided on what AWS asserts about the caller, never on a name alone:
any member-account administrator can create a role called `trailguard-dev-api_handler`,
and calls made through it are an attacker's. So:

- a function role of the stage is ours only in the central account (where trailguard runs);
- the member role is ours only in the account the call touched (it is assumed there), and,
  where trailguard keeps the request ids of the calls it made (`OwnCalls`), only for those
  calls: an administrator who rewrites the member role's trust and uses it themselves is
  answered like anyone else.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from chalicelib.aws.clients import MEMBER_SESSION_NAME
from chalicelib.events.event import Event
from chalicelib.events.finding import Finding
from chalicelib.playbooks.catalog import Catalog
from chalicelib.settings import Settings

_ROLE_ARN = re.compile(r"arn:aws[a-z-]*:iam::(\d{12}):role/(?:[^\s]*/)?([\w+=,.@-]+)")
_SESSION_ARN = re.compile(r"arn:aws[a-z-]*:sts::(\d{12}):assumed-role/([\w+=,.@-]+)/[^\s]+")


class OwnCalls(Protocol):
    """The request ids of the write calls trailguard made in member accounts (see `aws.own_calls`)."""

    def made(self, request_id: str) -> bool: ...


@dataclass(frozen=True)
class Skip:
    """Why an event is ignored before any playbook sees it."""

    code: str
    reason: str


@dataclass(frozen=True)
class OwnIdentities:
    """trailguard's roles, each bound to the account it lives in.

    - `central_roles`: the function roles of the stage, ours only in `central_account`. With
      no central account known, none is ours.
    - `member_role`: the role trailguard assumes in each member account, ours only in the
      account the call touched, in a session named `MEMBER_SESSION_NAME`, and, when
      `own_calls` is given, only for a request id trailguard recorded.
    """

    central_account: str | None = None
    central_roles: frozenset[str] = frozenset()
    member_role: str | None = None
    own_calls: OwnCalls | None = None

    @classmethod
    def of(
        cls,
        settings: Settings,
        central_account: str | None = None,
        extra_roles: Iterable[str] = (),
        *,
        own_calls: OwnCalls | None = None,
    ) -> OwnIdentities:
        """trailguard's roles as the settings name them: the account found at run time wins over
        TRAILGUARD_CENTRAL_ACCOUNT; `own_calls`, where kept, narrows the member role to the
        calls trailguard made."""
        return cls(
            central_account=central_account or settings.central_account,
            central_roles=settings.own_role_names | frozenset(extra_roles),
            member_role=settings.member_role,
            own_calls=own_calls,
        )

    def made(self, event: Event) -> str | None:
        """The role (as `account:role/name`) if trailguard itself made the call, else None."""
        found = _role_of(event)
        if found is None:
            return None
        account, name = found
        if account == self.central_account and name in self.central_roles:
            return f"{account}:role/{name}"
        if (
            name == self.member_role
            and account == event.account
            and event.actor.session_name == MEMBER_SESSION_NAME
            and (self.own_calls is None or self._recorded(event))
        ):
            return f"{account}:role/{name}"
        return None

    def _recorded(self, event: Event) -> bool:
        request_id = event.record.get("requestID") if not isinstance(event, Finding) else None
        return (
            isinstance(request_id, str)
            and bool(request_id)
            and self.own_calls is not None
            and (self.own_calls.made(request_id))
        )


def stage_roles(settings: Settings, catalog: Catalog) -> list[str]:
    """Every role the settings' stage creates in the central account (its functions', named
    as Chalice names them, and the member template's), none without a stage."""
    stage = settings.stage_names
    if stage is None:
        return []
    from chalicelib.respond.handler import eventbridge_rules

    return stage.central_roles([rule.name for rule in eventbridge_rules(catalog)], settings.member_role)


def _role_of(event: Event) -> tuple[str, str] | None:
    """(account, role name) of an assumed-role caller, from the ARNs AWS wrote.

    The session issuer's ARN names the role with its path; the session ARN names it too.
    Where both are present they must agree; `accountId` must agree with them.
    """
    actor = event.actor
    places: list[tuple[str, str]] = []
    for pattern, arn in ((_ROLE_ARN, actor.role_arn), (_SESSION_ARN, actor.arn)):
        if arn is None:
            continue
        matched = pattern.fullmatch(arn)
        if matched is None:
            return None
        places.append((matched.group(1), matched.group(2)))
    if not places or any(place != places[0] for place in places):
        return None
    account, name = places[0]
    if actor.account is not None and actor.account != account:
        return None
    return account, name


def skip_reason(event: Event, own: OwnIdentities) -> Skip | None:
    if isinstance(event, Finding):
        return _finding_skip(event, own)
    if event.failed:
        return Skip("failed-call", f"the call failed ({event.error_code}), so it changed nothing")
    if event.read_only:
        return Skip("read-only", "the call is read-only, so it changed nothing")
    role = own.made(event)
    if role is not None:
        return Skip("own-identity", f"the call was made by trailguard's own role {role}")
    return None


def _finding_skip(finding: Finding, own: OwnIdentities) -> Skip | None:
    """A detector's verdict is not answered when the detector says there is nothing to answer
    (a sample, an archived or resolved finding, the end of an unusual period), nor when it is
    about trailguard's own role: trailguard never contains itself."""
    quiet = finding.quiet
    if quiet is not None:
        return Skip("quiet-finding", quiet)
    role = own.made(finding)
    if role is not None:
        return Skip("own-identity", f"the finding is about trailguard's own role {role}")
    return None
