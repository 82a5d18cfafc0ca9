"""What a Lambda container holds: the catalog, loaded once at import, and what acts on it.

The catalog is loaded when `app.py` is imported, so that `chalice package`/`deploy`
refuse a bad playbook before anything is deployed. Clients, the store and the responder
are built on first use, keeping the cold start small; building the responder asks STS
who we are, so that calls made through the function's own role are never answered.

Two views of the table: the acting functions (the rules' handler, the sweep, the click
worker) use `store`, which seals what they write and checks what they read (see
`integrity`); the Slack endpoint records clicks through `unsealed_store`, as its role
holds no KMS permission, and hands the work to the worker, which checks it.

Event handling draws one line between bad input and failure: an event that is not a
usable CloudTrail event is answered with "rejected" and a log line (Lambda must not retry
it); an action that fails is recorded in its incident. Only an error in trailguard itself
(or in its store) escapes, so that Lambda's bounded retries and failure destination keep
the event; a retried event finds its incident and opens no second one. An incident too
large to record in any form is answered "failed" with the reason and an error line:
delivering the event again could not make it fit.
"""

from __future__ import annotations

import functools
import json
import logging
import time
import urllib.parse
from typing import Any

from chalicelib import logs
from chalicelib.actions.binding import ActionBinder
from chalicelib.aws.clients import AwsClients
from chalicelib.aws.own_calls import DynamoOwnCalls, MemoryOwnCalls
from chalicelib.aws.seals import KmsSealer, LocalSealer, Refusals, Sealer
from chalicelib.events.record import CloudTrailEvent, EventError
from chalicelib.guards import OwnIdentities
from chalicelib.incidents.lifecycle import Incidents
from chalicelib.incidents.notify import Fanout, LogNotifier, Notifier
from chalicelib.incidents.seals import SealedStore
from chalicelib.incidents.store import DynamoStore, IncidentStore, IncidentTooLarge, MemoryStore
from chalicelib.memory import refresh as remembered
from chalicelib.memory import rules as memory
from chalicelib.memory.documents import Documents, DynamoDocuments, MemoryDocuments, SealedDocuments
from chalicelib.memory.rules import Memory
from chalicelib.playbooks.catalog import Catalog, EventRule
from chalicelib.responder import Decision, Outcome, Responder
from chalicelib.settings import Settings, missing_integrity_key

log = logging.getLogger("trailguard")


class Runtime:
    def __init__(self, settings: Settings, catalog: Catalog) -> None:
        self.settings = settings
        self.catalog = catalog
        log.setLevel(settings.log_level)
        logs.configure()

    @classmethod
    def from_environment(cls) -> Runtime:
        settings = Settings.from_environment()
        return cls(settings, Catalog.load(settings.playbooks, with_tests=False))

    def reset(self) -> None:
        """Forget clients, store and responder, as a new Lambda container would."""
        for name in (
            "own_calls",
            "clients",
            "unsealed_store",
            "sealer",
            "store",
            "refusals",
            "documents",
            "memory",
            "incidents",
            "claims",
            "responder",
            "notifier",
            "slack_token",
            "slack_web",
            "signature_verifier",
            "interactions",
            "click_worker",
        ):
            self.__dict__.pop(name, None)

    def eventbridge_rules(self) -> list[EventRule]:
        """The playbooks' events, and the changes that keep remembered configurations fresh."""
        return self.catalog.eventbridge_rules(also=remembered.watched_events())

    @functools.cached_property
    def own_calls(self) -> DynamoOwnCalls | MemoryOwnCalls:
        """The request ids of trailguard's own calls in member accounts (see `own_calls`)."""
        if self.settings.table is None:
            return MemoryOwnCalls()
        return DynamoOwnCalls(lambda: self.clients.home_client("dynamodb"), self.settings.table)

    @functools.cached_property
    def clients(self) -> AwsClients:
        return AwsClients(
            member_role=self.settings.member_role,
            external_id=self.settings.external_id,
            note_own_call=lambda request_id: self.own_calls.record(request_id),
        )

    @functools.cached_property
    def unsealed_store(self) -> IncidentStore:
        """The table as it is: what the Slack endpoint reads and writes a click to."""
        if self.settings.table is None:
            log.warning("TRAILGUARD_TABLE is not set: incidents are kept in this process's memory only")
            return MemoryStore()
        return DynamoStore(self.clients.home_client("dynamodb"), self.settings.table, self.settings.retention_days)

    @functools.cached_property
    def sealer(self) -> Sealer:
        """KMS with the stage's integrity key; a key of this process's own when incidents live
        in its memory. A table without a key is refused: it would run unsealed."""
        if self.settings.integrity_key is not None:
            return KmsSealer(self.clients.home_client("kms"), self.settings.integrity_key)
        if self.settings.table is not None:
            raise LookupError(missing_integrity_key(self.settings.table))
        return LocalSealer()

    @functools.cached_property
    def refusals(self) -> Refusals:
        """What failed its seal check in this container (the sweep reports it)."""
        return Refusals()

    @functools.cached_property
    def store(self) -> SealedStore:
        """The table as the acting functions use it: writes sealed, reads checked."""
        return SealedStore(self.unsealed_store, self.sealer, self.refusals)

    @functools.cached_property
    def documents(self) -> Documents:
        """Remembered configurations and decisions, sealed like the incidents."""
        if self.settings.table is None:
            return SealedDocuments(MemoryDocuments(), self.sealer, self.refusals)
        inner = DynamoDocuments(self.clients.home_client("dynamodb"), self.settings.table)
        return SealedDocuments(inner, self.sealer, self.refusals)

    @functools.cached_property
    def memory(self) -> Memory:
        return Memory(self.documents, lambda incident_id: self.incidents.stance(incident_id))

    @functools.cached_property
    def incidents(self) -> Incidents:
        return Incidents(
            self.store,
            ActionBinder(self.clients, self.memory),
            memory=self.memory,
            notifier=self.notifier,
            lease_seconds=self.settings.lease_seconds,
        )

    @functools.cached_property
    def claims(self) -> Incidents:
        """The Slack endpoint's door to the incidents: it records decisions and runs nothing
        (no actions, no seal); the worker carries them out."""
        return Incidents(self.unsealed_store, None, lease_seconds=self.settings.lease_seconds)

    @functools.cached_property
    def responder(self) -> Responder:
        own_role = self.clients.own_role_name()
        own = OwnIdentities.of(
            self.settings, self.clients.home_account(), [own_role] if own_role else [], own_calls=self.own_calls
        )
        return Responder(
            self.catalog,
            own=own,
            incidents=self.incidents,
            lists=self.settings.named_lists,
        )

    # -- Slack (imported only when configured or clicked: slack_sdk costs cold start) -------

    @functools.cached_property
    def notifier(self) -> Notifier:
        settings = self.settings
        if not settings.slack or settings.slack_channel is None:
            return LogNotifier()
        from chalicelib.slack.delivery import SlackNotifier

        slack = SlackNotifier(
            lambda: self.slack_web,
            default_channel=settings.slack_channel,
            channels={p.id: p.slack_channel for p in self.catalog.playbooks if p.slack_channel},
            account_names=settings.account_names,
        )
        return Fanout(LogNotifier(), slack)

    @functools.cached_property
    def slack_token(self) -> str:
        """The bot token, read once per container."""
        from chalicelib.slack.secrets import read_secret

        if self.settings.slack_token is None:
            raise LookupError("TRAILGUARD_SLACK_TOKEN is not set")
        return read_secret(self.settings.slack_token, self.clients.home_client)

    @functools.cached_property
    def slack_web(self) -> Any:
        from chalicelib.slack.client import web_client

        return web_client(self.slack_token, self.settings.slack_base_url)

    @functools.cached_property
    def signature_verifier(self) -> Any:
        from slack_sdk.signature import SignatureVerifier

        from chalicelib.slack.secrets import read_secret

        if self.settings.slack_signing_secret is None:
            raise LookupError("TRAILGUARD_SLACK_SIGNING_SECRET is not set: every Slack request is refused")
        return SignatureVerifier(read_secret(self.settings.slack_signing_secret, self.clients.home_client))

    def _verify_slack(self, body: bytes | str, headers: Any) -> bool:
        try:
            verifier = self.signature_verifier
        except Exception as error:
            log.error(json.dumps({"message": "cannot check Slack signatures", "reason": str(error)}))
            return False
        return bool(verifier.is_valid_request(body, headers))

    @functools.cached_property
    def interactions(self) -> Any:
        from chalicelib.slack.approvers import Approvers, slack_group_members
        from chalicelib.slack.client import web_client
        from chalicelib.slack.interactions import Interactions
        from chalicelib.slack.worker import lambda_dispatch, send_ephemeral

        settings = self.settings
        worker = settings.slack_worker
        prefixes: tuple[str, ...] = ("https://hooks.slack.com/",)
        if settings.slack_base_url:
            parts = urllib.parse.urlsplit(settings.slack_base_url)
            prefixes += (f"{parts.scheme}://{parts.netloc}/",)
        return Interactions(
            verify=self._verify_slack,
            incidents=self.claims,
            approvers=Approvers(
                settings.slack_approvers,
                {p.id: p.approvers for p in self.catalog.playbooks},
                slack_group_members(
                    functools.cache(lambda: web_client(self.slack_token, settings.slack_base_url, quick=True))
                ),
            ),
            dispatch=lambda_dispatch(self.clients.home_client("lambda"), worker) if worker else self.run_click_job,
            respond=send_ephemeral,
            response_url_prefixes=prefixes,
            team_id=settings.slack_team_id,
            app_id=settings.slack_app_id,
        )

    @functools.cached_property
    def click_worker(self) -> Any:
        from chalicelib.slack.worker import ClickWorker, send_ephemeral

        return ClickWorker(self.incidents, send_ephemeral)

    def answer_slack(self, raw_body: bytes | str, headers: Any) -> Any:
        """`POST /slack/interactions` (see `slack.interactions`): an `Answer` within 3 s.

        A failure of trailguard or of its table is answered 503, never 500 with a stack
        trace: nothing was decided (a decision is one conditional write, the last step
        before the hand-over), so the person can press again.
        """
        from chalicelib.slack.interactions import Answer

        try:
            return self.interactions.answer(raw_body, headers)
        except Exception:
            log.exception("could not handle a Slack interaction")
            return Answer(503, {"error": "trailguard could not handle the click; nothing was changed; try again"})

    def run_click_job(self, job: Any) -> dict[str, Any]:
        """The worker Lambda: the AWS work and the message update a click asked for."""
        started = time.perf_counter()
        result = self.click_worker.run(job)
        log.info(
            json.dumps(
                {"message": "click job", **result, "duration_ms": logs.milliseconds(time.perf_counter() - started)}
            )
        )
        return result

    def handle_eventbridge(self, raw: Any) -> dict[str, Any]:
        """Answer one EventBridge delivery; the result is also what the logs show: one line
        per decision (an incident opened or found again), or one saying why none was made."""
        started = time.perf_counter()
        try:
            event = CloudTrailEvent.from_eventbridge(raw)
        except EventError as error:
            log.warning(
                json.dumps(
                    {
                        "message": "event rejected",
                        "reason": str(error),
                        "duration_ms": logs.milliseconds(time.perf_counter() - started),
                    }
                )
            )
            return {"status": "rejected", "reason": str(error)}
        where = {
            "eventID": event.event_id,
            "eventSource": event.source,
            "eventName": event.name,
            "account": event.account,
            "region": event.region,
            "actor": event.actor.label,
        }
        try:
            decision, outcomes = self.responder.respond(event)
        except IncidentTooLarge as error:
            elapsed = logs.milliseconds(time.perf_counter() - started)
            log.error(
                json.dumps({"message": "incident too large", **where, "error": str(error), "duration_ms": elapsed})
            )
            return {"status": "failed", "eventID": event.event_id, "eventName": event.name, "reason": str(error)}
        self._remember(event, decision, outcomes)
        elapsed = logs.milliseconds(time.perf_counter() - started)
        result: dict[str, Any] = {"status": "handled", "eventID": event.event_id, "eventName": event.name}
        if decision.skip is not None:
            result.update(status="skipped", skipped=decision.skip.code, reason=decision.skip.reason)
            log.info(
                json.dumps(
                    {
                        "message": "event skipped",
                        **where,
                        "skipped": decision.skip.code,
                        "reason": decision.skip.reason,
                        "duration_ms": elapsed,
                    }
                )
            )
        result["incidents"] = [_summary(outcome) for outcome in outcomes]
        if log.isEnabledFor(logging.INFO):
            for outcome in outcomes:
                log.info(json.dumps(_decision_line(outcome, where, elapsed)))
        if decision.skip is None and not outcomes:
            log.debug(json.dumps({"message": "no playbook answered", **where, "duration_ms": elapsed}))
        return result

    def sweep(self) -> dict[str, Any]:
        """The scheduled posture sweep (see `sweep`); the result is also what the logs show."""
        from chalicelib.sweep import Sweep

        settings = self.settings
        report = Sweep(
            catalog=self.catalog,
            responder=self.responder,
            incidents=self.incidents,
            clients=self.clients,
            account=self.clients.home_account(),
            regions=settings.sweep_regions or {self.clients.home_region()},
            trail_names=settings.sweep_trails,
            key_ids=settings.sweep_keys,
            allowed_keys=settings.sweep_allowed_keys,
            refusals=self.refusals,
        ).run()
        log.info(json.dumps({"message": "sweep done", **report.to_dict()}))
        return report.to_dict()

    def _remember(self, event: CloudTrailEvent, decision: Decision, outcomes: list[Outcome]) -> None:
        """Offer memory the configuration a call changed (`memory` says what it keeps).

        A change a playbook answered is not offered: its incident holds the configuration
        from before it. A change the playbooks judged without objecting is remembered; one
        nobody judged (no playbook names the call, or a guard skipped it) only where it
        changes nothing a restore puts back, and the difference is logged.
        """
        kind = remembered.kind_for(event.source, event.name)
        if outcomes or kind is None:
            return
        judged = decision.skip is None and bool(self.catalog.candidates(event.source, event.name))
        try:
            client = self.clients.client(kind.service, event.account, event.region)
            offers = kind.from_event(
                self.memory, client, event.record, event.account or self.clients.home_account(), event.region, judged
            )
        except Exception as error:
            log.warning(
                json.dumps(
                    {"message": f"could not remember the {kind.name}", "eventID": event.event_id, "reason": str(error)}
                )
            )
            return
        for offer in offers:
            line = memory.log_line(offer, eventID=event.event_id)
            if line is not None:
                log.log(logging.WARNING if offer.outcome == memory.DRIFT else logging.INFO, json.dumps(line))


def _summary(outcome: Outcome) -> dict[str, Any]:
    """An incident in the handler's result; one changed outside trailguard has no state to tell."""
    summary: dict[str, Any] = {
        "id": outcome.incident.id,
        "playbook": outcome.playbook.id,
        "state": outcome.incident.state.value if outcome.refused is None else None,
        "duplicate": outcome.duplicate,
    }
    if outcome.refused is not None:
        summary["refused"] = outcome.refused
    return summary


def _decision_line(outcome: Outcome, where: dict[str, Any], elapsed_ms: float) -> dict[str, Any]:
    """The log line of one decision: which incident, for which event, by which playbook, how it ended."""
    incident = outcome.incident
    line = {
        "message": "decision",
        "incident": incident.id,
        **where,
        "playbook": outcome.playbook.id,
        "mode": incident.mode,
        "severity": incident.severity,
        "state": incident.state.value,
        "duplicate": outcome.duplicate,
        "duration_ms": elapsed_ms,
    }
    if outcome.refused is not None:
        line.update(state=None, refused=outcome.refused)
    elif incident.error:
        line["error"] = incident.error
    return line
