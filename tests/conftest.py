"""Shared fixtures: moto for AWS, the real CloudTrail datasets, event builders, call recording."""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import uuid
import zipfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hypothesis
import pytest

from chalicelib.events.synthetic import api_call_record, eventbridge_envelope
from trailguard.generate.docs import default_datasets

# No test may reach real AWS: fake credentials and a fixed region before boto3 is used.
for _name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ENDPOINT_URL"):
    os.environ.pop(_name, None)
os.environ["AWS_ACCESS_KEY_ID"] = "testing"
os.environ["AWS_SECRET_ACCESS_KEY"] = "testing"
os.environ["AWS_DEFAULT_REGION"] = "us-east-1"
# The command line remembers no compiled playbooks (tests/playbooks/test_remembered.py does).
os.environ["TRAILGUARD_CACHE_DIR"] = ""

ROOT = Path(__file__).resolve().parents[1]

# Property-based tests (tests/test_fuzz.py): cases per target; `make fuzz` raises it.
FUZZ_EXAMPLES = int(os.environ.get("TRAILGUARD_FUZZ_EXAMPLES", "150"))
hypothesis.settings.register_profile("trailguard", max_examples=FUZZ_EXAMPLES, deadline=None, print_blob=True)
hypothesis.settings.load_profile("trailguard")
FUZZ_CASES: Counter[str] = Counter()
FAULTS_SURVIVED: Counter[str] = Counter()
"""Faults tests/test_faults.py injected and trailguard survived, by kind."""


def count_fuzz_case(target: str) -> None:
    FUZZ_CASES[target] += 1


TIERS = ("unit", "integration", "e2e")


def pytest_collection_modifyitems(items: list[Any]) -> None:
    """Every test belongs to exactly one tier (pyproject.toml says what each means), so that
    `make test-fast` runs the whole unit tier and a new module cannot fall outside all three."""
    for item in items:
        tiers = [tier for tier in TIERS if item.get_closest_marker(tier)]
        if len(tiers) != 1:
            raise pytest.UsageError(f"{item.nodeid}: mark it with exactly one of {', '.join(TIERS)} (has {tiers})")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if FUZZ_CASES:
        cases = ", ".join(f"{target} {count}" for target, count in FUZZ_CASES.items())
        terminalreporter.write_line(f"fuzz cases run: {cases} ({sum(FUZZ_CASES.values())} in all)")
    if FAULTS_SURVIVED:
        faults = ", ".join(f"{kind} {count}" for kind, count in FAULTS_SURVIVED.items())
        terminalreporter.write_line(f"faults injected and survived: {faults}")


PLAYBOOKS = ROOT / "playbooks"
DATASETS = default_datasets()  # tests/data, or TRAILGUARD_DATASETS
ACCOUNT = "123456789012"  # moto's default account
REGION = "us-east-1"


@pytest.fixture(scope="session")
def datasets() -> Path:
    if not (DATASETS / "README.md").exists():
        pytest.fail(f"the CloudTrail datasets are missing: expected them at {DATASETS} (set TRAILGUARD_DATASETS)")
    return DATASETS


@pytest.fixture(autouse=True)
def json_log_lines(caplog) -> None:
    """Captured log lines read as a deployed function writes them (`logs.JsonLines`): the
    message and its fields, so that a test of what is logged sees the fields too."""
    from chalicelib.logs import JsonLines

    caplog.handler.setFormatter(JsonLines())


@pytest.fixture(scope="session", autouse=True)
def dynamodb_serialises_writes() -> Iterator[None]:
    """Every test's moto DynamoDB serialises writes to an item as AWS does, so a test of
    "exactly once" measures trailguard, not moto (bench.common says why; tests/test_store.py
    also checks the conditions trailguard sends)."""
    from bench.common import serialised_dynamodb_writes

    with serialised_dynamodb_writes():
        yield


@pytest.fixture
def aws() -> Iterator[None]:
    from moto import mock_aws

    with mock_aws():
        yield


MALLORY = {
    "type": "IAMUser",
    "principalId": "AIDAEXAMPLE",
    "arn": f"arn:aws:iam::{ACCOUNT}:user/mallory",
    "accountId": ACCOUNT,
    "userName": "mallory",
}


def record(event_name: str, source: str, request: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
    """A complete CloudTrail record made by an IAM user, in moto's account and region."""
    return api_call_record(
        event_name, source, request, identity=MALLORY, region=REGION, event_time="2026-11-26T03:12:45Z", **fields
    )


def python_function(iam: Any, lam: Any, name: str, role: str) -> None:
    """A Python function in moto, run by `role` (created here, trusted by Lambda)."""
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    arn = iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("handler.py", "def handle(event, context):\n    return 1\n")
    lam.create_function(
        FunctionName=name, Runtime="python3.13", Role=arn, Handler="handler.handle", Code={"ZipFile": code.getvalue()}
    )


def envelope(detail: dict[str, Any], source: str | None = None) -> dict[str, Any]:
    """The EventBridge event that carries a CloudTrail record."""
    return eventbridge_envelope(copy.deepcopy(detail), str(uuid.uuid4()), source)


@pytest.fixture
def make_trail(aws):
    """Create a stopped trail (and its bucket) in moto; returns the CloudTrail client."""
    import boto3

    cloudtrail = boto3.client("cloudtrail", region_name=REGION)

    def make(name: str = "main") -> Any:
        boto3.client("s3", region_name=REGION).create_bucket(Bucket=f"{name}-logs")
        cloudtrail.create_trail(Name=name, S3BucketName=f"{name}-logs")
        return cloudtrail

    return make


def stratus_record(datasets: Path, technique: str, event_name: str) -> dict[str, Any]:
    """A real record from Stratus Red Team's detonation logs, moved into moto's account/region."""
    records = json.loads((datasets / "stratus-detonation-logs" / f"{technique}.json").read_text())
    found = next(r for r in records if r["eventName"] == event_name)
    found = copy.deepcopy(found)
    found["recipientAccountId"] = ACCOUNT
    found["awsRegion"] = REGION
    return found


class CallRecorder:
    """The AWS operations a boto3 client sends, in order (for checks moto cannot make)."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.params: list[tuple[str, dict[str, Any]]] = []

    def attach(self, client: Any) -> Any:
        client.meta.events.register("before-call.*.*", self._record)
        client.meta.events.register("provide-client-params.*.*", self._record_params)
        return client

    def _record(self, model: Any, **_: Any) -> None:
        self.calls.append(model.name)

    def _record_params(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        self.params.append((model.name, dict(params)))

    def writes(self) -> list[str]:
        return [c for c in self.calls if not c.startswith(("Describe", "Get", "List"))]


@pytest.fixture
def calls() -> CallRecorder:
    return CallRecorder()


TABLE = "trailguard-test"
INTEGRITY_KEY = "alias/trailguard-test-integrity"


@pytest.fixture
def integrity_key(aws) -> str:
    """The stage's KMS HMAC key in moto, made the way `bootstrap` makes it; returns its alias."""
    import boto3

    from trailguard.bootstrap import ensure_key

    ensure_key(boto3.client("kms", region_name=REGION), INTEGRITY_KEY)
    return INTEGRITY_KEY


def remembering(incidents: Any = None, documents: Any = None) -> Any:
    """trailguard's memory: `documents` (by default in this process's memory), with the stance
    of the incidents that hold them read from the store `incidents`."""
    from chalicelib.incidents.model import stance_in
    from chalicelib.memory.documents import MemoryDocuments
    from chalicelib.memory.rules import Memory

    return Memory(documents or MemoryDocuments(), stance_in(incidents) if incidents is not None else None)


@pytest.fixture
def dynamo_store(aws):
    """The DynamoDB store on a table made the way `bootstrap` makes it, in moto."""
    import boto3

    from chalicelib.incidents.store import DynamoStore
    from trailguard.bootstrap import ensure_table

    client = boto3.client("dynamodb", region_name=REGION)
    ensure_table(client, TABLE)
    return DynamoStore(client, TABLE)


def recording_clients(*attachers: Any, **options: Any) -> Any:
    """Real moto-backed AwsClients, each client they make given to every attacher's
    `attach` (a CallRecorder records its calls; Faults injects errors)."""
    from chalicelib.aws.clients import AwsClients

    class RecordingClients(AwsClients):
        def _new_client(self, session: Any, service: str, region: str | None) -> Any:
            client = super()._new_client(session, service, region)
            for attacher in attachers:
                attacher.attach(client)
            return client

    return RecordingClients(**options)


def member_session(account: str) -> Any:
    """A boto3 session acting as another account (moto keeps accounts apart by credentials)."""
    import boto3

    credentials = boto3.client("sts", region_name=REGION).assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/admin", RoleSessionName="setup"
    )["Credentials"]
    return boto3.session.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=REGION,
    )


@pytest.fixture
def instant_backoff(monkeypatch):
    """botocore's retries without their waits."""
    from botocore.retries import standard

    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", lambda self, context: 0)


class _Body:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self, **_: Any) -> Any:
        yield self.data


class Faults:
    """Planned AWS errors by (service, operation), and what was sent and answered.

    Attach it to clients (`recording_clients(faults)` does, for every client trailguard
    makes); an error is answered at botocore's `before-send`, with the request pointed at
    a host moto does not serve, because botocore calls every before-send handler and
    moto's would still carry the call out. With `landed`, moto carries the call out first
    and its answer is then lost: what a timeout or a 5xx after AWS has written does."""

    def __init__(self) -> None:
        self.plans: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.succeeded: Counter[tuple[str, str]] = Counter()
        self.injected: Counter[tuple[str, str]] = Counter()

    def add(
        self,
        service: str,
        operation: str,
        code: str,
        *,
        status: int = 400,
        times: int = 1,
        after: int = 0,
        error: type[BaseException] | None = None,
        message: str | None = None,
        landed: bool = False,
        matching: str | None = None,
    ) -> None:
        """Answer `times` calls of the operation with `code` (or raise `error`), after `after` good ones;
        `landed`: the call is carried out all the same, only its answer is lost; `matching`: only
        calls whose request body holds this text (one incident's id) are counted and answered."""
        self.plans.setdefault((service, operation), []).append(
            {
                "code": code,
                "status": status,
                "times": times,
                "after": after,
                "error": error,
                "message": message or f"injected {code}",
                "landed": landed,
                "matching": matching,
            }
        )

    def sent(self, service: str, operation: str) -> int:
        """How many calls of the operation were sent, answered by a fault or not."""
        return self.injected[(service, operation)] + self.succeeded[(service, operation)]

    def clear(self) -> None:
        self.plans.clear()

    def attach(self, client: Any) -> Any:
        protocol = client.meta.service_model.protocol
        prefix = client.meta.service_model.endpoint_prefix

        def answer(request: Any, event_name: str, **_: Any) -> Any:
            operation = event_name.rsplit(".", 1)[1]
            key = (prefix, operation)
            body = request.body if isinstance(request.body, bytes) else str(request.body or "").encode()
            for plan in self.plans.get(key, []):
                if plan["matching"] is not None and plan["matching"].encode() not in body:
                    continue
                if plan["after"] > 0:
                    plan["after"] -= 1
                    continue
                if plan["times"] > 0:
                    plan["times"] -= 1
                    self.injected[key] += 1
                    if plan["landed"]:
                        from moto.core.models import botocore_stubber

                        botocore_stubber(event_name, request)  # AWS did it; the caller will not hear so
                    if plan["error"] is not None:
                        raise plan["error"]()
                    request.url = "https://injected-fault.invalid/"  # moto must not carry the call out
                    return _error_response(request.url, protocol, plan["code"], plan["status"], plan["message"])
            self.succeeded[key] += 1
            return None

        client.meta.events.register_first("before-send", answer)
        return client


def _error_response(url: str, protocol: str, code: str, status: int, message: str) -> Any:
    from botocore.awsrequest import AWSResponse

    if protocol in ("json", "rest-json"):
        body = json.dumps({"__type": code, "message": message}).encode()
        headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-ErrorType": code}
    elif protocol == "ec2":
        error = f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
        body = f"<Response><Errors>{error}</Errors></Response>".encode()
        headers = {}
    else:
        body = (
            f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>"
            "</ErrorResponse>"
        ).encode()
        headers = {"Content-Type": "text/xml"}
    return AWSResponse(url, status, headers, _Body(body))


class Clock:
    """A clock the test moves by hand (leases, approval timeouts)."""

    def __init__(self, now: Any = None) -> None:
        import datetime as dt

        self.now = now or dt.datetime.now(dt.UTC)

    def __call__(self) -> Any:
        return self.now


APPROVE_PLAYBOOK = """\
id: trail-approve
title: Trail stopped
severity: high
when: {source: cloudtrail.amazonaws.com, events: [StopLogging]}
mode: approve
approval: {timeout: 2h}
steps:
  - action: cloudtrail.start_logging
    with: {trail: requestParameters.name}
"""
"""A playbook that waits for a person, for tests of approvals and their expiry."""


SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
"""The test Slack app's signing secret (Slack's own docs use a value of this shape)."""
APPROVER = "U0APPROVER"
STRANGER = "U0STRANGER"


@pytest.fixture
def slack_stub() -> Iterator[Any]:
    from trailguard.local.slack import SlackStub

    with SlackStub(groups={"S0SECURITY": ["U0ALICE", "U0BOB"]}) as stub:
        yield stub


def signed_click(
    transition: str,
    value: str,
    *,
    user: str = APPROVER,
    response_url: str | None = None,
    secret: str = SIGNING_SECRET,
    age_seconds: int = 0,
    **payload: str,
) -> tuple[str, dict[str, str]]:
    """What Slack sends when `user` presses a trailguard button carrying `value` (the incident
    id and its decision count: `slack_stub.button_value`, or `shown(incident)`), signed with
    the test app's secret."""
    from trailguard.local.slack import signed_click as slack_click

    return slack_click(
        transition, value, user=user, secret=secret, response_url=response_url, age_seconds=age_seconds, **payload
    )


def shown(incident: Any) -> str:
    """The value a button on the incident's message carries, for tests without a Slack stub:
    its id and its decision count (how many history entries) as the incident is now."""
    return f"{incident.id}:{len(incident.history)}"


@pytest.fixture
def press(client, slack_stub):
    """Press a button on the incident's message as the Slack stub shows it now, through the app's route."""

    def press(transition: str, incident_id: str, **options: Any) -> Any:
        body, headers = signed_click(transition, slack_stub.button_value(incident_id, transition), **options)
        return client.http.post("/slack/interactions", headers=headers, body=body)

    return press


DEPLOYED_TABLE = "trailguard-slack-test"


@pytest.fixture
def restart() -> Iterator[Any]:
    """Restart the app in a new container for the rest of the test (`trailguard.local.app`):
    `restart(**changes)` runs app.py's handlers on a new runtime with the running one's
    settings changed (or `settings=`), its catalog unless `catalog=` is given, its
    organization settings unless `organization=` is given, and the caller's `clients=` if
    given; returns it. The app's own runtime is back after the test."""
    from trailguard.local.app import container, running

    with contextlib.ExitStack() as stack:

        def restart(
            catalog: Any = None, *, clients: Any = None, settings: Any = None, organization: Any = None, **changes: Any
        ) -> Any:
            if settings is not None:
                import app as chalice_app
                from chalicelib.organization.model import NO_ORGANIZATION
                from chalicelib.runtime import Runtime

                fresh = Runtime(
                    settings,
                    catalog or chalice_app.runtime.catalog,
                    clients=clients,
                    organization=organization or NO_ORGANIZATION,
                )
            else:
                fresh = container(catalog, clients=clients, organization=organization, **changes)
            return stack.enter_context(running(fresh))

        yield restart


@pytest.fixture
def runtime(aws, slack_stub, integrity_key, restart):
    """The app's runtime as deployed (incidents in DynamoDB, sealed with KMS), Slack pointed at the stub."""
    import boto3

    from chalicelib.settings import Settings
    from trailguard.bootstrap import ensure_table

    ensure_table(boto3.client("dynamodb"), DEPLOYED_TABLE)
    settings = Settings(
        table=DEPLOYED_TABLE,
        integrity_key=integrity_key,
        slack_token=slack_stub.token,
        slack_signing_secret=SIGNING_SECRET,
        slack_channel="#security-alerts",
        slack_approvers=frozenset({APPROVER, "S0SECURITY"}),
        slack_base_url=slack_stub.base_url,
        account_names={"123456789012": "sandbox"},
    )
    return restart(settings=settings)


@pytest.fixture
def client(runtime):
    """chalice.test.Client on the app, with the deployed `runtime`."""
    from chalice.test import Client

    import app as chalice_app

    with Client(chalice_app.app) as test_client:
        yield test_client


@pytest.fixture
def approve_mode(runtime, tmp_path, restart):
    """The runtime (restarted) whose only playbook is APPROVE_PLAYBOOK (StopLogging, approve mode)."""
    from chalicelib.playbooks.catalog import Catalog

    (tmp_path / "trail-approve.yaml").write_text(APPROVE_PLAYBOOK)
    return restart(Catalog.load([tmp_path]))
