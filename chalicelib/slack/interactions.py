"""`POST /slack/interactions`: a button press, checked and decided within Slack's 3 seconds.

In order, each refusal answered and logged, none changing anything:

1. the signature (slack_sdk's SignatureVerifier over the raw body; at most 5 minutes
   old): 401;
2. the payload (form-encoded `payload=`, a `block_actions` on one of our buttons): 400;
3. the workspace and the app, when configured (`TRAILGUARD_SLACK_TEAM_ID`,
   `TRAILGUARD_SLACK_APP_ID`): a payload signed for another is 403, before any read;
4. the incident (it may have expired), the clicking user (an approver of its playbook),
   the message (the button carries the incident's decision count when it was drawn: a
   press on an older message, such as a replayed request, is refused and the message
   refreshed), the transition (legal from the incident's state, written conditionally,
   so a double click or two approvers at once decide once): 200, and an ephemeral
   message to the user saying why nothing happened.

Then the decision is recorded and the slow part (the AWS calls, the message update) is
handed to the worker, so the answer never waits for AWS.

"Mark as expected" is not a transition: after the same checks, the endpoint opens a modal
(`modals`, `views.open` on the click's trigger_id) asking why and for how long. Its
submission (`view_submission`, signed like a click) is checked again (signature, workspace
and app, incident, approver, a reason, a length the settings allow) and only recorded on
the incident (`except-requested`); the worker makes the exception after checking who
asked, as the endpoint's role cannot write one (see `incidents.exceptions`).
"""

from __future__ import annotations

import json
import logging
import re
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from chalicelib.incidents.exceptions import REQUESTED
from chalicelib.incidents.lifecycle import Incidents, StaleIncident, UnknownIncident
from chalicelib.incidents.model import BUSY_STATES, CLICK_TRANSITIONS, Containment, IllegalTransition, Incident
from chalicelib.slack.approvers import ApproverLookupFailed, Approvers
from chalicelib.slack.messages import ACTION_PREFIX, EXCEPT, SLACK_USER_PREFIX, VALUE_SEPARATOR
from chalicelib.slack.modals import DAYS, EXCEPT_CALLBACK, REASON, REASON_LIMIT, day_choices
from chalicelib.slack.worker import request_detail

log = logging.getLogger("trailguard")

TRANSITIONS = CLICK_TRANSITIONS
"""What a button may ask for; the incident's state machine decides whether it may happen."""
BUTTONS = (*TRANSITIONS, EXCEPT)
"""Every trailguard button: the transitions, and "Mark as expected" (which opens a modal)."""

# Matched whole (`fullmatch`): with `re.match`, `$` also matches before a trailing newline.
_BUTTON_VALUE = re.compile(rf"(?P<incident>inc-[0-9a-f]{{20}})(?:{VALUE_SEPARATOR}(?P<decisions>[0-9]{{1,9}}))?")
_USER_ID = re.compile(r"[UW][A-Z0-9]{2,}")
_TRIGGER_ID = re.compile(r"[0-9]+\.[0-9]+\.[0-9a-f]+|[0-9.]+")
MAX_BODY_BYTES = 64 * 1024
_CONTAINMENT_DECISIONS = frozenset({"contain", "deny_containment"})


def _containment_expired(incident: Incident) -> str:
    """The answer to Approve or Deny containment pressed after the sweep expired the proposal."""
    when = next((entry.at for entry in reversed(incident.history) if entry.what == "expire_containment"), "")
    return (
        f"Nothing was done: the proposal to contain who did it expired{' at ' + when if when else ''} "
        f"(nobody answered in time), so incident {incident.id} can no longer contain the actor. The repair "
        "stands. If the actor must still be contained, do it by hand or wait for the next finding or call."
    )


class BadInteraction(ValueError):
    """The request is not a block_actions payload on a trailguard button; says what is wrong."""


@dataclass(frozen=True)
class Click:
    transition: str
    incident_id: str
    user_id: str
    response_url: str | None
    decisions: int | None = None
    """The incident's decision count when the message was drawn (None: a button of an
    older trailguard, which did not say)."""
    team_id: str | None = None
    app_id: str | None = None
    trigger_id: str | None = None
    """What `views.open` needs to open a modal for this click (Slack's, valid 3 seconds)."""

    @property
    def who(self) -> str:
        return f"{SLACK_USER_PREFIX}{self.user_id}"


@dataclass(frozen=True)
class Submission:
    """The "Mark as expected" modal, submitted: which incident, by whom, why, for how long."""

    incident_id: str
    user_id: str
    decisions: int | None
    reason: str
    days: int
    team_id: str | None = None
    app_id: str | None = None

    @property
    def who(self) -> str:
        return f"{SLACK_USER_PREFIX}{self.user_id}"


@dataclass(frozen=True)
class Answer:
    """The HTTP answer to Slack."""

    status: int
    body: dict[str, Any]


def _payload(raw_body: bytes | str) -> dict[str, Any]:
    """The JSON payload of a Slack interaction request, or BadInteraction saying why not."""
    if raw_body is None or len(raw_body) == 0:
        raise BadInteraction("empty body; expected payload=<JSON>")
    if len(raw_body) > MAX_BODY_BYTES:
        raise BadInteraction(f"body of {len(raw_body)} bytes; expected at most {MAX_BODY_BYTES}")
    try:
        text = raw_body.decode("utf-8") if isinstance(raw_body, bytes) else raw_body
        form = urllib.parse.parse_qs(text, strict_parsing=True)
    except (UnicodeDecodeError, ValueError) as error:
        raise BadInteraction(f"body is not form-encoded: {error}") from None
    payloads = form.get("payload")
    if not payloads or len(payloads) != 1:
        raise BadInteraction("expected exactly one form field `payload`")
    try:
        payload = json.loads(payloads[0])
    except ValueError as error:
        raise BadInteraction(f"payload is not JSON: {error}") from None
    if not isinstance(payload, dict):
        raise BadInteraction("payload: expected a JSON object")
    return payload


def _user_of(payload: Mapping[str, Any]) -> tuple[str, str | None, str | None]:
    """(user id, team id, app id) of a payload; BadInteraction for a user id that is not one."""
    user = payload.get("user")
    user_id = user.get("id") if isinstance(user, dict) else None
    if not isinstance(user_id, str) or not _USER_ID.fullmatch(user_id):
        raise BadInteraction(f"payload.user.id is {user_id!r}; expected a Slack user id")
    team, app_id = payload.get("team"), payload.get("api_app_id")
    team_id = team.get("id") if isinstance(team, dict) else user.get("team_id") if isinstance(user, dict) else None
    return user_id, team_id if isinstance(team_id, str) else None, app_id if isinstance(app_id, str) else None


def parse_click(raw_body: bytes | str) -> Click:
    """The button press in a Slack interaction request, or BadInteraction saying why not."""
    interaction = parse_interaction(raw_body)
    if not isinstance(interaction, Click):
        raise BadInteraction("payload.type is 'view_submission'; expected block_actions")
    return interaction


def parse_interaction(raw_body: bytes | str) -> Click | Submission:
    """A button press (`block_actions`) or the exception modal submitted (`view_submission`),
    or BadInteraction saying why the request is neither."""
    payload = _payload(raw_body)
    if payload.get("type") == "view_submission":
        return _submission(payload)
    if payload.get("type") != "block_actions":
        raise BadInteraction(
            f"payload.type is {_cut(payload.get('type'))}; trailguard only answers block_actions and view_submission"
        )
    user_id, team_id, app_id = _user_of(payload)
    actions = payload.get("actions")
    if not isinstance(actions, list) or len(actions) != 1 or not isinstance(actions[0], dict):
        raise BadInteraction("payload.actions: expected one action")
    action_id, value = actions[0].get("action_id"), actions[0].get("value")
    transition = (
        action_id[len(ACTION_PREFIX) :] if isinstance(action_id, str) and action_id.startswith(ACTION_PREFIX) else None
    )
    if transition not in BUTTONS:
        raise BadInteraction(
            f"payload.actions[0].action_id is {action_id!r}; expected one of "
            + ", ".join(ACTION_PREFIX + name for name in BUTTONS)
        )
    button = _BUTTON_VALUE.fullmatch(value) if isinstance(value, str) else None
    if button is None:
        raise BadInteraction(f"payload.actions[0].value is {_cut(value)}; expected inc-<id>:<decision count>")
    response_url = payload.get("response_url")
    if response_url is not None and not isinstance(response_url, str):
        raise BadInteraction("payload.response_url: expected a URL")
    trigger_id = payload.get("trigger_id")
    decisions = button.group("decisions")
    return Click(
        transition,
        button.group("incident"),
        user_id,
        response_url,
        int(decisions) if decisions is not None else None,
        team_id,
        app_id,
        trigger_id if isinstance(trigger_id, str) and _TRIGGER_ID.fullmatch(trigger_id) else None,
    )


def _submission(payload: Mapping[str, Any]) -> Submission:
    user_id, team_id, app_id = _user_of(payload)
    view = payload.get("view")
    if not isinstance(view, dict) or view.get("callback_id") != EXCEPT_CALLBACK:
        raise BadInteraction(f"payload.view.callback_id: expected {EXCEPT_CALLBACK}")
    opened_on = view.get("private_metadata")
    button = _BUTTON_VALUE.fullmatch(opened_on) if isinstance(opened_on, str) else None
    if button is None:
        raise BadInteraction(f"payload.view.private_metadata is {_cut(opened_on)}; expected inc-<id>:<count>")
    values = view.get("state", {}).get("values", {}) if isinstance(view.get("state"), dict) else {}
    reason = values.get(REASON, {}).get(REASON, {}).get("value") if isinstance(values, dict) else None
    chosen = values.get(DAYS, {}).get(DAYS, {}).get("selected_option") if isinstance(values, dict) else None
    days = chosen.get("value") if isinstance(chosen, dict) else None
    if not isinstance(reason, str) or not isinstance(days, str) or not days.isascii() or not days.isdigit():
        raise BadInteraction("payload.view.state: expected a reason and a number of days")
    decisions = button.group("decisions")
    return Submission(
        button.group("incident"),
        user_id,
        int(decisions) if decisions is not None else None,
        reason[:REASON_LIMIT],
        int(days[:4]),
        team_id,
        app_id,
    )


def _cut(value: Any) -> str:
    """A sender's value for an answer or a log line: its start only."""
    text = repr(value)
    return text if len(text) <= 60 else text[:59] + "…"


class Interactions:
    def __init__(
        self,
        *,
        verify: Callable[[bytes | str, Mapping[str, str]], bool],
        incidents: Incidents,
        approvers: Approvers,
        dispatch: Callable[[dict[str, Any]], Any],
        respond: Callable[[str, str], Any] | None = None,
        response_url_prefixes: tuple[str, ...] = ("https://hooks.slack.com/",),
        team_id: str | None = None,
        app_id: str | None = None,
        open_view: Callable[[str, dict[str, Any]], Any] | None = None,
        exception_days: int = 30,
        no_exceptions: frozenset[str] = frozenset(),
    ) -> None:
        """`dispatch(job)` hands a job to the worker (`slack.worker`): to a Lambda invoked
        asynchronously when deployed, in-process locally. `respond(response_url, text)`
        answers the user at once, for when the worker cannot be reached. `team_id` and
        `app_id`, when given, are the only workspace and app whose clicks are answered.
        `open_view(trigger_id, view)` opens a modal (`views.open`); `exception_days` and
        `no_exceptions` are the settings' `exceptions.max_days` and `exceptions.never`."""
        self.open_view = open_view
        self.exception_days = exception_days
        self.no_exceptions = no_exceptions
        self.verify = verify
        self.incidents = incidents
        self.approvers = approvers
        self.dispatch = dispatch
        self.respond = respond
        self.response_url_prefixes = response_url_prefixes
        self.team_id = team_id
        self.app_id = app_id

    def answer(self, raw_body: bytes | str, headers: Mapping[str, str]) -> Answer:
        if not self._signed(raw_body, headers):
            return self._refuse(401, "invalid or expired signature", headers)
        try:
            interaction = parse_interaction(raw_body)
        except BadInteraction as error:
            return self._refuse(400, str(error), headers)
        if self.team_id is not None and interaction.team_id != self.team_id:
            reason = f"payload.team.id is {_cut(interaction.team_id)}; trailguard answers workspace {self.team_id} only"
            return self._refuse(403, reason, headers)
        if self.app_id is not None and interaction.app_id != self.app_id:
            reason = f"payload.api_app_id is {_cut(interaction.app_id)}; trailguard answers app {self.app_id} only"
            return self._refuse(403, reason, headers)
        if isinstance(interaction, Submission):
            return self._submitted(interaction)
        click = interaction
        response_url = (
            click.response_url
            if click.response_url and click.response_url.startswith(self.response_url_prefixes)
            else None
        )
        incident = self.incidents.get(click.incident_id)
        if incident is None:
            return self._tell(
                click, response_url, f"Incident {click.incident_id} no longer exists (it may have expired)."
            )
        try:
            allowed = self.approvers.allows(click.user_id, incident.playbook_id)
        except ApproverLookupFailed as error:
            log.warning("click refused", extra={"reason": str(error), "user": click.user_id})
            return self._tell(click, response_url, f"Could not check that you are an approver ({error}); try again.")
        if not allowed:
            log.warning(
                "click refused: not an approver",
                extra={
                    "user": click.user_id,
                    "incident": incident.id,
                    "playbook": incident.playbook_id,
                    "transition": click.transition,
                },
            )
            return self._tell(
                click,
                response_url,
                f"You are not an approver for playbook {incident.playbook_id}, so nothing was done. "
                "Approvers are set in the playbook's `slack.approvers` or TRAILGUARD_SLACK_APPROVERS.",
            )
        if click.transition in _CONTAINMENT_DECISIONS and incident.containment is Containment.EXPIRED:
            log.info("click refused: containment expired", extra={"incident": incident.id, "user": click.user_id})
            self._hand_over({"refresh": incident.id})
            return self._tell(click, response_url, _containment_expired(incident))
        if click.decisions != incident.decisions:
            log.info(
                "click refused: out-of-date message",
                extra={
                    "incident": incident.id,
                    "transition": click.transition,
                    "user": click.user_id,
                    "shown": click.decisions,
                    "decisions": incident.decisions,
                },
            )
            self._hand_over({"refresh": incident.id})
            return self._tell(
                click,
                response_url,
                f"Nothing was done: the message you pressed was out of date (incident {incident.id} has changed "
                f"since it was drawn; it is {incident.state.value} now). trailguard is bringing the message up to "
                "date: look at it again, and press again if it still applies.",
            )
        if click.transition == EXCEPT:
            return self._ask_why(click, incident, response_url)
        try:
            decided = self.incidents.claim(click.incident_id, click.transition, click.who, read=incident)
        except (IllegalTransition, StaleIncident) as error:
            reason = (
                str(error) if isinstance(error, IllegalTransition) else "someone else changed it at the same moment"
            )
            log.info("click refused", extra={"reason": reason, "user": click.user_id})
            return self._tell(click, response_url, f"Nothing was done: {reason}.")
        log.info(
            "click accepted",
            extra={
                "incident": decided.id,
                "transition": click.transition,
                "user": click.user_id,
                "state": decided.state.value,
            },
        )
        if not self._hand_over({"incident": decided.id, "version": decided.version}) and response_url and self.respond:
            text = (
                f"Your {click.transition} of incident {decided.id} is recorded, but trailguard's worker could not "
                "be started; the posture sweep will carry it out on its next run."
            )
            try:
                self.respond(response_url, text)
            except Exception:
                log.warning("could not tell the user about the delay", extra={"incident": decided.id})
        return Answer(200, {})

    # -- "Mark as expected" --------------------------------------------------------------------

    def _exception_refusal(self, incident: Incident) -> str | None:
        if not incident.event.resource:
            return "this event names no resource, so an exception could not be narrowed to one"
        if incident.playbook_id in self.no_exceptions:
            return f"the organization's settings keep {incident.playbook_id} out of exceptions"
        return None

    def _ask_why(self, click: Click, incident: Incident, response_url: str | None) -> Answer:
        """Open the modal that asks why the change is expected, and for how long."""
        from chalicelib.slack.modals import exception_modal

        refusal = self._exception_refusal(incident)
        if refusal is not None:
            return self._tell(click, response_url, f"Nothing was done: {refusal}.")
        if self.open_view is None or click.trigger_id is None:
            return self._tell(click, response_url, "Could not open the form (no trigger); press again.")
        try:
            self.open_view(click.trigger_id, exception_modal(incident, self.exception_days))
        except Exception as error:
            log.warning("could not open the exception form", extra={"incident": incident.id, "error": repr(error)})
            return self._tell(click, response_url, "Slack would not open the form; press again.")
        log.info("exception form opened", extra={"incident": incident.id, "user": click.user_id})
        return Answer(200, {})

    def _submitted(self, submission: Submission) -> Answer:
        """The modal submitted: checked, recorded on the incident, handed to the worker.
        A problem is shown in the form (`response_action: errors`), which stays open."""

        def refuse(block: str, text: str) -> Answer:
            log.info("exception refused", extra={"incident": submission.incident_id, "reason": text})
            return Answer(200, {"response_action": "errors", "errors": {block: text}})

        incident = self.incidents.get(submission.incident_id)
        if incident is None:
            return refuse(REASON, f"Incident {submission.incident_id} no longer exists (it may have expired).")
        try:
            allowed = self.approvers.allows(submission.user_id, incident.playbook_id)
        except ApproverLookupFailed as error:
            return refuse(REASON, f"Could not check that you are an approver ({error}); try again.")
        if not allowed:
            log.warning(
                "exception refused: not an approver",
                extra={"user": submission.user_id, "incident": incident.id, "playbook": incident.playbook_id},
            )
            return refuse(REASON, f"You are not an approver for playbook {incident.playbook_id}.")
        refusal = self._exception_refusal(incident)
        if refusal is not None:
            return refuse(REASON, f"{refusal[0].upper()}{refusal[1:]}.")
        if incident.state in BUSY_STATES:
            return refuse(REASON, f"The incident is {incident.state.value}: submit again once it is done.")
        if not submission.reason.strip():
            return refuse(REASON, "Say why the change is expected.")
        if submission.days not in day_choices(self.exception_days):
            return refuse(DAYS, f"Choose one of the lengths offered (at most {self.exception_days} days).")
        try:
            noted = self.incidents.note(
                incident.id, submission.who, REQUESTED, request_detail(submission.days, submission.reason)
            )
        except (StaleIncident, UnknownIncident) as error:
            return refuse(REASON, f"Could not record it ({type(error).__name__}); submit again.")
        log.info(
            "exception asked",
            extra={"incident": incident.id, "user": submission.user_id, "days": submission.days},
        )
        self._hand_over({"except": noted.id, "version": noted.version})
        return Answer(200, {})

    def _signed(self, raw_body: bytes | str, headers: Mapping[str, str]) -> bool:
        try:
            return bool(self.verify(raw_body, headers))
        except Exception:
            return False

    def _tell(self, click: Click, response_url: str | None, text: str) -> Answer:
        """Answer 200 (Slack shows no error) and tell the user, and only them, why."""
        if response_url:
            self._hand_over({"tell": text, "response_url": response_url})
        return Answer(200, {"text": text})

    def _hand_over(self, job: dict[str, Any]) -> bool:
        try:
            self.dispatch(job)
        except Exception as error:
            log.error(
                "could not hand the click to the worker; the sweep will finish it",
                extra={"job": job.get("incident") or job.get("refresh"), "error": f"{type(error).__name__}: {error}"},
            )
            return False
        return True

    def _refuse(self, status: int, reason: str, headers: Mapping[str, str]) -> Answer:
        lowered = {key.lower(): value for key, value in headers.items()}
        timestamp = lowered.get("x-slack-request-timestamp")
        # Whoever sends the request chooses this header: a few characters are enough to
        # tell a stale request from a forged one, and a log line stays a line.
        log.warning(
            "Slack request refused",
            extra={
                "status": status,
                "reason": reason,
                "timestamp": str(timestamp)[:20] if timestamp is not None else None,
            },
        )
        return Answer(status, {"error": reason})
