"""Actions that change nothing that matters: they mark and tell.

`tag.resource` marks a resource with the incident's id, so that whoever finds it later
finds the incident; `notify.note` adds a sentence to the incident and its message.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chalicelib.actions.base import ANY_RESOURCE, Action, ActionError, Parameter, register

TAG_KEY = "trailguard:incident"


@register
class TagResource(Action):
    """Tag a resource with the incident id (`trailguard:incident`), through the Resource
    Groups Tagging API, for the services it supports. Undo takes the tag off again (or
    puts back the value it had).

    Example:

        steps:
          - action: tag.resource
            with: {arn: "join('', ['arn:aws:s3:::', requestParameters.bucketName])"}
    """

    name = "tag.resource"
    service = "resourcegroupstaggingapi"
    permissions = {
        "tag:GetResources": ANY_RESOURCE,
        "tag:TagResources": ANY_RESOURCE,
        "tag:UntagResources": ANY_RESOURCE,
    }
    parameters = (Parameter("arn", "string", "ARN of the resource."),)

    def _incident(self) -> str:
        if not self.context.incident_id:
            raise ActionError("tag.resource runs only within an incident")
        return self.context.incident_id

    def snapshot(self) -> dict[str, Any]:
        found = self.client.get_resources(ResourceARNList=[self.params["arn"]])["ResourceTagMappingList"]
        tags = {tag["Key"]: tag["Value"] for mapping in found for tag in mapping.get("Tags", [])}
        return {"Arn": self.params["arn"], "Tag": tags.get(TAG_KEY)}

    def check(self, state: Mapping[str, Any]) -> bool:
        return state["Tag"] == self._incident()

    def apply(self, state: Mapping[str, Any]) -> None:
        self._tag(self._incident())

    def restore(self, state: Mapping[str, Any]) -> None:
        if state["Tag"] is None:
            failed = self.client.untag_resources(ResourceARNList=[state["Arn"]], TagKeys=[TAG_KEY])
            if failed.get("FailedResourcesMap"):
                raise ActionError(f"could not untag {state['Arn']}: {failed['FailedResourcesMap']}")
        else:
            self._tag(state["Tag"])

    def _tag(self, value: str) -> None:
        failed = self.client.tag_resources(ResourceARNList=[self.params["arn"]], Tags={TAG_KEY: value})
        if failed.get("FailedResourcesMap"):
            raise ActionError(f"could not tag {self.params['arn']}: {failed['FailedResourcesMap']}")


@register
class Note(Action):
    """Add a sentence to the incident and its message; call nothing.

    For playbooks that only annotate, or to tell the person on call what to check next.

    Example:

        steps:
          - action: notify.note
            with: {text: "'Check who else the instance profile was given to.'"}
    """

    name = "notify.note"
    service = ""
    permissions = {}
    parameters = (Parameter("text", "string", "What to say."),)

    def snapshot(self) -> dict[str, Any]:
        return {"Note": self.params["text"]}

    def check(self, state: Mapping[str, Any]) -> bool:
        return self.note == self.params["text"]  # done once said: a note changes nothing in AWS

    def apply(self, state: Mapping[str, Any]) -> None:
        self.note = self.params["text"]

    def restore(self, state: Mapping[str, Any]) -> None:
        return None
