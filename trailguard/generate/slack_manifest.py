"""`trailguard slack-manifest --stage prod`: the stage's Slack app manifest, so that the app is
created by pasting one file (api.slack.com/apps -> Create New App -> From a manifest).

Slack's app manifest reference (https://docs.slack.dev/reference/app-manifest) and the JSON
schema Slack publishes for it (github.com/slackapi/manifest-schema). The scopes are what
trailguard calls and no more: `chat:write` (chat.postMessage, chat.update), and
`usergroups:read` (usergroups.users.list) only when the stage or a playbook names a user
group among its approvers. `chat:write.public` is left out on purpose: invite the bot to
its channels. No events, no slash commands: trailguard posts, and receives button presses
at `<API endpoint>/slack/interactions`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

INTERACTIONS_PATH = "slack/interactions"
"""The route app.py answers button presses on."""
SCOPES = {
    "chat:write": "chat.postMessage and chat.update: post each incident and keep its message up to date",
    "usergroups:read": "usergroups.users.list: the members of approvers named by user group (S...)",
}
NAME_LIMIT, DESCRIPTION_LIMIT = 35, 140


class ManifestError(ValueError):
    """The manifest cannot be made; the message says what is missing."""


def interactions_url(endpoint: str) -> str:
    """`https://<api>.execute-api.<region>.amazonaws.com/api/` -> `.../api/slack/interactions`."""
    parts = urlsplit(endpoint)
    if parts.scheme != "https" or not parts.netloc:
        raise ManifestError(f"the API endpoint must be an https URL, not {endpoint!r}")
    return endpoint.rstrip("/") + "/" + INTERACTIONS_PATH


def scopes(approvers: Iterable[str]) -> list[str]:
    return ["chat:write", *(["usergroups:read"] if any(a.startswith("S") for a in approvers) else [])]


def manifest(stage: str, endpoint: str, approvers: Iterable[str] = (), bot_name: str | None = None) -> dict[str, Any]:
    """`approvers`: every approver the stage and its playbooks name (user and user-group ids)."""
    name = bot_name or ("trailguard" if stage == "prod" else f"trailguard {stage}")
    if not 1 <= len(name) <= NAME_LIMIT:
        raise ManifestError(f"the app name {name!r} has {len(name)} characters; Slack takes 1 to {NAME_LIMIT}")
    description = f"Answers dangerous AWS API calls ({stage}): remediations, approvals and undo."
    return {
        "_metadata": {"major_version": 1, "minor_version": 1},
        "display_information": {
            "name": name,
            "description": description[:DESCRIPTION_LIMIT],
            "background_color": "#1d3b53",
        },
        "features": {"bot_user": {"display_name": name, "always_online": True}},
        "oauth_config": {"scopes": {"bot": scopes(approvers)}},
        "settings": {
            "interactivity": {"is_enabled": True, "request_url": interactions_url(endpoint)},
            "org_deploy_enabled": False,
            "socket_mode_enabled": False,
            "token_rotation_enabled": False,
        },
    }


def endpoint_from_deployed(stage: str, chalice_dir: Path) -> str:
    """The REST API's URL `chalice deploy` recorded for the stage (`.chalice/deployed/<stage>.json`)."""
    path = chalice_dir / "deployed" / f"{stage}.json"
    try:
        resources = json.loads(path.read_text()).get("resources", [])
    except (OSError, ValueError, AttributeError) as error:
        raise ManifestError(
            f"{path}: {error}; deploy the stage first, or give --endpoint-url (a CloudFormation stack's "
            "EndpointURL output)"
        ) from None
    for resource in resources:
        if resource.get("resource_type") == "rest_api" and resource.get("rest_api_url"):
            return str(resource["rest_api_url"])
    raise ManifestError(f"{path} records no REST API; give --endpoint-url")
