"""Slack's parts one by one: messages and their limits, delivery and its failures, approvers,
secrets, the worker and its asynchronous hand-over."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import re
import zipfile

import pytest
from chalice.test import Client

import app as chalice_app
from chalicelib.events.record import CloudTrailEvent
from chalicelib.incidents.lifecycle import Incidents
from chalicelib.incidents.model import Incident, State, StepResult, StepStatus, incident_id
from chalicelib.incidents.store import MemoryStore
from chalicelib.playbooks.catalog import Catalog
from chalicelib.playbooks.plan import PlannedStep
from chalicelib.respond.guards import OwnIdentities
from chalicelib.settings import Settings
from chalicelib.slack.approvers import ApproverLookupFailed, Approvers
from chalicelib.slack.client import web_client
from chalicelib.slack.delivery import SlackNotifier
from chalicelib.slack.messages import block_kit_builder_url, render
from chalicelib.slack.secrets import SecretError, read_secret
from tests.conftest import (
    APPROVE_PLAYBOOK,
    APPROVER,
    SIGNING_SECRET,
    CallRecorder,
    envelope,
    record,
    recording_clients,
    remembering,
    shown,
    signed_click,
)

pytestmark = pytest.mark.integration


def _incident(state: State = State.REMEDIATED, **event_fields) -> Incident:
    raw = record("StopLogging", "cloudtrail.amazonaws.com", {"name": "main"}, **event_fields)
    incident = Incident(
        id=incident_id(raw["eventID"], "cloudtrail-stop-logging"),
        playbook_id="cloudtrail-stop-logging",
        playbook_version=1,
        title="CloudTrail logging stopped",
        severity="critical",
        mode="auto",
        event=CloudTrailEvent.from_record(raw).summary(),
        state=state,
        plan=[PlannedStep("cloudtrail.start_logging", {"trail": "main"})],
    )
    if state is not State.PROPOSED:
        incident.steps = [
            StepResult(
                "cloudtrail.start_logging",
                {"trail": "main"},
                StepStatus.APPLIED,
                {"IsLogging": False},
                {"IsLogging": True},
            )
        ]
    incident.record("trailguard", "open")
    return incident


def _buttons(message) -> list[str]:
    return [e["action_id"] for b in message.blocks if b["type"] == "actions" for e in b["elements"]]


def _all_text(message) -> str:
    return json.dumps(message.blocks, ensure_ascii=False)


# -- messages ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "state,expected",
    [
        (State.PROPOSED, ["trailguard:approve", "trailguard:deny"]),
        (State.REMEDIATED, ["trailguard:undo", "trailguard:acknowledge"]),
        (State.FAILED, ["trailguard:retry", "trailguard:acknowledge"]),
        (State.NOTIFIED, ["trailguard:acknowledge"]),
        (State.REMEDIATING, []),
        (State.UNDOING, []),
        (State.DENIED, []),
        (State.EXPIRED, []),
        (State.UNDONE, []),
        (State.ACKNOWLEDGED, []),
        (State.SIMULATED, []),
    ],
)
def test_buttons_follow_the_state(state, expected):
    incident = _incident(state)
    message = render(incident)
    assert _buttons(message) == expected
    values = {e["value"] for b in message.blocks if b["type"] == "actions" for e in b["elements"]}
    # each button carries the incident and its decision count (the history's length) when drawn
    assert values == ({f"{incident.id}:{len(incident.history)}"} if expected else set())


def test_a_failed_incident_without_a_plan_offers_no_retry():
    incident = _incident(State.FAILED)
    incident.plan, incident.steps, incident.error = [], [], "playbook x: keyId is null"
    assert _buttons(render(incident)) == ["trailguard:acknowledge"]


def test_buttons_that_call_aws_ask_for_confirmation():
    blocks = render(_incident(State.PROPOSED)).blocks
    [approve, deny] = [e for b in blocks if b["type"] == "actions" for e in b["elements"]]
    assert "Run 1 step(s) in 123456789012, us-east-1?" in approve["confirm"]["text"]["text"]
    assert "confirm" not in deny


def test_the_message_says_who_did_what_where_and_links_the_event():
    incident = _incident(userAgent="Boto3/1.34 md/Botocore", sourceIPAddress="198.51.100.9")
    text = _all_text(render(incident, {"123456789012": "sandbox"}))
    assert "*IAMUser mallory* called `StopLogging` on `main` in *sandbox (123456789012)*, us-east-1" in text
    assert "198.51.100.9" in text and "Boto3/1.34 md/Botocore" in text
    assert incident.event.event_id in text and incident.id in text
    assert (
        f"https://us-east-1.console.aws.amazon.com/cloudtrailv2/home?region=us-east-1#/events/{incident.event.event_id}"
    ) in text
    assert ":white_check_mark: 1. `cloudtrail.start_logging` trail=main: applied" in text


def test_an_assumed_role_session_is_shown():
    identity = {
        "type": "AssumedRole",
        "arn": "arn:aws:sts::123456789012:assumed-role/ops/alice@example.com",
        "accountId": "123456789012",
        "sessionContext": {"sessionIssuer": {"userName": "ops", "arn": "arn:aws:iam::123456789012:role/ops"}},
    }
    text = _all_text(render(_incident(userIdentity=identity)))
    assert "*role ops/alice@example.com* called" in text and "*Session*\\nalice@example.com" in text


def test_attacker_controlled_text_cannot_mention_or_link():
    incident = _incident(userAgent="<!channel> <https://evil.example|click me> & more")
    text = _all_text(render(incident))
    assert "<!channel>" not in text and "<https://evil.example" not in text
    assert "&lt;!channel&gt; &lt;https://evil.example|click me&gt; &amp; more" in text


def test_long_values_are_cut_to_slacks_limits_and_slack_takes_the_message(slack_stub):
    incident = _incident(userAgent="x" * 10_000, sourceIPAddress="1" * 5000)
    incident.title = "T" * 400
    incident.plan = [
        PlannedStep("s3.remove_public_acl", {"bucket": f"bucket-{i:03d}-" + "y" * 200}) for i in range(200)
    ]
    incident.steps = [
        StepResult(p.action, p.params, StepStatus.FAILED, error="AccessDenied " * 50) for p in incident.plan
    ]
    incident.error = "E" * 10_000
    message = render(incident)  # slack_sdk's models check the limits in to_dict()
    header = message.blocks[0]["text"]["text"]
    assert len(header) == 150 and header.endswith("…")
    assert "… and " in _all_text(message) and "more" in _all_text(message)
    client = web_client(slack_stub.token, slack_stub.base_url)
    assert client.chat_postMessage(channel="#x", text=message.text, blocks=message.blocks)["ok"]


def test_the_stub_refuses_what_slack_would_refuse(slack_stub):
    client = web_client(slack_stub.token, slack_stub.base_url)
    too_long = [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}]
    with pytest.raises(Exception, match="invalid_blocks"):
        client.chat_postMessage(channel="#x", text="t", blocks=too_long)
    with pytest.raises(Exception, match="invalid_auth"):
        web_client("xoxb-wrong", slack_stub.base_url).auth_test()


def test_a_sweep_finding_says_no_event_was_received_and_links_nothing():
    incident = _incident(eventType="TrailguardSweep")
    text = _all_text(render(incident))
    assert "The posture sweep found `StopLogging` on `main`" in text and "no CloudTrail event was received" in text
    assert "console.aws.amazon.com" not in text


def test_the_block_kit_builder_link_carries_the_blocks():
    message = render(_incident())
    url = block_kit_builder_url(message)
    assert url.startswith("https://app.slack.com/block-kit-builder/#%7B%22blocks%22")


# -- delivery ----------------------------------------------------------------------------


def _notifier(slack_stub, store) -> Incidents:
    """The incidents of `store`, told through the Slack stub (`notify` delivers and records)."""
    return Incidents(store, notifier=_slack(slack_stub))


def _slack(slack_stub) -> SlackNotifier:
    return SlackNotifier(lambda: web_client(slack_stub.token, slack_stub.base_url), default_channel="#alerts")


def _slack_responder(catalog, store, slack_stub, clock=None):
    """A responder acting in moto and telling the Slack stub, as the runtime wires one."""
    from chalicelib.actions.binding import ActionBinder
    from chalicelib.aws.clients import AwsClients
    from chalicelib.clock import utc_now
    from chalicelib.incidents.store import DynamoStore
    from chalicelib.memory.documents import DynamoDocuments
    from chalicelib.respond.responder import Responder

    clients = AwsClients()
    documents = DynamoDocuments(store.client, store.table) if isinstance(store, DynamoStore) else None
    memory = remembering(store, documents)
    incidents = Incidents(
        store, ActionBinder(clients, memory), memory=memory, notifier=_slack(slack_stub), clock=clock or utc_now
    )
    return Responder(catalog, own=OwnIdentities(), incidents=incidents), clients


@pytest.fixture
def stored() -> tuple[MemoryStore, Incident]:
    """A remediated incident, recorded and not yet told."""
    store, incident = MemoryStore(), _incident()
    store.create(incident)
    return store, incident


def test_a_message_deleted_in_slack_is_posted_again(slack_stub, stored):
    store, incident = stored
    notifier = _notifier(slack_stub, store)
    notifier.notify(incident)
    first_ts = incident.notification["ts"]
    slack_stub.messages.clear()  # someone deleted it
    incident.record("slack:U0X", "acknowledge")
    notifier.notify(incident)
    assert incident.notification["ts"] != first_ts
    assert slack_stub.only_message().ts == incident.notification["ts"]


def test_a_message_already_up_to_date_is_not_sent_again(slack_stub, stored):
    store, incident = stored
    notifier = _notifier(slack_stub, store)
    notifier.notify(incident)
    notifier.notify(incident)
    assert len(slack_stub.calls("chat.postMessage")) == 1 and not slack_stub.calls("chat.update")


def test_a_token_that_cannot_be_read_is_a_delivery_error_not_a_crash(aws, stored):
    store, incident = stored
    import boto3

    def connect():
        return web_client(read_secret("ssm:/trailguard/missing", lambda s: boto3.client(s, region_name="us-east-1")))

    Incidents(store, notifier=SlackNotifier(connect, default_channel="#alerts")).notify(incident)
    kept = store.get(incident.id)
    assert kept.notification_due and "/trailguard/missing does not exist" in kept.notification["error"]


def test_the_sweep_expiry_updates_the_proposal_message(aws, slack_stub, tmp_path, make_trail):
    from chalicelib.posture.sweep import Sweep
    from tests.conftest import Clock

    (tmp_path / "p.yaml").write_text(APPROVE_PLAYBOOK)
    catalog, clock = Catalog.load([tmp_path]), Clock()
    responder, clients = _slack_responder(catalog, MemoryStore(), slack_stub, clock)
    lifecycle = responder.incidents
    make_trail("main")
    responder.respond(CloudTrailEvent.from_record(record("StopLogging", "cloudtrail.amazonaws.com", {"name": "main"})))
    import datetime as dt

    clock.now += dt.timedelta(hours=3)
    report = Sweep(
        catalog=catalog,
        responder=responder,
        incidents=lifecycle,
        clients=clients,
        account="123456789012",
        regions=["us-east-1"],
        trail_names=["not-checked-here"],
    ).run()
    assert len(report.expired) == 1
    message = slack_stub.only_message()
    assert (
        _buttons(message) == [] and "Expired" in message.text and "nobody answered within 2 hours" in message.thread[0]
    )


# -- approvers ---------------------------------------------------------------------------


def test_group_members_are_cached_briefly():
    lookups: list[str] = []
    now = [0.0]

    def members(group):
        lookups.append(group)
        return ["U0ALICE"]

    approvers = Approvers(frozenset({"S0SEC"}), {}, members, cache_seconds=60, clock=lambda: now[0])
    assert approvers.allows("U0ALICE", "any") and approvers.allows("U0ALICE", "any")
    assert not approvers.allows("U0MALLORY", "any")
    assert lookups == ["S0SEC"]
    now[0] = 61
    approvers.allows("U0ALICE", "any")
    assert lookups == ["S0SEC", "S0SEC"]


def test_nobody_is_an_approver_until_someone_is_named():
    approvers = Approvers(frozenset(), {}, lambda group: [])
    assert not approvers.allows(APPROVER, "any")


def test_a_failed_group_lookup_refuses_with_the_reason():
    def broken(group):
        raise ConnectionError("slack unreachable")

    with pytest.raises(ApproverLookupFailed, match="S0SEC: slack unreachable"):
        Approvers(frozenset({"S0SEC"}), {}, broken).allows("U0ALICE", "any")


def _app_runtime(restart, catalog=None, **slack_settings):
    """The app in a new container with these Slack settings, its AWS calls recorded."""
    settings = dataclasses.replace(
        Settings(), slack_channel="#alerts", slack_approvers=frozenset({APPROVER}), **slack_settings
    )
    recorder = CallRecorder()
    return restart(catalog, settings=settings, clients=recording_clients(recorder)), recorder


# -- secrets -----------------------------------------------------------------------------


def test_secrets_come_from_ssm_or_secrets_manager_or_the_value(aws):
    import boto3

    boto3.client("ssm", region_name="us-east-1").put_parameter(
        Name="/trailguard/dev/slack-token", Value="xoxb-from-ssm", Type="SecureString"
    )
    boto3.client("secretsmanager", region_name="us-east-1").create_secret(
        Name="trailguard/dev/signing", SecretString="from-secrets-manager"
    )
    clients = {}

    def home_client(service):
        return clients.setdefault(service, boto3.client(service, region_name="us-east-1"))

    assert read_secret("ssm:/trailguard/dev/slack-token", home_client) == "xoxb-from-ssm"
    assert read_secret("secretsmanager:trailguard/dev/signing", home_client) == "from-secrets-manager"
    assert read_secret("xoxb-literal", home_client) == "xoxb-literal"
    with pytest.raises(SecretError, match="the secret trailguard/nope does not exist"):
        read_secret("secretsmanager:trailguard/nope", home_client)


def test_secrets_are_read_once_and_never_logged(aws, slack_stub, caplog, make_trail, restart):
    import boto3

    boto3.client("ssm", region_name="us-east-1").put_parameter(
        Name="/tg/token", Value=slack_stub.token, Type="SecureString"
    )
    boto3.client("ssm", region_name="us-east-1").put_parameter(
        Name="/tg/signing", Value=SIGNING_SECRET, Type="SecureString"
    )
    runtime, recorder = _app_runtime(
        restart,
        slack_token="ssm:/tg/token",
        slack_signing_secret="ssm:/tg/signing",
        slack_base_url=slack_stub.base_url,
    )
    settings = runtime.settings
    trail = make_trail("main")
    trail.stop_logging(Name="main")
    # trailguard's and slack_sdk's own logs, at their most talkative (botocore's DEBUG
    # log prints API responses, GetParameter's included: never turn it on in a stage)
    caplog.set_level(logging.DEBUG, logger="trailguard")
    caplog.set_level(logging.DEBUG, logger="slack_sdk")
    with Client(chalice_app.app) as client:
        event = envelope(record("StopLogging", "cloudtrail.amazonaws.com", {"name": "main"}))
        [incident] = client.lambda_.invoke("respond_to_cloudtrail", event).payload["incidents"]
        body, headers = signed_click("undo", slack_stub.button_value(incident["id"], "undo"))
        assert client.http.post("/slack/interactions", headers=headers, body=body).status_code == 200
    assert recorder.calls.count("GetParameter") == 2  # token and signing secret, once each
    assert slack_stub.only_message().updates == 1
    assert slack_stub.token not in caplog.text and SIGNING_SECRET not in caplog.text
    assert slack_stub.token not in repr(settings) and SIGNING_SECRET not in repr(settings)


# -- the worker and the asynchronous hand-over -------------------------------------------


def _worker_function(name: str) -> None:
    import boto3

    role = boto3.client("iam").create_role(RoleName="worker", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("app.py", "def slack_worker(event, context):\n    return event\n")
    boto3.client("lambda").create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=role,
        Handler="app.slack_worker",
        Code={"ZipFile": code.getvalue()},
    )


def test_a_click_is_decided_at_once_and_carried_out_by_the_worker_lambda(
    aws, slack_stub, tmp_path, make_trail, restart
):
    worker = "trailguard-dev-slack_worker"
    _worker_function(worker)
    (tmp_path / "p.yaml").write_text(APPROVE_PLAYBOOK)
    runtime, recorder = _app_runtime(
        restart,
        Catalog.load([tmp_path]),
        slack_token=slack_stub.token,
        slack_signing_secret=SIGNING_SECRET,
        slack_base_url=slack_stub.base_url,
        slack_worker=worker,
    )
    trail = make_trail("main")
    trail.stop_logging(Name="main")
    with Client(chalice_app.app) as client:
        event = envelope(record("StopLogging", "cloudtrail.amazonaws.com", {"name": "main"}))
        [opened] = client.lambda_.invoke("respond_to_cloudtrail", event).payload["incidents"]
        body, headers = signed_click("approve", slack_stub.button_value(opened["id"], "approve"))
        assert client.http.post("/slack/interactions", headers=headers, body=body).status_code == 200

        # Answered: the decision is recorded, AWS is not touched yet, the worker is invoked.
        assert runtime.incidents.get(opened["id"]).state is State.REMEDIATING
        assert trail.get_trail_status(Name="main")["IsLogging"] is False
        [(_, invoke)] = [(n, p) for n, p in recorder.params if n == "Invoke"]
        assert invoke["FunctionName"] == worker and invoke["InvocationType"] == "Event"
        job = json.loads(invoke["Payload"])

        result = client.lambda_.invoke("slack_worker", job).payload
        assert result == {
            "status": "done",
            "incident": opened["id"],
            "playbook": "trail-approve",
            "state": "remediated",
        }
        assert trail.get_trail_status(Name="main")["IsLogging"] is True
        assert _buttons(slack_stub.only_message()) == ["trailguard:undo", "trailguard:acknowledge", "trailguard:except"]

        # Lambda delivers async invocations at least once: a second delivery runs nothing.
        again = client.lambda_.invoke("slack_worker", job).payload
        assert again["status"] == "done" and recorder.writes().count("StartLogging") == 1


@pytest.mark.parametrize("job", [None, [], {"what": 1}, "text"])
def test_a_malformed_job_is_rejected_not_retried(job):
    from chalicelib.slack.worker import ClickWorker

    worker = ClickWorker(Incidents(MemoryStore(), None), lambda url, text: None)
    assert worker.run(job)["status"] == "rejected"


def test_slack_costs_one_write_per_message_change(dynamo_store, slack_stub, make_trail):
    from tests.conftest import PLAYBOOKS

    recorder = CallRecorder()
    recorder.attach(dynamo_store.client)
    responder, _ = _slack_responder(Catalog.load([PLAYBOOKS], with_tests=False), dynamo_store, slack_stub)
    make_trail("main").stop_logging(Name="main")
    _, [outcome] = responder.respond(
        CloudTrailEvent.from_record(record("StopLogging", "cloudtrail.amazonaws.com", {"name": "main"}))
    )
    assert outcome.incident.state is State.REMEDIATED
    assert recorder.writes() == ["PutItem"] * 4  # open, snapshot, result, where the message is
    assert dynamo_store.get(outcome.incident.id).notification["ts"] == slack_stub.only_message().ts


def test_a_click_whose_worker_never_runs_is_finished_by_the_sweep(aws, slack_stub, tmp_path, make_trail):
    import datetime as dt

    from slack_sdk.signature import SignatureVerifier

    from chalicelib.posture.sweep import Sweep
    from chalicelib.slack.interactions import Interactions
    from tests.conftest import Clock

    (tmp_path / "p.yaml").write_text(APPROVE_PLAYBOOK)
    catalog, clock, store = Catalog.load([tmp_path]), Clock(), MemoryStore()
    responder, clients = _slack_responder(catalog, store, slack_stub, clock)
    lifecycle = responder.incidents
    lost_jobs: list[dict] = []  # the asynchronous invoke that never arrives
    interactions = Interactions(
        verify=SignatureVerifier(SIGNING_SECRET).is_valid_request,
        incidents=lifecycle,
        approvers=Approvers(frozenset({APPROVER}), {}, lambda group: []),
        dispatch=lost_jobs.append,
    )
    trail = make_trail("main")
    trail.stop_logging(Name="main")
    _, [outcome] = responder.respond(
        CloudTrailEvent.from_record(record("StopLogging", "cloudtrail.amazonaws.com", {"name": "main"}))
    )

    assert interactions.answer(*signed_click("approve", shown(outcome.incident))).status == 200
    assert len(lost_jobs) == 1 and store.get(outcome.incident.id).state is State.REMEDIATING

    sweep = Sweep(
        catalog=catalog,
        responder=responder,
        incidents=lifecycle,
        clients=clients,
        account="123456789012",
        regions=["us-east-1"],
        trail_names=["not-checked-here"],
    )
    assert sweep.run().resumed == []  # the lease still runs: the worker may yet come
    clock.now += dt.timedelta(seconds=lifecycle.lease.total_seconds() + 1)
    assert sweep.run().resumed == [outcome.incident.id]
    assert store.get(outcome.incident.id).state is State.REMEDIATED
    assert trail.get_trail_status(Name="main")["IsLogging"] is True
    assert _buttons(slack_stub.only_message()) == ["trailguard:undo", "trailguard:acknowledge"]


def test_messages_do_not_unfurl_the_console_link(slack_stub, stored):
    store, incident = stored
    _notifier(slack_stub, store).notify(incident)
    [posted] = slack_stub.calls("chat.postMessage")
    assert posted.body["unfurl_links"] is False and posted.body["unfurl_media"] is False


def test_step_parameters_are_summed_up_for_people():
    from chalicelib.slack.messages import describe_params

    ports = [22, 23, 135, 139, 445, 1433, 1521, 2049, 2375, 2376, 3306, 3389]
    rule = {"securityGroupRuleId": "sgr-0123456789abcdef0", "groupId": "sg-0123456789abcdef0", "fromPort": 22}
    text = describe_params({"group": "sg-1", "rules": [rule], "ports": ports, "fallback": None, "few": [22, 3389]})
    assert text == "group=sg-1, rules=(1 item), ports=22, 23, 135, 139, 445, 1433, … (12), few=22, 3389"


@pytest.mark.parametrize(
    "user,value,problem",
    [
        ("U0APPROVER\n", "inc-0123456789abcdef0123:1", "payload.user.id"),
        ("U0APPROVER", "inc-0123456789abcdef0123\n", "payload.actions[0].value"),
        ("U0APPROVER", "inc-0123456789abcdef0123:1\n", "payload.actions[0].value"),
    ],
)
def test_an_id_with_a_trailing_newline_is_not_an_id(user, value, problem):
    """`re.match` with `$` accepts "U0APPROVER\n": a Slack id is matched whole."""
    from chalicelib.slack.interactions import BadInteraction, parse_click

    body, _ = signed_click("approve", value, user=user)
    with pytest.raises(BadInteraction, match=re.escape(problem)):
        parse_click(body)
    good, _ = signed_click("approve", "inc-0123456789abcdef0123:1")
    assert (parse_click(good).incident_id, parse_click(good).decisions) == ("inc-0123456789abcdef0123", 1)
