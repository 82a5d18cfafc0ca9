"""The JSON Schema of a playbook file: one definition for the loader and for editors.

`playbooks/playbook.schema.json` is this schema written out, so that editors complete and
check keys, and `schema_validator.py` the code that checks a playbook against it (generated
once, not at every cold start); `python -m trailguard schema --write` writes both, and a
test keeps them identical to this schema. Descriptions double as the "expected" part of
error messages, so they say what to write.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalicelib.formats import SLACK_APPROVER, SLACK_CHANNEL
from chalicelib.named_lists import LISTS

MODES = ("auto", "approve", "notify", "dry-run")
LOWER_MODES = ("approve", "notify")
"""The modes `instead:` may lower a playbook to: each does less on its own than the one above it."""
MODE_ORDER = {"auto": 2, "approve": 1, "notify": 0}
SEVERITIES = ("low", "medium", "high", "critical")

_EXPRESSION = {
    "type": "string",
    "minLength": 1,
    "description": "a JMESPath expression over the CloudTrail record; write a literal as 'text' or `7`",
}

_STEP_ACTION = {"type": "string", "description": "a registered action, such as cloudtrail.start_logging"}
_STEP_WITH = {
    "type": "object",
    "additionalProperties": _EXPRESSION,
    "description": "the action's parameters, each a JMESPath expression",
}
"""A step's two keys, the same in `steps:` and in `contain:` (which adds `unless:`)."""

_EXPECTED_STEP = {
    "description": "an action name, or {action: NAME, params: {...}} with the resolved values",
    "anyOf": [
        {"type": "string", "minLength": 1},
        {
            "type": "object",
            "additionalProperties": False,
            "required": ["action"],
            "properties": {
                "action": {"type": "string", "description": "the action's name"},
                "params": {
                    "type": "object",
                    "description": "parameters as resolved from the event (values, not expressions)",
                },
            },
        },
    ],
}

SCHEMA: dict[str, Any] = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "title": "trailguard playbook",
    "description": "Which CloudTrail events a playbook answers, and what it does about them.",
    "type": "object",
    "additionalProperties": False,
    "required": ["id", "title", "severity", "when", "mode"],
    "properties": {
        "id": {
            "type": "string",
            "pattern": "^[a-z0-9][a-z0-9-]{1,62}$",
            "description": "a stable id of lower-case letters, digits and dashes (up to 63)",
        },
        "version": {
            "type": "integer",
            "minimum": 1,
            "description": "a whole number raised when the playbook's behaviour changes (default 1)",
        },
        "title": {"type": "string", "minLength": 1, "maxLength": 150, "description": "a short title for messages"},
        "severity": {"enum": list(SEVERITIES), "description": "one of " + ", ".join(SEVERITIES)},
        "description": {"type": "string", "description": "why this event matters, for the person on call"},
        "when": {
            "type": "object",
            "additionalProperties": False,
            "required": ["source", "events"],
            "description": "the CloudTrail events, or the detectors' findings, this playbook answers",
            "properties": {
                "source": {
                    "type": "string",
                    "pattern": "^([a-z0-9-]+(\\.[a-z0-9-]+)*\\.amazonaws\\.com"
                    "|guardduty|securityhub|cloudtrail-insights)$",
                    "description": "the eventSource, such as cloudtrail.amazonaws.com; or guardduty, securityhub, "
                    "cloudtrail-insights for their findings",
                },
                "events": {
                    "type": "array",
                    "minItems": 1,
                    "uniqueItems": True,
                    "items": {
                        "type": "string",
                        "pattern": "^\\S(.*\\S)?$",
                        "description": "an eventName, such as StopLogging; a GuardDuty finding type, a Security Hub "
                        "product name, an Insights type (ApiCallRateInsight, ApiErrorRateInsight)",
                    },
                    "description": "a list of eventNames, such as [StopLogging]",
                },
                "if": {**_EXPRESSION, "description": "a JMESPath condition that must be true to act"},
                "unless": {
                    "description": "a JMESPath condition, or a list of them, any of which suppresses the playbook",
                    "anyOf": [_EXPRESSION, {"type": "array", "minItems": 1, "items": _EXPRESSION}],
                },
            },
        },
        "mode": {"enum": list(MODES), "description": "one of " + ", ".join(MODES)},
        "instead": {
            "type": "array",
            "minItems": 1,
            "description": "a lower mode for some of the calls: the first entry whose `if` holds gives its mode, "
            "with the reason people are told",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["mode", "if", "because"],
                "description": "{mode: approve|notify, if: EXPRESSION, because: TEXT}",
                "properties": {
                    "mode": {"enum": list(LOWER_MODES), "description": "approve or notify, below the playbook's mode"},
                    "if": {**_EXPRESSION, "description": "a JMESPath condition on what AWS asserts about the call"},
                    "because": {
                        "type": "string",
                        "minLength": 1,
                        "description": "why the lower mode, in a sentence people read in the message",
                    },
                },
            },
        },
        "approval": {
            "type": "object",
            "additionalProperties": False,
            "description": "how a proposal (mode approve) waits for a person",
            "properties": {
                "timeout": {
                    "type": "string",
                    "pattern": "^[1-9][0-9]*[mhd]$",
                    "description": "how long a proposal waits before it expires, such as 30m, 4h or 2d (default 24h)",
                },
            },
        },
        "slack": {
            "type": "object",
            "additionalProperties": False,
            "description": "where this playbook's messages go and who may press their buttons",
            "properties": {
                "channel": {
                    "type": "string",
                    "pattern": SLACK_CHANNEL,
                    "description": "a channel id (C0123ABCD) or #name (default TRAILGUARD_SLACK_CHANNEL)",
                },
                "approvers": {
                    "type": "array",
                    "minItems": 1,
                    "uniqueItems": True,
                    "items": {
                        "type": "string",
                        "pattern": SLACK_APPROVER,
                        "description": "a Slack user id (U0123ABCD) or user-group id (S0123ABCD)",
                    },
                    "description": "Slack user and user-group ids that may approve, deny, undo, retry and "
                    "acknowledge (default TRAILGUARD_SLACK_APPROVERS)",
                },
            },
        },
        "steps": {
            "type": "array",
            "description": "the actions to take, in order",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["action"],
                "description": "a step: {action: NAME, with: {PARAMETER: EXPRESSION}}",
                "properties": {
                    "action": _STEP_ACTION,
                    "with": _STEP_WITH,
                },
            },
        },
        "contain": {
            "type": "array",
            "description": "the second response: steps that contain who did it (revoke their sessions, quarantine "
            "them), proposed in the same incident once the steps above are done, and run only when a person "
            "approves; a step whose principal is null for the event (a role step for a user's call) is left out",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["action"],
                "description": "a step: {action: NAME, with: {PARAMETER: EXPRESSION}}",
                "properties": {
                    "action": _STEP_ACTION,
                    "unless": {
                        **_EXPRESSION,
                        "description": "a JMESPath condition that leaves this containment out (a pipeline's role)",
                    },
                    "with": _STEP_WITH,
                },
            },
        },
        "tests": {
            "type": "array",
            "description": "examples that must keep behaving as written (python -m trailguard test)",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name", "event", "expect"],
                "description": "a test: {name, event, expect}, and the named_lists it sets",
                "properties": {
                    "name": {"type": "string", "minLength": 1, "description": "what the test shows"},
                    "event": {
                        "description": "a CloudTrail record or EventBridge event, or the path of a file holding one",
                        "anyOf": [{"type": "object"}, {"type": "string", "minLength": 1}],
                    },
                    "named_lists": {
                        "type": "object",
                        "additionalProperties": False,
                        "description": "the organization's named lists as this test sees them, such as "
                        "{trusted_organizations: [o-a1b2c3d4e5]}; settings play no part, and the event's own "
                        "account is always trusted",
                        "properties": {
                            name: {
                                "type": "array",
                                "items": {
                                    "type": "string",
                                    "pattern": f"^{kind.pattern.pattern}$",
                                    "description": kind.expected,
                                },
                                "description": kind.meaning,
                            }
                            for name, kind in LISTS.items()
                        },
                    },
                    "expect": {
                        "description": "ignore, or {mode: MODE, steps: [...]} for the plan the event must produce",
                        "anyOf": [
                            {"const": "ignore"},
                            {
                                "type": "object",
                                "additionalProperties": False,
                                "properties": {
                                    "mode": {"enum": list(MODES), "description": "the mode the plan must have"},
                                    "steps": {
                                        "type": "array",
                                        "items": _EXPECTED_STEP,
                                        "description": "the planned steps, in order",
                                    },
                                },
                            },
                        ],
                    },
                },
            },
        },
    },
}


def validator() -> Callable[[Any], Any]:
    """The compiled validator: fastjsonschema's code for this schema (`schema_validator`)."""
    from chalicelib.playbooks.schema_validator import validate

    return validate
