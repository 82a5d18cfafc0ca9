"""GuardDuty remediations: keep threat detection on, and its findings in sight."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chalicelib.actions.base import ANY_RESOURCE, Action, ActionError, Parameter, ResourceType, register
from chalicelib.actions.iam import SERVICE_LINKED_ROLE
from chalicelib.aws.retrying import error_code

DETECTOR = ResourceType("Detector", ("arn:*:guardduty:*:*:detector/*",))
"""A GuardDuty detector."""
FILTER = ResourceType("Filter", ("arn:*:guardduty:*:*:detector/*/filter/*",))
"""A GuardDuty findings filter."""


@register
class RestoreDetector(Action):
    """Turn GuardDuty back on in the region: enable a disabled detector, or create one
    after DeleteDetector.

    A deleted detector's findings are gone for good; a new detector starts watching from
    now. Undo disables what it enabled, or deletes the detector it created.

    Example:

        steps:
          - action: guardduty.restore_detector
    """

    name = "guardduty.restore_detector"
    service = "guardduty"
    permissions = {
        "guardduty:ListDetectors": ANY_RESOURCE,
        "guardduty:GetDetector": DETECTOR,
        "guardduty:CreateDetector": ANY_RESOURCE,
        "guardduty:UpdateDetector": DETECTOR,
        "guardduty:DeleteDetector": DETECTOR,
        "iam:CreateServiceLinkedRole": SERVICE_LINKED_ROLE,
    }
    parameters = ()

    def snapshot(self) -> dict[str, Any]:
        detectors = {}
        for page in self.client.get_paginator("list_detectors").paginate():
            for detector in page["DetectorIds"]:
                detectors[detector] = self.client.get_detector(DetectorId=detector)["Status"]
        return {"Detectors": detectors}

    def check(self, state: Mapping[str, Any]) -> bool:
        return "ENABLED" in state["Detectors"].values()

    def apply(self, state: Mapping[str, Any]) -> None:
        if state["Detectors"]:
            for detector in state["Detectors"]:
                self.client.update_detector(DetectorId=detector, Enable=True)
        else:
            self.client.create_detector(Enable=True)

    def restore(self, state: Mapping[str, Any]) -> None:
        now = self.snapshot()["Detectors"]
        for detector in now:
            if detector not in state["Detectors"]:
                self.client.delete_detector(DetectorId=detector)
            elif state["Detectors"][detector] != "ENABLED":
                self.client.update_detector(DetectorId=detector, Enable=False)


@register
class StopAutoArchive(Action):
    """Stop a findings filter from archiving what it matches: its action goes from
    `ARCHIVE` (a suppression rule: matching findings are archived as they arrive, and no
    one sees them) back to `NOOP`, keeping its criteria, so the filter still shows those
    findings in the console.

    Suppression rules are also how teams quiet known noise, so playbooks propose this.
    Undo sets the filter's action back to what it was.

    Example:

        steps:
          - action: guardduty.stop_auto_archive
            with:
              detector: requestParameters.detectorId
              filter: requestParameters.name || requestParameters.filterName
    """

    name = "guardduty.stop_auto_archive"
    service = "guardduty"
    permissions = {
        "guardduty:GetFilter": FILTER,
        "guardduty:UpdateFilter": FILTER,
    }
    parameters = (
        Parameter("detector", "string", "The detector's id."),
        Parameter("filter", "string", "The filter's name."),
    )

    def snapshot(self) -> dict[str, Any]:
        try:
            found = self.client.get_filter(DetectorId=self.params["detector"], FilterName=self.params["filter"])
        except Exception as error:
            if error_code(error) not in ("BadRequestException", "ResourceNotFoundException"):
                raise
            raise ActionError(f"GuardDuty has no filter {self.params['filter']}: {error}") from None
        return {"Detector": self.params["detector"], "Filter": self.params["filter"], "Action": found.get("Action")}

    def check(self, state: Mapping[str, Any]) -> bool:
        return state["Action"] != "ARCHIVE"

    def apply(self, state: Mapping[str, Any]) -> None:
        self.client.update_filter(DetectorId=state["Detector"], FilterName=state["Filter"], Action="NOOP")

    def restore(self, state: Mapping[str, Any]) -> None:
        self.client.update_filter(DetectorId=state["Detector"], FilterName=state["Filter"], Action=state["Action"])
