"""Slack Web API clients with slack_sdk's own retry handlers.

Slack answers 429 with Retry-After when a channel is busy, and now and then 5xx or a
dropped connection; slack_sdk retries each (RateLimitErrorRetryHandler waits as long as
Retry-After says). Past that, the caller records the failure on the incident and the
sweep delivers later.
"""

from __future__ import annotations

from slack_sdk import WebClient
from slack_sdk.http_retry import RetryHandler
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.webhook import WebhookClient

SLACK_API = "https://slack.com/api/"
TIMEOUT_SECONDS = 10
"""Per request; a click's worker has 60 s, and the sweep retries what does not get through."""


def retry_handlers() -> list[RetryHandler]:
    return [
        RateLimitErrorRetryHandler(max_retry_count=2),
        ServerErrorRetryHandler(max_retry_count=2),
        ConnectionErrorRetryHandler(max_retry_count=2),
    ]


QUICK_TIMEOUT_SECONDS = 2
"""For calls made while Slack waits for our answer (approver lookups): no retries, no waits."""


def web_client(token: str, base_url: str | None = None, *, quick: bool = False) -> WebClient:
    """A Web API client; `quick` for calls inside the 3-second answer to a click, where a
    Retry-After wait would make Slack give up: such a call fails fast instead."""
    base = base_url or SLACK_API
    return WebClient(
        token=token,
        base_url=base if base.endswith("/") else base + "/",
        timeout=QUICK_TIMEOUT_SECONDS if quick else TIMEOUT_SECONDS,
        retry_handlers=[] if quick else retry_handlers(),
    )


def response_client(url: str) -> WebhookClient:
    """Answers through an interaction's `response_url` (ephemeral messages)."""
    return WebhookClient(url, timeout=TIMEOUT_SECONDS, retry_handlers=retry_handlers())
