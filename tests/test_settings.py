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
