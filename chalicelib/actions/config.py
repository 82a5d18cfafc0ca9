"""AWS Config remediations: keep the configuration recorder recording."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chalicelib.actions.base import ANY_RESOURCE, Action, ActionContext, ActionError, Parameter, register
from chalicelib.memory import config_channels


@register
class StartRecorder(Action):
    """Start AWS Config's configuration recorder(s) again, putting back the delivery channel
    first if it was deleted (from its last known configuration).

    Without the recorder, changes stop being recorded and Config rules stop evaluating.
    Undo stops the recorders it started and deletes the channel it put back.

    Example:

        steps:
          - action: config.start_recorder
    """

    name = "config.start_recorder"
    service = "config"
    permissions = {
        "config:DescribeConfigurationRecorderStatus": ANY_RESOURCE,
        "config:DescribeDeliveryChannels": ANY_RESOURCE,
        "config:PutDeliveryChannel": ANY_RESOURCE,
        "config:DeleteDeliveryChannel": ANY_RESOURCE,
        "config:StartConfigurationRecorder": ANY_RESOURCE,
        "config:StopConfigurationRecorder": ANY_RESOURCE,
    }
    parameters = (Parameter("recorder", "string", "Name of the recorder (default: every recorder).", required=False),)

    @classmethod
    def memory_key(cls, params: Mapping[str, Any], context: ActionContext) -> str | None:
        return config_channels.memory_key(context.account or "", context.region) if context.region else None

    def snapshot(self) -> dict[str, Any]:
        statuses = self.client.describe_configuration_recorder_status()["ConfigurationRecordersStatus"]
        wanted = self.params.get("recorder")
        recorders = {s["name"]: bool(s.get("recording")) for s in statuses if not wanted or s["name"] == wanted}
        channels = sorted(c["name"] for c in self.client.describe_delivery_channels()["DeliveryChannels"])
        return {"Recorders": recorders, "Channels": channels}

    def check(self, state: Mapping[str, Any]) -> bool:
        return bool(state["Recorders"]) and all(state["Recorders"].values()) and bool(state["Channels"])

    def apply(self, state: Mapping[str, Any]) -> None:
        if not state["Recorders"]:
            raise ActionError("there is no configuration recorder to start: set up AWS Config first")
        if not state["Channels"]:
            remembered = self.remembered()
            if not remembered:
                raise ActionError("the delivery channel was deleted and trailguard never saw it: re-create it by hand")
            for channel in remembered["Channels"]:
                self.client.put_delivery_channel(DeliveryChannel=channel)
            self.note = "put back the delivery channel remembered at " + str(remembered.get("RememberedAt", "?"))
        for name, recording in state["Recorders"].items():
            if not recording:
                self.client.start_configuration_recorder(ConfigurationRecorderName=name)

    def restore(self, state: Mapping[str, Any]) -> None:
        for name, recording in state["Recorders"].items():
            if not recording:
                self.client.stop_configuration_recorder(ConfigurationRecorderName=name)
        if not state["Channels"]:
            for channel in self.client.describe_delivery_channels()["DeliveryChannels"]:
                self.client.delete_delivery_channel(DeliveryChannelName=channel["name"])
