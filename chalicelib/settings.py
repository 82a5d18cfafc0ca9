"""Configuration, read once from environment variables (set per stage in .chalice/config.json).

A deployed function knows its stage from its own name (`chalicelib.stages`), and every
name the stage owns defaults to one derived from it: a stage needs no variable naming its
own table, key, roles or worker, and one copied from another stage names none of the
other's. The organization's own choices (named lists, scope, mode ceilings, extensions)
are in the stage's settings file (`chalicelib.organization`), not here.

Every variable, its meaning and its default (docs/deploy.md lists each stage's values):

- TRAILGUARD_STAGE (default: from the function's name, `trailguard-STAGE-...`, where Lambda
  runs it; else none): the stage, whose name every default below marked "(stage)" derives from.
  Each stage of .chalice/config.json sets it to its own name, so that `chalice package` and
  `deploy`, which load the app with the stage's variables, find its settings file, playbooks and
  actions; a function whose name says another stage refuses to start
- TRAILGUARD_PLAYBOOKS (default: the bundled playbooks/): playbook files or folders, separated by
  `:`
- TRAILGUARD_OWN_ROLES (default: (none)): comma-separated names of the stage's function roles in
  the central account; calls made through them there are never acted on (no remediation loop). The
  Lambda's own role is always added; a role of the same name in another account is not ours
- TRAILGUARD_CENTRAL_ACCOUNT (default: the account the functions run in): the account those roles
  live in; needed only where no AWS identity is at hand (replay, playbook tests)
- TRAILGUARD_LOG_LEVEL (default: INFO): level of trailguard's log lines
- TRAILGUARD_TABLE (default: (stage) trailguard-STAGE; without a stage, unset): the DynamoDB table of
  incidents; unset: kept in memory only (one container; for local runs, never for a deployed stage)
- TRAILGUARD_INTEGRITY_KEY (default: (stage) alias/trailguard-STAGE-integrity; else required with
  TRAILGUARD_TABLE): the KMS HMAC key that seals
  what the acting functions write to the table (`alias/trailguard-<stage>-integrity`, an alias ARN,
  a key id or ARN); `bootstrap` or the merge template creates it. Unset without a table: a key made
  for the process, as the incidents are in its memory
- TRAILGUARD_RETENTION_DAYS (default: 90): how long finished incidents are kept (DynamoDB TTL)
- TRAILGUARD_MEMBER_ROLE (default: (stage) trailguard-STAGE-remediator; else trailguard-remediator):
  role assumed in other accounts of the organization
- TRAILGUARD_MANAGEMENT_ROLE (default: (stage) trailguard-STAGE-management; else trailguard-management):
  the minimal role assumed in the organization's management account for AWS Organizations calls
  (trusted access for CloudTrail: docs/deploy.md)
- TRAILGUARD_EXTERNAL_ID (default: (stage) trailguard-STAGE; else none): external id the member role's
  trust policy requires
- TRAILGUARD_LEASE_SECONDS (default: 120): how long a worker owns a running incident before another
  may resume it; must exceed the Lambda timeout
- TRAILGUARD_SWEEP_MINUTES (default: 15): how often the posture sweep runs (read when deploying)
- TRAILGUARD_SWEEP_REGIONS (default: the Lambda's region): comma-separated regions the sweep checks
- TRAILGUARD_SWEEP_TRAILS (default: *): trail names or ARNs that must be logging; `*` for all
- TRAILGUARD_SWEEP_WORKERS (default: 4): member accounts the organization-wide sweep looks at at once
- TRAILGUARD_SWEEP_BUDGET_SECONDS (default: 600): how long one sweep run looks at accounts before it
  stops and leaves the rest to the next run (which starts where it stopped)
- TRAILGUARD_HEARTBEAT_MINUTES (default: 5): how often the heartbeat tags its canary in every account
  and region in scope (read when deploying)
- TRAILGUARD_HEARTBEAT_GRACE_MINUTES (default: 15): how long a canary's event may take to arrive before
  trailguard says it cannot see that account and region
- TRAILGUARD_SWEEP_KEYS (default: (none)): KMS key ids/ARNs/aliases that must stay enabled; `*` for
  every customer-managed key. Off by default: many accounts keep keys disabled on purpose, and the
  KMS playbooks re-enable in auto
- TRAILGUARD_SWEEP_ALLOWED_KEYS (default: (none)): keys the sweep leaves alone even when
  TRAILGUARD_SWEEP_KEYS=*
- TRAILGUARD_SLACK_TOKEN (default: (unset: no Slack; incidents are logged)): the bot token
  (xoxb-...), or where to read it: `ssm:NAME` (a SecureString parameter) or `secretsmanager:NAME`.
  Deployed stages use a reference, never the token itself
- TRAILGUARD_SLACK_SIGNING_SECRET (default: (unset: every click is refused)): the app's signing
  secret, or `ssm:NAME` / `secretsmanager:NAME`
- TRAILGUARD_SLACK_CHANNEL (default: (required with a token)): channel id or #name for playbooks
  that name none
- TRAILGUARD_SLACK_APPROVERS (default: (none: nobody may press a button)): comma-separated Slack
  user ids (U...) and user-group ids (S...) that may press buttons of playbooks that name none
- TRAILGUARD_SLACK_TEAM_ID (default: (any)): the workspace (team) id, T...; a click from another
  workspace is refused, even when signed with the app's secret (an app installed in several)
- TRAILGUARD_SLACK_APP_ID (default: (any)): the Slack app's id, A...; a click on another app's
  message is refused
- TRAILGUARD_SLACK_BASE_URL (default: https://slack.com/api/): the Slack Web API's address (the
  local stub in tests and demo)
- TRAILGUARD_SLACK_WORKER (default: (stage) trailguard-STAGE-slack_worker; else unset: in-process): the
  Lambda function that carries out clicks (and the command line's decisions) asynchronously
- TRAILGUARD_SWITCH_PARAMETER (default: (stage) /trailguard/STAGE/switch; else none: never paused): the
  SSM parameter `trailguard pause`, `dry-run` and `resume` set, read at run time
- TRAILGUARD_SWITCH_SECONDS (default: 30): how long a function trusts the switch it last read (0:
  read it for every event; SSM's throughput then bounds trailguard's)
- TRAILGUARD_ACCOUNT_NAMES (default: (ids only)): names messages show for accounts:
  `111122223333=prod,...`
- TRAILGUARD_STAGE (default: the stage in the function's name; else local): the stage's name, from
  which it derives its own resources' names; the `Stage` dimension of every metric and part of
  every finding's id and event
- TRAILGUARD_SECURITY_HUB (default: off): `on` imports each incident into Security Hub as a
  finding, from the incident's own account (the member role), its workflow status following the
  incident; the stage's roles and member template then hold the two permissions it needs
- TRAILGUARD_SECURITY_HUB_REGION (default: the incident's region): the region findings are
  imported into (a Security Hub aggregation region, say)
- TRAILGUARD_EVENTS_OUT (default: off): `on` puts a `trailguard Incident State Change` event on
  the default bus of trailguard's account each time an incident opens or comes to rest; or the
  name or ARN of another bus there
- TRAILGUARD_SETTINGS_FILE (default: (stage) settings/STAGE.yaml when it exists; else none): the
  organization settings file (named lists, scope, mode ceilings, opt-out, exceptions, extensions),
  relative to the project
- TRAILGUARD_TRUSTED_ACCOUNTS, TRAILGUARD_TRUSTED_ORGANIZATIONS: no longer read; the named lists are
  in the settings file (`lists:`), and a stage that still sets either is refused, saying so
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from chalicelib.formats import INTEGRITY_KEY, SLACK_APP, SLACK_APPROVER, SLACK_CHANNEL, SLACK_TEAM
from chalicelib.named_lists import TRUSTED_ACCOUNTS, TRUSTED_ORGANIZATIONS
from chalicelib.stages import Stage, StageNameError

EVENT_BUS = r"[/.\-_A-Za-z0-9]{1,256}"
PROJECT_ROOT = Path(__file__).resolve().parent.parent
"""The project (a checkout; in Lambda, the task root where vendor/'s contents land)."""
PROJECT_PLAYBOOKS = PROJECT_ROOT / "playbooks"
DEFAULT_MEMBER_ROLE = "trailguard-remediator"
DEFAULT_MANAGEMENT_ROLE = "trailguard-management"
DEFAULT_OWN_ROLES: frozenset[str] = frozenset()
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
DEFAULT_STAGE = "local"
SWITCH_ON, SWITCH_OFF = ("on", "true", "yes", "1"), ("", "off", "false", "no", "0")


class ConfigurationError(ValueError):
    """A setting (a variable, the organization settings file, a playbook) that keeps trailguard
    from starting; the message says where and what to write instead, one line per mistake.
    `app.py` shows it as it is: a stack trace would bury it."""


def _names(text: str) -> frozenset[str]:
    return frozenset(name.strip() for name in text.split(",") if name.strip())


def _whole_number(environ: Mapping[str, str], name: str, default: int, least: int) -> int:
    text = environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise ConfigurationError(f"{name} is {text!r}; expected a whole number of at least {least}") from None
    if value < least:
        raise ConfigurationError(f"{name} is {value}; expected a whole number of at least {least}")
    return value


def _approvers(text: str) -> frozenset[str]:
    ids = _names(text)
    wrong = sorted(i for i in ids if not re.fullmatch(SLACK_APPROVER, i))
    if wrong:
        raise ConfigurationError(
            f"TRAILGUARD_SLACK_APPROVERS has {', '.join(wrong)}; expected Slack user ids (U0123ABCD) "
            "or user-group ids (S0123ABCD), not names"
        )
    return ids


def _channel(text: str) -> str | None:
    channel = text.strip() or None
    if channel is not None and not re.fullmatch(SLACK_CHANNEL, channel):
        raise ConfigurationError(f"TRAILGUARD_SLACK_CHANNEL is {channel!r}; expected a channel id (C0123ABCD) or #name")
    return channel


def _account(environ: Mapping[str, str], name: str) -> str | None:
    text = environ.get(name, "").strip()
    if text and not re.fullmatch(r"\d{12}", text):
        raise ConfigurationError(f"{name} is {text!r}; expected a 12-digit AWS account id")
    return text or None


def _identifier(environ: Mapping[str, str], name: str, pattern: str, expected: str) -> str | None:
    """An optional id setting, whole (`fullmatch`: a trailing newline is not part of an id)."""
    value = environ.get(name, "").strip() or None
    if value is not None and not re.fullmatch(pattern, value):
        raise ConfigurationError(f"{name} is {value!r}; expected {expected}")
    return value


def _account_names(text: str) -> dict[str, str]:
    names: dict[str, str] = {}
    for pair in _names(text):
        account, _, name = pair.partition("=")
        if not re.fullmatch(r"\d{12}", account.strip()) or not name.strip():
            raise ConfigurationError(
                f"TRAILGUARD_ACCOUNT_NAMES has {pair!r}; expected ACCOUNT_ID=name, such as 111122223333=prod"
            )
        names[account.strip()] = name.strip()
    return names


def _switch(environ: Mapping[str, str], name: str) -> bool:
    text = environ.get(name, "").strip().lower()
    if text not in SWITCH_ON + SWITCH_OFF:
        raise ConfigurationError(f"{name} is {text!r}; expected on or off")
    return text in SWITCH_ON


def _event_bus(environ: Mapping[str, str]) -> str | None:
    """The bus events go out on: None (off), `default`, or a bus name or ARN."""
    text = environ.get("TRAILGUARD_EVENTS_OUT", "").strip()
    if text.lower() in SWITCH_OFF:
        return None
    if text.lower() in SWITCH_ON:
        return "default"
    if not re.fullmatch(f"{EVENT_BUS}|arn:aws[a-z-]*:events:[a-z0-9-]+:\\d{{12}}:event-bus/{EVENT_BUS}", text):
        raise ConfigurationError(f"TRAILGUARD_EVENTS_OUT is {text!r}; expected on, off, or an event bus name or ARN")
    return text


MOVED_TO_SETTINGS_FILE = {
    "TRAILGUARD_TRUSTED_ACCOUNTS": TRUSTED_ACCOUNTS,
    "TRAILGUARD_TRUSTED_ORGANIZATIONS": TRUSTED_ORGANIZATIONS,
}
"""Variables whose lists moved to the organization settings file, and the list each became."""


def _moved_lists(environ: Mapping[str, str]) -> None:
    """Refuse a variable that no longer means anything, saying where its values go now: read
    silently, a stage would lose its trusted accounts and call the organization's own
    policies external."""
    for variable, name in MOVED_TO_SETTINGS_FILE.items():
        if environ.get(variable, "").strip():
            raise ConfigurationError(
                f"{variable} is no longer read: move its values to the stage's organization settings file "
                f"(settings/STAGE.yaml, `lists: {{{name}: [...]}}`; TRAILGUARD_SETTINGS_FILE names another) "
                "and remove the variable"
            )


def _settings_file(environ: Mapping[str, str], stage: Stage | None) -> Path | None:
    """TRAILGUARD_SETTINGS_FILE (relative to the project), else the stage's file if it exists."""
    given = environ.get("TRAILGUARD_SETTINGS_FILE", "").strip()
    if given:
        return PROJECT_ROOT / given
    if stage is not None and (PROJECT_ROOT / stage.settings_file).is_file():
        return PROJECT_ROOT / stage.settings_file
    return None


def _stage(environ: Mapping[str, str]) -> Stage | None:
    """TRAILGUARD_STAGE, or the stage in the function's name; both must agree."""
    try:
        given = environ.get("TRAILGUARD_STAGE", "").strip()
        named = Stage(given) if given else None
        running = Stage.of_function(environ.get("AWS_LAMBDA_FUNCTION_NAME"))
    except StageNameError as error:
        raise ConfigurationError(f"TRAILGUARD_STAGE: {error}") from None
    if named is not None and running is not None and named != running:
        raise ConfigurationError(
            f"TRAILGUARD_STAGE is {named.name!r} but this function, {environ.get('AWS_LAMBDA_FUNCTION_NAME')}, "
            f"belongs to stage {running.name!r}; remove TRAILGUARD_STAGE (the function's name tells the stage)"
        )
    return named or running


@dataclass(frozen=True)
class Settings:
    stage: str | None = None
    """The stage these settings are for; None for a local run, replay or tests."""
    playbooks: tuple[Path, ...] = (PROJECT_PLAYBOOKS,)
    own_role_names: frozenset[str] = DEFAULT_OWN_ROLES
    central_account: str | None = None
    log_level: str = "INFO"
    table: str | None = None
    integrity_key: str | None = None
    retention_days: int = 90
    member_role: str = DEFAULT_MEMBER_ROLE
    management_role: str = DEFAULT_MANAGEMENT_ROLE
    external_id: str | None = None
    lease_seconds: int = 120
    sweep_minutes: int = 15
    sweep_regions: frozenset[str] = frozenset()
    sweep_trails: frozenset[str] = frozenset({"*"})
    sweep_keys: frozenset[str] = frozenset()
    sweep_allowed_keys: frozenset[str] = frozenset()
    sweep_workers: int = 4
    sweep_budget_seconds: int = 600
    heartbeat_minutes: int = 5
    heartbeat_grace_minutes: int = 15
    slack_token: str | None = field(default=None, repr=False)
    """The bot token, or `ssm:NAME` / `secretsmanager:NAME` (see `slack.secrets`)."""
    slack_signing_secret: str | None = field(default=None, repr=False)
    slack_channel: str | None = None
    slack_approvers: frozenset[str] = frozenset()
    slack_team_id: str | None = None
    slack_app_id: str | None = None
    slack_base_url: str | None = None
    slack_worker: str | None = None
    account_names: Mapping[str, str] = field(default_factory=dict)
    security_hub: bool = False
    security_hub_region: str | None = None
    events_out: str | None = None
    """The bus trailguard's own events go on (None: none are put)."""
    organization_file: Path | None = None
    """The stage's organization settings file; None: none (every account, the playbooks' modes)."""
    switch_parameter: str | None = None
    """The SSM parameter that pauses the stage or puts it in dry-run; None: never paused."""
    switch_seconds: int = 30

    @property
    def stage_names(self) -> Stage | None:
        """The names the stage derives from its own (None without a stage)."""
        return Stage(self.stage) if self.stage else None

    @property
    def stage_label(self) -> str:
        """The stage's name in metrics, findings and events (`local` without a stage)."""
        return self.stage or DEFAULT_STAGE

    @property
    def slack(self) -> bool:
        """Whether incidents go to Slack (else they are only logged)."""
        return self.slack_token is not None

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        log_level = environ.get("TRAILGUARD_LOG_LEVEL", "INFO").upper()
        if log_level not in LOG_LEVELS:
            raise ConfigurationError(f"TRAILGUARD_LOG_LEVEL is {log_level!r}; expected one of {', '.join(LOG_LEVELS)}")
        stage = _stage(environ)
        _moved_lists(environ)

        def derived(name: str, default: str | None) -> str | None:
            """The variable's value, else the stage's own name for it."""
            return environ.get(name, "").strip() or default

        member_role = derived("TRAILGUARD_MEMBER_ROLE", stage.member_role if stage else DEFAULT_MEMBER_ROLE)
        playbooks = environ.get("TRAILGUARD_PLAYBOOKS", "")
        settings = cls(
            stage=stage.name if stage else None,
            playbooks=tuple(Path(p) for p in playbooks.split(os.pathsep) if p) or (PROJECT_PLAYBOOKS,),
            own_role_names=_names(environ.get("TRAILGUARD_OWN_ROLES", "")) or DEFAULT_OWN_ROLES,
            central_account=_account(environ, "TRAILGUARD_CENTRAL_ACCOUNT"),
            log_level=log_level,
            table=derived("TRAILGUARD_TABLE", stage.table if stage else None),
            integrity_key=_identifier(
                {
                    "TRAILGUARD_INTEGRITY_KEY": derived(
                        "TRAILGUARD_INTEGRITY_KEY", stage.integrity_key if stage else ""
                    )
                    or ""
                },
                "TRAILGUARD_INTEGRITY_KEY",
                INTEGRITY_KEY,
                "a KMS key alias (alias/trailguard-prod-integrity), an alias or key ARN, or a key id",
            ),
            retention_days=_whole_number(environ, "TRAILGUARD_RETENTION_DAYS", 90, 1),
            member_role=member_role or DEFAULT_MEMBER_ROLE,
            management_role=derived(
                "TRAILGUARD_MANAGEMENT_ROLE", stage.management_role if stage else DEFAULT_MANAGEMENT_ROLE
            )
            or DEFAULT_MANAGEMENT_ROLE,
            external_id=derived("TRAILGUARD_EXTERNAL_ID", stage.external_id if stage else None),
            lease_seconds=_whole_number(environ, "TRAILGUARD_LEASE_SECONDS", 120, 61),
            sweep_minutes=_whole_number(environ, "TRAILGUARD_SWEEP_MINUTES", 15, 1),
            sweep_regions=_names(environ.get("TRAILGUARD_SWEEP_REGIONS", "") or environ.get("AWS_REGION", "")),
            sweep_trails=_names(environ.get("TRAILGUARD_SWEEP_TRAILS", "*")) or frozenset({"*"}),
            sweep_keys=_names(environ.get("TRAILGUARD_SWEEP_KEYS", "")),
            sweep_allowed_keys=_names(environ.get("TRAILGUARD_SWEEP_ALLOWED_KEYS", "")),
            sweep_workers=_whole_number(environ, "TRAILGUARD_SWEEP_WORKERS", 4, 1),
            sweep_budget_seconds=_whole_number(environ, "TRAILGUARD_SWEEP_BUDGET_SECONDS", 600, 10),
            heartbeat_minutes=_whole_number(environ, "TRAILGUARD_HEARTBEAT_MINUTES", 5, 1),
            heartbeat_grace_minutes=_whole_number(environ, "TRAILGUARD_HEARTBEAT_GRACE_MINUTES", 15, 1),
            slack_token=environ.get("TRAILGUARD_SLACK_TOKEN", "").strip() or None,
            slack_signing_secret=environ.get("TRAILGUARD_SLACK_SIGNING_SECRET", "").strip() or None,
            slack_channel=_channel(environ.get("TRAILGUARD_SLACK_CHANNEL", "")),
            slack_approvers=_approvers(environ.get("TRAILGUARD_SLACK_APPROVERS", "")),
            slack_team_id=_identifier(environ, "TRAILGUARD_SLACK_TEAM_ID", SLACK_TEAM, "a Slack team id (T0123ABCD)"),
            slack_app_id=_identifier(environ, "TRAILGUARD_SLACK_APP_ID", SLACK_APP, "a Slack app id (A0123ABCD)"),
            slack_base_url=environ.get("TRAILGUARD_SLACK_BASE_URL", "").strip() or None,
            slack_worker=derived("TRAILGUARD_SLACK_WORKER", stage.worker if stage else None),
            account_names=_account_names(environ.get("TRAILGUARD_ACCOUNT_NAMES", "")),
            security_hub=_switch(environ, "TRAILGUARD_SECURITY_HUB"),
            security_hub_region=_identifier(
                environ, "TRAILGUARD_SECURITY_HUB_REGION", r"[a-z]{2}(-[a-z]+)+-\d", "an AWS region such as eu-west-1"
            ),
            events_out=_event_bus(environ),
            organization_file=_settings_file(environ, stage),
            switch_parameter=derived("TRAILGUARD_SWITCH_PARAMETER", stage.switch_parameter if stage else None),
            switch_seconds=_whole_number(environ, "TRAILGUARD_SWITCH_SECONDS", 30, 0),
        )
        if settings.table and settings.integrity_key is None:
            raise ConfigurationError(missing_integrity_key(settings.table))
        if settings.slack and settings.slack_channel is None:
            raise ConfigurationError(
                "TRAILGUARD_SLACK_TOKEN is set but TRAILGUARD_SLACK_CHANNEL is not; name the default channel"
            )
        return settings


def missing_integrity_key(table: str) -> str:
    """Why a stage with a table and no integrity key does not run, and how to fix it."""
    return (
        f"TRAILGUARD_TABLE is {table!r} but TRAILGUARD_INTEGRITY_KEY is not set: trailguard acts only on "
        "incidents its own functions sealed, and cannot seal without the key. Set TRAILGUARD_INTEGRITY_KEY to "
        "alias/trailguard-<stage>-integrity in .chalice/config.json, and create the key with "
        "`python -m trailguard bootstrap --stage <stage>` (or deploy the merge template, which creates it)"
    )
