"""RDS remediations: take back a DB snapshot shared with everyone or with another account."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chalicelib.actions.base import Action, Parameter, ResourceType, register

DB_SNAPSHOT = ResourceType("DbSnapshot", ("arn:*:rds:*:*:snapshot:*",))
"""An RDS snapshot."""


@register
class RemoveSnapshotShare(Action):
    """Stop sharing a manual DB snapshot with everyone (`all`) or with the accounts named.

    A shared snapshot can be restored, whole, in the other account. Only the values named
    are taken back; other shares stay. Undo shares it again.

    Example:

        steps:
          - action: rds.remove_snapshot_share
            with:
              snapshot: requestParameters.dBSnapshotIdentifier
              values: requestParameters.valuesToAdd
    """

    name = "rds.remove_snapshot_share"
    service = "rds"
    permissions = {
        "rds:DescribeDBSnapshotAttributes": DB_SNAPSHOT,
        "rds:ModifyDBSnapshotAttribute": DB_SNAPSHOT,
    }
    parameters = (
        Parameter("snapshot", "string", "Identifier of the DB snapshot."),
        Parameter(
            "values",
            "array",
            "`all` and/or account ids to take the share back from (default: `all`).",
            required=False,
            default=["all"],
        ),
    )

    def _shared(self) -> list[str]:
        result = self.client.describe_db_snapshot_attributes(DBSnapshotIdentifier=self.params["snapshot"])
        for attribute in result["DBSnapshotAttributesResult"].get("DBSnapshotAttributes", []):
            if attribute["AttributeName"] == "restore":
                return sorted(attribute.get("AttributeValues", []))
        return []

    def _unwanted(self) -> set[str]:
        return {str(value) for value in self.params.get("values") or ["all"]}

    def snapshot(self) -> dict[str, Any]:
        return {"Snapshot": self.params["snapshot"], "SharedWith": self._shared()}

    def check(self, state: Mapping[str, Any]) -> bool:
        return not set(state["SharedWith"]) & self._unwanted()

    def apply(self, state: Mapping[str, Any]) -> None:
        remove = [value for value in state["SharedWith"] if value in self._unwanted()]
        self.client.modify_db_snapshot_attribute(
            DBSnapshotIdentifier=state["Snapshot"], AttributeName="restore", ValuesToRemove=remove
        )

    def restore(self, state: Mapping[str, Any]) -> None:
        add = sorted(set(state["SharedWith"]) - set(self._shared()))
        if add:
            self.client.modify_db_snapshot_attribute(
                DBSnapshotIdentifier=state["Snapshot"], AttributeName="restore", ValuesToAdd=add
            )
