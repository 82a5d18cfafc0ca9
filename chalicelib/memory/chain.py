"""The audit chain as trailguard remembers it: which buckets, keys, log groups and roles the
trails it saw depend on.

"Is this bucket a trail's bucket?" is state, not event content: DeleteBucketPolicy names a
bucket and nothing else. Each time a trail's configuration is remembered (`memory.trails`:
after its calls, and by every sweep in every account), its links are added to one document,
`audit-chain`, each with the trails that use it. The playbooks read them as named lists
(`trail_buckets`, `trail_keys`, `trail_log_groups`, `trail_roles`, see `named_lists`),
merged with what the stage's settings file names (`with_remembered_links`), through the
domain function `trail_link(@)`; the actions read which trails use a link, to write
CloudTrail's documented statements narrowed to them.

A link is only ever added (a trail moved to another bucket by an attacker must not make the
old one unguarded, and memory keeps each trail's configuration from before an unjudged
change): a bucket a trail used once stays guarded; a link given up on purpose is taken out
of the `audit-chain` document by hand (docs/audit-chain.md).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from chalicelib.named_lists import AUDIT_CHAIN, TRAIL_BUCKETS, TRAIL_KEYS, TRAIL_LOG_GROUPS, TRAIL_ROLES, NamedLists

KEY = "audit-chain"
"""Where the links are remembered (one document: an organization has tens of trails, not thousands)."""

_FIELDS = {
    "S3BucketName": TRAIL_BUCKETS,
    "KmsKeyId": TRAIL_KEYS,
    "CloudWatchLogsLogGroupArn": TRAIL_LOG_GROUPS,
    "CloudWatchLogsRoleArn": TRAIL_ROLES,
}

CACHE_SECONDS = 60.0
"""How long one container reuses the links it read (a trail another container remembered
meanwhile is guarded at most this much later; one this container remembers, at once)."""
_written = [0]
"""How many times this process added links: a container's own additions are read at once."""


def links_of(config: Mapping[str, Any]) -> dict[str, str]:
    """A trail configuration's links (list name -> value), as the named lists hold them: a log
    group's ARN without CloudTrail's `:*` suffix."""
    links: dict[str, str] = {}
    for field, name in _FIELDS.items():
        value = config.get(field)
        if isinstance(value, str) and value:
            links[name] = value.removesuffix(":*")
    return links


def note(memory: Any, trail_arn: str, config: Mapping[str, Any]) -> None:
    """Add a trail's links to the remembered chain (written only when something is new)."""
    links = links_of(config)
    if not links:
        return

    added = [False]

    def change(stored: dict[str, Any] | None) -> dict[str, Any] | None:
        document = {name: dict(values) for name, values in (stored or {}).items() if name in AUDIT_CHAIN}
        new = False
        for name, value in links.items():
            trails = document.setdefault(name, {}).setdefault(value, [])
            if trail_arn not in trails:
                trails.append(trail_arn)
                new = True
        added[0] = added[0] or new
        return document if new else None

    memory.amend(KEY, change)
    if added[0]:
        _written[0] += 1


def _links(stored: Mapping[str, Any] | None) -> dict[str, dict[str, list[str]]]:
    return {name: dict(values) for name, values in (stored or {}).items() if name in AUDIT_CHAIN}


def recalled(memory: Any) -> dict[str, dict[str, list[str]]]:
    """The remembered links: list name -> value -> the trails (ARNs) that use it."""
    if memory is None:
        return {}
    return _links(memory.recall(KEY))


def trails_using(memory: Any, name: str, value: str) -> list[str]:
    """The trails (ARNs) trailguard saw using `value` as their link `name` (`trail_buckets`...)."""
    return list(recalled(memory).get(name, {}).get(value, []))


class _RememberedLists(Mapping[str, tuple[str, ...]]):
    """The settings file's lists, with the remembered links added to the audit chain's, read
    when a playbook first needs them and reused for `CACHE_SECONDS`."""

    def __init__(self, given: Mapping[str, tuple[str, ...]], read: Callable[[], Mapping[str, Iterable[str]]]) -> None:
        self._given = given
        self._read = read
        self._merged: dict[str, tuple[str, ...]] | None = None
        self._read_at = 0.0
        self._seen_writes = -1
        self._lock = threading.Lock()

    def _values(self) -> dict[str, tuple[str, ...]]:
        with self._lock:
            stale = time.monotonic() - self._read_at > CACHE_SECONDS or self._seen_writes != _written[0]
            if self._merged is None or stale:
                self._seen_writes = _written[0]
                merged = dict(self._given)
                try:
                    remembered = self._read()
                except Exception:  # unreadable memory: the settings file's lists still hold
                    remembered = {}
                for name, values in remembered.items():
                    merged[name] = tuple(dict.fromkeys([*merged.get(name, ()), *values]))
                self._merged, self._read_at = merged, time.monotonic()
            return self._merged

    def __getitem__(self, name: str) -> tuple[str, ...]:
        if name not in AUDIT_CHAIN:
            return self._given[name]
        return self._values().get(name, ())

    def __iter__(self) -> Iterator[str]:
        return iter({*self._given, *AUDIT_CHAIN})

    def __len__(self) -> int:
        return len({*self._given, *AUDIT_CHAIN})

    def get(self, name: str, default: Any = None) -> Any:
        try:
            return self[name]
        except KeyError:
            return default


def with_remembered_links(lists: NamedLists, memory: Any) -> NamedLists:
    """`lists` (the settings file's), whose audit-chain lists also hold what trailguard
    remembers; memory is read only when a playbook asks (`trail_link`)."""
    return NamedLists(_RememberedLists(lists.values, lambda: {n: list(v) for n, v in recalled(memory).items()}))
