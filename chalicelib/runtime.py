"""What a Lambda container holds: the settings and the catalog, and the parts built from them.

This module builds, and does nothing else: the work is in the parts (`event_handler`,
`sweep`, `slack_endpoint`, `click_worker`), which `app.py` hands each Lambda's input. A new
container is a new `Runtime`; tests, the demo and the benchmarks build one from their own
settings in the same way.

The catalog is loaded when `app.py` is imported, so that `chalice package`/`deploy` refuse
a bad playbook before anything is deployed. Every part is built on first use, keeping the
cold start small; building the responder asks STS who we are, so that calls made through
the function's own role are never answered. Slack's parts are imported only when Slack is
configured or a click arrives: slack_sdk costs cold start.

Two views of the table: the acting functions (the rules' handler, the sweep, the click
worker) use `incidents`, whose store seals what they write and checks what they read (see
`incidents.seals`); the Slack endpoint records clicks through `claims`, on the unsealed
store, as its role holds no KMS permission, and hands the work to the worker, which checks it.
"""

from __future__ import annotations

import functools
import logging
import urllib.parse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from chalicelib import logs
from chalicelib.aws.clients import AwsClients
from chalicelib.aws.own_calls import DynamoOwnCalls, MemoryOwnCalls
from chalicelib.aws.seals import KmsSealer, LocalSealer, Refusals, Sealer
from chalicelib.incidents.changes import StateChanges
from chalicelib.incidents.exceptions import Exceptions, ExceptionStore
from chalicelib.incidents.lifecycle import Incidents
from chalicelib.incidents.model import AWS_PRINCIPAL_PREFIX
from chalicelib.incidents.notify import Fanout, LogNotifier, Notifier
from chalicelib.incidents.store import DynamoStore, IncidentStore, MemoryStore
from chalicelib.memory.rules import Memory
from chalicelib.metrics import Metrics
from chalicelib.named_lists import BREAK_GLASS_ROLES, NamedLists
from chalicelib.organization.extensions import load_catalog, stage_organization
from chalicelib.organization.model import NO_ORGANIZATION, Organization
from chalicelib.organization.switch import Switch, ssm_reader
from chalicelib.playbooks.catalog import Catalog
from chalicelib.playbooks.plan import PlannedStep
from chalicelib.respond.controls import Controls, Live
from chalicelib.respond.guards import OwnIdentities, stage_roles
from chalicelib.respond.handler import EventHandler
from chalicelib.respond.responder import Responder
from chalicelib.settings import Settings, missing_integrity_key

if TYPE_CHECKING:
    from chalicelib.actions.base import Protected
    from chalicelib.posture.baseline import BaselineCheck
    from chalicelib.posture.heartbeat import Heartbeat
    from chalicelib.posture.sweep import Sweep

log = logging.getLogger("trailguard")


class Runtime:
    def __init__(
        self,
        settings: Settings,
        catalog: Catalog,
        *,
        clients: AwsClients | None = None,
        organization: Organization = NO_ORGANIZATION,
    ) -> None:
        """`clients`: AWS clients of the caller's own (tests record or fault their calls);
        by default built from the settings. `organization`: the stage's settings file, loaded."""
        self.settings = settings
        self.catalog = catalog
        self.organization = organization
        if clients is not None:
            self.__dict__["clients"] = clients
        log.setLevel(settings.log_level)
        logs.configure()

    @classmethod
    def from_environment(cls) -> Runtime:
        """The settings, the organization's settings file, its actions and the playbooks;
        ConfigurationError (one line per mistake) if any of them cannot be used."""
        settings = Settings.from_environment()
        organization = stage_organization(settings)
        catalog = load_catalog(settings.playbooks, organization, with_tests=False)
        return cls(settings, catalog, organization=organization)

    # -- what the functions run ------------------------------------------------------------

    @functools.cached_property
    def event_handler(self) -> EventHandler:
        """The rules' handler (`respond_to_cloudtrail`)."""
        return EventHandler(
            self.responder, self.memory, self.clients, metrics=self.metrics, canary=self.heartbeat_canary
        )

    @property
    def heartbeat_canary(self) -> str:
        """The SSM parameter the heartbeat tags in every account and region in scope."""
        from chalicelib.memory.heartbeats import canary_name

        return canary_name(self.settings.stage_label)

    def heartbeat(self) -> Heartbeat:
        """The scheduled heartbeat (`heartbeat`), one per run."""
        import datetime as dt

        from chalicelib.posture.heartbeat import Heartbeat

        return Heartbeat(
            incidents=self.incidents,
            clients=self.clients,
            places=self.places_in_scope,
            canary=self.heartbeat_canary,
            grace=dt.timedelta(minutes=self.settings.heartbeat_grace_minutes),
            workers=self.settings.sweep_workers,
            metrics=self.metrics,
        )

    def baseline(self, fix: bool = False) -> BaselineCheck:
        """Every trail in scope against the settings file's baseline (`trailguard baseline`)."""
        from chalicelib.named_lists import DATA_EVENT_BUCKETS
        from chalicelib.posture.baseline import BaselineCheck

        return BaselineCheck(
            responder=self.responder,
            clients=self.clients,
            places=self.places_in_scope,
            baseline=self.organization.baseline,
            data_event_buckets=self.organization.lists.get(DATA_EVENT_BUCKETS),
            fix=fix,
        )

    def places_in_scope(self) -> list[tuple[str, str]]:
        """Every (account, region) the settings file puts in scope, for the heartbeat and the
        organization-wide sweep; the organization's accounts read from AWS Organizations when
        the settings file names none."""
        from chalicelib.posture import scope

        listed: list[str] = []
        if not (self.organization.accounts or self.organization.scope.accounts):
            listed, why_not = scope.organization_accounts(self.clients.home_client)
            if why_not:
                log.info(why_not)
        home = self.clients.home_account()
        regions = scope.regions(self.organization, self.settings.sweep_regions, self.clients.home_region())
        return [(account, region) for account in scope.accounts(self.organization, listed, home) for region in regions]

    def sweep(self) -> Sweep:
        """The scheduled posture sweep (`posture_sweep`), one per run; imported by the
        sweep's function only, keeping the others' cold start small."""
        from chalicelib.posture.sweep import Sweep

        settings = self.settings
        return Sweep(
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
            metrics=self.metrics,
            places=self.places_in_scope,
            workers=settings.sweep_workers,
            budget_seconds=settings.sweep_budget_seconds,
            baseline=self.baseline(fix=True) if self.organization.baseline.on_sweep else None,
        )

    @functools.cached_property
    def slack_endpoint(self) -> Any:
        """`POST /slack/interactions`: its interactions are built on the first click."""
        from chalicelib.slack.endpoint import SlackEndpoint

        return SlackEndpoint(lambda: self._interactions(), metrics=self.metrics)

    @functools.cached_property
    def click_worker(self) -> Any:
        """The worker (`slack_worker`) that carries out what a click (or the command line) decided."""
        from chalicelib.slack.worker import ClickWorker, send_ephemeral

        return ClickWorker(self.incidents, send_ephemeral, self._may_decide, metrics=self.metrics)

    def prepare(self, function_name: str | None) -> list[str]:
        """Build, during Lambda's init (which runs at full CPU, before the first event is
        timed), what the named function always needs on its first event: its clients, the
        caller's identity, and for the Slack endpoint slack_sdk and the signing secret, so
        that a cold click does not pay for them inside Slack's 3 seconds. Outside Lambda
        (`function_name` None: tests, the CLI, the demo) nothing is built. Returns what was
        built; what fails is logged and built again on first use."""
        if not function_name:
            return []
        parts: dict[str, Callable[[], object]]
        if "respond_to_cloudtrail" in function_name:
            parts = {"event handler": lambda: self.event_handler}
        elif function_name.endswith("-posture_sweep"):
            parts = {"incidents": lambda: self.incidents, "responder": lambda: self.responder}
        elif function_name.endswith("-slack_worker"):
            parts = {"click worker": lambda: self.click_worker, "notifier": lambda: self.notifier}
        else:  # the REST API's function, named for the app and stage alone
            parts = {"slack endpoint": self._prepare_slack_endpoint}
        built = []
        for name, build in parts.items():
            try:
                build()
                built.append(name)
            except Exception:
                log.warning("could not build the %s at init; it is built on first use", name, exc_info=True)
        return built

    def _prepare_slack_endpoint(self) -> None:
        interactions = self.slack_endpoint._interactions()
        interactions.verify(b"", {})  # reads the signing secret once (a request without a signature: refused)

    # -- what other tools are told -----------------------------------------------------------

    @functools.cached_property
    def metrics(self) -> Metrics:
        """The stage's metric lines (EMF, in the functions' own logs)."""
        return Metrics(self.settings.stage_label)

    @functools.cached_property
    def changes(self) -> StateChanges:
        """What the acting functions tell when an incident opens or comes to rest: metrics
        always; Security Hub and trailguard's own events when the stage turns them on. The
        Slack endpoint's door has none: its role may tell nobody (it holds no such permission)."""
        from chalicelib.outputs.fanout import Outputs

        settings = self.settings
        outputs: dict[str, StateChanges] = {}
        if settings.security_hub:
            from chalicelib.outputs.findings import SecurityHubFindings

            outputs[SecurityHubFindings.name] = SecurityHubFindings(
                settings.stage_label, self.clients, settings.security_hub_region
            )
        if settings.events_out is not None:
            from chalicelib.outputs.events import IncidentEvents

            outputs[IncidentEvents.name] = IncidentEvents(
                lambda: self.clients.home_client("events"), settings.stage_label, settings.events_out
            )
        return Outputs(self.metrics, outputs)

    def _may_decide(self, who: str, playbook_id: str) -> bool:
        """Whether whoever asked for an exception may decide about the playbook: a Slack user
        who is one of its approvers; an AWS principal, whom IAM let write the table and
        invoke the worker (the command line)."""
        from chalicelib.slack.messages import SLACK_USER_PREFIX

        if who.startswith(SLACK_USER_PREFIX):
            return bool(self.approvers.allows(who[len(SLACK_USER_PREFIX) :], playbook_id))
        return who.startswith(AWS_PRINCIPAL_PREFIX)

    # -- AWS, and what is kept there --------------------------------------------------------

    @functools.cached_property
    def own_calls(self) -> DynamoOwnCalls | MemoryOwnCalls:
        """The request ids of trailguard's own calls in member accounts (see `aws.own_calls`)."""
        if self.settings.table is None:
            return MemoryOwnCalls()
        return DynamoOwnCalls(lambda: self.clients.home_client("dynamodb"), self.settings.table)

    @functools.cached_property
    def clients(self) -> AwsClients:
        return AwsClients(
            member_role=self.settings.member_role,
            management_role=self.settings.management_role,
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
    def memory(self) -> Memory:
        """Remembered configurations and decisions, sealed like the incidents; the incidents
        that hold them are asked where they stand."""
        from chalicelib.memory.documents import DynamoDocuments, MemoryDocuments, SealedDocuments

        if self.settings.table is None:
            documents = SealedDocuments(MemoryDocuments(), self.sealer, self.refusals)
        else:
            inner = DynamoDocuments(self.clients.home_client("dynamodb"), self.settings.table)
            documents = SealedDocuments(inner, self.sealer, self.refusals)
        return Memory(documents, lambda incident_id: self.incidents.stance(incident_id))

    # -- incidents, and deciding about events -----------------------------------------------

    @functools.cached_property
    def incidents(self) -> Incidents:
        """The acting functions' door to the incidents: writes sealed, reads checked."""
        from chalicelib.actions.binding import ActionBinder
        from chalicelib.incidents.seals import SealedStore

        return Incidents(
            SealedStore(self.unsealed_store, self.sealer, self.refusals),
            ActionBinder(self.clients, self.memory, self.protected),
            memory=self.memory,
            notifier=self.notifier,
            changes=self.changes,
            lease_seconds=self.settings.lease_seconds,
            gate=self.switch.pause_reason if self.switch is not None else None,
            exceptions=self.exceptions,
        )

    @functools.cached_property
    def exceptions(self) -> Exceptions:
        """The exceptions, beside the incidents and sealed like them (`incidents.exceptions`)."""
        from chalicelib.clock import utc_now
        from chalicelib.incidents.exceptions import DynamoExceptions, MemoryExceptions, SealedExceptions

        inner: ExceptionStore = MemoryExceptions()
        if self.settings.table is not None:
            inner = DynamoExceptions(
                self.clients.home_client("dynamodb"), self.settings.table, self.settings.retention_days
            )
        return Exceptions(
            SealedExceptions(inner, self.sealer, self.refusals),
            clock=utc_now,
            max_days=self.organization.exception_days,
            never=self.organization.exceptions_never,
        )

    @functools.cached_property
    def claims(self) -> Incidents:
        """The Slack endpoint's door to the incidents: it records decisions and runs nothing
        (no actions, no seal); the worker carries them out."""
        return Incidents(self.unsealed_store, None, lease_seconds=self.settings.lease_seconds)

    @functools.cached_property
    def protected(self) -> Protected:
        """The principals containment never acts on: the stage's own roles, the member role,
        the organization's break-glass roles."""
        from chalicelib.actions.base import Protected

        own_role = self.clients.own_role_name()
        own = {
            *([own_role] if own_role else []),
            *stage_roles(self.settings, self.catalog),
            *self.settings.own_role_names,
        }
        if self.settings.member_role:
            own.add(self.settings.member_role)
        return Protected(frozenset(own), frozenset(self.organization.lists.get(BREAK_GLASS_ROLES)))

    @functools.cached_property
    def responder(self) -> Responder:
        own_role = self.clients.own_role_name()
        roles = [*([own_role] if own_role else []), *stage_roles(self.settings, self.catalog)]
        own = OwnIdentities.of(self.settings, self.clients.home_account(), roles, own_calls=self.own_calls)
        return Responder(
            self.catalog,
            own=own,
            incidents=self.incidents,
            lists=self.lists,
            controls=Controls(self.organization),
            live=self.live,
        )

    @functools.cached_property
    def lists(self) -> NamedLists:
        """The settings file's named lists, with the audit chain trailguard remembers (the
        buckets, keys, log groups and roles of every trail it saw) added to theirs."""
        from chalicelib.memory.chain import with_remembered_links

        return with_remembered_links(self.organization.lists, self.memory)

    # -- the organization's controls that only a running stage knows -------------------------

    @functools.cached_property
    def switch(self) -> Switch | None:
        """The kill switch and dry-run switch (SSM), None where the stage has no parameter."""
        name = self.settings.switch_parameter
        if name is None:
            return None
        return Switch(ssm_reader(lambda: self.clients.home_client("ssm"), name), seconds=self.settings.switch_seconds)

    @functools.cached_property
    def live(self) -> Live:
        return Live(self.organization, switch=self.switch, exceptions=self.exceptions, tags=self._resource_tags)

    def _resource_tags(self, step: PlannedStep, account: str | None, region: str) -> dict[str, str] | None:
        """The tags of the resource a step acts on, through its action's own client."""
        from chalicelib.actions.binding import ActionBinder

        action = ActionBinder(self.clients, self.memory).bind(step.action, step.params, account=account, region=region)
        return action.resource_tags()

    # -- Slack ------------------------------------------------------------------------------

    @functools.cached_property
    def notifier(self) -> Notifier:
        settings = self.settings
        if not settings.slack or settings.slack_channel is None:
            return LogNotifier()
        from chalicelib.slack.delivery import SlackNotifier

        never = self.organization.exceptions_never
        slack = SlackNotifier(
            lambda: self.slack_web,
            default_channel=settings.slack_channel,
            channels={p.id: p.slack_channel for p in self.catalog.playbooks if p.slack_channel},
            account_names={**self.organization.account_names(), **settings.account_names},
            metrics=self.metrics,
            exceptions=lambda incident: incident.playbook_id not in never,
            pace=self.slack_pace,
        )
        return Fanout(LogNotifier(), slack)

    @functools.cached_property
    def slack_pace(self) -> Any:
        """Slack's per-channel posting rate, kept by every container through the table."""
        from chalicelib.slack.pace import DynamoSlots, MemorySlots, Pace

        if self.settings.table is None:
            return Pace(MemorySlots())
        return Pace(DynamoSlots(self.clients.home_client("dynamodb"), self.settings.table))

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

    def _signing_secret(self) -> str:
        from chalicelib.slack.secrets import read_secret

        if self.settings.slack_signing_secret is None:
            raise LookupError("TRAILGUARD_SLACK_SIGNING_SECRET is not set: every Slack request is refused")
        return read_secret(self.settings.slack_signing_secret, self.clients.home_client)

    @functools.cached_property
    def approvers(self) -> Any:
        """Who may press each playbook's buttons (Slack user ids and user groups)."""
        from chalicelib.slack.approvers import Approvers, slack_group_members
        from chalicelib.slack.client import web_client

        settings = self.settings
        return Approvers(
            settings.slack_approvers,
            {p.id: p.approvers for p in self.catalog.playbooks},
            slack_group_members(
                functools.cache(lambda: web_client(self.slack_token, settings.slack_base_url, quick=True))
            ),
        )

    def _interactions(self) -> Any:
        from chalicelib.slack.client import web_client
        from chalicelib.slack.endpoint import signature_check
        from chalicelib.slack.interactions import Interactions
        from chalicelib.slack.worker import lambda_dispatch, send_ephemeral

        settings = self.settings
        worker = settings.slack_worker
        prefixes: tuple[str, ...] = ("https://hooks.slack.com/",)
        if settings.slack_base_url:
            parts = urllib.parse.urlsplit(settings.slack_base_url)
            prefixes += (f"{parts.scheme}://{parts.netloc}/",)
        return Interactions(
            verify=signature_check(self._signing_secret),
            incidents=self.claims,
            approvers=self.approvers,
            dispatch=(
                lambda_dispatch(self.clients.home_client("lambda"), worker) if worker else self.click_worker.handle
            ),
            respond=send_ephemeral,
            response_url_prefixes=prefixes,
            team_id=settings.slack_team_id,
            app_id=settings.slack_app_id,
            open_view=lambda trigger_id, view: web_client(
                self.slack_token, settings.slack_base_url, quick=True
            ).views_open(trigger_id=trigger_id, view=view),
            exception_days=self.organization.exception_days,
            no_exceptions=self.organization.exceptions_never,
        )
