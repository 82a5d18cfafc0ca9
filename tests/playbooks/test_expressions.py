"""The domain functions on every shape AWS uses, and the load-time checks of expressions."""

from __future__ import annotations

import re

import pytest

from chalicelib.aws.quirks import (
    ALL_USERS,
    AUTHENTICATED_USERS,
    open_to_ports,
    public_acl_grants,
    public_cidrs,
    wide_cidrs,
)
from chalicelib.named_lists import NamedLists
from chalicelib.playbooks.expressions import Expression, ExpressionError

pytestmark = pytest.mark.unit

# -- public_acl_grants ----------------------------------------------------------------------


@pytest.mark.parametrize("canned", [["public-read"], "public-read", ["PUBLIC-READ"]])
def test_canned_public_read_acl_as_list_or_string(canned):
    assert public_acl_grants({"bucketName": "b", "x-amz-acl": canned}) == [
        {"grantee": "AllUsers", "permission": "READ"}
    ]


def test_canned_public_read_write_and_authenticated_read():
    assert public_acl_grants({"x-amz-acl": ["public-read-write"]}) == [
        {"grantee": "AllUsers", "permission": "READ"},
        {"grantee": "AllUsers", "permission": "WRITE"},
    ]
    assert public_acl_grants({"x-amz-acl": "authenticated-read"}) == [
        {"grantee": "AuthenticatedUsers", "permission": "READ"}
    ]


@pytest.mark.parametrize("canned", [["private"], ["bucket-owner-full-control"], [""], None, ["log-delivery-write"]])
def test_non_public_canned_acls(canned):
    assert public_acl_grants({"bucketName": "b", "x-amz-acl": canned}) == []


def test_grant_headers():
    request = {
        "x-amz-grant-read": [f'uri="{ALL_USERS}", id="abc"'],
        "x-amz-grant-write-acp": f'uri="{AUTHENTICATED_USERS}"',
        "x-amz-grant-full-control": ['id="owner"'],
    }
    assert public_acl_grants(request) == [
        {"grantee": "AllUsers", "permission": "READ"},
        {"grantee": "AuthenticatedUsers", "permission": "WRITE_ACP"},
    ]


def _acl(grant):
    return {"bucketName": "b", "AccessControlPolicy": {"AccessControlList": {"Grant": grant}, "Owner": {"ID": "o"}}}


def test_access_control_policy_with_one_grant_as_an_object():
    grant = {"Grantee": {"xsi:type": "Group", "URI": ALL_USERS}, "Permission": "READ"}
    assert public_acl_grants(_acl(grant)) == [{"grantee": "AllUsers", "permission": "READ"}]


def test_access_control_policy_with_a_list_of_grants():
    grants = [
        {"Grantee": {"xsi:type": "CanonicalUser", "ID": "owner"}, "Permission": "FULL_CONTROL"},
        {"Grantee": {"xsi:type": "Group", "URI": AUTHENTICATED_USERS}, "Permission": "WRITE"},
    ]
    assert public_acl_grants(_acl(grants)) == [{"grantee": "AuthenticatedUsers", "permission": "WRITE"}]


def test_private_access_control_policy_and_odd_shapes():
    owner_only = {"Grantee": {"xsi:type": "CanonicalUser", "ID": "owner"}, "Permission": "FULL_CONTROL"}
    assert public_acl_grants(_acl(owner_only)) == []
    assert public_acl_grants(_acl(None)) == []
    assert public_acl_grants(_acl(["not a grant"])) == []
    assert public_acl_grants(None) == []
    assert public_acl_grants({"AccessControlPolicy": "x"}) == []


# -- public_cidrs ---------------------------------------------------------------------------


def test_ip_permissions_shape_from_a_real_invictus_record():
    request = {
        "groupId": "sg-04cfb7a4712d75b00",
        "ipPermissions": {
            "items": [
                {
                    "ipProtocol": "tcp",
                    "fromPort": 443,
                    "toPort": 443,
                    "groups": {},
                    "ipRanges": {"items": [{"cidrIp": "0.0.0.0/0", "description": "TLS from Internet"}]},
                    "ipv6Ranges": {},
                    "prefixListIds": {},
                }
            ]
        },
    }
    assert public_cidrs(request) == [{"ipProtocol": "tcp", "fromPort": 443, "toPort": 443, "cidr": "0.0.0.0/0"}]


def test_legacy_top_level_cidr_ip_shape_from_a_real_invictus_record():
    request = {
        "groupId": "sg-04cfb7a4712d75b00",
        "ipPermissions": {},
        "ipProtocol": "tcp",
        "fromPort": 22,
        "toPort": 22,
        "cidrIp": "0.0.0.0/0",
    }
    assert public_cidrs(request) == [{"ipProtocol": "tcp", "fromPort": 22, "toPort": 22, "cidr": "0.0.0.0/0"}]


def test_ipv6_ranges_and_all_traffic():
    request = {
        "ipPermissions": {
            "items": [
                {
                    "ipProtocol": "-1",
                    "ipRanges": {},
                    "ipv6Ranges": {"items": [{"cidrIpv6": "::/0"}, {"cidrIpv6": "2001:db8::/32"}]},
                }
            ]
        }
    }
    assert public_cidrs(request) == [{"ipProtocol": "-1", "fromPort": None, "toPort": None, "cidr": "::/0"}]


def test_stratus_anonymised_world_range_and_string_ports():
    # Stratus rewrote 0.0.0.0/0 as 208.236.235.254/0; Panther's fixtures write ports as text.
    assert public_cidrs({"cidrIp": "208.236.235.254/0", "fromPort": "22", "toPort": "22", "ipProtocol": "tcp"}) == [
        {"ipProtocol": "tcp", "fromPort": 22, "toPort": 22, "cidr": "208.236.235.254/0"}
    ]


def test_narrow_and_invalid_ranges_are_not_public():
    request = {
        "ipPermissions": {
            "items": [
                {
                    "ipProtocol": "tcp",
                    "fromPort": "443",
                    "toPort": "443",
                    "ipRanges": {
                        "items": [
                            {"cidrIp": "0.0.0.0/16"},
                            {"cidrIp": "10.0.0.0/8"},
                            {"cidrIp": "not-a-cidr"},
                            {"cidrIp": None},
                        ]
                    },
                }
            ]
        }
    }
    assert public_cidrs(request) == []
    assert public_cidrs(None) == []


def test_wide_cidrs_catch_a_split_world_range():
    request = {
        "ipPermissions": {
            "items": [
                {
                    "ipProtocol": "tcp",
                    "fromPort": 22,
                    "toPort": 22,
                    "ipRanges": {
                        "items": [{"cidrIp": "0.0.0.0/1"}, {"cidrIp": "128.0.0.0/1"}, {"cidrIp": "192.0.2.0/24"}]
                    },
                }
            ]
        }
    }
    assert public_cidrs(request) == []
    assert [
        r["cidr"] for r in Expression("wide_cidrs(requestParameters, `8`)").search({"requestParameters": request})
    ] == ["0.0.0.0/1", "128.0.0.0/1"]


def _ssh_from(*cidrs):
    return {
        "ipPermissions": {
            "items": [
                {
                    "ipProtocol": "tcp",
                    "fromPort": 22,
                    "toPort": 22,
                    "ipRanges": {"items": [{"cidrIp": c} for c in cidrs]},
                }
            ]
        }
    }


def test_wide_cidrs_leave_private_ranges_out_whatever_their_width():
    # 10.0.0.0/8 is a VPC's range, not the internet; 11.0.0.0/8 is public address space.
    assert [r["cidr"] for r in wide_cidrs(_ssh_from("10.0.0.0/8", "11.0.0.0/8", "172.16.0.0/12"), 8)] == ["11.0.0.0/8"]


@pytest.mark.parametrize("text", ["wide_cidrs(requestParameters, `129`)", "wide_cidrs(requestParameters, `7.5`)"])
def test_a_prefix_length_that_cannot_be_is_refused_when_compiled(text):
    with pytest.raises(ExpressionError, match="whole prefix length from 0 to 128"):
        Expression(text)


def test_a_prefix_length_computed_from_the_event_is_checked_when_evaluated():
    expression = Expression("wide_cidrs(requestParameters, to_number(requestParameters.width))")
    with pytest.raises(ExpressionError, match=re.escape("whole prefix length from 0 to 128, got 1e+300")):
        expression.search({"requestParameters": {**_ssh_from("0.0.0.0/1"), "width": "1e300"}})


@pytest.mark.parametrize("port", ["\u00b2", "\u0663", "22\n2", "\uff12\uff12"])
def test_an_exotic_digit_in_a_port_is_no_port_and_raises_nothing(port):
    # "²".isdigit() is True and int("²") raises: ports are ASCII digits or nothing.
    request = {"cidrIp": "0.0.0.0/0", "ipProtocol": "tcp", "fromPort": port, "toPort": port}
    assert public_cidrs(request) == [{"ipProtocol": "tcp", "fromPort": None, "toPort": None, "cidr": "0.0.0.0/0"}]
    assert open_to_ports(public_cidrs(request), [22, port]) == []
    assert (
        Expression("open_to_ports(public_cidrs(requestParameters), admin_and_database_ports())").search(
            {"requestParameters": request}
        )
        == []
    )


# -- named lists ------------------------------------------------------------------------------


def test_named_lists_are_read_by_name():
    lists = NamedLists.of({"trusted_accounts": ["111122223333"], "trusted_organizations": ["o-a1b2c3d4e5"]})
    record = {"recipientAccountId": "444455556666"}
    assert Expression("named_list('trusted_accounts')").search(record, lists) == ["111122223333"]
    assert Expression("named_list('trusted_organizations')").search(record, lists) == ["o-a1b2c3d4e5"]
    assert Expression("named_list('trusted_accounts')").search(record) == []


@pytest.mark.parametrize(
    "text,message",
    [
        ("named_list('trusted_acounts')", "no list is named 'trusted_acounts'; did you mean 'trusted_accounts'?"),
        (
            "named_list('partners')",
            "no list is named 'partners'; known lists: break_glass_roles, data_event_buckets, pipeline_roles, "
            "trail_buckets, trail_keys, trail_log_groups, trail_roles, trusted_accounts, "
            "trusted_organizations, trusted_principals",
        ),
        ("named_list(recipientAccountId)", "named_list() takes the list's name as a literal"),
        ("named_list(`7`)", "named_list() takes the list's name as a literal"),
        (
            "public_statements(requestParameters.policy)",
            "public_statements() takes 3 argument(s), got 1: "
            "public_statements(policy, trusted_accounts, trusted_organizations)",
        ),
    ],
)
def test_list_names_and_changed_functions_are_checked_when_compiled(text, message):
    with pytest.raises(ExpressionError) as raised:
        Expression(text)
    assert message in str(raised.value)


# -- compiling expressions ------------------------------------------------------------------


def test_expressions_evaluate_with_the_domain_functions():
    record = {"requestParameters": {"x-amz-acl": ["public-read"], "bucketName": "b"}}
    assert Expression("length(public_acl_grants(requestParameters)) > `0`").search(record) is True
    assert Expression("requestParameters.bucketName").search(record) == "b"


@pytest.mark.parametrize(
    "text,message",
    [
        ("requestParameters.[", "JMESPath syntax error at column"),
        ("requestParameters.name == 'x", "JMESPath syntax error"),
        ("publc_cidrs(requestParameters)", "unknown function publc_cidrs(); did you mean public_cidrs()?"),
        ("public_cidrs()", "public_cidrs() takes 1 argument(s), got 0"),
        ("public_cidrs(requestParameters, `1`)", "public_cidrs() takes 1 argument(s), got 2"),
        (
            "requestParamters.name",
            "'requestParamters' is not a field of a CloudTrail record; did you mean 'requestParameters'?",
        ),
        ("true", "'true' is read by JMESPath as a field name, not a value; write the literal as `true`"),
    ],
)
def test_bad_expressions_are_refused_when_compiled(text, message):
    with pytest.raises(ExpressionError) as raised:
        Expression(text)
    assert message in str(raised.value)


def test_field_names_inside_projections_and_filters_are_not_taken_for_record_fields():
    Expression("resources[?type == 'AWS::KMS::Key'].ARN | [0]")
    Expression("public_cidrs(requestParameters)[?fromPort <= `22` && toPort >= `22`].cidr")
    Expression("requestParameters.ipPermissions.items[*].{from: fromPort}")
    Expression("max_by(resources, &accountId)")


def test_an_expression_that_fails_on_one_record_raises_expression_error():
    with pytest.raises(ExpressionError, match="cannot be evaluated on this event"):
        Expression("length(eventVersion)").search({"eventVersion": 5})


def _category(value):
    return {"field": "eventCategory", "equals": [value]}


def _read_only(value):
    return {"field": "readOnly", "equals": [value]}


def _management(*fields):
    return {"fieldSelectors": [_category("Management"), *fields]}


@pytest.mark.parametrize(
    "request_parameters,recorded",
    [
        ({"eventSelectors": [{"readWriteType": "All"}]}, {"read": True, "write": True, "allSources": True}),
        (
            {"eventSelectors": [{"excludeManagementEventSources": ["kms.amazonaws.com"]}]},
            {"read": True, "write": True, "allSources": False},
        ),
        ({"eventSelectors": [{"readWriteType": "ReadOnly"}]}, {"read": True, "write": False, "allSources": True}),
        (
            {"eventSelectors": [{"includeManagementEvents": False}]},
            {"read": False, "write": False, "allSources": True},
        ),
        ({"name": "main"}, {"read": True, "write": True, "allSources": True}),
    ],
)
def test_management_events_recorded(request_parameters, recorded):
    found = Expression("management_events_recorded(requestParameters)").search(
        {"requestParameters": request_parameters}
    )
    assert found == recorded


@pytest.mark.parametrize(
    "request_parameters,gaps",
    [
        ({"eventSelectors": [{"readWriteType": "All", "includeManagementEvents": True}]}, []),
        ({"EventSelectors": [{"ReadWriteType": "All"}]}, []),  # the API's own casing, defaults
        (
            {"eventSelectors": [{"readWriteType": "ReadOnly", "includeManagementEvents": False}]},
            ["management events are not recorded"],
        ),
        (
            {"eventSelectors": [{"readWriteType": "WriteOnly", "includeManagementEvents": True}]},
            ["read-only management events are not recorded"],
        ),
        ({"eventSelectors": [{"readWriteType": "ReadOnly"}, {"readWriteType": "WriteOnly"}]}, []),
        (
            {"eventSelectors": [{"excludeManagementEventSources": ["kms.amazonaws.com", "rdsdata.amazonaws.com"]}]},
            ["management events from kms.amazonaws.com, rdsdata.amazonaws.com are not recorded"],
        ),
        (
            {"advancedEventSelectors": [{"fieldSelectors": [{"field": "eventCategory", "equals": ["Data"]}]}]},
            ["management events are not recorded"],
        ),
        (
            {
                "advancedEventSelectors": [
                    {
                        "fieldSelectors": [
                            {"field": "eventCategory", "equals": ["Management"]},
                            {"field": "readOnly", "equals": ["true"]},
                        ]
                    }
                ]
            },
            ["write management events are not recorded"],
        ),
        (
            {
                "advancedEventSelectors": [
                    {
                        "fieldSelectors": [
                            {"field": "eventCategory", "equals": ["Management"]},
                            {"field": "eventSource", "notEquals": ["kms.amazonaws.com"]},
                        ]
                    }
                ]
            },
            ["management events from kms.amazonaws.com are not recorded"],
        ),
        # The CloudTrail user guide's advanced selectors for all management events, written as
        # two selectors (readOnly true, readOnly false) beside S3 data events: no gap.
        (
            {
                "advancedEventSelectors": [
                    _management(_read_only("true")),
                    _management(_read_only("false")),
                    {"fieldSelectors": [_category("Data"), {"field": "resources.type", "equals": ["AWS::S3::Object"]}]},
                ]
            },
            [],
        ),
        (
            {"advancedEventSelectors": [_management(_read_only("true")), _management(_read_only("true"))]},
            ["write management events are not recorded"],
        ),
        (
            {"advancedEventSelectors": [_management({"field": "readOnly", "notEquals": ["true"]})]},
            ["read-only management events are not recorded"],
        ),
        # One selector leaves KMS out of reads, the other records every write: KMS reads are lost.
        (
            {
                "advancedEventSelectors": [
                    _management(_read_only("true"), {"field": "eventSource", "notEquals": ["kms.amazonaws.com"]}),
                    _management(_read_only("false")),
                ]
            },
            ["read-only management events from kms.amazonaws.com are not recorded"],
        ),
        # A source left out by one selector and recorded by another is recorded.
        (
            {
                "eventSelectors": [
                    {"readWriteType": "All", "excludeManagementEventSources": ["kms.amazonaws.com"]},
                    {"readWriteType": "All"},
                ]
            },
            [],
        ),
        (
            {"advancedEventSelectors": [_management({"field": "eventSource", "equals": ["iam.amazonaws.com"]})]},
            ["only management events from iam.amazonaws.com are recorded"],
        ),
        ({"trailName": "main"}, []),
        (None, []),
    ],
)
def test_management_event_gaps(request_parameters, gaps):
    assert (
        Expression("management_event_gaps(requestParameters)").search({"requestParameters": request_parameters}) == gaps
    )


@pytest.mark.parametrize(
    "text", ["!requestParameters.userName", "a == 'b' && !requestParameters.sourceArn", "!requestParameters.items[0]"]
)
def test_a_negated_path_without_parentheses_is_refused_with_the_fix(text):
    with pytest.raises(ExpressionError, match=r"write the negation around the whole path: `!\(a.b\)`"):
        Expression(text.replace("a == 'b'", "eventName == 'b'"))


def test_a_negated_path_in_parentheses_means_what_it_says():
    assert Expression("!(requestParameters.userName)").search({"requestParameters": None}) is True
    assert Expression("!(requestParameters.userName)").search({"requestParameters": {"userName": "bob"}}) is False
