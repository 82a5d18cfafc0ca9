"""Lambda remediations: close a function to the world. (`lambda` is a Python keyword,
hence the module's name; the actions are `lambda.*`.)"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from chalicelib.actions import tags
from chalicelib.actions.base import Action, Parameter, ResourceType, register

FUNCTION = ResourceType("Function", ("arn:*:lambda:*:*:function:*",))
"""A Lambda function."""


def _add_permission_arguments(statement: Mapping[str, Any]) -> dict[str, Any]:
    """AddPermission's arguments that re-create a statement of a function's policy."""
    principal = statement["Principal"]
    if isinstance(principal, Mapping):
        principal = principal.get("Service") or principal.get("AWS")
    arguments: dict[str, Any] = {"StatementId": statement["Sid"], "Action": statement["Action"], "Principal": principal}
    for conditions in (statement.get("Condition") or {}).values():
        for key, value in conditions.items():
            lowered = key.lower()
            if lowered == "aws:sourcearn":
                arguments["SourceArn"] = value
            elif lowered == "aws:sourceaccount":
                arguments["SourceAccount"] = value
            elif lowered == "aws:principalorgid":
                arguments["PrincipalOrgID"] = value
            elif lowered == "lambda:functionurlauthtype":
                arguments["FunctionUrlAuthType"] = value
            elif lowered == "lambda:invokedviafunctionurl":
                arguments["InvokedViaFunctionUrl"] = str(value).lower() == "true"
    return arguments


@register
class RemovePermission(Action):
    """Remove one statement from a function's resource policy (the one AddPermission added).

    A statement with Principal `*` and no source condition lets anyone invoke the function:
    a backdoor. Undo adds the same statement back. A function with a function URL of auth
    type NONE needs public statements (`lambda:InvokeFunctionUrl`, and since October 2025
    `lambda:InvokeFunction` with `lambda:InvokedViaFunctionUrl`): an automatic step is then
    proposed instead.

    Example:

        steps:
          - action: lambda.remove_permission
            with: {function: requestParameters.functionName, statement: requestParameters.statementId}
    """

    name = "lambda.remove_permission"
    service = "lambda"
    permissions = {
        "lambda:ListTags": FUNCTION,
        "lambda:GetPolicy": FUNCTION,
        "lambda:RemovePermission": FUNCTION,
        "lambda:AddPermission": FUNCTION,
        "lambda:GetFunctionUrlConfig": FUNCTION,
    }
    parameters = (
        Parameter("function", "string", "Name or ARN of the function."),
        Parameter("statement", "string", "The statement id (Sid)."),
        Parameter("qualifier", "string", "Version or alias the permission was added to.", required=False),
    )

    def resource_tags(self) -> dict[str, str] | None:
        return tags.function_tags(self.client, self.params["function"], self.context.account, self.context.region)

    def _qualifier(self) -> dict[str, str]:
        return {"Qualifier": self.params["qualifier"]} if self.params.get("qualifier") else {}

    def snapshot(self) -> dict[str, Any]:
        try:
            policy = json.loads(
                self.client.get_policy(FunctionName=self.params["function"], **self._qualifier())["Policy"]
            )
        except self.client.exceptions.ResourceNotFoundException:
            policy = {"Statement": []}
        statement = next((s for s in policy.get("Statement", []) if s.get("Sid") == self.params["statement"]), None)
        return {"Function": self.params["function"], "Statement": statement}

    def workload(self) -> str | None:
        try:
            url = self.client.get_function_url_config(FunctionName=self.params["function"], **self._qualifier())
        except self.client.exceptions.ResourceNotFoundException:
            return None
        if url.get("AuthType") != "NONE":
            return None
        return (
            f"function {self.params['function']} has a function URL open to the internet (AuthType NONE, "
            f"{url.get('FunctionUrl', 'its URL')}): its public statements are how callers such as webhooks reach it"
        )

    def check(self, state: Mapping[str, Any]) -> bool:
        return state["Statement"] is None

    def apply(self, state: Mapping[str, Any]) -> None:
        self.client.remove_permission(
            FunctionName=state["Function"], StatementId=self.params["statement"], **self._qualifier()
        )

    def restore(self, state: Mapping[str, Any]) -> None:
        if state["Statement"] is not None:
            self.client.add_permission(
                FunctionName=state["Function"], **_add_permission_arguments(state["Statement"]), **self._qualifier()
            )
