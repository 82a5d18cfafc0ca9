"""Scope and mode ceilings, decided in one place (`respond.controls`) and honoured by the
decision path, the Lambda handler, replay and the playbooks' tests alike."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from chalicelib.events.record import CloudTrailEvent
from chalicelib.organization.extensions import load_catalog
from chalicelib.organization.loader import load_organization
from chalicelib.playbooks.catalog import Catalog
from chalicelib.respond.controls import Controls
from chalicelib.respond.guards import OwnIdentities
from chalicelib.respond.responder import decide
from chalicelib.settings import Settings
from tests.conftest import ACCOUNT, PLAYBOOKS, REGION, envelope, record
from trailguard.cli import main
from trailguard.playbook_tests import run_tests

pytestmark = pytest.mark.integration

SANDBOX, PRODUCTION = "ou-ab12-33333333", "ou-ab12-22222222"
BREAK_GLASS = f"arn:aws:iam::{ACCOUNT}:role/break-glass"


def _organization(tmp_path: Path, text: str):
    path = tmp_path / "settings.yaml"
    path.write_text(textwrap.dedent(text))
    return load_organization(path)


@pytest.fixture(scope="module")
def builtin() -> Catalog:
    return Catalog.load([PLAYBOOKS], with_tests=False)


def _stop_logging(account: str = ACCOUNT, region: str = REGION, **fields) -> CloudTrailEvent:
    stop = record("StopLogging", "cloudtrail.amazonaws.com", {"name": "main"}, **fields)
    stop["recipientAccountId"], stop["awsRegion"] = account, region
    return CloudTrailEvent.from_record(stop)


def _assumed(role_arn: str) -> dict:
    account, name = role_arn.split(":")[4], role_arn.rsplit("/", 1)[1]
    return {
        "type": "AssumedRole",
        "principalId": "AROAEXAMPLE:alice",
        "arn": f"arn:aws:sts::{account}:assumed-role/{name}/alice",
        "accountId": account,
        "sessionContext": {"sessionIssuer": {"type": "Role", "arn": role_arn, "userName": name}},
    }


def test_an_excluded_account_and_region_are_outside_the_stage_and_no_playbook_answers(builtin, tmp_path):
    controls = Controls(
        _organization(tmp_path, "scope:\n  exclude_accounts: ['999900001111']\n  exclude_regions: [ap-east-1]\n")
    )
    decision = decide(builtin, _stop_logging(account="999900001111"), OwnIdentities(), controls=controls)
    assert decision.plans == () and decision.skip is not None
    assert decision.skip.code == "out-of-scope"
    assert decision.skip.reason == "outside the organization's scope: scope.exclude_accounts lists account 999900001111"
    skipped = decide(builtin, _stop_logging(region="ap-east-1"), OwnIdentities(), controls=controls).skip
    assert skipped is not None and "scope.exclude_regions lists ap-east-1" in skipped.reason
    # elsewhere, the playbook answers as it always did
    [plan] = decide(builtin, _stop_logging(), OwnIdentities(), controls=controls).plans
    assert (plan.playbook.id, plan.mode, plan.lowered_by) == ("cloudtrail-stop-logging", "auto", None)


def test_a_playbooks_own_scope_leaves_the_others_answering(builtin, tmp_path):
    controls = Controls(
        _organization(
            tmp_path,
            """\
            accounts:
              '111122223333': {ou: r-ab12/ou-ab12-33333333}
            scope:
              playbooks:
                cloudtrail-stop-logging: {exclude_ous: [ou-ab12-33333333]}
            """,
        )
    )
    decision = decide(builtin, _stop_logging(account="111122223333"), OwnIdentities(), controls=controls)
    assert decision.plans == ()
    assert decision.rejections == (
        (
            builtin.get("cloudtrail-stop-logging"),
            "scope.playbooks.cloudtrail-stop-logging.exclude_ous lists "
            "ou-ab12-33333333, which account 111122223333 is in",
        ),
    )


def test_the_deepest_ou_with_a_ceiling_wins_and_an_accounts_wins_over_its_ous(builtin, tmp_path):
    organization = _organization(
        tmp_path,
        f"""\
        accounts:
          '111111111111': {{ou: r-ab12/{SANDBOX}}}
          '222222222222': {{ou: r-ab12/{PRODUCTION}}}
          '333333333333': {{ou: r-ab12/{PRODUCTION}/ou-ab12-44444444}}
          '555555555555': {{ou: r-ab12/{PRODUCTION}}}
        modes:
          default: notify
          ous: {{{SANDBOX}: auto, {PRODUCTION}: approve, ou-ab12-44444444: dry-run}}
          accounts: {{'555555555555': auto}}
        """,
    )
    controls = Controls(organization)

    def mode(account: str) -> tuple[str, str | None]:
        [plan] = decide(builtin, _stop_logging(account=account), OwnIdentities(), controls=controls).plans
        return plan.mode, plan.lowered_by

    assert mode("111111111111") == ("auto", None)  # sandbox: as the playbook says
    assert mode("222222222222") == ("approve", f"auto -> approve: modes.ous.{PRODUCTION}")
    assert mode("333333333333") == ("dry-run", "auto -> dry-run: modes.ous.ou-ab12-44444444")
    assert mode("555555555555") == ("auto", None)  # the account's own ceiling
    assert mode("666666666666") == ("notify", "auto -> notify: modes.default")  # OU unknown: the stage's


def test_the_dry_run_week_and_break_glass_lower_everything(builtin, tmp_path):
    controls = Controls(
        _organization(
            tmp_path,
            f"""\
            lists: {{break_glass_roles: ['{BREAK_GLASS}']}}
            modes: {{dry_run_until: '2026-12-01'}}
            """,
        )
    )
    [during] = decide(
        builtin, _stop_logging(eventTime="2026-11-26T03:12:45Z"), OwnIdentities(), controls=controls
    ).plans
    assert (during.mode, during.lowered_by) == (
        "dry-run",
        "auto -> dry-run: modes.dry_run_until (2026-12-01 00:00 UTC)",
    )
    after = _stop_logging(eventTime="2026-12-02T00:00:00Z", userIdentity=_assumed(BREAK_GLASS))
    [plan] = decide(builtin, after, OwnIdentities(), controls=controls).plans
    assert plan.mode == "notify" and "modes.break_glass" in str(plan.lowered_by)


def test_a_list_referenced_by_name_is_the_settings_files(builtin, tmp_path):
    """The snapshot-sharing playbook leaves the organization's accounts alone, from the
    settings file's list: nobody copies it into the playbook."""
    organization = _organization(tmp_path, "lists:\n  trusted_accounts: ['444455556666']\n")
    shared = record(
        "ModifySnapshotAttribute",
        "ec2.amazonaws.com",
        {
            "snapshotId": "snap-0123456789abcdef0",
            "attributeType": "CREATE_VOLUME_PERMISSION",
            "createVolumePermission": {"add": {"items": [{"userId": "444455556666"}, {"userId": "210987654321"}]}},
        },
    )
    event = CloudTrailEvent.from_record(shared)
    [plan] = decide(builtin, event, OwnIdentities(), organization.lists, Controls(organization)).plans
    assert plan.steps[0].params["accounts"] == ["210987654321"]
    only_ours = dict(shared, requestParameters={**shared["requestParameters"]})
    only_ours["requestParameters"]["createVolumePermission"] = {"add": {"items": [{"userId": "444455556666"}]}}
    decision = decide(builtin, CloudTrailEvent.from_record(only_ours), OwnIdentities(), organization.lists)
    assert decision.plans == () and decision.rejections  # without the list it would be proposed
    assert decide(builtin, CloudTrailEvent.from_record(only_ours), OwnIdentities()).plans != ()


def test_an_organizations_playbook_reads_its_break_glass_list_by_name(tmp_path):
    folder = tmp_path / "acme"
    folder.mkdir()
    (folder / "guardduty-stays-on.yaml").write_text(
        textwrap.dedent(
            """\
            id: acme-trail-stopped
            title: A trail was stopped outside an emergency
            severity: high
            when:
              source: cloudtrail.amazonaws.com
              events: [StopLogging]
              unless: contains(named_list('break_glass_roles'), userIdentity.sessionContext.sessionIssuer.arn || '')
            mode: notify
            """
        )
    )
    organization = _organization(tmp_path, f"lists: {{break_glass_roles: ['{BREAK_GLASS}']}}\n")
    catalog = Catalog.load([folder])
    by_break_glass = _stop_logging(userIdentity=_assumed(BREAK_GLASS))
    assert decide(catalog, by_break_glass, OwnIdentities(), organization.lists).plans == ()
    assert len(decide(catalog, _stop_logging(), OwnIdentities(), organization.lists).plans) == 1


def test_the_playbooks_tests_honour_a_stages_ceilings(tmp_path):
    """`trailguard test --stage` shows what the stage would do: a test that expects auto
    fails under an approve ceiling, naming the rule."""
    organization = _organization(tmp_path, "modes:\n  playbooks: {cloudtrail-stop-logging: approve}\n")
    catalog = load_catalog((PLAYBOOKS,), organization)
    playbook = catalog.get("cloudtrail-stop-logging")
    own = OwnIdentities.of(Settings.from_environment({}))
    assert all(result.passed for result in run_tests([playbook], own))
    failed = [r for r in run_tests([playbook], own, Controls(organization)) if not r.passed]
    assert failed and failed[0].problem == (
        "expected mode auto, got approve (auto -> approve: modes.playbooks.cloudtrail-stop-logging)"
    )


def test_replay_honours_the_settings_files_scope_and_ceilings(tmp_path):
    events = tmp_path / "events.jsonl"
    lines = [
        record("StopLogging", "cloudtrail.amazonaws.com", {"name": "main"}, recipientAccountId=a)
        for a in ("111111111111", "222222222222")
    ]
    events.write_text("\n".join(json.dumps(line) for line in lines))
    settings = tmp_path / "settings.yaml"
    settings.write_text("scope:\n  exclude_accounts: ['222222222222']\nmodes:\n  default: approve\n")
    result = CliRunner().invoke(
        main, ["replay", str(events), "--format", "jsonl", "--all", "--settings", str(settings)]
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert rows[0]["matches"][0]["mode"] == "approve"
    assert rows[0]["matches"][0]["loweredBy"] == "auto -> approve: modes.default"
    assert rows[1]["skipped"] == "out-of-scope" and "222222222222" in rows[1]["reason"]


# -- through the Lambda handler ---------------------------------------------------------------


@pytest.fixture
def handler(aws, restart, tmp_path):
    """The app's handler on a fresh container whose organization settings the test writes."""
    from chalice.test import Client

    import app as chalice_app

    def run(text: str, event: dict) -> dict:
        restart(organization=_organization(tmp_path, text))
        with Client(chalice_app.app) as client:
            payload: dict = client.lambda_.invoke("respond_to_cloudtrail", envelope(event)).payload
        return payload

    return run


def test_a_mode_ceiling_per_ou_through_the_handler_proposes_and_says_why(handler, make_trail):
    make_trail("main")
    import app as chalice_app

    payload = handler(
        f"accounts: {{'{ACCOUNT}': {{ou: r-ab12/{PRODUCTION}}}}}\nmodes:\n  ous: {{{PRODUCTION}: approve}}\n",
        record("StopLogging", "cloudtrail.amazonaws.com", {"name": "main"}),
    )
    [summary] = payload["incidents"]
    assert summary["state"] == "proposed"
    incident = chalice_app.runtime.incidents.get(summary["id"])
    assert incident.mode == "approve" and incident.mode_note == f"auto -> approve: modes.ous.{PRODUCTION}"
    assert "mode auto -> approve" in str(incident.history[0].detail)


def test_an_excluded_account_through_the_handler_is_skipped_without_an_incident(handler, make_trail):
    cloudtrail = make_trail("main")
    payload = handler(
        f"scope:\n  exclude_accounts: ['{ACCOUNT}']\n",
        record("StopLogging", "cloudtrail.amazonaws.com", {"name": "main"}),
    )
    assert payload["status"] == "skipped" and payload["skipped"] == "out-of-scope"
    assert payload["incidents"] == []
    assert cloudtrail.get_trail_status(Name="main")["IsLogging"] is False  # left as the call left it
