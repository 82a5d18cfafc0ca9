"""A planned step, bound to what it acts with: the action's class, a client in the event's
account and region, and trailguard's memory of last known configurations."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chalicelib.actions.base import NOTHING_PROTECTED, Action, ActionContext, Protected, registered_actions
from chalicelib.aws.clients import ClientProvider


class ActionBinder:
    """Binds a planned step to a client in the event's account and region."""

    def __init__(self, clients: ClientProvider, memory: Any = None, protected: Protected = NOTHING_PROTECTED) -> None:
        """`protected`: the principals containment refuses to act on (trailguard's own, break-glass)."""
        self.clients = clients
        self.memory = memory
        self.protected = protected

    def bind(
        self,
        action: str,
        params: Mapping[str, Any],
        *,
        account: str | None,
        region: str,
        remembered: dict[str, Any] | None = None,
        incident_id: str | None = None,
    ) -> Action:
        """The action named `action`, with its parameters, ready to act in `account` and
        `region`; `remembered`: the configuration recalled for its step when the incident opened."""
        action_class = registered_actions()[action]
        client = self.clients.client(action_class.service, account, region) if action_class.service else None
        context = ActionContext(
            account,
            region,
            self.memory,
            remembered,
            incident_id,
            lambda service: self.clients.client(service, account, region),
            self.protected,
        )
        return action_class(client, params, context)
