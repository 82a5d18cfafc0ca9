"""The organization settings file: read like a playbook (file, line, key, did-you-mean), every
part of it understood, every mistake listed before the stage starts."""

from __future__ import annotations

import datetime as dt
import textwrap
from pathlib import Path

import pytest

from chalicelib.organization.extensions import load_catalog
from chalicelib.organization.loader import OrganizationError, load_organization
from chalicelib.settings import PROJECT_ROOT, ConfigurationError, Settings
from tests.conftest import PLAYBOOKS, ROOT

pytestmark = pytest.mark.unit

EXAMPLE = ROOT / "settings" / "example.yaml"


def _file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "prod.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def _mistakes(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(OrganizationError) as raised:
        load_organization(_file(tmp_path, text))
    return [str(mistake).replace(str(tmp_path) + "/", "") for mistake in raised.value.mistakes]


def test_the_shipped_example_is_read_whole():
    organization = load_organization(EXAMPLE)
    assert organization.lists.get("break_glass_roles") == ["arn:aws:iam::111122223333:role/break-glass"]
    assert organization.lists.get("trusted_accounts") == ["111122223333", "444455556666"]
    assert organization.accounts["777788889999"].ou_path == ("r-ab12", "ou-ab12-33333333")
    assert organization.account_names()["444455556666"] == "payments-prod"
    assert organization.scope.exclude_accounts == {"999900001111"}
    scope = organization.playbook_scope("ec2-security-group-public-admin-ingress")
    assert scope.exclude_ous == {"ou-ab12-33333333"} and scope.exclude_tags == {"purpose": "bastion"}
    assert organization.modes.default == "approve" and organization.modes.ous == {"ou-ab12-33333333": "auto"}
    assert organization.modes.dry_run_until == dt.datetime(2026, 12, 14, tzinfo=dt.UTC)
    assert organization.opt_out_by_tag and "cloudtrail-stop-logging" in organization.opt_out_never
    assert organization.exception_days == 30 and organization.exceptions_never == {"cloudtrail-trail-deleted"}
    # the playbook ids it names are all shipped ones
    load_catalog((PLAYBOOKS,), organization, with_tests=False)


def test_a_typo_is_refused_with_its_line_and_the_key_meant(tmp_path):
    assert _mistakes(tmp_path, "lists: {}\nscpoe:\n  regions: [eu-west-1]\n") == [
        "prod.yaml:2: scpoe: unknown key 'scpoe'; did you mean 'scope'? "
        "(expected one of: lists, accounts, scope, modes, playbooks, actions, opt_out, exceptions, baseline)"
    ]
    [mistake] = _mistakes(tmp_path, "scope:\n  exclude_acounts: ['111122223333']\n")
    assert mistake.startswith("prod.yaml:2: scope.exclude_acounts: unknown key 'exclude_acounts'; did you mean")


@pytest.mark.parametrize(
    "text,expected",
    [
        # YAML reads digits as a number: an account id must be quoted
        ("scope:\n  accounts: [111122223333]\n", "prod.yaml:2: scope.accounts[0]: is a number (expected a 12-digit"),
        ("modes:\n  default: fast\n", "prod.yaml:2: modes.default: 'fast' is not allowed (expected the stage's"),
        ("modes:\n  ous: {ou-ab12-11111111: approved}\n", "prod.yaml:2: modes.ous.ou-ab12-11111111: 'approved' is not"),
        ("modes:\n  accounts: {'1234': notify}\n", "prod.yaml:2: modes.accounts: '1234' is not in the expected form"),
        (
            "lists:\n  break_glass_roles: [break-glass]\n",
            "prod.yaml:2: lists.break_glass_roles[0]: 'break-glass' is not in the expected form (expected role ARNs",
        ),
        ("lists:\n  partners: []\n", "prod.yaml:2: lists.partners: unknown key 'partners'"),
        ("modes:\n  dry_run_until: '2026-02-30'\n", "prod.yaml:2: modes.dry_run_until: '2026-02-30' is not a date"),
        ("playbooks:\n  folders: [no/such/folder]\n", "prod.yaml:2: playbooks.folders[0]: no folder 'no/such/folder'"),
        ("on: true\n", "prod.yaml:1: the key 'on' is read by YAML as true"),
        ("- a list\n", "prod.yaml:1: the settings file is a mapping of keys, got a list"),
        ("scope: {}\nscope: {}\n", "prod.yaml:2: scope: the key 'scope' is written twice (first on line 1)"),
    ],
)
def test_each_mistake_says_where_and_what_was_expected(tmp_path, text, expected):
    [mistake] = _mistakes(tmp_path, text)
    assert mistake.startswith(expected), mistake


def test_a_playbook_id_the_settings_name_must_exist_and_the_closest_is_offered(tmp_path):
    organization = load_organization(
        _file(
            tmp_path,
            """\
            playbooks:
              disabled: [console-login-without-mfa, s3-bucket-acl-publik]
            modes:
              playbooks: {kms-key-disabld: notify}
            """,
        )
    )
    with pytest.raises(OrganizationError) as raised:
        load_catalog((PLAYBOOKS,), organization, with_tests=False)
    lines = [str(m).replace(str(tmp_path) + "/", "") for m in raised.value.mistakes]
    assert lines == [
        "prod.yaml:2: playbooks.disabled[1]: no playbook has the id 's3-bucket-acl-publik'; did you mean "
        "'s3-bucket-acl-public'? (expected the id of a loaded playbook)",
        "prod.yaml:4: modes.playbooks.kms-key-disabld: no playbook has the id 'kms-key-disabld'; did you mean "
        "'kms-key-disabled'? (expected the id of a loaded playbook)",
    ]


def test_every_mistake_is_one_line_and_the_whole_error_is_a_configuration_error(tmp_path):
    with pytest.raises(ConfigurationError) as raised:
        load_organization(_file(tmp_path, "modes:\n  dry_run_until: '2026-13-01'\n"))
    assert str(raised.value).splitlines()[0] == "1 mistake in the organization settings:"


def test_a_stage_reads_its_own_file_when_it_exists_and_the_variable_names_another(tmp_path):
    assert Settings.from_environment({"TRAILGUARD_STAGE": "no-such-stage"}).organization_file is None
    given = Settings.from_environment({"TRAILGUARD_SETTINGS_FILE": "settings/example.yaml"})
    assert given.organization_file == PROJECT_ROOT / "settings" / "example.yaml"
