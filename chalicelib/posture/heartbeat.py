"""The heartbeat: proof that CloudTrail events still arrive from every account and region.

trailguard's one sensor is CloudTrail events reaching EventBridge. A trail stopped by a
path that produces no event (an SCP, a deleted bucket policy, a region left out of a trail
updated elsewhere), a forwarding rule deleted in a member account, or an EventBridge outage
all look the same from the centre: silence, which no playbook can answer.

So on a schedule (`TRAILGUARD_HEARTBEAT_MINUTES`) the heartbeat tags a canary SSM parameter
trailguard owns in every account and region in scope (`AddTagsToResource`: a management
write every trail records; standard parameters and tags cost nothing). The rules' handler
recognises the tag write as a heartbeat (`memory.heartbeats.is_beat`, made by trailguard's
own identity), notes when it arrived and answers nothing. When a beat has waited longer than
the grace period (`TRAILGUARD_HEARTBEAT_GRACE_MINUTES`) the heartbeat opens one incident for
the account and region ("trailguard cannot see account X in region Y since T", critical,
notify: there is nothing to put back, only people to tell), and when beats arrive again it
closes that incident itself, saying since when it sees again. It is never taken for an
attack, and its calls never reach a playbook.

An account whose role cannot be assumed, or whose canary cannot be tagged, is reported
(`errors`), not skipped: it is as blind as one whose events stop.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from chalicelib.aws.errors import describe_error
from chalicelib.aws.retrying import error_code
from chalicelib.events.record import CloudTrailEvent
from chalicelib.events.synthetic import sweep_record
from chalicelib.incidents.lifecycle import Incidents
from chalicelib.incidents.model import TRAILGUARD, Incident, State, incident_id
from chalicelib.memory import heartbeats
from chalicelib.metrics import Metrics

log = logging.getLogger("trailguard")

PLAYBOOK_ID = "trailguard-heartbeat"
"""The incidents' playbook id: not a playbook file, as nothing is matched or run."""
WHO = "trailguard-heartbeat"
"""Who the incidents' history names for what the heartbeat decided."""


@dataclass
class HeartbeatReport:
    beats: int = 0
    blind: list[str] = field(default_factory=list)
    """Accounts and regions not seen within the grace period ("account/region since T: incident")."""
    seen_again: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"beats": self.beats, "blind": self.blind, "seenAgain": self.seen_again, "errors": self.errors}


class Heartbeat:
    def __init__(
        self,
        *,
        incidents: Incidents,
        clients: Any,
        places: Callable[[], Iterable[tuple[str, str]]],
        canary: str,
        grace: dt.timedelta,
        workers: int = 4,
        metrics: Metrics | None = None,
    ) -> None:
        """`places`: the (account, region) pairs in scope, read at each run."""
        if incidents.memory is None:
            raise ValueError("the heartbeat needs trailguard's memory")
        self.incidents = incidents
        self.memory = incidents.memory
        self.clients = clients
        self.places = places
        self.canary = canary
        self.grace = grace
        self.workers = workers
        self.metrics = metrics

    def handle(self) -> dict[str, Any]:
        """The scheduled Lambda: the report, which its log line also shows."""
        report = self.run().to_dict()
        log.info("heartbeat done", extra=report)
        return report

    def run(self) -> HeartbeatReport:
        report = HeartbeatReport()
        now = self.incidents.clock()
        places = list(self.places())
        with ThreadPoolExecutor(max_workers=max(1, min(self.workers, len(places) or 1))) as pool:
            for account, region, outcome in pool.map(lambda p: (p[0], p[1], self._one(p[0], p[1], now)), places):
                for kind, text in outcome:
                    if kind == "beats":
                        report.beats += 1
                    else:
                        getattr(report, kind).append(f"{account}/{region}: {text}")
        return report

    def _one(self, account: str, region: str, now: dt.datetime) -> list[tuple[str, str]]:
        """Judge what the last beats found, then beat again; what to report."""
        found: list[tuple[str, str]] = []
        try:
            found += self._judge(account, region, now)
        except Exception as error:
            found.append(("errors", f"cannot judge the heartbeat: {describe_error(error)}"))
        try:
            self._beat(account, region, now)
            heartbeats.sent(self.memory, account, region, now)
            found.append(("beats", ""))
        except Exception as error:
            found.append(("errors", f"cannot beat (the member role or the canary): {describe_error(error)}"))
        return found

    def _beat(self, account: str, region: str, now: dt.datetime) -> None:
        ssm = self.clients.client("ssm", account, region)
        tags = [{"Key": heartbeats.CANARY_TAG, "Value": now.strftime("%Y-%m-%dT%H:%M:%SZ")}]
        try:
            ssm.add_tags_to_resource(ResourceType="Parameter", ResourceId=self.canary, Tags=tags)
        except Exception as error:
            if error_code(error) not in ("InvalidResourceId", "ParameterNotFound"):
                raise
            # The first beat in this account and region: the canary is made, then tagged.
            ssm.put_parameter(
                Name=self.canary,
                Value="trailguard's heartbeat canary: its tag is rewritten on a schedule; do not delete",
                Type="String",
                Overwrite=True,
            )
            ssm.add_tags_to_resource(ResourceType="Parameter", ResourceId=self.canary, Tags=tags)

    def _judge(self, account: str, region: str, now: dt.datetime) -> list[tuple[str, str]]:
        document = heartbeats.state(self.memory, account, region)
        since = heartbeats.blind_since(document, now, self.grace)
        open_incident = document.get("Incident")
        seen = heartbeats.parse_time(document.get("SeenAt"))
        if self.metrics is not None and seen is not None:
            self.metrics.heartbeat_gap(account, region, round((now - seen).total_seconds(), 1))
        if since is None and open_incident:
            self._resolve(open_incident, account, region, seen)
            heartbeats.mark(self.memory, account, region, None)
            return [("seen_again", f"since {_text(seen)}: {open_incident} closed")]
        if since is not None and not open_incident:
            incident = self._open(account, region, since, now)
            heartbeats.mark(self.memory, account, region, incident.id)
            return [("blind", f"since {_text(since)}: {incident.id}")]
        if since is not None:
            return [("blind", f"since {_text(since)}: {open_incident}")]
        return []

    def _open(self, account: str, region: str, since: dt.datetime, now: dt.datetime) -> Incident:
        finding = (
            f"trailguard cannot see account {account} in region {region} since {_text(since)}: "
            f"the heartbeat's events have not arrived for {_minutes(now - since)}"
        )
        record = sweep_record(
            account,
            region,
            heartbeats.EVENT_SOURCE,
            "HeartbeatMissed",
            {"canary": self.canary},
            finding,
            _text(since),
            now,
        )
        record["userAgent"] = record["sourceIPAddress"] = WHO
        record["additionalEventData"] = {"trailguardHeartbeat": finding}
        event = CloudTrailEvent.from_record(record, "the heartbeat")
        incident = Incident(
            id=incident_id(event.event_id, PLAYBOOK_ID),
            playbook_id=PLAYBOOK_ID,
            playbook_version=1,
            title=f"trailguard cannot see account {account} in {region}",
            severity="critical",
            mode="notify",
            event=event.summary(),
            state=State.NOTIFIED,
            plan=[],
        )
        incident.notification = self.incidents.notifier.address(incident)
        if self.incidents.open(incident, TRAILGUARD, finding):
            self.incidents.tell(incident)
        return incident

    def _resolve(self, incident: str, account: str, region: str, seen: dt.datetime | None) -> None:
        detail = f"events from account {account} in {region} arrive again (a heartbeat made at {_text(seen)})"
        try:
            resolved = self.incidents.acknowledge(incident, WHO, detail)
            self.incidents.tell(resolved)
        except Exception as error:  # already acknowledged by a person, or expired: nothing left to close
            log.info("heartbeat incident not closed", extra={"incident": incident, "reason": describe_error(error)})


def _text(value: dt.datetime | None) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if value else "never"


def _minutes(delta: dt.timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"
