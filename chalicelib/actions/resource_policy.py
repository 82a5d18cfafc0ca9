"""What the actions that close a public resource policy share: read the policy, take out the
statements anyone may use (as `public_statements()` judges, with the trusted accounts and
organizations the playbook's condition used), keep every other statement as written, and
put back the policy exactly on undo.

A service's module declares the client calls; this module registers no action itself.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from chalicelib.actions.base import Action, ActionError, trusted_by
from chalicelib.aws.resource_policies import open_to_everyone


class PublicStatementsRemoval(Action):
    """Shared by the actions that remove a resource policy's public statements."""

    resource_param: str
    """The parameter that names the resource (a queue URL, a topic ARN...)."""
    can_delete = True
    """Whether the policy can be deleted when no statement is left (SNS's cannot: a topic
    always has one, so removing every statement is refused and left to a person)."""

    def _get(self) -> str | None:
        raise NotImplementedError

    def _put(self, policy: str) -> None:
        raise NotImplementedError

    def _delete(self) -> None:
        raise NotImplementedError

    def _public(self, policy: Any) -> list[Any]:
        return open_to_everyone(policy, trusted_by(self))

    def snapshot(self) -> dict[str, Any]:
        return {"Resource": self.params[self.resource_param], "Policy": self._get()}

    def check(self, state: Mapping[str, Any]) -> bool:
        return not state["Policy"] or not self._public(state["Policy"])

    def apply(self, state: Mapping[str, Any]) -> None:
        document = json.loads(state["Policy"])
        public = self._public(document)
        statements = document.get("Statement")
        kept = [s for s in (statements if isinstance(statements, list) else [statements]) if s not in public]
        if kept:
            self._put(json.dumps({**document, "Statement": kept}))
        elif self.can_delete:
            self._delete()
        else:
            raise ActionError(f"every statement of the policy of {state['Resource']} is public: fix it by hand")

    def restore(self, state: Mapping[str, Any]) -> None:
        if state["Policy"]:
            self._put(state["Policy"])
        else:
            self._delete()
