"""What trailguard remembers so that it can put back what a call deleted: trail
configurations, VPC flow logs, AWS Config delivery channels.

Each kind is offered to memory after the successful calls that change it
(`after_call`) and by the posture sweep, in the account and region concerned; `rules`
decide what is written (a change a playbook objected to, or that nobody judged, is not the
configuration to restore).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from chalicelib.aws.clients import ClientProvider
from chalicelib.events.record import CloudTrailEvent
from chalicelib.memory import config_channels, flow_logs, rules, trails
from chalicelib.memory.rules import Memory, Offer

log = logging.getLogger("trailguard")


@dataclass(frozen=True)
class Kind:
    name: str
    service: str
    events: Mapping[str, tuple[str, ...]]
    from_event: Callable[[Any, Any, Mapping[str, Any], str, str, bool], list[Offer]]
    """(memory, client, record, account, region, judged): offer what the call changed."""
    sweep: Callable[[Any, Any, str, str], list[Offer]]
    """(memory, client, account, region): offer everything there is (nothing judged)."""


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


def after_call(
    memory: Memory, clients: ClientProvider, event: CloudTrailEvent, judged: bool, home_account: Callable[[], str]
) -> None:
    """Offer memory the configuration a successful call changed, if it changes one of the
    kinds; `judged`: the playbooks judged the call without objecting (the settings it
    changed may then be remembered); `home_account()` is where to remember a call whose
    record names no account. What was not simply remembered is logged; a failure is
    logged, never raised: the event itself was handled."""
    kind = kind_for(event.source, event.name)
    if kind is None:
        return
    try:
        client = clients.client(kind.service, event.account, event.region)
        account = event.account or home_account()
        offers = kind.from_event(memory, client, event.record, account, event.region, judged)
    except Exception as error:
        log.warning(f"could not remember the {kind.name}", extra={"eventID": event.event_id, "reason": str(error)})
        return
    for offer in offers:
        line = rules.log_line(offer, eventID=event.event_id)
        if line is not None:
            message, fields = line
            log.log(logging.WARNING if offer.outcome == rules.DRIFT else logging.INFO, message, extra=fields)
