"""GuardDuty remediations: keep threat detection on."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chalicelib.actions.base import ANY_RESOURCE, Action, ResourceType, register
from chalicelib.actions.iam import SERVICE_LINKED_ROLE

DETECTOR = ResourceType("Detector", ("arn:*:guardduty:*:*:detector/*",))
"""A GuardDuty detector."""


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
