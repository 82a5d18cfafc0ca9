"""The catalog's index and the EventBridge rules generated from the playbooks.

Patterns are matched with moto's own EventBridge pattern matcher, against real records
wrapped in the envelope EventBridge uses.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from moto.events.models import EventPattern

from chalicelib.events.finding import GUARDDUTY, INSIGHTS, KINDS, SECURITY_HUB
from chalicelib.playbooks.catalog import PATTERN_SIZE_LIMIT, Catalog
from chalicelib.playbooks.playbook import Playbook
from tests.conftest import PLAYBOOKS, envelope, record, stratus_record

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog.load([PLAYBOOKS])


def _matches(pattern, event) -> bool:
    return EventPattern(json.dumps(pattern), pattern).matches_event(event)


def _matches_findings(pattern, event) -> bool:
    """EventBridge matches a pattern on a field of objects in an array when any of them has it
    (Security Hub documents rules on `detail.findings.ProductName` so); moto's matcher does not
    descend into arrays, so the one finding Security Hub sends is given to it as an object."""
    findings = event.get("detail", {}).get("findings")
    if isinstance(findings, list) and len(findings) == 1:
        event = {**event, "detail": {**event["detail"], "findings": findings[0]}}
    return _matches(pattern, event)


def _matching_rules(rules, event):
    return [rule.name for rule in rules if _matches_findings(rule.pattern, event)]


def test_index_selects_by_source_and_name(catalog):
    assert [p.id for p in catalog.candidates("cloudtrail.amazonaws.com", "StopLogging")] == ["cloudtrail-stop-logging"]
    assert [p.id for p in catalog.candidates("kms.amazonaws.com", "DisableKey")] == ["kms-key-disabled"]
    assert catalog.candidates("kms.amazonaws.com", "StopLogging") == ()
    assert catalog.candidates("cloudtrail.amazonaws.com", "DescribeTrails") == ()


def test_builtin_playbooks_fit_as_few_rules_as_the_size_limit_allows(catalog):
    rules = [rule for rule in catalog.eventbridge_rules() if "eventName" in json.dumps(rule.pattern)]
    # Two: the playbooks' event names no longer fit one pattern of 2,048 characters.
    assert [rule.name for rule in rules] == ["respond_to_cloudtrail", "respond_to_cloudtrail_2"]
    for rule in rules:
        assert rule.pattern["detail"]["errorCode"] == [{"exists": False}]
        assert rule.pattern["source"] == [{"prefix": "aws."}]
        assert rule.pattern["detail-type"] == ["AWS API Call via CloudTrail"]
        assert len(json.dumps(rule.pattern)) <= PATTERN_SIZE_LIMIT
    assert len(json.dumps(rules[0].pattern)) > PATTERN_SIZE_LIMIT - 400  # the first is full


def test_rule_matches_a_real_successful_stop_logging(catalog, datasets):
    event = envelope(stratus_record(datasets, "aws.defense-evasion.cloudtrail-stop", "StopLogging"))
    assert _matching_rules(catalog.eventbridge_rules(), event) == ["respond_to_cloudtrail"]


def test_rule_ignores_failed_calls_other_events_and_spoofed_sources(catalog, datasets):
    rules = catalog.eventbridge_rules()
    real = stratus_record(datasets, "aws.defense-evasion.cloudtrail-stop", "StopLogging")
    failed = envelope({**real, "errorCode": "AccessDenied"})
    other_name = envelope({**real, "eventName": "StartLogging"})
    cross = envelope({**real, "eventSource": "kms.amazonaws.com"}, source="aws.kms")  # kms has no StopLogging
    spoofed = envelope(real, source="custom.cloudtrail")
    wrong_type = {**envelope(real), "detail-type": "AWS Console Sign In via CloudTrail"}
    for event in (failed, other_name, cross, spoofed, wrong_type):
        assert _matching_rules(rules, event) == []


@pytest.mark.parametrize(
    "name,source,request_parameters",
    [
        ("DisableKey", "kms.amazonaws.com", {"keyId": "k"}),
        ("ScheduleKeyDeletion", "kms.amazonaws.com", {"keyId": "k", "pendingWindowInDays": 7}),
        ("PutBucketAcl", "s3.amazonaws.com", {"bucketName": "b", "x-amz-acl": ["public-read"]}),
    ],
)
def test_rule_matches_every_event_a_playbook_names(catalog, name, source, request_parameters):
    event = envelope(record(name, source, request_parameters))
    assert len(_matching_rules(catalog.eventbridge_rules(), event)) == 1


def test_every_event_a_playbook_names_is_delivered_by_exactly_one_rule(catalog):
    rules = catalog.eventbridge_rules()
    for source, name in sorted(catalog.answered()):
        if source in KINDS:
            event = _finding_envelope(source, name)
        else:
            event = envelope(record(name, source, {}), source="aws." + source.split(".")[0])
        assert len(_matching_rules(rules, event)) == 1, (source, name)


def _finding_envelope(kind: str, name: str) -> dict:
    """A finding of `kind` named `name`, in the real shapes of tests/data/findings."""
    folder = Path(__file__).parents[1] / "data" / "findings"
    if kind == GUARDDUTY:
        raw = json.loads(
            (folder / "guardduty/reconstructed-InstanceCredentialExfiltration.OutsideAWS.json").read_text()
        )
        raw["detail"]["type"] = name
        return raw
    if kind == SECURITY_HUB:
        raw = json.loads((folder / "securityhub/SecurityHubFindingsImported--asr-afsbp-ec2.7-failed.json").read_text())
        raw["detail"]["findings"][0]["ProductName"] = name
        return raw
    detail = json.loads((folder / "insights/InsightRecord--awsdocs-ApiCallRateInsight-start.json").read_text())
    detail["insightDetails"]["insightType"] = name
    return {"source": "aws.cloudtrail", "detail-type": "AWS Insight via CloudTrail", "detail": detail}


@pytest.mark.parametrize("kind", KINDS)
def test_a_finding_rule_matches_its_detector_s_findings_and_nothing_else(kind):
    playbook = _playbook(1, kind, ["ApiCallRateInsight" if kind == INSIGHTS else "Wanted"])
    [rule] = Catalog([playbook]).eventbridge_rules()
    wanted = _finding_envelope(kind, playbook.events[0])
    assert _matches_findings(rule.pattern, wanted)
    assert not _matches_findings(rule.pattern, _finding_envelope(kind, "Other"))
    forged = {**wanted, "source": "my.app"}  # only AWS can use an aws.* source
    assert not _matches_findings(rule.pattern, forged)
    if kind == INSIGHTS:  # the end of an unusual period is not answered
        ended = json.loads(json.dumps(wanted))
        ended["detail"]["insightDetails"]["state"] = "End"
        assert not _matches_findings(rule.pattern, ended)


def _playbook(number: int, source: str, names: list[str]) -> Playbook:
    return Playbook(
        id=f"generated-{number}",
        title="t",
        severity="low",
        description="",
        source=source,
        events=tuple(names),
        mode="notify",
        steps=(),
    )


def test_many_playbooks_are_split_into_rules_within_the_size_limit():
    sources = [f"service{n}.amazonaws.com" for n in range(12)]
    playbooks = [
        _playbook(n, sources[n % len(sources)], [f"PutSomethingRatherLongNumber{n}Variant{v}" for v in range(4)])
        for n in range(120)
    ]
    catalog = Catalog(playbooks)
    rules = catalog.eventbridge_rules()
    assert len(rules) > 1
    assert [rule.name for rule in rules[:3]] == [
        "respond_to_cloudtrail",
        "respond_to_cloudtrail_2",
        "respond_to_cloudtrail_3",
    ]
    assert all(len(json.dumps(rule.pattern)) <= PATTERN_SIZE_LIMIT for rule in rules)
    # Every event some playbook names is delivered by exactly one rule, and nothing else is.
    for playbook in playbooks:
        for name in playbook.events:
            event = envelope(record(name, playbook.source), source="aws." + playbook.source.split(".")[0])
            assert len(_matching_rules(rules, event)) == 1, (playbook.source, name)
    stray = envelope(record("PutSomethingRatherLongNumber0Variant0", sources[1]), source="aws.service1")
    assert _matching_rules(rules, stray) == []


def test_one_source_with_too_many_names_is_split_across_rules():
    names = [f"AVeryLongEventNameThatTakesSpace{n:04d}" for n in range(200)]
    rules = Catalog([_playbook(1, "bulk.amazonaws.com", names)]).eventbridge_rules()
    assert len(rules) > 1
    covered = [name for rule in rules for name in rule.pattern["detail"]["eventName"]]
    assert covered == names
