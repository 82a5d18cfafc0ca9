"""Retrying our own conditions: AWS is eventually consistent, and a resource just created
(a trail, a key) may not be visible to the next call for a moment.

botocore's retry mode handles throttling and 5xx; this is for error codes that mean
"not yet", which botocore rightly does not retry. Bounded: a few attempts over a few
seconds, then the error is raised and recorded in the incident.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

ATTEMPTS = 5
MAX_WAIT_SECONDS = 4.0


def error_code(error: BaseException) -> str | None:
    response = getattr(error, "response", None)
    return response.get("Error", {}).get("Code") if isinstance(response, dict) else None


def eventually[T](call: Callable[[], T], *, codes: tuple[str, ...], attempts: int = ATTEMPTS) -> T:
    """`call()`, again while it fails with one of `codes`, at most `attempts` times."""
    import tenacity  # imported here: 30 ms that only a re-creating action needs

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception(lambda error: error_code(error) in codes),
        stop=tenacity.stop_after_attempt(attempts),
        wait=tenacity.wait_exponential(multiplier=0.25, max=MAX_WAIT_SECONDS),
        reraise=True,
    )
    return retrying(call)
