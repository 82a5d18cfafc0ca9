"""The actions playbooks can call, one module per AWS service.

Importing this package registers every built-in action; `registered_actions()` lists them.
"""

from chalicelib.actions import (  # noqa: F401 - imported to register
    annotate,
    cloudtrail,
    config,
    ec2,
    guardduty,
    iam,
    kms,
    lambda_,
    rds,
    s3,
)
from chalicelib.actions.base import (
    Action,
    ActionError,
    Parameter,
    UndoRefused,
    registered_actions,
)

__all__ = ["Action", "ActionError", "Parameter", "UndoRefused", "registered_actions"]
