"""`make demo`: an attacker against a local AWS account, and trailguard answering.

Everything runs on this machine: AWS is moto's server on 127.0.0.1, Slack is the local
Slack Web API stub on 127.0.0.1, incidents are in a DynamoDB table of that local AWS, as
in a deployed stage. No AWS account, no Slack workspace, no network beyond loopback.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from trailguard import PROJECT
from trailguard.demo import scenario
from trailguard.demo.story import Outcome, Story

TABLE = "trailguard-demo"
INTEGRITY_KEY = "alias/trailguard-demo-integrity"
SIGNING_SECRET = "trailguard-demo-signing-secret"
DEFAULT_OUTPUT = PROJECT / "demo-output"


@contextlib.contextmanager
def local_world(aws_port: int = 0, slack_port: int = 0) -> Iterator[tuple[Any, Any, Any]]:
    """The local AWS and Slack, and the app configured as a deployed stage would be against them."""
    from trailguard.bootstrap import ensure_key, ensure_table
    from trailguard.local.app import container, running
    from trailguard.local.aws import LocalAws, process_environment
    from trailguard.local.slack import SlackStub

    with (
        LocalAws(port=aws_port, region=scenario.REGION) as local,
        SlackStub(port=slack_port) as slack,
        process_environment(local.environment()),
    ):
        ensure_table(local.client("dynamodb"), TABLE)
        ensure_key(local.client("kms"), INTEGRITY_KEY)  # as `bootstrap` makes it: the seal is real KMS
        if str(PROJECT) not in sys.path:
            sys.path.insert(0, str(PROJECT))
        import app as chalice_app

        level = logging.getLogger("trailguard").level
        stage = container(  # a fresh container, on the local AWS, telling the local Slack
            table=TABLE,
            integrity_key=INTEGRITY_KEY,
            slack_token=slack.token,
            slack_signing_secret=SIGNING_SECRET,
            slack_channel=scenario.CHANNEL,
            slack_approvers=frozenset({scenario.ON_CALL}),
            slack_base_url=slack.base_url,
            slack_worker=None,
            account_names={scenario.ACCOUNT: "demo"},
            switch_parameter="/trailguard/demo/switch",
            switch_seconds=0,  # the story pauses and resumes within a second
            own_role_names=frozenset({scenario.HEARTBEAT_ROLE}),  # the heartbeat's calls are its own
        )
        logging.getLogger("trailguard").setLevel(logging.ERROR)  # the story is told on stdout, not in JSON logs
        try:
            with running(stage):
                yield chalice_app, local, slack
        finally:
            logging.getLogger("trailguard").setLevel(level)


def play(output: Path = DEFAULT_OUTPUT, color: bool = False) -> Outcome:
    """Play the scenario and tell it on stdout; the outcome says whether everything ended as the story says."""
    with local_world() as (chalice_app, local, slack):
        return _tell(chalice_app, local, slack, output, color)


def _tell(chalice_app: Any, local: Any, slack: Any, output: Path, color: bool) -> Outcome:
    started = time.perf_counter()
    click.echo(click.style("trailguard demo", bold=True) if color else "trailguard demo", nl=False)
    click.echo(
        f": an attacker in a local AWS account (moto on {local.url}), Slack on a local stub "
        f"({slack.origin}); each call's CloudTrail event goes through the app's own Lambda handler\n"
    )
    story = Story(chalice_app, local, slack, SIGNING_SECRET, output, color)
    outcome = story.play()
    story.summary(time.perf_counter() - started)
    return outcome


def run_demo(output: Path = DEFAULT_OUTPUT, keep_running: bool = False) -> int:
    """`make demo`: 0 when every resource and incident ends as the story says, 1 otherwise."""
    color = sys.stdout.isatty()
    if not keep_running:
        return 0 if play(output, color).ok else 1
    from trailguard.demo.playground import keep_running as serve

    with local_world() as (chalice_app, local, slack):
        outcome = _tell(chalice_app, local, slack, output, color)
        return serve(chalice_app, local, slack, SIGNING_SECRET, TABLE, INTEGRITY_KEY, outcome, output)
