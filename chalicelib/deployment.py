"""A stage's settings as deployed: the environment `.chalice/config.json` gives its Lambdas.

The policy and bootstrap commands read them here, so that the table they create and the
table the policy names are the ones the deployed functions will use.
"""

from __future__ import annotations

import json
from pathlib import Path

from chalicelib.settings import Settings

CHALICE_DIR = Path(__file__).resolve().parent.parent / ".chalice"


class StageError(ValueError):
    """The stage is not in .chalice/config.json (or the file cannot be read)."""


def stage_environment(stage: str, chalice_dir: Path = CHALICE_DIR) -> dict[str, str]:
    path = chalice_dir / "config.json"
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise StageError(f"{path}: {error}") from None
    stages = config.get("stages", {})
    if stage not in stages:
        raise StageError(f"{path}: no stage {stage!r} (stages: {', '.join(sorted(stages)) or 'none'})")
    return {**config.get("environment_variables", {}), **stages[stage].get("environment_variables", {})}


def stage_settings(stage: str, chalice_dir: Path = CHALICE_DIR) -> Settings:
    return Settings.from_environment(stage_environment(stage, chalice_dir))
