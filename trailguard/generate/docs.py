"""docs/playbooks.md, generated from what the code declares: the playbook schema, the
domain functions' docstrings, the actions' parameters, permissions and examples, the
built-in playbooks, and how they answer Stratus Red Team's AWS techniques.

`python -m trailguard docs` writes it; a test fails when the committed file is stale, so
the reference can never drift from the code it describes.
"""

from __future__ import annotations

import inspect
import json
import textwrap
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chalicelib.actions import Action, registered_actions
from chalicelib.actions.base import ANY_RESOURCE
from chalicelib.events.record import CloudTrailEvent, EventError
from chalicelib.playbooks.catalog import Catalog
from chalicelib.playbooks.expressions import DOCUMENTED_BY, DomainFunctions
from chalicelib.playbooks.playbook import Playbook
from chalicelib.playbooks.schema import SCHEMA
from chalicelib.respond.guards import OwnIdentities
from chalicelib.respond.responder import decide
from trailguard import PROJECT

DOCS_FILE = PROJECT / "docs" / "playbooks.md"


def default_datasets() -> Path:
    """The real CloudTrail records the repository carries (tests/data), or TRAILGUARD_DATASETS."""
    import os

    return Path(os.environ.get("TRAILGUARD_DATASETS", PROJECT / "tests" / "data"))


NOT_ANSWERED = {
    "aws.credential-access.ec2-get-password-data": (
        "Read-only call (GetPasswordData): nothing changed that could be put back. A detection tool should alert on it."
    ),
    "aws.credential-access.ec2-steal-instance-credentials": (
        "The credentials are used from outside AWS (GuardDuty's InstanceCredentialExfiltration finding). Its "
        "only write, ssm:SendCommand, is routine administration, and revoking the role's sessions would stop "
        "the workload."
    ),
    "aws.credential-access.secretsmanager-batch-retrieve-secrets": (
        "Read-only calls (BatchGetSecretValue): nothing changed that could be put back."
    ),
    "aws.credential-access.secretsmanager-retrieve-secrets": (
        "Read-only calls (GetSecretValue): nothing changed that could be put back."
    ),
    "aws.credential-access.ssm-retrieve-securestring-parameters": (
        "Read-only calls (GetParameters with decryption): nothing changed that could be put back."
    ),
    "aws.discovery.ec2-download-user-data": (
        "Read-only calls (DescribeInstanceAttribute): nothing changed that could be put back."
    ),
    "aws.execution.ec2-launch-unusual-instances": (
        "RunInstances is routine (and was refused in this detonation); an unusual instance type is a matter "
        "for detection and cost alerts, not for automatic undo."
    ),
    "aws.execution.ec2-user-data": (
        "ModifyInstanceAttribute records the new user data, not the old, so it cannot be put back; applying "
        "it needs the instance stopped and started. A notify playbook on it is easy to add."
    ),
    "aws.execution.ssm-send-command": ("Routine administration through SSM; what the command ran is not in the event."),
    "aws.execution.ssm-start-session": ("Routine administration through SSM; a session ends by itself."),
    "aws.impact.bedrock-invoke-model": (
        "Model access agreements are business decisions; InvokeModel itself is a data-plane call."
    ),
    "aws.lateral-movement.ec2-instance-connect": (
        "SendSSHPublicKey pushes a key valid for 60 seconds: over before anyone could act. Restrict it with IAM."
    ),
    "aws.persistence.lambda-layer-extension": (
        "UpdateFunctionConfiguration records the new layers only, and deployments change them all day: use "
        "Lambda code signing to refuse unsigned layers."
    ),
    "aws.persistence.lambda-overwrite-code": (
        "UpdateFunctionCode is every deployment, and the previous code is not in the event: use Lambda code signing."
    ),
    "aws.persistence.sts-federation-token": (
        "A federation token cannot be revoked by deleting anything; deny sts:GetFederationToken with an SCP."
    ),
}
"""Why no playbook answers these techniques: a test requires a reason for every technique
no playbook answers, and none for one that is answered."""


@dataclass(frozen=True)
class Coverage:
    technique: str
    calls: tuple[str, ...]
    answered: tuple[Playbook, ...]
    note: str


def stratus_coverage(catalog: Catalog, folder: Path) -> list[Coverage]:
    """For each technique's detonation log: its write calls and the playbooks that answer them."""
    rows = []
    for path in sorted(folder.glob("aws.*.json")):
        records = json.loads(path.read_text())
        writes = [r for r in records if isinstance(r, dict) and r.get("readOnly") is not True]
        calls = tuple(dict.fromkeys(f"{r.get('eventSource', '?').split('.')[0]}:{r.get('eventName')}" for r in writes))
        answered: dict[str, Playbook] = {}
        refused: dict[str, str] = {}
        for record in writes:
            try:
                event = CloudTrailEvent.from_record(record)
            except EventError:
                continue
            decision = decide(catalog, event, OwnIdentities())
            for plan in decision.plans:
                answered[plan.playbook.id] = plan.playbook
            for playbook, _ in decision.failures:
                answered[playbook.id] = playbook
            if decision.skip is not None and decision.skip.code == "failed-call":
                for playbook in catalog.candidates(event.source, event.name):
                    refused[playbook.id] = str(record.get("errorCode"))
        note = NOT_ANSWERED.get(path.stem, "")
        if not answered and refused:
            names = ", ".join(f"`{pid}`" for pid in sorted(refused))
            errors = ", ".join(sorted(set(refused.values())))
            note = f"The detonation's call was refused ({errors}); {names} answers it when it succeeds."
        rows.append(Coverage(path.stem, calls, tuple(answered[k] for k in sorted(answered)), note))
    return rows


def render(catalog: Catalog, coverage: list[Coverage]) -> str:
    parts = [
        HEADER,
        _keys(),
        LANGUAGE,
        _domain_functions(),
        _actions(),
        _playbooks(catalog),
        _coverage(coverage),
        FOOTER,
    ]
    return "\n".join(part.strip("\n") + "\n" for part in parts)


HEADER = """# Playbook reference

<!-- Generated by `python -m trailguard docs` from the code's own declarations: the
playbook schema, the domain functions' docstrings, the actions and the built-in playbooks.
Do not edit by hand: a test fails when this file is stale. -->

A playbook is a YAML file in `playbooks/`: which CloudTrail events it answers, and what it
does about them. Every file starts with `# yaml-language-server: $schema=./playbook.schema.json`,
so that editors complete and check its keys.

```yaml
# yaml-language-server: $schema=./playbook.schema.json
id: cloudtrail-stop-logging
title: CloudTrail logging stopped
severity: critical
description: A trail stopped recording API calls; attackers do this first.
when:
  source: cloudtrail.amazonaws.com
  events: [StopLogging]
  unless: "userIdentity.sessionContext.sessionIssuer.userName == 'break-glass'"
mode: auto
steps:
  - action: cloudtrail.start_logging
    with: {trail: requestParameters.name}
tests:
  - name: an IAM user stops a trail
    event: {...}
    expect: {mode: auto, steps: [cloudtrail.start_logging]}
```
"""


def _flatten(properties: dict[str, Any], prefix: str = "") -> Iterable[tuple[str, dict[str, Any]]]:
    for key, spec in properties.items():
        name = f"{prefix}{key}"
        if spec.get("type") == "object" and "properties" in spec:
            yield from _flatten(spec["properties"], f"{name}.")
        else:
            yield name, spec


def _keys() -> str:
    required = set(SCHEMA["required"]) | {f"when.{k}" for k in SCHEMA["properties"]["when"]["required"]}
    rows = "\n".join(
        f"| `{name}` | {'yes' if name in required else 'no'} | {spec.get('description', '')} |"
        for name, spec in _flatten(SCHEMA["properties"])
    )
    return f"""## Keys

| key | required | meaning |
|---|---|---|
{rows}

The trigger key is `when:`, not `on:`: YAML 1.1 loaders read `on` as `true`, and
trailguard refuses that key with a message saying so. A key written twice is refused
too (plain YAML silently keeps the last one). Every mistake is reported with its file,
line, key and what was expected, when the playbook is loaded (`python -m trailguard
validate`, and `chalice package`/`deploy`, which refuse to ship a bad playbook).
"""


LANGUAGE = """
## Modes

| mode | what happens |
|---|---|
| `auto` | snapshot the resource, apply the steps, record before/after (what undo needs), notify |
| `approve` | propose the plan and notify; a person approves or denies; unanswered, expires after `approval.timeout` |
| `notify` | record and notify; no steps |
| `dry-run` | record what the steps would do and notify that nothing was changed |

## Expressions

Every value taken from the event is a [JMESPath](https://jmespath.org/) expression over
the CloudTrail record (the `detail` of the EventBridge event), exactly as CloudTrail
documents its fields. A literal is quoted: `'text'`, or JSON in backticks: `` `7` ``,
`` `true` ``. Truth follows JMESPath: `false`, `null`, `''`, `[]` and `{}` are false.

Expressions are compiled when the playbook is loaded, and refused there when:

- the syntax is wrong (with the column);
- a function is unknown or given the wrong number of arguments;
- a top-level name is not a CloudTrail record field (`requestParamters.name` is refused
  with "did you mean 'requestParameters'?");
- the expression is the bare word `true`, `false` or `null`, which JMESPath reads as a
  field name (always null): write `` `true` ``;
- a `!` stands before a path: JMESPath reads `!a.b` as `(!a).b`, always null; write `!(a.b)`;
- `named_list()` names a list that does not exist, or is not given the name as a literal.

## Named lists: who "we" are

Whether a policy is restricted depends on who the organization is, and that is
configuration, not something each playbook copies: the stage's organization settings file
(`settings/STAGE.yaml`, `lists:`; see docs/operating.md) holds the lists.
`named_list('trusted_accounts')` is its `trusted_accounts` plus the account of the event
being judged; `named_list('trusted_organizations')`, `named_list('trusted_principals')`,
`named_list('break_glass_roles')` and `named_list('pipeline_roles')` are its lists of those
names (principals and roles as ARNs, what CloudTrail's `sessionIssuer.arn` holds, never
session names). A playbook passes them to `public_statements()` and `external_principals()` in its condition, and the
same lists to the step that fixes what the condition found, so that both judge alike:

```yaml
if: >-
  length(public_statements(requestParameters.bucketPolicy,
  named_list('trusted_accounts'), named_list('trusted_organizations'))) > `0`
steps:
  - action: s3.remove_public_policy_statements
    with:
      bucket: requestParameters.bucketName
      trusted_accounts: named_list('trusted_accounts')
      trusted_organizations: named_list('trusted_organizations')
```

A statement is restricted only when every way in is pinned to trusted values: an operator
that is true when its key is absent (`ForAllValues:`, `...IfExists`, negations) pins
nothing; another organization's or account's id pins nothing; a wildcard where the account
should be pins nothing; an IP range wider than /8 (IPv4) or /32 (IPv6) is public, as S3
Block Public Access judges. `replay` reads the lists from the same settings and takes
`--trusted-account` and `--trusted-organization`.

## Guards

Before any playbook, trailguard leaves alone: a call that failed (`errorCode`), a
read-only call, and a call made through one of its own roles as AWS identifies them: a
function role of the stage (the stage's own, named from its name, and the Lambda's execution role) only
in the central account, and the member role only in the account the call touched and only
for the calls trailguard recorded making (their request ids). A role named like one of
trailguard's in any other account is answered like anyone else. The same `eventID` never
opens two incidents for the same playbook.

## Tests inside a playbook

```yaml
tests:
  - name: a canned public-read ACL
    event: {...}                 # a record, an EventBridge event, or a file path (relative to the playbook)
    expect:                      # or: ignore
      mode: auto
      steps:
        - action: s3.remove_public_acl
          params: {bucket: example-bucket}   # only the keys given are compared
  - name: everyone in our organization is left alone
    named_lists: {trusted_organizations: [o-a1b2c3d4e5]}   # the lists as this test sees them
    event: {...}
    expect: ignore
```

`python -m trailguard test` runs every playbook's tests through the same decision path
the Lambda uses (guards, conditions, plan) and prints PASS/FAIL with the file and line. A
test's named lists are its own (`named_lists:`, empty when not given, the event's account
always trusted): settings play no part, so a test means the same on every machine.

## Writing a playbook

```
python -m trailguard new my-playbook --from event.json [--event-name NAME | --event-id ID]
python -m trailguard test --watch playbooks/my-playbook.yaml     # reruns on every save
python -m trailguard replay ~/cloudtrail-logs/ --playbook my-playbook   # what would it have done?
```

`new` starts from a real record (a CloudTrail record, an EventBridge event or a CloudTrail
log file): `when` answers exactly that call, `mode` is notify (it tells and changes
nothing), and two tests come from the record: the call, which it must answer, and the same
call failed, which it must ignore. The actions of the record's service are listed as
comments. Every playbook's first line names the JSON Schema, so editors with the YAML
language server complete and check its keys. `replay --playbook ID` over a month of logs
prints each match, then the count per playbook with a few examples.
"""


def _domain_functions() -> str:
    rows = []
    for name, function in DOCUMENTED_BY.items():
        arguments = ", ".join(list(inspect.signature(getattr(DomainFunctions, f"_func_{name}")).parameters)[1:])
        rows.append(f"| `{name}({arguments})` | {' '.join((inspect.getdoc(function) or '').split())} |")
    return (
        """## Domain functions

AWS writes the same thing in several shapes; these functions read them all, so that a
playbook never has to. They are available in every expression.

| function | returns |
|---|---|
"""
        + "\n".join(rows)
        + "\n\nExample: `` if: length(public_acl_grants(requestParameters)) > `0` ``.\n"
    )


def _description(action: type[Action]) -> tuple[str, str]:
    doc = inspect.getdoc(action) or ""
    text, _, example = doc.partition("Example:")
    return text.strip(), textwrap.dedent(example).strip()


def _actions() -> str:
    out = [
        """## Actions

Each action reads the state it may need to undo (snapshot), does nothing when the
resource is already safe (check), applies the change (running it again changes nothing),
then reads the resource back: the step fails unless it is safe now (read a few times
where AWS documents that reads may lag). It undoes the change only if the resource is
still exactly as trailguard left it; otherwise the undo is refused and says which fields
changed. The deploy policy is generated from the permissions listed here, each narrowed
to the resource type named beside it (the others cannot be narrowed).
"""
    ]
    for name in sorted(registered_actions()):
        action = registered_actions()[name]
        text, example = _description(action)
        out.append(f"### `{name}`\n\n{text}\n")
        if action.parameters:
            out.append("| parameter | type | | meaning |\n|---|---|---|---|")
            for parameter in action.parameters:
                need = "required" if parameter.required else f"default `{json.dumps(parameter.default)}`"
                if not parameter.required and parameter.default is None:
                    need = "optional"
                out.append(f"| `{parameter.name}` | {parameter.type} | {need} | {parameter.description} |")
            out.append("")
        permissions = (
            ", ".join(
                f"`{p}`" if kind is ANY_RESOURCE else f"`{p}` ({kind.name})" for p, kind in action.permissions.items()
            )
            or "none (calls no AWS service)"
        )
        passes = f" (`iam:PassRole` only to `{action.passes_role_to}`)" if action.passes_role_to else ""
        out.append(f"IAM permissions: {permissions}{passes}.\n\n```yaml\n{example}\n```\n")
    return "\n".join(out)


def _playbooks(catalog: Catalog) -> str:
    rows = []
    for playbook in sorted(catalog.playbooks, key=lambda p: p.id):
        actions = ", ".join(f"`{step.action.name}`" for step in playbook.steps) or "(tells only)"
        events = ", ".join(playbook.events)
        rows.append(
            f"| `{playbook.id}` | {playbook.title} | {playbook.severity} | {playbook.mode} | "
            f"{playbook.source.split('.')[0]}: {events} | {actions} |"
        )
    return (
        """## Built-in playbooks

| playbook | title | severity | mode | events | actions |
|---|---|---|---|---|---|
"""
        + "\n".join(rows)
        + """

Modes follow one rule: `auto` where the fix is safe and can be undone without breaking a
legitimate workload (turning logging, encryption keys and protections back on; closing
what was opened to everyone), `approve` where a fix could break one (a share with another
account, a trust policy, a key policy, an access key), `notify` where no fix is safe or
possible.
"""
    )


def _coverage(coverage: list[Coverage]) -> str:
    rows = []
    for row in coverage:
        answered = ", ".join(f"`{p.id}` ({p.mode})" for p in row.answered) or "—"
        calls = ", ".join(row.calls) or "(read-only calls only)"
        rows.append(f"| `{row.technique}` | {calls} | {answered} | {row.note} |")
    answered_count = sum(1 for row in coverage if row.answered)
    return (
        f"""## Stratus Red Team coverage

How the built-in playbooks answer each [Stratus Red Team](https://stratus-red-team.cloud/)
AWS technique, computed from its detonation log (`tests/data/stratus-detonation-logs/`)
by the same decision path the Lambda uses. {answered_count} of {len(coverage)} techniques
are answered.

| technique | write calls in the log | answered by | note |
|---|---|---|---|
"""
        + "\n".join(rows)
        + "\n"
    )


FOOTER = """
See `docs/incidents.md` for what happens after a playbook matches (incidents, approvals,
undo, the posture sweep) and `docs/replay.md` for running playbooks over old logs.
"""
