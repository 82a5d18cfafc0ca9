"""`trailguard organization`: the organization's accounts, their names and OU paths, read from
AWS Organizations and written as the settings file's `accounts:`.

Why a mapping in the settings file rather than a lookup at run time: the event does not
carry an account's OU, and asking Organizations (ListParents) from every function would
need a role into the management account, the organization's most sensitive one, for the
runtime, and would meet Organizations' low request rates in a burst. A mapping refreshed by
this command (with an operator's credentials in the management account, or a delegated
administrator) is reviewed like any other change of the settings file, and replay and the
playbooks' tests decide with it exactly as the stage does. An account moved or created
since is seen at the next refresh; until then it has no OU, so `ous:` scopes leave it out
and OU ceilings do not apply to it (the stage's `modes.default` does).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def accounts(organizations: Any) -> dict[str, dict[str, str]]:
    """Every account of the organization: {id: {name, ou (path from the root)}}."""
    found: dict[str, dict[str, str]] = {}
    for root in _pages(organizations, "list_roots", "Roots"):
        for path, parent in _walk(organizations, root["Id"], root["Id"]):
            for account in _pages(organizations, "list_accounts_for_parent", "Accounts", ParentId=parent):
                found[account["Id"]] = {"name": account.get("Name", ""), "ou": path}
    return dict(sorted(found.items()))


def _walk(organizations: Any, path: str, parent: str) -> Iterator[tuple[str, str]]:
    yield path, parent
    for unit in _pages(organizations, "list_organizational_units_for_parent", "OrganizationalUnits", ParentId=parent):
        yield from _walk(organizations, f"{path}/{unit['Id']}", unit["Id"])


def _pages(organizations: Any, operation: str, key: str, **arguments: Any) -> Iterator[dict[str, Any]]:
    for page in organizations.get_paginator(operation).paginate(**arguments):
        yield from page[key]


def as_settings(found: dict[str, dict[str, str]]) -> str:
    """The `accounts:` key of a settings file, ready to paste (or to compare with the file's)."""
    import json

    lines = ["accounts:"]
    for account, entry in found.items():
        name = json.dumps(entry["name"]) if entry["name"] else None
        fields = ", ".join(part for part in (f"name: {name}" if name else "", f"ou: {entry['ou']}") if part)
        lines.append(f"  '{account}': {{{fields}}}")
    return "\n".join(lines) + "\n"
