"""The organization settings, loaded: what each part says about one event.

Everything here is a pure function of the settings and the event (its account, the OU path
the settings give that account, its region, who made the call as AWS asserts it, its
time): the decision path (`respond.controls`) combines them with what only the running
stage can know (the kill switch, exceptions, a resource's tags).

Each answer names the rule that gave it (`scope.exclude_accounts`, `modes.ous.ou-ab12-…`),
so an incident, a replay row or a playbook test says why.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chalicelib.named_lists import BREAK_GLASS_ROLES, NO_LISTS, NamedLists
from chalicelib.organization.baseline import DEFAULT as DEFAULT_BASELINE
from chalicelib.organization.baseline import Baseline

MODE_RANK = {"dry-run": 0, "notify": 1, "approve": 2, "auto": 3}
"""How far each mode goes: a ceiling lowers a mode to its own, never raises it."""

DEFAULT_EXCEPTION_DAYS = 30
EXEMPT_TAG = "trailguard:exempt"
"""The tag a resource opts out with (when `opt_out.by_tag` is on), with a reason in EXEMPT_REASON_TAG."""
EXEMPT_REASON_TAG = "trailguard:exempt-reason"


@dataclass(frozen=True)
class Caller:
    """What scope and ceilings read of an event: where it acted, and who made the call, as
    AWS asserts it (the role's ARN for an assumed role, else the user's or root's ARN)."""

    account: str | None
    region: str
    principals: frozenset[str]
    ou_path: tuple[str, ...] | None
    """The account's OUs from the root (None: the settings do not say)."""
    at: dt.datetime


@dataclass(frozen=True)
class Where:
    """A scope: only and never these accounts, OUs, regions, principals (and, for one
    playbook, resource tags). `at` names it in messages (`scope`, `scope.playbooks.ID`)."""

    at: str = "scope"
    accounts: frozenset[str] = frozenset()
    exclude_accounts: frozenset[str] = frozenset()
    ous: frozenset[str] = frozenset()
    exclude_ous: frozenset[str] = frozenset()
    regions: frozenset[str] = frozenset()
    exclude_regions: frozenset[str] = frozenset()
    principals: frozenset[str] = frozenset()
    exclude_principals: frozenset[str] = frozenset()
    tags: Mapping[str, str] = field(default_factory=dict)
    exclude_tags: Mapping[str, str] = field(default_factory=dict)

    @property
    def reads_tags(self) -> bool:
        return bool(self.tags or self.exclude_tags)

    def outside(self, caller: Caller) -> str | None:
        """Why the call is outside this scope (the rule, and what it found), or None."""
        account = caller.account or "(unknown account)"
        if self.accounts and caller.account not in self.accounts:
            return f"{self.at}.accounts does not list account {account}"
        if caller.account in self.exclude_accounts:
            return f"{self.at}.exclude_accounts lists account {account}"
        if self.ous:
            if caller.ou_path is None:
                return f"{self.at}.ous: the OU of account {account} is not in the settings' accounts"
            if not self.ous & set(caller.ou_path):
                return f"{self.at}.ous: account {account} is in none of them ({'/'.join(caller.ou_path)})"
        found = sorted(self.exclude_ous & set(caller.ou_path or ()))
        if found:
            return f"{self.at}.exclude_ous lists {found[0]}, which account {account} is in"
        if self.regions and caller.region not in self.regions:
            return f"{self.at}.regions does not list {caller.region}"
        if caller.region in self.exclude_regions:
            return f"{self.at}.exclude_regions lists {caller.region}"
        if self.principals and not self.principals & caller.principals:
            return f"{self.at}.principals does not list the caller"
        excluded = sorted(self.exclude_principals & caller.principals)
        if excluded:
            return f"{self.at}.exclude_principals lists {excluded[0]}"
        return None

    def outside_by_tags(self, tags: Mapping[str, str]) -> str | None:
        """Why a resource carrying `tags` is outside this scope, or None."""
        missing = [f"{key}={value}" for key, value in sorted(self.tags.items()) if tags.get(key) != value]
        if missing:
            return f"{self.at}.tags: the resource does not carry {missing[0]}"
        carried = [f"{key}={value}" for key, value in sorted(self.exclude_tags.items()) if tags.get(key) == value]
        if carried:
            return f"{self.at}.exclude_tags: the resource carries {carried[0]}"
        return None


EVERYWHERE = Where()


@dataclass(frozen=True)
class Ceiling:
    """The most a playbook may do here, and the rule that says so."""

    mode: str
    rule: str


@dataclass(frozen=True)
class Modes:
    default: str = "auto"
    ous: Mapping[str, str] = field(default_factory=dict)
    accounts: Mapping[str, str] = field(default_factory=dict)
    playbooks: Mapping[str, str] = field(default_factory=dict)
    dry_run_until: dt.datetime | None = None
    break_glass: str = "notify"

    def ceilings(self, playbook_id: str, caller: Caller, break_glass: bool) -> list[Ceiling]:
        """Every ceiling that applies to the call, most specific place first: the account's,
        else the deepest OU's of its path, else the stage's; then the playbook's, the
        dry-run week's and break-glass's."""
        found: list[Ceiling]
        if caller.account is not None and caller.account in self.accounts:
            found = [Ceiling(self.accounts[caller.account], f"modes.accounts.{caller.account}")]
        else:
            ou = next((ou for ou in reversed(caller.ou_path or ()) if ou in self.ous), None)
            found = [Ceiling(self.ous[ou], f"modes.ous.{ou}")] if ou else [Ceiling(self.default, "modes.default")]
        if playbook_id in self.playbooks:
            found.append(Ceiling(self.playbooks[playbook_id], f"modes.playbooks.{playbook_id}"))
        if self.dry_run_until is not None and caller.at < self.dry_run_until:
            found.append(Ceiling("dry-run", f"modes.dry_run_until ({self.dry_run_until:%Y-%m-%d %H:%M} UTC)"))
        if break_glass:
            found.append(Ceiling(self.break_glass, "modes.break_glass (the call was made by a break-glass role)"))
        return found


@dataclass(frozen=True)
class Account:
    name: str | None = None
    ou_path: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Organization:
    """One stage's settings file, loaded (`organization.loader`); the defaults are a stage
    without one: every account and region, the playbooks' own modes, no extension."""

    path: Path | None = None
    lists: NamedLists = NO_LISTS
    accounts: Mapping[str, Account] = field(default_factory=dict)
    scope: Where = EVERYWHERE
    playbook_scopes: Mapping[str, Where] = field(default_factory=dict)
    modes: Modes = Modes()
    playbook_folders: tuple[Path, ...] = ()
    disabled: tuple[str, ...] = ()
    action_modules: tuple[str, ...] = ()
    opt_out_by_tag: bool = False
    opt_out_never: frozenset[str] = frozenset()
    exception_days: int = DEFAULT_EXCEPTION_DAYS
    exceptions_never: frozenset[str] = frozenset()
    baseline: Baseline = DEFAULT_BASELINE
    """What every trail must be (`baseline:`), checked by `trailguard baseline` and the sweep."""
    document: Any = field(default=None, compare=False, repr=False)
    """The file as read (its lines kept), for mistakes found later (a playbook id, a module)."""

    @property
    def where(self) -> str:
        return str(self.path) if self.path else "(no organization settings file)"

    def caller(self, account: str | None, region: str, principals: Iterable[str | None], at: dt.datetime) -> Caller:
        known = self.accounts.get(account or "")
        return Caller(account, region, frozenset(p for p in principals if p), known.ou_path if known else None, at)

    def break_glass(self, caller: Caller) -> bool:
        return bool(caller.principals & set(self.lists.get(BREAK_GLASS_ROLES)))

    def playbook_scope(self, playbook_id: str) -> Where:
        return self.playbook_scopes.get(playbook_id, EVERYWHERE)

    def account_names(self) -> dict[str, str]:
        """The accounts' names the settings give, for messages."""
        return {account: known.name for account, known in self.accounts.items() if known.name}


NO_ORGANIZATION = Organization()
