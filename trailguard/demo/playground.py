"""`python -m trailguard demo --keep-running`: the demo's world left up for people to play in.

After the story, the local AWS, the Slack stub and `chalice local` (the app's real routes,
in a process of their own, sharing the incidents through the local DynamoDB) stay up. The
rules' handler has no HTTP route in Chalice, so a small endpoint in this process takes
EventBridge events (or bare CloudTrail records) by POST and runs them through it. Slack
messages are printed here as the app posts or updates them.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import click

from chalicelib.events.synthetic import api_call_record, eventbridge_envelope
from trailguard import PROJECT
from trailguard.demo import scenario
from trailguard.demo.story import Outcome, slack_text


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def event_endpoint(chalice_app: Any) -> ThreadingHTTPServer:
    """POST /events: an EventBridge event, or a CloudTrail record (wrapped as EventBridge would)."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                event = json.loads(body)
            except ValueError as error:
                return self._send(400, {"status": "rejected", "reason": f"not JSON: {error}"})
            if isinstance(event, dict) and "detail" not in event and "eventSource" in event:
                event = eventbridge_envelope(event, str(uuid.uuid4()))
            self._send(200, chalice_app.respond_to_cloudtrail(event))

        def _send(self, status: int, answer: dict[str, Any]) -> None:
            data = (json.dumps(answer, indent=2) + "\n").encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", _free_port()), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _start_chalice_local(
    local: Any, slack: Any, secret: str, table: str, integrity_key: str
) -> tuple[subprocess.Popen[bytes], int]:
    port = _free_port()
    env = {
        **os.environ,
        **local.environment(),
        "TRAILGUARD_TABLE": table,
        "TRAILGUARD_INTEGRITY_KEY": integrity_key,
        "TRAILGUARD_SLACK_TOKEN": slack.token,
        "TRAILGUARD_SLACK_SIGNING_SECRET": secret,
        "TRAILGUARD_SLACK_CHANNEL": scenario.CHANNEL,
        "TRAILGUARD_SLACK_APPROVERS": scenario.ON_CALL,
        "TRAILGUARD_SLACK_BASE_URL": slack.base_url,
        "TRAILGUARD_ACCOUNT_NAMES": f"{scenario.ACCOUNT}=demo",
        "TRAILGUARD_LOG_LEVEL": "WARNING",
    }
    chalice = Path(sys.executable).parent / "chalice"
    # A stage of its own (not in .chalice/config.json), so no deployed stage's settings apply.
    process = subprocess.Popen(
        [str(chalice), "local", "--no-autoreload", "--stage", "local-demo", "--port", str(port)],
        cwd=PROJECT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"chalice local exited with {process.returncode}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return process, port
        time.sleep(0.2)
    process.terminate()
    raise RuntimeError("chalice local did not start within 30 s")


def _print_slack_as_it_changes(slack: Any, stop: threading.Event) -> None:
    seen: dict[Any, Any] = {key: list(message.blocks) for key, message in slack.messages.items()}
    told = len(slack.ephemeral)
    while not stop.wait(0.5):
        for key, message in list(slack.messages.items()):
            if seen.get(key) != message.blocks:
                kind = "updated" if key in seen else "new"
                seen[key] = list(message.blocks)
                click.echo(f"\nSlack, {scenario.CHANNEL} ({kind} message):")
                for line in slack_text(message.blocks):
                    click.echo("  | " + line)
        for answer in slack.ephemeral[told:]:
            click.echo(f"\nSlack, only to the clicker: {answer.get('text')}")
        told = len(slack.ephemeral)


def _sample_event(output: Path) -> Path:
    record = api_call_record(
        "StopLogging",
        "cloudtrail.amazonaws.com",
        {"name": scenario.TRAIL},
        identity=scenario.ATTACKER,
        region=scenario.REGION,
    )
    path = output / "stop-logging-event.json"
    path.write_text(json.dumps(record, indent=2) + "\n")
    return path


def keep_running(
    chalice_app: Any,
    local: Any,
    slack: Any,
    secret: str,
    table: str,
    integrity_key: str,
    outcome: Outcome,
    output: Path,
) -> int:
    events = event_endpoint(chalice_app)
    process, api_port = _start_chalice_local(local, slack, secret, table, integrity_key)
    sample = _sample_event(output)
    undoable = [row.incident for row in outcome.rows if row.state == "remediated"]
    incident = undoable[0] if undoable else "inc-..."
    value = slack.button_value(incident, "undo") if undoable else "inc-...:N"  # what the message's Undo carries
    payload = json.dumps(
        {
            "type": "block_actions",
            "user": {"id": scenario.ON_CALL},
            "response_url": slack.response_url("play"),
            "actions": [{"action_id": "trailguard:undo", "value": value}],
        },
        separators=(",", ":"),
    )
    click.echo(f"""
{click.style("still running", bold=True)} (Ctrl-C stops everything):
  local AWS (moto)   {local.url}
  Slack stub         {slack.base_url}
  chalice local      http://127.0.0.1:{api_port}   (POST /slack/interactions, the app's real route)
  event endpoint     http://127.0.0.1:{events.server_address[1]}/events   (runs the rules' Lambda handler)

Use the local AWS from another shell:
  export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION={scenario.REGION} \\
         AWS_ENDPOINT_URL={local.url}
  aws cloudtrail stop-logging --name {scenario.TRAIL}      # the attack; then tell trailguard about it:

Send a CloudTrail record (or a whole EventBridge event) to the handler:
  curl -s http://127.0.0.1:{events.server_address[1]}/events -d @{sample}

Press Undo on {incident} as {scenario.ON_CALL}, signed as Slack signs (secret {secret!r}):
  body='payload={payload}'
  ts=$(date +%s)
  sig="v0=$(printf 'v0:%s:%s' "$ts" "$body" | openssl dgst -sha256 -hmac '{secret}' | sed 's/^.* //')"
  curl -s http://127.0.0.1:{api_port}/slack/interactions -H 'Content-Type: application/x-www-form-urlencoded' \\
       -H "X-Slack-Request-Timestamp: $ts" -H "X-Slack-Signature: $sig" --data-raw "$body"

Messages the app posts or updates are printed here.""")
    stop = threading.Event()
    watcher = threading.Thread(target=_print_slack_as_it_changes, args=(slack, stop), daemon=True)
    watcher.start()
    try:
        while process.poll() is None:
            time.sleep(0.5)
        click.echo(f"chalice local exited with {process.returncode}", err=True)
        return 1
    except KeyboardInterrupt:
        return 0 if outcome.ok else 1
    finally:
        stop.set()
        process.terminate()
        events.shutdown()
