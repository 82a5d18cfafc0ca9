"""A stage as deployed: the environment `.chalice/config.json` gives its Lambdas, and the
names Chalice gives its functions and roles.

The policy, template and bootstrap commands read them here, so that the table they create,
the roles the member accounts trust and the roles trailguard never answers are the ones
`chalice deploy` creates.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from chalicelib.settings import Settings
from trailguard import PROJECT

CHALICE_DIR = PROJECT / ".chalice"
TEMPLATES_DIR = PROJECT / "deploy"
APP_NAME = "trailguard"
API_FUNCTION = "api_handler"
"""Chalice's name for the function behind the routes (`/slack/interactions`)."""
SCHEDULED_FUNCTIONS = ("posture_sweep", "slack_worker")


class StageError(ValueError):
    """The stage is not in .chalice/config.json (or the file cannot be read)."""


def chalice_config(chalice_dir: Path = CHALICE_DIR) -> dict[str, Any]:
    path = chalice_dir / "config.json"
    try:
        config: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise StageError(f"{path}: {error}") from None
    return config


def stage_environment(stage: str, chalice_dir: Path = CHALICE_DIR) -> dict[str, str]:
    config = chalice_config(chalice_dir)
    stages = config.get("stages", {})
    if stage not in stages:
        raise StageError(
            f"{chalice_dir / 'config.json'}: no stage {stage!r} (stages: {', '.join(sorted(stages)) or 'none'})"
        )
    return {**config.get("environment_variables", {}), **stages[stage].get("environment_variables", {})}


def stage_settings(stage: str, chalice_dir: Path = CHALICE_DIR) -> Settings:
    return Settings.from_environment(stage_environment(stage, chalice_dir))


def api_gateway_stage(stage: str, chalice_dir: Path = CHALICE_DIR) -> str:
    """The REST API's stage (the URL's first part), as Chalice reads it: the stage's, the file's, `api`."""
    config = chalice_config(chalice_dir)
    chosen = config.get("stages", {}).get(stage, {}).get("api_gateway_stage") or config.get("api_gateway_stage")
    return str(chosen or "api")


def deployed_rest_api_id(stage: str, chalice_dir: Path = CHALICE_DIR) -> str | None:
    """The REST API `chalice deploy` created for the stage (it records it in `.chalice/deployed/`),
    or None before the first deploy."""
    path = chalice_dir / "deployed" / f"{stage}.json"
    if not path.exists():
        return None
    try:
        resources = json.loads(path.read_text()).get("resources", [])
    except (OSError, ValueError, AttributeError) as error:
        raise StageError(f"{path}: {error}") from None
    return next((str(r["rest_api_id"]) for r in resources if r.get("resource_type") == "rest_api"), None)


def acting_functions(rule_names: list[str]) -> list[str]:
    """The functions that change AWS: one per EventBridge rule, the sweep and the click worker."""
    return [*rule_names, *SCHEDULED_FUNCTIONS]


def role_name(stage: str, function: str) -> str:
    """What `chalice deploy` calls a function's role (`trailguard-prod-slack_worker`)."""
    return f"{APP_NAME}-{stage}-{function}"


def function_name(stage: str, function: str) -> str:
    """What `chalice deploy` calls a function: its role's name, but `trailguard-prod` for the API's."""
    return f"{APP_NAME}-{stage}" if function == API_FUNCTION else role_name(stage, function)


def forwarder_role_name(stage: str) -> str:
    """The role the member template creates for EventBridge to forward calls to the central bus."""
    return f"{APP_NAME}-{stage}-forward-events"


def own_roles_in_member_accounts(stage: str, settings: Settings) -> list[str]:
    """The roles the member template creates in every account: the member role and the forwarder's."""
    return [settings.member_role, forwarder_role_name(stage)]


def own_roles_in_central_account(stage: str, settings: Settings, rule_names: list[str]) -> list[str]:
    """Every role of the stage in the central account: one per function, and the member
    template's (the StackSet may include the central account)."""
    functions = [*acting_functions(rule_names), API_FUNCTION]
    return [*(role_name(stage, function) for function in functions), *own_roles_in_member_accounts(stage, settings)]
