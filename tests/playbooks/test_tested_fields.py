"""The catalog's index of tested fields: among the playbooks of one call, those whose `if`
has a conjunct `path == 'text'` the record does not meet are rejected without evaluating
their condition, with the same decision as evaluating it (playbooks at volume)."""

from __future__ import annotations

import pickle
import textwrap

import pytest

from chalicelib.events import event as event_model
from chalicelib.events.record import CloudTrailEvent
from chalicelib.playbooks.catalog import Catalog, _Sieve
from chalicelib.playbooks.expressions import Expression
from chalicelib.respond.guards import OwnIdentities
from chalicelib.respond.responder import decide
from chalicelib.settings import Settings
from tests.conftest import ACCOUNT, PLAYBOOKS, record
from trailguard.playbook_tests import as_json

pytestmark = pytest.mark.unit

OWN = OwnIdentities.of(Settings(), ACCOUNT)


def _playbook(number: int, condition: str | None) -> str:
    when = f'\n  if: "{condition}"' if condition else ""
    return (
        textwrap.dedent(f"""\
        id: p{number}
        title: P{number}
        severity: low
        when:
          source: cloudtrail.amazonaws.com
          events: [StopLogging]""")
        + when
        + "\nmode: notify\n"
    )


@pytest.fixture
def catalog(tmp_path):
    conditions = [
        "userIdentity.type == 'Root' && requestParameters.name != 'x'",
        "userIdentity.type == 'IAMUser'",
        "'IAMUser' == userIdentity.type && awsRegion == 'eu-west-1'",
        None,
        "requestParameters.name != 'x'",
    ]
    for number, condition in enumerate(conditions):
        (tmp_path / f"p{number}.yaml").write_text(_playbook(number, condition))
    return Catalog.load([tmp_path])


def _without_index(catalog: Catalog) -> Catalog:
    """The same playbooks, every condition evaluated (sieves that test no field)."""
    plain = Catalog(catalog.playbooks)
    for call, candidates in plain._index.items():
        sieve = plain._sieves[call] = _Sieve(candidates)
        sieve.tests = ()
    return plain


def _summary(decision):
    return [plan.playbook.id for plan in decision.plans], [(p.id, why) for p, why in decision.rejections]


def test_a_record_that_fails_the_tested_field_rejects_without_evaluating(catalog, monkeypatch):
    event = CloudTrailEvent.from_record(record("StopLogging", "cloudtrail.amazonaws.com", {"name": "main"}))
    root_only = catalog.get("p0")
    assert [p for p, _ in catalog.sift(event.source, event.name, event.record).rejected] == [root_only]
    original = Expression.search

    def watched(self, data, lists=None, **kwargs):
        assert self is not root_only.condition, "the ruled-out condition was evaluated"
        return original(self, data) if lists is None else original(self, data, lists)

    monkeypatch.setattr(Expression, "search", watched)
    indexed = decide(catalog, event, OWN)
    monkeypatch.setattr(Expression, "search", original)
    assert _summary(indexed) == _summary(decide(_without_index(catalog), event, OWN))
    assert _summary(indexed)[0] == ["p1", "p3", "p4"]


def test_every_bundled_playbooks_tests_decide_alike_with_and_without_the_index():
    import yaml

    catalog = Catalog.load([PLAYBOOKS])
    plain = _without_index(catalog)
    events = []
    for path in sorted(PLAYBOOKS.glob("*.yaml")):
        for test in yaml.safe_load(path.read_text()).get("tests", []):
            if isinstance(test.get("event"), dict):
                events.append(test["event"])
    assert len(events) > 100
    for raw in events:
        event = event_model.from_any(as_json(raw))  # API calls and findings alike, as the playbook tests read them
        assert _summary(decide(catalog, event, OWN)) == _summary(decide(plain, event, OWN))


def test_a_pickled_catalog_rules_out_its_own_playbooks_not_the_ids_of_the_one_it_was_pickled_from(catalog):
    """A catalog sent to a replay's worker must sift with its own playbooks there (with the
    parent's, a decision would name playbooks that are not in the worker's catalog)."""
    event = CloudTrailEvent.from_record(record("StopLogging", "cloudtrail.amazonaws.com", {"name": "main"}))
    copy = pickle.loads(pickle.dumps(catalog))
    [(ruled_out, _)] = copy.sift(event.source, event.name, event.record).rejected
    assert ruled_out is copy.get("p0") and ruled_out is not catalog.get("p0")
    assert _summary(decide(copy, event, OWN)) == _summary(decide(catalog, event, OWN))


def test_rejections_keep_the_candidates_order_when_ruled_out_and_evaluated_ones_interleave(catalog):
    """p0 passes the index (Root) and is rejected by evaluating it, p1 and p2 are ruled out
    (not IAMUser), p4 is evaluated and rejected: a person reading "left alone" reads them in
    the order of the playbooks, as without the index."""
    raw = record("StopLogging", "cloudtrail.amazonaws.com", {"name": "x"}, awsRegion="eu-west-1")
    raw["userIdentity"] = {**raw["userIdentity"], "type": "Root"}
    event = CloudTrailEvent.from_record(raw)
    decision = decide(catalog, event, OWN)
    assert [p.id for p, _ in decision.rejections] == ["p0", "p1", "p2", "p4"]
    assert _summary(decision) == _summary(decide(_without_index(catalog), event, OWN))


def test_a_sieve_remembers_one_split_per_combination_of_tested_texts_not_per_value(catalog):
    """Values no playbook tests for (bucket names, principal ids) all rule out the same
    playbooks: remembered once, so a year of records does not grow the catalog."""
    for number in range(500):
        raw = record("StopLogging", "cloudtrail.amazonaws.com", {"name": "main"})
        raw["userIdentity"] = {**raw["userIdentity"], "type": f"Unknown{number}"}
        event = CloudTrailEvent.from_record(raw)
        assert [p.id for p, _ in catalog.sift(event.source, event.name, event.record).rejected] == ["p0", "p1", "p2"]
    assert len(catalog._sieves[("cloudtrail.amazonaws.com", "StopLogging")].seen) == 1
