"""Check the resource, then pick the mode: before an incident opens, what its steps would act on
is read (`Incidents.assess`).

- An automatic fix whose resource carries a workload it could break (a static website, a
  public function URL, an account whose buckets serve websites) is proposed instead, with
  the reason in the incident's history; a person's approval then carries it out.
- A proposal for a change that took nothing away (a console edit of a trail that re-sends
  its settings, or adds protection; a lifecycle rule on a bucket no trail writes to) is not
  made; a change that weakened something still is.
- Replay, which reads nothing, keeps the plan as decided.
"""

from __future__ import annotations

import json

import boto3
import pytest

from chalicelib.actions import s3 as s3_actions
from chalicelib.actions.binding import ActionBinder
from chalicelib.events.record import CloudTrailEvent
from chalicelib.incidents.lifecycle import Incidents
from chalicelib.incidents.model import State
from chalicelib.incidents.store import MemoryStore
from chalicelib.memory import trails
from chalicelib.playbooks.catalog import Catalog
from chalicelib.respond.guards import OwnIdentities
from chalicelib.respond.responder import Responder
from chalicelib.slack.messages import render
from tests.conftest import (
    ACCOUNT,
    PLAYBOOKS,
    REGION,
    Faults,
    python_function,
    record,
    recording_clients,
    remembering,
)

pytestmark = pytest.mark.integration

CATALOG = Catalog.load([PLAYBOOKS], with_tests=False)


@pytest.fixture
def incidents(aws):
    memory = remembering()
    return Incidents(MemoryStore(), ActionBinder(recording_clients(), memory), memory=memory)


def _respond(incidents, name, source, request, **fields):
    event = CloudTrailEvent.from_record(record(name, source, request, **fields))
    return Responder(CATALOG, own=OwnIdentities(), incidents=incidents).respond(event)[1]


def _bucket(name="www.example.com", website=False):
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=name)
    if website:
        s3.put_bucket_website(Bucket=name, WebsiteConfiguration={"IndexDocument": {"Suffix": "index.html"}})
    return s3


def test_block_public_access_on_a_website_bucket_is_proposed_saying_why(incidents):
    s3 = _bucket(website=True)
    [outcome] = _respond(
        incidents, "DeleteBucketPublicAccessBlock", "s3.amazonaws.com", {"bucketName": "www.example.com"}
    )
    incident = outcome.incident
    assert (incident.mode, incident.state) == ("approve", State.PROPOSED)
    assert "approve instead of auto: bucket www.example.com serves a static website" in incident.history[0].detail
    with pytest.raises(s3.exceptions.ClientError):  # nothing was put back
        s3.get_public_access_block(Bucket="www.example.com")
    shown = json.dumps(render(incident).blocks)
    assert "approve instead of auto: bucket www.example.com serves a static website" in shown  # people see why
    approved = incidents.approve(incident.id, "slack:U0ONCALL")
    assert approved.state is State.REMEDIATED  # a person decided: the fix runs
    assert s3.get_public_access_block(Bucket="www.example.com")["PublicAccessBlockConfiguration"]["BlockPublicPolicy"]


def test_the_same_bucket_without_a_website_is_remediated(incidents):
    _bucket()
    [outcome] = _respond(
        incidents, "DeleteBucketPublicAccessBlock", "s3.amazonaws.com", {"bucketName": "www.example.com"}
    )
    assert (outcome.incident.mode, outcome.incident.state) == ("auto", State.REMEDIATED)


def test_the_accounts_block_in_an_account_with_more_buckets_than_are_read_is_proposed(incidents, monkeypatch):
    monkeypatch.setattr(s3_actions, "ACCOUNT_BUCKETS_READ", 1)
    _bucket("one-bucket")
    _bucket("another-bucket")
    [outcome] = _respond(incidents, "DeleteAccountPublicAccessBlock", "s3.amazonaws.com", {})
    assert outcome.incident.mode == "approve" and "more than the 1 read" in outcome.incident.history[0].detail


def test_a_resource_that_cannot_be_read_is_not_taken_for_safe(aws):
    """GetBucketWebsite refused (a permission missing in a member account): whether the
    bucket serves a website is unknown, so the step is proposed, not applied."""
    faults = Faults()
    faults.add("s3", "GetBucketWebsite", "AccessDenied", times=1)
    memory = remembering()
    incidents = Incidents(MemoryStore(), ActionBinder(recording_clients(faults), memory), memory=memory)
    _bucket("data-bucket")
    request = {"bucketName": "data-bucket", "x-amz-acl": "public-read"}
    [outcome] = _respond(incidents, "PutBucketAcl", "s3.amazonaws.com", request)
    assert (outcome.incident.mode, outcome.incident.state) == ("approve", State.PROPOSED)
    assert "could not read what its fix might break (AccessDenied" in outcome.incident.history[0].detail


def _function(url_auth=None):
    iam, lam = boto3.client("iam", region_name=REGION), boto3.client("lambda", region_name=REGION)
    python_function(iam, lam, "hook", "hook-role")
    lam.add_permission(FunctionName="hook", StatementId="open", Action="lambda:InvokeFunction", Principal="*")
    if url_auth:
        lam.create_function_url_config(FunctionName="hook", AuthType=url_auth)
    return lam


@pytest.mark.parametrize(
    "url_auth,mode,state", [("NONE", "approve", State.PROPOSED), ("AWS_IAM", "auto", State.REMEDIATED)]
)
def test_a_public_statement_of_a_function_with_a_public_url_is_proposed(incidents, url_auth, mode, state):
    _function(url_auth)
    request = {"functionName": "hook", "statementId": "open", "action": "lambda:InvokeFunction", "principal": "*"}
    [outcome] = _respond(incidents, "AddPermission20150331v2", "lambda.amazonaws.com", request)
    assert (outcome.incident.mode, outcome.incident.state) == (mode, state)


# -- proposals for changes that took nothing away ----------------------------------------------


def _remembered_trail(incidents, **settings):
    cloudtrail = boto3.client("cloudtrail", region_name=REGION)
    boto3.client("s3", region_name=REGION).create_bucket(Bucket="main-logs")
    cloudtrail.create_trail(Name="main", S3BucketName="main-logs", IsMultiRegionTrail=True, **settings)
    trails.remember(incidents.memory, cloudtrail, "main", ACCOUNT, REGION)
    return cloudtrail


def test_a_console_edit_that_adds_encryption_is_no_proposal(incidents):
    cloudtrail = _remembered_trail(incidents)
    key = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    cloudtrail.update_trail(Name="main", S3BucketName="main-logs", KmsKeyId=key)
    outcomes = _respond(
        incidents,
        "UpdateTrail",
        "cloudtrail.amazonaws.com",
        {"name": "main", "s3BucketName": "main-logs", "kmsKeyId": key},
    )
    assert outcomes == []


def test_a_console_edit_that_turns_multi_region_off_is_proposed(incidents):
    cloudtrail = _remembered_trail(incidents)
    cloudtrail.update_trail(Name="main", S3BucketName="main-logs", IsMultiRegionTrail=False)
    request = {"name": "main", "s3BucketName": "main-logs", "isMultiRegionTrail": False}
    [outcome] = _respond(incidents, "UpdateTrail", "cloudtrail.amazonaws.com", request)
    assert outcome.incident.state is State.PROPOSED


def test_approving_a_weakened_trail_never_removes_a_protection_the_change_added(incidents):
    """The edit turned validation off and added SSE-KMS: approving puts validation back and
    keeps the key (a restore never protects less than the trail does now)."""
    cloudtrail = _remembered_trail(incidents, EnableLogFileValidation=True)
    key = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    cloudtrail.update_trail(Name="main", EnableLogFileValidation=False, KmsKeyId=key)
    request = {"name": "main", "enableLogFileValidation": False, "kmsKeyId": key}
    [outcome] = _respond(incidents, "UpdateTrail", "cloudtrail.amazonaws.com", request)
    assert incidents.approve(outcome.incident.id, "slack:U0ONCALL").state is State.REMEDIATED
    [trail] = cloudtrail.describe_trails(trailNameList=["main"])["trailList"]
    assert (trail["LogFileValidationEnabled"], trail.get("KmsKeyId")) == (True, key)


def test_a_short_expiration_on_a_bucket_no_trail_writes_to_is_no_proposal(incidents):
    _bucket("scratch-space")
    rule = {"Status": "Enabled", "Filter": {"Prefix": ""}, "Expiration": {"Days": 1}, "ID": "tmp"}
    request = {"bucketName": "scratch-space", "LifecycleConfiguration": {"Rule": rule}}
    assert _respond(incidents, "PutBucketLifecycle", "s3.amazonaws.com", request) == []


def test_the_same_expiration_on_a_trails_bucket_is_proposed(incidents):
    s3 = _bucket("trail-logs")
    writes = {
        "Effect": "Allow",
        "Principal": {"Service": "cloudtrail.amazonaws.com"},
        "Action": "s3:PutObject",
        "Resource": "arn:aws:s3:::trail-logs/AWSLogs/*",
    }
    s3.put_bucket_policy(Bucket="trail-logs", Policy=json.dumps({"Version": "2012-10-17", "Statement": [writes]}))
    rule = {"ID": "nuke", "Status": "Enabled", "Filter": {"Prefix": ""}, "Expiration": {"Days": 1}}
    s3.put_bucket_lifecycle_configuration(Bucket="trail-logs", LifecycleConfiguration={"Rules": [rule]})
    request = {"bucketName": "trail-logs", "LifecycleConfiguration": {"Rule": rule}}
    [outcome] = _respond(incidents, "PutBucketLifecycle", "s3.amazonaws.com", request)
    assert outcome.incident.state is State.PROPOSED


def test_replay_reads_nothing_and_keeps_the_plan_as_decided(aws):
    _bucket(website=True)
    replaying = Incidents(MemoryStore(), None)
    [outcome] = _respond(
        replaying, "DeleteBucketPublicAccessBlock", "s3.amazonaws.com", {"bucketName": "www.example.com"}
    )
    assert (outcome.incident.mode, outcome.incident.state) == ("auto", State.SIMULATED)
