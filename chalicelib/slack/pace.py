"""Slack's posting rate, kept by every container at once.

Slack lets an app post about one message a second to a channel (`chat.postMessage`, short
bursts aside) and answers 429 beyond it; 50k incidents a day arrive in bursts far above
that. Each post first claims its channel's second: a slot is a conditional write (DynamoDB,
the incidents' table, so the 50 handlers of a storm share it; a dict in one process), and
whoever claims a second posts in it. A caller waits for a free second a few seconds at most;
past that its message stays due, and the sweep posts what is due grouped by playbook and
account, one digest per burst (`SlackNotifier.notify_all`).

`chat.update` is not counted: Slack limits it per workspace (Tier 3), not per channel.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

log = logging.getLogger("trailguard")

POSTS_PER_SECOND = 1
"""Slack's documented rate for chat.postMessage to one channel."""

PACE_PREFIX = "slack-pace#"
SLOT_TTL_SECONDS = 3600


class Slots(Protocol):
    def claim(self, channel: str, second: int) -> bool:
        """Take the channel's posting slot for that second; False if someone has it."""


class MemorySlots:
    """The slots of one process (the demo, the CLI, a stage without a table)."""

    def __init__(self) -> None:
        self._taken: set[tuple[str, int]] = set()
        self._lock = threading.Lock()

    def claim(self, channel: str, second: int) -> bool:
        with self._lock:
            if (channel, second) in self._taken:
                return False
            self._taken.add((channel, second))
            return True


class DynamoSlots:
    """Slots as items of the incidents' table (`slack-pace#CHANNEL#SECOND`), gone by TTL
    within the hour. If DynamoDB cannot answer, the post goes ahead: slack_sdk still waits
    out a 429, and a message is worth more than the rate."""

    def __init__(self, client: Any, table: str) -> None:
        self.client = client
        self.table = table

    def claim(self, channel: str, second: int) -> bool:
        try:
            self.client.put_item(
                TableName=self.table,
                Item={
                    "pk": {"S": f"{PACE_PREFIX}{channel}#{second}"},
                    "expiresAt": {"N": str(second + SLOT_TTL_SECONDS)},
                },
                ConditionExpression="attribute_not_exists(pk)",
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        except Exception:
            log.warning("could not claim a Slack posting slot; posting anyway", exc_info=True)
        return True


class Pace:
    def __init__(
        self,
        slots: Slots,
        *,
        wait_seconds: float = 3.0,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """`wait_seconds`: how long a caller may wait for its channel's next free second."""
        self.slots = slots
        self.wait_seconds = wait_seconds
        self.clock = clock
        self.sleep = sleep

    def wait_turn(self, channel: str) -> bool:
        """Claim the first free second of `channel` within the wait, and wait for it: True
        when the caller may post now, False when the channel is busy for longer."""
        now = self.clock()
        first = math.floor(now)
        for second in range(first, math.floor(now + self.wait_seconds) + 1):
            if self.slots.claim(channel, second):
                if second > now:
                    self.sleep(second - now)
                return True
        return False
