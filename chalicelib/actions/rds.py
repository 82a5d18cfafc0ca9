"""RDS remediations: take back a DB snapshot or DB cluster snapshot shared with everyone or with another account."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chalicelib.actions.base import Action, Parameter, ResourceType, register

DB_SNAPSHOT = ResourceType("DbSnapshot", ("arn:*:rds:*:*:snapshot:*",))
"""An RDS snapshot."""
DB_CLUSTER_SNAPSHOT = ResourceType("DbClusterSnapshot", ("arn:*:rds:*:*:cluster-snapshot:*",))
"""An RDS cluster snapshot (Aurora, Neptune, DocumentDB)."""


_VALUES = Parameter(
    "values",
    "array",
    "`all` and/or account ids to take the share back from (default: `all`).",
    required=False,
    default=["all"],
)


class _RestoreShares(Action):
    """Shared by DB snapshots and DB cluster snapshots: the same `restore` attribute, two APIs."""

    def _attributes(self) -> list[dict[str, Any]]:
        raise NotImplementedError

    def _modify(self, **change: list[str]) -> None:
        raise NotImplementedError

    def _shared(self) -> list[str]:
        for attribute in self._attributes():
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
        self._modify(ValuesToRemove=[value for value in state["SharedWith"] if value in self._unwanted()])

    def restore(self, state: Mapping[str, Any]) -> None:
        add = sorted(set(state["SharedWith"]) - set(self._shared()))
        if add:
            self._modify(ValuesToAdd=add)


@register
class RemoveSnapshotShare(_RestoreShares):
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
    parameters = (Parameter("snapshot", "string", "Identifier of the DB snapshot."), _VALUES)

    def _attributes(self) -> list[dict[str, Any]]:
        result = self.client.describe_db_snapshot_attributes(DBSnapshotIdentifier=self.params["snapshot"])
        attributes: list[dict[str, Any]] = result["DBSnapshotAttributesResult"].get("DBSnapshotAttributes", [])
        return attributes

    def _modify(self, **change: list[str]) -> None:
        self.client.modify_db_snapshot_attribute(
            DBSnapshotIdentifier=self.params["snapshot"], AttributeName="restore", **change
        )


@register
class RemoveClusterSnapshotShare(_RestoreShares):
    """Stop sharing a manual DB cluster snapshot (Aurora, Neptune, DocumentDB) with everyone
    (`all`) or with the accounts named.

    The same share as a DB snapshot's, through ModifyDBClusterSnapshotAttribute: the whole
    cluster can be restored in the other account. Only the values named are taken back;
    other shares stay. Undo shares it again.

    Example:

        steps:
          - action: rds.remove_cluster_snapshot_share
            with:
              snapshot: requestParameters.dBClusterSnapshotIdentifier
              values: requestParameters.valuesToAdd
    """

    name = "rds.remove_cluster_snapshot_share"
    service = "rds"
    permissions = {
        "rds:DescribeDBClusterSnapshotAttributes": DB_CLUSTER_SNAPSHOT,
        "rds:ModifyDBClusterSnapshotAttribute": DB_CLUSTER_SNAPSHOT,
    }
    parameters = (Parameter("snapshot", "string", "Identifier of the DB cluster snapshot."), _VALUES)

    def _attributes(self) -> list[dict[str, Any]]:
        result = self.client.describe_db_cluster_snapshot_attributes(
            DBClusterSnapshotIdentifier=self.params["snapshot"]
        )
        attributes: list[dict[str, Any]] = result["DBClusterSnapshotAttributesResult"].get(
            "DBClusterSnapshotAttributes", []
        )
        return attributes

    def _modify(self, **change: list[str]) -> None:
        self.client.modify_db_cluster_snapshot_attribute(
            DBClusterSnapshotIdentifier=self.params["snapshot"], AttributeName="restore", **change
        )
