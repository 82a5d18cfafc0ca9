"""A trail's whole configuration: read it, remember it, and re-create a trail from it.

DeleteTrail erases everything CloudTrail knew about a trail, so trailguard keeps the last
known configuration of every trail (refreshed by the sweep and on CreateTrail /
UpdateTrail / PutEventSelectors events) in its store, and `cloudtrail.restore_trail`
re-creates a deleted trail from it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from chalicelib.incidents import timestamp, utc_now
from chalicelib.retrying import eventually

# describe_trails' field -> create_trail's parameter, for what a re-created trail must keep.
_CREATE_PARAMETERS = {
    "S3BucketName": "S3BucketName",
    "S3KeyPrefix": "S3KeyPrefix",
    "SnsTopicName": "SnsTopicName",
    "IncludeGlobalServiceEvents": "IncludeGlobalServiceEvents",
    "IsMultiRegionTrail": "IsMultiRegionTrail",
    "LogFileValidationEnabled": "EnableLogFileValidation",
    "CloudWatchLogsLogGroupArn": "CloudWatchLogsLogGroupArn",
    "CloudWatchLogsRoleArn": "CloudWatchLogsRoleArn",
    "KmsKeyId": "KmsKeyId",
    "IsOrganizationTrail": "IsOrganizationTrail",
}
SETTINGS = tuple(_CREATE_PARAMETERS)
"""The fields of a trail's configuration that re-creating it restores (besides selectors and tags)."""

NOT_VISIBLE_YET = ("TrailNotFoundException",)


class Memory(Protocol):
    def remember(self, key: str, value: dict[str, Any]) -> None: ...

    def recall(self, key: str) -> dict[str, Any] | None: ...


def locate(name_or_arn: str, account: str, region: str) -> tuple[str, str, str]:
    """(account, region, name) of a trail given by name (in the event's place) or by ARN."""
    if name_or_arn.startswith("arn:"):
        parts = name_or_arn.split(":", 5)
        if len(parts) == 6 and parts[5].startswith("trail/"):
            return parts[4], parts[3], parts[5][len("trail/") :]
    return account, region, name_or_arn


def memory_key(account: str, region: str, name: str) -> str:
    return f"trail#{account}#{region}#{name}"


def describe(client: Any, name_or_arn: str) -> dict[str, Any] | None:
    """The trail's configuration, selectors, tags and logging status; None if it does not exist."""
    trails = client.describe_trails(trailNameList=[name_or_arn], includeShadowTrails=False)["trailList"]
    if not trails:
        return None
    trail = trails[0]
    arn = trail["TrailARN"]
    config: dict[str, Any] = {"Name": trail["Name"], "TrailARN": arn, "HomeRegion": trail.get("HomeRegion")}
    config.update({field: trail[field] for field in SETTINGS if trail.get(field) not in (None, "")})
    selectors = client.get_event_selectors(TrailName=arn)
    if selectors.get("AdvancedEventSelectors"):
        config["AdvancedEventSelectors"] = selectors["AdvancedEventSelectors"]
    else:
        config["EventSelectors"] = selectors.get("EventSelectors", [])
    tags = client.list_tags(ResourceIdList=[arn]).get("ResourceTagList", [])
    config["Tags"] = tags[0].get("TagsList", []) if tags else []
    config["IsLogging"] = bool(client.get_trail_status(Name=arn).get("IsLogging"))
    return config


def create(client: Any, config: dict[str, Any]) -> None:
    """Re-create a trail from `config` (as `describe` returns it), selectors, tags, and start it."""
    parameters = {_CREATE_PARAMETERS[field]: config[field] for field in SETTINGS if field in config}
    if config.get("Tags"):
        parameters["TagsList"] = config["Tags"]
    arn = client.create_trail(Name=config["Name"], **parameters)["TrailARN"]
    put_selectors(client, arn, config)
    eventually(lambda: client.start_logging(Name=arn), codes=NOT_VISIBLE_YET)


def put_selectors(client: Any, trail: str, config: dict[str, Any]) -> None:
    if config.get("AdvancedEventSelectors"):
        put = {"AdvancedEventSelectors": config["AdvancedEventSelectors"]}
    else:
        everything = [{"ReadWriteType": "All", "IncludeManagementEvents": True}]
        put = {"EventSelectors": config.get("EventSelectors") or everything}
    eventually(lambda: client.put_event_selectors(TrailName=trail, **put), codes=NOT_VISIBLE_YET)


_SELECTOR_DEFAULTS = {
    "ReadWriteType": "All",
    "IncludeManagementEvents": True,
    "DataResources": [],
    "ExcludeManagementEventSources": [],
}


def selectors_of(config: dict[str, Any]) -> dict[str, Any]:
    """The selectors of a trail configuration, basic ones with CloudTrail's defaults filled in,
    so that two ways of writing the same selectors compare equal."""
    if config.get("AdvancedEventSelectors"):
        return {"AdvancedEventSelectors": config["AdvancedEventSelectors"]}
    return {"EventSelectors": [{**_SELECTOR_DEFAULTS, **selector} for selector in config.get("EventSelectors") or []]}


def remember(memory: Memory, client: Any, name_or_arn: str, account: str, region: str) -> dict[str, Any] | None:
    """Read a trail and keep its configuration (nothing is kept for a trail that is gone)."""
    config = describe(client, name_or_arn)
    if config is not None:
        trail_account, trail_region, name = locate(config["TrailARN"], account, region)
        memory.remember(memory_key(trail_account, trail_region, name), {**config, "RememberedAt": timestamp(utc_now())})
    return config


CONFIGURATION_EVENTS = {
    "cloudtrail.amazonaws.com": ("AddTags", "CreateTrail", "PutEventSelectors", "RemoveTags", "UpdateTrail"),
}
"""Successful calls after which a trail's remembered configuration is refreshed."""


def trail_named_in(record: Mapping[str, Any]) -> str | None:
    """The trail a configuration call is about: the ARN in its response, else the name asked for."""
    response = record.get("responseElements")
    if isinstance(response, dict) and isinstance(response.get("trailARN"), str):
        return response["trailARN"]
    request = record.get("requestParameters")
    if not isinstance(request, dict):
        return None
    for key in ("name", "trailName", "resourceId"):
        if isinstance(request.get(key), str) and request[key]:
            return request[key]
    return None
