"""`POST /slack/interactions` as the route answers it: the interactions built on the first
click, Slack's signatures checked with the app's signing secret, and a failure of
trailguard or of its table answered 503, never 500 with a stack trace.

Nothing is decided when that happens (a decision is one conditional write, the last step
before the hand-over), so the person can press again.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping
from typing import Any

from chalicelib.metrics import ENDPOINT, Metrics
from chalicelib.slack.interactions import Answer, Interactions

log = logging.getLogger("trailguard")


class SlackEndpoint:
    def __init__(self, interactions: Callable[[], Interactions], *, metrics: Metrics | None = None) -> None:
        """`interactions()` builds them; it is called once, on the first click. `metrics`
        counts a 503."""
        self._interactions = functools.cache(interactions)
        self.metrics = metrics

    def answer(self, raw_body: bytes | str, headers: Any) -> Answer:
        """The `Answer` to one request, within Slack's 3 s (see `slack.interactions`)."""
        try:
            return self._interactions().answer(raw_body, headers)
        except Exception:
            log.exception("could not handle a Slack interaction")
            if self.metrics is not None:
                self.metrics.handler_error(ENDPOINT, "could not handle a Slack interaction")
            return Answer(503, {"error": "trailguard could not handle the click; nothing was changed; try again"})


def signature_check(signing_secret: Callable[[], str]) -> Callable[[bytes | str, Mapping[str, str]], bool]:
    """Whether a request carries Slack's signature, made with the app's signing secret
    (`signing_secret()`, read once). A secret that cannot be read refuses every request,
    each refusal logged: a misconfigured stage answers nothing it cannot verify."""
    from slack_sdk.signature import SignatureVerifier

    @functools.cache
    def verifier() -> SignatureVerifier:
        return SignatureVerifier(signing_secret())

    def verify(body: bytes | str, headers: Mapping[str, str]) -> bool:
        try:
            checker = verifier()
        except Exception as error:
            log.error("cannot check Slack signatures", extra={"reason": str(error)})
            return False
        return bool(checker.is_valid_request(body, headers))

    return verify
