"""The guards that run before any playbook: failed calls, read-only calls, our own roles."""

from __future__ import annotations

import pytest

from chalicelib.events import CloudTrailEvent
from chalicelib.guards import skip_reason
from tests.conftest import record

pytestmark = pytest.mark.unit

OWN = frozenset({"trailguard-remediator", "trailguard-dev-respond_to_cloudtrail"})


def _event(**fields):
    return CloudTrailEvent.from_record(record("StopLogging", "cloudtrail.amazonaws.com", {"name": "main"}, **fields))


def _assumed(role, session="s", with_issuer=True):
    identity = {
        "type": "AssumedRole",
        "arn": f"arn:aws:sts::123456789012:assumed-role/{role}/{session}",
        "accountId": "123456789012",
    }
    if with_issuer:
        identity["sessionContext"] = {
            "sessionIssuer": {"type": "Role", "userName": role, "arn": f"arn:aws:iam::123456789012:role/{role}"}
        }
    return identity


def test_an_ordinary_successful_write_passes():
    assert skip_reason(_event(), OWN) is None


def test_failed_call_is_skipped_with_its_error_code():
    skip = skip_reason(_event(errorCode="AccessDenied", errorMessage="denied"), OWN)
    assert skip.code == "failed-call" and "AccessDenied" in skip.reason


def test_read_only_call_is_skipped():
    assert skip_reason(_event(readOnly=True), OWN).code == "read-only"


def test_own_role_is_skipped_through_its_session():
    skip = skip_reason(_event(userIdentity=_assumed("trailguard-remediator")), OWN)
    assert skip.code == "own-identity" and "trailguard-remediator" in skip.reason


def test_own_role_is_recognised_from_the_arn_when_the_issuer_is_missing():
    event = _event(userIdentity=_assumed("trailguard-dev-respond_to_cloudtrail", with_issuer=False))
    assert skip_reason(event, OWN).code == "own-identity"


def test_other_roles_and_users_named_like_ours_are_not_skipped():
    assert skip_reason(_event(userIdentity=_assumed("trailguard-remediator-evil")), OWN) is None
    user = {
        "type": "IAMUser",
        "userName": "trailguard-remediator",
        "accountId": "123456789012",
        "arn": "arn:aws:iam::123456789012:user/trailguard-remediator",
    }
    assert skip_reason(_event(userIdentity=user), OWN) is None


def test_failed_call_wins_over_other_reasons():
    event = _event(errorCode="AccessDenied", readOnly=True, userIdentity=_assumed("trailguard-remediator"))
    assert skip_reason(event, OWN).code == "failed-call"
