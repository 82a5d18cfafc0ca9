"""What keeps a stage observable and loses nothing: its layout (which functions EventBridge
and trailguard invoke asynchronously), the operational settings, and the names both
deployment paths give what they add, so that `chalice package` (the merge template:
`operations_fragment`) and `chalice deploy` (`trailguard.operations`, run by `bootstrap`)
create and find the same queues, rules, alarms and dashboard.

The settings are read from the stage's environment in .chalice/config.json, beside the
runtime's, though no function reads them (docs/deploy.md lists them):

- TRAILGUARD_LOG_RETENTION_DAYS (default: 365): how long each function's log group keeps its
  lines; one of the values CloudWatch Logs accepts
- TRAILGUARD_ALARM_TOPIC (default: the stage's own topic, `trailguard-<stage>-alarms`, created):
  the SNS topic every alarm notifies; an existing topic's ARN to use that one instead
- TRAILGUARD_ALARM_UNDELIVERED_MINUTES (default: 30): a change not shown in Slack for longer
  than this raises the Slack alarm
- TRAILGUARD_ALARM_REMEDIATE_P99_SECONDS (default: 120): the time-to-remediate alarm's
  threshold for automatic remediations (p99 over an hour)
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from chalicelib.metrics import ENDPOINT, HEARTBEAT, SWEEP, WORKER
from chalicelib.settings import Settings
from trailguard.generate.deployment import APP_NAME, function_name

LOG_RETENTION_DAYS = frozenset(
    {1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653}
)
"""The values CloudWatch Logs accepts for RetentionInDays."""
SNS_TOPIC_ARN = r"arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}"


@dataclass(frozen=True)
class RetryPolicy:
    """EventBridge's retry policy of a rule's target (attempts 0-185, event age 60-86,400 s)."""

    maximum_retry_attempts: int
    maximum_event_age_seconds: int

    def __post_init__(self) -> None:
        if not 0 <= self.maximum_retry_attempts <= 185 or not 60 <= self.maximum_event_age_seconds <= 86_400:
            raise ValueError(f"EventBridge takes 0-185 attempts and 60-86400 s, not {self}")

    def to_api(self) -> dict[str, int]:
        return {
            "MaximumRetryAttempts": self.maximum_retry_attempts,
            "MaximumEventAgeInSeconds": self.maximum_event_age_seconds,
        }


@dataclass(frozen=True)
class AsyncInvokePolicy:
    """Lambda's handling of a failed asynchronous invocation (retries 0-2, event age 60-21,600 s);
    what still fails goes to the function's dead-letter queue."""

    maximum_retry_attempts: int
    maximum_event_age_seconds: int

    def __post_init__(self) -> None:
        if not 0 <= self.maximum_retry_attempts <= 2 or not 60 <= self.maximum_event_age_seconds <= 21_600:
            raise ValueError(f"Lambda takes 0-2 retries and 60-21600 s, not {self}")


# A CloudTrail call answered an hour late still matters (and the sweep would find it
# anyway), but by then a person should look: after an hour it waits in the queue.
RULE_RETRY = RetryPolicy(185, 3600)
# The next sweep supersedes one that could not start: a few attempts, ten minutes.
SCHEDULE_RETRY = RetryPolicy(3, 600)
# The handler and the worker are idempotent (one incident per event, one decision per click).
HANDLER_ASYNC = WORKER_ASYNC = AsyncInvokePolicy(2, 3600)
SWEEP_ASYNC = AsyncInvokePolicy(0, 600)
QUEUE_RETENTION_SECONDS = 1_209_600
"""SQS's longest, 14 days: time for a person to fix the cause and redrive."""


def _whole(environ: Mapping[str, str], name: str, default: int, least: int) -> int:
    text = environ.get(name, "").strip()
    if not text:
        return default
    if not text.isascii() or not text.isdigit() or int(text) < least:
        raise ValueError(f"{name} is {text!r}; expected a whole number of at least {least}")
    return int(text)


@dataclass(frozen=True)
class OpsSettings:
    log_retention_days: int = 365
    alarm_topic: str | None = None
    """An existing SNS topic's ARN; None: the stage's own topic, created with the alarms."""
    undelivered_minutes: int = 30
    remediate_p99_seconds: int = 120
    sweep_minutes: int = 15
    heartbeat_minutes: int = 5
    heartbeat_grace_minutes: int = 15

    def __post_init__(self) -> None:
        if self.log_retention_days not in LOG_RETENTION_DAYS:
            raise ValueError(
                f"TRAILGUARD_LOG_RETENTION_DAYS is {self.log_retention_days}; CloudWatch Logs keeps logs one of "
                f"{', '.join(map(str, sorted(LOG_RETENTION_DAYS)))} days"
            )
        if self.alarm_topic is not None and not re.fullmatch(SNS_TOPIC_ARN, self.alarm_topic):
            raise ValueError(f"TRAILGUARD_ALARM_TOPIC is {self.alarm_topic!r}; expected an SNS topic ARN")

    @classmethod
    def from_environment(cls, environ: Mapping[str, str], settings: Settings | None = None) -> OpsSettings:
        return cls(
            log_retention_days=_whole(environ, "TRAILGUARD_LOG_RETENTION_DAYS", 365, 1),
            alarm_topic=environ.get("TRAILGUARD_ALARM_TOPIC", "").strip() or None,
            undelivered_minutes=_whole(environ, "TRAILGUARD_ALARM_UNDELIVERED_MINUTES", 30, 1),
            remediate_p99_seconds=_whole(environ, "TRAILGUARD_ALARM_REMEDIATE_P99_SECONDS", 120, 1),
            sweep_minutes=(settings or Settings()).sweep_minutes,
            heartbeat_minutes=(settings or Settings()).heartbeat_minutes,
            heartbeat_grace_minutes=(settings or Settings()).heartbeat_grace_minutes,
        )

    def minutes_between_runs(self, function: str) -> int:
        """How often a scheduled function runs (its not-running alarm waits two of these)."""
        return self.heartbeat_minutes if function == HEARTBEAT else self.sweep_minutes


@dataclass(frozen=True)
class StageLayout:
    """A stage's functions by how they are invoked. `rule_functions` are behind the CloudTrail
    rules (one, more when the playbooks' patterns outgrow EventBridge's size limit); the sweep
    and the heartbeat run on a schedule; trailguard invokes the worker itself (InvocationType=Event).
    EventBridge invokes Lambda asynchronously too, so every function but the API's is a
    background function: a dead-letter queue, an on-failure destination."""

    stage: str
    rule_functions: tuple[str, ...] = ("respond_to_cloudtrail",)
    scheduled_functions: tuple[str, ...] = (SWEEP, HEARTBEAT)
    async_functions: tuple[str, ...] = (WORKER,)
    api_function: str = ENDPOINT
    table: str | None = None
    ops: OpsSettings = field(default_factory=OpsSettings)

    @classmethod
    def of(cls, stage: str, settings: Settings, rule_names: list[str], environ: Mapping[str, str]) -> StageLayout:
        return cls(
            stage,
            rule_functions=tuple(rule_names),
            table=settings.table,
            ops=OpsSettings.from_environment(environ, settings),
        )

    @property
    def targeted_functions(self) -> tuple[str, ...]:
        """The functions an EventBridge rule invokes."""
        return (*self.rule_functions, *self.scheduled_functions)

    @property
    def background_functions(self) -> tuple[str, ...]:
        return (*self.targeted_functions, *self.async_functions)

    @property
    def all_functions(self) -> tuple[str, ...]:
        return (*self.background_functions, self.api_function)

    def retry_policy(self, function: str) -> RetryPolicy:
        return SCHEDULE_RETRY if function in self.scheduled_functions else RULE_RETRY

    def async_policy(self, function: str) -> AsyncInvokePolicy:
        if function in self.scheduled_functions:
            return SWEEP_ASYNC
        return WORKER_ASYNC if function in self.async_functions else HANDLER_ASYNC

    # -- names, the same on both deployment paths ---------------------------------------------

    def function_name(self, function: str) -> str:
        return function_name(self.stage, function)

    def rule_name(self, function: str) -> str:
        """The rule `chalice deploy` makes for a function's event source (chalice.deploy.appgraph)."""
        return f"{function_name(self.stage, function)}-event"

    def log_group(self, function: str) -> str:
        """Lambda's log group of the function."""
        return f"/aws/lambda/{function_name(self.stage, function)}"

    def dead_letter_queue(self, function: str) -> str:
        """One per background function: what its rule could not deliver and what its
        invocations could not finish, both events the function never completed."""
        return f"{APP_NAME}-{self.stage}-{function}-dlq"

    def alarm_topic_name(self) -> str:
        return f"{APP_NAME}-{self.stage}-alarms"

    def alarm_name(self, what: str) -> str:
        return f"{APP_NAME}-{self.stage}-{what}"

    def dashboard_name(self) -> str:
        return f"{APP_NAME}-{self.stage}"


# -- CloudFormation's names for what `chalice package` writes --------------------------------


def cfn_name(name: str) -> str:
    """Chalice's own rule (`respond_to_cloudtrail-event` -> `RespondToCloudtrailEvent`)."""
    from chalice.utils import to_cfn_resource_name

    return str(to_cfn_resource_name(name))


def function_logical_id(layout: StageLayout, function: str) -> str:
    return "APIHandler" if function == layout.api_function else cfn_name(function)


def role_logical_id(function: str) -> str:
    return cfn_name(f"{function}_role")


def event_logical_id(function: str) -> str:
    """The key of the function's event under `Events` in `chalice package`'s SAM template."""
    return cfn_name(f"{function}-event")


def queue_logical_id(function: str) -> str:
    return cfn_name(f"{function}-dead-letter-queue")


def log_group_logical_id(function: str) -> str:
    return cfn_name(f"{function}-log-group")


def deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """As `chalice package --merge-template` merges (its TemplateDeepMerger): dicts merge,
    anything else in `extra` replaces what `base` has."""
    merged = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged
