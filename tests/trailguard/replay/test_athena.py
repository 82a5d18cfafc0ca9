"""The DDL, the candidate query's text, and the runner against moto's Athena.

moto does not run SQL: its Athena answers every query with SUCCEEDED and with results queued
beforehand through its moto-api endpoint (canned). So moto shows the calls, their order,
polling and result pagination; the SQL itself is run on DuckDB (test_duckdb_engine.py).
What moto cannot produce (a FAILED query, one that never ends) is played with botocore's
Stubber on a real client, which checks each request against Athena's API model."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from botocore.stub import Stubber
from moto import mock_aws
from moto.moto_api import state_manager

from tests.conftest import REGION
from tests.trailguard.replay.moto_athena import json_protocol_athena
from trailguard.replay.athena import (
    AthenaQueryError,
    AthenaRunner,
    candidate_query,
    ddl,
    identifier,
    literal,
)
from trailguard.replay.s3layout import Location
from trailguard.replay.selection import Selection, SelectionError
from trailguard.replay.table import COLUMNS, rebuild

pytestmark = pytest.mark.integration

ORG = "o-a1b2c3d4e5"
NOW = dt.datetime(2024, 6, 1, tzinfo=dt.UTC)
PAIRS = [
    ("s3.amazonaws.com", "PutBucketAcl"),
    ("cloudtrail.amazonaws.com", "StopLogging"),
    ("cloudtrail.amazonaws.com", "DeleteTrail"),
]
AWS_COLUMNS = (
    "eventversion useridentity eventtime eventsource eventname awsregion sourceipaddress useragent errorcode "
    "errormessage requestparameters responseelements additionaleventdata requestid eventid readonly resources "
    "eventtype apiversion recipientaccountid serviceeventdetails sharedeventid vpcendpointid vpcendpointaccountid "
    "eventcategory addendum sessioncredentialfromconsole edgedevicedetails tlsdetails"
).split()


def test_the_table_has_aws_documented_columns_in_their_order() -> None:
    assert [field.column for field in COLUMNS] == AWS_COLUMNS


def test_organization_ddl_projects_account_region_and_day_under_the_org_prefix() -> None:
    text = ddl(Location("logs", "trails/", ORG), start=dt.date(2023, 1, 1), accounts=["222222222222", "111111111111"])
    assert text.startswith("CREATE EXTERNAL TABLE `cloudtrail_logs` (\n  eventversion STRING,\n")
    assert "  useridentity STRUCT<type: STRING, principalid: STRING," in text
    assert "resources ARRAY<STRUCT<arn: STRING, accountid: STRING, type: STRING>>" in text
    assert "webidfederationdata: STRUCT<federatedprovider: STRING, attributes: MAP<STRING,STRING>>" in text
    assert "PARTITIONED BY (\n  `account` string,\n  `region` string,\n  `timestamp` string)" in text
    assert "ROW FORMAT SERDE 'org.apache.hive.hcatalog.data.JsonSerDe'" in text
    assert "STORED AS INPUTFORMAT 'com.amazon.emr.cloudtrail.CloudTrailInputFormat'" in text
    assert f"LOCATION 's3://logs/trails/AWSLogs/{ORG}/'" in text
    assert "'projection.account.type'='enum'" in text
    assert "'projection.account.values'='111111111111,222222222222'" in text
    assert "'projection.timestamp.range'='2023/01/01,NOW'" in text
    assert "'projection.timestamp.format'='yyyy/MM/dd'" in text
    assert (
        f"'storage.location.template'='s3://logs/trails/AWSLogs/{ORG}/${{account}}/CloudTrail/${{region}}/${{timestamp}}'"
        in text
    )


def test_single_account_ddl_and_injected_accounts_when_none_are_known() -> None:
    text = ddl(Location("logs"), start=dt.date(2024, 1, 1), regions=["us-east-1"], database="security")
    assert text.startswith("CREATE EXTERNAL TABLE `security`.`cloudtrail_logs` (")
    assert "LOCATION 's3://logs/AWSLogs/'" in text
    assert "'projection.account.type'='injected'" in text and "projection.account.values" not in text
    assert "'projection.region.values'='us-east-1'" in text
    assert "'storage.location.template'='s3://logs/AWSLogs/${account}/CloudTrail/${region}/${timestamp}'" in text
    with pytest.raises(SelectionError, match="not a table or database name"):
        ddl(Location("logs"), start=dt.date(2024, 1, 1), table="x`; DROP TABLE y")


def test_candidate_query_is_stable_readable_and_prunes_by_partition() -> None:
    selection = Selection.build(PAIRS, "2024-01-01", "2024-01-31", ["111111111111"], ["us-east-1"], now=NOW)
    text = candidate_query(selection, database="security")
    assert text == candidate_query(
        Selection.build(list(reversed(PAIRS)), "2024-01-01", "2024-01-31", ["111111111111"], ["us-east-1"], now=NOW),
        database="security",
    )
    where = text.split("WHERE ", 1)[1]
    assert where.startswith(
        "\"timestamp\" BETWEEN '2024/01/01' AND '2024/02/01'\n"
        "  AND account IN ('111111111111')\n"
        "  AND region IN ('us-east-1')\n"
        "  AND (errorcode IS NULL OR errorcode = '')\n"
        "  AND try(from_iso8601_timestamp(eventtime)) >= from_iso8601_timestamp('2024-01-01T00:00:00Z')\n"
        "  AND try(from_iso8601_timestamp(eventtime)) < from_iso8601_timestamp('2024-02-01T00:00:00Z')\n"
        "  AND (\n"
        "       (eventsource = 'cloudtrail.amazonaws.com' AND eventname IN ('DeleteTrail', 'StopLogging'))\n"
        "    OR (eventsource = 's3.amazonaws.com' AND eventname IN ('PutBucketAcl'))\n"
        "  )\n"
    )
    assert 'FROM "security"."cloudtrail_logs"' in text
    assert "json_format(CAST(useridentity AS JSON)) AS useridentity" in text
    assert "requestparameters,\n" in text


def test_names_from_playbooks_are_literals_never_sql() -> None:
    hostile = ("s3.amazonaws.com", "PutBucketAcl') OR 1=1 --")
    text = candidate_query(Selection.build([hostile], "1d", now=NOW))
    assert "eventname IN ('PutBucketAcl'') OR 1=1 --')" in text
    assert literal("it's") == "'it''s'" and literal("a\\'b") == "'a\\''b'"
    with pytest.raises(SelectionError):
        literal("a\x00b")
    assert identifier("cloudtrail_logs") == '"cloudtrail_logs"'
    with pytest.raises(SelectionError):
        identifier('a"b')


def test_an_injected_account_table_needs_accounts() -> None:
    with pytest.raises(SelectionError, match="injection"):
        candidate_query(Selection.build(PAIRS, "1d", now=NOW), accounts_required=True)


def test_rebuild_turns_athena_text_rows_back_into_records() -> None:
    row: dict[str, str | None] = dict.fromkeys(AWS_COLUMNS)
    row |= {
        "eventversion": "1.08",
        "useridentity": json.dumps(
            {
                "type": "AssumedRole",
                "principalid": "AROA:x",
                "arn": "arn:aws:sts::1:assumed-role/r/x",
                "accountid": "1",
                "invokedby": None,
                "sessioncontext": {
                    "sessionissuer": {"type": "Role", "username": "r", "arn": None},
                    "attributes": {"mfaauthenticated": "false", "creationdate": None},
                },
            }
        ),
        "eventtime": "2024-01-01T00:00:00Z",
        "eventname": "PutBucketAcl",
        "requestparameters": '{"bucketName":"b","AccessControlPolicy":{"Grant":[1,2]}}',
        "readonly": "false",
        "resources": '[{"arn":"arn:aws:s3:::b","accountid":"1","type":"AWS::S3::Bucket"}]',
        "additionaleventdata": "not json",
        "account": "111111111111",
        "region": "us-east-1",
        "timestamp": "2024/01/01",
        "$path": "s3://b/k",
    }
    candidate = rebuild(row)
    assert candidate.record == {
        "eventVersion": "1.08",
        "userIdentity": {
            "type": "AssumedRole",
            "principalId": "AROA:x",
            "arn": "arn:aws:sts::1:assumed-role/r/x",
            "accountId": "1",
            "sessionContext": {
                "sessionIssuer": {"type": "Role", "userName": "r"},
                "attributes": {"mfaAuthenticated": "false"},
            },
        },
        "eventTime": "2024-01-01T00:00:00Z",
        "eventName": "PutBucketAcl",
        "requestParameters": {"bucketName": "b", "AccessControlPolicy": {"Grant": [1, 2]}},
        "readOnly": False,
        "resources": [{"ARN": "arn:aws:s3:::b", "accountId": "1", "type": "AWS::S3::Bucket"}],
        "additionalEventData": "not json",
    }
    assert (candidate.account, candidate.region, candidate.day, candidate.path) == (
        "111111111111",
        "us-east-1",
        "2024/01/01",
        "s3://b/k",
    )


# -- the runner ------------------------------------------------------------------------------


def queue_results(rows: list[list[str | None]], names: list[str]) -> None:
    """Queue canned results in moto's Athena (its documented moto-api endpoint)."""

    def datum(value: str | None) -> dict[str, str]:
        return {} if value is None else {"VarCharValue": value}

    body: dict[str, Any] = {
        "results": [
            {
                "rows": [{"Data": [datum(n) for n in names]}] + [{"Data": [datum(v) for v in row]} for row in rows],
                "column_info": [{"Name": n, "Type": "varchar"} for n in names],
            }
        ]
    }
    assert (
        requests.post("http://motoapi.amazonaws.com/moto-api/static/athena/query-results", json=body).status_code == 201
    )


def test_runner_starts_polls_with_backoff_and_reads_rows_in_moto(tmp_path: Path) -> None:
    with mock_aws(), json_protocol_athena(tmp_path, REGION) as session:
        client = session.client("athena")
        state_manager.set_transition("athena::execution", {"progression": "manual", "times": 3})
        try:
            queue_results([["e1", "1.08"], ["e2", None]], ["eventid", "eventversion"])
            sleeps: list[float] = []
            runner = AthenaRunner(client, database="security", output_location="s3://results/", sleep=sleeps.append)
            sql = candidate_query(Selection.build(PAIRS, "1d", now=NOW))
            rows = list(runner.run(sql))
            assert rows == [{"eventid": "e1", "eventversion": "1.08"}, {"eventid": "e2", "eventversion": None}]
            execution = client.get_query_execution(QueryExecutionId=runner.statistics.execution_id)["QueryExecution"]
            assert execution["Query"] == sql
            assert execution["QueryExecutionContext"] == {"Database": "security", "Catalog": "AwsDataCatalog"}
            assert runner.statistics.polls >= 3
            assert sleeps == [0.5 * 2**n for n in range(len(sleeps))] and len(sleeps) >= 2
        finally:
            state_manager.unset_transition("athena::execution")


def stubbed(responses: list[tuple[str, dict[str, Any]]]) -> tuple[Any, Stubber]:
    client = boto3.client("athena", region_name=REGION)
    stubber = Stubber(client)
    for method, response in responses:
        stubber.add_response(method, response)
    stubber.activate()
    return client, stubber


def status(state: str, **extra: Any) -> dict[str, Any]:
    return {"QueryExecution": {"QueryExecutionId": "q1", "Status": {"State": state, **extra}}}


def test_a_failed_query_raises_athenas_reason() -> None:
    client, stubber = stubbed(
        [
            ("start_query_execution", {"QueryExecutionId": "q1"}),
            ("get_query_execution", status("RUNNING")),
            (
                "get_query_execution",
                status("FAILED", AthenaError={"ErrorCategory": 2, "ErrorMessage": "CONSTRAINT_VIOLATION: injected"}),
            ),
        ]
    )
    runner = AthenaRunner(client, sleep=lambda seconds: None)
    with pytest.raises(AthenaQueryError, match="q1 failed: CONSTRAINT_VIOLATION: injected"):
        list(runner.run("SELECT 1"))
    stubber.assert_no_pending_responses()


def test_a_query_past_its_timeout_is_stopped_not_left_scanning() -> None:
    client, stubber = stubbed(
        [
            ("start_query_execution", {"QueryExecutionId": "q1"}),
            ("get_query_execution", status("RUNNING")),
            ("get_query_execution", status("RUNNING")),
            ("stop_query_execution", {}),
        ]
    )
    clock = iter([0.0, 0.0, 2.6])
    runner = AthenaRunner(client, timeout=3.0, sleep=lambda seconds: None, clock=lambda: next(clock))
    with pytest.raises(TimeoutError, match="still running"):
        list(runner.run("SELECT 1"))
    stubber.assert_no_pending_responses()


# -- the commands ----------------------------------------------------------------------------


def test_athena_ddl_prints_the_table_for_an_organization_trail() -> None:
    from click.testing import CliRunner

    from trailguard.cli import main

    location = f"s3://logs/trails/AWSLogs/{ORG}/"
    result = CliRunner().invoke(main, ["athena-ddl", location, "--start", "2023-01-01", "--accounts", "1" * 12])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("CREATE EXTERNAL TABLE `cloudtrail_logs` (")
    assert result.output.endswith(")\n;\n") or result.output.rstrip().endswith(");")
    assert (
        f"'storage.location.template'='{location}${{account}}/CloudTrail/${{region}}/${{timestamp}}'" in result.output
    )
    wrong = CliRunner().invoke(main, ["athena-ddl", "logs/AWSLogs", "--start", "2023-01-01"])
    assert wrong.exit_code == 2 and "not an s3:// URL" in wrong.output


def athena_row(record: dict[str, Any], path: str) -> dict[str, str | None]:
    """The row Athena's CloudTrail table gives for `record`: lowercase names, text values,
    nested columns as JSON with lowercase keys, what the table has no column for gone."""

    def lowered(value: Any, field: Any) -> Any:
        if field.kind == "array":
            return [lowered(item, type(field)(field.name, "struct", field.fields)) for item in value]
        if field.kind == "map" or not isinstance(value, dict):
            return value
        subs = {sub.name: sub for sub in field.fields}
        return {sub.column: lowered(value.get(sub.name), sub) for sub in subs.values() if sub.name in value}

    row: dict[str, str | None] = {}
    for field in COLUMNS:
        value = record.get(field.name)
        if value is None:
            row[field.column] = None
        elif field.kind in ("struct", "array", "map"):
            row[field.column] = json.dumps(lowered(value, field))
        elif field.kind == "json":
            row[field.column] = json.dumps(value)
        else:
            row[field.column] = str(value).lower() if isinstance(value, bool) else str(value)
    account, region = record["recipientAccountId"], record["awsRegion"]
    row |= {"account": account, "region": region, "timestamp": record["eventTime"][:10].replace("-", "/")}
    row["$path"] = path
    return row


def test_replay_with_athena_decides_on_the_candidates_as_a_local_replay_does(
    tmp_path: Path, datasets: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from trailguard.cli import main

    records = [
        item
        for path in sorted((datasets / "stratus-detonation-logs").glob("*.json"))
        for item in json.loads(path.read_text())
        if not item.get("errorCode")
    ]
    local_file = tmp_path / "candidates.json"
    local_file.write_text(json.dumps({"Records": records}))
    local = CliRunner().invoke(main, ["replay", str(local_file), "--format", "jsonl"], catch_exceptions=False)
    rows = [athena_row(item, f"s3://logs/AWSLogs/{item['recipientAccountId']}/x.json.gz") for item in records]
    names = list(rows[0])
    with mock_aws(), json_protocol_athena(tmp_path / "model", REGION) as session:
        monkeypatch.setattr(boto3, "DEFAULT_SESSION", session)
        queue_results([[row[name] for name in names] for row in rows], names)
        result = CliRunner().invoke(
            main,
            ["replay", "--athena", "--since", "2020-01-01", "--athena-database", "security", "--format", "jsonl"],
            catch_exceptions=False,
        )
        executions = session.client("athena").list_query_executions()["QueryExecutionIds"]
        query = session.client("athena").get_query_execution(QueryExecutionId=executions[0])["QueryExecution"]
    assert result.exit_code == 0, result.stderr
    assert query["Query"].startswith("-- trailguard replay: successful calls of ")
    assert 'FROM "security"."cloudtrail_logs"' in query["Query"]
    assert len(local.stdout.splitlines()) > 10
    assert result.stdout == local.stdout
    assert f"replay: {len(records)} events read" in result.stderr
    assert "athena: query " in result.stderr and " scanned " in result.stderr
