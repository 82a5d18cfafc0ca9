"""One JSON object per log line, so CloudWatch Logs Insights finds every field by itself.

trailguard logs through the logging API: a message that says what happened, and its
fields as `extra` (`log.info("decision", extra={"incident": ..., "state": ...})`). In
Lambda a line would be printed after a prefix that Logs Insights cannot split into
fields: Chalice gives the app's logger (named `trailguard`, as the app) a stdout handler
writing `trailguard - INFO - ...`, and the runtime's root handler adds its own
tab-separated prefix. `configure` gives both handlers this formatter instead: `time`,
`level`, `logger`, `message`, the line's own fields and the Lambda request id. A line
without fields (botocore's, a traceback) is just its message, with `error` holding the
trace on one line. Queries are in docs/security.md.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from typing import Any

_RECORD_ATTRIBUTES = frozenset(
    {*logging.LogRecord("", logging.INFO, "", 0, "", None, None).__dict__, "message", "asctime", "aws_request_id"}
)
"""What every log record holds; anything else on a record came as a field (`extra`)."""


def fields_of(record: logging.LogRecord) -> dict[str, Any]:
    """The fields a log call gave its record (`extra`)."""
    return {name: value for name, value in record.__dict__.items() if name not in _RECORD_ATTRIBUTES}


class JsonLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **fields_of(record),
        }
        request_id = getattr(record, "aws_request_id", None)
        if request_id:
            line["requestId"] = request_id
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def configure(logger: str = "trailguard") -> bool:
    """In Lambda, make the handlers of `logger` (Chalice's) and of the root logger (the
    runtime's) write JSON lines; elsewhere leave logging alone."""
    if not os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
        return False
    handlers = [*logging.getLogger(logger).handlers, *logging.getLogger().handlers]
    for handler in handlers:
        handler.setFormatter(JsonLines())
    return bool(handlers)


def milliseconds(seconds: float) -> float:
    return round(seconds * 1000, 2)
