"""Who may press trailguard's buttons: Slack user ids, and members of Slack user groups.

A playbook may name its own approvers (`slack.approvers`); otherwise the global list
(`TRAILGUARD_SLACK_APPROVERS`) applies. Nobody is an approver until someone is named:
a fresh install refuses every click rather than trusting the whole workspace.

Group members are looked up with `usergroups.users.list` and kept for a minute, so that a
burst of clicks costs one lookup, and someone removed from the group loses the right
within a minute.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any


class ApproverLookupFailed(Exception):
    """A user group's members could not be read; the click is refused, not guessed."""


class Approvers:
    def __init__(
        self,
        default: frozenset[str],
        per_playbook: Mapping[str, tuple[str, ...]],
        group_members: Callable[[str], list[str]],
        *,
        cache_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`group_members(group_id)` returns the ids of a user group's members."""
        self.default = frozenset(default)
        self.per_playbook = {playbook: frozenset(ids) for playbook, ids in per_playbook.items() if ids}
        self.group_members = group_members
        self.cache_seconds = cache_seconds
        self.clock = clock
        self._groups: dict[str, tuple[float, frozenset[str]]] = {}

    def of(self, playbook_id: str) -> frozenset[str]:
        return self.per_playbook.get(playbook_id, self.default)

    def allows(self, user_id: str, playbook_id: str) -> bool:
        approvers = self.of(playbook_id)
        if user_id in approvers:
            return True
        return any(user_id in self._members(group) for group in sorted(approvers) if group.startswith("S"))

    def _members(self, group: str) -> frozenset[str]:
        now = self.clock()
        cached = self._groups.get(group)
        if cached is not None and now - cached[0] < self.cache_seconds:
            return cached[1]
        try:
            members = frozenset(self.group_members(group))
        except Exception as error:
            raise ApproverLookupFailed(f"could not read the members of user group {group}: {error}") from None
        self._groups[group] = (now, members)
        return members


def slack_group_members(web: Callable[[], Any]) -> Callable[[str], list[str]]:
    """`group_members` through the Slack Web API (scope usergroups:read); `web()` gives the
    client, made on the first lookup."""

    def members(group: str) -> list[str]:
        return list(web().usergroups_users_list(usergroup=group)["users"])

    return members
