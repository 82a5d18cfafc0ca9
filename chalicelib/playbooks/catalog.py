"""All loaded playbooks, indexed by (eventSource, eventName), and the EventBridge rules they need.

The index makes the cost of an event independent of the number of playbooks: an event
no playbook names costs one dictionary lookup. The rules are generated from the same
playbooks, so EventBridge delivers exactly the successful calls some playbook answers.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from chalicelib.events.finding import EVENTBRIDGE_SOURCES, INSIGHTS, KIND_DETAIL_TYPES, KINDS, SECURITY_HUB
from chalicelib.events.record import CLOUDTRAIL_DETAIL_TYPE
from chalicelib.playbooks.loader import PlaybookError, load_playbooks
from chalicelib.playbooks.playbook import Playbook
from chalicelib.settings import ConfigurationError

# EventBridge's default limit on the size of a rule's event pattern, in characters.
PATTERN_SIZE_LIMIT = 2048
RULE_NAME = "respond_to_cloudtrail"


class CatalogError(ConfigurationError):
    """The playbooks cannot be loaded; every mistake found is listed, one per line."""

    def __init__(self, errors: Sequence[PlaybookError]) -> None:
        self.errors = list(errors)
        count = len(self.errors)
        lines = "\n".join(f"  {error}" for error in self.errors)
        super().__init__(f"{count} mistake{'s' if count != 1 else ''} in the playbooks:\n{lines}")


@dataclass(frozen=True)
class EventRule:
    """One EventBridge rule: its Chalice function name and its event pattern."""

    name: str
    pattern: dict[str, Any]


class Catalog:
    def __init__(
        self, playbooks: Iterable[Playbook], *, overrides: Mapping[str, tuple[str, str]] | None = None
    ) -> None:
        """`overrides`: the shipped playbooks an organization's replaced, by id: (the shipped
        one's location, the organization's)."""
        self.playbooks = tuple(playbooks)
        self.overrides = dict(overrides or {})
        index: dict[tuple[str, str], list[Playbook]] = defaultdict(list)
        for playbook in self.playbooks:
            for name in playbook.events:
                index[(playbook.source, name)].append(playbook)
        self._index = {key: tuple(value) for key, value in index.items()}
        self._sieves: dict[tuple[str, str], _Sieve] = {}  # a call's, built when a record of it first comes

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled as its playbooks, its indexes built again where it is unpickled (a replay's
        worker processes get the parent's catalog this way): smaller than the indexes, and the
        sieves' memory of records seen starts empty."""
        return (_rebuilt, (self.playbooks, self.overrides))

    @classmethod
    def load(cls, paths: Iterable[str | os.PathLike[str]], with_tests: bool = True) -> Catalog:
        """The playbooks under `paths`; CatalogError if any of them has a mistake."""
        playbooks, errors = load_playbooks(paths, with_tests)
        if errors:
            raise CatalogError(errors)
        return cls(playbooks)

    def candidates(self, source: str, name: str) -> tuple[Playbook, ...]:
        """The playbooks that name this event; their `if`/`unless` are not evaluated yet."""
        return self._index.get((source, name), ())

    def sift(self, source: str, name: str, record: Mapping[str, Any]) -> Sifted:
        """The candidates split into those whose `if` cannot hold for `record` (a conjunct
        `path == 'text'` it does not meet, read from an index of the tested fields: one lookup
        per field instead of one condition per playbook) and the rest, still to evaluate.
        Exact: a false conjunct makes the whole `if` false, and jmespath never evaluates what
        follows it."""
        sieve = self._sieves.get((source, name))
        if sieve is None:
            candidates = self._index.get((source, name))
            if candidates is None:
                return NOTHING_TO_SIFT
            sieve = self._sieves[(source, name)] = _Sieve(candidates)
        return sieve.sift(record)

    def answered(self) -> frozenset[tuple[str, str]]:
        """Every (eventSource, eventName) some playbook names."""
        return frozenset(self._index)

    def get(self, playbook_id: str) -> Playbook | None:
        return next((p for p in self.playbooks if p.id == playbook_id), None)

    def event_names(self, also: Mapping[str, Iterable[str]] | None = None) -> dict[str, list[str]]:
        """Every (source -> sorted event names) some playbook answers, plus `also`."""
        names: dict[str, set[str]] = defaultdict(set)
        for source, name in self._index:
            names[source].add(name)
        for source, extra in (also or {}).items():
            names[source].update(extra)
        return {source: sorted(names[source]) for source in sorted(names)}

    def eventbridge_rules(
        self, also: Mapping[str, Iterable[str]] | None = None, size_limit: int = PATTERN_SIZE_LIMIT
    ) -> list[EventRule]:
        """As few rules as fit EventBridge's pattern size limit, each matching exactly the
        successful calls of the sources and names it lists (no cross product of the two).
        `also` adds events trailguard watches without a playbook (trail configuration)."""
        groups: list[list[tuple[str, list[str]]]] = [[]]
        wanted = self.event_names(also)
        for source, names in wanted.items():
            if source in KINDS:
                continue
            for chunk in _chunks(source, names, size_limit):
                if groups[-1] and _size(_pattern([*groups[-1], chunk])) > size_limit:
                    groups.append([])
                groups[-1].append(chunk)
        patterns = [_pattern(group) for group in groups if group]
        for kind in KINDS:  # a detector's findings: a rule of their own (another detail-type)
            for _, names in _chunks(kind, wanted.get(kind, []), size_limit, finding_pattern):
                patterns.append(finding_pattern([(kind, names)]))
        return [
            EventRule(RULE_NAME if number == 1 else f"{RULE_NAME}_{number}", pattern)
            for number, pattern in enumerate(patterns, 1)
        ]


def finding_pattern(selection: Sequence[tuple[str, list[str]]]) -> dict[str, Any]:
    """The pattern of one detector's findings that playbooks name (one kind per pattern):
    GuardDuty by finding type, Security Hub by product name, Insights by insight type, and
    only the start of an unusual period (its end is not answered)."""
    [(kind, names)] = selection
    detail: dict[str, Any]
    if kind == SECURITY_HUB:
        detail = {"findings": {"ProductName": list(names)}}
    elif kind == INSIGHTS:
        detail = {"insightDetails": {"insightType": list(names), "state": ["Start"]}}
    else:
        detail = {"type": list(names)}
    source = EVENTBRIDGE_SOURCES.get(kind)
    return {
        "source": [source] if source else [{"prefix": "aws."}],
        "detail-type": [KIND_DETAIL_TYPES[kind]],
        "detail": detail,
    }


def _pattern(selection: Sequence[tuple[str, list[str]]]) -> dict[str, Any]:
    detail: dict[str, Any] = {}
    if len(selection) == 1:
        source, names = selection[0]
        detail = {"eventSource": [source], "eventName": list(names)}
    else:
        detail = {"$or": [{"eventSource": [source], "eventName": list(names)} for source, names in selection]}
    detail["errorCode"] = [{"exists": False}]
    return {
        "source": [{"prefix": "aws."}],
        "detail-type": [CLOUDTRAIL_DETAIL_TYPE],
        "detail": detail,
    }


def _size(pattern: dict[str, Any]) -> int:
    # Measured as Chalice sends it (json.dumps with its default separators).
    return len(json.dumps(pattern))


def _chunks(
    source: str,
    names: list[str],
    size_limit: int,
    pattern: Callable[[Sequence[tuple[str, list[str]]]], dict[str, Any]] | None = None,
) -> Iterable[tuple[str, list[str]]]:
    """Split one source's names so that each part fits in a pattern of its own."""
    pattern = pattern or _pattern
    chunk: list[str] = []
    for name in names:
        if chunk and _size(pattern([(source, [*chunk, name])])) > size_limit:
            yield source, chunk
            chunk = []
        chunk.append(name)
    if chunk:
        yield source, chunk


def _rebuilt(playbooks: tuple[Playbook, ...], overrides: Mapping[str, tuple[str, str]]) -> Catalog:
    return Catalog(playbooks, overrides=overrides)


@dataclass(frozen=True)
class Sifted:
    """One call's candidates for one record: those left to evaluate, and those its tested
    fields already rule out with their rejection (`if: <condition>`)."""

    remaining: tuple[Playbook, ...]
    rejected: tuple[tuple[Playbook, str], ...] = ()
    order: Mapping[int, int] | None = None
    """The candidates' positions by `id()`, to put every rejection back in candidate order."""

    def rejections(self, evaluated: Sequence[tuple[Playbook, str]]) -> tuple[tuple[Playbook, str], ...]:
        """Those ruled out and those `evaluated` rejected, in the order of the candidates."""
        if not evaluated:
            return self.rejected
        if not self.rejected or self.order is None:
            return tuple(evaluated)
        order = self.order
        return tuple(sorted((*self.rejected, *evaluated), key=lambda rejection: order[id(rejection[0])]))


NOTHING_TO_SIFT = Sifted(())
"""A call no playbook names."""

SIEVE_MEMORY = 1024
"""How many combinations of tested values a sieve remembers the split of (then it starts
again): at most about 2 KB each with a hundred playbooks on the call."""


class _Sieve:
    """The playbooks of one call, and among them those whose `if` has a conjunct
    `path == 'text'`, by path and text. A record's split depends only on which of the texts
    its tested fields hold (any other value rules out every playbook testing that field), so
    the split is computed once per combination and remembered: a record of a common call
    then costs a lookup per tested field, whatever the number of playbooks."""

    def __init__(self, playbooks: Sequence[Playbook]) -> None:
        self.playbooks = tuple(playbooks)
        grouped: dict[tuple[str, ...], dict[str, set[int]]] = defaultdict(dict)
        for position, playbook in enumerate(self.playbooks):
            test = _field_test(playbook.condition.tree) if playbook.condition is not None else None
            if test is not None:
                path, text = test
                grouped[path].setdefault(text, set()).add(position)
        self.tests = tuple(
            (path, {text: frozenset(positions) for text, positions in texts.items()}) for path, texts in grouped.items()
        )
        self.order = {id(playbook): position for position, playbook in enumerate(self.playbooks)}
        self.rejection = tuple((p, f"if: {p.condition.text if p.condition else ''}") for p in self.playbooks)
        self.whole = Sifted(self.playbooks)
        self.seen: dict[tuple[str | None, ...], Sifted] = {}

    def sift(self, record: Mapping[str, Any]) -> Sifted:
        if not self.tests:
            return self.whole
        values: list[str | None] = []
        for path, texts in self.tests:
            value: Any = record
            for field in path:
                value = value.get(field) if isinstance(value, dict) else None
            values.append(value if isinstance(value, str) and value in texts else None)
        key = tuple(values)
        sifted = self.seen.get(key)
        if sifted is None:
            if len(self.seen) >= SIEVE_MEMORY:
                self.seen.clear()
            sifted = self.seen[key] = self._split(key)
        return sifted

    def _split(self, values: tuple[str | None, ...]) -> Sifted:
        out: set[int] = set()
        for (_, texts), value in zip(self.tests, values, strict=True):
            for text, positions in texts.items():
                if text != value:
                    out |= positions
        remaining = tuple(p for position, p in enumerate(self.playbooks) if position not in out)
        rejected = tuple(self.rejection[position] for position in sorted(out))
        return Sifted(remaining, rejected, self.order)


def _field_test(tree: Mapping[str, Any]) -> tuple[tuple[str, ...], str] | None:
    """The first conjunct of an `if` of the shape `path == 'text'` (a path of plain fields
    compared with a string literal), as (the path's fields, the text)."""
    if tree["type"] == "and_expression":
        return _field_test(tree["children"][0]) or _field_test(tree["children"][1])
    if tree["type"] != "comparator" or tree["value"] != "eq":
        return None
    for path_side, literal_side in (tree["children"], tree["children"][::-1]):
        path = _fields(path_side)
        if path is not None and literal_side["type"] == "literal" and isinstance(literal_side["value"], str):
            return path, literal_side["value"]
    return None


def _fields(node: Mapping[str, Any]) -> tuple[str, ...] | None:
    if node["type"] == "field":
        return (node["value"],)
    if node["type"] == "subexpression":
        parts = [_fields(child) for child in node["children"]]
        if all(part is not None for part in parts):
            return tuple(field for part in parts if part is not None for field in part)
    return None
