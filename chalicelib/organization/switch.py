"""The kill switch and the global dry-run switch: one SSM parameter per stage
(`/trailguard/STAGE/switch`), read at run time, so that a person stops all remediation in one
command (`trailguard pause --stage prod`) without a redeploy, and starts it again (`resume`).

The parameter holds `active`, `dry-run` or `paused`, as a word or as JSON with who set it,
when and why (what the command writes). A function reads it at most every
`TRAILGUARD_SWITCH_SECONDS` (30 s): a pause takes effect within that time everywhere.

- `dry-run`: every new incident runs dry (what would have been done is recorded and told);
  decisions people already made are still carried out.
- `paused`: as dry-run, and nothing is carried out either: an approval, a retry, an undo or
  a stuck incident's resumption fails (or, for an undo, is refused) saying so, and can be
  pressed again after `resume`.

When the parameter cannot be read (SSM throttled or down, a permission missing), the last
value read in this container is kept, however old: the operator's last decision stands.
With no value read yet, the stage counts as paused: it records and tells, and changes
nothing, until it can read the switch. A parameter that does not exist is `active` (a stage
never paused); one whose value is not understood counts as paused: someone meant something.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from chalicelib.organization.model import Ceiling

log = logging.getLogger("trailguard")

ACTIVE = "active"
DRY_RUN = "dry-run"
PAUSED = "paused"
STATES = (ACTIVE, DRY_RUN, PAUSED)


@dataclass(frozen=True)
class SwitchState:
    state: str
    by: str | None = None
    at: str | None = None
    reason: str | None = None
    error: str | None = None
    """Set when this state is assumed, not read (the parameter could not be read or understood)."""

    @property
    def paused(self) -> bool:
        return self.state == PAUSED

    def describe(self) -> str:
        """`paused by arn:… at 2026-…: reason`, for incidents, messages and the command line."""
        parts = [self.state]
        if self.by:
            parts.append(f"by {self.by}")
        if self.at:
            parts.append(f"at {self.at}")
        text = " ".join(parts)
        if self.reason:
            text += f": {self.reason}"
        if self.error:
            text += f" ({self.error})"
        return text

    def to_value(self) -> str:
        """The parameter's value for this state (what `trailguard pause` writes)."""
        data = {"state": self.state, "by": self.by, "at": self.at, "reason": self.reason}
        return json.dumps({key: value for key, value in data.items() if value is not None})

    @classmethod
    def from_value(cls, value: str) -> SwitchState:
        text = value.strip()
        if text in STATES:
            return cls(text)
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if isinstance(data, dict) and data.get("state") in STATES:
            return cls(
                str(data["state"]),
                *(str(data[key]) if data.get(key) is not None else None for key in ("by", "at", "reason")),
            )
        return cls(PAUSED, error=f"the switch holds {text[:60]!r}, which is not {', '.join(STATES)}")


NEVER_SET = SwitchState(ACTIVE)


class Switch:
    def __init__(
        self,
        read: Callable[[], str | None],
        *,
        seconds: float = 30,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`read()` returns the parameter's value, None if it does not exist, and raises when
        it cannot be read."""
        self._read = read
        self.seconds = seconds
        self.clock = clock
        self._known: SwitchState | None = None
        self._read_at: float | None = None

    def state(self) -> SwitchState:
        now = self.clock()
        if self._read_at is not None and now - self._read_at < self.seconds and self._known is not None:
            return self._known
        try:
            value = self._read()
        except Exception as error:
            from chalicelib.aws.errors import describe_error

            problem = f"the switch could not be read: {describe_error(error)}"
            log.warning("kill switch unreadable", extra={"reason": problem, "known": bool(self._known)})
            self._read_at = now  # not asked again before the cache runs out: SSM may be throttling
            if self._known is not None and self._known.error is None:
                return self._known
            self._known = SwitchState(PAUSED, error=problem + "; nothing is changed until it can be")
            return self._known
        self._known = NEVER_SET if value is None else SwitchState.from_value(value)
        self._read_at = now
        return self._known

    def ceiling(self) -> Ceiling | None:
        state = self.state()
        if state.state == ACTIVE:
            return None
        return Ceiling(DRY_RUN, f"the stage's switch: {state.describe()}")

    def pause_reason(self) -> str | None:
        """Why nothing may be carried out now (paused, or the switch unreadable), or None."""
        state = self.state()
        return f"trailguard is {state.describe()}" if state.paused else None


def ssm_reader(ssm: Callable[[], Any], name: str) -> Callable[[], str | None]:
    """`read` for a `Switch` over the SSM parameter `name` (`ssm()` gives the client)."""

    def read() -> str | None:
        client = ssm()
        try:
            value: str = client.get_parameter(Name=name)["Parameter"]["Value"]
        except client.exceptions.ParameterNotFound:
            return None
        return value

    return read
