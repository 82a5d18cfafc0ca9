"""API Gateway access logs for the Slack endpoint: who called the public URL, when, and what
it was answered. Chalice cannot turn them on: the merge template does for the CloudFormation
path (`templates.merge_template`), `bootstrap` does after `chalice deploy` (`ensure_access_logs`).

The format holds only values API Gateway sets itself (ids, time, source address, method, the
matched route, status, sizes, latencies, the kind of error): never the request body (a Slack
payload with its signed response URL), no header, and no text a caller chooses (user agent,
raw path, error messages that repeat it), so each line stays one JSON object whatever is sent.
`integrationRequestId` is the `requestId` of the function's own log line for that request.
"""

from __future__ import annotations

import json
from typing import Any

from trailguard.generate.deployment import APP_NAME

ACCESS_LOG_FIELDS = {
    "requestId": "$context.requestId",
    "extendedRequestId": "$context.extendedRequestId",
    "integrationRequestId": "$context.integration.requestId",
    "requestTime": "$context.requestTime",
    "sourceIp": "$context.identity.sourceIp",
    "httpMethod": "$context.httpMethod",
    "resourcePath": "$context.resourcePath",
    "protocol": "$context.protocol",
    "status": "$context.status",
    "responseLength": "$context.responseLength",
    "responseLatency": "$context.responseLatency",
    "integrationStatus": "$context.integration.status",
    "integrationLatency": "$context.integration.latency",
    "errorType": "$context.error.responseType",
}
ACCESS_LOG_FORMAT = json.dumps(ACCESS_LOG_FIELDS, separators=(",", ":"))
ACCESS_LOG_RETENTION_DAYS = 90
LOGGING_ROLE = "apigateway-cloudwatch-logs"
"""The name the documented commands give API Gateway's account-wide CloudWatch Logs role."""


def access_log_group(stage: str) -> str:
    return f"/{APP_NAME}/{stage}/api-access"


class AccessLogError(Exception):
    """Access logs cannot be turned on; the message says what to do."""


def logging_role_commands(partition: str, account: str) -> list[str]:
    """The AWS CLI commands that give API Gateway its CloudWatch Logs role (once per account and region)."""
    trust = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"Service": "apigateway.amazonaws.com"}, "Action": "sts:AssumeRole"}
            ],
        },
        separators=(",", ":"),
    )
    return [
        f"aws iam create-role --role-name {LOGGING_ROLE} --assume-role-policy-document '{trust}'",
        f"aws iam attach-role-policy --role-name {LOGGING_ROLE} "
        f"--policy-arn arn:{partition}:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs",
        "aws apigateway update-account --patch-operations "
        f"op=replace,path=/cloudwatchRoleArn,value=arn:{partition}:iam::{account}:role/{LOGGING_ROLE}",
    ]


def has_logging_role(apigateway: Any) -> bool:
    """API Gateway writes any log to CloudWatch only through the role its account settings name."""
    return bool(apigateway.get_account().get("cloudwatchRoleArn"))


def ensure_access_logs(apigateway: Any, logs: Any, rest_api_id: str, api_stage: str, log_group: str) -> list[str]:
    """Create the log group (with its retention) and point the stage's access logs at it,
    in `ACCESS_LOG_FORMAT`, unless already so; returns what it did or found."""
    if not has_logging_role(apigateway):
        raise AccessLogError(
            "API Gateway has no CloudWatch Logs role in this account and region (aws apigateway get-account), "
            "so it cannot write access logs; set one (once per account and region), then run bootstrap again"
        )
    done: list[str] = []
    try:
        logs.create_log_group(logGroupName=log_group)
    except logs.exceptions.ResourceAlreadyExistsException:
        pass
    else:
        logs.put_retention_policy(logGroupName=log_group, retentionInDays=ACCESS_LOG_RETENTION_DAYS)
        done.append(f"created log group {log_group} ({ACCESS_LOG_RETENTION_DAYS} days)")
    (group,) = [
        g for g in logs.describe_log_groups(logGroupNamePrefix=log_group)["logGroups"] if g["logGroupName"] == log_group
    ]
    wanted = {"destinationArn": group["arn"].removesuffix(":*"), "format": ACCESS_LOG_FORMAT}
    current = apigateway.get_stage(restApiId=rest_api_id, stageName=api_stage).get("accessLogSettings") or {}
    where = f"REST API {rest_api_id} stage {api_stage}"
    if {key: current.get(key) for key in wanted} == wanted:
        return [*done, f"access logs of {where} are on, to {log_group}"]
    apigateway.update_stage(
        restApiId=rest_api_id,
        stageName=api_stage,
        patchOperations=[
            {"op": "replace", "path": f"/accessLogSettings/{key}", "value": value} for key, value in wanted.items()
        ],
    )
    previous = f" (they went to {current['destinationArn']})" if current.get("destinationArn") else ""
    return [*done, f"turned on the access logs of {where}, to {log_group}{previous}"]
