"""Posting an incident's message to Slack, and keeping that one message up to date.

The first delivery posts to the playbook's channel (or the default) and notes where the
message lives on the incident; every later change updates the same message and adds a
line to its thread (who approved, what failed). The incident notes how much of its history
the message shows, so a message Slack did not take (down, rate limited past slack_sdk's
retries, a bad token) stays due, and the posture sweep delivers it later. The incidents'
door writes those notes (`Incidents.notify`); nothing here reads or writes the table, and
nothing here can lose an incident: it was written before anyone is told.

Posts keep Slack's per-channel rate (`slack.pace`): a message whose channel has no free
second within a few seconds stays due (`deferred`), and the sweep posts what is due at
once through `notify_all`, a burst of one playbook in one account as one digest message.
An incident in a digest gets a message of its own, with its buttons, at its next change.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from slack_sdk.errors import SlackApiError

from chalicelib.incidents.model import Incident
from chalicelib.incidents.notify import Notifier
from chalicelib.metrics import Metrics
from chalicelib.slack.messages import DIGEST_SIZE, render, render_digest, thread_reply
from chalicelib.slack.pace import MemorySlots, Pace

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
        pace: Pace | None = None,
    ) -> None:
        """`connect()` gives the WebClient; it is called on first delivery, so that a token
        that cannot be read is recorded as a delivery error, not raised at import. `metrics`
        counts each delivery that failed. `pace`: the channels' posting slots (shared by
        every container through the table when deployed)."""
        self.metrics = metrics
        self.pace = pace or Pace(MemorySlots())
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

    def notify_all(self, incidents: list[Incident]) -> None:
        """Bring every message up to date, posting the new ones of a burst grouped: the
        incidents of one playbook in one account that have no message yet share a digest
        (up to DIGEST_SIZE each), one post instead of one each."""
        groups: dict[tuple[str, str, str], list[Incident]] = {}
        for incident in incidents:
            if incident.notification is None:
                incident.notification = self.address(incident)
            reference = incident.notification or {}
            if not incident.notification_due:
                continue
            if reference.get("ts") and not reference.get("digest"):
                self._deliver(incident)
            else:
                key = (self._pace_key(incident), incident.playbook_id, incident.event.account or "")
                groups.setdefault(key, []).append(incident)
        for (channel, _, _), group in groups.items():
            for start in range(0, len(group), DIGEST_SIZE):
                part = group[start : start + DIGEST_SIZE]
                if len(part) == 1:
                    self._deliver(part[0])
                else:
                    self._post_digest(channel, part)

    def _post_digest(self, channel: str, incidents: list[Incident]) -> None:
        """One message for several incidents; each notes it shows them as they are now."""
        try:
            web = self._web or self._connect()
            self._web = web
            if not self.pace.wait_turn(channel):
                raise _Deferred(channel)
            message = render_digest(incidents, self.account_names)
            posted = web.chat_postMessage(
                channel=channel, text=message.text, blocks=message.blocks, unfurl_links=False, unfurl_media=False
            )
        except Exception as error:
            for incident in incidents:
                self._failed(incident, dict(incident.notification or {}), error)
            return
        for incident in incidents:
            incident.notification = {
                "channel": posted["channel"],
                "ts": posted["ts"],
                "shown": incident.history_count,
                "digest": True,
            }

    def _pace_key(self, incident: Incident) -> str:
        """The channel as configured: the same key for a new message and its thread."""
        return str(self.address(incident)["channel"])

    def _deliver(self, incident: Incident) -> None:
        reference = dict(incident.notification or {})
        shown = reference.get("shown") or 0
        if reference.pop("digest", None):  # shown in a digest: its own message, with its buttons, from now on
            reference.pop("ts", None)
            reference["channel"] = self._pace_key(incident)
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
                if not self.pace.wait_turn(self._pace_key(incident)):
                    raise _Deferred(self._pace_key(incident))
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
            self._failed(incident, reference, error)
            return
        incident.notification = reference

    def _failed(self, incident: Incident, reference: dict[str, Any], error: Exception) -> None:
        """The message stays due, saying why; a deferral is no failure (not counted)."""
        reference["error"] = _describe(error)
        if isinstance(error, _Deferred):
            log.info("Slack message deferred", extra={"incident": incident.id, "error": reference["error"]})
        else:
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
        if not self.pace.wait_turn(self._pace_key(incident)):
            log.warning("the channel is at Slack's posting rate: no thread line", extra={"incident": incident.id})
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


class _Deferred(Exception):
    def __init__(self, channel: str) -> None:
        super().__init__(f"deferred: {channel} is at Slack's posting rate; the sweep posts it")


def _describe(error: Exception) -> str:
    if isinstance(error, _Deferred):
        return str(error)
    if isinstance(error, SlackApiError):
        return f"Slack answered {error.response.status_code}: {error.response.get('error')}"
    return f"{type(error).__name__}: {error}"
