"""Errors people read: what went wrong with a call to AWS, in one line for an incident or a message."""

from __future__ import annotations

from chalicelib.text import cut


class ActionError(Exception):
    """An action could not do its job; the message is meant for the person on call."""


def describe_error(error: BaseException) -> str:
    """A one-line error for incidents and messages (AWS's error code and message if any),
    cut to DETAIL_LIMIT characters: some AWS messages quote the request."""
    response = getattr(error, "response", None)
    if isinstance(response, dict) and "Error" in response:
        details = response["Error"]
        text = f"{details.get('Code', 'Error')}: {details.get('Message', '')}".strip()
    elif isinstance(error, ActionError):
        text = str(error)
    else:
        text = f"{type(error).__name__}: {error}"
    return cut(text)
