"""Nothing dropped: a dead-letter queue per background function, the retry policy and
dead-letter config on its rule's target, an on-failure destination for its asynchronous
invocations, and a log group with retention for every function.

Two things can fail to finish an event, and AWS keeps them apart:
- EventBridge cannot hand the event to Lambda (throttled, the function or its permission
  gone): it retries per the target's RetryPolicy, then puts the event itself in the
  target's DeadLetterConfig queue, with RULE_ARN, TARGET_ARN, ERROR_CODE, ERROR_MESSAGE...
  as message attributes. This does not catch a function that fails: EventBridge invokes
  Lambda asynchronously, and once Lambda took the event, EventBridge's job is done.
- Lambda took the event but the function failed every attempt: Lambda retries per the
  function's EventInvokeConfig, then sends an invocation record (`requestPayload` holds the
  event) to the OnFailure destination, with the function's own role.
Both land in the function's one queue: one place to look, one place `redrive` reads.

`cfn_*` return CloudFormation for the merge template; `queue_policy` is shared with
`bootstrap` (`trailguard.operations`), which does the same with boto3 after `chalice deploy`.
"""

from __future__ import annotations

from typing import Any

from trailguard.generate.operations import (
    QUEUE_RETENTION_SECONDS,
    StageLayout,
    event_logical_id,
    function_logical_id,
    log_group_logical_id,
    queue_logical_id,
    role_logical_id,
)


def queue_policy(queue_arn: Any, rule_arn: Any | None, role_arn: Any) -> dict[str, Any]:
    """What may write to the queue: EventBridge, for this function's rule only (aws:SourceArn:
    no other rule of the account can fill it), and the function's own role (Lambda sends what
    fails every retry with it); nobody else, whatever their IAM policy allows, since `redrive`
    hands each message to the function as an event AWS delivered. Nothing over plain HTTP."""
    outsiders: dict[str, Any] = {"aws:PrincipalArn": role_arn}
    if rule_arn is not None:
        outsiders["aws:SourceArn"] = rule_arn
    statements: list[dict[str, Any]] = [
        {
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "sqs:*",
            "Resource": queue_arn,
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        },
        {
            # Denied unless the sender is the function's role or (for EventBridge, which has
            # no principal ARN) the request comes from the function's rule: the keys of one
            # condition operator must all hold for the deny to apply.
            "Sid": "OnlyTheRuleAndTheFunctionWrite",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "sqs:SendMessage",
            "Resource": queue_arn,
            "Condition": {"ArnNotEquals": outsiders},
        },
    ]
    if rule_arn is not None:
        statements.append(
            {
                "Sid": "EventBridgeDeadLetters",
                "Effect": "Allow",
                "Principal": {"Service": "events.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}},
            }
        )
    return {"Version": "2012-10-17", "Statement": statements}


def send_statement(layout: StageLayout) -> dict[str, Any]:
    """The acting roles' permission to send a failed invocation to the stage's dead-letter
    queues (in the stage's IAM policy file, which both deployment paths give the roles)."""
    return {
        "Sid": "FailedInvocationsToDeadLetterQueues",
        "Effect": "Allow",
        "Action": "sqs:SendMessage",
        "Resource": [f"arn:*:sqs:*:*:{layout.dead_letter_queue(f)}" for f in layout.background_functions],
    }


def _rule_arn(layout: StageLayout, function: str) -> dict[str, str]:
    rule = layout.rule_name(function)
    return {"Fn::Sub": f"arn:${{AWS::Partition}}:events:${{AWS::Region}}:${{AWS::AccountId}}:rule/{rule}"}


def cfn_dead_letter_queues(layout: StageLayout) -> dict[str, Any]:
    resources: dict[str, Any] = {}
    for function in layout.background_functions:
        queue = queue_logical_id(function)
        targeted = function in layout.targeted_functions
        resources[queue] = {
            "Type": "AWS::SQS::Queue",
            "Properties": {
                "QueueName": layout.dead_letter_queue(function),
                "MessageRetentionPeriod": QUEUE_RETENTION_SECONDS,
                "SqsManagedSseEnabled": True,
            },
        }
        resources[f"{queue}Policy"] = {
            "Type": "AWS::SQS::QueuePolicy",
            "Properties": {
                "Queues": [{"Ref": queue}],
                "PolicyDocument": queue_policy(
                    {"Fn::GetAtt": [queue, "Arn"]},
                    _rule_arn(layout, function) if targeted else None,
                    {"Fn::GetAtt": [role_logical_id(function), "Arn"]},
                ),
            },
        }
    return resources


def cfn_rule_targets(layout: StageLayout) -> dict[str, Any]:
    """Merge fragments for the events `chalice package` writes: each rule gets the name
    `chalice deploy` gives it, a dead-letter queue and a retry policy. SAM passes
    DeadLetterConfig (with `Arn`, it makes no queue of its own) and RetryPolicy on to the
    target; it names the rule from `RuleName` for a CloudWatchEvent but from `Name` for a
    Schedule (checked by transforming the merged template with samtranslator)."""
    fragments: dict[str, Any] = {}
    for function in layout.targeted_functions:
        name_key = "Name" if function in layout.scheduled_functions else "RuleName"
        fragments[function_logical_id(layout, function)] = {
            "Properties": {
                "Events": {
                    event_logical_id(function): {
                        "Properties": {
                            name_key: layout.rule_name(function),
                            "DeadLetterConfig": {"Arn": {"Fn::GetAtt": [queue_logical_id(function), "Arn"]}},
                            "RetryPolicy": layout.retry_policy(function).to_api(),
                        }
                    }
                }
            }
        }
    return fragments


def cfn_async_failure_destinations(layout: StageLayout) -> dict[str, Any]:
    """Lambda's retries for each background function, then its queue."""
    resources: dict[str, Any] = {}
    for function in layout.background_functions:
        policy = layout.async_policy(function)
        resources[f"{function_logical_id(layout, function)}AsyncConfig"] = {
            "Type": "AWS::Lambda::EventInvokeConfig",
            "Properties": {
                "FunctionName": {"Ref": function_logical_id(layout, function)},
                "Qualifier": "$LATEST",
                "MaximumRetryAttempts": policy.maximum_retry_attempts,
                "MaximumEventAgeInSeconds": policy.maximum_event_age_seconds,
                "DestinationConfig": {
                    "OnFailure": {"Destination": {"Fn::GetAtt": [queue_logical_id(function), "Arn"]}}
                },
            },
        }
    return resources


def cfn_log_groups(layout: StageLayout) -> dict[str, Any]:
    """`/aws/lambda/<function>` for every function, with retention. Lambda would create it on
    first use, kept (and billed) forever; declared here and made before the function
    (`cfn_functions_after_log_groups`), the stack owns it. A group Lambda made already must
    be deleted or imported first (CloudFormation refuses a name that exists): bootstrap sets
    retention on existing groups instead."""
    return {
        log_group_logical_id(function): {
            "Type": "AWS::Logs::LogGroup",
            # what trailguard did and why: kept when the stack goes, like the incidents
            "DeletionPolicy": "Retain",
            "UpdateReplacePolicy": "Retain",
            "Properties": {
                "LogGroupName": layout.log_group(function),
                "RetentionInDays": layout.ops.log_retention_days,
            },
        }
        for function in layout.all_functions
    }


def cfn_functions_after_log_groups(layout: StageLayout) -> dict[str, Any]:
    """Each function waits for its log group, so no invocation can create the group first."""
    return {
        function_logical_id(layout, function): {"DependsOn": [log_group_logical_id(function)]}
        for function in layout.all_functions
    }
