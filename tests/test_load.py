"""A burst through the rules' handler in threads: exactly one incident per distinct event,
every duplicate delivery collapsed, nothing lost (bench/load.py; `make fuzz` runs the full
10,000 events and 1,000 duplicates, CI a fifth of it)."""

from __future__ import annotations

import os

import pytest

from bench.load import burst

pytestmark = pytest.mark.e2e

EVENTS = int(os.environ.get("TRAILGUARD_LOAD_EVENTS", "2000"))


def test_a_burst_with_duplicates_opens_one_incident_per_distinct_event():
    result = burst(EVENTS, EVENTS // 10, threads=8)
    assert result.errors == []
    assert result.opened == EVENTS and result.duplicates_collapsed == EVENTS // 10
    assert result.lost == [] and result.extra == 0
    assert result.incidents_in_table == EVENTS + 1  # and the warm-up event's
    assert result.states == {"notified": EVENTS * 9 // 10, "remediated": EVENTS // 10}
    print(
        f"load: {EVENTS} events + {EVENTS // 10} duplicates in {result.seconds} s "
        f"({result.deliveries_per_second} deliveries/s, {result.threads} threads)"
    )
