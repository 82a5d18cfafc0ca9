"""Retrying our own conditions: AWS is eventually consistent, and a resource just created
(a trail, a key) may not be visible to the next call for a moment, nor a change show at
once in the next read.

botocore's retry mode handles throttling and 5xx; this is for error codes that mean
"not yet", which botocore rightly does not retry, and for reads that do not show a change
yet. Bounded: a few attempts over a few seconds, then the error is raised (or the last
read returned) and recorded in the incident.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

ATTEMPTS = 5
MAX_WAIT_SECONDS = 4.0


def error_code(error: BaseException) -> str | None:
    response = getattr(error, "response", None)
    return response.get("Error", {}).get("Code") if isinstance(response, dict) else None


def eventually[T](
    call: Callable[[], T],
    *,
    codes: tuple[str, ...] = (),
    until: Callable[[T], bool] | None = None,
    attempts: int = ATTEMPTS,
) -> T:
    """`call()`, again while it fails with one of `codes` or its result does not satisfy
    `until`, at most `attempts` times; the last result is returned whether it satisfies
    `until` or not (the caller judges it), the last error raised."""
    import tenacity  # imported here: 30 ms that only a re-creating action needs

    retry: Any = tenacity.retry_if_exception(lambda error: error_code(error) in codes)
    if until is not None:
        retry = retry | tenacity.retry_if_result(lambda result: not until(result))
    retrying = tenacity.Retrying(
        retry=retry,
        stop=tenacity.stop_after_attempt(attempts),
        wait=tenacity.wait_exponential(multiplier=0.25, max=MAX_WAIT_SECONDS),
        retry_error_callback=lambda state: state.outcome.result() if state.outcome else None,
        reraise=True,
    )
    return retrying(call)
