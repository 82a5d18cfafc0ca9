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
from chalicelib.events.synthetic import api_call_record
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
        "Answered by containment, not repair: the stolen credentials used from outside AWS raise GuardDuty's "
        "InstanceCredentialExfiltration finding, and `guardduty-instance-credentials-exfiltration` proposes "
        "revoking the role's sessions (approve). Its only write call, ssm:SendCommand, is routine administration."
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
        "Lambda code signing to refuse unsigned layers. If the layer then talks to a command-and-control, "
        "mining or drop-point address, GuardDuty's Lambda Protection finding makes `guardduty-lambda-compromised` "
        "propose containing the function (approve)."
    ),
    "aws.persistence.lambda-overwrite-code": (
        "UpdateFunctionCode is every deployment, and the previous code is not in the event: use Lambda code "
        "signing. If the new code then talks to a command-and-control, mining or drop-point address, GuardDuty's "
        "Lambda Protection finding makes `guardduty-lambda-compromised` propose containing the function (approve)."
    ),
}
"""Why no playbook answers these techniques: a test requires a reason for every technique
no playbook answers, and none for one that is answered."""


STRATUS_VERSION = "7c9a7a5"
"""The Stratus Red Team commit whose AWS techniques the table lists (its docs/attack-techniques)."""


@dataclass(frozen=True)
class WithoutLog:
    """A current Stratus technique that publishes no detonation log: its write calls as its
    documentation names them, the record it is decided on, and why, where nothing answers it."""

    calls: tuple[str, ...]
    record: str | dict[str, Any] | None
    """`folder#eventID` of a real detonation in the datasets, or a record of its call written
    from the technique's documentation; None when it writes nothing trailguard could answer."""
    note: str = ""


_STRATUS_USER = {
    "type": "IAMUser",
    "principalId": "AIDAEXAMPLESTRATUS01",
    "arn": "arn:aws:iam::123456789012:user/stratus",
    "accountId": "123456789012",
    "userName": "stratus",
}

WITHOUT_LOG: dict[str, WithoutLog] = {
    "aws.defense-evasion.cloudtrail-lifecycle-rule": WithoutLog(
        ("s3:PutBucketLifecycle",),
        "invictus-aws-2023#7823c70d-f7f9-4a04-b4c0-baa8fbe09ea3",
        "Decided on the invictus dataset's record of this detonation (a one-day expiration on the trail's bucket).",
    ),
    "aws.discovery.ec2-enumerate-from-instance": WithoutLog(
        ("ssm:SendCommand",),
        None,
        "Read-only discovery from an instance, started by routine SSM administration: nothing changed that could "
        "be put back. GuardDuty's instance-credential findings are the signal; trailguard keeps GuardDuty on.",
    ),
    "aws.discovery.ses-enumerate": WithoutLog(
        (),
        None,
        "Read-only calls (GetAccountSendingEnabled, GetSendQuota, ListIdentities): nothing changed that could be "
        "put back.",
    ),
    "aws.execution.sagemaker-update-lifecycle-config": WithoutLog(
        (
            "sagemaker:StopNotebookInstance",
            "sagemaker:CreateNotebookInstanceLifecycleConfig",
            "sagemaker:UpdateNotebookInstance",
            "sagemaker:StartNotebookInstance",
        ),
        api_call_record(
            "UpdateNotebookInstance",
            "sagemaker.amazonaws.com",
            {"notebookInstanceName": "stratus-red-team-notebook", "lifecycleConfigName": "stratus-red-team-lifecycle"},
            identity=_STRATUS_USER,
            region="us-east-1",
            event_time="2024-08-01T12:00:00Z",
        ),
        "Decided on UpdateNotebookInstance as the technique's documentation describes it (a lifecycle "
        "configuration attached to the stopped notebook).",
    ),
    "aws.exfiltration.s3-backdoor-bucket-policy": WithoutLog(
        ("s3:PutBucketPolicy",),
        "invictus-aws-2023#d58cf935-0194-41d0-baa0-9efc030ce2e6",
        "Decided on the invictus dataset's record of this detonation (the bucket policy grants account "
        "193672423079's root).",
    ),
    "aws.impact.ec2-deregister-ami": WithoutLog(
        ("ec2:DeregisterImage",),
        None,
        "Cannot be undone (registering the snapshot again makes another AMI) and is every Terraform clean-up: "
        "protect AMIs with EC2's deregistration protection and Recycle Bin retention rules.",
    ),
    "aws.impact.s3-ransomware-batch-deletion": WithoutLog(
        ("s3:DeleteObjects", "s3:PutObject"),
        None,
        "S3 data events, and the versions are gone: nothing to put back. What prevents it is versioning with "
        "Object Lock or a backup copy; `s3-bucket-versioning-suspended` tells when versioning is suspended first."
        " GuardDuty's S3 Protection findings (`Impact:S3/AnomalousBehavior.Delete`, `.Write`) make "
        "`guardduty-s3-anomalous-access` propose denying the principal on the bucket (approve): its next "
        "writes and deletions there are refused; what was done is not undone.",
    ),
    "aws.impact.s3-ransomware-client-side-encryption": WithoutLog(
        ("s3:GetObject", "s3:PutObject"),
        None,
        "An overwrite looks like any write (S3 data events); versioning keeps the old versions, and "
        "`s3-bucket-versioning-suspended` tells when it is suspended first."
        " GuardDuty's S3 Protection findings (`Impact:S3/AnomalousBehavior.Delete`, `.Write`) make "
        "`guardduty-s3-anomalous-access` propose denying the principal on the bucket (approve): its next "
        "writes and deletions there are refused; what was done is not undone.",
    ),
    "aws.impact.s3-ransomware-individual-deletion": WithoutLog(
        ("s3:DeleteObject", "s3:PutObject"),
        None,
        "As the batch deletion: S3 data events whose versions are gone; `s3-bucket-versioning-suspended` tells "
        "when versioning is suspended first."
        " GuardDuty's S3 Protection findings (`Impact:S3/AnomalousBehavior.Delete`, `.Write`) make "
        "`guardduty-s3-anomalous-access` propose denying the principal on the bucket (approve): its next "
        "writes and deletions there are refused; what was done is not undone.",
    ),
}
"""The current Stratus techniques without a detonation log (docs/attack-techniques at
`STRATUS_VERSION`, beside the 35 logs in tests/data)."""


@dataclass(frozen=True)
class Coverage:
    technique: str
    calls: tuple[str, ...]
    answered: tuple[Playbook, ...]
    note: str
    log: bool = True
    """Whether Stratus publishes a detonation log of it (the table says so)."""


def _answers(catalog: Catalog, records: list[Any]) -> tuple[dict[str, Playbook], dict[str, str]]:
    """The playbooks that answer these records, and those whose call was refused (with its errorCode)."""
    answered: dict[str, Playbook] = {}
    refused: dict[str, str] = {}
    for record in records:
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
    return answered, refused


def _dataset_record(datasets: Path, reference: str) -> dict[str, Any]:
    folder, _, event_id = reference.partition("#")
    for path in sorted((datasets / folder).rglob("*.json")):
        if event_id in path.read_text():
            found = next(r for r in json.loads(path.read_text())["Records"] if r.get("eventID") == event_id)
            return dict(found)
    raise LookupError(f"no record {event_id} under {datasets / folder}")


def stratus_coverage(catalog: Catalog, folder: Path) -> list[Coverage]:
    """For each current Stratus technique: its write calls and the playbooks that answer
    them, decided on its detonation log (`folder`), or, for the techniques without one
    (`WITHOUT_LOG`), on a real record of the detonation in the datasets beside `folder`, or
    on its call as the technique documents it."""
    rows = []
    for path in sorted(folder.glob("aws.*.json")):
        records = json.loads(path.read_text())
        writes = [r for r in records if isinstance(r, dict) and r.get("readOnly") is not True]
        calls = tuple(dict.fromkeys(f"{r.get('eventSource', '?').split('.')[0]}:{r.get('eventName')}" for r in writes))
        answered, refused = _answers(catalog, writes)
        note = NOT_ANSWERED.get(path.stem, "")
        if not answered and refused:
            names = ", ".join(f"`{pid}`" for pid in sorted(refused))
            errors = ", ".join(sorted(set(refused.values())))
            note = f"The detonation's call was refused ({errors}); {names} answers it when it succeeds."
        rows.append(Coverage(path.stem, calls, tuple(answered[k] for k in sorted(answered)), note))
    for technique, without in WITHOUT_LOG.items():
        record = without.record
        if isinstance(record, str):
            record = _dataset_record(folder.parent, record)
        answered, _ = _answers(catalog, [record] if record is not None else [])
        rows.append(
            Coverage(technique, without.calls, tuple(answered[k] for k in sorted(answered)), without.note, log=False)
        )
    return sorted(rows, key=lambda row: row.technique)


def leaves_alone(datasets: Path) -> list[dict[str, Any]]:
    """The false-remediation suite's cases (tests/data/false-remediation/cases.yaml)."""
    import yaml

    cases: list[dict[str, Any]] = yaml.safe_load((datasets / "false-remediation" / "cases.yaml").read_text())
    return cases


def render(catalog: Catalog, coverage: list[Coverage], cases: list[dict[str, Any]]) -> str:
    parts = [
        HEADER,
        _keys(),
        LANGUAGE,
        _domain_functions(),
        _actions(),
        _playbooks(catalog),
        _leaves_alone(cases),
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

### Checking the caller, then the resource, before acting

A playbook's `mode` is the most it does; two things can lower it for one call, never raise it.

- **Who made the call, as AWS asserts it** (`instead:`): the first entry whose `if` holds gives
  its mode (`approve` or `notify`, below the playbook's), and its `because` is told with the
  incident. For a caller AWS names (`userIdentity.invokedBy`, the session issuer's role ARN),
  never for a name the caller picks (a session name, a user agent):

  ```yaml
  mode: auto
  instead:
    - mode: approve
      if: userIdentity.invokedBy == 'cloudformation.amazonaws.com'
      because: a stack deleted a trail it manages; re-created outside the stack it would fight the stack
  ```

- **The resource, read when the call is judged** (the actions decide, each says what it reads):
  before an automatic step runs, its action is asked what the fix could break on the resource
  as AWS shows it now (`workload`: a bucket's website configuration, the websites of an
  account whose Block Public Access is put back, a function's public URL); when there is
  something, the incident is opened as a proposal, saying why, and a person's approval carries
  it out. Before a proposal is made, an action that compares the resource with what was
  remembered, or asks whether it is one the playbook guards (`cloudtrail.restore_trail_settings`,
  `s3.remove_log_expiration`), may find it safe: then no proposal is made (a console edit that
  re-sends a trail's settings, or adds protection, took nothing away). A resource that cannot
  be read is never taken for safe.

`replay` and the playbooks' inline tests read no resource: they show the mode the event alone
decides.

## Findings: GuardDuty, Security Hub, CloudTrail Insights

A playbook answers a detector's verdict as it answers an API call, through the same guards,
scope, ceilings, incidents and Slack messages. `when.source` names the detector and
`when.events` what it reports; expressions run over the finding as the detector writes it
(checked, when the playbook is loaded, against that detector's documented fields):

| `when.source` | EventBridge event | `when.events` lists | expressions run over |
|---|---|---|---|
{FINDING_ROWS}

Each detector's findings get an EventBridge rule of their own, generated like the API calls'.
AWS documents the Insights event's detail-type but not its envelope's source: its rule asks
for any `aws.` source (only AWS can use one) and only the start of an unusual period.

What the decision path reads of a finding: its id (the finding's own, kept by GuardDuty and
Security Hub across updates: one incident per finding), the account it names (a delegated
administrator's bus receives its members' findings: trailguard acts where the finding is),
its time, and the principal it is about. A guard leaves alone a sample finding
(`CreateSampleFindings`), an archived, resolved or suppressed one, a finding imported into
Security Hub by the account itself (its own `default` product: anyone allowed
`BatchImportFindings` could write it), the end of an insight, and a finding about
trailguard's own role. The domain functions for the fields people match on
(`finding_role`, `finding_user`, `finding_principal`, `finding_access_key`, `finding_instance`,
`finding_severity`, `insight_principal`) read GuardDuty's and ASFF's shapes alike; see
"Domain functions".

An insight's incident is also attached to the open incidents of the principal behind it (the
same user, or the same role whatever the session): their history, and their message's thread,
say that CloudTrail Insights saw an unusual rate of calls by that principal, naming the
insight's incident.

## Two responses: repair now, contain on approval

`steps:` repair the resource; `contain:` contains who did it, in the same incident:

```yaml
mode: auto
steps:                         # run at once (or on approval, in mode approve)
  - action: cloudtrail.start_logging
    with: {trail: requestParameters.name}
contain:                       # proposed beside the repair; runs only when a person approves
  - action: iam.revoke_role_sessions
    with: {role: actor_role(userIdentity), since: eventTime}
    unless: "contains(named_list('pipeline_roles'), userIdentity.sessionContext.sessionIssuer.arn || '')"
  - action: iam.quarantine_user
    with: {user: actor_user(userIdentity)}
```

- A `contain:` step whose principal is null for the event is left out: the group above
  offers a role's sessions for a role's call and the user for a user's. Its `unless:` leaves
  it out too (a pipeline's role).
- An `instead:` entry that lowers the mode (the call may be meant) proposes no containment.
- The incident is remediated once its steps are done; its message shows the repair and the
  containment under their own titles, with **Approve containment** and **Deny containment**
  beside Undo. Approved, the `contain:` steps run (snapshot, check, apply, read back, like
  any step); **Release** then undoes them alone, and Undo undoes everything.
- A playbook with only `contain:` steps (a finding: nothing to repair) is a proposal to
  contain, in mode `approve`: its Approve approves the containment. When the finding names
  no principal its steps can act on, people are told (mode notify).
- A containment nobody answers expires, like a proposal, after the playbook's
  `approval.timeout` (default 24 h) counted from when the repair was done: the posture sweep
  moves it to *expired*, the thread says so and its buttons go (Undo and Acknowledge stay);
  a late Approve or Deny containment is answered that the proposal expired, and nothing runs.
  The repair stands.

GuardDuty's attack sequences (`AttackSequence:...`) name their principal in the documented
finding field (`resource.accessKeyDetails`) only sometimes; the sequence's own actors
(`service.detection.sequence.actors[].user`: name, type, uid, credentialUid, per GuardDuty's
API reference) are documented as fields but not as values (which types occur, whether a
role's session is named by its role), and no real or sample finding carrying them was found:
trailguard does not contain a principal read from them, it tells people.

Containment refuses, saying why, principals AWS does not let it act on or that must not be
touched: service-linked roles, IAM Identity Center permission-set roles (`AWSReservedSSO_*`),
trailguard's own roles, and the organization's break-glass roles (`lists.break_glass_roles`).

Containment on one resource adds a statement trailguard owns to the resource's policy
instead of touching the principal: `s3.deny_principal` and `kms.deny_principal` deny the
principal (`actor_arn(userIdentity)` for a call, `finding_principal(@)` for a finding) every
action on the bucket or key, by `aws:PrincipalArn` (a role session is denied as its role,
with the role's path read from IAM). They refuse the same principals, and also the root
user, federated users and services, a statement that would not fit the policy (20 KB for a
bucket, 32 KB for a key), an AWS managed key, and a principal the key policy names as the
key's administrator (it could be locked out; PutKeyPolicy keeps KMS's lockout safety check
on). Release takes out exactly that statement, whatever else changed in the policy since,
and refuses if the statement itself was changed. `lambda.contain_function` closes what lets
anyone call a function (a function URL of auth type NONE, public permission statements);
it does not stop the function.

### What containment does to a running workload

| action | what stops | what keeps working | undo |
|---|---|---|---|
{CONTAINMENT_ROWS}

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

## Reviewing a change: what would it do?

A playbook change is reviewed like code, and its effect on real logs is part of the
review. `replay --compare` runs the same events through the playbooks of the working tree
and through those of a git ref (or another folder), and prints only what differs: events
newly matched, no longer matched, or answered with other steps or another mode, each with
the playbook and the event (time, call, account and region, who).

```
python -m trailguard replay ~/cloudtrail-logs/ --compare origin/main          # a table of the differences
python -m trailguard replay s3://org-trail-logs/AWSLogs/o-a1b2c3d4e5/ --since 30d \
    --compare origin/main --markdown comment.md --fail-on no-longer-matched    # in CI
```

The events are read once (selected for the calls either side answers) and decided by both
sides with the Lambda's own decision path. `--markdown FILE` writes the differences as a
pull-request comment (every value from a record escaped: a user agent cannot format the
comment or mention anyone); the exit status is 1 when a difference of the kinds
`--fail-on` names was found (default: any), so a pipeline can block a change that stops
answering events it used to, and let a reviewer read the rest. The workflow:

1. Change the playbook in a branch; `trailguard test` passes.
2. In CI, `replay LOGS --since 30d --compare origin/main --markdown comment.md` over the
   organization's last month (S3 or Athena, docs/replay.md), and post `comment.md` on the
   pull request.
3. The reviewer reads each difference: is every newly matched event one the playbook
   should answer, is every event no longer matched one it should leave alone, and is a new
   mode or step what was meant? Then merge.

A new playbook goes in as `mode: dry-run` first, and is promoted when a replay of the last
weeks shows nothing unexpected ("Shadow first" in docs/replay.md).
"""


_FINDING_ROWS = (
    (
        "`guardduty`",
        "`GuardDuty Finding` (source `aws.guardduty`)",
        "finding types, such as `UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS`",
        "the finding (`detail`): `type`, `severity`, `resource.accessKeyDetails`, "
        "`resource.instanceDetails`, `service.action`...",
    ),
    (
        "`securityhub`",
        "`Security Hub Findings - Imported` (source `aws.securityhub`; one finding per event)",
        "product names (`ProductName`, else the product in `ProductArn`)",
        "the ASFF finding (`detail.findings[0]`): `Severity.Label`, `Types`, `Resources`, `Compliance.Status`...",
    ),
    (
        "`cloudtrail-insights`",
        "`AWS Insight via CloudTrail`",
        "insight types: `ApiCallRateInsight`, `ApiErrorRateInsight`",
        "the Insights record (`detail`): `insightDetails.eventSource`, `.eventName`, `.insightContext`...",
    ),
)

_CONTAINMENT_ROWS = (
    (
        "`iam.revoke_role_sessions`",
        "every session of the role issued before now (stolen copies included)",
        "new sessions: EC2 and Lambda fetch fresh credentials within minutes; a process holding old ones "
        "fails until it asks again",
        "removes exactly its statement (or puts back its earlier cutoff)",
    ),
    (
        "`iam.quarantine_role`",
        "every session of the role, old and new",
        "nothing that uses the role",
        "detaches the deny-all policy",
    ),
    (
        "`iam.quarantine_user`",
        "the user's password, keys, and federation tokens it created",
        "nothing that uses the user",
        "detaches the deny-all policy",
    ),
    (
        "`iam.deactivate_user_access_keys`",
        "every script and job using the user's keys",
        "the console password, sessions already issued",
        "makes active again the keys it deactivated",
    ),
    (
        "`ec2.snapshot_volumes`",
        "nothing: a point-in-time snapshot of each attached EBS volume, tagged with the incident",
        "everything; EBS copies the blocks in the background (snapshots are billed for the data they hold)",
        "keeps the snapshots: they are evidence, and undo never deletes evidence",
    ),
    (
        "`autoscaling.detach_instance`",
        "the group's hold on the instance: its health checks can no longer terminate it",
        "the workload's capacity: the group launches a replacement (desired capacity kept); the instance itself",
        "attaches it again if the group exists and has room (desired + 1 <= maximum), else refuses saying why",
    ),
    (
        "`ec2.isolate_instance`",
        "new connections in and out; whatever the instance serves",
        "the instance itself (disks and memory, for forensics); connections already established may live "
        "on until idle (security groups track them)",
        "gives each interface its groups back",
    ),
    (
        "`s3.deny_principal`",
        "the principal's every call on the bucket and its objects (all its sessions, for a role)",
        "everyone else's access; the principal elsewhere; a workload running as the same role loses this bucket",
        "takes out exactly its statement, keeping other edits (deletes the policy if it held nothing else); "
        "refused if the statement changed",
    ),
    (
        "`kms.deny_principal`",
        "the principal's every call on the key: decrypt, encrypt, disable, schedule deletion",
        "every other principal, AWS services using the key for others; data keys the principal already holds in memory",
        "takes out exactly its statement, keeping other edits; refused if the statement changed",
    ),
    (
        "`lambda.contain_function`",
        "calls through a function URL without AWS credentials (403), and invocations through public "
        "permission statements",
        "the function itself: its other triggers (queues, schedules, event source mappings), callers with IAM "
        "permissions, invocations already running",
        "switches the URL back to NONE and adds back exactly the statements it took out",
    ),
)


def _table_rows(rows: tuple[tuple[str, ...], ...]) -> str:
    return "\n".join("| " + " | ".join(cells) + " |" for cells in rows)


LANGUAGE = LANGUAGE.replace("{FINDING_ROWS}", _table_rows(_FINDING_ROWS)).replace(
    "{CONTAINMENT_ROWS}", _table_rows(_CONTAINMENT_ROWS)
)


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
        actions = ", ".join(f"`{step.action.name}`" for step in playbook.every_step) or "(tells only)"
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
possible. Where a fix could break a workload on some resources only, the playbook is `auto`
and its action reads the resource first (below); where some callers are the resource's own
managers, `instead:` lowers the mode for them.

### Lower modes

"""
        + "\n".join(_lower_modes(catalog))
        + "\n"
    )


def _lower_modes(catalog: Catalog) -> list[str]:
    """Each playbook's `instead:` entries, and its actions that read the resource first."""
    lines = []
    for playbook in sorted(catalog.playbooks, key=lambda p: p.id):
        reasons = [f"{entry.mode} when `{entry.condition.text}`: {entry.because}" for entry in playbook.instead]
        for step in playbook.every_step:
            if playbook.mode == "auto" and step.action.workload is not Action.workload:
                reasons.append(f"approve when `{step.action.name}` finds a workload on the resource (see the action)")
            if playbook.mode == "approve" and step.action.propose_only_if_unsafe:
                reasons.append(f"no proposal when `{step.action.name}` finds the resource safe (see the action)")
        if reasons:
            lines.append(f"- `{playbook.id}` ({playbook.mode}): " + "; ".join(reasons) + ".")
    return lines


def _leaves_alone(cases: list[dict[str, Any]]) -> str:
    rows = [
        f"| {case['id']} | {case['change']} | {case['by']} | {case['expected']} | {case['why']} |" for case in cases
    ]
    counts = {
        decision: sum(1 for case in cases if case["expected"] == decision)
        for decision in ("ignore", "notify", "approve")
    }
    return (
        f"""## What trailguard leaves alone

Legitimate changes platform teams make every day, and what trailguard does about each: none
is remediated automatically ({len(cases)} cases: {counts["ignore"]} left alone,
{counts["notify"]} told, {counts["approve"]} proposed to a person). Each is a CloudTrail record
in `tests/data/false-remediation/` (reconstructions that name what they are based on, and
real records of the other datasets), judged with the organization's named lists
(`trusted_accounts`, `trusted_organizations`); where the decision rests on the resource (a
website, a function URL, a trail trailguard remembered), the test sets the resource up.
`tests/respond/test_false_remediation.py` runs every case through the Lambda's decision path.

| case | change | made by | decision | why |
|---|---|---|---|---|
"""
        + "\n".join(rows)
        + "\n"
    )


def _coverage(coverage: list[Coverage]) -> str:
    rows = []
    for row in coverage:
        answered = ", ".join(f"`{p.id}` ({p.mode})" for p in row.answered) or "—"
        calls = ", ".join(row.calls) or "(read-only calls only)"
        log = "yes" if row.log else "no"
        rows.append(f"| `{row.technique}` | {log} | {calls} | {answered} | {row.note} |")
    answered_count = sum(1 for row in coverage if row.answered)
    without = sum(1 for row in coverage if not row.log)
    return (
        f"""## Stratus Red Team coverage

How the built-in playbooks answer each current [Stratus Red Team](https://stratus-red-team.cloud/)
AWS technique (its list at commit {STRATUS_VERSION}), by the same decision path the Lambda
uses: decided on the technique's detonation log (`tests/data/stratus-detonation-logs/`), or,
for the {without} techniques that publish none, on a real record of the detonation in the
datasets or on its call as the technique documents it (the note says which).
{answered_count} of {len(coverage)} techniques are answered.

| technique | detonation log | write calls | answered by | note |
|---|---|---|---|---|
"""
        + "\n".join(rows)
        + "\n"
    )


FOOTER = """
See `docs/incidents.md` for what happens after a playbook matches (incidents, approvals,
undo, the posture sweep) and `docs/replay.md` for running playbooks over old logs.
"""
