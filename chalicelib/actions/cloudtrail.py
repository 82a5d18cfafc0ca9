"""CloudTrail remediations: keep the record of API calls flowing."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from chalicelib.actions import tags
from chalicelib.actions.base import ANY_RESOURCE, Action, ActionContext, ActionError, Parameter, ResourceType, register
from chalicelib.actions.iam import ROLE, SERVICE_LINKED_ROLE
from chalicelib.aws.retrying import eventually
from chalicelib.memory import trails

TRAIL = ResourceType("Trail", ("arn:*:cloudtrail:*:*:trail/*",))
"""A trail."""

ORGANIZATION_TRAIL = {
    "organizations:DescribeOrganization": ANY_RESOURCE,
    "organizations:ListAWSServiceAccessForOrganization": ANY_RESOURCE,
    "iam:GetRole": ROLE,
    "iam:CreateServiceLinkedRole": SERVICE_LINKED_ROLE,
}
"""What CloudTrail asks of whoever makes a trail an organization trail again, in the
management account (CloudTrail user guide, "Prepare for creating a trail for your
organization"): it reads the organization and its service-linked role."""


@register
class StartLogging(Action):
    """Start a trail that was stopped.

    Stopping a trail is often an attacker's first move: everything after it goes
    unrecorded. Undo stops the trail again, for the day the stop was intended.

    Example:

        steps:
          - action: cloudtrail.start_logging
            with: {trail: requestParameters.name}
    """

    name = "cloudtrail.start_logging"
    service = "cloudtrail"
    permissions = {
        "cloudtrail:ListTags": TRAIL,
        "cloudtrail:GetTrailStatus": TRAIL,
        "cloudtrail:StartLogging": TRAIL,
        "cloudtrail:StopLogging": TRAIL,
    }
    parameters = (Parameter("trail", "string", "Name or ARN of the trail."),)

    def resource_tags(self) -> dict[str, str] | None:
        return tags.trail_tags(self.client, self.params["trail"], self.context.account, self.context.region)

    def snapshot(self) -> dict[str, Any]:
        status = self.client.get_trail_status(Name=self.params["trail"])
        return {"Trail": self.params["trail"], "IsLogging": bool(status.get("IsLogging"))}

    def check(self, state: Mapping[str, Any]) -> bool:
        return bool(state["IsLogging"])

    def apply(self, state: Mapping[str, Any]) -> None:
        self.client.start_logging(Name=state["Trail"])

    def restore(self, state: Mapping[str, Any]) -> None:
        if not state["IsLogging"]:
            self.client.stop_logging(Name=state["Trail"])


class _Target(NamedTuple):
    config: dict[str, Any]
    fields: tuple[str, ...]
    """The fields `config` decides (trails.SETTINGS names, trails.SELECTORS)."""
    source: str
    """Where `config` comes from, for the incident's note."""


def _trail_key(params: Mapping[str, Any], context: ActionContext) -> str | None:
    if context.region is None:
        return None
    account, region, name = trails.locate(params["trail"], context.account or "", context.region)
    return trails.memory_key(account, region, name)


@register
class RestoreTrail(Action):
    """Re-create a deleted trail exactly as it was, and start it.

    DeleteTrail erases the trail's configuration along with it, so trailguard keeps the
    last known configuration of every trail (S3 bucket and prefix, SNS topic, KMS key,
    multi-region, organization, log file validation, CloudWatch Logs group and role,
    event selectors or advanced selectors, tags). When none was ever seen, the trail is
    re-created from `fallback` if the playbook gives one; with neither, the step fails
    and says so: it never does nothing quietly.

    A trail of that name that exists already (re-created at once by whoever deleted it,
    or half-way by an earlier attempt) is safe only if it logs and matches that
    configuration field by field (bucket, prefix, SNS topic, KMS key, multi-region, global
    events, organization, validation, CloudWatch Logs, selectors); otherwise the remembered
    settings and selectors are put back onto it and it is started. A recording setting that
    is on is never turned off. Undo deletes the re-created trail, or puts back the settings,
    selectors and logging status the existing trail had.

    Example:

        steps:
          - action: cloudtrail.restore_trail
            with:
              trail: requestParameters.name
              fallback: '`{"S3BucketName": "org-cloudtrail-logs", "IsMultiRegionTrail": true}`'
    """

    name = "cloudtrail.restore_trail"
    service = "cloudtrail"
    permissions = {
        "cloudtrail:DescribeTrails": ANY_RESOURCE,
        "cloudtrail:GetEventSelectors": TRAIL,
        "cloudtrail:ListTags": TRAIL,
        "cloudtrail:GetTrailStatus": TRAIL,
        "cloudtrail:CreateTrail": TRAIL,
        "cloudtrail:UpdateTrail": TRAIL,
        "cloudtrail:PutEventSelectors": TRAIL,
        "cloudtrail:AddTags": TRAIL,
        "cloudtrail:StartLogging": TRAIL,
        "cloudtrail:StopLogging": TRAIL,
        "cloudtrail:DeleteTrail": TRAIL,
        "iam:PassRole": ANY_RESOURCE,
        **ORGANIZATION_TRAIL,
    }
    passes_role_to = "cloudtrail.amazonaws.com"
    eventually_consistent = True  # a trail just created may not be described at once
    parameters = (
        Parameter("trail", "string", "Name or ARN of the deleted trail."),
        Parameter(
            "fallback",
            "object",
            "The trail to create when no configuration was remembered: describe_trails fields "
            "(S3BucketName required; S3KeyPrefix, IsMultiRegionTrail, KmsKeyId, ...).",
            required=False,
        ),
    )

    @classmethod
    def memory_key(cls, params: Mapping[str, Any], context: ActionContext) -> str | None:
        return _trail_key(params, context)

    def _target(self) -> _Target | None:
        """What the trail must be: the remembered configuration (every setting and the
        selectors), else the playbook's fallback (the settings it names); None when
        neither is known."""
        remembered = self.remembered()
        if remembered is not None:
            when = remembered.get("RememberedAt", "an unknown time")
            return _Target(remembered, (*trails.SETTINGS, trails.SELECTORS), f"the configuration remembered at {when}")
        fallback = self.params.get("fallback")
        if fallback and fallback.get("S3BucketName"):
            name = trails.locate(self.params["trail"], "", "")[2]
            fields = tuple(field for field in trails.SETTINGS if field in fallback)
            return _Target(
                {**fallback, "Name": name}, fields, "the playbook's fallback (no configuration was remembered)"
            )
        return None

    def snapshot(self) -> dict[str, Any]:
        config = trails.describe(self.client, self.params["trail"])
        return {"Trail": self.params["trail"], "Exists": config is not None, "Config": config}

    def check(self, state: Mapping[str, Any]) -> bool:
        if not state["Exists"] or not state["Config"]["IsLogging"]:
            return False
        target = self._target()
        return target is None or not trails.shortfalls(target.config, state["Config"], target.fields)

    def apply(self, state: Mapping[str, Any]) -> None:
        target = self._target()
        if not state["Exists"]:
            if target is None:
                raise ActionError(
                    f"no configuration of trail {self.params['trail']} was ever remembered and the playbook gives "
                    "no `fallback` with an S3BucketName: re-create the trail by hand"
                )
            trails.create(self.client, target.config)
            self.note = f"re-created from {target.source}"
            return
        config, done = state["Config"], []
        if target is not None:
            missing = trails.shortfalls(target.config, config, target.fields)
            trails.put_back(self.client, config["TrailARN"], missing, target.config)
            done += [f"put back {', '.join(sorted(missing))} from {target.source}"] if missing else []
        if not config["IsLogging"]:
            eventually(lambda: self.client.start_logging(Name=config["TrailARN"]), codes=trails.NOT_VISIBLE_YET)
            done.append("started it")
        self.note = f"the trail existed (re-created by someone, or half-way before): {'; '.join(done)}"

    def restore(self, state: Mapping[str, Any]) -> None:
        if not state["Exists"]:
            self.client.delete_trail(Name=self.params["trail"])
            return
        before, now = state["Config"], trails.describe(self.client, self.params["trail"])
        if now is None:
            raise ActionError(f"trail {self.params['trail']} is gone: there is nothing to put back")
        trails.update(
            self.client,
            now["TrailARN"],
            {field: before.get(field) for field in trails.SETTINGS if before.get(field) != now.get(field)},
            before,
        )
        if trails.selectors_of(before) != trails.selectors_of(now):
            trails.put_selectors(self.client, now["TrailARN"], before)
        if now["IsLogging"] and not before["IsLogging"]:
            self.client.stop_logging(Name=now["TrailARN"])


@register
class RestoreEventSelectors(Action):
    """Put back the event selectors a PutEventSelectors took away, keeping every selector
    the trail has now.

    Turning off management events (or keeping only read-only ones) blinds a trail without
    stopping it. The selectors put back come from the trail's last known configuration;
    when none was remembered, from `selectors` (default: all management events, read and
    write). They are merged into the trail's current selectors, never put in their place:
    a restore never records less than the trail records now (S3 data events added by the
    same call stay). Undo puts back the selectors trailguard found.

    Example:

        steps:
          - action: cloudtrail.restore_event_selectors
            with: {trail: requestParameters.trailName}
    """

    name = "cloudtrail.restore_event_selectors"
    service = "cloudtrail"
    permissions = {
        "cloudtrail:ListTags": TRAIL,
        "cloudtrail:GetEventSelectors": TRAIL,
        "cloudtrail:PutEventSelectors": TRAIL,
    }
    parameters = (
        Parameter("trail", "string", "Name or ARN of the trail."),
        Parameter(
            "selectors",
            "object",
            "Selectors to put when none were remembered: {EventSelectors: [...]} or {AdvancedEventSelectors: [...]}.",
            required=False,
            default={"EventSelectors": [{"ReadWriteType": "All", "IncludeManagementEvents": True}]},
        ),
    )

    def resource_tags(self) -> dict[str, str] | None:
        return tags.trail_tags(self.client, self.params["trail"], self.context.account, self.context.region)

    @classmethod
    def memory_key(cls, params: Mapping[str, Any], context: ActionContext) -> str | None:
        return _trail_key(params, context)

    def snapshot(self) -> dict[str, Any]:
        current = self.client.get_event_selectors(TrailName=self.params["trail"])
        return {"Trail": self.params["trail"], **trails.selectors_of(current)}

    def _wanted(self) -> dict[str, Any]:
        remembered = self.remembered()
        if remembered is not None:
            self.note = f"selectors remembered at {remembered.get('RememberedAt', 'an unknown time')}"
            return trails.selectors_of(remembered)
        self.note = "no selectors were remembered: put the playbook's default"
        return trails.selectors_of(self.params.get("selectors") or self.parameter("selectors").default)  # type: ignore[union-attr]

    def check(self, state: Mapping[str, Any]) -> bool:
        return trails.merged_selectors(state, self._wanted()) == trails.selectors_of(state)

    def apply(self, state: Mapping[str, Any]) -> None:
        trails.put_selectors(self.client, state["Trail"], trails.merged_selectors(state, self._wanted()))

    def restore(self, state: Mapping[str, Any]) -> None:
        trails.put_selectors(self.client, state["Trail"], dict(state))


@register
class RestoreTrailSettings(Action):
    """Put a trail's settings back as trailguard last saw them, after an UpdateTrail that
    weakened it or changed where its logs go or how they are protected (multi-region, log
    file validation, global service events or organization off; the KMS key, the bucket or
    prefix, the SNS topic, or CloudWatch Logs delivery changed or removed).

    The settings are those remembered when the incident was opened, compared field by
    field with the trail's, and a restore never protects less than the trail does now: a
    recording setting on now is never turned off, and a KMS key, SNS topic or CloudWatch
    Logs group set where the remembered trail had none is kept (a protection replaced or
    removed is put back). So an edit that re-sends the same settings, or adds protection
    (the console sends the bucket with every edit), has nothing to put back: no proposal
    is made for it. Making the trail an organization trail again takes the organization
    permissions below, in the management account. With none remembered, the step fails
    and says so. Undo puts back the settings it replaced.

    Example:

        steps:
          - action: cloudtrail.restore_trail_settings
            with: {trail: requestParameters.name}
    """

    name = "cloudtrail.restore_trail_settings"
    service = "cloudtrail"
    permissions = {
        "cloudtrail:DescribeTrails": ANY_RESOURCE,
        "cloudtrail:GetEventSelectors": TRAIL,
        "cloudtrail:ListTags": TRAIL,
        "cloudtrail:GetTrailStatus": TRAIL,
        "cloudtrail:UpdateTrail": TRAIL,
        "iam:PassRole": ANY_RESOURCE,
        **ORGANIZATION_TRAIL,
    }
    passes_role_to = "cloudtrail.amazonaws.com"
    propose_only_if_unsafe = True  # safe = nothing weaker than remembered
    parameters = (Parameter("trail", "string", "Name or ARN of the trail."),)

    def resource_tags(self) -> dict[str, str] | None:
        return tags.trail_tags(self.client, self.params["trail"], self.context.account, self.context.region)

    @classmethod
    def memory_key(cls, params: Mapping[str, Any], context: ActionContext) -> str | None:
        return _trail_key(params, context)

    def _remembered(self) -> dict[str, Any]:
        remembered = self.remembered()
        if remembered is None:
            raise ActionError(
                f"trailguard never saw trail {self.params['trail']} before this change: "
                "its previous settings are unknown; check them by hand"
            )
        return remembered

    def snapshot(self) -> dict[str, Any]:
        config = trails.describe(self.client, self.params["trail"])
        if config is None:
            raise ActionError(f"trail {self.params['trail']} does not exist")
        return {"Trail": self.params["trail"], "Settings": {field: config.get(field) for field in trails.SETTINGS}}

    def check(self, state: Mapping[str, Any]) -> bool:
        return not trails.shortfalls(self._remembered(), state["Settings"], trails.SETTINGS)

    def apply(self, state: Mapping[str, Any]) -> None:
        remembered = self._remembered()
        missing = trails.shortfalls(remembered, state["Settings"], trails.SETTINGS)
        trails.update(self.client, self.params["trail"], missing, remembered)
        self.note = f"put back {', '.join(sorted(missing))} as remembered at {remembered.get('RememberedAt', '?')}"

    def restore(self, state: Mapping[str, Any]) -> None:
        before, now = state["Settings"], self.snapshot()["Settings"]
        changed = {field: before.get(field) for field in trails.SETTINGS if before.get(field) != now.get(field)}
        trails.update(self.client, self.params["trail"], changed, before)


INSIGHT_TYPES = ("ApiCallRateInsight", "ApiErrorRateInsight")
"""The kinds of CloudTrail Insights (CloudTrail API reference, InsightSelector)."""


@register
class RestoreInsightSelectors(Action):
    """Turn a trail's CloudTrail Insights back on: the Insights types it records now, with
    `types` added (by default both: unusual call rates and unusual error rates).

    Insights is how a burst of unusual calls (an attacker enumerating, a runaway script) is
    seen without a rule per call; removing the selectors silences it while the trail looks
    healthy. Insights are billed per event analysed, so playbooks propose this. Undo puts
    the previous selectors back.

    Example:

        steps:
          - action: cloudtrail.restore_insight_selectors
            with: {trail: requestParameters.trailName}
    """

    name = "cloudtrail.restore_insight_selectors"
    service = "cloudtrail"
    permissions = {"cloudtrail:GetInsightSelectors": TRAIL, "cloudtrail:PutInsightSelectors": TRAIL}
    parameters = (
        Parameter("trail", "string", "Trail name or ARN."),
        Parameter("types", "array", "Insights types the trail must record.", False, list(INSIGHT_TYPES)),
    )

    def snapshot(self) -> dict[str, Any]:
        try:
            answer = self.client.get_insight_selectors(TrailName=self.params["trail"])
        except Exception as error:
            if type(error).__name__ != "InsightNotEnabledException":
                raise
            answer = {}
        recorded = sorted({s["InsightType"] for s in answer.get("InsightSelectors") or [] if s.get("InsightType")})
        return {"Trail": self.params["trail"], "Types": recorded}

    def check(self, state: Mapping[str, Any]) -> bool:
        return set(self.params["types"]) <= set(state["Types"])

    def apply(self, state: Mapping[str, Any]) -> None:
        wanted = sorted({*state["Types"], *self.params["types"]})
        self._put(state["Trail"], wanted)

    def restore(self, state: Mapping[str, Any]) -> None:
        self._put(state["Trail"], state["Types"])

    def _put(self, trail: str, types: list[str]) -> None:
        self.client.put_insight_selectors(TrailName=trail, InsightSelectors=[{"InsightType": t} for t in types])
