"""Resources that opt out by tag, and a playbook's tag scope: the tags are read through the
action's own client, before anything is changed, and an opt-out is told, never silent."""

from __future__ import annotations

import textwrap

import boto3
import pytest

from chalicelib.organization.extensions import load_catalog
from chalicelib.organization.loader import load_organization
from chalicelib.settings import PROJECT_PLAYBOOKS
from tests.conftest import REGION, envelope, record

pytestmark = pytest.mark.e2e

BUCKET = "customer-data"
OPT_OUT = "opt_out:\n  by_tag: true\n"


@pytest.fixture
def s3(aws):
    client = boto3.client("s3", region_name=REGION)
    client.create_bucket(Bucket=BUCKET)
    return client


@pytest.fixture
def deliver(client, runtime, restart, tmp_path):
    """Run an event through the handler of a container with these organization settings."""

    def deliver(settings: str, event: dict) -> list:
        path = tmp_path / "settings.yaml"
        path.write_text(textwrap.dedent(settings))
        organization = load_organization(path)
        fresh = restart(load_catalog((PROJECT_PLAYBOOKS,), organization, with_tests=False), organization=organization)
        incidents = client.lambda_.invoke("respond_to_cloudtrail", envelope(event)).payload["incidents"]
        return [fresh.incidents.get(incident["id"]) for incident in incidents]

    return deliver


def _public_acl(s3) -> dict:
    s3.put_bucket_acl(Bucket=BUCKET, ACL="public-read")
    return record("PutBucketAcl", "s3.amazonaws.com", {"bucketName": BUCKET, "x-amz-acl": ["public-read"]})


def _public(s3) -> bool:
    return any("AllUsers" in g["Grantee"].get("URI", "") for g in s3.get_bucket_acl(Bucket=BUCKET)["Grants"])


def _tag(s3, **tags: str) -> None:
    s3.put_bucket_tagging(Bucket=BUCKET, Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in tags.items()]})


EXEMPT = {"trailguard:exempt": "true", "trailguard:exempt-reason": "public website, ticket SEC-123"}


def test_a_resource_tagged_exempt_with_a_reason_is_told_and_left_alone(deliver, s3):
    _tag(s3, **EXEMPT)
    [incident] = deliver(OPT_OUT, _public_acl(s3))
    assert (incident.mode, incident.state.value) == ("notify", "notified")
    assert incident.mode_note == "auto -> notify: the resource's tag trailguard:exempt (public website, ticket SEC-123)"
    assert _public(s3)  # left as it is: the organization said so, on the resource itself


def test_the_tag_without_a_reason_is_ignored_and_the_incident_says_so(deliver, s3):
    _tag(s3, **{"trailguard:exempt": "true"})
    [incident] = deliver(OPT_OUT, _public_acl(s3))
    assert incident.state.value == "remediated" and not _public(s3)
    assert "the resource's tag trailguard:exempt is ignored: it has no trailguard:exempt-reason" in str(
        incident.history[0].detail
    )


def test_the_tag_means_nothing_unless_the_settings_turn_it_on_or_for_a_playbook_it_never_covers(deliver, s3):
    _tag(s3, **EXEMPT)
    [incident] = deliver("lists: {}\n", _public_acl(s3))
    assert incident.state.value == "remediated" and not _public(s3)
    [incident] = deliver(OPT_OUT + "  never: [s3-bucket-acl-public]\n", _public_acl(s3))
    assert incident.state.value == "remediated" and not _public(s3)


def test_a_playbooks_tag_scope_leaves_a_tagged_security_group_alone(deliver):
    ec2 = boto3.client("ec2", region_name=REGION)
    groups = {}
    for name, tags in (("bastion", [{"Key": "purpose", "Value": "bastion"}]), ("web", [])):
        groups[name] = ec2.create_security_group(GroupName=name, Description=name)["GroupId"]
        if tags:
            ec2.create_tags(Resources=[groups[name]], Tags=tags)
    settings = """\
        scope:
          playbooks:
            ec2-security-group-public-admin-ingress: {exclude_tags: {purpose: bastion}}
        """

    def open_ssh(group: str) -> dict:
        ssh = {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
        ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[ssh])
        request = {
            "groupId": group,
            "ipPermissions": {
                "items": [
                    {
                        "ipProtocol": "tcp",
                        "fromPort": 22,
                        "toPort": 22,
                        "ipRanges": {"items": [{"cidrIp": "0.0.0.0/0"}]},
                    }
                ]
            },
        }
        return record("AuthorizeSecurityGroupIngress", "ec2.amazonaws.com", request)

    assert deliver(settings, open_ssh(groups["bastion"])) == []  # out of the playbook's scope: no incident
    [incident] = deliver(settings, open_ssh(groups["web"]))
    assert incident.state.value == "remediated"


def test_tags_that_cannot_be_read_leave_the_playbook_as_it_is_and_say_so(deliver, s3, runtime, monkeypatch):
    from chalicelib.actions import tags

    def refuse(*_args):
        raise RuntimeError("AccessDenied")

    monkeypatch.setattr(tags, "bucket_tags", refuse)
    [incident] = deliver(OPT_OUT, _public_acl(s3))
    assert incident.state.value == "remediated"
    assert "the tags of s3.remove_public_acl's resource could not be read" in str(incident.history[0].detail)


def test_adding_the_opt_out_tag_is_itself_told_where_the_tag_means_something(deliver, s3):
    from chalicelib.organization.extensions import OPT_OUT_PLAYBOOKS
    from chalicelib.playbooks.catalog import Catalog
    from chalicelib.respond.guards import OwnIdentities
    from chalicelib.settings import Settings
    from trailguard.playbook_tests import run_tests

    tagging = record(
        "PutBucketTagging",
        "s3.amazonaws.com",
        {"bucketName": BUCKET, "Tagging": {"TagSet": {"Tag": {"Key": "trailguard:exempt", "Value": "true"}}}},
    )
    [incident] = deliver(OPT_OUT, tagging)
    assert (incident.playbook_id, incident.state.value) == ("opt-out-tag-added-s3", "notified")
    # the tag means nothing unless the settings say so; then nothing needs telling either
    assert deliver("lists: {}\n", tagging) == []
    off = load_catalog((PROJECT_PLAYBOOKS,), load_organization_text("lists: {}\n"), with_tests=False)
    assert not any(p.id.startswith("opt-out-tag-added") for p in off.playbooks)
    audits = Catalog.load([OPT_OUT_PLAYBOOKS]).playbooks
    assert all(p.mode == "notify" for p in audits)
    # every service whose resources can opt out has its tagging call told
    from chalicelib.actions import registered_actions
    from chalicelib.actions.base import Action

    opting_out = {a.service for a in registered_actions().values() if a.resource_tags is not Action.resource_tags}
    assert opting_out and {f"{service}.amazonaws.com" for service in opting_out} <= {p.source for p in audits}
    results = run_tests(audits, OwnIdentities.of(Settings.from_environment({})))
    assert results and all(result.passed for result in results)


def load_organization_text(text: str):
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "settings.yaml"
        path.write_text(text)
        return load_organization(path)
