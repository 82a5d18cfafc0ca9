"""Containing a Lambda function that may be compromised (GuardDuty's Lambda Protection
findings): close what lets anyone on the internet call it, and keep what it was for undo.

`lambda.contain_function` switches a function URL of auth type NONE to AWS_IAM and takes out
of the function's resource policy the statements anyone may use (`*` without a condition
that pins the caller to the organization, judged as `lambda.remove_permission`'s playbooks
judge them). The function is not stopped: its other triggers (queues, schedules, event
source mappings, callers with IAM permissions) keep invoking it, and an invocation already
running finishes. Only the unqualified function is contained (an alias's own URL or policy
is left to a person).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from chalicelib.actions import tags
from chalicelib.actions.base import (
    TRUSTED_ACCOUNTS,
    TRUSTED_ORGANIZATIONS,
    Action,
    ActionError,
    Parameter,
    register,
    trusted_by,
)
from chalicelib.actions.lambda_ import FUNCTION, _add_permission_arguments
from chalicelib.aws.resource_policies import open_to_everyone


@register
class ContainFunction(Action):
    """Contain a Lambda function: its function URL, if open to anyone (AuthType NONE), now
    asks for AWS credentials (AWS_IAM: unsigned requests get 403 at once), and the statements
    of its resource policy that let anyone invoke it are taken out (kept for undo). What the
    URL served to the internet (a webhook, a public API) stops answering; the function keeps
    running on its other triggers and for callers with IAM permissions, and invocations
    already running finish: it is not stopped (set its reserved concurrency to 0 for that).

    Undo switches the URL back to NONE and adds back exactly the statements it took out, and
    refuses if the URL or the function's public statements changed since.

    Example:

        steps:
          - action: lambda.contain_function
            with:
              function: requestParameters.functionName
              trusted_accounts: named_list('trusted_accounts')
              trusted_organizations: named_list('trusted_organizations')
    """

    name = "lambda.contain_function"
    service = "lambda"
    permissions = {
        "lambda:ListTags": FUNCTION,
        "lambda:GetFunctionUrlConfig": FUNCTION,
        "lambda:UpdateFunctionUrlConfig": FUNCTION,
        "lambda:GetPolicy": FUNCTION,
        "lambda:RemovePermission": FUNCTION,
        "lambda:AddPermission": FUNCTION,
    }
    parameters = (
        Parameter("function", "string", "Name or ARN of the function (without a qualifier)."),
        TRUSTED_ACCOUNTS,
        TRUSTED_ORGANIZATIONS,
    )

    def resource_tags(self) -> dict[str, str] | None:
        return tags.function_tags(self.client, self.params["function"], self.context.account, self.context.region)

    def _url_auth_type(self) -> str | None:
        try:
            return str(self.client.get_function_url_config(FunctionName=self.params["function"])["AuthType"])
        except self.client.exceptions.ResourceNotFoundException:
            return None

    def _public_statements(self) -> list[dict[str, Any]]:
        try:
            policy = json.loads(self.client.get_policy(FunctionName=self.params["function"])["Policy"])
        except self.client.exceptions.ResourceNotFoundException:
            return []
        public = open_to_everyone(policy, trusted_by(self))
        return sorted((dict(s) for s in public if isinstance(s, Mapping)), key=lambda s: str(s.get("Sid")))

    def snapshot(self) -> dict[str, Any]:
        return {
            "Function": self.params["function"],
            "UrlAuthType": self._url_auth_type(),
            "PublicStatements": self._public_statements(),
        }

    def check(self, state: Mapping[str, Any]) -> bool:
        return state["UrlAuthType"] != "NONE" and not state["PublicStatements"]

    def apply(self, state: Mapping[str, Any]) -> None:
        unnamed = [s for s in state["PublicStatements"] if not s.get("Sid")]
        if unnamed:
            raise ActionError(f"function {state['Function']} has a public statement without a Sid: fix it by hand")
        if state["UrlAuthType"] == "NONE":
            self.client.update_function_url_config(FunctionName=state["Function"], AuthType="AWS_IAM")
        for statement in state["PublicStatements"]:
            self.client.remove_permission(FunctionName=state["Function"], StatementId=statement["Sid"])
        done = (["its URL asks for AWS credentials (AWS_IAM)"] if state["UrlAuthType"] == "NONE" else []) + (
            [f"{len(state['PublicStatements'])} public statement(s) taken out"] if state["PublicStatements"] else []
        )
        self.note = "; ".join(done)

    def restore(self, state: Mapping[str, Any]) -> None:
        for statement in state["PublicStatements"]:
            self.client.add_permission(FunctionName=state["Function"], **_add_permission_arguments(statement))
        if state["UrlAuthType"] == "NONE":
            self.client.update_function_url_config(FunctionName=state["Function"], AuthType="NONE")
