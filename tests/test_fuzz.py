"""Property-based tests (hypothesis) of everything that reads untrusted input: the event
model and its readers, the playbook loader, the rules' handler and the Slack endpoint.

The invariant everywhere: a clear error or a 4xx, never an unhandled exception or a 5xx,
and never an action taken on input that was refused. The number of cases per target is
`TRAILGUARD_FUZZ_EXAMPLES` (CI: the default below; `make fuzz` runs many more), and the
counts are printed at the end of the run.
"""

from __future__ import annotations

import copy
import gzip
import json
import urllib.parse
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.events.finding import Finding
from chalicelib.events.record import CloudTrailEvent, EventError
from chalicelib.events.synthetic import eventbridge_envelope
from chalicelib.playbooks.catalog import Catalog
from chalicelib.playbooks.loader import load_playbooks
from chalicelib.respond.guards import OwnIdentities
from tests.conftest import DATASETS, PLAYBOOKS, SIGNING_SECRET, count_fuzz_case, signed_click
from trailguard.eventfiles import read_event_file
from trailguard.replay import ReplayCounts, replay

pytestmark = pytest.mark.integration

FIXTURES = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large]
CATALOG = Catalog.load([PLAYBOOKS])


def _dataset_records(limit: int = 400) -> list[dict[str, Any]]:
    """Real records, from every dataset (a few per file), to mutate."""
    records: list[dict[str, Any]] = []
    for path in sorted(DATASETS.rglob("*.json*")):
        if path.name in ("labels.csv",) or len(records) >= limit:
            continue
        for item in list(read_event_file(path))[:8]:
            if isinstance(item, CloudTrailEvent):
                records.append(item.record)
    return records


RECORDS = _dataset_records()

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=30,
)
hostile_text = st.one_of(
    st.text(max_size=200),
    st.sampled_from(
        [
            "",
            " ",
            "null",
            "*",
            "[*]" * 300,
            "(" * 5000,
            "a." * 3000 + "b",
            "\x00",
            "😀" * 100,
            "<!channel>",
            "${jndi:ldap://x}",
            "'; DROP TABLE incidents; --",
        ]
    ),
    st.integers(min_value=1, max_value=200_000).map(lambda n: "x" * n),
)


@st.composite
def mutated_records(draw: st.DrawFn) -> dict[str, Any]:
    """A real record, changed the way broken producers and attackers change them."""
    record = copy.deepcopy(draw(st.sampled_from(RECORDS)))
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        key = draw(st.sampled_from(sorted(record) or ["eventName"]))
        how = draw(st.sampled_from(["drop", "json", "text", "deep", "huge-list", "nested"]))
        if how == "drop":
            record.pop(key, None)
        elif how == "json":
            record[key] = draw(json_values)
        elif how == "text":
            record[key] = draw(hostile_text)
        elif how == "deep":
            deep: Any = "end"
            for _ in range(draw(st.integers(min_value=50, max_value=900))):
                deep = [deep] if draw(st.booleans()) else {"k": deep}
            record[key] = deep
        elif how == "huge-list":
            record[key] = [draw(json_values)] * draw(st.integers(min_value=1000, max_value=20_000))
        elif isinstance(record.get(key), dict) and record[key]:
            inner = draw(st.sampled_from(sorted(record[key])))
            record[key][inner] = draw(json_values | hostile_text)
    return record


events = st.one_of(
    json_values,
    mutated_records(),
    mutated_records().map(lambda r: eventbridge_envelope(r, "id-1")),
    st.builds(
        lambda r, source, kind: {**eventbridge_envelope(r, "id-2"), "source": source, "detail-type": kind},
        mutated_records(),
        st.sampled_from(["aws.cloudtrail", "custom.app", "", None, 7]),
        st.sampled_from(["AWS API Call via CloudTrail", "Scheduled Event", "", None]),
    ),
)


@settings(suppress_health_check=FIXTURES)
@given(data=events)
def test_the_event_model_reads_anything_or_says_what_is_wrong(data):
    count_fuzz_case("event model")
    try:
        event = CloudTrailEvent.from_any(data)
    except EventError as error:
        assert str(error)
        return
    # everything the decision path reads from an accepted event works
    event.summary()
    assert isinstance(event.actor.label, str) and isinstance(event.name, str)
    lines = list(replay([event], CATALOG, OwnIdentities()))
    assert isinstance(lines[-1], ReplayCounts)


@settings(suppress_health_check=FIXTURES, max_examples=max(20, settings().max_examples // 10))
@given(
    name=st.sampled_from(sorted(p for p in DATASETS.rglob("*.json*") if p.suffix in (".json", ".gz"))),
    cut=st.floats(min_value=0, max_value=1),
    flip=st.integers(min_value=0, max_value=255),
)
def test_truncated_or_corrupt_files_are_read_up_to_the_damage(tmp_path_factory, name, cut, flip):
    count_fuzz_case("event files")
    data = name.read_bytes()
    if name.suffix == ".json":
        data = gzip.compress(data) if flip % 2 else data
    damaged = bytearray(data[: int(len(data) * cut)])
    if damaged and flip > 200:
        damaged[len(damaged) // 2] ^= flip
    target = tmp_path_factory.mktemp("damaged") / (name.stem + (".json.gz" if damaged[:2] == b"\x1f\x8b" else ".json"))
    target.write_bytes(bytes(damaged))
    for item in read_event_file(target):
        assert item is None or isinstance(item, (CloudTrailEvent, Finding, EventError))


playbook_values = st.one_of(json_values, hostile_text)


@st.composite
def playbook_documents(draw: st.DrawFn) -> str:
    """A playbook's YAML, each key either sensible or hostile, or not YAML at all."""
    if draw(st.integers(min_value=0, max_value=9)) == 0:
        return draw(st.text(max_size=400))
    document: dict[str, Any] = {
        "id": draw(st.sampled_from(["fuzzed", "Fuzzed!", ""]) | playbook_values),
        "title": draw(st.just("t") | playbook_values),
        "severity": draw(st.sampled_from(["high", "urgent"]) | playbook_values),
        "when": draw(
            st.fixed_dictionaries(
                {
                    "source": st.sampled_from(["cloudtrail.amazonaws.com", "s3"]) | playbook_values,
                    "events": st.lists(st.sampled_from(["StopLogging", "PutBucketAcl"]) | playbook_values, max_size=3)
                    | playbook_values,
                },
                optional={"if": hostile_text | playbook_values, "unless": hostile_text},
            )
        ),
        "mode": draw(st.sampled_from(["auto", "approve", "notify", "dry-run", "yolo"]) | playbook_values),
        "steps": draw(
            st.lists(
                st.fixed_dictionaries(
                    {
                        "action": st.sampled_from(["cloudtrail.start_logging", "s3.remove_public_acl", "iam.*"])
                        | playbook_values
                    },
                    optional={
                        "with": st.dictionaries(
                            st.sampled_from(["trail", "bucket", "x"]), hostile_text | playbook_values, max_size=3
                        )
                    },
                ),
                max_size=3,
            )
            | playbook_values
        ),
    }
    for key in draw(st.lists(st.sampled_from(sorted(document)), max_size=3)):
        document.pop(key, None)
    if draw(st.booleans()):
        document[draw(st.text(max_size=10))] = draw(playbook_values)
    return yaml.safe_dump(document, allow_unicode=True)


@settings(suppress_health_check=FIXTURES)
@given(text=playbook_documents())
def test_the_playbook_loader_refuses_anything_wrong_with_where_and_why(tmp_path_factory, text):
    count_fuzz_case("playbook loader")
    path = tmp_path_factory.mktemp("playbooks") / "fuzzed.yaml"
    path.write_text(text)
    playbooks, errors = load_playbooks([path])
    if errors:
        assert not playbooks
        assert all(str(path) in str(error) for error in errors)
        return
    # a playbook the loader takes must also be safe to run on any record
    (playbook,) = playbooks
    for record in RECORDS[:20]:
        list(replay([CloudTrailEvent.from_record(record)], Catalog([playbook]), OwnIdentities()))


@settings(suppress_health_check=FIXTURES)
@given(event=events)
def test_the_rules_handler_answers_anything_and_acts_only_on_what_it_accepts(runtime, calls, event):
    count_fuzz_case("rules handler")
    before = len(calls.calls)
    result = runtime.event_handler.handle(event)
    assert result["status"] in ("rejected", "handled", "skipped")
    if result["status"] == "rejected":
        assert result["reason"] and _acted(calls, before) == []


@pytest.fixture
def runtime(runtime, calls, restart):
    """The deployed runtime whose every AWS call is recorded."""
    from tests.conftest import recording_clients

    return restart(clients=recording_clients(calls, member_role=runtime.settings.member_role))


READS = ("Get", "Describe", "List", "Query", "Scan", "BatchGet")


def _acted(calls: Any, before: int) -> list[str]:
    """The AWS calls since `before` that change something (reads, such as the first
    GetCallerIdentity of a new container, are not actions)."""
    return [name for name in calls.calls[before:] if not name.startswith(READS)]


def _form(payload: Any) -> str:
    return urllib.parse.urlencode({"payload": payload if isinstance(payload, str) else json.dumps(payload)})


slack_bodies = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=300),
    json_values.map(_form),
    st.builds(
        lambda actions, user, kind: _form({"type": kind, "user": user, "actions": actions}),
        st.lists(
            st.fixed_dictionaries(
                {
                    "action_id": st.sampled_from(["trailguard:approve", "trailguard:undo", "other"]) | hostile_text,
                    "value": hostile_text | json_values,
                }
            ),
            max_size=3,
        )
        | json_values,
        st.fixed_dictionaries({"id": st.sampled_from(["U0APPROVER", "U0STRANGER"]) | hostile_text}) | json_values,
        st.sampled_from(["block_actions", "view_submission"]) | hostile_text,
    ),
)
slack_headers = st.fixed_dictionaries(
    {},
    optional={
        "X-Slack-Signature": st.sampled_from(["v0=" + "0" * 64, "v1=abc", ""]) | hostile_text,
        "X-Slack-Request-Timestamp": st.sampled_from(["0", "-1", "99999999999999999999", "", "now"])
        | st.integers().map(str)
        | hostile_text,
        "Content-Type": st.just("application/x-www-form-urlencoded"),
    },
)


@settings(suppress_health_check=FIXTURES)
@given(body=slack_bodies, headers=slack_headers)
def test_the_slack_endpoint_refuses_unsigned_input_with_401_or_400(runtime, calls, body, headers):
    count_fuzz_case("slack endpoint (unsigned)")
    before = len(calls.calls)
    answer = runtime.slack_endpoint.answer(body, headers)
    assert answer.status in (400, 401)
    assert _acted(calls, before) == []


@settings(suppress_health_check=FIXTURES)
@given(body=slack_bodies)
def test_the_slack_endpoint_answers_any_signed_payload_without_acting(runtime, calls, body):
    """Signed with the real secret (the worst case: Slack itself, or a stolen secret):
    whatever the payload holds, the answer is 200 or 400 and no incident is touched."""
    count_fuzz_case("slack endpoint (signed)")
    from slack_sdk.signature import SignatureVerifier

    _, headers = signed_click("approve", "inc-0")
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    headers["X-Slack-Signature"] = (
        SignatureVerifier(SIGNING_SECRET).generate_signature(timestamp=headers["X-Slack-Request-Timestamp"], body=text)
        or ""
    )
    before = len(calls.calls)
    answer = runtime.slack_endpoint.answer(text, headers)
    assert answer.status in (200, 400), answer
    assert _acted(calls, before) == []


def test_fuzz_targets_ran(request):
    """Fails if a target above silently ran no case (a strategy that cannot draw)."""
    from tests.conftest import FUZZ_CASES

    ran = {name for name, count in FUZZ_CASES.items() if count}
    selected = {item.name for item in request.session.items if item.module is request.module}
    if len(selected) < 7:
        pytest.skip("only part of this file was selected")
    assert {
        "event model",
        "event files",
        "playbook loader",
        "rules handler",
        "slack endpoint (unsigned)",
        "slack endpoint (signed)",
    } <= ran, FUZZ_CASES
