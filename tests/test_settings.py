"""Settings from environment variables, with defaults that are safe."""

from __future__ import annotations

from pathlib import Path

import pytest

from chalicelib.settings import DEFAULT_OWN_ROLES, PROJECT_PLAYBOOKS, Settings


def test_defaults():
    settings = Settings.from_environment({})
    assert settings.playbooks == (PROJECT_PLAYBOOKS,)
    assert settings.own_role_names == DEFAULT_OWN_ROLES == frozenset({"trailguard-remediator"})
    assert settings.log_level == "INFO"


def test_values_from_the_environment():
    settings = Settings.from_environment({
        "TRAILGUARD_PLAYBOOKS": "/a:/b",
        "TRAILGUARD_OWN_ROLES": " sec-bot , trailguard-remediator,,",
        "TRAILGUARD_LOG_LEVEL": "warning",
    })
    assert settings.playbooks == (Path("/a"), Path("/b"))
    assert settings.own_role_names == {"sec-bot", "trailguard-remediator"}
    assert settings.log_level == "WARNING"


def test_an_unknown_log_level_is_refused_clearly():
    with pytest.raises(ValueError, match="TRAILGUARD_LOG_LEVEL is 'LOUD'; expected one of DEBUG, INFO"):
        Settings.from_environment({"TRAILGUARD_LOG_LEVEL": "loud"})


def test_incident_and_sweep_settings():
    settings = Settings.from_environment({
        "TRAILGUARD_TABLE": "trailguard-prod", "TRAILGUARD_RETENTION_DAYS": "30", "TRAILGUARD_EXTERNAL_ID": "x",
        "TRAILGUARD_SWEEP_REGIONS": "eu-west-1, us-east-1", "TRAILGUARD_SWEEP_KEYS": "*",
        "TRAILGUARD_SWEEP_ALLOWED_KEYS": "alias/archive", "AWS_REGION": "ap-south-1",
    })
    assert (settings.table, settings.retention_days, settings.external_id) == ("trailguard-prod", 30, "x")
    assert settings.sweep_regions == {"eu-west-1", "us-east-1"}
    assert settings.sweep_trails == {"*"} and settings.sweep_keys == {"*"} and settings.sweep_allowed_keys == {"alias/archive"}
    defaults = Settings.from_environment({"AWS_REGION": "ap-south-1"})
    assert defaults.table is None and defaults.sweep_regions == {"ap-south-1"} and defaults.sweep_keys == frozenset()


@pytest.mark.parametrize("name,value,message", [
    ("TRAILGUARD_RETENTION_DAYS", "ninety", "TRAILGUARD_RETENTION_DAYS is 'ninety'; expected a whole number of at least 1"),
    ("TRAILGUARD_RETENTION_DAYS", "0", "TRAILGUARD_RETENTION_DAYS is 0; expected a whole number of at least 1"),
    ("TRAILGUARD_LEASE_SECONDS", "30", "TRAILGUARD_LEASE_SECONDS is 30; expected a whole number of at least 61"),
])
def test_bad_numbers_are_refused_clearly(name, value, message):
    with pytest.raises(ValueError, match=message):
        Settings.from_environment({name: value})
