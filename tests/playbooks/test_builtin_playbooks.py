"""The bundled playbooks: every inline test passes, and each shows what it answers and what it leaves."""

from __future__ import annotations

import json

import pytest

from chalicelib.actions import registered_actions
from chalicelib.actions.base import ActionContext
from chalicelib.events.record import CloudTrailEvent
from chalicelib.events.synthetic import api_call_record
from chalicelib.playbooks.catalog import Catalog
from chalicelib.playbooks.plan import PlanError
from chalicelib.respond.guards import OwnIdentities
from chalicelib.respond.responder import decide
from chalicelib.settings import Settings
from tests.conftest import PLAYBOOKS
from trailguard.playbook_tests import load_test_event, run_tests

pytestmark = pytest.mark.unit

CATALOG = Catalog.load([PLAYBOOKS])
RESULTS = run_tests(CATALOG.playbooks, OwnIdentities.of(Settings()))


@pytest.mark.parametrize("result", RESULTS, ids=lambda r: f"{r.playbook.id}: {r.test.name}")
def test_inline_test(result):
    assert result.passed, f"{result.location}: {result.problem}"


@pytest.mark.parametrize("playbook", CATALOG.playbooks, ids=lambda p: p.id)
def test_each_playbook_has_positive_and_negative_cases(playbook):
    expectations = [test.expect for test in playbook.tests]
    assert any(e != "ignore" for e in expectations), "no test shows an event the playbook answers"
    assert any(e == "ignore" for e in expectations), "no test shows an event the playbook leaves alone"


@pytest.mark.parametrize("path", sorted(PLAYBOOKS.glob("*.yaml")), ids=lambda p: p.name)
def test_each_file_points_editors_at_the_schema_and_is_named_after_its_id(path):
    assert path.read_text().startswith("# yaml-language-server: $schema=./playbook.schema.json\n")
    assert CATALOG.get(path.stem) is not None


def test_the_first_playbooks_are_there_in_auto_mode():
    assert {(p.id, p.mode) for p in CATALOG.playbooks} >= {
        ("cloudtrail-stop-logging", "auto"),
        ("kms-key-disabled", "auto"),
        ("kms-key-deletion-scheduled", "auto"),
        ("s3-bucket-acl-public", "auto"),
    }


def test_a_broken_expectation_is_caught():
    # The runner must fail a test whose expectation is wrong, or the passes above mean nothing.
    playbook = CATALOG.get("cloudtrail-stop-logging")
    positive = next(t for t in playbook.tests if t.expect != "ignore")
    broken = type(positive)(positive.name, positive.event, "ignore", positive.line)
    altered = type(playbook)(**{**playbook.__dict__, "tests": (broken,)})
    [result] = run_tests([altered], OwnIdentities.of(Settings()))
    assert not result.passed and "expected the event to be ignored, got a plan (mode auto)" in result.problem


def test_every_builtin_playbook_has_a_positive_and_a_negative_case():
    from chalicelib.playbooks.catalog import Catalog
    from tests.conftest import PLAYBOOKS

    for playbook in Catalog.load([PLAYBOOKS]).playbooks:
        expectations = [test.expect for test in playbook.tests]
        assert "ignore" in expectations, f"{playbook.id} has no negative case"
        assert any(expect != "ignore" for expect in expectations), f"{playbook.id} has no positive case"


# -- a condition and its fix judge a policy alike ------------------------------------------------


def _bucket_state(request):
    policy = request["bucketPolicy"]
    return {"Bucket": request["bucketName"], "Policy": policy if isinstance(policy, str) else json.dumps(policy)}


def _key_state(request):
    return {"Key": request.get("keyId", "a key CreateKey made"), "Policy": request["policy"]}


def _resource_policy(field):
    """The state of a PublicStatementsRemoval action, the policy given as the event gives it."""

    def state(request, account):
        policy = field(request)
        text = policy if isinstance(policy, str) or policy is None else json.dumps(policy)
        return {"Resource": "the resource", "Policy": text}

    return state


def _trust_state(request, account):
    return {
        "Role": request["roleName"],
        "Arn": f"arn:aws:iam::{account}:role/{request['roleName']}",
        "Policy": json.loads(request["policyDocument"]),
    }


POLICY_FIXES = {
    "s3-bucket-policy-public": lambda request, account: _bucket_state(request),
    "kms-key-policy-public": lambda request, account: _key_state(request),
    "iam-role-trust-external": _trust_state,
    "sqs-queue-policy-public": _resource_policy(lambda request: request["attributes"].get("Policy")),
    "sns-topic-policy-public": _resource_policy(
        lambda request: request.get("attributeValue") or request.get("attributes", {}).get("Policy")
    ),
    "ecr-repository-policy-public": _resource_policy(lambda request: request["policyText"]),
    "secretsmanager-secret-policy-public": _resource_policy(lambda request: request["resourcePolicy"]),
}
POLICY_CASES = [
    (CATALOG.get(playbook_id), test)
    for playbook_id in POLICY_FIXES
    for test in CATALOG.get(playbook_id).tests
    if not test.event.get("errorCode")
]


@pytest.mark.parametrize("playbook,test", POLICY_CASES, ids=lambda x: getattr(x, "id", None) or getattr(x, "name", ""))
def test_the_fix_calls_safe_exactly_what_the_condition_leaves_alone(playbook, test):
    # The step's check, on the policy of the event, with the lists the plan gives it: a
    # condition that objects to a policy its own fix calls safe "remediates" nothing.
    event = load_test_event(playbook, test)
    objected = playbook.rejection(event, test.lists) is None
    try:
        [step] = playbook.plan(event, test.lists).steps
    except PlanError:
        pytest.skip("the record names no resource (a hand-written fixture)")
    action = registered_actions()[step.action](None, step.params, ActionContext(account=event.account))
    assert action.check(POLICY_FIXES[playbook.id](event.request_parameters, event.account)) is not objected


def test_an_exotic_digit_in_a_port_leaves_the_decision_path_without_an_exception():
    record = api_call_record(
        "AuthorizeSecurityGroupIngress",
        "ec2.amazonaws.com",
        {"groupId": "sg-1", "cidrIp": "0.0.0.0/0", "ipProtocol": "tcp", "fromPort": "²", "toPort": "²"},
        identity={"type": "IAMUser", "accountId": "123456789012", "arn": "arn:aws:iam::123456789012:user/u"},
        region="us-east-1",
    )
    decision = decide(CATALOG, CloudTrailEvent.from_record(record), OwnIdentities.of(Settings()))
    assert [playbook.id for playbook, _ in decision.rejections] == ["ec2-security-group-public-admin-ingress"]
    assert not decision.plans and not decision.failures
