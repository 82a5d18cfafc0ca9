"""A stage's names, all derived from the stage's own name.

`chalice deploy --stage NAME` names every function `trailguard-NAME-FUNCTION` (the API's
`trailguard-NAME`) and its role alike. Everything else a stage owns is named from the
same word here (its table, integrity key, member role, external id, click worker, the
kill switch's parameter, its organization settings file), so that a stage copied from
another in `.chalice/config.json` cannot silently keep the other's worker, member role or
loop guard: no stage names another's resources unless someone writes them out.

A deployed function learns its stage from its own name (`AWS_LAMBDA_FUNCTION_NAME`, which
Lambda sets); the tooling is told it (`--stage`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

APP_NAME = "trailguard"
API_FUNCTION = "api_handler"
"""Chalice's name for the function behind the routes (`/slack/interactions`)."""
RULES_FUNCTION = "respond_to_cloudtrail"
"""The first EventBridge rule's function; more are `respond_to_cloudtrail_2`, ..."""
SCHEDULED_FUNCTIONS = ("posture_sweep", "slack_worker", "heartbeat")
WORKER_FUNCTION = "slack_worker"

STAGE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,19}")
"""What a stage may be called: every derived name (IAM roles and Lambda functions of up to
64 characters, `trailguard-STAGE-respond_to_cloudtrail_2`) must stay valid."""

_FUNCTION_NAME = re.compile(
    rf"{APP_NAME}-(?P<stage>{STAGE_NAME.pattern}?)"
    rf"(?:-(?:{RULES_FUNCTION}(?:_[0-9]+)?|{'|'.join(SCHEDULED_FUNCTIONS)}))?"
)


class StageNameError(ValueError):
    """A stage name that would make an invalid AWS name."""


@dataclass(frozen=True)
class Stage:
    name: str

    def __post_init__(self) -> None:
        if not STAGE_NAME.fullmatch(self.name):
            raise StageNameError(
                f"stage name {self.name!r}: expected up to 20 letters, digits, '-' or '_' (it becomes part of "
                "role, function and table names)"
            )

    @classmethod
    def of_function(cls, function_name: str | None) -> Stage | None:
        """The stage a function Chalice deployed belongs to, from its name; None for any
        other name (a function not deployed by Chalice, a local run)."""
        if not function_name:
            return None
        matched = _FUNCTION_NAME.fullmatch(function_name)
        return cls(matched.group("stage")) if matched else None

    # -- what Chalice creates ---------------------------------------------------------------

    def role(self, function: str) -> str:
        """What `chalice deploy` calls a function's role (`trailguard-prod-slack_worker`)."""
        return f"{APP_NAME}-{self.name}-{function}"

    def function(self, function: str) -> str:
        """What `chalice deploy` calls a function: its role's name, but `trailguard-prod` for the API's."""
        return f"{APP_NAME}-{self.name}" if function == API_FUNCTION else self.role(function)

    # -- what trailguard names after the stage ----------------------------------------------

    @property
    def table(self) -> str:
        return f"{APP_NAME}-{self.name}"

    @property
    def integrity_key(self) -> str:
        return f"alias/{APP_NAME}-{self.name}-integrity"

    @property
    def member_role(self) -> str:
        return f"{APP_NAME}-{self.name}-remediator"

    @property
    def management_role(self) -> str:
        """The minimal role the management template creates for AWS Organizations calls."""
        return f"{APP_NAME}-{self.name}-management"

    @property
    def external_id(self) -> str:
        return f"{APP_NAME}-{self.name}"

    @property
    def worker(self) -> str:
        return self.function(WORKER_FUNCTION)

    @property
    def forwarder_role(self) -> str:
        """The role the member template creates for EventBridge to forward calls to the central bus."""
        return f"{APP_NAME}-{self.name}-forward-events"

    @property
    def switch_parameter(self) -> str:
        """The SSM parameter that pauses the stage or puts it in dry-run (see `organization.switch`)."""
        return f"/{APP_NAME}/{self.name}/switch"

    @property
    def settings_file(self) -> str:
        """The organization settings file, relative to the project (the Lambda's task root)."""
        return f"settings/{self.name}.yaml"

    def acting_functions(self, rule_names: Iterable[str]) -> list[str]:
        """The functions that change AWS: one per EventBridge rule, the sweep and the click worker."""
        return [*rule_names, *SCHEDULED_FUNCTIONS]

    def central_roles(self, rule_names: Iterable[str], member_role: str | None = None) -> list[str]:
        """Every role of the stage in the central account: one per function, and the member
        template's (the StackSet may include the central account)."""
        functions = [*self.acting_functions(rule_names), API_FUNCTION]
        return [*(self.role(f) for f in functions), member_role or self.member_role, self.forwarder_role]

    def other_stage_named(self, value: str, stages: Iterable[str]) -> str | None:
        """Which of `stages`, other than this one, a setting's `value` names a resource of
        (`trailguard-dev-slack_worker`, `/trailguard/dev/...`): a value copied from it. The
        longest stage name that fits wins, so `dev-eu` is not taken for `dev`."""
        names = sorted(set(stages) | {self.name}, key=len, reverse=True)
        for found in re.finditer(rf"(?<![A-Za-z0-9_-]){APP_NAME}[-/]", value):
            rest = value[found.end() :]
            named = next((n for n in names if re.match(rf"{re.escape(n)}(?![A-Za-z0-9_])", rest)), None)
            if named is not None and named != self.name:
                return named
        return None
