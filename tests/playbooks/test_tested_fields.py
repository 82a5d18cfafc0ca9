"""The catalog's index of tested fields: among the playbooks of one call, those whose `if`
has a conjunct `path == 'text'` the record does not meet are rejected without evaluating
their condition, with the same decision as evaluating it (playbooks at volume)."""

from __future__ import annotations

import pickle
import textwrap

import pytest

from chalicelib.events import event as event_model
from chalicelib.events.record import CloudTrailEvent
from chalicelib.playbooks.catalog import Catalog
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
    plain = Catalog(catalog.playbooks)
    plain._tested = {}
    return plain


def _summary(decision):
    return [plan.playbook.id for plan in decision.plans], [(p.id, why) for p, why in decision.rejections]


def test_a_record_that_fails_the_tested_field_rejects_without_evaluating(catalog, monkeypatch):
    event = CloudTrailEvent.from_record(record("StopLogging", "cloudtrail.amazonaws.com", {"name": "main"}))
    root_only = catalog.get("p0")
    assert catalog.ruled_out(event.source, event.name, event.record) == {id(root_only)}
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
    """The index holds `id()`s: a catalog sent to a replay's worker must index its own
    playbooks there (with the parent's ids it ruled out nothing, or by chance a wrong one)."""
    copy = pickle.loads(pickle.dumps(catalog))
    event = CloudTrailEvent.from_record(record("StopLogging", "cloudtrail.amazonaws.com", {"name": "main"}))
    assert copy.ruled_out(event.source, event.name, event.record) == {id(copy.get("p0"))}
    assert _summary(decide(copy, event, OWN)) == _summary(decide(catalog, event, OWN))
