"""`python -m trailguard`: the commands playbook authors and operators run.

validate [PATH...]      check playbooks; exit 1 listing every mistake
test [PATH...]          run the playbooks' inline tests (--watch: again on every change)
new ID --from FILE      a playbook skeleton, with tests, from a real CloudTrail record
replay INPUT...         what the playbooks would have done about these logs (files, s3://, --athena;
                        --compare GIT_REF: what a playbook change would do)
athena-ddl LOCATION     the Athena table of a trail's logs, for replay --athena
schema                  print the playbook JSON Schema (for editors)
policy                  print the roles' IAM policies, the member template; --write a stage's files
docs                    write docs/playbooks.md and docs/slack-messages.md from the code
bootstrap --stage S     create the stage's table (with TTL and recovery), integrity key and Slack
                        placeholders and, once deployed (and after every deploy), its dead-letter
                        queues, alarms, dashboard and the API's access logs; idempotently
                        (--check: report what a deploy undid)
redrive --stage S       hand a function's dead-letter queue back to the deployed function
slack-manifest --stage S    the stage's Slack app manifest
incidents --stage S     list open incidents, or show one with its history (--ocsf: as OCSF findings)
demo [--keep-running]   the end-to-end story on a local AWS (moto) and Slack stub
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from chalicelib import __version__
from chalicelib.playbooks.catalog import Catalog, CatalogError
from chalicelib.respond.guards import OwnIdentities
from chalicelib.settings import Settings
from trailguard.replay.options import athena_ddl_options, replay_scale_options, replay_selection_options


def _load(paths: tuple[str, ...]) -> Catalog:
    settings = Settings.from_environment()
    try:
        return Catalog.load(paths or settings.playbooks)
    except CatalogError as error:
        click.echo(str(error), err=True)
        sys.exit(1)


@click.group(help="trailguard: automated response to dangerous AWS API calls.")
@click.version_option(__version__, prog_name="trailguard")
def main() -> None:
    pass


@main.command(help="Check playbooks (default: the bundled playbooks/) and list every mistake.")
@click.argument("paths", nargs=-1, type=click.Path(exists=True))
def validate(paths: tuple[str, ...]) -> None:
    catalog = _load(paths)
    count = len(catalog.playbooks)
    click.echo(f"ok: {count} playbook{'s' if count != 1 else ''} valid")


@main.command("test", help="Run the inline tests of playbooks (default: the bundled playbooks/).")
@click.argument("paths", nargs=-1, type=click.Path(exists=True))
@click.option("--watch", is_flag=True, help="Run them again whenever a playbook file changes (Ctrl-C stops).")
def test_command(paths: tuple[str, ...], watch: bool) -> None:
    if not watch:
        sys.exit(_run_tests(paths))
    import time

    from trailguard.authoring import watched_files

    roots = [Path(p) for p in paths] or list(Settings.from_environment().playbooks)
    seen: dict[Path, float] = {}
    try:
        while True:
            current = watched_files(roots)
            if current != seen:
                if seen:
                    changed = sorted(str(f) for f in set(current) | set(seen) if current.get(f) != seen.get(f))
                    click.echo(f"\nchanged: {', '.join(changed)}")
                seen = current
                _run_tests(paths)
                click.echo("watching for changes (Ctrl-C stops)")
            time.sleep(0.5)
    except KeyboardInterrupt:
        return


def _run_tests(paths: tuple[str, ...]) -> int:
    """Run the tests once and report them; 0 when all pass, 1 otherwise (a load error included)."""
    from trailguard.playbook_tests import run_tests

    settings = Settings.from_environment()
    try:
        catalog = Catalog.load(paths or settings.playbooks)
    except CatalogError as error:
        click.echo(str(error), err=True)
        return 1
    results = run_tests(catalog.playbooks, OwnIdentities.of(settings))
    failed = [result for result in results if not result.passed]
    for result in results:
        mark = click.style("PASS", fg="green") if result.passed else click.style("FAIL", fg="red")
        click.echo(f"{mark} {result.playbook.id}: {result.test.name}")
        if result.problem:
            click.echo(f"     {result.location}: {result.problem}")
    untested = [p.id for p in catalog.playbooks if not p.tests]
    if untested:
        click.echo(f"note: no tests in {', '.join(untested)}")
    passed = len(results) - len(failed)
    click.echo(f"{len(catalog.playbooks)} playbooks, {len(results)} tests: {passed} passed, {len(failed)} failed")
    if failed:
        files = sorted({str(result.playbook.path) for result in failed})
        click.echo(f"rerun: python -m trailguard test {' '.join(files)}   (or add --watch)")
        return 1
    return 0


@main.command(
    help="Write a playbook skeleton answering the call in EVENT_FILE (a CloudTrail record, an "
    "EventBridge event or a CloudTrail log file), with its first tests taken from that record."
)
@click.argument("playbook_id")
@click.option("--from", "source", required=True, type=click.Path(exists=True, dir_okay=False), help="The event file.")
@click.option("--event-name", help="Which record of the file (default: its first successful write call).")
@click.option("--event-id", help="Which record of the file, by eventID.")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Where to write PLAYBOOK_ID.yaml (default: the bundled playbooks/).",
)
@click.option("--force", is_flag=True, help="Replace an existing file.")
def new(
    playbook_id: str, source: str, event_name: str | None, event_id: str | None, out_dir: str | None, force: bool
) -> None:
    from chalicelib.settings import PROJECT_PLAYBOOKS
    from trailguard.authoring import AuthoringError, write_skeleton

    folder = Path(out_dir) if out_dir else PROJECT_PLAYBOOKS
    folder.mkdir(parents=True, exist_ok=True)
    try:
        target, event = write_skeleton(
            playbook_id, Path(source), folder, event_name=event_name, event_id=event_id, force=force
        )
    except AuthoringError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(2)
    click.echo(f"wrote {target}: {event.source} {event.name}, notify mode, 2 tests from event {event.event_id}")
    click.echo(f"next: edit it, then python -m trailguard test --watch {target}")


@main.command(
    help="Run CloudTrail logs through the playbooks, as the Lambda would, without calling AWS or Slack. INPUTS are "
    "files and folders, or the S3 location a trail delivers to (s3://BUCKET/PREFIX, or .../AWSLogs/o-ORGID/ for an "
    "organization trail); with --athena, none: the CloudTrail table is queried. See docs/replay.md."
)
@click.argument("inputs", nargs=-1)
@click.option("--format", "output_format", type=click.Choice(["table", "jsonl"]), default="table", show_default=True)
@click.option("--all", "include_skipped", is_flag=True, help="Also report the events a guard skipped.")
@click.option(
    "--own-role",
    "own_roles",
    multiple=True,
    metavar="NAME",
    help="A function role of trailguard's own in the central account, whose calls there are skipped "
    "(repeatable; adds to TRAILGUARD_OWN_ROLES).",
)
@click.option(
    "--central-account",
    metavar="ID",
    help="The account trailguard's function roles live in (default: TRAILGUARD_CENTRAL_ACCOUNT); without "
    "it, no call is taken for a function role's.",
)
@click.option(
    "--playbooks",
    "playbook_paths",
    multiple=True,
    type=click.Path(exists=True),
    help="Playbook files or folders (default: the bundled playbooks/).",
)
@click.option(
    "--playbook",
    "only",
    multiple=True,
    metavar="ID",
    help="Replay only this playbook (repeatable): what would it have done?",
)
@click.option(
    "--trusted-account",
    "trusted_accounts",
    multiple=True,
    metavar="ID",
    help="An account of the organization, named_list('trusted_accounts') (repeatable; adds to "
    "TRAILGUARD_TRUSTED_ACCOUNTS). Each event's own account always is.",
)
@click.option(
    "--trusted-organization",
    "trusted_organizations",
    multiple=True,
    metavar="ID",
    help="An AWS Organizations id of the organization, named_list('trusted_organizations') (repeatable; adds "
    "to TRAILGUARD_TRUSTED_ORGANIZATIONS).",
)
@replay_selection_options
@replay_scale_options
def replay(
    inputs: tuple[str, ...],
    output_format: str,
    include_skipped: bool,
    own_roles: tuple[str, ...],
    central_account: str | None,
    playbook_paths: tuple[str, ...],
    only: tuple[str, ...],
    trusted_accounts: tuple[str, ...],
    trusted_organizations: tuple[str, ...],
    **scale: Any,
) -> None:
    from trailguard.replay.command import ReplayRequest, run_replay

    catalog = _load(playbook_paths)
    if only:
        unknown = sorted(set(only) - {p.id for p in catalog.playbooks})
        if unknown:
            click.echo(f"error: no playbook {', '.join(unknown)} (see python -m trailguard validate)", err=True)
            sys.exit(2)
        catalog = Catalog([p for p in catalog.playbooks if p.id in only])
    settings = Settings.from_environment()
    if central_account is not None and not (
        len(central_account) == 12 and central_account.isascii() and central_account.isdigit()
    ):
        click.echo(f"error: --central-account is {central_account!r}; expected a 12-digit AWS account id", err=True)
        sys.exit(2)
    request = ReplayRequest(
        inputs=inputs,
        catalog=catalog,
        playbook_paths=playbook_paths,
        only=only,
        own=OwnIdentities.of(settings, central_account, own_roles),
        lists=_trusted_lists(settings, trusted_accounts, trusted_organizations),
        output_format=output_format,
        include_skipped=include_skipped,
        **scale,
    )
    sys.exit(run_replay(request))


@main.command(
    "athena-ddl",
    help="Print the CREATE TABLE of the CloudTrail table Athena replays query (AWS's documented table, partitioned "
    "by account, region and day with partition projection) for the trail delivering to LOCATION (s3://BUCKET/PREFIX, "
    "or .../AWSLogs/o-ORGID/ for an organization trail).",
)
@athena_ddl_options
def athena_ddl(
    location: str, start: str, accounts: tuple[str, ...], regions: tuple[str, ...], database: str | None, table: str
) -> None:
    from trailguard.replay.command import athena_ddl as write_ddl

    sys.exit(write_ddl(location, start, accounts, regions, database, table))


def _trusted_lists(settings: Settings, accounts: tuple[str, ...], organizations: tuple[str, ...]) -> Any:
    """The settings' named lists with the ones given on the command line added; exit 2 on a bad id."""
    from chalicelib.named_lists import TRUSTED_ACCOUNTS, TRUSTED_ORGANIZATIONS, NamedLists, problem

    given = {
        TRUSTED_ACCOUNTS: (sorted(settings.trusted_accounts), accounts, "--trusted-account"),
        TRUSTED_ORGANIZATIONS: (sorted(settings.trusted_organizations), organizations, "--trusted-organization"),
    }
    for name, (_, added, option) in given.items():
        wrong = problem(name, added)
        if wrong:
            click.echo(f"error: {option} {wrong}", err=True)
            sys.exit(2)
    return NamedLists.of({name: [*configured, *added] for name, (configured, added, _) in given.items()})


@main.command(
    help="Print the playbook JSON Schema (playbooks/playbook.schema.json is this output); with --write, write "
    "it and the validator generated from it (chalicelib/playbooks/schema_validator.py)."
)
@click.option("--write", is_flag=True, help="Write playbooks/playbook.schema.json and the generated validator.")
def schema(write: bool) -> None:
    from chalicelib.playbooks.schema import SCHEMA
    from chalicelib.settings import PROJECT_PLAYBOOKS

    text = json.dumps(SCHEMA, indent=2)
    if not write:
        click.echo(text)
        return
    from trailguard.generate.validator import write_validator

    schema_file = PROJECT_PLAYBOOKS / "playbook.schema.json"
    schema_file.write_text(text + "\n")
    click.echo(f"wrote {schema_file}")
    click.echo(f"wrote {write_validator()}")


def _stage_settings(stage: str) -> Settings:
    from trailguard.generate.deployment import StageError, stage_settings

    try:
        return stage_settings(stage)
    except (StageError, ValueError) as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(2)


@main.command(
    help="Print the IAM policy of trailguard's Lambda roles, generated from the playbooks; or, with --write, "
    "write every generated deployment file of a stage: .chalice/policy-STAGE.json (the acting "
    "functions), .chalice/policy-STAGE-api.json (the Slack endpoint) and deploy/*-STAGE.json (the "
    "merge, member and central-bus CloudFormation templates, and, when the stage puts events out, the "
    "worked example routing them to Jira, ServiceNow and PagerDuty)."
)
@click.option("--stage", help="The stage of .chalice/config.json whose table, secrets and roles the policy names.")
@click.option("--api", is_flag=True, help="The Slack endpoint's policy (no remediation permission) instead.")
@click.option(
    "--member",
    is_flag=True,
    help="The member-account CloudFormation template (StackSet) instead (for --stage, default prod).",
)
@click.option("--write", is_flag=True, help="Write the stage's files instead of printing.")
def policy(stage: str | None, api: bool, member: bool, write: bool) -> None:
    from chalicelib.respond.handler import eventbridge_rules
    from trailguard.generate.policy import api_policy, lambda_policy

    if write and not stage:
        click.echo("error: --write needs --stage", err=True)
        sys.exit(2)
    if member and not stage:
        stage = "prod"
    settings = _stage_settings(stage) if stage else Settings.from_environment()
    catalog = _load(())
    if write:
        assert stage is not None
        for path in _write_deployment_files(stage, settings, catalog):
            click.echo(f"wrote {path}")
        return
    if member:
        from trailguard.generate.templates import member_template

        document = member_template(stage or "prod", settings, catalog, eventbridge_rules(catalog))
    elif api:
        document = api_policy(settings)
    elif stage:
        from trailguard.generate.deployment import CHALICE_DIR

        document = json.loads(deployment_files(stage, settings, catalog)[CHALICE_DIR / f"policy-{stage}.json"])
    else:
        document = lambda_policy(catalog, settings)
    click.echo(json.dumps(document, indent=2))


def deployment_files(stage: str, settings: Settings, catalog: Catalog) -> dict[Path, str]:
    """Every file `policy --stage STAGE --write` writes, by path, with its text."""
    from chalicelib.respond.handler import eventbridge_rules
    from trailguard.generate.deadletters import send_statement
    from trailguard.generate.deployment import (
        CHALICE_DIR,
        TEMPLATES_DIR,
        own_roles_in_central_account,
        stage_environment,
    )
    from trailguard.generate.operations import StageLayout
    from trailguard.generate.policy import api_policy, lambda_policy
    from trailguard.generate.templates import central_bus_template, member_template, merge_template

    rules = eventbridge_rules(catalog)
    own_roles = own_roles_in_central_account(stage, settings, [rule.name for rule in rules])
    layout = StageLayout.of(stage, settings, [rule.name for rule in rules], stage_environment(stage))
    documents = {
        CHALICE_DIR / f"policy-{stage}.json": lambda_policy(
            catalog, settings, own_roles=own_roles, dead_letters=send_statement(layout)
        ),
        CHALICE_DIR / f"policy-{stage}-api.json": api_policy(settings),
        TEMPLATES_DIR / f"merge-{stage}.json": merge_template(stage, settings, rules, layout.ops),
        TEMPLATES_DIR / f"member-{stage}.json": member_template(stage, settings, catalog, rules),
        TEMPLATES_DIR / f"central-bus-{stage}.json": central_bus_template(stage),
    }
    if settings.events_out is not None:
        from trailguard.generate.destinations import example_template

        documents[TEMPLATES_DIR / f"event-destinations-{stage}.json"] = example_template(stage, settings.events_out)
    return {path: json.dumps(document, indent=2) + "\n" for path, document in documents.items()}


def _write_deployment_files(stage: str, settings: Settings, catalog: Catalog) -> list[Path]:
    files = deployment_files(stage, settings, catalog)
    for path, text in files.items():
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
    return list(files)


@main.command(
    help="Create what chalice deploy does not: the stage's DynamoDB table (with TTL and point-in-time recovery), "
    "the KMS HMAC key that seals it, and its Slack secrets' placeholders; after chalice deploy, the dead-letter "
    "queues, the rules' retry policies, the on-failure destinations, log retention, the alarms and the dashboard, "
    "and the REST API's access logs. Run it again after every chalice deploy (which drops the rules' dead-letter "
    "queues). Safe to rerun; never overwrites a secret."
)
@click.option("--stage", required=True, help="A stage of .chalice/config.json (its TRAILGUARD_TABLE).")
@click.option(
    "--check",
    is_flag=True,
    help="Change nothing: report what a chalice deploy (or a person) undid; exit 1 if anything.",
)
def bootstrap(stage: str, check: bool) -> None:
    import boto3

    from trailguard.bootstrap import ensure_table

    settings = _stage_settings(stage)
    if not settings.table:
        click.echo(f"error: stage {stage} sets no TRAILGUARD_TABLE in .chalice/config.json", err=True)
        sys.exit(2)
    if check:
        sys.exit(_bootstrap_check(stage, settings))
    try:
        done = ensure_table(boto3.client("dynamodb"), settings.table)
    except Exception as error:
        from chalicelib.aws.errors import describe_error

        click.echo(f"error: table {settings.table}: {describe_error(error)}", err=True)
        sys.exit(1)
    for line in done or [f"table {settings.table} is ready (already existed, TTL and point-in-time recovery on)"]:
        click.echo(line)
    _bootstrap_integrity_key(stage, settings)
    _bootstrap_secrets(settings)
    deployed = _bootstrap_operations(stage, settings)
    if not _bootstrap_access_logs(stage) or not deployed:
        click.echo(
            f"next: chalice deploy --stage {stage}, then bootstrap --stage {stage} again (dead-letter queues, "
            "alarms, the dashboard and the API's access logs)"
        )


def _stage_layout(stage: str, settings: Settings) -> Any:
    from chalicelib.respond.handler import eventbridge_rules
    from trailguard.generate.deployment import stage_environment
    from trailguard.generate.operations import StageLayout

    rules = eventbridge_rules(Catalog.load(settings.playbooks, with_tests=False))
    try:
        return StageLayout.of(stage, settings, [rule.name for rule in rules], stage_environment(stage))
    except ValueError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(2)


def _bootstrap_operations(stage: str, settings: Settings) -> bool:
    """Dead-letter queues, retry policies, on-failure destinations, log retention, alarms and
    the dashboard; False when the stage is not deployed yet."""
    import boto3

    from chalicelib.aws.errors import describe_error
    from trailguard.operations import BootstrapError, deployed, ensure

    layout = _stage_layout(stage, settings)
    try:
        if not deployed(boto3.client, layout):
            return False
        lines = ensure(boto3.client, layout)
    except BootstrapError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(1)
    except Exception as error:
        click.echo(f"error: dead-letter queues, alarms and dashboard: {describe_error(error)}", err=True)
        sys.exit(1)
    for line in lines:
        click.echo(line)
    return True


def _bootstrap_check(stage: str, settings: Settings) -> int:
    import boto3

    from chalicelib.aws.errors import describe_error
    from trailguard.operations import drift

    try:
        problems = drift(boto3.client, _stage_layout(stage, settings))
    except Exception as error:
        click.echo(f"error: {describe_error(error)}", err=True)
        return 1
    for problem in problems:
        click.echo(problem)
    if problems:
        click.echo(f"run: python -m trailguard bootstrap --stage {stage}", err=True)
        return 1
    click.echo(f"stage {stage}: dead-letter queues, retry policies, destinations, log retention and recovery in place")
    return 0


def _bootstrap_access_logs(stage: str) -> bool:
    """Turn on the access logs of the stage's REST API; False when it is not deployed yet."""
    import boto3

    from chalicelib.aws.errors import describe_error
    from trailguard.generate.access_logs import (
        AccessLogError,
        access_log_group,
        ensure_access_logs,
        has_logging_role,
        logging_role_commands,
    )
    from trailguard.generate.deployment import StageError, api_gateway_stage, deployed_rest_api_id

    apigateway = boto3.client("apigateway")

    def how_to_set_the_logging_role() -> str:
        identity = boto3.client("sts").get_caller_identity()
        commands = logging_role_commands(identity["Arn"].split(":")[1], identity["Account"])
        return "\n".join(f"  {command}" for command in commands)

    try:
        rest_api_id = deployed_rest_api_id(stage)
        if rest_api_id is None:
            if not has_logging_role(apigateway):
                click.echo(
                    "API Gateway has no CloudWatch Logs role in this account and region, and the API's access "
                    f"logs need one; set it (once per account and region):\n{how_to_set_the_logging_role()}"
                )
            return False
        lines = ensure_access_logs(
            apigateway, boto3.client("logs"), rest_api_id, api_gateway_stage(stage), access_log_group(stage)
        )
    except AccessLogError as error:
        click.echo(f"error: {error}:\n{how_to_set_the_logging_role()}", err=True)
        sys.exit(1)
    except StageError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(2)
    except Exception as error:
        click.echo(f"error: the API's access logs: {describe_error(error)}", err=True)
        sys.exit(1)
    for line in lines:
        click.echo(line)
    return True


def _bootstrap_integrity_key(stage: str, settings: Settings) -> None:
    """The key the acting functions seal the table with; only they may seal (its key policy)."""
    import boto3

    from chalicelib.aws.clients import partition_of
    from chalicelib.aws.seals import KEY_SPEC
    from chalicelib.playbooks.catalog import Catalog
    from chalicelib.respond.handler import eventbridge_rules
    from trailguard.bootstrap import ensure_key
    from trailguard.generate.deployment import acting_functions, role_name
    from trailguard.generate.policy import integrity_key_policy

    key = settings.integrity_key
    assert key is not None  # Settings refuses a table without one
    try:
        kms = boto3.client("kms")
        account = boto3.client("sts").get_caller_identity()["Account"]
        prefix = f"arn:{partition_of(kms.meta.region_name)}:iam::{account}"
        rules = eventbridge_rules(Catalog.load(settings.playbooks, with_tests=False))
        roles = [f"{prefix}:role/{role_name(stage, f)}" for f in acting_functions([rule.name for rule in rules])]
        description = f"trailguard ({stage}): seals what its acting functions write to the incidents table"
        done = ensure_key(kms, key, integrity_key_policy(f"{prefix}:root", roles), description)
    except Exception as error:
        from chalicelib.aws.errors import describe_error

        click.echo(f"error: integrity key {key}: {describe_error(error)}", err=True)
        sys.exit(1)
    for line in done or [f"integrity key {key} is ready (already existed, {KEY_SPEC})"]:
        click.echo(line)


def _bootstrap_secrets(settings: Settings) -> None:
    import boto3

    from chalicelib.slack.secrets import SecretError, ensure_placeholder, how_to_set, is_reference, read_secret

    for name, setting in (("bot token", settings.slack_token), ("signing secret", settings.slack_signing_secret)):
        if setting is None or not is_reference(setting):
            continue
        try:
            created = ensure_placeholder(setting, boto3.client)
            if created:
                click.echo(created)
            read_secret(setting, boto3.client)
        except SecretError:
            click.echo(f"the Slack {name} ({setting}) is a placeholder; set it: {how_to_set(setting)}")
            continue
        except Exception as error:
            from chalicelib.aws.errors import describe_error

            click.echo(f"error: the Slack {name} ({setting}): {describe_error(error)}", err=True)
            sys.exit(1)
        click.echo(f"the Slack {name} ({setting}) is set")


@main.command(
    help="Hand what a function's dead-letter queue holds (events EventBridge could not deliver, invocations that "
    "failed every retry) back to the deployed function, and delete each message it handled; what fails again "
    "stays, with the reason. Fix the cause first (the queue's alarm and the function's logs say it)."
)
@click.option("--stage", required=True, help="A stage of .chalice/config.json.")
@click.option(
    "--function",
    "function",
    default="respond_to_cloudtrail",
    show_default=True,
    help="Whose queue: respond_to_cloudtrail (or a second rule's function), posture_sweep or slack_worker.",
)
@click.option("--limit", default=1000, show_default=True, help="At most this many messages in one run.")
@click.option("--dry-run", is_flag=True, help="Read and report; hand nothing over, delete nothing.")
def redrive(stage: str, function: str, limit: int, dry_run: bool) -> None:
    import boto3
    from botocore.config import Config

    from chalicelib.aws.errors import describe_error
    from trailguard.redrive import invoke_function
    from trailguard.redrive import redrive as replay_queue

    layout = _stage_layout(stage, _stage_settings(stage))
    if function not in layout.background_functions:
        click.echo(
            f"error: {function} has no dead-letter queue; one of: {', '.join(layout.background_functions)}", err=True
        )
        sys.exit(2)
    sqs = boto3.client("sqs")
    queue = layout.dead_letter_queue(function)
    try:
        queue_url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
        # a synchronous invocation waits as long as the function may run (chalice's lambda_timeout)
        lambda_client = boto3.client("lambda", config=Config(read_timeout=900, retries={"mode": "standard"}))
        report = replay_queue(
            sqs, queue_url, invoke_function(lambda_client, layout.function_name(function)), limit=limit, dry_run=dry_run
        )
    except Exception as error:
        click.echo(f"error: {queue}: {describe_error(error)}", err=True)
        sys.exit(1)
    click.echo(json.dumps(report.to_dict(), indent=2))
    click.echo(
        f"{report.received} received, {report.handled} handed to {layout.function_name(function)}, "
        f"{len(report.kept)} kept in {queue}",
        err=True,
    )
    if report.kept and not dry_run:
        sys.exit(1)


@main.command(
    "slack-manifest",
    help="Print the stage's Slack app manifest (scopes, the interactivity request URL, the bot's name): paste it "
    "at api.slack.com/apps, Create New App, From a manifest.",
)
@click.option("--stage", required=True, help="A stage of .chalice/config.json.")
@click.option(
    "--endpoint-url",
    help="The REST API's URL (a CloudFormation stack's EndpointURL output); default: the one chalice deploy "
    "recorded in .chalice/deployed/STAGE.json.",
)
@click.option("--bot-name", help="The app's and bot's name (default: trailguard for prod, else 'trailguard STAGE').")
def slack_manifest(stage: str, endpoint_url: str | None, bot_name: str | None) -> None:
    from trailguard.generate.deployment import CHALICE_DIR
    from trailguard.generate.slack_manifest import ManifestError, endpoint_from_deployed, manifest

    settings = _stage_settings(stage)
    approvers = {*settings.slack_approvers, *(a for p in _load(()).playbooks for a in p.approvers)}
    try:
        endpoint = endpoint_url or endpoint_from_deployed(stage, CHALICE_DIR)
        click.echo(json.dumps(manifest(stage, endpoint, approvers, bot_name), indent=2))
    except ManifestError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(2)


@main.command(help="List open incidents, or show one incident with its history.")
@click.argument("incident_id", required=False)
@click.option("--stage", required=True, help="A stage of .chalice/config.json (its TRAILGUARD_TABLE).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@click.option(
    "--ocsf",
    is_flag=True,
    help="Print each as an OCSF 1.1.0 Detection Finding, one JSON object a line (for a SIEM, Security Lake).",
)
def incidents(incident_id: str | None, stage: str, as_json: bool, ocsf: bool) -> None:
    import boto3

    from chalicelib.incidents.model import HISTORY_FIRST
    from chalicelib.incidents.store import DynamoStore, UnreadableIncident
    from chalicelib.outputs.ocsf import to_ocsf

    settings = _stage_settings(stage)
    if not settings.table:
        click.echo(f"error: stage {stage} sets no TRAILGUARD_TABLE in .chalice/config.json", err=True)
        sys.exit(2)
    store = DynamoStore(boto3.client("dynamodb"), settings.table, settings.retention_days)
    if incident_id:
        try:
            incident = store.get(incident_id)
        except UnreadableIncident as problem:
            click.echo(f"error: {problem}", err=True)
            sys.exit(1)
        if incident is None:
            click.echo(f"error: no incident {incident_id} in {settings.table}", err=True)
            sys.exit(1)
        if ocsf:
            click.echo(json.dumps(to_ocsf(incident, settings.stage)))
            return
        if as_json:
            click.echo(json.dumps(incident.to_dict(), indent=2, default=str))
            return
        from chalicelib.incidents.notify import describe

        click.echo(describe(incident))
        if incident.notification is not None:
            where = incident.notification
            status = (
                "waiting for delivery" + (f" (last error: {where['error']})" if where.get("error") else "")
                if incident.notification_due
                else "up to date"
            )
            click.echo(f"  Slack message {where.get('channel')} {where.get('ts') or '(not posted)'}: {status}")
        for number, entry in enumerate(incident.history):
            if number == HISTORY_FIRST and incident.history_dropped:
                click.echo(f"  ... {incident.history_dropped} entries in between not kept ...")
            detail = f": {entry.detail}" if entry.detail else ""
            click.echo(f"  {entry.at}  {entry.who:<28} {entry.what:<12} -> {entry.state.value}{detail}")
        return
    unreadable: list[UnreadableIncident] = []
    found = store.open_incidents(unreadable=unreadable)
    for damaged in unreadable:
        click.echo(f"error: {damaged}", err=True)
    for incident in found:
        if ocsf:
            click.echo(json.dumps(to_ocsf(incident, settings.stage)))
        elif as_json:
            click.echo(json.dumps(incident.to_dict(), default=str))
        else:
            event = incident.event
            click.echo(
                f"{incident.created_at}  {incident.state.value:<12} {incident.id}  {incident.playbook_id:<32} "
                f"{event.name} by {event.actor} in {event.account}/{event.region}"
            )
    if not (as_json or ocsf):
        click.echo(f"{len(found)} open incident{'s' if len(found) != 1 else ''}", err=True)


@main.command(help="Write docs/playbooks.md and docs/slack-messages.md from the code (or --check they are current).")
@click.option(
    "--datasets",
    type=click.Path(exists=True, file_okay=False),
    help="The datasets folder (default: tests/data, or TRAILGUARD_DATASETS).",
)
@click.option("--check", is_flag=True, help="Exit 1 if a file differs from what would be written.")
def docs(datasets: str | None, check: bool) -> None:
    from trailguard.generate.docs import (
        DOCS_FILE,
        default_datasets,
        leaves_alone,
        render,
        stratus_coverage,
    )

    catalog = _load(())
    folder = Path(datasets) if datasets else default_datasets()
    stratus = folder / "stratus-detonation-logs"
    if not stratus.is_dir():
        click.echo(f"error: no Stratus detonation logs at {stratus} (give --datasets)", err=True)
        sys.exit(2)
    from trailguard.generate.slack_examples import EXAMPLES_FILE, render_examples

    generated = {
        DOCS_FILE: render(catalog, stratus_coverage(catalog, stratus), leaves_alone(folder)),
        EXAMPLES_FILE: render_examples(catalog),
    }
    stale = [path for path, text in generated.items() if (path.read_text() if path.exists() else "") != text]
    if check:
        for path in stale:
            click.echo(f"{path} is stale: run python -m trailguard docs", err=True)
        if stale:
            sys.exit(1)
        click.echo("ok: " + ", ".join(str(path) for path in generated) + " are current")
        return
    for path, text in generated.items():
        path.write_text(text)
        click.echo(f"wrote {path}")


@main.command(help="Play an attacker against a local AWS (moto on 127.0.0.1) and show what trailguard does.")
@click.option(
    "--output",
    type=click.Path(file_okay=False),
    default=None,
    help="Where to write each Slack message's Block Kit JSON (default: demo-output/).",
)
@click.option(
    "--keep-running",
    is_flag=True,
    help="Afterwards, leave the local AWS, the Slack stub and `chalice local` up, and print how to play.",
)
def demo(output: str | None, keep_running: bool) -> None:
    from trailguard.demo import DEFAULT_OUTPUT, run_demo

    sys.exit(run_demo(Path(output) if output else DEFAULT_OUTPUT, keep_running))
