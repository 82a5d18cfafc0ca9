"""AWS Config's delivery channels: remembered, because a deleted one must be put back
before the recorder can start again."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chalicelib.incidents import timestamp, utc_now

CONFIGURATION_EVENTS = {"config.amazonaws.com": ("PutDeliveryChannel",)}


def memory_key(account: str, region: str) -> str:
    return f"config-channels#{account}#{region}"


def remember_all(memory: Any, client: Any, account: str, region: str) -> int:
    channels = client.describe_delivery_channels()["DeliveryChannels"]
    if channels:
        memory.remember(memory_key(account, region), {"Channels": channels, "RememberedAt": timestamp(utc_now())})
    return len(channels)


def remember_from_event(memory: Any, client: Any, record: Mapping[str, Any], account: str, region: str) -> None:
    remember_all(memory, client, account, region)
