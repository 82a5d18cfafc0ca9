"""VPC flow logs: read their configuration, remember it, and re-create one from it.

DeleteFlowLogs leaves nothing to restore from, so trailguard remembers each flow log it
sees (on CreateFlowLogs events and in the sweep) in its store, like trails, as far as
`rules` allow.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chalicelib.memory import rules

CONFIGURATION_EVENTS = {"ec2.amazonaws.com": ("CreateFlowLogs",)}

_FIELDS = (
    "ResourceId",
    "TrafficType",
    "LogDestinationType",
    "LogDestination",
    "LogGroupName",
    "DeliverLogsPermissionArn",
    "LogFormat",
    "MaxAggregationInterval",
    "DestinationOptions",
)


def memory_key(account: str, region: str, flow_log_id: str) -> str:
    return f"flow-log#{account}#{region}#{flow_log_id}"


def _config(flow_log: Mapping[str, Any]) -> dict[str, Any]:
    config = {field: flow_log[field] for field in _FIELDS if flow_log.get(field) not in (None, "")}
    if flow_log.get("Tags"):
        config["Tags"] = flow_log["Tags"]
    return config


def identity(config: Mapping[str, Any]) -> tuple[Any, ...]:
    """What makes two flow logs the same (their ids differ once one is re-created)."""
    return tuple(
        str(config.get(field))
        for field in ("ResourceId", "TrafficType", "LogDestinationType", "LogDestination", "LogGroupName")
    )


def describe_all(client: Any, ids: list[str] | None = None) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    kwargs = {"FlowLogIds": ids} if ids else {}
    for page in client.get_paginator("describe_flow_logs").paginate(**kwargs):
        for flow_log in page["FlowLogs"]:
            found[flow_log["FlowLogId"]] = _config(flow_log)
    return found


def _resource_type(resource_id: str) -> str:
    prefix = resource_id.split("-", 1)[0]
    return {"vpc": "VPC", "subnet": "Subnet", "eni": "NetworkInterface", "tgw": "TransitGateway"}.get(prefix, "VPC")


def create(client: Any, config: Mapping[str, Any]) -> str:
    parameters: dict[str, Any] = {
        "ResourceIds": [config["ResourceId"]],
        "ResourceType": _resource_type(config["ResourceId"]),
        "TrafficType": config.get("TrafficType", "ALL"),
    }
    for field in (
        "LogDestinationType",
        "LogDestination",
        "LogGroupName",
        "DeliverLogsPermissionArn",
        "LogFormat",
        "MaxAggregationInterval",
        "DestinationOptions",
    ):
        if field in config:
            parameters[field] = config[field]
    if config.get("Tags"):
        parameters["TagSpecifications"] = [{"ResourceType": "vpc-flow-log", "Tags": config["Tags"]}]
    response = client.create_flow_logs(**parameters)
    if response.get("Unsuccessful"):
        raise RuntimeError(f"CreateFlowLogs failed: {response['Unsuccessful']}")
    return str(response["FlowLogIds"][0])


def _offer(
    store: rules.Memory, flow_logs: Mapping[str, dict[str, Any]], account: str, region: str, judged: bool
) -> list[rules.Offer]:
    return [
        rules.offer(
            store, memory_key(account, region, flow_log_id), config, settings=_FIELDS, judged=None if judged else ()
        )
        for flow_log_id, config in flow_logs.items()
    ]


def remember_all(store: rules.Memory, client: Any, account: str, region: str) -> list[rules.Offer]:
    return _offer(store, describe_all(client), account, region, judged=False)


def remember_from_event(
    store: rules.Memory, client: Any, record: Mapping[str, Any], account: str, region: str, judged: bool
) -> list[rules.Offer]:
    response = record.get("responseElements")
    created = response.get("CreateFlowLogsResponse", response) if isinstance(response, Mapping) else {}
    ids_set = created.get("flowLogIdSet") if isinstance(created, Mapping) else None
    items = ids_set.get("item") if isinstance(ids_set, Mapping) else ids_set
    ids = [i for i in (items if isinstance(items, list) else [items]) if isinstance(i, str)]
    return _offer(store, describe_all(client, ids or None), account, region, judged)
