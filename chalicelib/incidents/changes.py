"""What other tools are told when an incident opens or comes to rest: the state-change hook.

The acting functions' door (`lifecycle.Incidents`) calls it right after the conditional
write that made the change succeeded, so a retried Lambda, a second delivery of the event
or a double click, whose writes the store refuses, is never told twice:

- `opened(incident)`: the store created it (a duplicate delivery creates nothing);
- `rested(incident)`: it came to rest in a state (every state but `remediating` and
  `undoing`, which an incident passes through while a worker calls AWS). A click leaves
  the incident in the state it chose without resealing it (the public endpoint records
  clicks and holds no permission to tell anyone); the worker, which every click is handed
  to, tells it when it first writes that state under trailguard's seal (`settle`).

`notify` is not this hook: it also runs when a message is brought up to date, on resumes
and redeliveries. What listens (metrics, Security Hub, EventBridge: `chalicelib.outputs`)
is given by the runtime; each listener failing is its own business, never the incident's.
"""

from __future__ import annotations

import logging

from chalicelib.incidents.model import Incident

log = logging.getLogger("trailguard")


class StateChanges:
    """Told of every incident the acting functions open, and of every state it rests in."""

    def opened(self, incident: Incident) -> None:
        return None

    def rested(self, incident: Incident) -> None:
        return None


NO_CHANGES = StateChanges()
"""Nobody listens (replay, the Slack endpoint's door, tests of other things)."""


def tell_opened(changes: StateChanges, incident: Incident) -> None:
    """`changes.opened`, logged and never raised: the incident is written already."""
    try:
        changes.opened(incident)
    except Exception:
        log.exception("could not tell that incident %s opened", incident.id)


def tell_rested(changes: StateChanges, incident: Incident) -> None:
    """`changes.rested`, logged and never raised: the incident is written already."""
    try:
        changes.rested(incident)
    except Exception:
        log.exception("could not tell that incident %s is %s", incident.id, incident.state.value)
