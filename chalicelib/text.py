"""Text that comes from elsewhere (an AWS error, a caller's user agent, a person's note),
kept or shown within a bound, saying how much was left out.

An incident lives in one DynamoDB item and a Slack message has limits of its own, so no
such text is kept whole when it is long.
"""

from __future__ import annotations

DETAIL_LIMIT = 1000
"""The most characters kept of one detail: an error, a refusal, a history entry's detail."""


def cut(text: str, limit: int = DETAIL_LIMIT) -> str:
    """`text`, or its start and how much was left out when it is longer than `limit`."""
    if len(text) <= limit:
        return text
    kept = limit - 40  # room for the marker
    return f"{text[:kept]}… ({len(text) - kept:,} more characters)"
