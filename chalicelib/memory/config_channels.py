"""AWS Config's delivery channels: remembered, because a deleted one must be put back
before the recorder can start again (as far as `rules` allow: a channel changed by a
call no playbook judges is a difference the sweep reports, not the one to put back)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chalicelib.memory import rules

CONFIGURATION_EVENTS = {"config.amazonaws.com": ("PutDeliveryChannel",)}
SETTINGS = ("Channels",)


def memory_key(account: str, region: str) -> str:
    return f"config-channels#{account}#{region}"


def remember_all(
    store: rules.Memory, client: Any, account: str, region: str, judged: bool = False
) -> list[rules.Offer]:
    channels = client.describe_delivery_channels()["DeliveryChannels"]
    if not channels:
        return []
    return [
        rules.offer(
            store, memory_key(account, region), {"Channels": channels}, settings=SETTINGS, judged=None if judged else ()
        )
    ]


def remember_from_event(
    store: rules.Memory, client: Any, record: Mapping[str, Any], account: str, region: str, judged: bool
) -> list[rules.Offer]:
    return remember_all(store, client, account, region, judged)
