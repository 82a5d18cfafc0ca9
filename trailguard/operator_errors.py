"""The mistakes operators commonly make, answered in one line each instead of a traceback:
no region, no credentials, a stage not bootstrapped (no table), a missing permission, a
setting or a playbook with a mistake (those already say where, one line per mistake).

`explain` turns an exception into that line and the exit status, or None for anything
else (a bug in trailguard: its traceback is what a bug report needs).
"""

from __future__ import annotations

from typing import Any

from chalicelib.settings import ConfigurationError


def explain(error: BaseException, context: dict[str, Any] | None = None) -> tuple[str, int] | None:
    """(one line, exit status) for an operator's mistake, None for anything else. `context`
    (stage, table) makes the line say which."""
    from botocore import exceptions as botocore_errors

    context = context or {}
    stage = context.get("stage") or "STAGE"
    if isinstance(error, ConfigurationError):
        return str(error), 1
    if isinstance(error, botocore_errors.NoRegionError):
        return (
            "error: no AWS region: set AWS_REGION (or AWS_DEFAULT_REGION), or a region in your AWS profile "
            "(aws configure)",
            2,
        )
    if isinstance(error, (botocore_errors.NoCredentialsError, botocore_errors.PartialCredentialsError)):
        return (
            "error: no AWS credentials: sign in (aws sso login, or AWS_PROFILE / AWS_ACCESS_KEY_ID), then run "
            "the command again",
            2,
        )
    if isinstance(error, botocore_errors.TokenRetrievalError | botocore_errors.SSOTokenLoadError):
        return f"error: your AWS session has expired ({error}): sign in again (aws sso login)", 2
    if isinstance(error, botocore_errors.EndpointConnectionError):
        return f"error: cannot reach AWS ({error}): check the network, the region and AWS_ENDPOINT_URL", 2
    response = getattr(error, "response", None)
    if isinstance(error, botocore_errors.ClientError) and isinstance(response, dict):
        code = response.get("Error", {}).get("Code", "")
        message = response.get("Error", {}).get("Message", "")
        operation = getattr(error, "operation_name", "a call")
        table_calls = ("GetItem", "PutItem", "Query", "Scan", "DescribeTable")
        if code == "ResourceNotFoundException" and operation in table_calls:
            table = context.get("table") or "the stage's table"
            return (
                f"error: {table} does not exist in this account and region: bootstrap the stage first "
                f"(python -m trailguard bootstrap --stage {stage}), or check AWS_REGION",
                1,
            )
        if code in ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation"):
            return (
                f"error: AWS refused {operation} to these credentials ({message}); docs/operating.md lists what "
                "an operator needs (python -m trailguard policy --stage STAGE --operator prints it)",
                1,
            )
        if code in ("ExpiredToken", "ExpiredTokenException", "InvalidClientTokenId", "UnrecognizedClientException"):
            return f"error: AWS does not accept these credentials ({code}): sign in again", 2
    return None
