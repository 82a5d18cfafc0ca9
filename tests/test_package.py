"""`chalice package`: the deployment package holds every playbook, and the rules are the catalog's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from chalicelib.catalog import Catalog
from chalicelib.runtime import Runtime
from chalicelib.settings import Settings
from tests.conftest import PLAYBOOKS, ROOT


@pytest.fixture(scope="module")
def package(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("package") / "out"
    chalice = Path(sys.executable).parent / "chalice"
    env = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1"}
    result = subprocess.run([str(chalice), "package", "--stage", "dev", str(out)], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return out


def test_zip_holds_the_app_the_library_and_every_playbook(package):
    names = set(zipfile.ZipFile(package / "deployment.zip").namelist())
    assert "app.py" in names and "chalicelib/runtime.py" in names and "chalicelib/actions/kms.py" in names
    playbooks = {f"playbooks/{p.name}" for p in PLAYBOOKS.glob("*.yaml")}
    assert len(playbooks) >= 4
    assert playbooks <= names
    assert {"yaml/__init__.py", "fastjsonschema/__init__.py", "jmespath/__init__.py", "slack_sdk/__init__.py"} <= names


def test_template_rules_are_the_catalogs_patterns(package):
    template = json.loads((package / "sam.json").read_text())
    functions = {name: res for name, res in template["Resources"].items() if res["Type"] == "AWS::Serverless::Function"}
    patterns = [event["Properties"]["Pattern"] for fn in functions.values()
                for event in fn["Properties"].get("Events", {}).values() if event["Type"] == "CloudWatchEvent"]
    expected = [rule.pattern for rule in Runtime(Settings(), Catalog.load([PLAYBOOKS])).eventbridge_rules()]
    assert patterns == expected
    handlers = {fn["Properties"]["Handler"] for fn in functions.values()}
    # the rules' handler, the sweep, the Slack route (the API's handler) and the click worker
    assert handlers == {"app.respond_to_cloudtrail", "app.posture_sweep", "app.app", "app.slack_worker"}
    assert all(fn["Properties"]["Runtime"] == "python3.11" for fn in functions.values())


def test_the_role_policy_is_the_committed_least_privilege_file(package):
    template = json.loads((package / "sam.json").read_text())
    roles = [res for res in template["Resources"].values() if res["Type"] == "AWS::IAM::Role"]
    committed = json.loads((ROOT / ".chalice" / "policy-dev.json").read_text())
    assert roles and all(role["Properties"]["Policies"][0]["PolicyDocument"] == committed for role in roles)
    for statement in committed["Statement"]:
        actions = [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]
        assert not any(a == "*" or a.endswith(":*") for a in actions)
        if "iam:PassRole" in actions:  # passing a role only, and only to the services named
            assert actions == ["iam:PassRole"] and "iam:PassedToService" in statement["Condition"]["StringEquals"]
