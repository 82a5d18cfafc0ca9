"""A stage as `chalice deploy` leaves it, on moto: roles, functions, and the rules and targets
made by Chalice's own client code (`TypedAWSClient`), the table bootstrap makes, and the
log group Lambda makes on first use (no retention)."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import boto3

from tests.conftest import REGION
from trailguard.bootstrap import ensure_table
from trailguard.generate.operations import StageLayout

LAYOUT = StageLayout("dev", table="trailguard-dev")
PATTERN = {"source": [{"prefix": "aws."}], "detail-type": ["AWS API Call via CloudTrail"]}


def client(service: str) -> Any:
    return boto3.client(service, region_name=REGION)


def chalice_deploys_the_rules(layout: StageLayout = LAYOUT) -> None:
    """What `chalice deploy` does for each rule, by Chalice's own AWS client code (its
    `TypedAWSClient`): the rule, then its target put again as {"Id": "1", "Arn": function}."""
    import botocore.session
    from chalice.awsclient import TypedAWSClient

    session = botocore.session.get_session()
    session.set_config_variable("region", REGION)
    chalice = TypedAWSClient(session)
    for function in layout.targeted_functions:
        arn = client("lambda").get_function(FunctionName=layout.function_name(function))["Configuration"]["FunctionArn"]
        rule = layout.rule_name(function)
        if function in layout.scheduled_functions:
            chalice.get_or_create_rule_arn(rule, schedule_expression="rate(15 minutes)")
        else:
            chalice.get_or_create_rule_arn(rule, event_pattern=json.dumps(PATTERN))
        chalice.connect_rule_to_lambda(rule, arn)


def make_stage() -> StageLayout:
    """What `chalice deploy --stage dev` leaves (in moto, already mocked), with bootstrap's
    table, and the log group Lambda makes on first use (kept forever)."""
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("app.py", "def handler(event, context):\n    return event\n")
    trust = {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
    for function in LAYOUT.all_functions:
        role = client("iam").create_role(
            RoleName=f"trailguard-dev-{function}",
            AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [trust]}),
        )
        client("lambda").create_function(
            FunctionName=LAYOUT.function_name(function),
            Runtime="python3.13",
            Role=role["Role"]["Arn"],
            Handler="app.handler",
            Code={"ZipFile": code.getvalue()},
        )
    chalice_deploys_the_rules()
    client("logs").create_log_group(logGroupName=LAYOUT.log_group("respond_to_cloudtrail"))
    ensure_table(client("dynamodb"), "trailguard-dev")
    return LAYOUT
