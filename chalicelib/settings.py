"""Configuration, read once from environment variables (set per stage in .chalice/config.json).

| variable                     | meaning                                                         | default                |
|------------------------------|-----------------------------------------------------------------|------------------------|
| TRAILGUARD_PLAYBOOKS         | playbook files or folders, separated by `:`                     | the bundled playbooks/ |
| TRAILGUARD_OWN_ROLES         | comma-separated names of trailguard's own IAM roles; calls made | trailguard-remediator  |
|                              | through them are never acted on (no remediation loop). The      |                        |
|                              | member role and the Lambda's own role are always added          |                        |
| TRAILGUARD_LOG_LEVEL         | level of trailguard's log lines                                 | INFO                   |
| TRAILGUARD_TABLE             | the DynamoDB table of incidents; unset: kept in memory only     | (unset)                |
|                              | (one container; for local runs, never for a deployed stage)     |                        |
| TRAILGUARD_RETENTION_DAYS    | how long finished incidents are kept (DynamoDB TTL)             | 90                     |
| TRAILGUARD_MEMBER_ROLE       | role assumed in other accounts of the organization              | trailguard-remediator  |
| TRAILGUARD_EXTERNAL_ID       | external id the member role's trust policy requires             | (none)                 |
| TRAILGUARD_LEASE_SECONDS     | how long a worker owns a running incident before another may    | 120                    |
|                              | resume it; must exceed the Lambda timeout                       |                        |
| TRAILGUARD_SWEEP_MINUTES     | how often the posture sweep runs (read when deploying)          | 15                     |
| TRAILGUARD_SWEEP_REGIONS     | comma-separated regions the sweep checks                        | the Lambda's region    |
| TRAILGUARD_SWEEP_TRAILS      | trail names or ARNs that must be logging; `*` for all           | *                      |
| TRAILGUARD_SWEEP_KEYS        | KMS key ids/ARNs/aliases that must stay enabled; `*` for every  | (none)                 |
|                              | customer-managed key. Off by default: many accounts keep keys   |                        |
|                              | disabled on purpose, and the KMS playbooks re-enable in auto    |                        |
| TRAILGUARD_SWEEP_ALLOWED_KEYS| keys the sweep leaves alone even when TRAILGUARD_SWEEP_KEYS=*   | (none)                 |
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

PROJECT_PLAYBOOKS = Path(__file__).resolve().parent.parent / "playbooks"
DEFAULT_MEMBER_ROLE = "trailguard-remediator"
DEFAULT_OWN_ROLES = frozenset({DEFAULT_MEMBER_ROLE})
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def _names(text: str) -> frozenset[str]:
    return frozenset(name.strip() for name in text.split(",") if name.strip())


def _whole_number(environ: Mapping[str, str], name: str, default: int, least: int) -> int:
    text = environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{name} is {text!r}; expected a whole number of at least {least}") from None
    if value < least:
        raise ValueError(f"{name} is {value}; expected a whole number of at least {least}")
    return value


@dataclass(frozen=True)
class Settings:
    playbooks: tuple[Path, ...] = (PROJECT_PLAYBOOKS,)
    own_role_names: frozenset[str] = DEFAULT_OWN_ROLES
    log_level: str = "INFO"
    table: str | None = None
    retention_days: int = 90
    member_role: str = DEFAULT_MEMBER_ROLE
    external_id: str | None = None
    lease_seconds: int = 120
    sweep_minutes: int = 15
    sweep_regions: frozenset[str] = frozenset()
    sweep_trails: frozenset[str] = frozenset({"*"})
    sweep_keys: frozenset[str] = frozenset()
    sweep_allowed_keys: frozenset[str] = frozenset()

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        log_level = environ.get("TRAILGUARD_LOG_LEVEL", "INFO").upper()
        if log_level not in LOG_LEVELS:
            raise ValueError(f"TRAILGUARD_LOG_LEVEL is {log_level!r}; expected one of {', '.join(LOG_LEVELS)}")
        member_role = environ.get("TRAILGUARD_MEMBER_ROLE", "").strip() or DEFAULT_MEMBER_ROLE
        playbooks = environ.get("TRAILGUARD_PLAYBOOKS", "")
        return cls(
            playbooks=tuple(Path(p) for p in playbooks.split(os.pathsep) if p) or (PROJECT_PLAYBOOKS,),
            own_role_names=(_names(environ.get("TRAILGUARD_OWN_ROLES", "")) or DEFAULT_OWN_ROLES) | {member_role},
            log_level=log_level,
            table=environ.get("TRAILGUARD_TABLE", "").strip() or None,
            retention_days=_whole_number(environ, "TRAILGUARD_RETENTION_DAYS", 90, 1),
            member_role=member_role,
            external_id=environ.get("TRAILGUARD_EXTERNAL_ID", "").strip() or None,
            lease_seconds=_whole_number(environ, "TRAILGUARD_LEASE_SECONDS", 120, 61),
            sweep_minutes=_whole_number(environ, "TRAILGUARD_SWEEP_MINUTES", 15, 1),
            sweep_regions=_names(environ.get("TRAILGUARD_SWEEP_REGIONS", "") or environ.get("AWS_REGION", "")),
            sweep_trails=_names(environ.get("TRAILGUARD_SWEEP_TRAILS", "*")) or frozenset({"*"}),
            sweep_keys=_names(environ.get("TRAILGUARD_SWEEP_KEYS", "")),
            sweep_allowed_keys=_names(environ.get("TRAILGUARD_SWEEP_ALLOWED_KEYS", "")),
        )
