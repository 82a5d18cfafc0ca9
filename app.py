"""trailguard's Chalice app: wiring only; `chalicelib.runtime` builds the parts that do the work.

- One EventBridge rule (more if the playbooks' patterns outgrow EventBridge's size limit)
  delivers the CloudTrail calls the playbooks answer to `respond_to_cloudtrail`.
- `POST /slack/interactions` answers button presses within Slack's 3 seconds; the AWS
  work they ask for runs in `slack_worker`, invoked asynchronously.
- `posture_sweep` runs on a schedule: trails still logging, keys still enabled, stale
  proposals expired, stuck incidents resumed, undelivered messages delivered.
- `heartbeat` runs on a schedule: it tags a canary in every account and region in scope and
  says which have stopped sending CloudTrail events (`posture.heartbeat`).

Each handler reads the module's `runtime` when it runs: a new one (tests, the demo) is a
new container as far as the handlers can tell.
"""

import os
from typing import Any

from chalice import Chalice, Rate, Response

from chalicelib.respond.handler import eventbridge_rules
from chalicelib.runtime import Runtime
from chalicelib.settings import ConfigurationError

app = Chalice(app_name="trailguard")
try:
    runtime = Runtime.from_environment()
except ConfigurationError as error:
    # A mistake in a setting, the organization settings file or a playbook: one line per
    # mistake, where it is and what to write, not a stack trace (`chalice deploy` and
    # `package` stop here, before anything is deployed; a cold start logs it and fails).
    raise SystemExit(f"trailguard cannot start: {error}") from None
runtime.prepare(os.environ.get("AWS_LAMBDA_FUNCTION_NAME"))  # in Lambda's init: this function's clients


def respond_to_cloudtrail(event: dict, context: Any = None) -> dict:
    """Lambda entry point of every rule: the raw EventBridge event in, a summary out."""
    return runtime.event_handler.handle(event)


for _rule in eventbridge_rules(runtime.catalog):
    app.on_cw_event(_rule.pattern, name=_rule.name)(respond_to_cloudtrail)
    # Chalice would first turn the event into a CloudWatchEvent, which raises KeyError on
    # an envelope missing a key; the handler checks envelopes itself and answers bad ones
    # with "rejected". Lambda calls `app.respond_to_cloudtrail` (the handler string Chalice
    # generates), and so does chalice.test.Client through this map.
    app.handler_map[_rule.name] = respond_to_cloudtrail


@app.schedule(Rate(runtime.settings.sweep_minutes, unit=Rate.MINUTES), name="posture_sweep")
def posture_sweep(event: Any) -> dict:
    return runtime.sweep().handle()


@app.schedule(Rate(runtime.settings.heartbeat_minutes, unit=Rate.MINUTES), name="heartbeat")
def heartbeat(event: Any) -> dict:
    return runtime.heartbeat().handle()


@app.route("/slack/interactions", methods=["POST"], content_types=["application/x-www-form-urlencoded"])
def slack_interactions() -> Response:
    request = app.current_request
    assert request is not None  # Chalice sets it for every route call
    answer = runtime.slack_endpoint.answer(request.raw_body, request.headers)
    return Response(body=answer.body, status_code=answer.status, headers={"Content-Type": "application/json"})


@app.lambda_function(name="slack_worker")
def slack_worker(event: Any, context: Any) -> dict:
    return runtime.click_worker.handle(event)
