"""`new PLAYBOOK_ID --from EVENT_FILE`: a playbook skeleton written from a real CloudTrail record.

The skeleton is a valid playbook whose `when` answers exactly the record's call, in
notify mode (it tells and changes nothing until its author chooses steps), with two tests
taken from the record: the call itself, which it must answer, and the same call failed,
which it must ignore. The actions of the record's service are listed as comments, so the
next step is in the file.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Iterable
from pathlib import Path

import yaml

from chalicelib.actions.base import registered_actions
from chalicelib.events.record import CloudTrailEvent, EventError
from chalicelib.settings import PROJECT_PLAYBOOKS
from trailguard.eventfiles import read_event_file

PLAYBOOK_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")


class AuthoringError(ValueError):
    """Why no skeleton can be written (the file, the record or the id)."""


def pick_record(path: Path, event_name: str | None = None, event_id: str | None = None) -> CloudTrailEvent:
    """The record to start from: the one named, else the file's first successful write call."""
    events: list[CloudTrailEvent] = []
    for item in read_event_file(path):
        if isinstance(item, EventError):
            raise AuthoringError(str(item))
        if isinstance(item, CloudTrailEvent):  # `new` starts from API calls only
            events.append(item)
    if not events:
        raise AuthoringError(f"{path}: no CloudTrail record in it")
    chosen = [
        e
        for e in events
        if (event_id is None or e.event_id == event_id) and (event_name is None or e.name == event_name)
    ]
    if not chosen:
        names = ", ".join(sorted({e.name for e in events}))
        wanted = f"event id {event_id}" if event_id else f"an event named {event_name}"
        raise AuthoringError(f"{path}: no record with {wanted} (it has: {names})")
    succeeded = [e for e in chosen if not e.record.get("errorCode") and e.record.get("readOnly") is not True]
    if not succeeded:
        why = sorted(
            {
                f"{e.name} ({'errorCode ' + str(e.record['errorCode']) if e.record.get('errorCode') else 'read-only'})"
                for e in chosen
            }
        )
        raise AuthoringError(
            f"{path}: no successful write call to start from: {', '.join(why)}. trailguard never "
            "answers a failed or read-only call; pick another record with --event-name or --event-id"
        )
    return succeeded[0]


def skeleton(playbook_id: str, event: CloudTrailEvent, origin: str, schema_reference: str) -> str:
    """The playbook's text; `schema_reference` is the schema's path relative to the playbook."""
    if not PLAYBOOK_ID.fullmatch(playbook_id):
        raise AuthoringError(
            f"playbook id {playbook_id!r}: expected lower-case letters, digits and dashes "
            "(2 to 63, starting with a letter or digit)"
        )
    record = json.loads(json.dumps(event.record))  # plain data, no shared objects (no YAML anchors)
    service = event.source.split(".")[0]
    failed = {
        **record,
        "eventID": str(uuid.uuid4()),
        "errorCode": "AccessDenied",
        "errorMessage": f"User is not authorized to perform: {service}:{event.name}",
        "responseElements": None,
    }
    failed = json.loads(json.dumps(failed))
    document = {
        "id": playbook_id,
        "title": f"{service}:{event.name} called",
        "severity": "medium",
        "description": "TODO",
        "when": {"source": event.source, "events": [event.name]},
        "mode": "notify",
        "tests": [
            {
                "name": f"{event.name} by {event.actor.label} (from {origin})",
                "event": record,
                "expect": {"mode": "notify", "steps": []},
            },
            {"name": f"the same {event.name} failing is ignored", "event": failed, "expect": "ignore"},
        ],
    }
    text = yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=100)
    head, _, tests = text.partition("tests:\n")
    head = head.replace(
        "description: TODO\n",
        "description: >\n  TODO: what this call means, why it matters, and what trailguard does about it.\n",
    )
    head = head.replace(f"  events:\n  - {event.name}\n", f"  events: [{event.name}]\n")
    hint = (
        "  # if: \"requestParameters.someField == 'value'\"   "
        "# narrow it: JMESPath over the record (docs/playbooks.md)\n"
    )
    head = head.replace(
        "mode: notify\n",
        "mode: notify   # tells Slack and changes nothing; auto or approve once it has steps\n" + _steps_hint(service),
    )
    head = head.replace(f"  events: [{event.name}]\n", f"  events: [{event.name}]\n{hint}", 1)
    return (
        f"# yaml-language-server: $schema={schema_reference}\n"
        f"# Written by `python -m trailguard new` from {origin}, event {event.event_id}.\n"
        f"{head}tests:\n{tests}"
    )


def _steps_hint(service: str) -> str:
    actions = sorted((name, action) for name, action in registered_actions().items() if action.service == service)
    if not actions:
        return (
            f"# No built-in action acts on {service} yet: notify is what trailguard can do\n"
            "# (docs/playbooks.md lists the actions; chalicelib/actions/ shows how to add one).\n"
        )
    lines = ["# Actions for this service (docs/playbooks.md says what each does):", "# steps:"]
    for name, action in actions:
        params = ", ".join(f"{p.name}: ..." for p in action.parameters if p.required)
        lines.append(f"#   - action: {name}" + (f"\n#     with: {{{params}}}" if params else ""))
    return "\n".join(lines) + "\n"


def schema_reference(target: Path, playbooks: Path = PROJECT_PLAYBOOKS) -> str:
    """Relative within the project (it moves with the clone), absolute from outside it."""
    schema = playbooks / "playbook.schema.json"
    folder = target.resolve().parent
    if not folder.is_relative_to(playbooks.parent):
        return str(schema)
    relative = os.path.relpath(schema, folder)
    return relative if relative.startswith(".") else f"./{relative}"


def write_skeleton(
    playbook_id: str,
    source: Path,
    out_dir: Path,
    *,
    event_name: str | None = None,
    event_id: str | None = None,
    force: bool = False,
) -> tuple[Path, CloudTrailEvent]:
    target = out_dir / f"{playbook_id}.yaml"
    if target.exists() and not force:
        raise AuthoringError(f"{target} exists; choose another id, or --force to replace it")
    event = pick_record(source, event_name, event_id)
    target.write_text(skeleton(playbook_id, event, source.name, schema_reference(target)))
    return target, event


def watched_files(paths: Iterable[Path]) -> dict[Path, float]:
    """Every playbook file under `paths`, with its modification time (for `test --watch`)."""
    found: dict[Path, float] = {}
    for path in paths:
        files = sorted(path.rglob("*.y*ml")) if path.is_dir() else [path]
        for file in files:
            try:
                found[file] = file.stat().st_mtime
            except OSError:
                continue
    return found
