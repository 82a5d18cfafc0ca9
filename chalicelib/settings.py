"""Configuration, read once from environment variables (set per stage in .chalice/config.json).

| variable              | meaning                                                   | default                |
|-----------------------|-----------------------------------------------------------|------------------------|
| TRAILGUARD_PLAYBOOKS  | playbook files or folders, separated by `:`               | the bundled playbooks/ |
| TRAILGUARD_OWN_ROLES  | comma-separated names of trailguard's own IAM roles; calls | trailguard-remediator  |
|                       | made through them are never acted on (no remediation loop).|                        |
|                       | The Lambda's own execution role is always added at run time|                        |
| TRAILGUARD_LOG_LEVEL  | level of trailguard's log lines                           | INFO                   |
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

PROJECT_PLAYBOOKS = Path(__file__).resolve().parent.parent / "playbooks"
DEFAULT_OWN_ROLES = frozenset({"trailguard-remediator"})
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def _names(text: str) -> frozenset[str]:
    return frozenset(name.strip() for name in text.split(",") if name.strip())


@dataclass(frozen=True)
class Settings:
    playbooks: tuple[Path, ...] = (PROJECT_PLAYBOOKS,)
    own_role_names: frozenset[str] = DEFAULT_OWN_ROLES
    log_level: str = "INFO"

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        playbooks = environ.get("TRAILGUARD_PLAYBOOKS", "")
        own_roles = environ.get("TRAILGUARD_OWN_ROLES", "")
        log_level = environ.get("TRAILGUARD_LOG_LEVEL", "INFO").upper()
        if log_level not in LOG_LEVELS:
            raise ValueError(f"TRAILGUARD_LOG_LEVEL is {log_level!r}; expected one of {', '.join(LOG_LEVELS)}")
        return cls(
            playbooks=tuple(Path(p) for p in playbooks.split(os.pathsep) if p) or (PROJECT_PLAYBOOKS,),
            own_role_names=_names(own_roles) or DEFAULT_OWN_ROLES,
            log_level=log_level,
        )
