"""What a Lambda container holds: the catalog, loaded once at import, and a responder.

The catalog is loaded when `app.py` is imported, so that `chalice package`/`deploy`
refuse a bad playbook before anything is deployed. The responder and its AWS clients
are built on the first event, keeping the cold start small; building it asks STS who we
are, so that calls made through the function's own role are never answered.

Event handling draws one line between bad input and failure: an event that is not a
usable CloudTrail event is answered with "rejected" and a log line (Lambda must not retry
it); an action that fails is recorded in its incident. Only an error in trailguard itself
escapes, so that Lambda's bounded retries and failure destination keep the event.
"""

from __future__ import annotations

import functools
import json
import logging
from typing import Any

from chalicelib.aws import AwsClients
from chalicelib.catalog import Catalog
from chalicelib.events import CloudTrailEvent, EventError
from chalicelib.executor import AwsExecutor
from chalicelib.notify import LogNotifier
from chalicelib.responder import Responder
from chalicelib.settings import Settings
from chalicelib.store import MemoryStore

log = logging.getLogger("trailguard")


class Runtime:
    def __init__(self, settings: Settings, catalog: Catalog) -> None:
        self.settings = settings
        self.catalog = catalog
        log.setLevel(settings.log_level)

    @classmethod
    def from_environment(cls) -> Runtime:
        settings = Settings.from_environment()
        return cls(settings, Catalog.load(settings.playbooks))

    @functools.cached_property
    def responder(self) -> Responder:
        clients = AwsClients()
        own_role = clients.own_role_name()
        return Responder(
            self.catalog,
            own_role_names=self.settings.own_role_names | ({own_role} if own_role else set()),
            store=MemoryStore(),
            executor=AwsExecutor(clients),
            notifier=LogNotifier(),
        )

    def handle_eventbridge(self, raw: Any) -> dict[str, Any]:
        """Answer one EventBridge delivery; the result is also what the logs show."""
        try:
            event = CloudTrailEvent.from_eventbridge(raw)
        except EventError as error:
            log.warning(json.dumps({"message": "event rejected", "reason": str(error)}))
            return {"status": "rejected", "reason": str(error)}
        decision, outcomes = self.responder.respond(event)
        result: dict[str, Any] = {"status": "handled", "eventID": event.event_id, "eventName": event.name}
        if decision.skip is not None:
            result.update(status="skipped", skipped=decision.skip.code, reason=decision.skip.reason)
        result["incidents"] = [
            {"id": o.incident.id, "playbook": o.playbook.id, "state": o.incident.state.value, "duplicate": o.duplicate}
            for o in outcomes
        ]
        log.info(json.dumps({"message": "event handled", **result}))
        return result
