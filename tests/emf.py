"""A validator for CloudWatch embedded metric format log lines (test helper), written from AWS's
specification: https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
(as archived in github.com/awsdocs/amazon-cloudwatch-user-guide,
doc_source/CloudWatch_Embedded_Metric_Format_Specification.md, which also publishes a JSON
schema; this one is written from the rules, not copied).

The JSON schema checks the structure (`_aws` with Timestamp and CloudWatchMetrics; each
directive's Namespace, Dimensions, Metrics; units). `problems` adds what a schema cannot
say: every referenced member is on the root node, dimension targets are strings, metric
targets are numbers or arrays of at most 100 numbers, no nested references, at most 100
metrics per directive, the 256 KB event limit. The archived spec allows 9 keys per
dimension set and the current page 30; this takes the stricter 9.
"""

from __future__ import annotations

import json
import math
from typing import Any

import jsonschema

UNITS = (
    "Seconds|Microseconds|Milliseconds|Bytes|Kilobytes|Megabytes|Gigabytes|Terabytes|Bits|Kilobits|Megabits|"
    "Gigabits|Terabits|Percent|Count|Bytes/Second|Kilobytes/Second|Megabytes/Second|Gigabytes/Second|"
    "Terabytes/Second|Bits/Second|Kilobits/Second|Megabits/Second|Gigabits/Second|Terabits/Second|Count/Second|None"
)
NAME = {"type": "string", "minLength": 1, "maxLength": 255}
SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["_aws"],
    "properties": {
        "_aws": {
            "type": "object",
            "required": ["Timestamp", "CloudWatchMetrics"],
            "properties": {
                "Timestamp": {"type": "integer", "minimum": 0},
                "CloudWatchMetrics": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["Namespace", "Dimensions", "Metrics"],
                        "properties": {
                            "Namespace": NAME,
                            "Dimensions": {
                                "type": "array",
                                "minItems": 1,
                                "items": {"type": "array", "maxItems": 9, "items": NAME},
                            },
                            "Metrics": {
                                "type": "array",
                                "maxItems": 100,
                                "items": {
                                    "type": "object",
                                    "required": ["Name"],
                                    "properties": {
                                        "Name": NAME,
                                        "Unit": {"type": "string", "pattern": f"^({UNITS.replace('/', '\\/')})$"},
                                        "StorageResolution": {"enum": [1, 60]},
                                    },
                                },
                            },
                        },
                    },
                },
            },
        }
    },
}


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def problems(line: str) -> list[str]:
    """Everything wrong with one log event's message; [] when it is a valid EMF document."""
    if len(line.encode()) > 256 * 1024:
        return ["over the 256 KB log event limit"]
    try:
        document = json.loads(line)
    except ValueError as error:
        return [f"not JSON (or extra data around the object): {error}"]
    if not isinstance(document, dict):
        return ["the root is not an object"]
    found = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in jsonschema.Draft7Validator(SCHEMA).iter_errors(document)
    ]
    if found:
        return found
    for directive in document["_aws"]["CloudWatchMetrics"]:
        for dimension_set in directive["Dimensions"]:
            for key in dimension_set:
                if key not in document:
                    found.append(f"dimension {key!r} is not a member of the root node")
                elif not isinstance(document[key], str):
                    found.append(f"dimension {key!r} is {type(document[key]).__name__}, not a string")
        for metric in directive["Metrics"]:
            name = metric["Name"]
            value = document.get(name)
            if name not in document:
                found.append(f"metric {name!r} is not a member of the root node")
            elif isinstance(value, list):
                if len(value) > 100 or not all(_number(v) for v in value):
                    found.append(f"metric {name!r}: an array of at most 100 numbers is needed")
            elif not _number(value):
                found.append(f"metric {name!r} is {value!r}, not a number")
    return found


def metric_lines(caplog: Any, metric: str | None = None) -> list[dict[str, Any]]:
    """The metric lines captured, each as `logs.JsonLines` writes it in Lambda (the autouse
    fixture gives the capture that formatter), checked as EMF; `metric` picks one kind."""
    lines = []
    for record in caplog.records:
        if record.getMessage() != "metrics":
            continue
        text = caplog.handler.format(record)
        found = problems(text)
        assert found == [], f"{text}: {found}"
        line = json.loads(text)
        if metric is None or line["metric"] == metric:
            lines.append(line)
    return lines
