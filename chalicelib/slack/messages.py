"""The Slack message of an incident: what happened, who did it, what trailguard did, and
the buttons that are safe to press now.

Built with `slack_sdk.models.blocks`, whose `to_dict()` checks Slack's limits; every
value is cut to fit before that (marked with an ellipsis), so a long user agent or a
hundred-step plan shortens the message instead of having Slack reject it.

Everything shown from the event is attacker-controlled (a trail name, a user agent, a
session name). It is escaped, so it can neither mention `<!channel>` nor hide a link.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from chalicelib.incidents.model import Containment, HistoryEntry, Incident, State, StepResult, StepStatus

ACTION_PREFIX = "trailguard:"
"""Prefix of every button's action_id; the rest is the transition it asks for."""

VALUE_SEPARATOR = ":"
"""Between the incident id and its decision count in a button's value (`inc-…:3`)."""

SLACK_USER_PREFIX = "slack:"
"""How the history names a Slack user: `slack:U0123ABCD`."""

EXCEPT = "except"
"""The "Mark as expected" button's name: it opens a modal (`modals`), not a transition."""

CONSOLE_EVENT_URL = "https://{region}.console.aws.amazon.com/cloudtrailv2/home?region={region}#/events/{event_id}"

_SEVERITY_MARKS = {
    "critical": ":red_circle:",
    "high": ":large_orange_circle:",
    "medium": ":large_yellow_circle:",
    "low": ":white_circle:",
}
_STEP_MARKS = {
    StepStatus.APPLIED: ":white_check_mark:",
    StepStatus.ALREADY_SAFE: ":white_check_mark:",
    StepStatus.APPLYING: ":hourglass_flowing_sand:",
    StepStatus.FAILED: ":x:",
    StepStatus.NOT_RUN: ":black_square_for_stop:",
    StepStatus.SIMULATED: ":grey_question:",
    StepStatus.UNDONE: ":leftwards_arrow_with_hook:",
}
_HEADLINES = {
    State.PROPOSED: "trailguard proposes the steps below and waits for an approver.",
    State.REMEDIATING: "trailguard is putting things back.",
    State.REMEDIATED: "trailguard put things back. Undo if the change was meant.",
    State.FAILED: "trailguard could not finish. Retry once the cause is fixed, or acknowledge.",
    State.DENIED: "Denied: nothing was changed.",
    State.EXPIRED: "Expired: nobody answered in time; nothing was changed.",
    State.UNDOING: "trailguard is undoing its remediation.",
    State.UNDONE: "Undone: everything trailguard changed is as it was before.",
    State.ACKNOWLEDGED: "Acknowledged: nothing more to do.",
    State.NOTIFIED: "No automatic fix for this one: please look at it.",
    State.SIMULATED: "Dry run: trailguard would have run the steps below; nothing was changed.",
}
_DECISIONS = {
    "approve": "Approved",
    "deny": "Denied",
    "undo": "Undo asked",
    "retry": "Retried",
    "acknowledge": "Acknowledged",
    "expire": "Expired",
    "refuse_undo": "Undo refused",
    "finish_undo": "Undone",
    "fail": "Failed",
    "finish": "Remediated",
    "resume": "Resumed",
    "except-requested": "Exception asked",
    "except": "Marked as expected",
    "except-refused": "Exception refused",
    "revoke-exception": "Exception revoked",
    "exception-expired": "Exception expired",
    "contain": "Containment approved",
    "deny_containment": "Containment denied",
    "release": "Release asked",
    "finish_release": "Released",
    "expire_containment": "Containment expired",
    "insight": "CloudTrail Insights saw an unusual rate of calls by this principal",
}
_PEOPLES_DECISIONS = frozenset(
    {
        "approve",
        "deny",
        "undo",
        "retry",
        "acknowledge",
        "expire",
        "except",
        "except-refused",
        "revoke-exception",
        "contain",
        "deny_containment",
        "expire_containment",
        "release",
    }
)
_BUTTONS: Mapping[State, tuple[str, ...]] = {
    State.PROPOSED: ("approve", "deny"),
    State.REMEDIATED: ("undo", "acknowledge"),
    State.FAILED: ("retry", "acknowledge"),
    State.NOTIFIED: ("acknowledge",),
}
_LABELS = {
    "approve": "Approve",
    "deny": "Deny",
    "undo": "Undo",
    "acknowledge": "Acknowledge",
    "retry": "Retry",
    "contain": "Approve containment",
    "deny_containment": "Deny containment",
    "release": "Release (undo containment)",
    EXCEPT: "Mark as expected for 7 days",
}
_CONTAINMENT_BUTTONS: Mapping[Containment, tuple[str, ...]] = {
    Containment.PROPOSED: ("contain", "deny_containment", "undo", "acknowledge"),
    Containment.APPLIED: ("release", "undo", "acknowledge"),
}
"""A remediated incident's buttons while its second response waits for a person, or holds."""
_CONTAINMENT_HEADLINES = {
    Containment.PROPOSED: "trailguard put things back. Containing who did it waits for an approver.",
    Containment.APPROVED: "trailguard put things back; containing who did it is under way.",
    Containment.DENIED: "trailguard put things back. Containment was denied: the actor keeps its access.",
    Containment.APPLIED: "trailguard put things back and contained who did it. Release when the actor is cleared.",
    Containment.RELEASED: "trailguard put things back. The containment was released.",
    Containment.EXPIRED: (
        "trailguard put things back. Nobody answered the proposal to contain who did it in time: it expired, "
        "and the actor keeps its access."
    ),
}
_EXCEPTABLE = frozenset({State.PROPOSED, State.REMEDIATED, State.FAILED, State.NOTIFIED, State.SIMULATED})
"""States whose message offers "Mark as expected": the change may recur, and be meant."""
_STYLES = {
    "approve": "primary",
    "deny": "danger",
    "undo": "danger",
    "retry": "primary",
    "contain": "primary",
    "deny_containment": "danger",
}


@dataclass(frozen=True)
class Message:
    text: str
    """The notification text (what a phone's lock screen shows)."""
    blocks: list[dict[str, Any]]


def render(incident: Incident, account_names: Mapping[str, str] | None = None, *, exceptions: bool = False) -> Message:
    """`exceptions`: whether the message may offer "Mark as expected" (the stage keeps
    exceptions and its settings do not keep the playbook out of them)."""
    names = account_names or {}
    blocks: list[Block] = [
        HeaderBlock(text=PlainTextObject(text=_fit(_header(incident), HeaderBlock.text_max_length), emoji=True)),
        _section(f"{_what_happened(incident, names)}\n{_headline(incident)}"),
        SectionBlock(fields=_details(incident)),
    ]
    lowered = _lowered(incident)
    if lowered:
        blocks.append(_section(f":information_source: *{escape(lowered)}*"))
    work = _work(incident)
    if work:
        blocks.append(_section(work))
    if incident.error and not any(step.error for step in incident.steps):  # else its step line says it
        blocks.append(_section(f":warning: *Error:* {escape(incident.error)}"))
    last = incident.history[-1] if incident.history else None
    if last is not None and last.what == "refuse_undo" and last.detail:
        blocks.append(_section(f":no_entry: *Undo refused:* {escape(last.detail)}"))
    buttons = _buttons(incident, exceptions)
    if buttons:
        blocks.append(ActionsBlock(block_id=f"incident:{incident.id}", elements=buttons))
    decisions = _decisions(incident.history)
    if decisions:
        blocks.append(_context(decisions))
    blocks.append(_context(_footer(incident)))
    text = _fit(f"{_header(incident)}: {_headline(incident)}", SectionBlock.text_max_length)
    return Message(text=text, blocks=[block.to_dict() for block in blocks])


DIGEST_SIZE = 40
"""Incidents in one digest message: a section each, within Slack's 50 blocks."""


def render_digest(incidents: list[Incident], account_names: Mapping[str, str] | None = None) -> Message:
    """One message for a burst of one playbook in one account (posted when the channel is at
    Slack's posting rate): a line per incident, and how to act on each until its next change
    gives it a message of its own, with its buttons."""
    names = account_names or {}
    first = incidents[0]
    account = first.event.account or "an unknown account"
    where = f"{escape(names[account])} ({account})" if account in names else escape(account)
    title = f"{first.severity.upper()} · {len(incidents)} incidents: {first.title}"
    blocks: list[Block] = [
        HeaderBlock(text=PlainTextObject(text=_fit(title, HeaderBlock.text_max_length), emoji=True)),
        _section(
            f"{_SEVERITY_MARKS.get(first.severity, '')} *{len(incidents)} incidents* of `{_code(first.playbook_id)}` "
            f"in *{where}*, grouped to keep within Slack's posting rate."
        ),
    ]
    for incident in incidents[:DIGEST_SIZE]:
        event = incident.event
        resource = f" on `{_code(event.resource)}`" if event.resource else ""
        blocks.append(
            _section(
                f"`{incident.id}` *{escape(event.actor)}* called `{_code(event.name)}`{resource}, "
                f"{escape(event.region)}, {_when(event.time)}: *{incident.state.value}*"
            )
        )
    blocks.append(
        _context(
            "Each incident gets its own message, with its buttons, at its next change. To decide now: "
            "`trailguard incidents approve|deny|undo|ack|retry INCIDENT --stage STAGE`."
        )
    )
    text = _fit(f"{title}: grouped", SectionBlock.text_max_length)
    return Message(text=text, blocks=[block.to_dict() for block in blocks])


def _headline(incident: Incident) -> str:
    containment = incident.containment
    if incident.state is State.REMEDIATED and containment is not None:
        return _CONTAINMENT_HEADLINES[containment]
    if incident.state is State.NOTIFIED and incident.mode_note:
        return "trailguard changed nothing: the organization's settings let it only tell here (Mode lowered)."
    return _HEADLINES[incident.state]


def thread_reply(entry: HistoryEntry) -> str:
    """One line for the message's thread: a decision or an outcome, as it happened."""
    detail = f": {escape(entry.detail)}" if entry.detail else ""
    what = _DECISIONS.get(entry.what, entry.what)
    return _fit(f"{what} by {who(entry.who)} ({entry.state.value}){detail}", SectionBlock.text_max_length)


def block_kit_builder_url(message: Message) -> str:
    """A link that opens the message in Slack's Block Kit Builder (for docs and reviews)."""
    compact = json.dumps({"blocks": message.blocks}, separators=(",", ":"), ensure_ascii=False)
    return "https://app.slack.com/block-kit-builder/#" + urllib.parse.quote(compact)


def escape(text: Any) -> str:
    """Slack's mrkdwn escaping: `&`, `<` and `>` only (what Slack's docs require)."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def who(name: str) -> str:
    """A history name for a message: a Slack user becomes a mention Slack resolves."""
    if name.startswith(SLACK_USER_PREFIX):
        return f"<@{name[len(SLACK_USER_PREFIX) :]}>"
    return escape(name)


# -- the parts ---------------------------------------------------------------------------


def _header(incident: Incident) -> str:
    return f"{incident.severity.upper()} · {incident.title}"


def _what_happened(incident: Incident, names: Mapping[str, str]) -> str:
    event = incident.event
    account = event.account or "an unknown account"
    where = f"{escape(names[account])} ({account})" if account in names else escape(account)
    resource = f" on `{_code(event.resource)}`" if event.resource else ""
    mark = _SEVERITY_MARKS.get(incident.severity, "")
    if event.from_sweep and event.name == "HeartbeatMissed":  # posture.heartbeat
        return (
            f"{mark} The heartbeat's events from *{where}*, {escape(event.region)}, stopped arriving (noticed at "
            f"{_when(event.time)}): trailguard cannot see what happens there (a trail stopped or blinded "
            "without an event, a forwarding rule removed, an outage). The history says since when."
        )
    if event.from_sweep:
        return (
            f"{mark} The posture sweep found `{_code(event.name)}`{resource} in *{where}*, "
            f"{escape(event.region)}, at {_when(event.time)}; no CloudTrail event was received."
        )
    if event.from_finding:
        detector = _DETECTORS.get(event.source, event.source)
        severity = f" ({escape(event.finding_severity)})" if event.finding_severity else ""
        about = f" about *{escape(event.actor)}*" if event.actor_arn or event.actor != "unknown principal" else ""
        title = f"\n> {escape(event.finding_title)}" if event.finding_title else ""
        return (
            f"{mark} {detector} reported `{_code(event.name)}`{severity}{about}{resource} in *{where}*, "
            f"{escape(event.region)}, at {_when(event.time)}.{title}"
        )
    return (
        f"{mark} *{escape(event.actor)}* called `{_code(event.name)}`{resource} in *{where}*, "
        f"{escape(event.region)}, at {_when(event.time)}."
    )


_DETECTORS = {"guardduty": "GuardDuty", "securityhub": "Security Hub", "cloudtrail-insights": "CloudTrail Insights"}

_LOWERED = re.compile(r"; ((?:approve|notify) instead of (?:auto|approve): [^;]+)")


def _lowered(incident: Incident) -> str | None:
    """Why the incident's mode is below its playbook's (the resource read, or who called), as
    the responder wrote it in the opening entry: people must see why they are asked."""
    opening = incident.history[0] if incident.history else None
    found = _LOWERED.search(opening.detail or "") if opening is not None and opening.what == "open" else None
    return found.group(1) if found else None


def _details(incident: Incident) -> list[MarkdownTextObject]:
    event = incident.event
    details = [
        ("Source IP", event.source_ip),
        ("User agent", event.user_agent),
        ("Session", event.session),
        ("Principal", event.actor_arn),
        ("Event", f"{event.source.split('.')[0]}:{event.name} {event.event_id}"),
        ("Playbook", f"{incident.playbook_id} v{incident.playbook_version} ({incident.mode})"),
        ("Mode lowered", incident.mode_note),
    ]
    return [MarkdownTextObject(text=_fit(f"*{label}*\n{escape(value)}", 2000)) for label, value in details if value][
        : SectionBlock.fields_max_length
    ]


def _work(incident: Incident) -> str:
    """The plan, or each step's outcome, one line each, cut to fit one section."""
    if incident.containment is not None and incident.state is not State.SIMULATED:
        return _two_responses(incident)
    if incident.steps:
        title = "*Would run:*" if incident.state is State.SIMULATED else "*Steps:*"
        lines = [_step_line(index, step) for index, step in enumerate(incident.steps, 1)]
    elif incident.plan:
        title = "*Proposed steps:*" if incident.state is State.PROPOSED else "*Planned steps:*"
        lines = [f"{index}. {_call(step.action, step.params)}" for index, step in enumerate(incident.plan, 1)]
    else:
        return ""
    return _lines_that_fit(title, lines, SectionBlock.text_max_length)


_NOT_CONTAINED = {
    Containment.DENIED: "not run (containment denied)",
    Containment.EXPIRED: "not run (nobody answered in time)",
}
"""What a `contain:` step that never ran says once nobody will approve it any more."""


def _two_responses(incident: Incident) -> str:
    """The repair and the containment, each under its own title: what ran, what waits."""
    repair: list[str] = []
    contain: list[str] = []
    for index, planned in enumerate(incident.plan):
        result = incident.steps[index] if index < len(incident.steps) else None
        if result is not None and not (planned.contain and result.status is StepStatus.NOT_RUN):
            line = _step_line(index + 1, result)
        else:
            waiting = _NOT_CONTAINED.get(incident.containment) if incident.containment else None
            line = (
                f"{_STEP_MARKS[StepStatus.NOT_RUN]} {index + 1}. {_call(planned.action, planned.params)}: {waiting}"
                if waiting
                else f":hourglass: {index + 1}. {_call(planned.action, planned.params)}: waits for an approver"
            )
        (contain if planned.contain else repair).append(line)
    title = "*Proposed steps:*" if incident.state is State.PROPOSED else "*Repair (now):*"
    parts = [_lines_that_fit(title, repair, SectionBlock.text_max_length // 2)] if repair else []
    parts.append(_lines_that_fit("*Contain who did it (on approval):*", contain, SectionBlock.text_max_length // 2))
    return "\n".join(parts)


def _step_line(index: int, step: StepResult) -> str:
    line = f"{_STEP_MARKS.get(step.status, '')} {index}. {_call(step.action, step.params)}: {step.status.value}"
    if step.error:
        line += f" — {escape(step.error)}"
    if step.note:
        line += f" ({escape(step.note)})"
    return line


def _call(action: str, params: Mapping[str, Any]) -> str:
    return f"`{_code(action)}` {escape(describe_params(params))}".rstrip()


def describe_params(params: Mapping[str, Any]) -> str:
    """A step's parameters as a person reads them: unset ones left out, long lists summed up
    (`ports=22, 23, 135… (26)`, `rules=(1 item)`), nothing over 120 characters."""
    return ", ".join(f"{name}={_param(value)}" for name, value in params.items() if value is not None)


def _param(value: Any) -> str:
    if isinstance(value, list) and value and all(isinstance(item, (str, int, float)) for item in value):
        text = ", ".join(map(str, value))
        return text if len(text) <= 40 else f"{_fit(text, 30)} ({len(value)})"
    if isinstance(value, (list, dict)) and len(str(value)) > 40:
        return f"({len(value)} item{'s' if len(value) != 1 else ''})"
    return _short(value)


def _buttons(incident: Incident, exceptions: bool = False) -> list[ButtonElement]:
    names = list(_BUTTONS.get(incident.state, ()))
    containment = incident.containment
    if incident.state is State.REMEDIATED and containment in _CONTAINMENT_BUTTONS:
        names = list(_CONTAINMENT_BUTTONS[containment])  # type: ignore[index]
    if incident.state is State.FAILED and not incident.plan:
        names.remove("retry")  # nothing to run again: the playbook needs fixing
    if exceptions and incident.state in _EXCEPTABLE and incident.event.resource:
        names.append(EXCEPT)
    return [
        ButtonElement(
            text=_LABELS[name],
            action_id=f"{ACTION_PREFIX}{name}",
            value=button_value(incident),
            style=_STYLES.get(name),
            confirm=_confirmation(incident, name),
        )
        for name in names
    ]


def button_value(incident: Incident) -> str:
    """What a button carries: the incident, and how many decisions it held when the message
    was drawn. A press on a message older than the incident's last decision (a replayed
    request, a message Slack has not shown the update of) is refused, not acted on."""
    return f"{incident.id}{VALUE_SEPARATOR}{incident.decisions}"


def _confirmation(incident: Incident, name: str) -> ConfirmObject | None:
    """A second question before a button that calls AWS."""
    account = incident.event.account or "the account"
    count = len(incident.plan)
    questions = {
        "approve": f"Run {count} step(s) in {account}, {incident.event.region}?",
        "retry": f"Run the steps that did not finish again in {account}?",
        "undo": "Put back what trailguard changed? Steps whose resource changed since are left alone.",
        "contain": f"Contain {incident.event.actor} in {account}, {incident.event.region}? "
        "Whatever runs as this principal may stop working.",
        "release": "Take the containment back? The actor gets its access again; the repair stays.",
    }
    if name not in questions:
        return None
    return ConfirmObject(title=_LABELS[name] + "?", text=questions[name], confirm=_LABELS[name], deny="Cancel")


def _decisions(history: list[HistoryEntry]) -> str:
    """What people decided (and the sweep's expiry); outcomes are in the steps and the thread."""
    shown = [entry for entry in history if entry.what in _PEOPLES_DECISIONS]
    lines = [f"{_DECISIONS[entry.what]} by {who(entry.who)} at {_when(entry.at)}" for entry in shown]
    return _lines_that_fit("", lines[-8:], 2000).strip()


def _footer(incident: Incident) -> str:
    event = incident.event
    parts = [f"Incident `{incident.id}`"]
    if not event.from_sweep and not event.from_finding:  # a finding is not a CloudTrail event
        url = CONSOLE_EVENT_URL.format(
            region=urllib.parse.quote(event.region, safe=""), event_id=urllib.parse.quote(event.event_id, safe="")
        )
        parts.append(f"<{url}|Open the event in CloudTrail>")
    return " · ".join(parts)


# -- fitting text in Slack's limits ------------------------------------------------------


def _section(text: str) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=_fit(text, SectionBlock.text_max_length)))


def _context(text: str) -> ContextBlock:
    return ContextBlock(elements=[MarkdownTextObject(text=_fit(text, 2000))])


def _fit(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _short(value: Any, limit: int = 120) -> str:
    return _fit(value if isinstance(value, str) else str(value), limit)


def _code(value: Any) -> str:
    """A value inside `code`: backticks would end it early."""
    return escape(_short(value)).replace("`", "'")


def _lines_that_fit(title: str, lines: list[str], limit: int) -> str:
    """The title and as many whole lines as fit, then how many were left out."""
    text = title
    for index, line in enumerate(lines):
        rest = len(lines) - index
        candidate = f"{text}\n{line}" if text else line
        if len(candidate) + len(f"\n… and {rest} more") > limit:
            return _fit(f"{text}\n… and {rest} more", limit)
        text = candidate
    return text


def _when(moment: str) -> str:
    try:
        parsed = dt.datetime.fromisoformat(moment.replace("Z", "+00:00"))
    except ValueError:
        return escape(moment)
    return parsed.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
