"""Running a plan's steps: for real against AWS, or simulated (dry-run, replay, tests).

Each step goes snapshot -> check -> apply -> snapshot, and its result keeps both
snapshots, which is what undo needs. A failing step is recorded with its error and
stops the plan (later steps may rely on it); nothing raises past the executor.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from chalicelib.actions import ActionError, registered_actions
from chalicelib.aws import ClientProvider
from chalicelib.incidents import StepResult, StepStatus
from chalicelib.plan import Plan

log = logging.getLogger("trailguard")


class Executor(Protocol):
    def run(self, plan: Plan) -> list[StepResult]: ...


class SimulatedExecutor:
    """Records what would run and calls nothing."""

    def run(self, plan: Plan) -> list[StepResult]:
        return [StepResult(step.action, step.params, StepStatus.SIMULATED) for step in plan.steps]


class AwsExecutor:
    def __init__(self, clients: ClientProvider) -> None:
        self.clients = clients

    def run(self, plan: Plan) -> list[StepResult]:
        results: list[StepResult] = []
        failed = False
        for step in plan.steps:
            if failed:
                results.append(StepResult(step.action, step.params, StepStatus.NOT_RUN))
                continue
            result = self._run_step(plan, step.action, step.params)
            failed = result.status is StepStatus.FAILED
            results.append(result)
        return results

    def _run_step(self, plan: Plan, name: str, params: dict[str, Any]) -> StepResult:
        result = StepResult(name, params, StepStatus.FAILED)
        try:
            action_class = registered_actions()[name]
            client = self.clients.client(action_class.service, plan.event.account, plan.event.region)
            action = action_class(client, params)
            result.before = action.snapshot()
            if action.check(result.before):
                result.after = result.before
                result.status = StepStatus.ALREADY_SAFE
                return result
            action.apply(result.before)
            result.after = action.snapshot()
            result.status = StepStatus.APPLIED
        except Exception as error:  # noqa: BLE001 - every failure is recorded, none escapes
            result.error = describe_error(error)
            if not isinstance(error, ActionError) and not hasattr(error, "response"):
                log.exception("unexpected error in %s for event %s", name, plan.event.event_id)
        return result


def describe_error(error: BaseException) -> str:
    """A one-line error for incidents and messages (AWS's error code and message if any)."""
    response = getattr(error, "response", None)
    if isinstance(response, dict) and "Error" in response:
        details = response["Error"]
        return f"{details.get('Code', 'Error')}: {details.get('Message', '')}".strip()
    if isinstance(error, ActionError):
        return str(error)
    return f"{type(error).__name__}: {error}"
