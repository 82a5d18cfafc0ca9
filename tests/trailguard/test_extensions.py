"""Extensions without a fork: an organization's own action (a module named in its settings
file) and playbook folder, a shipped playbook replaced and another disabled, deployed with
`chalice package`: the generated policy grants the action's declared permissions, the zip
holds the organization's files, and the packaged app loads them as Lambda would. Upgrading
trailguard touches none of those files."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.e2e

STAGE = "acme"

ACTION = '''\
"""Acme's own action: turn S3 versioning back on (a bucket's history is Acme's backup)."""

from typing import Any

from chalicelib.actions.base import Action, Parameter, register
from chalicelib.actions.s3 import BUCKET


@register
class EnableBucketVersioning(Action):
    """Turn versioning back on.

        - action: acme.enable_bucket_versioning
          with: {bucket: requestParameters.bucketName}
    """

    name = "acme.enable_bucket_versioning"
    service = "s3"
    permissions = {"s3:GetBucketVersioning": BUCKET, "s3:PutBucketVersioning": BUCKET}
    parameters = (Parameter("bucket", "string", "Name of the bucket."),)

    def snapshot(self) -> dict[str, Any]:
        status = self.client.get_bucket_versioning(Bucket=self.params["bucket"]).get("Status", "Off")
        return {"Bucket": self.params["bucket"], "Status": status}

    def check(self, state: Any) -> bool:
        return state["Status"] == "Enabled"

    def apply(self, state: Any) -> None:
        self.client.put_bucket_versioning(
            Bucket=self.params["bucket"], VersioningConfiguration={"Status": "Enabled"}
        )

    def restore(self, state: Any) -> None:
        status = "Suspended" if state["Status"] != "Enabled" else "Enabled"
        self.client.put_bucket_versioning(Bucket=self.params["bucket"], VersioningConfiguration={"Status": status})
'''

PLAYBOOK = """\
id: acme-s3-versioning-suspended
title: Bucket versioning suspended
severity: high
when:
  source: s3.amazonaws.com
  events: [PutBucketVersioning]
  if: requestParameters.VersioningConfiguration.Status == 'Suspended'
mode: auto
steps:
  - action: acme.enable_bucket_versioning
    with: {bucket: requestParameters.bucketName}
"""

REPLACEMENT = """\
id: console-login-without-mfa
title: Console login without MFA (Acme's version)
severity: low
when:
  source: signin.amazonaws.com
  events: [ConsoleLogin]
  if: additionalEventData.MFAUsed == 'No'
mode: notify
"""

SETTINGS = """\
playbooks:
  folders: [acme/playbooks]
  disabled: [ec2-serial-console-enabled]
actions: [acme.actions]
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """The project as an organization keeps it: trailguard's files untouched, its own beside them."""
    to = tmp_path_factory.mktemp("acme")
    for name in ("app.py", "requirements.txt"):
        shutil.copy(ROOT / name, to / name)
    for name in ("chalicelib", "trailguard", "playbooks", "settings"):
        shutil.copytree(ROOT / name, to / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "vendor", to / "vendor", symlinks=True)
    shutil.copytree(ROOT / ".chalice", to / ".chalice", ignore=shutil.ignore_patterns("deployed", "deployments"))
    (to / "deploy").mkdir()
    # the organization's own files: nothing of trailguard's is edited but config.json's new stage
    (to / "acme" / "playbooks").mkdir(parents=True)
    (to / "acme" / "__init__.py").write_text("")
    (to / "acme" / "actions.py").write_text(ACTION)
    (to / "acme" / "playbooks" / "s3-versioning-suspended.yaml").write_text(PLAYBOOK)
    (to / "acme" / "playbooks" / "console-login-without-mfa.yaml").write_text(REPLACEMENT)
    (to / "vendor" / "acme").symlink_to("../acme")
    (to / "settings" / f"{STAGE}.yaml").write_text(SETTINGS)
    config = json.loads((to / ".chalice" / "config.json").read_text())
    config["stages"][STAGE] = {
        "api_gateway_stage": "api",
        "iam_policy_file": f"policy-{STAGE}.json",
        "environment_variables": {"TRAILGUARD_STAGE": STAGE, "TRAILGUARD_SLACK_CHANNEL": "#acme-security"},
        "lambda_functions": {"api_handler": {"iam_policy_file": f"policy-{STAGE}-api.json"}},
    }
    (to / ".chalice" / "config.json").write_text(json.dumps(config, indent=2))
    return to


def _run(project: Path, *command: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    env.update(AWS_DEFAULT_REGION="us-east-1", PYTHONPATH=str(project))
    return subprocess.run(command, cwd=project, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def package(project) -> Path:
    written = _run(project, sys.executable, "-m", "trailguard", "policy", "--stage", STAGE, "--write")
    assert written.returncode == 0, written.stdout + written.stderr
    chalice = Path(sys.executable).parent / "chalice"
    out = project / "out"
    merge = f"deploy/merge-{STAGE}.json"
    packaged = _run(project, str(chalice), "package", "--stage", STAGE, "--merge-template", merge, str(out))
    assert packaged.returncode == 0, packaged.stdout + packaged.stderr
    return out


def test_the_organizations_action_feeds_the_generated_policies(project, package):
    acting = json.loads((project / ".chalice" / f"policy-{STAGE}.json").read_text())
    bucket_statement = next(s for s in acting["Statement"] if s["Sid"] == "RemediateBucket")
    assert {"s3:GetBucketVersioning", "s3:PutBucketVersioning"} <= set(bucket_statement["Action"])
    member = json.loads((project / "deploy" / f"member-{STAGE}.json").read_text())
    remediate = member["Resources"]["MemberRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    assert any("s3:PutBucketVersioning" in s["Action"] for s in remediate)
    rules = [r for r in member["Resources"].values() if r["Type"] == "AWS::Events::Rule"]
    names = [
        n
        for r in rules
        for group in r["Properties"]["EventPattern"]["detail"].get("$or", [])
        for n in group["eventName"]
    ]
    assert "PutBucketVersioning" in names and "EnableSerialConsoleAccess" not in names  # disabled


def test_the_zip_holds_the_organizations_files_and_the_functions_their_policy(package):
    names = set(zipfile.ZipFile(package / "deployment.zip").namelist())
    assert {
        "acme/actions.py",
        "acme/playbooks/s3-versioning-suspended.yaml",
        "acme/playbooks/console-login-without-mfa.yaml",
        f"settings/{STAGE}.yaml",
        "playbooks/console-login-without-mfa.yaml",
    } <= names
    template = json.loads((package / "sam.json").read_text())
    functions = {
        res["Properties"]["FunctionName"]: res
        for res in template["Resources"].values()
        if res["Type"] == "AWS::Serverless::Function"
    }
    assert f"trailguard-{STAGE}-respond_to_cloudtrail" in functions
    patterns = [
        event["Properties"]["Pattern"]
        for fn in functions.values()
        for event in fn["Properties"].get("Events", {}).values()
        if event["Type"] == "CloudWatchEvent"
    ]
    assert "PutBucketVersioning" in json.dumps(patterns)


def test_the_packaged_app_loads_them_as_lambda_would(package, tmp_path):
    unpacked = tmp_path / "task"
    zipfile.ZipFile(package / "deployment.zip").extractall(unpacked)
    probe = textwrap.dedent(
        """\
        import app
        catalog = app.runtime.catalog
        print(sorted(p.id for p in catalog.playbooks if p.id.startswith(("acme", "console", "ec2-serial"))))
        print(catalog.get("console-login-without-mfa").title)
        print(sorted(catalog.overrides))
        """
    )
    env = {
        "PATH": os.environ["PATH"],
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_LAMBDA_FUNCTION_NAME": f"trailguard-{STAGE}-respond_to_cloudtrail",
    }
    result = subprocess.run([sys.executable, "-c", probe], cwd=unpacked, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    # Without credentials here, the clients Lambda's init builds (Runtime.prepare) are left
    # for first use, which a JSON log line says; the probe's own lines follow.
    assert [line for line in result.stdout.splitlines() if not line.startswith("{")] == [
        "['acme-s3-versioning-suspended', 'console-login-without-mfa']",
        "Console login without MFA (Acme's version)",
        "['console-login-without-mfa']",
    ]


def test_a_bad_organization_playbook_stops_chalice_package_with_one_line_per_mistake(project, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(project, broken, symlinks=True, ignore=shutil.ignore_patterns("out"))
    playbook = broken / "acme" / "playbooks" / "s3-versioning-suspended.yaml"
    playbook.write_text(PLAYBOOK.replace("with: {bucket:", "with: {buckett:"))
    chalice = Path(sys.executable).parent / "chalice"
    result = _run(broken, str(chalice), "package", "--stage", STAGE, str(tmp_path / "out"))
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "Traceback" not in output
    assert "trailguard cannot start: 2 mistakes in the playbooks:" in output
    assert "unknown parameter 'buckett' for acme.enable_bucket_versioning; did you mean 'bucket'?" in output
