"""docs/slack-messages.md: one rendered message of each kind, as Slack will show it.

Generated (`python -m trailguard docs`) from the same `render` the Lambda uses, so a
reviewer sees the real Block Kit JSON and can open each in Slack's Block Kit Builder; a
test fails when the file is stale. The incidents are built from a real Stratus Red Team
StopLogging record and hand-written records of other playbooks, with fixed times.
"""

from __future__ import annotations

import json
from typing import Any

from chalicelib.events.record import CloudTrailEvent
from chalicelib.incidents.model import HistoryEntry, Incident, State, StepResult, StepStatus, incident_id
from chalicelib.playbooks.catalog import Catalog
from chalicelib.playbooks.plan import PlannedStep
from chalicelib.playbooks.playbook import Playbook
from chalicelib.slack.messages import DIGEST_SIZE, block_kit_builder_url, render, render_digest
from trailguard import PROJECT

EXAMPLES_FILE = PROJECT / "docs" / "slack-messages.md"
APPROVER = "slack:U0123ABCD"

_STOP_LOGGING = {  # Stratus Red Team, aws.defense-evasion.cloudtrail-stop (Apache-2.0), trimmed
    "eventVersion": "1.10",
    "eventID": "10163ed2-2253-469d-a5ee-cbc6651f8934",
    "eventTime": "2024-07-31T13:06:24Z",
    "eventSource": "cloudtrail.amazonaws.com",
    "eventName": "StopLogging",
    "awsRegion": "us-east-1",
    "eventType": "AwsApiCall",
    "readOnly": False,
    "recipientAccountId": "143434273843",
    "sourceIPAddress": "86.245.153.234",
    "userAgent": "stratus-red-team_c97089f1-1ae3-4ecc-b006-f5e8fd0f2571",
    "userIdentity": {
        "type": "IAMUser",
        "accountId": "143434273843",
        "arn": "arn:aws:iam::143434273843:user/christophe",
        "userName": "christophe",
    },
    "requestParameters": {"name": "stratus-red-team-ct-stop-trail-buykxbqejv"},
    "responseElements": None,
}
_BUCKET_POLICY = {
    "eventVersion": "1.09",
    "eventID": "7f5c2b4e-51e4-4c3e-9a53-0d9f7f0c1d2a",
    "eventTime": "2026-11-26T03:12:45Z",
    "eventSource": "s3.amazonaws.com",
    "eventName": "PutBucketPolicy",
    "awsRegion": "eu-west-1",
    "eventType": "AwsApiCall",
    "readOnly": False,
    "recipientAccountId": "111122223333",
    "sourceIPAddress": "203.0.113.7",
    "userAgent": "[aws-cli/2.15.0 Python/3.11.6 Linux/6.1 exe/x86_64]",
    "userIdentity": {
        "type": "AssumedRole",
        "accountId": "111122223333",
        "arn": "arn:aws:sts::111122223333:assumed-role/ci-deployer/gitlab-runner-4411",
        "sessionContext": {
            "sessionIssuer": {"userName": "ci-deployer", "arn": "arn:aws:iam::111122223333:role/ci-deployer"}
        },
    },
    "requestParameters": {"bucketName": "customer-exports"},
    "responseElements": None,
}
_CONSOLE_LOGIN = {
    "eventVersion": "1.09",
    "eventID": "c0a8d1e2-3f4b-4c5d-8e9f-0a1b2c3d4e5f",
    "eventTime": "2026-11-26T02:58:10Z",
    "eventSource": "signin.amazonaws.com",
    "eventName": "ConsoleLogin",
    "awsRegion": "us-east-1",
    "eventType": "AwsConsoleSignIn",
    "readOnly": False,
    "recipientAccountId": "111122223333",
    "sourceIPAddress": "198.51.100.23",
    "userAgent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/132.0",
    "userIdentity": {
        "type": "IAMUser",
        "accountId": "111122223333",
        "arn": "arn:aws:iam::111122223333:user/ops-admin",
        "userName": "ops-admin",
    },
    "requestParameters": None,
    "responseElements": {"ConsoleLogin": "Success"},
}
_TRAIL = "stratus-red-team-ct-stop-trail-buykxbqejv"
_START = PlannedStep("cloudtrail.start_logging", {"trail": _TRAIL})
_POLICY = PlannedStep("s3.remove_public_policy_statements", {"bucket": "customer-exports"})
_QUARANTINE = PlannedStep("iam.quarantine_user", {"user": "christophe"}, contain=True)
ACCOUNT_NAMES = {"111122223333": "payments-prod"}


def _incident(
    playbook: Playbook,
    record: dict[str, Any],
    state: State,
    plan: list[PlannedStep],
    steps: list[StepResult],
    history: list[HistoryEntry],
    error: str | None = None,
    mode: str | None = None,
) -> Incident:
    return Incident(
        id=incident_id(record["eventID"], playbook.id),
        playbook_id=playbook.id,
        playbook_version=playbook.version,
        title=playbook.title,
        severity=playbook.severity,
        mode=mode or playbook.mode,
        event=CloudTrailEvent.from_record(record).summary(),
        state=state,
        plan=plan,
        steps=steps,
        error=error,
        created_at=history[0].at,
        history=history,
    )


def _h(at: str, who: str, what: str, state: str, detail: str | None = None) -> HistoryEntry:
    return HistoryEntry(at, who, what, State(state), detail)


_OFF = {"Trail": _TRAIL, "IsLogging": False}
_ON = {"Trail": _TRAIL, "IsLogging": True}
_T0, _T1, _T2 = "2026-11-26T03:12:47+00:00", "2026-11-26T03:12:48+00:00", "2026-11-26T03:20:05+00:00"


def examples(catalog: Catalog) -> list[tuple[str, str, Incident]]:
    """(title, when it is sent, incident) for each kind of message, from the built-in playbooks."""
    stop, public_policy, no_mfa = (
        _playbook(catalog, name)
        for name in ("cloudtrail-stop-logging", "s3-bucket-policy-public", "console-login-without-mfa")
    )
    applied = [StepResult(_START.action, _START.params, StepStatus.APPLIED, _OFF, _ON)]
    opened = [_h(_T0, "trailguard", "open", "remediating", "StopLogging by IAMUser christophe")]
    finished = [*opened, _h(_T1, "trailguard", "finish", "remediated")]
    proposal = [_h(_T0, "trailguard", "open", "proposed", "PutBucketPolicy by role ci-deployer/gitlab-runner-4411")]
    return [
        (
            "Remediated (auto mode)",
            "trailguard acted on its own; Undo puts the trail back as the caller left it",
            _incident(stop, _STOP_LOGGING, State.REMEDIATED, [_START], applied, finished),
        ),
        (
            "Proposed (approve mode)",
            "nothing has run; an approver decides",
            _incident(public_policy, _BUCKET_POLICY, State.PROPOSED, [_POLICY], [], proposal),
        ),
        (
            "Failed",
            "a step failed; Retry runs what did not finish",
            _incident(
                stop,
                _STOP_LOGGING,
                State.FAILED,
                [_START],
                [
                    StepResult(
                        _START.action,
                        _START.params,
                        StepStatus.FAILED,
                        error="TrailNotFoundException: Unknown trail",
                    )
                ],
                [
                    *opened,
                    _h(
                        _T1,
                        "trailguard",
                        "fail",
                        "failed",
                        "step 1 (cloudtrail.start_logging): TrailNotFoundException: Unknown trail",
                    ),
                ],
                error="step 1 (cloudtrail.start_logging): TrailNotFoundException: Unknown trail",
            ),
        ),
        (
            "Undo refused",
            "someone changed the resource after trailguard; nothing was touched",
            _incident(
                stop,
                _STOP_LOGGING,
                State.REMEDIATED,
                [_START],
                applied,
                [
                    *finished,
                    _h(_T2, APPROVER, "undo", "undoing"),
                    _h(
                        _T2,
                        "trailguard",
                        "refuse_undo",
                        "remediated",
                        "undo of step 1 (cloudtrail.start_logging): cloudtrail.start_logging: the resource changed "
                        "since trailguard acted (IsLogging: True -> False); nothing was changed",
                    ),
                ],
            ),
        ),
        (
            "Undone",
            "an approver pressed Undo",
            _incident(
                stop,
                _STOP_LOGGING,
                State.UNDONE,
                [_START],
                [StepResult(_START.action, _START.params, StepStatus.UNDONE, _OFF, _ON)],
                [*finished, _h(_T2, APPROVER, "undo", "undoing"), _h(_T2, "trailguard", "finish_undo", "undone")],
            ),
        ),
        (
            "Acknowledged",
            "an approver pressed Acknowledge; the Undo button is gone",
            _incident(
                stop,
                _STOP_LOGGING,
                State.ACKNOWLEDGED,
                [_START],
                applied,
                [*finished, _h(_T2, APPROVER, "acknowledge", "acknowledged")],
            ),
        ),
        (
            "Denied",
            "an approver said no; nothing was changed",
            _incident(
                public_policy,
                _BUCKET_POLICY,
                State.DENIED,
                [_POLICY],
                [],
                [*proposal, _h(_T2, APPROVER, "deny", "denied")],
            ),
        ),
        (
            "Expired",
            "nobody answered within the playbook's approval timeout",
            _incident(
                public_policy,
                _BUCKET_POLICY,
                State.EXPIRED,
                [_POLICY],
                [],
                [
                    *proposal,
                    _h(
                        "2026-11-27T03:15:00+00:00",
                        "trailguard-sweep",
                        "expire",
                        "expired",
                        "nobody answered within 24 hours",
                    ),
                ],
            ),
        ),
        (
            "Containment expired",
            "nobody approved or denied containing the actor within the playbook's approval timeout: the repair "
            "stands, the containment buttons are gone",
            _incident(
                stop,
                _STOP_LOGGING,
                State.REMEDIATED,
                [_START, _QUARANTINE],
                applied,
                [
                    *finished,
                    _h(
                        "2026-11-27T03:15:00+00:00",
                        "trailguard-sweep",
                        "expire_containment",
                        "remediated",
                        "nobody answered the proposal to contain who did it within 24 hours",
                    ),
                ],
            ),
        ),
        (
            "Notified (notify mode)",
            "no safe automatic fix exists; someone should look",
            _incident(
                no_mfa,
                _CONSOLE_LOGIN,
                State.NOTIFIED,
                [],
                [],
                [_h(_T0, "trailguard", "open", "notified", "ConsoleLogin by IAMUser ops-admin")],
            ),
        ),
        (
            "Dry run",
            "the playbook is in dry-run mode: what would have run",
            _incident(
                stop,
                _STOP_LOGGING,
                State.SIMULATED,
                [_START],
                [StepResult(_START.action, _START.params, StepStatus.SIMULATED)],
                [_h(_T0, "trailguard", "open", "simulated", "StopLogging by IAMUser christophe")],
                mode="dry-run",
            ),
        ),
    ]


def digest_example(catalog: Catalog) -> list[Incident]:
    """Three StopLogging incidents of one playbook in one account, with no message yet: what
    the sweep posts as one digest when they came faster than the channel's posting rate."""
    stop = _playbook(catalog, "cloudtrail-stop-logging")
    incidents = []
    for number, (trail, minute) in enumerate((("org-trail", "04"), ("audit-eu", "05"), ("org-trail-backup", "05"))):
        record = {
            **_STOP_LOGGING,
            "eventID": f"5d0c{number}e1a-7b2f-4c1d-9e8a-3f6b2a1c0d9{number}",
            "eventTime": f"2026-11-26T03:{minute}:1{number}Z",
            "recipientAccountId": "111122223333",
            "userIdentity": {
                "type": "IAMUser",
                "accountId": "111122223333",
                "arn": "arn:aws:iam::111122223333:user/christophe",
                "userName": "christophe",
            },
            "requestParameters": {"name": trail},
        }
        start = PlannedStep("cloudtrail.start_logging", {"trail": trail})
        off, on = {"Trail": trail, "IsLogging": False}, {"Trail": trail, "IsLogging": True}
        at = f"2026-11-26T03:{minute}:1{number + 2}+00:00"
        incidents.append(
            _incident(
                stop,
                record,
                State.REMEDIATED,
                [start],
                [StepResult(start.action, start.params, StepStatus.APPLIED, off, on)],
                [
                    _h(at, "trailguard", "open", "remediating", "StopLogging by IAMUser christophe"),
                    _h(at, "trailguard", "finish", "remediated"),
                ],
            )
        )
    return incidents


def _playbook(catalog: Catalog, playbook_id: str) -> Playbook:
    playbook = catalog.get(playbook_id)
    if playbook is None:
        raise LookupError(f"the Slack examples use playbook {playbook_id}, which is not loaded")
    return playbook


def render_examples(catalog: Catalog) -> str:
    parts = [
        "# Slack messages",
        "",
        "One message of each kind, rendered by `chalicelib/slack/messages.py` from the incidents in",
        "`trailguard/generate/slack_examples.py` (generated by `python -m trailguard docs`; a test keeps this file",
        "current). Each link opens the message in Slack's Block Kit Builder. Buttons carry the",
        "incident id; Approve, Retry and Undo ask for confirmation first. Account 111122223333 is",
        "shown by the name `TRAILGUARD_ACCOUNT_NAMES` gives it. The last one, a digest, is what a burst",
        "of incidents beyond Slack's posting rate becomes.",
        "",
    ]
    for title, when, incident in examples(catalog):
        message = render(incident, ACCOUNT_NAMES, exceptions=True)
        parts += [
            f"## {title}",
            "",
            f"Sent when {when}. State `{incident.state.value}`; notification text: {message.text!r}.",
            "",
            f"[Open in Block Kit Builder]({block_kit_builder_url(message)})",
            "",
            "<details><summary>Block Kit JSON</summary>",
            "",
            "```json",
            json.dumps({"blocks": message.blocks}, indent=2, ensure_ascii=False),
            "```",
            "",
            "</details>",
            "",
        ]
    digest = render_digest(digest_example(catalog), ACCOUNT_NAMES)
    parts += [
        "## Digest (a burst at Slack's posting rate)",
        "",
        "Sent by the posture sweep when incidents came faster than Slack's posting rate for their channel",
        "(about one message a second): a message that found no free second within 3 seconds stays due, and",
        "the sweep posts what is due grouped by playbook and account, up to "
        f"{DIGEST_SIZE} incidents a digest (a group of one",
        "gets its usual message). A line per incident: its id, who called what on which resource, where and",
        "when, its state at the time. A digest has no buttons and no thread of its own: an incident in it",
        "gets a message of its own, with its buttons, when it next changes and is delivered alone (a click",
        "or a handler; the sweep may group several that changed at once into a new digest), and that",
        "message's thread takes the lines of what happens next. Until then `trailguard incidents",
        "approve|deny|undo|ack|retry INCIDENT --stage STAGE` decides it, as the digest's last line says",
        '(docs/slack.md, "Slack at volume"). Here, three trails stopped in the account 111122223333 within',
        "two minutes, each already put back.",
        "",
        f"Notification text: {digest.text!r}.",
        "",
        f"[Open in Block Kit Builder]({block_kit_builder_url(digest)})",
        "",
        "<details><summary>Block Kit JSON</summary>",
        "",
        "```json",
        json.dumps({"blocks": digest.blocks}, indent=2, ensure_ascii=False),
        "```",
        "",
        "</details>",
        "",
    ]
    return "\n".join(parts)
