"""The guards that run before any playbook: failed calls, read-only calls, our own roles.

"Our own role" is what AWS asserts (the role's account and name, from the session issuer's
and the session's ARNs), bound to where the role lives: the stage's function roles in the
central account, the member role in the account the call touched, and, where trailguard
keeps them, only for the request ids of calls it made.
"""

from __future__ import annotations

import pytest

from chalicelib.aws.own_calls import MemoryOwnCalls
from chalicelib.events.record import CloudTrailEvent
from chalicelib.respond.guards import OwnIdentities, skip_reason
from tests.conftest import record

pytestmark = pytest.mark.unit

CENTRAL = "123456789012"
MEMBER = "210987654321"
HANDLER = "trailguard-dev-respond_to_cloudtrail"
OWN = OwnIdentities(central_account=CENTRAL, central_roles=frozenset({HANDLER}), member_role="trailguard-remediator")


def _event(account=CENTRAL, **fields):
    request = {"name": "main"}
    return CloudTrailEvent.from_record(
        record("StopLogging", "cloudtrail.amazonaws.com", request, recipientAccountId=account, **fields)
    )


def _assumed(role, session="s", account=CENTRAL, with_issuer=True, issuer_account=None):
    identity = {
        "type": "AssumedRole",
        "arn": f"arn:aws:sts::{account}:assumed-role/{role}/{session}",
        "accountId": account,
    }
    if with_issuer:
        identity["sessionContext"] = {
            "sessionIssuer": {
                "type": "Role",
                "userName": role,
                "arn": f"arn:aws:iam::{issuer_account or account}:role/{role}",
            }
        }
    return identity


def test_an_ordinary_successful_write_passes():
    assert skip_reason(_event(), OWN) is None


def test_failed_call_is_skipped_with_its_error_code():
    skip = skip_reason(_event(errorCode="AccessDenied", errorMessage="denied"), OWN)
    assert skip.code == "failed-call" and "AccessDenied" in skip.reason


def test_read_only_call_is_skipped():
    assert skip_reason(_event(readOnly=True), OWN).code == "read-only"


def test_a_function_role_in_the_central_account_is_ours():
    skip = skip_reason(_event(userIdentity=_assumed(HANDLER)), OWN)
    assert skip.code == "own-identity" and f"{CENTRAL}:role/{HANDLER}" in skip.reason


def test_a_function_role_is_recognised_from_the_session_arn_when_the_issuer_is_missing():
    assert skip_reason(_event(userIdentity=_assumed(HANDLER, with_issuer=False)), OWN).code == "own-identity"


def test_a_role_named_like_a_function_role_in_a_member_account_is_an_attacker():
    """The critical finding: a member-account admin creates `trailguard-dev-respond_to_cloudtrail`
    in their own account and stops a trail with it. Before, the name alone was enough to skip."""
    lookalike = _assumed(HANDLER, session=HANDLER, account=MEMBER)
    assert skip_reason(_event(MEMBER, userIdentity=lookalike), OWN) is None
    # ... also when it acts on the central account's resources (a cross-account session).
    assert skip_reason(_event(CENTRAL, userIdentity=lookalike), OWN) is None


def test_with_no_central_account_known_no_function_role_is_ours():
    unbound = OwnIdentities(central_roles=frozenset({HANDLER}), member_role="trailguard-remediator")
    assert skip_reason(_event(userIdentity=_assumed(HANDLER)), unbound) is None


def test_the_member_role_is_ours_only_in_the_account_it_acted_in_and_under_our_session_name():
    member = _assumed("trailguard-remediator", session="trailguard", account=MEMBER)
    assert skip_reason(_event(MEMBER, userIdentity=member), OWN).code == "own-identity"
    # The member role of account A touching account B (a trust someone widened) is not ours.
    assert skip_reason(_event(CENTRAL, userIdentity=member), OWN) is None
    # A person who assumed the member role under their own session name is answered.
    person = _assumed("trailguard-remediator", session="alice", account=MEMBER)
    assert skip_reason(_event(MEMBER, userIdentity=person), OWN) is None


def test_where_own_calls_are_kept_the_member_role_is_ours_only_for_the_calls_trailguard_made():
    """An administrator of the member account rewrites the member role's trust, assumes it as
    `trailguard` and stops a trail: the role, account and session name all look like ours, but
    AWS gave that call a request id trailguard never received."""
    own_calls = MemoryOwnCalls()
    own_calls.record("6f0e1a52-0001-4c8e-9b1a-000000000001")
    own = OwnIdentities(CENTRAL, frozenset({HANDLER}), "trailguard-remediator", own_calls)
    member = _assumed("trailguard-remediator", session="trailguard", account=MEMBER)
    ours = _event(MEMBER, userIdentity=member, requestID="6f0e1a52-0001-4c8e-9b1a-000000000001")
    theirs = _event(MEMBER, userIdentity=member, requestID="6f0e1a52-0001-4c8e-9b1a-000000000002")
    assert skip_reason(ours, own).code == "own-identity"
    assert skip_reason(theirs, own) is None
    assert skip_reason(_event(MEMBER, userIdentity=member, requestID=None), own) is None


def test_arns_that_disagree_are_not_ours():
    """The issuer's ARN and the session's ARN are both AWS's; a record where they name other
    accounts or roles was not written by AWS for one of our sessions."""
    other_issuer = _assumed(HANDLER, issuer_account=MEMBER)
    assert skip_reason(_event(userIdentity=other_issuer), OWN) is None
    other_account = {**_assumed(HANDLER), "accountId": MEMBER}
    assert skip_reason(_event(userIdentity=other_account), OWN) is None
    renamed = _assumed(HANDLER)
    renamed["sessionContext"]["sessionIssuer"]["arn"] = f"arn:aws:iam::{CENTRAL}:role/something-else"
    assert skip_reason(_event(userIdentity=renamed), OWN) is None


def test_a_role_path_does_not_hide_the_role():
    identity = _assumed(HANDLER)
    identity["sessionContext"]["sessionIssuer"]["arn"] = f"arn:aws:iam::{CENTRAL}:role/service/{HANDLER}"
    assert skip_reason(_event(userIdentity=identity), OWN).code == "own-identity"


def test_other_roles_and_users_named_like_ours_are_not_skipped():
    assert skip_reason(_event(userIdentity=_assumed(HANDLER + "-evil")), OWN) is None
    user = {
        "type": "IAMUser",
        "userName": HANDLER,
        "accountId": CENTRAL,
        "arn": f"arn:aws:iam::{CENTRAL}:user/{HANDLER}",
    }
    assert skip_reason(_event(userIdentity=user), OWN) is None


def test_failed_call_wins_over_other_reasons():
    event = _event(errorCode="AccessDenied", readOnly=True, userIdentity=_assumed(HANDLER))
    assert skip_reason(event, OWN).code == "failed-call"
