"""Worked examples: trailguard's own events opening a Jira issue, a ServiceNow incident and a
PagerDuty alert through EventBridge API destinations, with no code in trailguard
(docs/operations.md walks through them).

`example_template(stage, bus)` is a stand-alone CloudFormation template, written beside the
stage's others when it puts events out (`deploy/event-destinations-<stage>.json`; deploy it
beside the stage, removing what you do not use): a Connection and an ApiDestination per
tool, a role EventBridge uses to call them, and a rule per case on the stage's bus whose
InputTransformer turns the event's `detail` into the body the tool's API documents:
- Jira Cloud REST API v2 `POST /rest/api/2/issue` (basic auth: account email + API token).
- ServiceNow Table API `POST /api/now/table/incident` (basic auth).
- PagerDuty Events API v2 `POST https://events.pagerduty.com/v2/enqueue` (`routing_key`,
  `event_action` trigger/resolve, `dedup_key`, `payload.summary/source/severity`): one rule
  triggers, another resolves with the same dedup key (the incident id).
Every target has a retry policy and a dead-letter queue, like trailguard's own rules.
`INPUT_TRANSFORMERS` are the transformers alone, so tests can run them through moto.
"""

from __future__ import annotations

from typing import Any

from chalicelib.outputs.events import DETAIL_TYPE, SOURCE

PATHS = {
    "id": "$.detail.incident.id",
    "title": "$.detail.incident.title",
    "state": "$.detail.incident.state",
    "severity": "$.detail.incident.severity",
    "playbook": "$.detail.incident.playbook",
    "stage": "$.detail.stage",
    "account": "$.detail.event.account",
    "region": "$.detail.event.region",
    "actor": "$.detail.event.actor",
    "eventName": "$.detail.event.eventName",
    "eventTime": "$.detail.event.eventTime",
}
"""The detail fields the bodies use. Errors and resource names are left out on purpose: a
quote in them would need escaping inside a JSON template."""

_SUMMARY = "trailguard <stage>: <title> (<state>) - <actor> called <eventName> in <account> <region>"

INPUT_TRANSFORMERS: dict[str, dict[str, Any]] = {
    "jira": {
        "InputPathsMap": PATHS,
        "InputTemplate": (
            '{"fields": {"project": {"key": "${JiraProjectKey}"}, "issuetype": {"name": "${JiraIssueType}"}, '
            f'"summary": "{_SUMMARY}", '
            '"description": "Incident <id>, playbook <playbook>, severity <severity>, at <eventTime>. '
            'Decide in Slack; this issue follows up.", "labels": ["trailguard", "<playbook>"]}}'
        ),
    },
    "servicenow": {
        "InputPathsMap": PATHS,
        "InputTemplate": (
            f'{{"short_description": "{_SUMMARY}", '
            '"description": "trailguard incident <id>, playbook <playbook>, severity <severity>, '
            'event at <eventTime>.", '
            '"category": "security", "urgency": "1", "impact": "2", "correlation_id": "<id>", '
            '"correlation_display": "trailguard"}'
        ),
    },
    "pagerduty-trigger": {
        "InputPathsMap": PATHS,
        "InputTemplate": (
            '{"routing_key": "${PagerDutyRoutingKey}", "event_action": "trigger", "dedup_key": "<id>", '
            f'"payload": {{"summary": "{_SUMMARY}", "source": "trailguard-<stage>/<account>/<region>", '
            '"severity": "critical", "component": "<playbook>", "group": "<account>", "class": "<eventName>", '
            '"custom_details": {"incident": "<id>", "state": "<state>", "severity": "<severity>"}}}'
        ),
    },
    "pagerduty-resolve": {
        "InputPathsMap": {"id": "$.detail.incident.id"},
        "InputTemplate": '{"routing_key": "${PagerDutyRoutingKey}", "event_action": "resolve", "dedup_key": "<id>"}',
    },
}


def _sub(text: str) -> Any:
    """Fn::Sub where the text names a template parameter; the text itself otherwise."""
    return {"Fn::Sub": text} if "${" in text else text


def _pattern(stage_param: dict[str, Any], states: list[str], severities: list[str] | None = None) -> dict[str, Any]:
    incident: dict[str, Any] = {"state": states}
    if severities:
        incident["severity"] = severities
    return {
        "source": [SOURCE],
        "detail-type": [DETAIL_TYPE],
        "detail": {"schemaVersion": [{"prefix": "1."}], "stage": [stage_param], "incident": incident},
    }


def example_template(stage: str, bus: str = "default") -> dict[str, Any]:
    """`bus`: where the stage puts its events (`TRAILGUARD_EVENTS_OUT`)."""
    stage_ref = {"Ref": "Stage"}
    params: dict[str, Any] = {
        "Stage": {"Type": "String", "Default": stage, "Description": "The trailguard stage whose events to route"},
        "JiraSite": {"Type": "String", "AllowedPattern": "[a-z0-9-]+", "Description": "<site>.atlassian.net"},
        "JiraEmail": {"Type": "String", "Description": "The Atlassian account the API token belongs to"},
        "JiraApiToken": {"Type": "String", "NoEcho": True},
        "JiraProjectKey": {"Type": "String", "Default": "SEC"},
        "JiraIssueType": {"Type": "String", "Default": "Task"},
        "ServiceNowInstance": {
            "Type": "String",
            "AllowedPattern": "[a-z0-9-]+",
            "Description": "<instance>.service-now.com",
        },
        "ServiceNowUser": {"Type": "String"},
        "ServiceNowPassword": {"Type": "String", "NoEcho": True},
        "PagerDutyRoutingKey": {
            "Type": "String",
            "NoEcho": True,
            "Description": "An Events API v2 integration key (it can only send events to its service)",
        },
    }
    resources: dict[str, Any] = {
        "IntegrationsDeadLetters": {
            "Type": "AWS::SQS::Queue",
            "Properties": {
                "QueueName": {"Fn::Sub": "trailguard-${Stage}-integrations-dlq"},
                "MessageRetentionPeriod": 1_209_600,
                "SqsManagedSseEnabled": True,
            },
        },
        "InvokeApiDestinationsRole": {
            "Type": "AWS::IAM::Role",
            "Properties": {
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
                        "PolicyName": "invoke-api-destinations",
                        "PolicyDocument": {
                            "Version": "2012-10-17",
                            "Statement": [
                                {
                                    "Effect": "Allow",
                                    "Action": "events:InvokeApiDestination",
                                    "Resource": [
                                        {"Fn::GetAtt": [f"{tool}Destination", "Arn"]}
                                        for tool in ("Jira", "ServiceNow", "PagerDuty")
                                    ],
                                }
                            ],
                        },
                    }
                ],
            },
        },
        "JiraConnection": {
            "Type": "AWS::Events::Connection",
            "Properties": {
                "AuthorizationType": "BASIC",
                "AuthParameters": {
                    "BasicAuthParameters": {"Username": {"Ref": "JiraEmail"}, "Password": {"Ref": "JiraApiToken"}}
                },
            },
        },
        "JiraDestination": {
            "Type": "AWS::Events::ApiDestination",
            "Properties": {
                "ConnectionArn": {"Fn::GetAtt": ["JiraConnection", "Arn"]},
                "HttpMethod": "POST",
                "InvocationEndpoint": {"Fn::Sub": "https://${JiraSite}.atlassian.net/rest/api/2/issue"},
                "InvocationRateLimitPerSecond": 5,
            },
        },
        "ServiceNowConnection": {
            "Type": "AWS::Events::Connection",
            "Properties": {
                "AuthorizationType": "BASIC",
                "AuthParameters": {
                    "BasicAuthParameters": {
                        "Username": {"Ref": "ServiceNowUser"},
                        "Password": {"Ref": "ServiceNowPassword"},
                    }
                },
            },
        },
        "ServiceNowDestination": {
            "Type": "AWS::Events::ApiDestination",
            "Properties": {
                "ConnectionArn": {"Fn::GetAtt": ["ServiceNowConnection", "Arn"]},
                "HttpMethod": "POST",
                "InvocationEndpoint": {
                    "Fn::Sub": "https://${ServiceNowInstance}.service-now.com/api/now/table/incident"
                },
                "InvocationRateLimitPerSecond": 5,
            },
        },
        # PagerDuty's Events API authenticates by the routing key in the body; a Connection
        # still needs an authorization, so it carries a harmless header.
        "PagerDutyConnection": {
            "Type": "AWS::Events::Connection",
            "Properties": {
                "AuthorizationType": "API_KEY",
                "AuthParameters": {"ApiKeyAuthParameters": {"ApiKeyName": "X-Sender", "ApiKeyValue": "trailguard"}},
            },
        },
        "PagerDutyDestination": {
            "Type": "AWS::Events::ApiDestination",
            "Properties": {
                "ConnectionArn": {"Fn::GetAtt": ["PagerDutyConnection", "Arn"]},
                "HttpMethod": "POST",
                "InvocationEndpoint": "https://events.pagerduty.com/v2/enqueue",
                "InvocationRateLimitPerSecond": 10,
            },
        },
    }
    rules = {
        "JiraOnFailureOrProposal": ("Jira", "jira", _pattern(stage_ref, ["failed", "proposed"], ["high", "critical"])),
        "ServiceNowOnFailure": ("ServiceNow", "servicenow", _pattern(stage_ref, ["failed"])),
        "PagerDutyTrigger": (
            "PagerDuty",
            "pagerduty-trigger",
            _pattern(stage_ref, ["failed", "proposed"], ["critical"]),
        ),
        "PagerDutyResolve": (
            "PagerDuty",
            "pagerduty-resolve",
            _pattern(stage_ref, ["remediated", "undone", "acknowledged", "denied"], ["critical"]),
        ),
    }
    queue_arn = {"Fn::GetAtt": ["IntegrationsDeadLetters", "Arn"]}
    for logical, (tool, transformer, pattern) in rules.items():
        transformer_spec = INPUT_TRANSFORMERS[transformer]
        resources[logical] = {
            "Type": "AWS::Events::Rule",
            "Properties": {
                "Description": f"trailguard incidents to {tool}",
                "EventBusName": bus,
                "EventPattern": pattern,
                "State": "ENABLED",
                "Targets": [
                    {
                        "Id": tool.lower(),
                        "Arn": {"Fn::GetAtt": [f"{tool}Destination", "Arn"]},
                        "RoleArn": {"Fn::GetAtt": ["InvokeApiDestinationsRole", "Arn"]},
                        "InputTransformer": {
                            "InputPathsMap": transformer_spec["InputPathsMap"],
                            "InputTemplate": _sub(transformer_spec["InputTemplate"]),
                        },
                        "RetryPolicy": {"MaximumRetryAttempts": 185, "MaximumEventAgeInSeconds": 3600},
                        "DeadLetterConfig": {"Arn": queue_arn},
                    }
                ],
            },
        }
    resources["IntegrationsDeadLettersPolicy"] = {
        "Type": "AWS::SQS::QueuePolicy",
        "Properties": {
            "Queues": [{"Ref": "IntegrationsDeadLetters"}],
            "PolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "events.amazonaws.com"},
                        "Action": "sqs:SendMessage",
                        "Resource": queue_arn,
                        "Condition": {"ArnEquals": {"aws:SourceArn": [{"Fn::GetAtt": [r, "Arn"]} for r in rules]}},
                    }
                ],
            },
        },
    }
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": (
            f"trailguard ({stage}): incidents to Jira, ServiceNow and PagerDuty through EventBridge API destinations"
        ),
        "Parameters": params,
        "Resources": resources,
    }
