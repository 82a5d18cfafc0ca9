"""Playing the scenario through the real app, and telling it in the terminal.

Every call of the scenario (the platform team's set-up and the attacker's moves) is made
against the local AWS; its CloudTrail record is built from what botocore sent and got
back, wrapped as EventBridge delivers it, and handed to the app's own Lambda handler
through Chalice's test client. Clicks are signed as Slack signs them and posted to the
app's own `/slack/interactions` route. What the story shows is read back from the local
AWS and from the Slack stub.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from chalicelib.events.synthetic import eventbridge_envelope
from chalicelib.slack.messages import describe_params
from trailguard.demo import scenario
from trailguard.demo.records import CallRecorder, cloudtrail_record

SERVICES = ("cloudtrail", "kms", "s3", "ec2", "iam")


@dataclass
class Row:
    incident: str
    playbook: str
    mode: str
    state: str
    resource: str


@dataclass
class Outcome:
    ok: bool
    rows: list[Row] = field(default_factory=list)
    messages: list[Path] = field(default_factory=list)


class Story:
    """One run of the scenario against a running app (`app` is the imported app module)."""

    def __init__(
        self, app: Any, local_aws: Any, slack: Any, signing_secret: str, output: Path, color: bool = False
    ) -> None:
        self.app = app
        self.local = local_aws
        self.slack = slack
        self.secret = signing_secret
        self.output = output
        self.color = color
        self.recorder = CallRecorder()
        self.c: scenario.Clients = {s: self.recorder.attach(local_aws.client(s)) for s in SERVICES}
        self.outcome = Outcome(ok=True)
        self.incidents: list[tuple[scenario.Attack, str]] = []

    # -- output -----------------------------------------------------------------------------------

    def style(self, text: str, **kwargs: Any) -> str:
        return click.style(text, **kwargs) if self.color else text

    def check(self, good: bool, what: str = "") -> str:
        self.outcome.ok = self.outcome.ok and good
        if good:
            return self.style("ok", fg="green")
        return self.style("UNEXPECTED" + (f": {what}" if what else ""), fg="red", bold=True)

    # -- the story --------------------------------------------------------------------------------

    def play(self) -> Outcome:
        from chalice.test import Client

        self.output.mkdir(parents=True, exist_ok=True)
        with Client(self.app.app) as client:
            self.set_up(client)
            for number, attack in enumerate(scenario.ATTACKS, 1):
                self.attack(client, number, attack)
            for number, press in enumerate(scenario.PRESSES, len(scenario.ATTACKS) + 1):
                self.press(client, number, press)
            number = len(scenario.ATTACKS) + len(scenario.PRESSES) + 1
            self.mark_as_expected(client, number)
            self.kill_switch(client, number + 2)
            self.heartbeat(client, number + 6)
            self.stolen_credentials(client, number + 9)
        for attack, incident_id in self.incidents:
            incident = self.app.runtime.incidents.get(incident_id)
            self.outcome.rows.append(
                Row(incident.id, incident.playbook_id, incident.mode, incident.state.value, attack.read(self.c))
            )
        return self.outcome

    def set_up(self, client: Any) -> None:
        scenario.set_up(self.c)
        answered = remembered = 0
        for call in self.recorder.calls:
            result = self.deliver(client, call, scenario.ADMIN)
            answered += len(result.get("incidents", []))
            remembered += call.operation.name == "CreateTrail"
        self.recorder.calls.clear()
        click.echo(self.style("the account", bold=True) + f" {scenario.ACCOUNT} (demo), set up by platform-admin:")
        for line in scenario.describe_account(self.c):
            click.echo("  " + line)
        good = answered == 0
        click.echo(
            f"  trailguard saw the set-up's calls: no playbook objected [{self.check(good, 'a playbook answered')}]; "
            f"it remembered trail {scenario.TRAIL}'s configuration"
        )
        click.echo(f"  incidents go to {scenario.CHANNEL}; {scenario.ON_CALL} is the on-call approver\n")

    def deliver(self, client: Any, call: Any, identity: dict[str, Any]) -> dict[str, Any]:
        record = cloudtrail_record(
            call,
            identity=identity,
            region=scenario.REGION,
            source_ip="198.51.100.23",
            user_agent="aws-cli/2.15.0 md/demo",
            eventCategory="Management",
        )
        payload: dict[str, Any] = client.lambda_.invoke(
            "respond_to_cloudtrail", eventbridge_envelope(record, str(uuid.uuid4()))
        ).payload
        return payload

    def attack(
        self, client: Any, number: int, attack: scenario.Attack, who: dict[str, Any] = scenario.ATTACKER
    ) -> None:
        before = attack.read(self.c)
        attack.call(self.c)
        call = self.recorder.last
        click.echo(
            self.style(f"{number}. {who['userName']} {attack.title}", fg="red", bold=True)
            + self.style(f"  {call.service}:{call.operation.name}", dim=True)
        )
        click.echo(f"   before: {before}    after the call: {attack.read(self.c)}")
        result = self.deliver(client, call, who)
        incidents = [summary["id"] for summary in result.get("incidents", [])]
        if not incidents:
            click.echo(f"   no playbook answered [{self.check(False, str(result))}]\n")
            return
        for incident_id in incidents:
            incident = self.app.runtime.incidents.get(incident_id)
            self.incidents.append((attack, incident_id))
            click.echo(
                f"   playbook {self.style(incident.playbook_id, bold=True)} ({incident.mode}, {incident.severity})"
            )
            if incident.mode_note:
                click.echo(f"   mode {incident.mode_note}")
            for step in incident.steps:
                click.echo(
                    f"   trailguard: {step.action} {describe_params(step.params)}: {step.status.value}"
                    + (f" ({step.error})" if step.error else "")
                )
            if not incident.steps and incident.plan:
                planned = ", ".join(s.action for s in incident.plan)
                click.echo(
                    f"   trailguard tells, and changes nothing (it would run {planned})"
                    if incident.state.value == "notified"
                    else f"   trailguard proposes: {planned}; waits for an approver"
                )
            now = attack.read(self.c)
            good = now == attack.expected and incident.state.value == attack.expected_incident
            click.echo(
                f"   now: {now}, incident {incident.state.value}  "
                f"[{self.check(good, f'expected {attack.expected}, {attack.expected_incident}')}]"
            )
            self.show_message(incident, f"{number:02d}-{incident.playbook_id}")
        click.echo()

    def press(self, client: Any, number: int, press: scenario.Press) -> None:
        from trailguard.local.slack import signed_click

        attack, incident_id = self.incidents[press.attack]
        click.echo(self.style(f"{number}. {press.title}", fg="cyan", bold=True))
        told = len(self.slack.ephemeral)
        body, headers = signed_click(
            press.transition,
            self.slack.button_value(incident_id, press.transition),  # the button on the message as it is now
            user=press.user,
            secret="a-guessed-secret" if press.forged else self.secret,
            response_url=self.slack.response_url(str(number)),
        )
        response = client.http.post("/slack/interactions", headers=headers, body=body)
        click.echo(
            f"   POST /slack/interactions ({press.transition}, by {press.user}, "
            f"{'forged' if press.forged else 'signed'}) -> {response.status_code}"
        )
        for answer in self.slack.ephemeral[told:]:
            click.echo(f"   Slack, only to {press.user}: {answer['text']}")
        incident = self.app.runtime.incidents.get(incident_id)
        now = attack.read(self.c)
        good = (
            response.status_code == press.expected_status
            and now == press.expected
            and incident.state.value == press.expected_incident
        )
        click.echo(
            f"   now: {now}, incident {incident.state.value}  "
            f"[{self.check(good, f'expected {press.expected_status}, {press.expected}, {press.expected_incident}')}]"
        )
        if incident.state.value != attack.expected_incident:  # the press decided something: show the message now
            self.show_message(incident, f"{number:02d}-{incident.playbook_id}-{incident.state.value}")
        click.echo()

    def mark_as_expected(self, client: Any, number: int) -> None:
        """The on-call engineer marks the SSH change as expected, from Slack: the button opens
        a modal, its signed submission asks for the exception, the worker makes it; the same
        change made again is then told, not acted on."""
        from trailguard.local.slack import signed_click, signed_submission

        _ssh_fix, incident_id = self.incidents[4]
        click.echo(
            self.style(
                f"{number}. the on-call engineer: SSH on the web servers is meant this week; presses "
                "Mark as expected for 7 days",
                fg="cyan",
                bold=True,
            )
        )
        body, headers = signed_click(
            "except", self.slack.button_value(incident_id, "except"), user=scenario.ON_CALL, secret=self.secret
        )
        pressed = client.http.post("/slack/interactions", headers=headers, body=body)
        view = self.slack.views[-1]
        days = next(b["element"] for b in view["blocks"] if b.get("block_id") == "days")
        click.echo(
            f"   POST /slack/interactions (except, by {scenario.ON_CALL}, signed) -> {pressed.status_code}; "
            f'Slack opens the modal "{view["title"]["text"]}" (views.open): why? for how long? '
            f"({', '.join(o['text']['text'] for o in days['options'])})"
        )
        body, headers = signed_submission(
            view, {"reason": scenario.MIGRATION, "days": "7"}, user=scenario.ON_CALL, secret=self.secret
        )
        submitted = client.http.post("/slack/interactions", headers=headers, body=body)
        click.echo(
            f'   POST /slack/interactions (view_submission: 7 days, "{scenario.MIGRATION}") -> {submitted.status_code}'
        )
        change = next(c for c in self.app.runtime.exceptions.listed() if c.incident_id == incident_id)
        incident = self.app.runtime.incidents.get(incident_id)
        good = submitted.status_code == 200 and incident.history[-1].what == "except"
        click.echo(f"   trailguard's worker made exception {change.describe()}  [{self.check(good, 'no exception')}]")
        self.show_message(incident, f"{number:02d}-{incident.playbook_id}-expected")
        click.echo()
        self.attack(client, number + 1, scenario.EXPECTED_SSH, scenario.ADMIN)

    def kill_switch(self, client: Any, number: int) -> None:
        """The security lead pauses trailguard without a redeploy; an attack is then only
        told; after the resume trailguard answers again."""
        for state, reason, attack, step in (
            ("paused", scenario.FREEZE, scenario.PAUSED_STOP, 0),
            ("active", "the close is done", scenario.RESUMED_STOP, 1),
        ):
            command = "pause" if state == "paused" else "resume"
            click.echo(
                self.style(
                    f"{number + 2 * step}. the security lead: $ trailguard {command} --stage demo", fg="cyan", bold=True
                )
                + (f' --reason "{reason}"' if state == "paused" else "")
            )
            said = self.set_switch(state, reason)
            click.echo(
                f"   {said}; every function reads it within {self.app.runtime.settings.switch_seconds} s, no redeploy"
            )
            click.echo()
            self.attack(client, number + 2 * step + 1, attack)

    def heartbeat(self, client: Any, number: int) -> None:
        """One region goes blind: its trail stops by a path that sends trailguard no event, and
        the heartbeat says so; when the trail logs again, the heartbeat closes its incident."""
        import datetime as dt

        from chalicelib.memory import heartbeats
        from chalicelib.posture.heartbeat import Heartbeat

        runtime = self.app.runtime
        blind_region = scenario.OTHER_REGION
        regions = (scenario.REGION, blind_region)
        other = self.local.client("cloudtrail", region_name=blind_region)
        s3 = self.local.client("s3", region_name=blind_region)
        if scenario.OTHER_TRAIL_BUCKET not in [b["Name"] for b in s3.list_buckets()["Buckets"]]:  # a second story
            s3.create_bucket(
                Bucket=scenario.OTHER_TRAIL_BUCKET, CreateBucketConfiguration={"LocationConstraint": blind_region}
            )
        if scenario.OTHER_TRAIL not in [t["Name"] for t in other.describe_trails()["trailList"]]:
            other.create_trail(Name=scenario.OTHER_TRAIL, S3BucketName=scenario.OTHER_TRAIL_BUCKET)
        other.start_logging(Name=scenario.OTHER_TRAIL)
        beat = Heartbeat(
            incidents=runtime.incidents,
            clients=runtime.clients,
            places=lambda: [(scenario.ACCOUNT, region) for region in regions],
            canary=runtime.heartbeat_canary,
            grace=dt.timedelta(0),  # 15 minutes by default (TRAILGUARD_HEARTBEAT_GRACE_MINUTES)
        )
        identity = heartbeats.role_identity(scenario.ACCOUNT, scenario.HEARTBEAT_ROLE, scenario.HEARTBEAT_ROLE)

        def run_and_deliver() -> Any:
            """A heartbeat run, then CloudTrail: each region whose trail logs delivers the beat's event."""
            report = beat.run()
            for region in regions:
                status = self.local.client("cloudtrail", region_name=region).get_trail_status(
                    Name=scenario.TRAIL if region == scenario.REGION else scenario.OTHER_TRAIL
                )
                if status.get("IsLogging"):
                    record = heartbeats.beat_record(
                        scenario.ACCOUNT, region, beat.canary, runtime.incidents.clock(), identity
                    )
                    answer = client.lambda_.invoke(
                        "respond_to_cloudtrail", eventbridge_envelope(record, str(uuid.uuid4()))
                    )
                    assert answer.payload["status"] == "heartbeat", answer.payload
            return report

        click.echo(
            self.style(f"{number}. the heartbeat", fg="cyan", bold=True)
            + self.style("  ssm:AddTagsToResource", dim=True)
        )
        first = run_and_deliver()
        click.echo(
            f"   tags {beat.canary} in {', '.join(regions)}: {first.beats} beats; their CloudTrail events come back "
            f"through the rules' handler, which notes them and answers nothing [{self.check(first.blind == [])}]"
        )
        click.echo()
        click.echo(
            self.style(f"{number + 1}. {blind_region} goes blind", fg="red", bold=True)
            + f": trail {scenario.OTHER_TRAIL} stops, and no event of it reaches trailguard"
        )
        other.stop_logging(Name=scenario.OTHER_TRAIL)
        run_and_deliver()  # its beat gets no answer ...
        second = run_and_deliver()  # ... which the next run judges (after the grace period)
        opened = heartbeats.state(runtime.memory, scenario.ACCOUNT, blind_region).get("Incident")
        blind = runtime.incidents.get(opened) if opened else None
        good = blind is not None and len(second.blind) == 1 and blind.state.value == "notified"
        said = "; ".join(second.blind) or "nothing"
        click.echo(f"   the next heartbeat: {said}  [{self.check(good, str(second.to_dict()))}]")
        if blind is not None:
            self.show_message(blind, f"{number + 1:02d}-trailguard-heartbeat")
        click.echo()
        click.echo(self.style(f"{number + 2}. the on-call engineer starts the trail again", fg="cyan", bold=True))
        other.start_logging(Name=scenario.OTHER_TRAIL)
        run_and_deliver()  # the beat is seen again ...
        fourth = run_and_deliver()  # ... and the next run closes the incident
        closed = runtime.incidents.get(blind.id) if blind is not None else None
        good = closed is not None and closed.state.value == "acknowledged" and len(fourth.seen_again) == 1
        said = "; ".join(fourth.seen_again) or "nothing"
        click.echo(f"   the heartbeat after: {said}  [{self.check(good)}]")

    def stolen_credentials(self, client: Any, number: int) -> None:
        """A detector's verdict: GuardDuty reports the web servers' instance credentials used
        outside AWS; trailguard proposes revoking the role's sessions, the on-call engineer
        approves, and the deny statement in the role refuses the attacker's copied session."""
        from chalicelib.clock import timestamp, utc_now
        from chalicelib.respond.handler import eventbridge_rules
        from trailguard.local.slack import signed_click

        attack = scenario.STOLEN_CREDENTIALS
        iam = self.c["iam"]
        with contextlib.suppress(iam.exceptions.EntityAlreadyExistsException):  # a second story on the same AWS
            iam.create_role(
                RoleName=scenario.APP_ROLE,
                AssumeRolePolicyDocument=json.dumps(
                    {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Principal": {"Service": "ec2.amazonaws.com"},
                                "Action": "sts:AssumeRole",
                            }
                        ],
                    }
                ),
            )
        self.recorder.calls.clear()
        click.echo(self.style(f"{number}. mallory {attack.title}", fg="red", bold=True))
        click.echo(f"   the copied session (issued {scenario.STOLEN_SESSION_ISSUED}) before: {attack.read(self.c)}")
        [rule] = [
            r.name
            for r in eventbridge_rules(self.app.runtime.catalog)
            if r.pattern["detail-type"] == ["GuardDuty Finding"]
        ]
        finding = scenario.stolen_credentials_finding(timestamp(utc_now()).replace("+00:00", "Z"), uuid.uuid4().hex)
        result = client.lambda_.invoke(rule, finding).payload
        [incident_id] = [summary["id"] for summary in result.get("incidents", [])]
        self.incidents.append((attack, incident_id))
        incident = self.app.runtime.incidents.get(incident_id)
        planned = ", ".join(f"{s.action} {describe_params(s.params)}" for s in incident.plan)
        good = incident.state.value == "proposed"
        click.echo(
            f"   GuardDuty Finding -> {rule}: playbook {self.style(incident.playbook_id, bold=True)} "
            f"({incident.mode}, {incident.severity})"
        )
        click.echo(f"   trailguard proposes: {planned}; waits for an approver  [{self.check(good, 'not proposed')}]")
        self.show_message(incident, f"{number:02d}-{incident.playbook_id}")
        click.echo()
        click.echo(self.style(f"{number + 1}. the on-call engineer: presses Approve", fg="cyan", bold=True))
        body, headers = signed_click(
            "approve",
            self.slack.button_value(incident_id, "approve"),
            user=scenario.ON_CALL,
            secret=self.secret,
            response_url=self.slack.response_url(str(number + 1)),
        )
        response = client.http.post("/slack/interactions", headers=headers, body=body)
        click.echo(f"   POST /slack/interactions (approve, by {scenario.ON_CALL}, signed) -> {response.status_code}")
        incident = self.app.runtime.incidents.get(incident_id)
        document = self.c["iam"].get_role_policy(
            RoleName=scenario.APP_ROLE, PolicyName="trailguard-revoke-older-sessions"
        )
        [statement] = document["PolicyDocument"]["Statement"]
        click.echo(f"   role {scenario.APP_ROLE}, inline policy trailguard-revoke-older-sessions:")
        click.echo(f"     {json.dumps(statement)}")
        now = attack.read(self.c)
        good = response.status_code == 200 and incident.state.value == "remediated" and now == attack.expected
        click.echo(
            f"   mallory's next call with the copied session: {now} (AccessDenied: an explicit deny; moto does not "
            "evaluate IAM policies, so the statement's one condition, aws:TokenIssueTime, is checked as AWS "
            f"documents it)  [{self.check(good, f'expected {attack.expected}, remediated')}]"
        )
        self.show_message(incident, f"{number + 1:02d}-{incident.playbook_id}-{incident.state.value}")
        click.echo()

    def set_switch(self, state: str, reason: str) -> str:
        """What `trailguard pause|resume` does, on the local AWS's SSM."""
        from chalicelib.clock import timestamp, utc_now
        from chalicelib.organization.switch import SwitchState

        parameter = self.app.runtime.settings.switch_parameter
        who = self.local.client("sts").get_caller_identity()["Arn"]
        value = SwitchState(state, who, timestamp(utc_now()), reason)
        self.local.client("ssm").put_parameter(Name=parameter, Value=value.to_value(), Type="String", Overwrite=True)
        return f"demo: {value.describe()} ({parameter})"

    def show_message(self, incident: Any, name: str) -> None:
        """The incident's Slack message as the stub holds it, in plain lines; its Block Kit JSON to a file."""
        reference = incident.notification or {}
        message = self.slack.messages.get((reference.get("channel"), reference.get("ts")))
        if message is None:
            click.echo(f"   no Slack message [{self.check(False, str(reference.get('error')))}]")
            return
        path = self.output / f"{name}.json"
        path.write_text(json.dumps({"blocks": message.blocks}, indent=2) + "\n")
        self.outcome.messages.append(path)
        click.echo(f"   Slack, {scenario.CHANNEL}" + self.style(f"  ({path})", dim=True))
        for line in slack_text(message.blocks):
            click.echo("     " + self.style("|", dim=True) + " " + line)

    def summary(self, seconds: float) -> None:
        click.echo(self.style("summary", bold=True))
        header = Row("INCIDENT", "PLAYBOOK", "MODE", "STATE", "RESOURCE NOW")
        rows = [header, *self.outcome.rows]
        cells = [[row.incident, row.playbook, row.mode, row.state, row.resource] for row in rows]
        widths = [max(len(line[i]) for line in cells) for i in range(5)]
        for line in cells:
            click.echo("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip())
        click.echo(
            f"\nthe Block Kit JSON of the {len(self.outcome.messages)} messages shown is in {self.output}/ "
            "(paste one into https://app.slack.com/block-kit-builder)"
        )
        verdict = (
            "every resource and incident is as the story says" if self.outcome.ok else "SOMETHING IS NOT AS EXPECTED"
        )
        click.echo(self.style(verdict, fg="green" if self.outcome.ok else "red", bold=True) + f" ({seconds:.1f} s)")


def slack_text(blocks: list[dict[str, Any]]) -> list[str]:
    """A Block Kit message as plain lines: what a person reads in Slack, without the styling."""
    lines: list[str] = []
    for block in blocks:
        kind = block["type"]
        if kind == "header":
            lines.append(block["text"]["text"])
        elif kind == "section" and block.get("text"):
            lines += block["text"]["text"].splitlines()
        elif kind == "section":
            lines.append("   ".join(item["text"].replace("\n", ": ") for item in block.get("fields", [])))
        elif kind == "actions":
            lines.append("  ".join(f"[ {element['text']['text']} ]" for element in block["elements"]))
        elif kind == "context":
            lines += [element["text"] for element in block["elements"]]
    return [line.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&") for line in lines]
