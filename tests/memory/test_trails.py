"""A deleted trail comes back exactly as it was; removed selectors come back; nothing is guessed."""

from __future__ import annotations

import boto3
import pytest

from chalicelib.actions import registered_actions
from chalicelib.actions.base import ActionContext, UndoRefused
from chalicelib.memory import trails
from tests.conftest import ACCOUNT, REGION, remembering

pytestmark = pytest.mark.unit

SELECTORS = [
    {
        "ReadWriteType": "WriteOnly",
        "IncludeManagementEvents": True,
        "ExcludeManagementEventSources": [],
        "DataResources": [{"Type": "AWS::S3::Object", "Values": ["arn:aws:s3:::payroll/"]}],
    }
]


@pytest.fixture
def cloudtrail(aws):
    return boto3.client("cloudtrail", region_name=REGION)


@pytest.fixture
def org_trail(cloudtrail):
    """A trail with every setting a re-creation must keep."""
    boto3.client("s3", region_name=REGION).create_bucket(Bucket="org-trail-logs")
    key = boto3.client("kms", region_name=REGION).create_key()["KeyMetadata"]["Arn"]
    arn = cloudtrail.create_trail(
        Name="org-trail",
        S3BucketName="org-trail-logs",
        S3KeyPrefix="audit",
        IsMultiRegionTrail=True,
        IncludeGlobalServiceEvents=True,
        EnableLogFileValidation=True,
        KmsKeyId=key,
        TagsList=[{"Key": "owner", "Value": "security"}],
    )["TrailARN"]
    cloudtrail.put_event_selectors(TrailName=arn, EventSelectors=SELECTORS)
    cloudtrail.start_logging(Name=arn)
    return arn


def _observable(cloudtrail, name):
    """What a person would compare: describe_trails, selectors, tags, status."""
    [trail] = cloudtrail.describe_trails(trailNameList=[name])["trailList"]
    return {
        "trail": trail,
        "selectors": cloudtrail.get_event_selectors(TrailName=name)["EventSelectors"],
        "tags": cloudtrail.list_tags(ResourceIdList=[trail["TrailARN"]])["ResourceTagList"][0]["TagsList"],
        "logging": cloudtrail.get_trail_status(Name=name)["IsLogging"],
    }


def _action(name, client, params, memory):
    return registered_actions()[name](client, params, ActionContext(ACCOUNT, REGION, memory))


def test_a_deleted_trail_is_recreated_with_the_same_configuration(cloudtrail, org_trail):
    memory = remembering()
    trails.remember(memory, cloudtrail, org_trail, ACCOUNT, REGION)
    before_delete = _observable(cloudtrail, "org-trail")
    cloudtrail.delete_trail(Name="org-trail")

    action = _action("cloudtrail.restore_trail", cloudtrail, {"trail": "org-trail"}, memory)
    before = action.snapshot()
    assert before == {"Trail": "org-trail", "Exists": False, "Config": None} and not action.check(before)
    action.apply(before)
    assert _observable(cloudtrail, "org-trail") == before_delete
    assert action.note.startswith("re-created from the configuration remembered at ")

    after = action.snapshot()
    assert action.check(after)  # re-apply would find it safe and change nothing
    action.undo(before, after)
    assert cloudtrail.describe_trails(trailNameList=["org-trail"])["trailList"] == []


def test_undo_refuses_when_the_recreated_trail_changed(cloudtrail, org_trail):
    memory = remembering()
    trails.remember(memory, cloudtrail, org_trail, ACCOUNT, REGION)
    cloudtrail.delete_trail(Name="org-trail")
    action = _action("cloudtrail.restore_trail", cloudtrail, {"trail": "org-trail"}, memory)
    before = action.snapshot()
    action.apply(before)
    after = action.snapshot()
    cloudtrail.update_trail(Name="org-trail", S3KeyPrefix="elsewhere")
    with pytest.raises(UndoRefused, match="changed since trailguard acted"):
        action.undo(before, after)
    assert cloudtrail.describe_trails(trailNameList=["org-trail"])["trailList"]


def test_without_a_remembered_configuration_or_fallback_the_step_fails_and_says_so(cloudtrail, aws):
    action = _action("cloudtrail.restore_trail", cloudtrail, {"trail": "ghost"}, remembering())
    with pytest.raises(Exception, match=r"no configuration of trail ghost was ever remembered.*fallback"):
        action.apply(action.snapshot())


def test_without_a_remembered_configuration_the_playbook_fallback_is_used(cloudtrail, aws):
    boto3.client("s3", region_name=REGION).create_bucket(Bucket="fallback-logs")
    fallback = {"S3BucketName": "fallback-logs", "IsMultiRegionTrail": True}
    action = _action("cloudtrail.restore_trail", cloudtrail, {"trail": "ghost", "fallback": fallback}, remembering())
    action.apply(action.snapshot())
    [trail] = cloudtrail.describe_trails(trailNameList=["ghost"])["trailList"]
    assert (trail["S3BucketName"], trail["IsMultiRegionTrail"]) == ("fallback-logs", True)
    assert cloudtrail.get_trail_status(Name="ghost")["IsLogging"] is True
    assert "fallback" in action.note


def test_removed_event_selectors_are_put_back_from_memory_beside_the_current_ones(cloudtrail, org_trail):
    memory = remembering()
    trails.remember(memory, cloudtrail, org_trail, ACCOUNT, REGION)
    narrowed = [{"ReadWriteType": "ReadOnly", "IncludeManagementEvents": False}]
    cloudtrail.put_event_selectors(TrailName=org_trail, EventSelectors=narrowed)
    action = _action("cloudtrail.restore_event_selectors", cloudtrail, {"trail": org_trail}, memory)
    before = action.snapshot()
    assert not action.check(before)
    action.apply(before)
    # Merged, not replaced: the trail records what it records now and what it recorded before.
    assert cloudtrail.get_event_selectors(TrailName=org_trail)["EventSelectors"] == [
        trails.selectors_of({"EventSelectors": narrowed})["EventSelectors"][0],
        *SELECTORS,
    ]
    after = action.snapshot()
    assert action.check(after)
    action.undo(before, after)
    assert trails.selectors_of(cloudtrail.get_event_selectors(TrailName=org_trail)) == trails.selectors_of(
        {"EventSelectors": narrowed}
    )


def test_without_memory_selectors_default_to_all_management_events(cloudtrail, org_trail):
    cloudtrail.put_event_selectors(TrailName=org_trail, EventSelectors=[{"IncludeManagementEvents": False}])
    action = _action("cloudtrail.restore_event_selectors", cloudtrail, {"trail": org_trail}, remembering())
    action.apply(action.snapshot())
    [kept, added] = cloudtrail.get_event_selectors(TrailName=org_trail)["EventSelectors"]
    assert kept["IncludeManagementEvents"] is False
    assert (added["ReadWriteType"], added["IncludeManagementEvents"]) == ("All", True)
    assert action.check(action.snapshot())


@pytest.mark.parametrize(
    "given,expected",
    [
        ("main", (ACCOUNT, REGION, "main")),
        ("arn:aws:cloudtrail:eu-west-1:210987654321:trail/org", ("210987654321", "eu-west-1", "org")),
    ],
)
def test_trails_are_located_by_name_or_arn(given, expected):
    assert trails.locate(given, ACCOUNT, REGION) == expected


def test_advanced_event_selectors_are_remembered_and_put_back(cloudtrail, org_trail):
    advanced = [
        {
            "Name": "management and payroll objects",
            "FieldSelectors": [{"Field": "eventCategory", "Equals": ["Management"]}],
        }
    ]
    cloudtrail.put_event_selectors(TrailName=org_trail, AdvancedEventSelectors=advanced)
    memory = remembering()
    trails.remember(memory, cloudtrail, org_trail, ACCOUNT, REGION)
    assert memory.recall(trails.memory_key(ACCOUNT, REGION, "org-trail"))["AdvancedEventSelectors"] == advanced
    data_only = [
        {
            "Name": "data only",
            "FieldSelectors": [
                {"Field": "eventCategory", "Equals": ["Data"]},
                {"Field": "resources.type", "Equals": ["AWS::S3::Object"]},
            ],
        }
    ]
    cloudtrail.put_event_selectors(TrailName=org_trail, AdvancedEventSelectors=data_only)
    action = _action("cloudtrail.restore_event_selectors", cloudtrail, {"trail": org_trail}, memory)
    before = action.snapshot()
    assert not action.check(before)
    action.apply(before)
    assert cloudtrail.get_event_selectors(TrailName=org_trail)["AdvancedEventSelectors"] == data_only + advanced


def test_a_trail_recreated_by_someone_else_is_not_safe_until_it_matches_field_by_field(cloudtrail, org_trail):
    memory = remembering()
    trails.remember(memory, cloudtrail, org_trail, ACCOUNT, REGION)
    before_delete = _observable(cloudtrail, "org-trail")
    cloudtrail.delete_trail(Name="org-trail")
    boto3.client("s3", region_name=REGION).create_bucket(Bucket="attacker-logs")
    cloudtrail.create_trail(Name="org-trail", S3BucketName="attacker-logs", TagsList=before_delete["tags"])
    cloudtrail.start_logging(Name="org-trail")
    attackers = trails.describe(cloudtrail, "org-trail")

    action = _action("cloudtrail.restore_trail", cloudtrail, {"trail": "org-trail"}, memory)
    before = action.snapshot()
    assert before["Exists"] and not action.check(before)  # it exists and logs, but it is not ours
    action.apply(before)
    observed = _observable(cloudtrail, "org-trail")
    # Every setting as remembered; the selectors of both (the re-created trail's default, all
    # management events, is kept: a restore never records less than the trail does now).
    assert {**observed, "selectors": None} == {**before_delete, "selectors": None}
    assert observed["selectors"][1:] == before_delete["selectors"]
    assert "KmsKeyId" in action.note and "S3BucketName" in action.note
    after = action.snapshot()
    assert action.check(after)
    action.undo(before, after)  # a person says the new trail was meant
    assert trails.describe(cloudtrail, "org-trail") == attackers


def test_a_trail_left_half_created_is_not_safe_until_it_logs(cloudtrail, org_trail):
    memory = remembering()
    trails.remember(memory, cloudtrail, org_trail, ACCOUNT, REGION)
    cloudtrail.stop_logging(Name=org_trail)  # as an attempt that died before StartLogging leaves it
    action = _action("cloudtrail.restore_trail", cloudtrail, {"trail": "org-trail"}, memory)
    before = action.snapshot()
    assert not action.check(before)
    action.apply(before)
    assert cloudtrail.get_trail_status(Name=org_trail)["IsLogging"] is True
    assert action.check(action.snapshot()) and action.note.endswith("started it")


def test_restoring_settings_never_turns_off_what_records_more(cloudtrail, org_trail):
    cloudtrail.update_trail(Name=org_trail, EnableLogFileValidation=False, IsMultiRegionTrail=False)
    memory = remembering()
    trails.remember(memory, cloudtrail, org_trail, ACCOUNT, REGION)
    other_key = boto3.client("kms", region_name=REGION).create_key()["KeyMetadata"]["Arn"]
    cloudtrail.update_trail(Name=org_trail, EnableLogFileValidation=True, IsMultiRegionTrail=True, KmsKeyId=other_key)
    remembered_key = memory.recall(trails.memory_key(ACCOUNT, REGION, "org-trail"))["KmsKeyId"]

    action = _action("cloudtrail.restore_trail_settings", cloudtrail, {"trail": "org-trail"}, memory)
    before = action.snapshot()
    assert not action.check(before)  # another key: not as remembered
    action.apply(before)
    [trail] = cloudtrail.describe_trails(trailNameList=["org-trail"])["trailList"]
    assert (trail["KmsKeyId"], trail["LogFileValidationEnabled"], trail["IsMultiRegionTrail"]) == (
        remembered_key,
        True,
        True,
    )
    assert action.note.startswith("put back KmsKeyId as remembered at ")


def test_a_missing_trail_is_missing_even_when_describe_trails_names_others(aws, make_trail):
    """moto answers DescribeTrails for an unknown name with every trail; a restore must not
    take another trail for the one that was deleted."""
    make_trail("other")
    assert trails.describe(boto3.client("cloudtrail", region_name="us-east-1"), "deleted-trail") is None


def test_a_restore_of_basic_selectors_onto_advanced_ones_keeps_the_data_events(cloudtrail, org_trail, calls):
    """Remembered: basic selectors (all management events); now: advanced selectors that
    record S3 data events only. On AWS, basic selectors put in their place would drop the
    data events (a trail has one kind or the other); the restore sends advanced selectors
    that record both. moto keeps both kinds, so the call itself is checked."""
    cloudtrail.put_event_selectors(TrailName=org_trail, EventSelectors=[{"ReadWriteType": "All"}])
    memory = remembering()
    trails.remember(memory, cloudtrail, org_trail, ACCOUNT, REGION)
    data_only = [
        {
            "Name": "S3 data events",
            "FieldSelectors": [
                {"Field": "eventCategory", "Equals": ["Data"]},
                {"Field": "resources.type", "Equals": ["AWS::S3::Object"]},
            ],
        }
    ]
    cloudtrail.put_event_selectors(TrailName=org_trail, AdvancedEventSelectors=data_only)
    calls.attach(cloudtrail)
    action = _action("cloudtrail.restore_event_selectors", cloudtrail, {"trail": org_trail}, memory)
    action.apply(action.snapshot())
    [(_, sent)] = [(name, params) for name, params in calls.params if name == "PutEventSelectors"]
    assert "EventSelectors" not in sent
    assert sent["AdvancedEventSelectors"] == [
        *data_only,
        {
            "Name": "Management events (basic selector 1)",
            "FieldSelectors": [{"Field": "eventCategory", "Equals": ["Management"]}],
        },
    ]
    assert action.check(action.snapshot())


@pytest.mark.parametrize(
    "remembered,now,lacking",
    [
        ({"KmsKeyId": None}, {"KmsKeyId": "arn:aws:kms:us-east-1:1:key/added"}, {}),  # added: kept
        (
            {"KmsKeyId": "arn:aws:kms:us-east-1:1:key/ours"},
            {"KmsKeyId": None},
            {"KmsKeyId": "arn:aws:kms:us-east-1:1:key/ours"},
        ),
        (
            {"KmsKeyId": "arn:aws:kms:us-east-1:1:key/ours"},
            {"KmsKeyId": "arn:aws:kms:us-east-1:2:key/theirs"},
            {"KmsKeyId": "arn:aws:kms:us-east-1:1:key/ours"},
        ),
        ({"SnsTopicName": None}, {"SnsTopicName": "delivery"}, {}),
        ({"CloudWatchLogsLogGroupArn": None}, {"CloudWatchLogsLogGroupArn": "arn:aws:logs:x"}, {}),
        ({"S3BucketName": "ours"}, {"S3BucketName": "attacker-bucket"}, {"S3BucketName": "ours"}),
        ({"IsOrganizationTrail": True}, {"IsOrganizationTrail": False}, {"IsOrganizationTrail": True}),
        ({"IsMultiRegionTrail": False}, {"IsMultiRegionTrail": True}, {}),
    ],
)
def test_a_restore_never_protects_less_than_the_trail_does_now(remembered, now, lacking):
    assert trails.shortfalls(remembered, now, trails.SETTINGS) == lacking


def test_an_organization_trail_made_a_single_account_trail_is_put_back(cloudtrail, aws):
    """UpdateTrail isOrganizationTrail false: the restore makes it an organization trail
    again, with the permissions CloudTrail asks of the management account for that."""
    import json

    from tests.conftest import ROOT

    boto3.client("organizations", region_name=REGION).create_organization(FeatureSet="ALL")
    boto3.client("s3", region_name=REGION).create_bucket(Bucket="org-logs")
    cloudtrail.create_trail(Name="org", S3BucketName="org-logs", IsOrganizationTrail=True, IsMultiRegionTrail=True)
    memory = remembering()
    trails.remember(memory, cloudtrail, "org", ACCOUNT, REGION)
    cloudtrail.update_trail(Name="org", IsOrganizationTrail=False)
    action = _action("cloudtrail.restore_trail_settings", cloudtrail, {"trail": "org"}, memory)
    before = action.snapshot()
    assert not action.check(before)
    action.apply(before)
    [trail] = cloudtrail.describe_trails(trailNameList=["org"])["trailList"]
    assert trail["IsOrganizationTrail"] is True and action.check(action.snapshot())
    policy = json.loads((ROOT / ".chalice" / "policy-dev.json").read_text())
    granted = {a for s in policy["Statement"] for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    assert {"organizations:DescribeOrganization", "organizations:ListAWSServiceAccessForOrganization"} <= granted
    assert {"iam:GetRole", "iam:CreateServiceLinkedRole"} <= granted
