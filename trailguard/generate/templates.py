"""The CloudFormation templates a deployment needs beyond what Chalice creates.

- `merge_template`: for `chalice package --merge-template`. It adds the incident table
  (with point-in-time recovery), the integrity key that seals it (with its alias) and the
  REST API's access logs (which Chalice cannot turn on), and gives every function, role
  and rule the name `chalice deploy` would give it, so the worker's name in the settings,
  the policy's ARNs and the member roles' trust hold whichever way a team deploys. And
  what keeps the stage observable and loses nothing (`operations_fragment`): dead-letter
  queues, the rules' retry policies, on-failure destinations, log retention, alarms and
  the dashboard.
- `member_template`: one StackSet for every member account and region. It creates the
  role trailguard assumes (trusting only the central account's acting roles, with the
  external id, holding only the remediation permissions) and forwards the CloudTrail
  calls the playbooks answer to the central account's default bus.
- `central_bus_template`: the central account's bus policy, letting the organization's
  accounts put events on its default bus.

All are generated from the playbooks and the stage's settings, and committed under
`deploy/` (a test fails when they are stale; cfn-lint checks them in CI).
"""

from __future__ import annotations

from typing import Any

from chalicelib.aws.seals import KEY_SPEC, KEY_USAGE
from chalicelib.incidents.store import TTL_ATTRIBUTE, table_definition
from chalicelib.playbooks.catalog import Catalog, EventRule
from chalicelib.settings import Settings
from trailguard.bootstrap import alias_of
from trailguard.generate import alarms, dashboard, deadletters
from trailguard.generate.access_logs import ACCESS_LOG_FORMAT, ACCESS_LOG_RETENTION_DAYS, access_log_group
from trailguard.generate.deployment import (
    API_FUNCTION,
    acting_functions,
    forwarder_role_name,
    function_name,
    own_roles_in_member_accounts,
    role_name,
)
from trailguard.generate.operations import OpsSettings, StageLayout, deep_merge, queue_logical_id
from trailguard.generate.policy import integrity_key_policy, member_policy

CENTRAL_BUS = "arn:${AWS::Partition}:events:${CentralRegion}:${CentralAccountId}:event-bus/default"
OWN_BUS = "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/default"
REST_API = "RestAPI"
"""The name `chalice package` gives the REST API (an `AWS::Serverless::Api`)."""


def _logical_ids(function: str) -> tuple[str, str]:
    """The CloudFormation names `chalice package` gives a function and its role, by Chalice's
    own rule (`slack_worker` -> `SlackWorker`, `SlackWorkerRole`); the API's function is
    always `APIHandler`. Chalice is a development dependency: this runs from the CLI only."""
    from chalice.utils import to_cfn_resource_name

    name = "APIHandler" if function == API_FUNCTION else to_cfn_resource_name(function)
    return name, to_cfn_resource_name(f"{function}_role")


def merge_template(
    stage: str, settings: Settings, rules: list[EventRule], ops: OpsSettings | None = None
) -> dict[str, Any]:
    """`ops`: the stage's operational settings (`operations.OpsSettings`; by default, the defaults)."""
    if not settings.table:
        raise ValueError(f"stage {stage} sets no TRAILGUARD_TABLE; the merge template would have no table to create")
    definition = table_definition(settings.table)
    resources: dict[str, Any] = {
        "IncidentTable": {
            "Type": "AWS::DynamoDB::Table",
            # Incidents are the audit trail of what trailguard changed: removing the stack keeps them.
            "DeletionPolicy": "Retain",
            "UpdateReplacePolicy": "Retain",
            "Properties": {
                **definition,
                "TimeToLiveSpecification": {"AttributeName": TTL_ATTRIBUTE, "Enabled": True},
                "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
            },
        }
    }
    resources["ApiAccessLogs"] = {
        "Type": "AWS::Logs::LogGroup",
        # Who called the public URL is evidence too: kept like the table.
        "DeletionPolicy": "Retain",
        "UpdateReplacePolicy": "Retain",
        "Properties": {"LogGroupName": access_log_group(stage), "RetentionInDays": ACCESS_LOG_RETENTION_DAYS},
    }
    resources[REST_API] = {
        "Properties": {
            "AccessLogSetting": {
                "DestinationArn": {
                    "Fn::Sub": "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:${ApiAccessLogs}"
                },
                "Format": ACCESS_LOG_FORMAT,
            }
        }
    }
    acting = acting_functions([rule.name for rule in rules])
    for function in [*acting, API_FUNCTION]:
        function_id, role_id = _logical_ids(function)
        resources[function_id] = {"Properties": {"FunctionName": function_name(stage, function)}}
        resources[role_id] = {"Properties": {"RoleName": role_name(stage, function)}}
    outputs: dict[str, Any] = {"IncidentTableName": {"Value": {"Ref": "IncidentTable"}}}
    alias = alias_of(settings.integrity_key or "")
    if alias is not None:  # a key named by id or ARN was made elsewhere
        resources.update(_integrity_key(stage, alias, [role_name(stage, function) for function in acting]))
        outputs["IntegrityKeyArn"] = {"Value": {"Fn::GetAtt": ["IntegrityKey", "Arn"]}}
    layout = StageLayout(stage, tuple(rule.name for rule in rules), table=settings.table, ops=ops or OpsSettings())
    return deep_merge({"Resources": resources, "Outputs": outputs}, operations_fragment(layout))


def operations_fragment(layout: StageLayout) -> dict[str, Any]:
    """Dead-letter queues, the rules' names, retry policies and dead-letter configs,
    on-failure destinations, log groups with retention, the alarms, their topic and the
    dashboard, as a template to merge."""
    resources: dict[str, Any] = {}
    for part in (
        deadletters.cfn_dead_letter_queues(layout),
        deadletters.cfn_async_failure_destinations(layout),
        deadletters.cfn_log_groups(layout),
        alarms.cfn_alarm_topic(layout),
        alarms.cfn_alarms(layout),
        dashboard.cfn_dashboard(layout),
    ):
        clash = sorted(set(part) & set(resources))
        if clash:
            raise ValueError(f"logical ids used twice: {', '.join(clash)}")
        resources.update(part)
    for fragment in (deadletters.cfn_rule_targets(layout), deadletters.cfn_functions_after_log_groups(layout)):
        resources = deep_merge(resources, fragment)
    outputs: dict[str, Any] = {
        "AlarmTopicArn": {"Value": alarms.topic_reference(layout)},
        "DashboardName": {"Value": {"Ref": dashboard.DASHBOARD_LOGICAL_ID}},
        **{
            f"{queue_logical_id(function)}Url": {"Value": {"Ref": queue_logical_id(function)}}
            for function in layout.background_functions
        },
    }
    return {"Resources": resources, "Outputs": outputs}


def _integrity_key(stage: str, alias: str, acting_roles: list[str]) -> dict[str, Any]:
    """The HMAC key that seals the table (see `incidents.seals`), kept when the stack goes: without
    it, no stored incident can be checked again."""
    policy = integrity_key_policy(
        {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"},
        [{"Fn::Sub": f"arn:${{AWS::Partition}}:iam::${{AWS::AccountId}}:role/{role}"} for role in acting_roles],
    )
    return {
        "IntegrityKey": {
            "Type": "AWS::KMS::Key",
            "DeletionPolicy": "Retain",
            "UpdateReplacePolicy": "Retain",
            "Properties": {
                "Description": f"trailguard ({stage}): seals what its acting functions write to the incidents table",
                "KeySpec": KEY_SPEC,
                "KeyUsage": KEY_USAGE,
                "KeyPolicy": policy,
            },
        },
        "IntegrityKeyAlias": {
            "Type": "AWS::KMS::Alias",
            "Properties": {"AliasName": alias, "TargetKeyId": {"Ref": "IntegrityKey"}},
        },
    }


def member_template(stage: str, settings: Settings, catalog: Catalog, rules: list[EventRule]) -> dict[str, Any]:
    trusted = [
        f"arn:${{AWS::Partition}}:iam::${{CentralAccountId}}:role/{role_name(stage, function)}"
        for function in acting_functions([rule.name for rule in rules])
    ]
    forwarder = forwarder_role_name(stage)
    remediate = member_policy(
        catalog,
        own_roles=own_roles_in_member_accounts(stage, settings),
        security_hub=settings.security_hub,
        stage=stage,
    )
    external_id: dict[str, Any] = {
        "Type": "String",
        "MinLength": 2,
        "MaxLength": 1224,
        "AllowedPattern": "[\\w+=,.@:/-]+",
        "Description": "The external id trailguard passes when it assumes the member role (TRAILGUARD_EXTERNAL_ID)",
    }
    if settings.external_id:
        external_id["Default"] = settings.external_id
    resources: dict[str, Any] = {
        "MemberRole": {
            "Type": "AWS::IAM::Role",
            "Condition": "InGlobalResourcesRegion",
            "Properties": {
                "RoleName": settings.member_role,
                "Description": f"Assumed by trailguard ({stage}) to remediate; trusts only its acting roles",
                "MaxSessionDuration": 3600,
                "AssumeRolePolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${CentralAccountId}:root"}},
                            "Action": "sts:AssumeRole",
                            "Condition": {
                                "StringEquals": {"sts:ExternalId": {"Ref": "ExternalId"}},
                                "ArnEquals": {"aws:PrincipalArn": [{"Fn::Sub": arn} for arn in trusted]},
                            },
                        }
                    ],
                },
                "Policies": [{"PolicyName": "remediate", "PolicyDocument": remediate}],
            },
        },
        "ForwarderRole": {
            "Type": "AWS::IAM::Role",
            "Condition": "InGlobalResourcesRegion",
            "Properties": {
                "RoleName": forwarder,
                "Description": f"Lets EventBridge forward CloudTrail calls to trailguard's ({stage}) central bus",
                "AssumeRolePolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "events.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                        }
                    ],
                },
                "Policies": [
                    {
                        "PolicyName": "put-events-on-the-central-bus",
                        "PolicyDocument": {
                            "Version": "2012-10-17",
                            "Statement": [
                                {"Effect": "Allow", "Action": "events:PutEvents", "Resource": {"Fn::Sub": CENTRAL_BUS}}
                            ],
                        },
                    }
                ],
            },
        },
    }
    for number, rule in enumerate(rules, 1):
        resources[f"ForwardCloudTrailCalls{number}"] = {
            "Type": "AWS::Events::Rule",
            "Condition": "ForwardsEvents",
            "Properties": {
                "Description": f"CloudTrail calls trailguard ({stage}) answers, forwarded to its central account",
                "EventPattern": rule.pattern,
                "State": "ENABLED",
                "Targets": [
                    {
                        "Id": "trailguard-central-bus",
                        "Arn": {"Fn::Sub": CENTRAL_BUS},
                        "RoleArn": {"Fn::Sub": f"arn:${{AWS::Partition}}:iam::${{AWS::AccountId}}:role/{forwarder}"},
                    }
                ],
            },
        }
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": (
            f"trailguard ({stage}) in a member account: the role it assumes to remediate, and the rules "
            "forwarding CloudTrail calls to the central account. StackSet-ready: deploy to every account "
            "and region, with GlobalResourcesRegion first."
        ),
        "Parameters": {
            "CentralAccountId": {
                "Type": "String",
                "AllowedPattern": "\\d{12}",
                "Description": "The account trailguard is deployed in",
            },
            "CentralRegion": {
                "Type": "String",
                "Default": "us-east-1",
                "Description": "The region trailguard is deployed in",
            },
            "ExternalId": external_id,
            "GlobalResourcesRegion": {
                "Type": "String",
                "Default": "us-east-1",
                "Description": "The one region that creates the IAM roles (IAM is global)",
            },
        },
        "Conditions": {
            "InGlobalResourcesRegion": {"Fn::Equals": [{"Ref": "AWS::Region"}, {"Ref": "GlobalResourcesRegion"}]},
            # The central account's own calls in its own region are on its bus already.
            "ForwardsEvents": {
                "Fn::Not": [
                    {
                        "Fn::And": [
                            {"Fn::Equals": [{"Ref": "AWS::AccountId"}, {"Ref": "CentralAccountId"}]},
                            {"Fn::Equals": [{"Ref": "AWS::Region"}, {"Ref": "CentralRegion"}]},
                        ]
                    }
                ]
            },
        },
        "Resources": resources,
        "Outputs": {
            "MemberRoleArn": {"Condition": "InGlobalResourcesRegion", "Value": {"Fn::GetAtt": ["MemberRole", "Arn"]}},
        },
    }


def central_bus_template(stage: str) -> dict[str, Any]:
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": (
            f"trailguard ({stage}): the organization's accounts may put events on this account's default bus"
        ),
        "Parameters": {
            "OrganizationId": {
                "Type": "String",
                "AllowedPattern": "o-[a-z0-9]{10,32}",
                "Description": "Your AWS Organization's id (aws organizations describe-organization)",
            },
        },
        "Resources": {
            "OrganizationMayPutEvents": {
                "Type": "AWS::Events::EventBusPolicy",
                "Properties": {
                    "EventBusName": "default",
                    "StatementId": f"trailguard-{stage}-organization",
                    "Statement": {
                        "Effect": "Allow",
                        "Principal": "*",
                        "Action": "events:PutEvents",
                        "Resource": {"Fn::Sub": OWN_BUS},
                        "Condition": {"StringEquals": {"aws:PrincipalOrgID": {"Ref": "OrganizationId"}}},
                    },
                },
            }
        },
    }
