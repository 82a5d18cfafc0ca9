"""`trailguard baseline`: every trail against the declared baseline, each deviation decided by
the same playbooks as a live event; with --fix, the safe ones fixed (moto)."""

from __future__ import annotations

import json

import boto3
import pytest
from click.testing import CliRunner

from chalicelib.organization.baseline import Baseline
from chalicelib.posture.baseline import check_region
from tests.conftest import ACCOUNT, REGION, recording_clients
from trailguard.cli import main

pytestmark = pytest.mark.integration

CLOUDTRAIL_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "AWSCloudTrailAclCheck",
            "Effect": "Allow",
            "Principal": {"Service": "cloudtrail.amazonaws.com"},
            "Action": "s3:GetBucketAcl",
            "Resource": "arn:aws:s3:::weak-trail-logs",
        },
        {
            "Sid": "AWSCloudTrailWrite",
            "Effect": "Allow",
            "Principal": {"Service": "cloudtrail.amazonaws.com"},
            "Action": "s3:PutObject",
            "Resource": "arn:aws:s3:::weak-trail-logs/AWSLogs/*",
        },
    ],
}


@pytest.fixture
def weak_trail(aws):
    """A trail created weak: one region, no validation, no key, no Insights; its bucket without
    versioning, access logging or Object Lock, deleting log files after a day."""
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="weak-trail-logs")
    s3.put_bucket_policy(Bucket="weak-trail-logs", Policy=json.dumps(CLOUDTRAIL_POLICY))
    s3.put_bucket_lifecycle_configuration(
        Bucket="weak-trail-logs",
        LifecycleConfiguration={
            "Rules": [{"ID": "one-day", "Status": "Enabled", "Filter": {"Prefix": ""}, "Expiration": {"Days": 1}}]
        },
    )
    cloudtrail = boto3.client("cloudtrail", region_name=REGION)
    cloudtrail.create_trail(Name="weak", S3BucketName="weak-trail-logs")
    return cloudtrail


def test_each_deviation_of_a_weak_trail_is_found(weak_trail):
    found, organization_trail = check_region(recording_clients(), ACCOUNT, REGION, Baseline(), ["payments-exports"])
    assert not organization_trail
    assert {d.check for d in found} == {
        "multi_region",
        "log_file_validation",
        "kms_customer_key",
        "data_events",
        "insights",
        "access_logging",
        "versioning",
        "lifecycle",
        "object_lock",
    }  # management events are all recorded and the bucket lets CloudTrail write: no deviation there


def test_a_check_the_organization_skips_is_not_reported(weak_trail):
    baseline = Baseline(frozenset({"versioning", "insights"}))
    found, _ = check_region(recording_clients(), ACCOUNT, REGION, baseline, [])
    assert {d.check for d in found} == {"versioning", "insights"}


def test_the_report_says_what_the_playbooks_would_do_and_changes_nothing(weak_trail):
    result = CliRunner().invoke(main, ["baseline", "--json"])
    report = json.loads(result.output)
    decisions = {d["check"]: d["decision"] for d in report["deviations"]}
    assert decisions["versioning"] == "s3-trail-bucket-versioning-suspended: auto (s3.enable_versioning)"
    assert decisions["lifecycle"] == "s3-trail-bucket-log-expiration: approve (s3.remove_log_expiration)"
    assert decisions["insights"] == "cloudtrail-insights-removed: approve (cloudtrail.restore_insight_selectors)"
    assert decisions["access_logging"] == "s3-trail-bucket-access-logging-disabled: notify (tell)"
    assert decisions["kms_customer_key"] == "told only: no playbook answers it"
    assert decisions["organization_trail"] == "told only: no playbook answers it"
    assert "Status" not in boto3.client("s3", region_name=REGION).get_bucket_versioning(Bucket="weak-trail-logs")


def test_with_fix_the_safe_ones_are_fixed_and_the_others_proposed_or_told(weak_trail):
    result = CliRunner().invoke(main, ["baseline", "--json", "--fix"])
    report = json.loads(result.output)
    decisions = {d["check"]: d["decision"] for d in report["deviations"]}
    assert decisions["versioning"] == "s3-trail-bucket-versioning-suspended: auto -> remediated"
    assert decisions["lifecycle"] == "s3-trail-bucket-log-expiration: approve -> proposed"
    s3 = boto3.client("s3", region_name=REGION)
    assert s3.get_bucket_versioning(Bucket="weak-trail-logs")["Status"] == "Enabled"
    assert s3.get_bucket_lifecycle_configuration(Bucket="weak-trail-logs")["Rules"][0]["ID"] == "one-day"  # waits


def test_the_table_lists_each_deviation(weak_trail):
    result = CliRunner().invoke(main, ["baseline"])
    lines = result.output.splitlines()
    assert lines[0].split() == ["ACCOUNT", "REGION", "TRAIL", "CHECK", "FOUND", "TRAILGUARD"]
    assert lines[-1] == "9 deviation(s) in 1 trail(s)"  # 8 of the trail, and no organization trail


def test_a_sweep_asked_to_checks_the_baseline_once_per_deviation(weak_trail):
    from chalicelib.actions.binding import ActionBinder
    from chalicelib.incidents.lifecycle import Incidents
    from chalicelib.incidents.store import MemoryStore
    from chalicelib.memory.chain import with_remembered_links
    from chalicelib.named_lists import NamedLists
    from chalicelib.playbooks.catalog import Catalog
    from chalicelib.posture.baseline import BaselineCheck
    from chalicelib.posture.sweep import Sweep
    from chalicelib.respond.guards import OwnIdentities
    from chalicelib.respond.responder import Responder
    from tests.conftest import PLAYBOOKS, remembering

    store = MemoryStore()
    memory = remembering(store)
    clients = recording_clients(home_account=ACCOUNT)
    incidents = Incidents(store, ActionBinder(clients, memory), memory=memory)
    lists = with_remembered_links(NamedLists(), memory)  # as the runtime gives them: the audit chain remembered
    responder = Responder(Catalog.load([PLAYBOOKS]), own=OwnIdentities(), incidents=incidents, lists=lists)
    places = lambda: [(ACCOUNT, REGION)]  # noqa: E731
    check = BaselineCheck(
        responder=responder, clients=clients, places=places, baseline=Baseline(), data_event_buckets=[], fix=True
    )
    sweep = Sweep(
        catalog=responder.catalog,
        responder=responder,
        incidents=incidents,
        clients=clients,
        account=ACCOUNT,
        regions={REGION},
        places=places,
        baseline=check,
    )
    first = sweep.run()
    assert f"{ACCOUNT}/{REGION} weak versioning: s3-trail-bucket-versioning-suspended: auto -> remediated" in (
        first.baseline
    )
    assert boto3.client("s3", region_name=REGION).get_bucket_versioning(Bucket="weak-trail-logs")["Status"] == "Enabled"
    opened = len(store._incidents)
    sweep.run()
    assert len(store._incidents) == opened  # the same deviation is the same synthetic event: no second incident


def test_the_settings_file_declares_the_baseline(tmp_path):
    from chalicelib.organization.loader import load_organization

    path = tmp_path / "prod.yaml"
    path.write_text("baseline:\n  skip: [object_lock, insights]\n  lifecycle_min_days: 400\n  sweep: true\n")
    baseline = load_organization(path).baseline
    assert "object_lock" not in baseline.checks and "versioning" in baseline.checks
    assert (baseline.lifecycle_min_days, baseline.on_sweep) == (400, True)
    path.write_text("baseline:\n  skip: [objectlock]\n")
    with pytest.raises(Exception, match="objectlock"):
        load_organization(path)
