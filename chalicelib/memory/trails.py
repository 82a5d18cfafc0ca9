"""A trail's whole configuration: read it, remember it, compare it, and re-create or
repair a trail from it.

DeleteTrail erases everything CloudTrail knew about a trail, so trailguard keeps the last
known configuration of every trail in its store (refreshed by the sweep and after
CreateTrail / UpdateTrail / PutEventSelectors / AddTags / RemoveTags events, as far as
`rules` allow), and `cloudtrail.restore_trail` re-creates a deleted trail from it, or
puts it back onto a trail someone else re-created under the same name.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from chalicelib.aws.retrying import eventually
from chalicelib.memory import chain, rules

# describe_trails' field -> create_trail's (and update_trail's) parameter.
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

RECORDING_SWITCHES = (
    "IncludeGlobalServiceEvents",
    "IsMultiRegionTrail",
    "LogFileValidationEnabled",
    "IsOrganizationTrail",
)
"""Settings that record or protect more when on: a restore never turns one off."""

SELECTORS = "Selectors"
"""The event selectors, as one field of a comparison (`shortfalls`)."""

REMEMBERED_SETTINGS = (*SETTINGS, "EventSelectors", "AdvancedEventSelectors")
"""What memory guards (`rules.offer`): a change to any of these must be judged."""

NOT_VISIBLE_YET = ("TrailNotFoundException",)


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
    listed = client.describe_trails(trailNameList=[name_or_arn], includeShadowTrails=False)["trailList"]
    # Only the trail asked for: a list that names others (moto answers an unknown name with
    # every trail) must not make another trail stand in for a missing one.
    trail = next((t for t in listed if name_or_arn in (t.get("Name"), t.get("TrailARN"))), None)
    if trail is None:
        return None
    arn = trail["TrailARN"]
    config: dict[str, Any] = {"Name": trail["Name"], "TrailARN": arn, "HomeRegion": trail.get("HomeRegion")}
    config.update({field: trail[field] for field in SETTINGS if trail.get(field) not in (None, "")})
    selectors = client.get_event_selectors(TrailName=arn)
    if selectors.get("AdvancedEventSelectors"):
        config["AdvancedEventSelectors"] = selectors["AdvancedEventSelectors"]
    else:  # as CloudTrail records them: no selector is its default, all management events
        config["EventSelectors"] = selectors_of({"EventSelectors": selectors.get("EventSelectors") or _EVERYTHING})[
            "EventSelectors"
        ]
    tags = client.list_tags(ResourceIdList=[arn]).get("ResourceTagList", [])
    config["Tags"] = tags[0].get("TagsList", []) if tags else []
    config["IsLogging"] = bool(client.get_trail_status(Name=arn).get("IsLogging"))
    return config


def create(client: Any, config: Mapping[str, Any]) -> None:
    """Re-create a trail from `config` (as `describe` returns it), selectors, tags, and start it."""
    parameters = {_CREATE_PARAMETERS[field]: config[field] for field in SETTINGS if field in config}
    if config.get("Tags"):
        parameters["TagsList"] = config["Tags"]
    arn = client.create_trail(Name=config["Name"], **parameters)["TrailARN"]
    put_selectors(client, arn, config)
    eventually(lambda: client.start_logging(Name=arn), codes=NOT_VISIBLE_YET)


def put_selectors(client: Any, trail: str, config: Mapping[str, Any]) -> None:
    if config.get("AdvancedEventSelectors"):
        put = {"AdvancedEventSelectors": config["AdvancedEventSelectors"]}
    else:
        put = {"EventSelectors": config.get("EventSelectors") or _EVERYTHING}
    eventually(lambda: client.put_event_selectors(TrailName=trail, **put), codes=NOT_VISIBLE_YET)


_CLEARED = {field: False for field in RECORDING_SWITCHES} | {
    "S3KeyPrefix": "",
    "SnsTopicName": "",
    "CloudWatchLogsLogGroupArn": "",
    "CloudWatchLogsRoleArn": "",
    "KmsKeyId": "",
}
"""The UpdateTrail value that clears a setting (the bucket cannot be cleared)."""
_CLOUDWATCH = ("CloudWatchLogsLogGroupArn", "CloudWatchLogsRoleArn")


def update(client: Any, trail: str, settings: Mapping[str, Any], wanted: Mapping[str, Any] | None = None) -> None:
    """UpdateTrail with `settings` (describe_trails fields; None clears one, as UpdateTrail
    documents). CloudTrail takes the CloudWatch Logs group and role together: when one is
    given, the other comes from `wanted` (else from `settings`)."""
    settings = dict(settings)
    if any(field in settings for field in _CLOUDWATCH):
        for field in _CLOUDWATCH:
            settings.setdefault(field, (wanted or settings).get(field))
    parameters = {
        _CREATE_PARAMETERS[field]: _CLEARED[field] if value is None else value
        for field, value in settings.items()
        if value is not None or field in _CLEARED
    }
    if parameters:
        client.update_trail(Name=trail, **parameters)


PROTECTIONS = ("KmsKeyId", "SnsTopicName", "CloudWatchLogsLogGroupArn", "CloudWatchLogsRoleArn")
"""Settings that protect or watch the logs when set: encryption with a KMS key, delivery
notices to an SNS topic, a copy in CloudWatch Logs (metric filters, alarms). One set where
none was is never taken away by a restore; one replaced or removed is put back."""


def shortfalls(
    wanted: Mapping[str, Any], current: Mapping[str, Any], fields: Iterable[str] = (*SETTINGS, SELECTORS)
) -> dict[str, Any]:
    """What `current` lacks of `wanted`, field by field (describe_trails fields, and
    SELECTORS for the event selectors), with the value to put back. A restore never
    records or protects less than the trail does now: a recording switch on now is never a
    shortfall, a protection set where `wanted` had none is kept, and the selectors put back
    are `wanted`'s merged into the current ones (`merged_selectors`)."""
    found: dict[str, Any] = {}
    for field in fields:
        if field == SELECTORS:
            merged = merged_selectors(current, wanted)
            if merged != selectors_of(current):
                found[SELECTORS] = merged
        elif field in RECORDING_SWITCHES:
            if wanted.get(field) and not current.get(field):
                found[field] = True
        elif field in PROTECTIONS and not wanted.get(field):
            continue  # added by the change: more protection, kept
        elif (wanted.get(field) or None) != (current.get(field) or None):
            found[field] = wanted.get(field) or None
    return found


def put_back(client: Any, trail: str, missing: Mapping[str, Any], wanted: Mapping[str, Any]) -> None:
    """Put back what `shortfalls` found missing: the settings, then the selectors."""
    update(client, trail, {field: value for field, value in missing.items() if field != SELECTORS}, wanted)
    if SELECTORS in missing:
        put_selectors(client, trail, missing[SELECTORS])


_EVERYTHING = [{"ReadWriteType": "All", "IncludeManagementEvents": True}]
_SELECTOR_DEFAULTS = {
    "ReadWriteType": "All",
    "IncludeManagementEvents": True,
    "DataResources": [],
    "ExcludeManagementEventSources": [],
}


def selectors_of(config: Mapping[str, Any]) -> dict[str, Any]:
    """The selectors of a trail configuration, basic ones with CloudTrail's defaults filled in,
    so that two ways of writing the same selectors compare equal."""
    if config.get("AdvancedEventSelectors"):
        return {"AdvancedEventSelectors": config["AdvancedEventSelectors"]}
    return {"EventSelectors": [{**_SELECTOR_DEFAULTS, **selector} for selector in config.get("EventSelectors") or []]}


MAX_BASIC_SELECTORS = 5
"""CloudTrail's limit on a trail's basic event selectors (its quotas)."""


def merged_selectors(current: Mapping[str, Any], wanted: Mapping[str, Any]) -> dict[str, Any]:
    """The selectors that record everything `current` records and everything `wanted`
    records: CloudTrail records an event that any selector of a trail selects, so the
    merge keeps every current selector and adds those of `wanted` it lacks. Basic selectors
    stay basic (up to CloudTrail's five); when either side is advanced, or five would not
    do, basic ones are written as the advanced selectors that record the same events
    (CloudTrail user guide: "Logging events with advanced event selectors"). A restore
    therefore never drops what was added since (S3 data events, say) while it puts back
    the management events that were taken away."""
    now, then = selectors_of(current), selectors_of(wanted)
    if "EventSelectors" in now and "EventSelectors" in then:
        merged = list(now["EventSelectors"])
        merged += [selector for selector in then["EventSelectors"] if selector not in merged]
        if len(merged) <= MAX_BASIC_SELECTORS:
            return {"EventSelectors": merged}
    advanced = _as_advanced(now)
    known = [_comparable(selector) for selector in advanced]
    for selector in _as_advanced(then):
        if _comparable(selector) not in known:
            advanced.append(selector)
            known.append(_comparable(selector))
    return {"AdvancedEventSelectors": advanced}


def _comparable(selector: Mapping[str, Any]) -> list[Any]:
    """An advanced selector without its name, its field selectors in a stable order."""
    fields = [
        {key: sorted(value) if isinstance(value, list) else value for key, value in field.items()}
        for field in selector.get("FieldSelectors", [])
    ]
    return sorted(fields, key=lambda field: str(field.get("Field")))


_READ_ONLY = {"ReadOnly": ["true"], "WriteOnly": ["false"]}
_ALL_OF_A_TYPE = {"arn:aws:s3", "arn:aws:s3:::", "arn:aws:lambda", "arn:aws:dynamodb"}
"""DataResources values that select every resource of their type (the API reference)."""


def _as_advanced(selectors: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Selectors as advanced selectors that record the same events."""
    if "AdvancedEventSelectors" in selectors:
        return [dict(selector) for selector in selectors["AdvancedEventSelectors"]]
    advanced: list[dict[str, Any]] = []
    for number, selector in enumerate(selectors.get("EventSelectors") or [], 1):
        read_only = _READ_ONLY.get(selector.get("ReadWriteType", "All"))
        kind = [{"Field": "readOnly", "Equals": read_only}] if read_only else []
        if selector.get("IncludeManagementEvents", True):
            excluded = selector.get("ExcludeManagementEventSources") or []
            sources = [{"Field": "eventSource", "NotEquals": list(excluded)}] if excluded else []
            advanced.append(
                {
                    "Name": f"Management events (basic selector {number})",
                    "FieldSelectors": [{"Field": "eventCategory", "Equals": ["Management"]}, *kind, *sources],
                }
            )
        for resource in selector.get("DataResources") or []:
            values = [v for v in resource.get("Values") or [] if v not in _ALL_OF_A_TYPE]
            arns = [{"Field": "resources.ARN", "StartsWith": values}] if values else []
            advanced.append(
                {
                    "Name": f"Data events on {resource.get('Type')} (basic selector {number})",
                    "FieldSelectors": [
                        {"Field": "eventCategory", "Equals": ["Data"]},
                        {"Field": "resources.type", "Equals": [resource.get("Type")]},
                        *kind,
                        *arns,
                    ],
                }
            )
    return advanced


# -- what memory keeps -------------------------------------------------------------------


def remember(
    store: rules.Memory,
    client: Any,
    name_or_arn: str,
    account: str,
    region: str,
    judged: Iterable[str] | None = (),
) -> rules.Offer | None:
    """Read a trail and offer its configuration to memory (nothing for a trail that is
    gone); `judged` as `rules.offer` takes it (by default: nothing judged, as the sweep)."""
    config = describe(client, name_or_arn)
    if config is None:
        return None
    trail_account, trail_region, name = locate(config["TrailARN"], account, region)
    key = memory_key(trail_account, trail_region, name)
    offer = rules.offer(store, key, config, settings=REMEMBERED_SETTINGS, judged=judged)
    # The links of the configuration remembered (not of an unjudged change): the audit chain.
    chain.note(store, config["TrailARN"], rules.configuration(store.recall(key)) or config)
    return offer


def remember_all(store: rules.Memory, client: Any, account: str, region: str) -> list[rules.Offer]:
    """Offer every trail of the region (the sweep: nothing judged)."""
    present = client.describe_trails(includeShadowTrails=False)["trailList"]
    offers = [remember(store, client, trail["TrailARN"], account, region) for trail in present]
    return [offer for offer in offers if offer is not None]


def remember_from_event(
    store: rules.Memory, client: Any, record: Mapping[str, Any], account: str, region: str, judged: bool
) -> list[rules.Offer]:
    """Offer the trail a configuration call changed; the settings it changed count as
    judged when the playbooks judged the call without objecting."""
    trail = trail_named_in(record)
    if trail is None:
        return []
    offer = remember(store, client, trail, account, region, changed_by(record) if judged else ())
    return [offer] if offer is not None else []


CONFIGURATION_EVENTS = {
    "cloudtrail.amazonaws.com": ("AddTags", "CreateTrail", "PutEventSelectors", "RemoveTags", "UpdateTrail"),
}
"""Successful calls after which a trail's remembered configuration is refreshed."""


def _request_parameter(parameter: str) -> str:
    return parameter[0].lower() + parameter[1:]


def changed_by(record: Mapping[str, Any]) -> tuple[str, ...] | None:
    """The remembered settings a configuration call changes (None: all of them)."""
    name = record.get("eventName")
    request = record.get("requestParameters")
    request = request if isinstance(request, Mapping) else {}
    if name == "UpdateTrail":
        return tuple(field for field in SETTINGS if _request_parameter(_CREATE_PARAMETERS[field]) in request)
    if name == "PutEventSelectors":
        return ("EventSelectors", "AdvancedEventSelectors")
    if name in ("AddTags", "RemoveTags"):
        return ()
    return None


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
