"""The modal "Mark as expected" opens: why the change is expected, and for how long.

Slack opens it on the button's `trigger_id` (`views.open`, within 3 seconds of the click),
and posts what the person submitted back to the same Request URL as a `view_submission`
(`interactions`). Its `private_metadata` is the button's value (the incident and its
decision count), so the submission names the incident it was opened on.
"""

from __future__ import annotations

from typing import Any

from slack_sdk.models.blocks import InputBlock, Option, PlainTextInputElement, SectionBlock, StaticSelectElement
from slack_sdk.models.views import View

from chalicelib.incidents.model import Incident
from chalicelib.slack.messages import button_value, escape

EXCEPT_CALLBACK = "trailguard:except"
REASON = "reason"
DAYS = "days"
DEFAULT_DAYS = 7
REASON_LIMIT = 500
_CHOICES = (1, 7, 14, 30, 90, 365)


def day_choices(max_days: int) -> list[int]:
    """What the modal offers: the usual lengths up to the settings' maximum (and the maximum)."""
    return sorted({days for days in _CHOICES if days <= max_days} | {max_days})


def _option(days: int) -> Option:
    return Option(value=str(days), text=f"{days} day{'s' if days != 1 else ''}")


def exception_modal(incident: Incident, max_days: int) -> dict[str, Any]:
    event = incident.event
    days = day_choices(max_days)
    initial = DEFAULT_DAYS if DEFAULT_DAYS in days else days[-1]
    where = f"`{escape(event.resource)}` in {escape(event.account or 'the account')}, {escape(event.region)}"
    view = View(
        type="modal",
        callback_id=EXCEPT_CALLBACK,
        private_metadata=button_value(incident),
        title="Mark as expected",
        submit="Mark as expected",
        close="Cancel",
        blocks=[
            SectionBlock(
                text=f"*{escape(incident.title)}* on {where}.\nWhile the exception lasts, trailguard tells about "
                f"`{escape(incident.playbook_id)}` on this resource and changes nothing; when it ends, the posture "
                "sweep checks the resource again. Everyone sees who made it and why."
            ),
            InputBlock(
                block_id=REASON,
                label="Why is this change expected?",
                element=PlainTextInputElement(
                    action_id=REASON,
                    multiline=True,
                    max_length=REASON_LIMIT,
                    placeholder="the change request, the ticket, who asked",
                ),
            ),
            InputBlock(
                block_id=DAYS,
                label="For how long?",
                element=StaticSelectElement(
                    action_id=DAYS, options=[_option(d) for d in days], initial_option=_option(initial)
                ),
            ),
        ],
    )
    return view.to_dict()
