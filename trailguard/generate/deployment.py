"""A stage as deployed: the environment `.chalice/config.json` gives its Lambdas, and the
names Chalice gives its functions and roles (`chalicelib.stages`, which the functions use too).

The policy, template and bootstrap commands read them here, so that the table they create,
the roles the member accounts trust and the roles trailguard never answers are the ones
`chalice deploy` creates. A stage's variables that name another stage's resources (a stage
copied from `dev` that still says `trailguard-dev-slack_worker`) are refused here, before
anything is generated or deployed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from chalicelib.settings import ConfigurationError, Settings
from chalicelib.stages import API_FUNCTION, APP_NAME, SCHEDULED_FUNCTIONS, Stage, StageNameError
from trailguard import PROJECT

CHALICE_DIR = PROJECT / ".chalice"
TEMPLATES_DIR = PROJECT / "deploy"
__all__ = ["API_FUNCTION", "APP_NAME", "SCHEDULED_FUNCTIONS"]


class StageError(ConfigurationError):
    """The stage is not in .chalice/config.json (or the file cannot be read), or its
    variables name another stage's resources."""


def chalice_config(chalice_dir: Path | None = None) -> dict[str, Any]:
    chalice_dir = chalice_dir or CHALICE_DIR
    path = chalice_dir / "config.json"
    try:
        config: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise StageError(f"{path}: {error}") from None
    return config


def stage_environment(stage: str, chalice_dir: Path | None = None) -> dict[str, str]:
    chalice_dir = chalice_dir or CHALICE_DIR
    config = chalice_config(chalice_dir)
    stages = config.get("stages", {})
    if stage not in stages:
        raise StageError(
            f"{chalice_dir / 'config.json'}: no stage {stage!r} (stages: {', '.join(sorted(stages)) or 'none'})"
        )
    try:
        named = Stage(stage)
    except StageNameError as error:
        raise StageError(str(error)) from None
    environment = {**config.get("environment_variables", {}), **stages[stage].get("environment_variables", {})}
    told = environment.get("TRAILGUARD_STAGE")
    if told is not None and told != stage:
        raise StageError(
            f"{chalice_dir / 'config.json'}: stage {stage!r} sets TRAILGUARD_STAGE={told} (copied from it?); "
            f"set it to {stage}: `chalice package` and `deploy` load the app with it, to find the stage's "
            "settings file, playbooks and actions"
        )
    copied = [
        (variable, value, other)
        for variable, value in sorted(environment.items())
        if (other := named.other_stage_named(str(value), stages)) is not None
    ]
    if copied:
        variable, value, other = copied[0]
        raise StageError(
            f"{chalice_dir / 'config.json'}: stage {stage!r} sets {variable}={value}, which names stage {other!r}'s "
            f"resource (copied from it?); remove it: every name a stage owns is derived from the stage's own name"
        )
    return {**environment, "TRAILGUARD_STAGE": stage}  # what the stage's functions derive it from


def stage_settings(stage: str, chalice_dir: Path | None = None) -> Settings:
    """The settings the stage's functions run with (`TRAILGUARD_STAGE` is what their names tell them)."""
    return Settings.from_environment(stage_environment(stage, chalice_dir))


def api_gateway_stage(stage: str, chalice_dir: Path | None = None) -> str:
    """The REST API's stage (the URL's first part), as Chalice reads it: the stage's, the file's, `api`."""
    chalice_dir = chalice_dir or CHALICE_DIR
    config = chalice_config(chalice_dir)
    chosen = config.get("stages", {}).get(stage, {}).get("api_gateway_stage") or config.get("api_gateway_stage")
    return str(chosen or "api")


def deployed_rest_api_id(stage: str, chalice_dir: Path | None = None) -> str | None:
    """The REST API `chalice deploy` created for the stage (it records it in `.chalice/deployed/`),
    or None before the first deploy."""
    chalice_dir = chalice_dir or CHALICE_DIR
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
    return Stage(stage).role(function)


def function_name(stage: str, function: str) -> str:
    """What `chalice deploy` calls a function: its role's name, but `trailguard-prod` for the API's."""
    return Stage(stage).function(function)


def forwarder_role_name(stage: str) -> str:
    """The role the member template creates for EventBridge to forward calls to the central bus."""
    return Stage(stage).forwarder_role


def own_roles_in_member_accounts(stage: str, settings: Settings) -> list[str]:
    """The roles the member template creates in every account: the member role and the forwarder's."""
    return [settings.member_role, forwarder_role_name(stage)]


def own_roles_in_central_account(stage: str, settings: Settings, rule_names: list[str]) -> list[str]:
    """Every role of the stage in the central account: one per function, and the member
    template's (the StackSet may include the central account)."""
    return Stage(stage).central_roles(rule_names, settings.member_role)
