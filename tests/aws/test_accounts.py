"""Remediating in the event's own account and region, through the member role (moto)."""

from __future__ import annotations

import pytest

from chalicelib.actions.binding import ActionBinder
from chalicelib.events.record import CloudTrailEvent
from chalicelib.incidents.lifecycle import Incidents
from chalicelib.incidents.model import State
from chalicelib.incidents.notify import NullNotifier
from chalicelib.incidents.store import MemoryStore
from chalicelib.playbooks.catalog import Catalog
from chalicelib.respond.guards import OwnIdentities
from chalicelib.respond.responder import Responder
from chalicelib.settings import Settings
from tests.conftest import ACCOUNT, PLAYBOOKS, REGION, Faults, member_session, record, recording_clients

pytestmark = pytest.mark.integration

MEMBER = "210987654321"


@pytest.fixture
def member_trail(aws):
    """A stopped trail in the member account (moto keeps accounts apart by credentials)."""
    session = member_session(MEMBER)
    session.client("s3").create_bucket(Bucket="member-trail-logs")
    cloudtrail = session.client("cloudtrail")
    cloudtrail.create_trail(Name="main", S3BucketName="member-trail-logs")
    return cloudtrail


@pytest.fixture
def faults():
    return Faults()


@pytest.fixture
def assumed(calls, faults):
    """The AssumeRole requests trailguard sends."""
    requests = []

    def capture(params, **_):
        requests.append(dict(params))

    clients = recording_clients(calls, faults, external_id="org-7f3a")
    clients._home_session().events.register("before-parameter-build.sts.AssumeRole", capture)
    return clients, requests


def _responder(clients):
    return Responder(
        Catalog.load([PLAYBOOKS]),
        own=OwnIdentities.of(Settings(), ACCOUNT),
        incidents=Incidents(MemoryStore(), ActionBinder(clients), notifier=NullNotifier()),
    )


def _stop_logging_in(account, **fields):
    return CloudTrailEvent.from_record(
        record("StopLogging", "cloudtrail.amazonaws.com", {"name": "main"}, recipientAccountId=account, **fields)
    )


def test_an_event_in_a_member_account_is_remediated_there_through_the_member_role(member_trail, assumed):
    clients, requests = assumed
    _, [outcome] = _responder(clients).respond(_stop_logging_in(MEMBER))
    assert outcome.incident.state is State.REMEDIATED
    assert member_trail.get_trail_status(Name="main")["IsLogging"] is True
    assert requests == [
        {
            "RoleArn": f"arn:aws:iam::{MEMBER}:role/trailguard-remediator",
            "RoleSessionName": "trailguard",
            "ExternalId": "org-7f3a",
        }
    ]


def test_clients_are_cached_per_account_region_and_service(member_trail, assumed):
    clients, requests = assumed
    first = clients.client("cloudtrail", MEMBER, REGION)
    assert clients.client("cloudtrail", MEMBER, REGION) is first
    assert clients.client("cloudtrail", MEMBER, "eu-west-1") is not first
    assert clients.client("kms", MEMBER, REGION) is not first
    assert clients.client("cloudtrail", ACCOUNT, REGION) is not first
    assert len(requests) == 1  # one member session per account, refreshed by botocore when it expires


def test_member_accounts_share_the_containers_loader_and_keep_their_own_credentials(aws):
    """A new member account costs an AssumeRole and a client, not a new botocore session
    reading every service model again (bench/member_accounts.py measures it); each account
    still calls AWS as its own member role."""
    clients = recording_clients()
    home = clients.home_client("sts")
    first, second = (clients.client("sts", account, REGION) for account in (MEMBER, "111122223333"))
    assert first._loader is home._loader and second._loader is home._loader
    assert first.meta.events is not second.meta.events  # each client's handlers are its own
    assert first.get_caller_identity()["Arn"] == f"arn:aws:sts::{MEMBER}:assumed-role/trailguard-remediator/trailguard"
    assert second.get_caller_identity()["Account"] == "111122223333"
    assert home.get_caller_identity()["Account"] == ACCOUNT


def test_calls_made_through_the_member_role_are_never_answered(member_trail, assumed):
    clients, requests = assumed
    own = {
        "type": "AssumedRole",
        "accountId": MEMBER,
        "arn": f"arn:aws:sts::{MEMBER}:assumed-role/trailguard-remediator/trailguard",
        "sessionContext": {
            "sessionIssuer": {
                "type": "Role",
                "userName": "trailguard-remediator",
                "arn": f"arn:aws:iam::{MEMBER}:role/trailguard-remediator",
            }
        },
    }
    decision, outcomes = _responder(clients).respond(_stop_logging_in(MEMBER, userIdentity=own))
    assert decision.skip.code == "own-identity" and outcomes == [] and requests == []


def test_a_member_role_that_cannot_be_assumed_fails_the_step_clearly(aws, assumed, faults):
    clients, _ = assumed
    faults.add(
        "sts", "AssumeRole", "AccessDenied", status=403, times=10, message="not authorized to perform sts:AssumeRole"
    )
    _, [outcome] = _responder(clients).respond(_stop_logging_in(MEMBER))
    assert outcome.incident.state is State.FAILED
    assert outcome.incident.steps[0].error == (
        f"cannot assume arn:aws:iam::{MEMBER}:role/trailguard-remediator: "
        "AccessDenied: not authorized to perform sts:AssumeRole"
    )


def test_the_member_role_is_ours_in_member_accounts_and_the_function_roles_in_the_central_one():
    settings = Settings.from_environment({"TRAILGUARD_MEMBER_ROLE": "sec-auto", "TRAILGUARD_OWN_ROLES": "sec-bot"})
    own = OwnIdentities.of(settings, ACCOUNT)
    assert own.member_role == "sec-auto" and own.central_roles == {"sec-bot"} and own.central_account == ACCOUNT


def test_write_calls_in_a_member_account_are_noted_and_reads_are_not(member_trail, calls, faults):
    """The request id of each write the member role makes is what lets the loop guard tell
    trailguard's own calls from an administrator's using the same role."""
    noted = []
    clients = recording_clients(calls, faults, note_own_call=noted.append)
    cloudtrail = clients.client("cloudtrail", MEMBER, REGION)
    cloudtrail.get_trail_status(Name="main")
    response = cloudtrail.start_logging(Name="main")
    assert noted == [response["ResponseMetadata"]["RequestId"]]
    clients.client("cloudtrail", ACCOUNT, REGION).describe_trails()  # the central account: its own roles
    assert len(noted) == 1


def test_organizations_calls_in_the_management_account_go_through_its_own_minimal_role(aws, calls, faults):
    requests = []
    clients = recording_clients(calls, faults, external_id="org-7f3a", management_role="trailguard-management")
    clients._home_session().events.register(
        "before-parameter-build.sts.AssumeRole", lambda params, **_: requests.append(dict(params))
    )
    clients.client("organizations", MEMBER, REGION)
    clients.client("cloudtrail", MEMBER, REGION)
    assert [r["RoleArn"] for r in requests] == [
        f"arn:aws:iam::{MEMBER}:role/trailguard-management",
        f"arn:aws:iam::{MEMBER}:role/trailguard-remediator",
    ]
