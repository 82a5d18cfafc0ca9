"""Settings from environment variables, with defaults that are safe."""

from __future__ import annotations

from pathlib import Path

import pytest

from chalicelib.settings import DEFAULT_OWN_ROLES, PROJECT_PLAYBOOKS, ConfigurationError, Settings

pytestmark = pytest.mark.unit


def test_defaults():
    settings = Settings.from_environment({})
    assert settings.playbooks == (PROJECT_PLAYBOOKS,)
    assert settings.own_role_names == DEFAULT_OWN_ROLES == frozenset()
    assert settings.central_account is None
    assert settings.log_level == "INFO"


def test_values_from_the_environment():
    settings = Settings.from_environment(
        {
            "TRAILGUARD_PLAYBOOKS": "/a:/b",
            "TRAILGUARD_OWN_ROLES": " sec-bot , trailguard-remediator,,",
            "TRAILGUARD_LOG_LEVEL": "warning",
            "TRAILGUARD_CENTRAL_ACCOUNT": "111122223333",
        }
    )
    assert settings.playbooks == (Path("/a"), Path("/b"))
    assert settings.own_role_names == {"sec-bot", "trailguard-remediator"}
    assert settings.central_account == "111122223333"
    assert settings.log_level == "WARNING"


def test_an_unknown_log_level_is_refused_clearly():
    with pytest.raises(ValueError, match="TRAILGUARD_LOG_LEVEL is 'LOUD'; expected one of DEBUG, INFO"):
        Settings.from_environment({"TRAILGUARD_LOG_LEVEL": "loud"})


def test_incident_and_sweep_settings():
    settings = Settings.from_environment(
        {
            "TRAILGUARD_TABLE": "trailguard-prod",
            "TRAILGUARD_INTEGRITY_KEY": "alias/trailguard-prod-integrity",
            "TRAILGUARD_RETENTION_DAYS": "30",
            "TRAILGUARD_EXTERNAL_ID": "x",
            "TRAILGUARD_SWEEP_REGIONS": "eu-west-1, us-east-1",
            "TRAILGUARD_SWEEP_KEYS": "*",
            "TRAILGUARD_SWEEP_ALLOWED_KEYS": "alias/archive",
            "AWS_REGION": "ap-south-1",
        }
    )
    assert (settings.table, settings.retention_days, settings.external_id) == ("trailguard-prod", 30, "x")
    assert settings.integrity_key == "alias/trailguard-prod-integrity"
    assert settings.sweep_regions == {"eu-west-1", "us-east-1"}
    assert (
        settings.sweep_trails == {"*"}
        and settings.sweep_keys == {"*"}
        and settings.sweep_allowed_keys == {"alias/archive"}
    )
    defaults = Settings.from_environment({"AWS_REGION": "ap-south-1"})
    assert defaults.table is None and defaults.sweep_regions == {"ap-south-1"} and defaults.sweep_keys == frozenset()


def test_a_table_without_an_integrity_key_is_refused_saying_what_to_set_and_how_to_make_it():
    """A deployed stage must not run unsealed: it would act on whatever the table holds."""
    with pytest.raises(ValueError) as raised:
        Settings.from_environment({"TRAILGUARD_TABLE": "trailguard-prod"})
    message = str(raised.value)
    assert "TRAILGUARD_INTEGRITY_KEY is not set" in message
    assert "alias/trailguard-<stage>-integrity" in message and "python -m trailguard bootstrap --stage" in message


@pytest.mark.parametrize(
    "key",
    [
        "alias/trailguard-prod-integrity",
        "arn:aws:kms:eu-west-1:111122223333:alias/trailguard-prod-integrity",
        "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        "1234abcd-12ab-34cd-56ef-1234567890ab",
    ],
)
def test_an_integrity_key_is_an_alias_a_key_id_or_their_arn(key):
    settings = Settings.from_environment({"TRAILGUARD_TABLE": "t", "TRAILGUARD_INTEGRITY_KEY": key})
    assert settings.integrity_key == key


@pytest.mark.parametrize(
    "name,value,message",
    [
        (
            "TRAILGUARD_RETENTION_DAYS",
            "ninety",
            "TRAILGUARD_RETENTION_DAYS is 'ninety'; expected a whole number of at least 1",
        ),
        ("TRAILGUARD_RETENTION_DAYS", "0", "TRAILGUARD_RETENTION_DAYS is 0; expected a whole number of at least 1"),
        ("TRAILGUARD_LEASE_SECONDS", "30", "TRAILGUARD_LEASE_SECONDS is 30; expected a whole number of at least 61"),
    ],
)
def test_bad_numbers_are_refused_clearly(name, value, message):
    with pytest.raises(ValueError, match=message):
        Settings.from_environment({name: value})


def test_slack_settings():
    settings = Settings.from_environment(
        {
            "TRAILGUARD_SLACK_TOKEN": "ssm:/trailguard/prod/slack-token",
            "TRAILGUARD_SLACK_SIGNING_SECRET": "secretsmanager:trailguard/prod/signing-secret",
            "TRAILGUARD_SLACK_CHANNEL": "#security-alerts",
            "TRAILGUARD_SLACK_APPROVERS": "U0123ABCD, S0SECURITY",
            "TRAILGUARD_SLACK_WORKER": "trailguard-prod-slack_worker",
            "TRAILGUARD_ACCOUNT_NAMES": "111122223333=prod, 444455556666=staging",
            "TRAILGUARD_SLACK_TEAM_ID": "T0123ABCD",
            "TRAILGUARD_SLACK_APP_ID": "A0123ABCD",
        }
    )
    assert (settings.slack_team_id, settings.slack_app_id) == ("T0123ABCD", "A0123ABCD")
    assert settings.slack and settings.slack_channel == "#security-alerts"
    assert settings.slack_approvers == {"U0123ABCD", "S0SECURITY"}
    assert settings.slack_worker == "trailguard-prod-slack_worker"
    assert settings.account_names == {"111122223333": "prod", "444455556666": "staging"}
    assert "ssm:" not in repr(settings) and "secretsmanager:" not in repr(settings)


def test_without_a_token_incidents_are_only_logged():
    assert not Settings.from_environment({}).slack


@pytest.mark.parametrize(
    "environment,message",
    [
        ({"TRAILGUARD_SLACK_TOKEN": "xoxb-1"}, "TRAILGUARD_SLACK_CHANNEL is not"),
        ({"TRAILGUARD_SLACK_APPROVERS": "alice,U0123ABCD"}, "has alice; expected Slack user ids"),
        ({"TRAILGUARD_SLACK_CHANNEL": "security alerts"}, "expected a channel id (C0123ABCD) or #name"),
        ({"TRAILGUARD_ACCOUNT_NAMES": "prod=111122223333"}, "expected ACCOUNT_ID=name"),
        ({"TRAILGUARD_SLACK_TEAM_ID": "acme"}, "TRAILGUARD_SLACK_TEAM_ID is 'acme'; expected a Slack team id"),
        ({"TRAILGUARD_SLACK_APP_ID": "T0123ABCD"}, "TRAILGUARD_SLACK_APP_ID is 'T0123ABCD'; expected a Slack app id"),
        ({"TRAILGUARD_INTEGRITY_KEY": "trailguard-key"}, "expected a KMS key alias (alias/trailguard-prod-integrity)"),
    ],
)
def test_bad_slack_settings_are_refused_clearly(environment, message):
    with pytest.raises(ValueError) as raised:
        Settings.from_environment(environment)
    assert message in str(raised.value)


@pytest.mark.parametrize("value", ["12345", "1111222233334", "acct-1111", "1111 2222 3333"])
def test_a_central_account_that_is_not_an_account_id_is_refused(value):
    with pytest.raises(ValueError, match=r"TRAILGUARD_CENTRAL_ACCOUNT is .*; expected a 12-digit AWS account id"):
        Settings.from_environment({"TRAILGUARD_CENTRAL_ACCOUNT": value})


@pytest.mark.parametrize("variable", ["TRAILGUARD_TRUSTED_ACCOUNTS", "TRAILGUARD_TRUSTED_ORGANIZATIONS"])
def test_the_trusted_lists_variables_are_refused_saying_where_their_values_go_now(variable):
    """Read silently, a stage would lose its trusted accounts and call the organization's own
    policies external; the lists are in the settings file now."""
    with pytest.raises(ConfigurationError) as raised:
        Settings.from_environment({variable: "111122223333"})
    message = str(raised.value)
    assert f"{variable} is no longer read" in message
    assert "settings/STAGE.yaml, `lists: {trusted_" in message and "remove the variable" in message
    assert Settings.from_environment({variable: " "}).stage is None  # set but empty: nothing to move


def test_the_stage_and_what_it_tells_other_tools_are_off_unless_turned_on():
    quiet = Settings.from_environment({})
    assert (quiet.stage, quiet.stage_label, quiet.security_hub, quiet.security_hub_region) == (
        None,
        "local",
        False,
        None,
    )
    assert quiet.events_out is None
    loud = Settings.from_environment(
        {
            "TRAILGUARD_STAGE": "prod",
            "TRAILGUARD_SECURITY_HUB": "on",
            "TRAILGUARD_SECURITY_HUB_REGION": "eu-west-1",
            "TRAILGUARD_EVENTS_OUT": "on",
        }
    )
    assert (loud.stage, loud.security_hub, loud.security_hub_region, loud.events_out) == (
        "prod",
        True,
        "eu-west-1",
        "default",
    )
    arn = "arn:aws:events:us-east-1:111122223333:event-bus/security"
    assert Settings.from_environment({"TRAILGUARD_EVENTS_OUT": arn}).events_out == arn
    assert Settings.from_environment({"TRAILGUARD_EVENTS_OUT": "security"}).events_out == "security"
    assert Settings.from_environment({"TRAILGUARD_EVENTS_OUT": "off"}).events_out is None


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("TRAILGUARD_STAGE", "prod stage", "TRAILGUARD_STAGE: "),
        ("TRAILGUARD_SECURITY_HUB", "maybe", "TRAILGUARD_SECURITY_HUB is 'maybe'; expected on or off"),
        ("TRAILGUARD_SECURITY_HUB_REGION", "Ireland", "TRAILGUARD_SECURITY_HUB_REGION is 'Ireland'; expected an AWS"),
        ("TRAILGUARD_EVENTS_OUT", "arn:aws:sns:x", "TRAILGUARD_EVENTS_OUT is 'arn:aws:sns:x'; expected on, off, or an"),
    ],
)
def test_bad_output_settings_are_refused_clearly(name, value, message):
    with pytest.raises(ValueError, match=message):
        Settings.from_environment({name: value})
