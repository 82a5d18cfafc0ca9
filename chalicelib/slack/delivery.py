"""Posting an incident's message to Slack, and keeping that one message up to date.

The first delivery posts to the playbook's channel (or the default) and notes where the
message lives on the incident; every later change updates the same message and adds a
line to its thread (who approved, what failed). The incident notes how much of its history
the message shows, so a message Slack did not take (down, rate limited past slack_sdk's
retries, a bad token) stays due, and the posture sweep delivers it later. The incidents'
door writes those notes (`Incidents.notify`); nothing here reads or writes the table, and
nothing here can lose an incident: it was written before anyone is told.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from slack_sdk.errors import SlackApiError

from chalicelib.incidents.model import Incident
from chalicelib.incidents.notify import Notifier
from chalicelib.metrics import Metrics
from chalicelib.slack.messages import render, thread_reply

log = logging.getLogger("trailguard")

_GONE = ("message_not_found", "cant_update_message")
"""chat.update errors after which a new message is posted instead."""


class SlackNotifier(Notifier):
    def __init__(
        self,
        connect: Callable[[], Any],
        *,
        default_channel: str,
        channels: Mapping[str, str] | None = None,
        account_names: Mapping[str, str] | None = None,
        metrics: Metrics | None = None,
        exceptions: Callable[[Incident], bool] | None = None,
    ) -> None:
        """`connect()` gives the WebClient; it is called on first delivery, so that a token
        that cannot be read is recorded as a delivery error, not raised at import. `metrics`
        counts each delivery that failed."""
        self.metrics = metrics
        self._connect = connect
        self._web: Any = None
        self.default_channel = default_channel
        self.channels = dict(channels or {})
        self.account_names = dict(account_names or {})
        self.exceptions = exceptions or (lambda incident: False)
        """Whether an incident's message may offer "Mark as expected"."""

    def address(self, incident: Incident) -> dict[str, Any]:
        return {"channel": self.channels.get(incident.playbook_id) or self.default_channel}

    def notify(self, incident: Incident) -> None:
        """Bring the incident's message up to date, and note on it where the message is and
        what it shows (or why it could not be delivered)."""
        if incident.notification is None:
            incident.notification = self.address(incident)
        if incident.notification_due:
            self._deliver(incident)

    def _deliver(self, incident: Incident) -> None:
        reference = dict(incident.notification or {})
        shown = reference.get("shown") or 0
        try:
            web = self._web or self._connect()
            self._web = web
            message = render(incident, self.account_names, exceptions=self.exceptions(incident))
            if reference.get("ts"):
                try:
                    web.chat_update(
                        channel=reference["channel"], ts=reference["ts"], text=message.text, blocks=message.blocks
                    )
                except SlackApiError as error:
                    if error.response.get("error") not in _GONE:
                        raise
                    log.warning(
                        "the incident's Slack message is gone; posting a new one", extra={"incident": incident.id}
                    )
                    reference.pop("ts")
                else:
                    self._reply_in_thread(web, incident, reference, shown)
            if not reference.get("ts"):
                posted = web.chat_postMessage(
                    channel=reference["channel"],
                    text=message.text,
                    blocks=message.blocks,
                    unfurl_links=False,
                    unfurl_media=False,
                )  # no preview of the console
                reference.update(channel=posted["channel"], ts=posted["ts"])
            reference["shown"] = incident.history_count
            reference.pop("error", None)
        except Exception as error:
            reference["error"] = _describe(error)
            log.warning(
                "could not deliver the incident's Slack message; the sweep will retry",
                extra={"incident": incident.id, "error": reference["error"]},
            )
            if self.metrics is not None:
                self.metrics.slack_delivery_failed(incident.id, reference["error"])
        incident.notification = reference

    def _reply_in_thread(self, web: Any, incident: Incident, reference: Mapping[str, Any], shown: int) -> None:
        """The decisions since the message last changed, one line each (best effort)."""
        entries = [entry for entry in incident.history_since(shown) if entry.what not in ("open", "resume")]
        if not entries:
            return
        try:
            web.chat_postMessage(
                channel=reference["channel"],
                thread_ts=reference["ts"],
                text="\n".join(thread_reply(entry) for entry in entries),
            )
        except Exception as error:
            log.warning(
                "could not add to the message's thread", extra={"incident": incident.id, "error": _describe(error)}
            )


def _describe(error: Exception) -> str:
    if isinstance(error, SlackApiError):
        return f"Slack answered {error.response.status_code}: {error.response.get('error')}"
    return f"{type(error).__name__}: {error}"
