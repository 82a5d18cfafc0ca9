"""The first Slack click on a cold container, as Lambda runs it, against Slack's 3 seconds.

`chalice package --stage dev` (after `python -m trailguard.bytecode`: bytecode and the
precompiled playbook catalog) is unpacked, and each click runs in a fresh interpreter over
it, with the REST API function's environment from the package's template (`sam.json`) and
`AWS_LAMBDA_FUNCTION_NAME` naming that function, bytecode writing off (/var/task is
read-only). The child does what a cold container does: `import app` (Lambda's init: the
playbooks, and `Runtime.prepare` building the Slack endpoint, slack_sdk and the signing
secret read from SSM), then calls `app.app` (the function's handler) with API Gateway's
proxy event of one Approve click signed with slack_sdk's SignatureVerifier. AWS is moto's
server on 127.0.0.1 (DynamoDB: the incident read and the conditional write of the
decision; SSM: the signing secret; Lambda: the worker's asynchronous invoke; KMS seals the
proposals the parent opens), Slack the local stub. Every click lands on a fresh proposal, which the parent
then finds handed to the worker (`remediating`).

CPU seconds (user + system) of the init and of the click are measured in the child. Lambda
gives a function CPU in proportion to its memory (one vCPU at 1,769 MB: 1,024 MB about 0.58
vCPU, 256 MB about 0.145): the estimate of what Slack waits for on a cold container is the
init's CPU plus the click's, both at the function's share (init may get more CPU than
that, so this errs long; the estimate with the init at a full vCPU is given too), plus the
click's waits on AWS as measured here (wall minus CPU: a loopback moto, and this machine's
scheduling).

    .venv/bin/python -m bench.slack_cold [RUNS]
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import zipfile
from pathlib import Path
from typing import Any

from bench.common import PYTHON, ROOT, bench_record, environment
from bench.interaction import APPROVER, PLAYBOOK, SECRET  # the same click as the warm benchmark's

RUNS = 5
TARGET_S = 1.0
"""The first click on a cold container, estimated at the endpoint's memory."""
SLACK_LIMIT_S = 3.0
VCPU_PER_MB = 1 / 1769
STAGE = "dev"
API_FUNCTION = f"trailguard-{STAGE}"
"""The REST API's function: Chalice names it for the app and the stage alone."""
CHILD = textwrap.dedent("""\
    import json, resource, sys, time

    def cpu():
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    event = json.loads(sys.stdin.read())
    started = time.perf_counter()
    import app  # Lambda's init
    init_cpu, init_wall = cpu(), time.perf_counter() - started
    started = time.perf_counter()
    response = app.app(event, None)  # the handler: app.app
    click_wall = time.perf_counter() - started
    print(json.dumps({"init_cpu": init_cpu, "init_wall": init_wall, "click_cpu": cpu() - init_cpu,
                      "click_wall": click_wall, "status": response["statusCode"], "body": response["body"]}))
""")


def proxy_event(body: str, headers: dict[str, str]) -> dict[str, Any]:
    """API Gateway's proxy event for `POST /slack/interactions` (what the function receives)."""
    return {
        "resource": "/slack/interactions",
        "path": "/slack/interactions",
        "httpMethod": "POST",
        "headers": headers,
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": "/slack/interactions",
            "httpMethod": "POST",
            "path": "/api/slack/interactions",
            "stage": "api",
            "requestId": "bench",
            "identity": {"sourceIp": "203.0.113.9"},
        },
        "body": body,
        "isBase64Encoded": False,
    }


def api_environment(template: Path) -> dict[str, str]:
    """The REST API function's environment variables, as the package's template sets them."""
    resources = json.loads(template.read_text())["Resources"]
    [api] = [
        res
        for res in resources.values()
        if res["Type"] == "AWS::Serverless::Function" and res["Properties"]["Handler"] == "app.app"
    ]
    memory = int(api["Properties"]["MemorySize"])
    variables = api["Properties"].get("Environment", {}).get("Variables", {})
    return {**{name: str(value) for name, value in variables.items()}, "@memory": str(memory)}


def _stage(aws: Any, slack: Any, playbooks: list[str]) -> Any:
    """What the dev stage's click needs in moto (as bootstrap and deploy leave it); the parent's
    runtime of the stage, which opens the proposals."""
    import boto3
    import requests

    from chalicelib.runtime import Runtime
    from trailguard.bootstrap import ensure_key, ensure_table

    requests.post(f"{aws.url}/moto-api/config", json={"lambda": {"use_docker": False}}, timeout=10)
    ensure_table(boto3.client("dynamodb"), f"trailguard-{STAGE}")
    ensure_key(boto3.client("kms"), f"alias/trailguard-{STAGE}-integrity")
    ssm = boto3.client("ssm")
    ssm.put_parameter(Name=f"/trailguard/{STAGE}/slack-signing-secret", Value=SECRET, Type="SecureString")
    ssm.put_parameter(Name=f"/trailguard/{STAGE}/slack-bot-token", Value=slack.token, Type="SecureString")
    role = boto3.client("iam").create_role(RoleName="bench-worker", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    code = _zip({"app.py": "def slack_worker(event, context):\n    return event\n"})
    boto3.client("lambda").create_function(
        FunctionName=f"trailguard-{STAGE}-slack_worker",
        Runtime="python3.13",
        Role=role,
        Handler="app.slack_worker",
        Code={"ZipFile": code},
    )
    return Runtime.from_environment()


def _zip(files: dict[str, str]) -> bytes:
    import io

    data = io.BytesIO()
    with zipfile.ZipFile(data, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return data.getvalue()


def _propose(runtime: Any, number: int) -> str:
    """A fresh proposal; the value of the Approve button on its message (`inc-…:N`)."""
    from chalicelib.events.record import CloudTrailEvent

    record = bench_record("StopLogging")
    record["eventID"] = f"bench-cold-click-{number}"
    _, outcomes = runtime.responder.respond(CloudTrailEvent.from_record(record))
    [incident] = [o.incident for o in outcomes if o.incident.playbook_id == "bench-approve"]  # the bundled one acts
    return f"{incident.id}:{incident.decisions}"


def run(runs: int = RUNS) -> dict:
    from bench.lambda_cold import package
    from trailguard.local.aws import LocalAws, process_environment
    from trailguard.local.slack import SlackStub, signed_click

    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        archive = package(work / "out")
        task = work / "task"
        with zipfile.ZipFile(archive) as zipped:
            zipped.extractall(task)
        lambda_env = api_environment(work / "out" / "sam.json")
        memory = int(lambda_env.pop("@memory"))
        bench_playbooks = work / "bench-playbooks"
        bench_playbooks.mkdir()
        (bench_playbooks / "bench.yaml").write_text(PLAYBOOK)
        with LocalAws() as aws, SlackStub() as slack:
            stage_env = {
                **lambda_env,
                **aws.environment(),
                "TRAILGUARD_SLACK_APPROVERS": APPROVER,  # the dev stage names none: nobody could approve
                "TRAILGUARD_SLACK_BASE_URL": slack.base_url,
                "TRAILGUARD_LOG_LEVEL": "WARNING",
            }
            parent_env = {
                **stage_env,
                "TRAILGUARD_PLAYBOOKS": os.pathsep.join([str(ROOT / "playbooks"), str(bench_playbooks)]),
            }
            child_env = {
                **environment(),
                **stage_env,
                "TRAILGUARD_PLAYBOOKS": os.pathsep.join([str(task / "playbooks"), str(bench_playbooks)]),
                "AWS_LAMBDA_FUNCTION_NAME": API_FUNCTION,
                "PYTHONPATH": str(task),
                "PYTHONDONTWRITEBYTECODE": "1",
            }
            with process_environment(parent_env):
                runtime = _stage(aws, slack, parent_env["TRAILGUARD_PLAYBOOKS"].split(os.pathsep))
                values = [_propose(runtime, number) for number in range(runs + 1)]
            measured = []
            for number, value in enumerate(values):
                body, headers = signed_click("approve", value, user=APPROVER, secret=SECRET)
                child = subprocess.run(
                    [PYTHON, "-c", CHILD],
                    input=json.dumps(proxy_event(body, headers)),
                    cwd=task,
                    env=child_env,
                    capture_output=True,
                    text=True,
                    check=True,
                )
                result = json.loads(child.stdout.splitlines()[-1])
                assert result["status"] == 200, result
                if number > 0:  # the first one warms the file cache
                    measured.append(result)
            with process_environment(parent_env):
                states = {runtime.incidents.get(value.split(":")[0]).state.value for value in values}
            assert states == {"remediating"}, states  # approved, and handed to the worker
    share = memory * VCPU_PER_MB
    figures = {
        key: statistics.median(r[key] for r in measured) for key in ("init_cpu", "init_wall", "click_cpu", "click_wall")
    }
    waits = max(0.0, figures["click_wall"] - figures["click_cpu"])
    estimate = (figures["init_cpu"] + figures["click_cpu"]) / share + waits
    full_init = figures["init_cpu"] + figures["click_cpu"] / share + waits
    return {
        "runs": runs,
        "memory_mb": memory,
        "vcpu": round(share, 3),
        "cpu_ms": {"init": round(figures["init_cpu"] * 1000, 1), "click": round(figures["click_cpu"] * 1000, 1)},
        "wall_here_ms": {
            "init": round(figures["init_wall"] * 1000, 1),
            "click": round(figures["click_wall"] * 1000, 1),
        },
        "waits_ms": round(waits * 1000, 1),
        "estimated_s": round(estimate, 2),
        "estimated_full_cpu_init_s": round(full_init, 2),
        "estimated_at_256mb_s": round((figures["init_cpu"] + figures["click_cpu"]) / (256 * VCPU_PER_MB) + waits, 2),
        "target_s": TARGET_S,
        "met": estimate <= TARGET_S,
        "python": sys.version.split()[0],
    }


def section(result: dict) -> str:
    """docs/benchmarks.md's section (issue 24)."""
    cpu, wall = result["cpu_ms"], result["wall_here_ms"]
    return f"""## The first Slack click on a cold container

`python -m bench.slack_cold` (part of `make bench`): the dev stage's package (`chalice package`
after `python -m trailguard.bytecode`) unpacked; each click a fresh interpreter over it with the
REST API function's environment from `sam.json` and `AWS_LAMBDA_FUNCTION_NAME={API_FUNCTION}`, bytecode
writing off: `import app` (Lambda's init, `Runtime.prepare` included: slack_sdk and the signing
secret from SSM), then `app.app` with API Gateway's proxy event of one Approve signed with
slack_sdk's SignatureVerifier, on a fresh proposal; moto's server for DynamoDB, SSM and the
worker's asynchronous invoke, the local Slack stub. Medians of {result["runs"]}, CPU of the child
(from its start):

| | CPU ms | wall ms here |
|---|---|---|
| init (`import app`, interpreter start included) | {cpu["init"]} | {wall["init"]} |
| the click (`app.app`: signature, incident read, approver, conditional write, invoke) \
| {cpu["click"]} | {wall["click"]} |

Estimated at the endpoint's {result["memory_mb"]:,} MB ({result["vcpu"]} vCPU: one vCPU at 1,769 MB), init
and click both at that share plus the click's waits measured here ({result["waits_ms"]} ms: wall minus CPU):
**{result["estimated_s"]} s** from the click to the answer, against a target of at most {result["target_s"]} s:
{"met" if result["met"] else "**not met**"} (Slack gives up at 3 s). If Lambda runs the init at a full vCPU,
{result["estimated_full_cpu_init_s"]} s. At 256 MB, init at its share, about {result["estimated_at_256mb_s"]} s.

Before (issue 24, from in-process figures): an estimated 2.3-2.6 s at 256 MB. The init builds
the endpoint's clients (DynamoDB, Lambda, SSM), reads the signing secret and imports slack_sdk
(`Runtime.prepare`); those clients no longer ask STS who they are (`AwsClients.client`: trailguard's
own account needs no name), which took an STS client and a GetCallerIdentity off the path. What is
left is mostly boto3 (Lambda's runtime), botocore's service models and slack_sdk."""


if __name__ == "__main__":
    measured = run(int(sys.argv[1]) if len(sys.argv) > 1 else RUNS)
    print(json.dumps(measured, indent=2))
    print(section(measured))
