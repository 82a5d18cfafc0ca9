"""What trailguard remembers so that it can put back what a call deleted: trail
configurations, VPC flow logs, AWS Config delivery channels.

Each kind is offered to memory after the successful calls that change it and by the
posture sweep, in the account and region concerned; `memory` decides what is written (a
change a playbook objected to, or that nobody judged, is not the configuration to restore).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from chalicelib.memory import config_channels, flow_logs, trails
from chalicelib.memory.rules import Offer


@dataclass(frozen=True)
class Kind:
    name: str
    service: str
    events: Mapping[str, tuple[str, ...]]
    from_event: Callable[[Any, Any, Mapping[str, Any], str, str, bool], list[Offer]]
    """(store, client, record, account, region, judged): offer what the call changed."""
    sweep: Callable[[Any, Any, str, str], list[Offer]]
    """(store, client, account, region): offer everything there is (nothing judged)."""


KINDS = (
    Kind("trail", "cloudtrail", trails.CONFIGURATION_EVENTS, trails.remember_from_event, trails.remember_all),
    Kind("flow log", "ec2", flow_logs.CONFIGURATION_EVENTS, flow_logs.remember_from_event, flow_logs.remember_all),
    Kind(
        "Config delivery channel",
        "config",
        config_channels.CONFIGURATION_EVENTS,
        config_channels.remember_from_event,
        config_channels.remember_all,
    ),
)


def watched_events() -> dict[str, list[str]]:
    """Every (source -> event names) after which something is remembered."""
    watched: dict[str, list[str]] = {}
    for kind in KINDS:
        for source, names in kind.events.items():
            watched.setdefault(source, []).extend(names)
    return watched


def kind_for(source: str, name: str) -> Kind | None:
    return next((kind for kind in KINDS if name in kind.events.get(source, ())), None)
