"""The organization's named lists, which playbooks refer to by name: `named_list('trusted_accounts')`.

Who "we" are (the organization's AWS accounts and AWS Organizations) is configuration, not
something every playbook copies: a policy is restricted only when it is pinned to these
values, and a stranger's account id in a condition restricts nothing. Likewise who may do
what without trailguard objecting (trusted principals, break-glass and pipeline roles) is
a list of the ARNs AWS asserts for the caller, never a name the caller chooses (a session
name). The lists come from the stage's organization settings file (`lists:`, see
`chalicelib.organization`); a playbook's inline test and `replay` give their own.
`trusted_accounts` always holds the account of the event being judged, so that a resource
trusting its own account is never "external".

A name a playbook uses must be one of `LISTS`, checked when the playbook is loaded.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

TRUSTED_ACCOUNTS = "trusted_accounts"
TRUSTED_ORGANIZATIONS = "trusted_organizations"
TRUSTED_PRINCIPALS = "trusted_principals"
BREAK_GLASS_ROLES = "break_glass_roles"
PIPELINE_ROLES = "pipeline_roles"
TRAIL_BUCKETS = "trail_buckets"
TRAIL_KEYS = "trail_keys"
TRAIL_LOG_GROUPS = "trail_log_groups"
TRAIL_ROLES = "trail_roles"
DATA_EVENT_BUCKETS = "data_event_buckets"
AUDIT_CHAIN = (TRAIL_BUCKETS, TRAIL_KEYS, TRAIL_LOG_GROUPS, TRAIL_ROLES)
"""The lists that name what trails depend on (the audit chain): besides what the settings
file gives, trailguard adds what it remembers of every trail it saw (`memory.chain`)."""

_ROLE_ARN = r"arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]{1,512}"
_BUCKET = r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]"
_PRINCIPAL_ARN = r"arn:aws[a-z-]*:iam::[0-9]{12}:(root|(role|user)/[A-Za-z0-9+=,.@_/-]{1,512})"


@dataclass(frozen=True)
class ListKind:
    """What a named list holds: its meaning, and the form of every value in it."""

    meaning: str
    pattern: re.Pattern[str]
    expected: str


LISTS: Mapping[str, ListKind] = {
    TRUSTED_ACCOUNTS: ListKind(
        "the organization's AWS account ids, and always the event's own account",
        re.compile(r"[0-9]{12}"),
        "12-digit AWS account ids, such as 111122223333",
    ),
    TRUSTED_ORGANIZATIONS: ListKind(
        "the organization's AWS Organizations ids",
        re.compile(r"o-[a-z0-9]{10,32}"),
        "AWS Organizations ids, such as o-a1b2c3d4e5",
    ),
    TRUSTED_PRINCIPALS: ListKind(
        "IAM roles and users (their ARNs) whose calls playbooks may leave alone",
        re.compile(_PRINCIPAL_ARN),
        "role or user ARNs, such as arn:aws:iam::111122223333:role/platform-admin",
    ),
    BREAK_GLASS_ROLES: ListKind(
        "the roles people assume in an emergency (their ARNs): trailguard tells, and does not fight them",
        re.compile(_ROLE_ARN),
        "role ARNs (what CloudTrail's sessionIssuer.arn holds), such as arn:aws:iam::111122223333:role/break-glass",
    ),
    PIPELINE_ROLES: ListKind(
        "the roles deployment pipelines use (their ARNs)",
        re.compile(_ROLE_ARN),
        "role ARNs (what CloudTrail's sessionIssuer.arn holds), such as arn:aws:iam::111122223333:role/deploy",
    ),
    TRAIL_BUCKETS: ListKind(
        "the S3 buckets trails deliver their log files to (besides those of the trails trailguard saw)",
        re.compile(_BUCKET),
        "bucket names, such as org-trail-logs",
    ),
    TRAIL_KEYS: ListKind(
        "the KMS keys trails encrypt their log files with (their ARNs; besides those of the trails trailguard saw)",
        re.compile(r"arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[A-Za-z0-9-]{1,128}"),
        "key ARNs, such as arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    ),
    TRAIL_LOG_GROUPS: ListKind(
        "the CloudWatch Logs groups trails deliver to (their ARNs without ':*'; besides those of the trails seen)",
        re.compile(r"arn:aws[a-z-]*:logs:[a-z0-9-]+:[0-9]{12}:log-group:[A-Za-z0-9_./#-]{1,512}"),
        "log group ARNs, such as arn:aws:logs:us-east-1:111122223333:log-group:org-trail",
    ),
    TRAIL_ROLES: ListKind(
        "the roles trails deliver to CloudWatch Logs with (their ARNs; besides those of the trails seen)",
        re.compile(_ROLE_ARN),
        "role ARNs, such as arn:aws:iam::111122223333:role/CloudTrail_CloudWatchLogs_Role",
    ),
    DATA_EVENT_BUCKETS: ListKind(
        "the S3 buckets whose data events (object reads and writes) the trails must keep recording",
        re.compile(_BUCKET),
        "bucket names, such as payments-exports",
    ),
}


def problem(name: str, items: Iterable[Any]) -> str | None:
    """What is wrong with a list named `name` holding `items` ("has '1234'; expected ..."), or None."""
    kind = LISTS.get(name)
    if kind is None:
        return f"no list is named {name!r}; known lists: {', '.join(sorted(LISTS))}"
    wrong = [item for item in items if not isinstance(item, str) or not kind.pattern.fullmatch(item)]
    if wrong:
        return f"has {', '.join(repr(item) for item in wrong[:5])}; expected {kind.expected}"
    return None


def is_account_id(value: Any) -> bool:
    return isinstance(value, str) and LISTS[TRUSTED_ACCOUNTS].pattern.fullmatch(value) is not None


@dataclass(frozen=True)
class NamedLists:
    """The values of each named list; a list not given is empty."""

    values: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def of(cls, values: Mapping[str, Iterable[str]]) -> NamedLists:
        """Lists whose names and values `problem` found nothing wrong with."""
        return cls({name: tuple(dict.fromkeys(items)) for name, items in values.items()})

    def get(self, name: str) -> list[str]:
        return list(self.values.get(name, ()))

    def for_account(self, account: str | None) -> NamedLists:
        """These lists as one event sees them: its own account is always trusted."""
        if not is_account_id(account) or account in self.values.get(TRUSTED_ACCOUNTS, ()):
            return self
        assert account is not None
        return NamedLists({**self.values, TRUSTED_ACCOUNTS: (*self.values.get(TRUSTED_ACCOUNTS, ()), account)})


NO_LISTS = NamedLists()


def named_list(lists: NamedLists, name: str) -> list[str]:
    """The organization's list `name`, written as a literal: `named_list('trusted_accounts')`
    (and always the event's own account), `named_list('trusted_organizations')`,
    `named_list('trusted_principals')`, `named_list('break_glass_roles')`,
    `named_list('pipeline_roles')`, `named_list('data_event_buckets')`, and the audit chain's
    `named_list('trail_buckets')`, `trail_keys`, `trail_log_groups`, `trail_roles` (with
    what trailguard remembers of the trails it saw), as the stage's settings file (`lists:`) gives them. A
    playbook's test sets them with `named_lists:`; an unknown name is refused when the
    playbook is loaded.
    """
    return lists.get(name)
