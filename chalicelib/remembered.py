"""What trailguard remembers so that it can put back what a call deleted: trail
configurations, VPC flow logs, AWS Config delivery channels.

Each kind is refreshed by the successful calls that change it (when no playbook objected
to the call: a change a playbook answered is not the configuration to restore) and by
the posture sweep, in the account and region concerned.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from chalicelib import configservice, flowlogs, trails


@dataclass(frozen=True)
class Kind:
    name: str
    service: str
    events: Mapping[str, tuple[str, ...]]
    from_event: Callable[[Any, Any, Mapping[str, Any], str, str], None]
    sweep: Callable[[Any, Any, str, str], int]


def _trail_from_event(memory: Any, client: Any, record: Mapping[str, Any], account: str, region: str) -> None:
    trail = trails.trail_named_in(record)
    if trail is not None:
        trails.remember(memory, client, trail, account, region)


def _all_trails(memory: Any, client: Any, account: str, region: str) -> int:
    present = client.describe_trails(includeShadowTrails=False)["trailList"]
    for trail in present:
        trails.remember(memory, client, trail["TrailARN"], account, region)
    return len(present)


KINDS = (
    Kind("trail", "cloudtrail", trails.CONFIGURATION_EVENTS, _trail_from_event, _all_trails),
    Kind("flow log", "ec2", flowlogs.CONFIGURATION_EVENTS, flowlogs.remember_from_event, flowlogs.remember_all),
    Kind(
        "Config delivery channel",
        "config",
        configservice.CONFIGURATION_EVENTS,
        configservice.remember_from_event,
        configservice.remember_all,
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
