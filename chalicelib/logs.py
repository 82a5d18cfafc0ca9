"""One JSON object per log line, so CloudWatch Logs Insights finds every field by itself.

trailguard's log lines are JSON objects already (`{"message": "decision", "incident":
...}`). In Lambda they would be printed after a prefix that Logs Insights cannot split
into fields: Chalice gives the app's logger (named `trailguard`, as the app) a stdout
handler writing `trailguard - INFO - ...`, and the runtime's root handler adds its own
tab-separated prefix. `configure` gives both handlers this formatter instead: the
line's own fields, plus `time`, `level`, `logger` and the Lambda request id. Any other
line (botocore's, a traceback) becomes `{"message": ...}` with `error` holding the trace
on one line. Queries are in docs/security.md.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from typing import Any


class JsonLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = record.getMessage()
        fields: dict[str, Any] = {}
        if text.startswith("{"):
            try:
                parsed = json.loads(text)
            except ValueError:
                parsed = None
            if isinstance(parsed, dict):
                fields = parsed
        if not fields:
            fields = {"message": text}
        line: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            **fields,
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
