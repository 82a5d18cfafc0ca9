"""The posture sweep: what events cannot tell us, checked on a schedule.

CloudTrail events stop reaching EventBridge once the last trail stops logging, so an
attacker who stops or deletes it first is never seen by the event handlers. The sweep
looks instead: trails that should be logging, keys that should be enabled. What it finds
becomes a synthetic CloudTrail record (eventType `TrailguardSweep`, its own eventID per
finding and day) that goes through the same playbooks as a real event, and it says
plainly in the incident that no event was received.

A finding people already decided to leave as it is (they undid trailguard's answer, or
denied its proposal: `memory.decisions`) is not answered again until the sweep sees the
resource safe once more.

It also offers memory the present configurations of trails, flow logs and Config's
delivery channels (for the actions that re-create them): a difference from what is
remembered that no judged event or decision explains is kept out of memory and reported
(`drifted`). It checks again the resource of every exception that has expired, with its
playbook's own steps (`check`): one still unsafe gets an incident, through the same
decision path as an event (`Responder.reopen`). Then it runs the incidents' upkeep
(`incidents.upkeep`): proposals expired, stuck incidents resumed, messages delivered.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from chalicelib.aws.errors import describe_error
from chalicelib.aws.seals import ChangedOutsideTrailguard, Refusals
from chalicelib.events.record import CloudTrailEvent
from chalicelib.events.synthetic import SWEEPER, sweep_record
from chalicelib.incidents.exceptions import ExpectedChange
from chalicelib.incidents.lifecycle import Incidents
from chalicelib.incidents.upkeep import Upkeep, UpkeepReport
from chalicelib.memory import refresh, rules, trails
from chalicelib.memory.decisions import (
    KEY_DISABLED,
    KEY_PENDING_DELETION,
    TRAIL_MISSING,
    TRAIL_NOT_LOGGING,
    Decisions,
)
from chalicelib.metrics import SWEEP, Metrics
from chalicelib.playbooks.catalog import Catalog
from chalicelib.respond.responder import Responder

log = logging.getLogger("trailguard")

CURSOR = "sweep-cursor"
"""Where the last run stopped for lack of time (the next starts there)."""


@dataclass
class SweepReport(UpkeepReport):
    trails_checked: int = 0
    keys_checked: int = 0
    opened: list[str] = field(default_factory=list)
    accepted: list[str] = field(default_factory=list)
    """Findings left alone because people decided so (which incident, who)."""
    drifted: list[str] = field(default_factory=list)
    """Remembered configurations that differ from the present ones without a judgement."""
    refused: list[str] = field(default_factory=list)
    """Incidents and remembered configurations changed outside trailguard, left alone ("key: why")."""
    exceptions_rechecked: list[str] = field(default_factory=list)
    """Exceptions that expired, and what their resource was found to be ("exc-…: safe" or the incident)."""
    baseline: list[str] = field(default_factory=list)
    """Deviations from the settings file's baseline and what the playbooks did about them."""
    places_looked: int = 0
    """Accounts and regions looked at in this run."""
    places_left: int = 0
    """Accounts and regions the time budget left for the next run (which starts with them)."""

    def merge(self, other: SweepReport) -> None:
        """Add what one account and region showed."""
        self.trails_checked += other.trails_checked
        self.keys_checked += other.keys_checked
        for name in ("opened", "accepted", "drifted", "errors", "baseline"):
            getattr(self, name).extend(getattr(other, name))

    def to_dict(self) -> dict[str, Any]:
        return {
            "trailsChecked": self.trails_checked,
            "keysChecked": self.keys_checked,
            "opened": self.opened,
            "expired": self.expired,
            "resumed": self.resumed,
            "delivered": self.delivered,
            "accepted": self.accepted,
            "drifted": self.drifted,
            "refused": self.refused,
            "exceptionsRechecked": self.exceptions_rechecked,
            "baseline": self.baseline,
            "placesLooked": self.places_looked,
            "placesLeft": self.places_left,
            "errors": self.errors,
        }


class Sweep:
    def __init__(
        self,
        *,
        catalog: Catalog,
        responder: Responder,
        incidents: Incidents,
        clients: Any,
        account: str,
        regions: Iterable[str],
        trail_names: Iterable[str] = ("*",),
        key_ids: Iterable[str] = (),
        allowed_keys: Iterable[str] = (),
        refusals: Refusals | None = None,
        metrics: Metrics | None = None,
        places: Callable[[], Iterable[tuple[str, str]]] | None = None,
        workers: int = 4,
        budget_seconds: float = 600.0,
        timer: Callable[[], float] = time.monotonic,
        baseline: Any = None,
    ) -> None:
        """`refusals`: what failed its seal check in this container, reported as `refused`;
        `metrics`: where the Slack backlog and the errors of each run are counted; `places`:
        every (account, region) in the organization's scope (None: `account` in `regions`),
        looked at `workers` at a time until `budget_seconds` have passed, the rest left to
        the next run, which starts where this one stopped."""
        self.places = places
        self.baseline = baseline
        """A `posture.baseline.BaselineCheck` for one place at a time, or None (not on the sweep)."""
        self.workers = workers
        self.budget_seconds = budget_seconds
        self.timer = timer
        self.metrics = metrics
        self.catalog = catalog
        self.responder = responder
        self.incidents = incidents
        self.upkeep = Upkeep(incidents, catalog)
        self.refusals = refusals
        self.clients = clients
        self.account = account
        self.regions = sorted(regions)
        self.trail_names = frozenset(trail_names)
        self.key_ids = frozenset(key_ids)
        self.allowed_keys = frozenset(allowed_keys)

    def handle(self) -> dict[str, Any]:
        """The scheduled Lambda: the report, which its log line also shows."""
        done = self.run()
        report = done.to_dict()
        log.info("sweep done", extra={**report})
        if self.metrics is not None:
            self.metrics.slack_backlog(done.pending, done.oldest_pending_seconds)
            if done.errors:
                self.metrics.handler_error(SWEEP, "the sweep met errors", count=len(done.errors))
        return report

    def run(self) -> SweepReport:
        """Look at each region, then tidy the incidents (`upkeep`)."""
        if self.refusals is not None:
            self.refusals.refused.clear()
        report = SweepReport()
        self._look_everywhere(report)
        try:
            self._recheck_exceptions(report)
        except Exception as error:
            report.errors.append(f"exceptions: {describe_error(error)}")
        self.upkeep.run(report)
        if self.refusals is not None:  # left alone: changed outside trailguard
            report.refused = list(dict.fromkeys(self.refusals.refused))
        return report

    # -- every account and region in scope ---------------------------------------------------

    def _look_everywhere(self, report: SweepReport) -> None:
        """Look at each place in scope, `workers` at a time, from where the last run stopped,
        until the budget runs out; a place not reached is left for the next run."""
        everywhere = sorted(self.places()) if self.places is not None else [(self.account, r) for r in self.regions]
        start = self._resume_at(everywhere)
        ordered = everywhere[start:] + everywhere[:start]
        deadline = self.timer() + self.budget_seconds
        looked: list[tuple[tuple[str, str], SweepReport | None]] = []
        with ThreadPoolExecutor(max_workers=max(1, min(self.workers, len(ordered) or 1))) as pool:
            futures = [(place, pool.submit(self._look_if_in_time, *place, deadline)) for place in ordered]
            looked = [(place, future.result()) for place, future in futures]
        for _place, found in looked:
            if found is not None:
                report.merge(found)
                report.places_looked += 1
        left = [place for place, found in looked if found is None]
        report.places_left = len(left)
        self._remember_where_to_resume(left[0] if left else None)

    def _look_if_in_time(self, account: str, region: str, deadline: float) -> SweepReport | None:
        if self.timer() >= deadline:
            return None
        return self.look(account, region)

    def look(self, account: str, region: str) -> SweepReport:
        """What one account and region show: trails, keys, remembered configurations. A place
        whose role cannot be assumed is reported as such, for each check, never skipped."""
        found = SweepReport()
        where = f"{account}/{region}" if self.places is not None else region
        for check in (self._check_trails, self._check_keys, self._remember, self._check_baseline):
            try:
                check(region, found, account)
            except Exception as error:
                found.errors.append(f"{where}: {check.__name__.strip('_')}: {describe_error(error)}")
        return found

    def _check_baseline(self, region: str, report: SweepReport, account: str) -> None:
        """The settings file's baseline, when it asks the sweep to check it (`baseline.sweep`)."""
        if self.baseline is None:
            return
        for deviation in self.baseline.check_place(account, region):
            report.baseline.append(f"{account}/{region} {deviation.trail} {deviation.check}: {deviation.decision}")

    def _resume_at(self, everywhere: list[tuple[str, str]]) -> int:
        if self.incidents.memory is None:
            return 0
        try:
            stored = self._memory.recall(CURSOR) or {}
        except ChangedOutsideTrailguard:
            return 0
        place = tuple(str(stored.get("Next", "")).split("/", 1))
        return everywhere.index(place) if place in everywhere else 0

    def _remember_where_to_resume(self, place: tuple[str, str] | None) -> None:
        if self.incidents.memory is None:
            return
        following = "/".join(place) if place else ""
        self._memory.amend(
            CURSOR, lambda stored: None if (stored or {}).get("Next", "") == following else {"Next": following}
        )

    @property
    def _memory(self) -> rules.Memory:
        if self.incidents.memory is None:
            raise RuntimeError("the sweep needs trailguard's memory")
        return self.incidents.memory

    # -- trails ------------------------------------------------------------------------------

    def _check_trails(self, region: str, report: SweepReport, account: str) -> None:
        decisions = self._decisions(region, account)
        client = self.clients.client("cloudtrail", account, region)
        present = client.describe_trails(includeShadowTrails=False)["trailList"]
        every = "*" in self.trail_names
        seen: set[str] = set()
        for trail in present:
            decisions.safe_again(TRAIL_MISSING, trail["TrailARN"])
            if not (every or trail["Name"] in self.trail_names or trail["TrailARN"] in self.trail_names):
                continue
            seen.update((trail["Name"], trail["TrailARN"]))
            report.trails_checked += 1
            status = client.get_trail_status(Name=trail["TrailARN"])
            if status.get("IsLogging"):
                decisions.safe_again(TRAIL_NOT_LOGGING, trail["TrailARN"])
                continue
            finding = f"trail {trail['Name']} not logging"
            if self._accepted(decisions, TRAIL_NOT_LOGGING, trail["TrailARN"], finding, report):
                continue
            stopped = status.get("StopLoggingTime") or self._today()
            self._open(
                region,
                "StopLogging",
                {"name": trail["TrailARN"]},
                finding,
                f"{trail['TrailARN']}@{stopped}",
                report,
                account=account,
            )
        for name in sorted(self.trail_names - seen - {"*"}):
            trail_account, trail_region, trail_name = trails.locate(name, account, region)
            if trail_region != region or not self._remembers(trails.memory_key(trail_account, region, trail_name)):
                continue
            report.trails_checked += 1
            finding = f"trail {trail_name} missing"
            if self._accepted(decisions, TRAIL_MISSING, name, finding, report):
                continue
            self._open(
                region, "DeleteTrail", {"name": trail_name}, finding, f"{name}@{self._today()}", report, account=account
            )
        decisions.forget_safe()

    def _remembers(self, key: str) -> bool:
        """Whether a configuration is remembered under `key`. One changed outside trailguard
        counts: the incident then opens, and its restore fails saying why."""
        try:
            return self._memory.recall(key) is not None
        except ChangedOutsideTrailguard:
            return True

    # -- what is remembered ------------------------------------------------------------------

    def _remember(self, region: str, report: SweepReport, account: str) -> None:
        """Offer memory what can be put back after a deletion: trails, flow logs, delivery
        channels; report what differs from the remembered without a judgement."""
        for kind in refresh.KINDS:
            try:
                offers = kind.sweep(self._memory, self.clients.client(kind.service, account, region), account, region)
            except Exception as error:
                report.errors.append(f"{region}: remember {kind.name}s: {describe_error(error)}")
                continue
            for offer in offers:
                if offer.outcome == rules.DRIFT:
                    report.drifted.append(f"{offer.key}: {offer.drift}")
                    message, fields = rules.log_line(offer) or ("", {})
                    log.warning(message, extra=fields)

    # -- keys --------------------------------------------------------------------------------

    def _check_keys(self, region: str, report: SweepReport, account: str) -> None:
        if not self.key_ids:
            return
        decisions = self._decisions(region, account)
        client = self.clients.client("kms", account, region)
        aliases: dict[str, set[str]] = {}
        for page in client.get_paginator("list_aliases").paginate():
            for alias in page["Aliases"]:
                if alias.get("TargetKeyId"):
                    aliases.setdefault(alias["TargetKeyId"], set()).add(alias["AliasName"])
        for page in client.get_paginator("list_keys").paginate():
            for key in page["Keys"]:
                names = {key["KeyId"], key["KeyArn"], *aliases.get(key["KeyId"], set())}
                if not ("*" in self.key_ids or names & self.key_ids) or names & self.allowed_keys:
                    continue
                metadata = client.describe_key(KeyId=key["KeyId"])["KeyMetadata"]
                if metadata.get("KeyManager") != "CUSTOMER":
                    continue
                report.keys_checked += 1
                state, request = metadata.get("KeyState"), {"keyId": key["KeyArn"]}
                for finding_kind, found in (
                    (KEY_DISABLED, state == "Disabled"),
                    (KEY_PENDING_DELETION, state == "PendingDeletion"),
                ):
                    if not found:
                        decisions.safe_again(finding_kind, key["KeyArn"])
                if state == "Disabled":
                    finding = f"key {key['KeyId']} disabled"
                    if self._accepted(decisions, KEY_DISABLED, key["KeyArn"], finding, report):
                        continue
                    occurrence = f"{key['KeyArn']}@disabled@{self._today()}"
                    self._open(region, "DisableKey", request, finding, occurrence, report, "kms.amazonaws.com", account)
                elif state == "PendingDeletion":
                    finding = f"key {key['KeyId']} pending deletion"
                    if self._accepted(decisions, KEY_PENDING_DELETION, key["KeyArn"], finding, report):
                        continue
                    occurrence = f"{key['KeyArn']}@{metadata.get('DeletionDate') or self._today()}"
                    self._open(
                        region,
                        "ScheduleKeyDeletion",
                        request,
                        finding,
                        occurrence,
                        report,
                        "kms.amazonaws.com",
                        account,
                    )
        decisions.forget_safe()

    # -- exceptions that expired -----------------------------------------------------------------

    def _recheck_exceptions(self, report: SweepReport) -> None:
        exceptions = self.incidents.exceptions
        if exceptions is None:
            return
        now = self.incidents.clock()
        for change in exceptions.listed():
            if change.in_force(now):
                continue
            try:
                result = self._recheck(change, report)
            except Exception as error:
                log.exception("the sweep could not check the resource of exception %s", change.id)
                report.error(f"exception {change.id}: {describe_error(error)}")
                continue
            exceptions.rechecked(change, result)
            report.exceptions_rechecked.append(f"{change.id}: {result}")
            self._note_on_origin(change, result)

    def _recheck(self, change: ExpectedChange, report: SweepReport) -> str:
        """What the expired exception's resource is now; an incident if it is still unsafe."""
        from chalicelib.actions.binding import ActionBinder

        playbook = self.catalog.get(change.playbook_id)
        if playbook is None:
            return f"not checked: playbook {change.playbook_id} is no longer loaded"
        if not change.plan:
            return f"not checked: {change.playbook_id} runs no steps, so it has nothing to check with"
        binder = ActionBinder(self.clients, self.incidents.memory)
        unsafe = []
        for step in change.plan:
            action = binder.bind(
                step.action, step.params, account=change.account, region=change.region, remembered=step.remembered
            )
            if not action.check(action.snapshot()):
                unsafe.append(step.action)
        if not unsafe:
            return "safe: the resource is as the playbook wants it"
        finding = f"exception {change.id} expired ({change.reason}) and {change.resource} is still unsafe"
        record = sweep_record(
            change.account or self.account,
            change.region,
            change.source or playbook.source,
            change.event_name or playbook.events[0],
            {"name": change.resource},
            finding,
            f"{change.id}@{change.expires_at}",
            self.incidents.clock(),
        )
        outcome = self.responder.reopen(
            CloudTrailEvent.from_record(record, "the posture sweep"), playbook, tuple(change.plan), finding
        )
        if outcome is None:
            return f"still unsafe ({', '.join(unsafe)}), but now outside the organization's scope: no incident"
        if not outcome.duplicate:
            report.opened.append(outcome.incident.id)
        return f"still unsafe ({', '.join(unsafe)}): incident {outcome.incident.id} ({outcome.incident.state.value})"

    def _note_on_origin(self, change: ExpectedChange, result: str) -> None:
        """The incident the exception was made on records how it ended (best effort: it may be gone)."""
        from chalicelib.incidents.model import BUSY_STATES

        if change.incident_id is None:
            return
        try:
            origin = self.incidents.get(change.incident_id)
            if origin is not None and origin.state not in BUSY_STATES:
                self.incidents.note(origin.id, SWEEPER, "exception-expired", f"{change.id}: {result}")
        except Exception:
            log.warning("could not note the expiry on incident %s", change.incident_id)

    # -- helpers -----------------------------------------------------------------------------

    def _open(
        self,
        region: str,
        name: str,
        request: dict[str, Any],
        finding: str,
        occurrence: str,
        report: SweepReport,
        source: str = "cloudtrail.amazonaws.com",
        account: str | None = None,
    ) -> None:
        now = self.incidents.clock()
        record = sweep_record(account or self.account, region, source, name, request, finding, occurrence, now)
        _, outcomes = self.responder.respond(CloudTrailEvent.from_record(record, "the posture sweep"))
        report.opened += [outcome.incident.id for outcome in outcomes if not outcome.duplicate]
        if not outcomes:
            log.warning("the sweep found %s in %s, but no playbook answers %s", finding, region, name)

    def _decisions(self, region: str, account: str | None = None) -> Decisions:
        """The findings people decided to leave, read before the sweep looks at anything."""
        return Decisions(self._memory, account or self.account, region, self.incidents.clock())

    def _accepted(self, decisions: Decisions, kind: str, resource: str, finding: str, report: SweepReport) -> bool:
        decision = decisions.accepted(kind, resource)
        if decision is not None:
            report.accepted.append(f"{finding}: left as {decision['By']} decided ({decision['Incident']})")
        return decision is not None

    def _today(self) -> str:
        return self.incidents.clock().date().isoformat()
