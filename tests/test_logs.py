"""Structured logs: in Lambda every line is one JSON object, with one `decision` line per
incident an event opened or found again, and no secret anywhere."""

from __future__ import annotations

import io
import json
import logging

import pytest

from chalicelib import logs
from tests.conftest import SIGNING_SECRET, envelope, record, signed_click

pytestmark = pytest.mark.unit


@pytest.fixture
def lambda_log(monkeypatch):
    """Logging as it is in a deployed function: the runtime's handler on the root logger,
    and Chalice's own stdout handler on the app's logger, which does not propagate."""
    stream = io.StringIO()
    runtime_handler = logging.StreamHandler(stream)
    runtime_handler.setFormatter(logging.Formatter("[%(levelname)s]\t%(asctime)s\t%(message)s"))
    chalice_handler = logging.StreamHandler(stream)
    chalice_handler.setFormatter(logging.Formatter("%(name)s - %(levelname)s - %(message)s"))
    monkeypatch.setattr(logging.getLogger(), "handlers", [runtime_handler])
    app_logger = logging.getLogger("trailguard")
    monkeypatch.setattr(app_logger, "handlers", [chalice_handler])
    monkeypatch.setattr(app_logger, "propagate", False)
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "trailguard-dev-respond_to_cloudtrail")
    assert logs.configure() is True
    yield stream
    logging.getLogger("botocore").warning("a line from another library")
    assert json.loads(stream.getvalue().splitlines()[-1])["message"] == "a line from another library"


def _lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_outside_lambda_logging_is_left_alone(monkeypatch):
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)
    assert logs.configure() is False


def test_every_line_is_one_json_object_with_its_own_fields():
    formatter = logs.JsonLines()
    line = logging.LogRecord("trailguard", logging.INFO, __file__, 1, "decision", None, None)
    line.state = "x"  # what log.info("decision", extra={"state": "x"}) sets
    line.aws_request_id = "req-1"
    assert json.loads(formatter.format(line)) | {"time": "t"} == {
        "time": "t",
        "level": "INFO",
        "logger": "trailguard",
        "message": "decision",
        "state": "x",
        "requestId": "req-1",
    }
    plain = logging.LogRecord("botocore", logging.WARNING, __file__, 1, "retrying %s", ("PutItem",), None)
    assert json.loads(formatter.format(plain))["message"] == "retrying PutItem"
    try:
        raise RuntimeError("boom\nsecond line")
    except RuntimeError:
        import sys

        failed = logging.LogRecord("trailguard", logging.ERROR, __file__, 1, "could not notify", None, sys.exc_info())
    text = formatter.format(failed)
    assert "\n" not in text and "RuntimeError: boom" in json.loads(text)["error"]


def test_an_event_logs_one_decision_line_per_incident(lambda_log, client, runtime, make_trail):
    make_trail("main")
    event = envelope(record("StopLogging", "cloudtrail.amazonaws.com", {"name": "main"}))
    client.lambda_.invoke("respond_to_cloudtrail", event)
    client.lambda_.invoke("respond_to_cloudtrail", event)  # delivered again
    client.lambda_.invoke("respond_to_cloudtrail", {"detail-type": "Scheduled Event", "source": "aws.events"})
    lines = _lines(lambda_log)
    decisions = [line for line in lines if line["message"] == "decision"]
    assert len(decisions) == 2
    first, again = decisions
    assert first["incident"] == again["incident"] and first["incident"].startswith("inc-")
    assert {k: first[k] for k in ("eventID", "eventName", "playbook", "mode", "state", "duplicate", "level")} == {
        "eventID": event["detail"]["eventID"],
        "eventName": "StopLogging",
        "playbook": "cloudtrail-stop-logging",
        "mode": "auto",
        "state": "remediated",
        "duplicate": False,
        "level": "INFO",
    }
    assert again["duplicate"] is True
    assert all(isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0 for line in decisions)
    (rejected,) = [line for line in lines if line["message"] == "event rejected"]
    assert "detail-type is 'Scheduled Event'" in rejected["reason"]


def test_clicks_and_skips_are_logged_as_json_without_secrets(
    lambda_log, client, runtime, make_trail, approve_mode, slack_stub
):
    make_trail("main")
    client.lambda_.invoke(
        "respond_to_cloudtrail",
        envelope(record("StopLogging", "cloudtrail.amazonaws.com", {"name": "main"}, errorCode="AccessDenied")),
    )
    opened = client.lambda_.invoke(
        "respond_to_cloudtrail", envelope(record("StopLogging", "cloudtrail.amazonaws.com", {"name": "main"}))
    )
    incident = opened.payload["incidents"][0]["id"]
    body, headers = signed_click("approve", slack_stub.button_value(incident, "approve"))
    assert client.http.post("/slack/interactions", headers=headers, body=body).status_code == 200
    text = lambda_log.getvalue()
    lines = _lines(lambda_log)
    (skipped,) = [line for line in lines if line["message"] == "event skipped"]
    assert skipped["skipped"] == "failed-call"
    (accepted,) = [line for line in lines if line["message"] == "click accepted"]
    assert accepted["incident"] == incident and accepted["transition"] == "approve"
    (job,) = [line for line in lines if line["message"] == "click job"]
    assert (job["incident"], job["state"], job["playbook"]) == (incident, "remediated", "trail-approve")
    assert slack_stub.token not in text and SIGNING_SECRET not in text


def test_a_refused_request_logs_only_the_start_of_the_timestamp_its_sender_chose(runtime, caplog):
    caplog.set_level(logging.WARNING, logger="trailguard")
    answer = runtime.slack_endpoint.answer(
        "payload=%7B%7D", {"X-Slack-Request-Timestamp": "9" * 5000, "X-Slack-Signature": "v0=0"}
    )
    assert answer.status == 401
    lines = [json.loads(logs.JsonLines().format(r)) for r in caplog.records]
    (line,) = [line for line in lines if line["message"] == "Slack request refused"]
    assert line["timestamp"] == "9" * 20
