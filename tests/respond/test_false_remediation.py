"""What trailguard leaves alone: legitimate changes platform teams make every day must never be
remediated automatically.

Each case is a CloudTrail record of such a change (tests/data/false-remediation: reconstructions
that name what they are based on; the real ones come from the other datasets), the
organization's named lists it is judged with, and, where the decision rests on the resource,
the resource as AWS holds it when the call arrives (in moto: a website bucket, a function URL,
a trail trailguard remembered). Every case goes through the Lambda's own decision path with
real actions (the responder, its look at the resource, the incidents), and:

- no incident is remediated, or even running, on its own;
- the decision is the one the case expects: ignored, told (notify), or proposed (approve).

docs/playbooks.md ("What trailguard leaves alone") lists the same cases.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import yaml

from chalicelib.actions.binding import ActionBinder
from chalicelib.events.record import CloudTrailEvent
from chalicelib.incidents.lifecycle import Incidents
from chalicelib.incidents.model import State
from chalicelib.incidents.store import MemoryStore
from chalicelib.memory import trails
from chalicelib.named_lists import NamedLists
from chalicelib.playbooks.catalog import Catalog
from chalicelib.respond.guards import OwnIdentities
from chalicelib.respond.responder import Responder
from tests.conftest import DATASETS, PLAYBOOKS, member_session, python_function, remembering
from trailguard.eventfiles import read_events

pytestmark = pytest.mark.integration

CATALOG = Catalog.load([PLAYBOOKS], with_tests=False)
OURS = "111122223333"
LISTS = NamedLists.of(
    {"trusted_accounts": [OURS, "444455556666", "777788889999"], "trusted_organizations": ["o-a1b2c3d4e5"]}
)
"""The organization the cases are judged in: three accounts, one AWS Organization."""

Setup = Callable[[Any], None]
"""Makes the resource as it is when the call arrives: given `aws(service, account, region)`
(a client in that account and region) and trailguard's memory."""


@dataclass(frozen=True)
class Case:
    """One legitimate change, as tests/data/false-remediation/cases.yaml gives it."""

    id: str
    change: str
    by: str
    """Who makes such a change: the console, Terraform, CloudFormation, an AWS service..."""
    expected: str
    """ignore, notify or approve: never auto."""
    why: str
    record: str
    """A file under tests/data; `file#eventID` picks one record of a file of many, `file#N`
    the Nth of Panther's fixtures."""
    kind: str
    based_on: str


CASES = [Case(**entry) for entry in yaml.safe_load((DATASETS / "false-remediation" / "cases.yaml").read_text())]


# -- the resources some decisions rest on ----------------------------------------------------


class Aws:
    """Clients in any account (moto keeps accounts apart by credentials), and memory."""

    def __init__(self, memory: Any) -> None:
        self.memory = memory

    def __call__(self, service: str, account: str = OURS, region: str = "eu-west-1") -> Any:
        return member_session(account).client(service, region_name=region)

    def client(self, service: str, account: str | None, region: str) -> Any:
        """The ClientProvider the actions are bound with: the event's account and region."""
        return self(service, account or OURS, region)


def _trail(account: str, name: str, bucket: str, before: dict[str, Any], change: dict[str, Any]) -> Setup:
    """A trail trailguard remembered with `before`, then changed by the call (`change`)."""

    def setup(aws: Aws) -> None:
        aws("s3", account).create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        cloudtrail = aws("cloudtrail", account)
        cloudtrail.create_trail(Name=name, S3BucketName=bucket, **before)
        cloudtrail.start_logging(Name=name)
        trails.remember(aws.memory, cloudtrail, name, account, "eu-west-1")
        cloudtrail.update_trail(Name=name, **change)

    return setup


BEFORE = {"IsMultiRegionTrail": True, "IncludeGlobalServiceEvents": True}
CONSOLE_BUCKET = "aws-cloudtrail-logs-111122223333-3f9c1a2b"
KEY = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
LOG_GROUP = "arn:aws:logs:eu-west-1:111122223333:log-group:aws-cloudtrail-logs-111122223333-1b2c:*"
LOG_ROLE = "arn:aws:iam::111122223333:role/service-role/CloudTrailRoleForCloudWatchLogs_management-events"


def _website(*objects: str) -> Setup:
    """The S3 user guide's static website: bucket www.example.com with a website configuration."""

    def setup(aws: Aws) -> None:
        s3 = aws("s3")
        s3.create_bucket(Bucket="www.example.com", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        s3.put_bucket_website(
            Bucket="www.example.com", WebsiteConfiguration={"IndexDocument": {"Suffix": "index.html"}}
        )
        for key in objects:
            s3.put_object(Bucket="www.example.com", Key=key, Body=b"<html>hello</html>")

    return setup


def _function_url(name: str) -> Setup:
    """A function with a URL of auth type NONE (a webhook receiver)."""

    def setup(aws: Aws) -> None:
        lam = aws("lambda")
        python_function(aws("iam"), lam, name, f"{name}-role")
        lam.create_function_url_config(FunctionName=name, AuthType="NONE")

    return setup


# -- the resource each decision rests on, where one does -------------------------------------

SETUPS: dict[str, Setup] = {
    "fr01": _trail(OURS, "management-events", CONSOLE_BUCKET, BEFORE, {"EnableLogFileValidation": True}),
    "fr02": _trail(
        OURS,
        "management-events",
        CONSOLE_BUCKET,
        BEFORE,
        {"CloudWatchLogsLogGroupArn": LOG_GROUP, "CloudWatchLogsRoleArn": LOG_ROLE},
    ),
    "fr03": _trail(OURS, "management-events", CONSOLE_BUCKET, BEFORE, {"KmsKeyId": KEY}),
    "fr04": _trail(
        OURS,
        "management-events",
        CONSOLE_BUCKET,
        {**BEFORE, "EnableLogFileValidation": True},
        {"SnsTopicName": "cloudtrail-delivery"},
    ),
    "fr05": _trail(
        "777788889999",
        "aws-controltower-BaselineCloudTrail",
        "aws-controltower-logs-444455556666-eu-west-1",
        {**BEFORE, "EnableLogFileValidation": True, "S3KeyPrefix": "o-a1b2c3d4e5"},
        {"EnableLogFileValidation": True},
    ),
    "fr25": _website(),
    "fr26": _website(),
    "fr27": _website(),
    "fr28": _website("index.html"),
    "fr29": _website(),
    "fr36": _function_url("github-webhook"),
    "fr37": _function_url("github-webhook"),
}
"""The trails trailguard remembered before a console or Terraform edit, the websites, the
function URL: where the decision is made on the resource, the resource as it is."""


def _event(case: Case) -> CloudTrailEvent:
    """The case's record, from the dataset that holds it."""
    if case.record:
        path, _, pick = case.record.partition("#")
    else:
        path, pick = f"false-remediation/{next((DATASETS / 'false-remediation').glob(f'{case.id}-*.json')).name}", ""
    if path == "panther-fixtures":  # many records share eventIDs there: by position
        return CloudTrailEvent.from_record(
            json.loads((DATASETS / path / "records.json").read_text())["Records"][int(pick)]
        )
    events = [item for item in read_events([DATASETS / path]) if isinstance(item, CloudTrailEvent)]
    return next(event for event in events if event.event_id == pick) if pick else events[0]


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_a_legitimate_change_is_never_remediated_on_its_own(case, aws):
    memory = remembering()
    clients = Aws(memory)
    if case.id in SETUPS:
        SETUPS[case.id](clients)
    store = MemoryStore()
    incidents = Incidents(store, ActionBinder(clients, memory), memory=memory)
    responder = Responder(CATALOG, own=OwnIdentities(), incidents=incidents, lists=LISTS)

    decision, outcomes = responder.respond(_event(case))

    assert decision.skip is None, f"{case.id}: skipped ({decision.skip}), never judged"
    states = {outcome.playbook.id: outcome.incident.state for outcome in outcomes}
    automatic = [outcome.playbook.id for outcome in outcomes if outcome.incident.mode == "auto"]
    assert automatic == [], f"{case.id} was remediated on its own (or tried to be) by {automatic}: {states}"
    decided = {State.NOTIFIED: "notify", State.PROPOSED: "approve"}
    assert sorted({decided.get(state, state.value) for state in states.values()}) == (
        [] if case.expected == "ignore" else [case.expected]
    ), f"{case.id}: {states} ({[o.incident.history[0].detail for o in outcomes]})"


def test_the_suite_holds_the_cases_of_every_kind_of_caller():
    assert len(CASES) >= 40 and len({case.id for case in CASES}) == len(CASES)
    assert {case.by for case in CASES} >= {
        "console",
        "Terraform",
        "CloudFormation",
        "Control Tower",
        "AWS Backup",
        "IAM Identity Center",
    }
    assert all(case.expected in ("ignore", "notify", "approve") for case in CASES)


def test_the_websites_and_the_function_url_are_what_turns_auto_into_a_proposal(aws):
    """Without the website or the URL, the same calls are remediated: the resource decides."""
    memory = remembering()
    clients = Aws(memory)
    incidents = Incidents(MemoryStore(), ActionBinder(clients, memory), memory=memory)
    responder = Responder(CATALOG, own=OwnIdentities(), incidents=incidents, lists=LISTS)
    clients("s3").create_bucket(Bucket="www.example.com", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    _, [outcome] = responder.respond(_event(next(case for case in CASES if case.id == "fr25")))
    assert (outcome.incident.mode, outcome.incident.state) == ("auto", State.REMEDIATED)
