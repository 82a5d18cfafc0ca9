"""Incidents: what trailguard decided about one event for one playbook, and what came of it.

An incident's id is derived from the CloudTrail eventID and the playbook id, so the same
event delivered twice maps to the same incident and the store can refuse the second.

Every change of state goes through `Incident.move`, which checks it against the one table
of legal transitions (`TRANSITIONS`) and appends who made it, and when, to the history.
The store then writes the change only if nobody else changed the incident meanwhile.

An incident lives in one DynamoDB item, so nothing in it grows without bound: a history
entry's detail is cut to `DETAIL_LIMIT` characters, the history keeps its first
`HISTORY_FIRST` entries and the latest ones up to `HISTORY_LIMIT` (counting the others in
`history_dropped`), and a step's parameters, the plan's own, are kept once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from chalicelib.clock import timestamp, utc_now
from chalicelib.events.record import EventSummary
from chalicelib.memory.rules import Stance
from chalicelib.playbooks.plan import PlannedStep
from chalicelib.text import cut

TRAILGUARD = "trailguard"
"""Who the history names for what trailguard does on its own."""
AWS_PRINCIPAL_PREFIX = "aws:"
"""How the history names an AWS principal who decided through the command line: `aws:ARN`
(what STS GetCallerIdentity asserts)."""


class State(StrEnum):
    PROPOSED = "proposed"  # approve mode: waiting for a person
    REMEDIATING = "remediating"  # steps running (auto, or approved, or retried)
    REMEDIATED = "remediated"  # every step applied or already safe; undoable
    FAILED = "failed"  # a step, the plan or an undo failed; the error is recorded
    DENIED = "denied"  # a person said no to the proposal
    EXPIRED = "expired"  # nobody answered the proposal in time
    UNDOING = "undoing"  # a person asked to put things back; restores running
    UNDONE = "undone"  # every applied step was put back as it was
    ACKNOWLEDGED = "acknowledged"  # a person has seen it; nothing more to do
    NOTIFIED = "notified"  # notify mode: nothing to do but tell
    SIMULATED = "simulated"  # dry-run mode (and replay): what would have run


OPEN_STATES = frozenset({State.PROPOSED, State.REMEDIATING, State.REMEDIATED, State.FAILED, State.UNDOING})
"""States someone may still act on; the store indexes them. Others are finished and expire."""

BUSY_STATES = frozenset({State.REMEDIATING, State.UNDOING})
"""States in which a worker holds a lease and is calling AWS."""

ACTING_STATES = frozenset({State.PROPOSED, State.REMEDIATING, State.FAILED, State.UNDOING})
"""States in which an incident may still restore the configurations it holds (see `memory.rules`)."""
OBJECTING_STATES = frozenset({State.NOTIFIED, State.EXPIRED})
"""States in which an incident objects to a change nobody has accepted, but will not act."""


@dataclass(frozen=True)
class Transition:
    name: str
    sources: frozenset[State]
    target: State


def _transition(name: str, sources: set[State], target: State) -> tuple[str, Transition]:
    return name, Transition(name, frozenset(sources), target)


TRANSITIONS: Mapping[str, Transition] = dict(
    [
        _transition("approve", {State.PROPOSED}, State.REMEDIATING),
        _transition("deny", {State.PROPOSED}, State.DENIED),
        _transition("expire", {State.PROPOSED}, State.EXPIRED),
        _transition("retry", {State.FAILED}, State.REMEDIATING),
        _transition("finish", {State.REMEDIATING}, State.REMEDIATED),
        _transition("fail", {State.REMEDIATING, State.UNDOING}, State.FAILED),
        _transition("undo", {State.REMEDIATED}, State.UNDOING),
        _transition("finish_undo", {State.UNDOING}, State.UNDONE),
        _transition("refuse_undo", {State.UNDOING}, State.REMEDIATED),
        _transition("acknowledge", {State.REMEDIATED, State.FAILED, State.NOTIFIED}, State.ACKNOWLEDGED),
        # The second response (a playbook's `contain:` steps): proposed once the repair is done.
        _transition("contain", {State.REMEDIATED}, State.REMEDIATING),
        _transition("deny_containment", {State.REMEDIATED}, State.REMEDIATED),
        _transition("expire_containment", {State.REMEDIATED}, State.REMEDIATED),
        _transition("release", {State.REMEDIATED}, State.UNDOING),
        _transition("finish_release", {State.UNDOING}, State.REMEDIATED),
    ]
)
"""Every legal change of state, by the name people and code use for it."""

CLICK_TRANSITIONS = ("approve", "deny", "undo", "retry", "acknowledge", "contain", "deny_containment", "release")
"""The transitions a person makes with a Slack button. The public endpoint records them
without resealing the incident (its role cannot), so a sealed incident may be one of these
away from the state it was sealed in, and no further (see `incidents.seals`)."""


def one_click_away(sealed: State, now: State, contains: bool = False) -> bool:
    """Whether one button press leads from `sealed` to `now`; the second response's buttons
    (Approve containment, Release) only for an incident whose sealed plan has `contain:`
    steps (`contains`)."""
    return any(
        sealed in TRANSITIONS[name].sources
        and TRANSITIONS[name].target is now
        and (contains or name not in ("contain", "deny_containment", "release"))
        for name in CLICK_TRANSITIONS
    )


class IllegalTransition(Exception):
    """The incident is not in a state that allows this; the message says which would."""


class Containment(StrEnum):
    """Where an incident's second response stands: containing the actor (`contain:` steps)."""

    PROPOSED = "proposed"  # the repair is done; containing waits for a person
    APPROVED = "approved"  # approved: running, or failed (Retry runs it again)
    DENIED = "denied"  # a person said no: the repair stands alone
    APPLIED = "applied"  # the actor is contained
    RELEASED = "released"  # a person took the containment back; the repair stands
    EXPIRED = "expired"  # nobody answered the proposal in time: the repair stands alone


class StepStatus(StrEnum):
    APPLYING = "applying"  # snapshot recorded, change under way (a crash leaves this)
    APPLIED = "applied"
    ALREADY_SAFE = "already-safe"
    FAILED = "failed"
    NOT_RUN = "not-run"  # an earlier step failed
    SIMULATED = "simulated"
    UNDONE = "undone"  # put back as it was before trailguard acted


_CONTAINMENT_NEEDED: Mapping[str, Containment] = {
    "contain": Containment.PROPOSED,
    "deny_containment": Containment.PROPOSED,
    "expire_containment": Containment.PROPOSED,
    "release": Containment.APPLIED,
}
"""The containment a transition of the second response needs."""

HISTORY_LIMIT = 100
"""The most history entries an incident keeps: the first `HISTORY_FIRST` and the latest."""
HISTORY_FIRST = 20


@dataclass
class StepResult:
    action: str
    params: dict[str, Any]
    status: StepStatus
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    error: str | None = None
    note: str | None = None
    """How the action did it, when that matters (restored from what, fell back to what)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "params": self.params,
            "status": self.status.value,
            "before": self.before,
            "after": self.after,
            "error": self.error,
            "note": self.note,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], planned: PlannedStep | None = None) -> StepResult:
        """`planned`: the plan's step, whose parameters a step without its own has."""
        if "params" not in data and planned is None:
            raise KeyError("params")
        return cls(
            action=data["action"],
            params=dict(data["params"] if "params" in data else planned.params),  # type: ignore[union-attr]
            status=StepStatus(data["status"]),
            before=data.get("before"),
            after=data.get("after"),
            error=data.get("error"),
            note=data.get("note"),
        )


@dataclass(frozen=True)
class HistoryEntry:
    """One decision: who (an AWS principal, a Slack user, trailguard itself), what, when."""

    at: str
    who: str
    what: str
    state: State
    detail: str | None = None

    def to_dict(self) -> dict[str, Any]:
        entry = {"at": self.at, "who": self.who, "what": self.what, "state": self.state.value}
        if self.detail:
            entry["detail"] = self.detail
        return entry

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HistoryEntry:
        return cls(data["at"], data["who"], data["what"], State(data["state"]), data.get("detail"))


def incident_id(event_id: str, playbook_id: str) -> str:
    digest = hashlib.sha256(f"{event_id}\n{playbook_id}".encode()).hexdigest()
    return f"inc-{digest[:20]}"


@dataclass
class Incident:
    id: str
    playbook_id: str
    playbook_version: int
    title: str
    severity: str
    mode: str
    event: EventSummary
    state: State
    plan: list[PlannedStep] = field(default_factory=list)
    steps: list[StepResult] = field(default_factory=list)
    error: str | None = None
    created_at: str = field(default_factory=lambda: timestamp(utc_now()))
    history: list[HistoryEntry] = field(default_factory=list)
    notification: dict[str, Any] | None = None
    """Where its message lives (Slack `channel` and `ts`), so later changes update it; how many
    history entries it `shown`; the last delivery `error`. None: no message to keep."""
    lease_until: str | None = None
    """While busy: until when the worker that claimed it may run; after that, another may resume."""
    history_dropped: int = 0
    """History entries recorded but no longer kept (between the first ones and the latest)."""
    version: int = 0
    """How many times the store has written it; every write is conditional on this."""
    seal: str | None = None
    """The integrity tag trailguard's acting roles put on what only they may write (see
    `incidents.seals`); None until one of them has written it."""
    sealed_state: State | None = None
    """The state the seal was made in: a click may have moved it on since, by one button."""
    mode_note: str | None = None
    """When the organization's settings lowered the playbook's mode: from what, to what, by
    which rule (`auto -> approve: modes.accounts.111122223333`). Sealed, like the mode."""
    stored_state: State | None = field(default=None, compare=False, repr=False)
    """The state as last read from or written to the store (not serialized): a write is
    also conditional on the store still holding it."""

    def move(self, transition: str, who: str, detail: str | None = None, now: dt.datetime | None = None) -> None:
        """Change state by a named transition, or raise IllegalTransition saying why not."""
        rule = TRANSITIONS.get(transition)
        if rule is None:
            raise IllegalTransition(f"unknown transition {transition!r}")
        if self.state not in rule.sources:
            allowed = " or ".join(sorted(state.value for state in rule.sources))
            raise IllegalTransition(
                f"cannot {transition} incident {self.id}: it is {self.state.value}, and {transition} needs {allowed}"
            )
        needed = _CONTAINMENT_NEEDED.get(transition)
        if needed is not None and self.containment is not needed:
            now_is = self.containment.value if self.containment else "none (the playbook proposes no containment)"
            raise IllegalTransition(
                f"cannot {transition} incident {self.id}: its containment is {now_is}, and {transition} needs "
                f"{needed.value}"
            )
        self.state = rule.target
        self.record(who, transition, detail, now)

    def record(self, who: str, what: str, detail: str | None = None, now: dt.datetime | None = None) -> None:
        """Add a decision to the history without changing state (opening, resuming); past
        HISTORY_LIMIT entries, the oldest after the first HISTORY_FIRST is let go."""
        entry = HistoryEntry(timestamp(now or utc_now()), who, what, self.state, cut(detail) if detail else detail)
        self.history.append(entry)
        if len(self.history) > HISTORY_LIMIT:
            del self.history[HISTORY_FIRST]
            self.history_dropped += 1

    # -- the second response: containing the actor ------------------------------------------

    @property
    def containment(self) -> Containment | None:
        """Where containing the actor stands; None when the plan has no `contain:` step."""
        indices = [index for index, step in enumerate(self.plan) if step.contain]
        if not indices:
            return None
        if any(entry.what == "finish_release" for entry in self.history):
            # Released: a step that found the actor already contained had nothing to put
            # back, so the statuses alone would still say applied.
            return Containment.RELEASED
        statuses = [self.steps[index].status if index < len(self.steps) else None for index in indices]
        if statuses and all(status in (StepStatus.APPLIED, StepStatus.ALREADY_SAFE) for status in statuses):
            return Containment.APPLIED
        if any(status is StepStatus.UNDONE for status in statuses):
            return Containment.RELEASED
        decided = self._containment_decision()
        if decided == "contain":
            return Containment.APPROVED
        if decided == "deny_containment":
            return Containment.DENIED
        if decided == "expire_containment":
            return Containment.EXPIRED
        return Containment.PROPOSED

    @property
    def containment_approved(self) -> bool:
        """Whether its `contain:` steps may run: a person approved them (the step runner asks)."""
        return self._containment_decision() == "contain"

    def _containment_decision(self) -> str | None:
        """The last decision on the containment: a playbook with nothing to repair (only
        `contain:` steps) proposes the containment itself, so its Approve approves it."""
        only_containment = all(step.contain for step in self.plan)
        decisions = ("contain", "deny_containment", "expire_containment")
        decided = self._last_of((*decisions, "approve") if only_containment else decisions)
        return "contain" if decided == "approve" else decided

    @property
    def containment_proposed_at(self) -> str | None:
        """When containing the actor began to wait for a person: when the repair was done
        (its last `finish`); None unless the containment is proposed."""
        if self.containment is not Containment.PROPOSED:
            return None
        return next((entry.at for entry in reversed(self.history) if entry.what == "finish"), self.created_at)

    @property
    def releasing(self) -> bool:
        """Whether the undo under way takes back the containment only (Release), not everything."""
        return self.state is State.UNDOING and self._last_of(("undo", "release")) == "release"

    def _last_of(self, names: tuple[str, ...]) -> str | None:
        return next((entry.what for entry in reversed(self.history) if entry.what in names), None)

    @property
    def history_count(self) -> int:
        """How many history entries were ever recorded, kept or not."""
        return len(self.history) + self.history_dropped

    def history_since(self, count: int) -> list[HistoryEntry]:
        """The entries recorded after the first `count` ones (those still kept)."""
        numbered = (
            (index if index < HISTORY_FIRST else index + self.history_dropped, entry)
            for index, entry in enumerate(self.history)
        )
        return [entry for number, entry in numbered if number >= count]

    @property
    def notification_due(self) -> bool:
        """Whether its message does not show its latest change yet (not delivered, or Slack
        failed): the message records how many history entries it shows."""
        return self.notification is not None and self.notification.get("shown") != self.history_count

    @property
    def decisions(self) -> int:
        """How many decisions (history entries) it holds: a message's buttons carry it, so that
        a press on a message older than the incident's last decision is refused. Delivering a
        message does not change it (unlike `version`)."""
        return len(self.history)

    def lease_expired(self, now: dt.datetime) -> bool:
        return self.lease_until is None or dt.datetime.fromisoformat(self.lease_until) <= now

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "playbook": self.playbook_id,
            "playbookVersion": self.playbook_version,
            "title": self.title,
            "severity": self.severity,
            "mode": self.mode,
            "state": self.state.value,
            "event": self.event.to_dict(),
            "plan": [step.to_dict() for step in self.plan],
            "steps": [self._step_dict(index, step) for index, step in enumerate(self.steps)],
            "error": self.error,
            "createdAt": self.created_at,
            "history": [entry.to_dict() for entry in self.history],
            "historyDropped": self.history_dropped,
            "notification": self.notification,
            "leaseUntil": self.lease_until,
            "version": self.version,
            "seal": self.seal,
            "sealedState": self.sealed_state.value if self.sealed_state is not None else None,
            # Only when set: the seal covers every key, and incidents sealed before it existed keep theirs.
            **({"modeNote": self.mode_note} if self.mode_note else {}),
        }

    def _step_dict(self, index: int, step: StepResult) -> dict[str, Any]:
        """A step as stored: without its parameters when they are the plan's (kept once)."""
        data = step.to_dict()
        if index < len(self.plan) and self.plan[index].params == step.params:
            del data["params"]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Incident:
        plan = [PlannedStep.from_dict(step) for step in data.get("plan") or []]
        return cls(
            id=data["id"],
            playbook_id=data["playbook"],
            playbook_version=data["playbookVersion"],
            title=data["title"],
            severity=data["severity"],
            mode=data["mode"],
            event=EventSummary(data["event"]),
            state=State(data["state"]),
            plan=plan,
            steps=[
                StepResult.from_dict(step, plan[index] if index < len(plan) else None)
                for index, step in enumerate(data.get("steps") or [])
            ],
            error=data.get("error"),
            created_at=data["createdAt"],
            history=[HistoryEntry.from_dict(entry) for entry in data.get("history") or []],
            notification=data.get("notification"),
            lease_until=data.get("leaseUntil"),
            history_dropped=int(data.get("historyDropped") or 0),
            version=int(data.get("version", 0)),
            seal=data.get("seal"),
            sealed_state=_state_or_none(data.get("sealedState")),
            mode_note=data.get("modeNote"),
        )


def _state_or_none(value: Any) -> State | None:
    """A sealed state as stored; anything else is no sealed state (and the seal check says so)."""
    try:
        return State(value)
    except ValueError:
        return None


def stance(incident: Incident | None) -> Stance:
    """Where the incident stands on the change it was opened on, as memory asks it of the
    incidents that hold a remembered configuration (None: gone from the table)."""
    if incident is None:
        return Stance.NONE
    if incident.state in ACTING_STATES:
        return Stance.ACTING
    if incident.state in OBJECTING_STATES:
        return Stance.OBJECTING
    if incident.state in (State.DENIED, State.UNDONE):
        return Stance.ACCEPTED
    if incident.state is State.ACKNOWLEDGED and all(entry.state is not State.REMEDIATED for entry in incident.history):
        return Stance.ACCEPTED  # acknowledged a failure or a notice, never remediated
    return Stance.NONE


class _Readable(Protocol):
    def get(self, incident_id: str) -> Incident | None: ...


def stance_in(store: _Readable) -> Callable[[str], Stance]:
    """The stance of each incident in `store`, by id: what `memory.rules.Memory` asks."""
    return lambda incident_id: stance(store.get(incident_id))
