"""trailguard's Chalice app: wiring only, the logic lives in chalicelib/.

- One EventBridge rule (more if the playbooks' patterns outgrow EventBridge's size limit)
  delivers the CloudTrail calls the playbooks answer to `respond_to_cloudtrail`.
- `POST /slack/interactions` answers button presses within Slack's 3 seconds; the AWS
  work they ask for runs in `slack_worker`, invoked asynchronously.
- `posture_sweep` runs on a schedule: trails still logging, keys still enabled, stale
  proposals expired, stuck incidents resumed, undelivered messages delivered.
"""

from typing import Any

from chalice import Chalice, Rate, Response

from chalicelib.runtime import Runtime

app = Chalice(app_name="trailguard")
runtime = Runtime.from_environment()


def respond_to_cloudtrail(event: dict, context: Any = None) -> dict:
    """Lambda entry point of every rule: the raw EventBridge event in, a summary out."""
    return runtime.handle_eventbridge(event)


for _rule in runtime.eventbridge_rules():
    app.on_cw_event(_rule.pattern, name=_rule.name)(respond_to_cloudtrail)
    # Chalice would first turn the event into a CloudWatchEvent, which raises KeyError on
    # an envelope missing a key; the runtime checks envelopes itself and answers bad ones
    # with "rejected". Lambda calls `app.respond_to_cloudtrail` (the handler string Chalice
    # generates), and so does chalice.test.Client through this map.
    app.handler_map[_rule.name] = respond_to_cloudtrail


@app.schedule(Rate(runtime.settings.sweep_minutes, unit=Rate.MINUTES), name="posture_sweep")
def posture_sweep(event: Any) -> dict:
    return runtime.sweep()


@app.route("/slack/interactions", methods=["POST"], content_types=["application/x-www-form-urlencoded"])
def slack_interactions() -> Response:
    request = app.current_request
    assert request is not None  # Chalice sets it for every route call
    answer = runtime.answer_slack(request.raw_body, request.headers)
    return Response(body=answer.body, status_code=answer.status, headers={"Content-Type": "application/json"})


@app.lambda_function(name="slack_worker")
def slack_worker(event: Any, context: Any) -> dict:
    return runtime.run_click_job(event)
