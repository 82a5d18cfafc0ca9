"""Which accounts and regions the scheduled checks (the heartbeat, the organization-wide
sweep) look at: those the organization settings file puts in scope.

The accounts are those the settings file lists (`accounts:` and `scope.accounts`); a file
that lists none means the whole organization, read from AWS Organizations when trailguard's
role may (else only trailguard's own account, said in the report). The regions are the
stage's sweep regions (`TRAILGUARD_SWEEP_REGIONS`, else the functions' own). Then the
settings' scope takes out what it excludes, by account, OU and region.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable

from chalicelib.aws.errors import describe_error
from chalicelib.organization.model import Organization


def accounts(organization: Organization, listed: Iterable[str], home: str) -> list[str]:
    """The accounts in scope: the settings' (or `listed`, AWS Organizations' active accounts,
    when the settings name none), home first, without those the scope excludes."""
    named = {*organization.accounts, *organization.scope.accounts}
    candidates = sorted(named or {*listed, home}, key=lambda account: (account != home, account))
    where = dataclasses.replace(
        organization.scope,
        principals=frozenset(),
        exclude_principals=frozenset(),
        regions=frozenset(),
        exclude_regions=frozenset(),
    )
    now = dt.datetime.now(dt.UTC)
    return [a for a in candidates if where.outside(organization.caller(a, "", (), now)) is None]


def regions(organization: Organization, configured: Iterable[str], home: str) -> list[str]:
    """The regions in scope: the configured ones (else home), as the settings' scope allows."""
    where = organization.scope
    chosen = set(configured) or {home}
    if where.regions:
        chosen &= set(where.regions)
    return sorted(chosen - set(where.exclude_regions))


def organization_accounts(client_for: object) -> tuple[list[str], str | None]:
    """AWS Organizations' active accounts, or ([], why not) when they cannot be listed."""
    try:
        client = client_for("organizations")  # type: ignore[operator]
        found = []
        for page in client.get_paginator("list_accounts").paginate():
            found += [a["Id"] for a in page["Accounts"] if a.get("Status", "ACTIVE") == "ACTIVE"]
        return found, None
    except Exception as error:
        return (
            [],
            f"cannot list the organization's accounts ({describe_error(error)}): only trailguard's own is looked at",
        )
