"""Every kind of playbook mistake is refused at load, naming file, line, key and what was expected."""

from __future__ import annotations

import textwrap

import pytest

from chalicelib.events.record import CloudTrailEvent
from chalicelib.playbooks.catalog import Catalog, CatalogError
from chalicelib.playbooks.loader import PlaybookErrors, load_playbook, load_playbooks
from tests.conftest import record

pytestmark = pytest.mark.unit

VALID = """\
id: trail-stopped
title: Trail stopped
severity: critical
when:
  source: cloudtrail.amazonaws.com
  events: [StopLogging]
mode: auto
steps:
  - action: cloudtrail.start_logging
    with:
      trail: requestParameters.name
"""


def _write(tmp_path, text, name="playbook.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def _errors(tmp_path, text):
    path = _write(tmp_path, text)
    with pytest.raises(PlaybookErrors) as raised:
        load_playbook(path)
    return path, raised.value.errors


def _one_error(tmp_path, text):
    """The single mistake in `text`, checked to name its file and line (and key, if any)."""
    path, errors = _errors(tmp_path, text)
    assert len(errors) == 1, errors
    error = errors[0]
    assert error.file == str(path) and error.line is not None
    prefix = f"{path}:{error.line}: " + (f"{error.key}: " if error.key else "")
    assert str(error).startswith(prefix + error.problem)
    return path, error


def test_a_valid_playbook_loads_and_plans(tmp_path):
    playbook = load_playbook(_write(tmp_path, VALID))
    assert (playbook.id, playbook.mode, playbook.version, playbook.line) == ("trail-stopped", "auto", 1, 1)
    plan = playbook.plan(
        CloudTrailEvent.from_record(record("StopLogging", "cloudtrail.amazonaws.com", {"name": "main"}))
    )
    assert plan.to_dict() == {
        "playbook": "trail-stopped",
        "mode": "auto",
        "steps": [{"action": "cloudtrail.start_logging", "params": {"trail": "main"}}],
    }


def test_yaml_syntax_error(tmp_path):
    path, error = _one_error(tmp_path, VALID.replace("events: [StopLogging]", "events: [StopLogging"))
    assert error.file == str(path) and error.line in (6, 7)
    assert "YAML syntax error" in str(error)


def test_key_written_twice(tmp_path):
    path, error = _one_error(tmp_path, VALID + "mode: notify\n")
    assert str(error) == f"{path}:12: mode: the key 'mode' is written twice (first on line 7)"


def test_on_key_read_as_boolean(tmp_path):
    _path, error = _one_error(tmp_path, VALID.replace("when:", "on:"))
    assert error.line == 4
    assert "the key 'on' is read by YAML as true, not as text" in str(error)


def test_unknown_key_with_suggestion(tmp_path):
    _path, error = _one_error(tmp_path, VALID.replace("severity:", "severty:"))
    assert (error.line, error.key) == (3, "severty")
    assert error.problem == "unknown key 'severty'; did you mean 'severity'?"
    assert error.expected.startswith("one of: id, version, title, severity")


def test_unknown_key_in_a_step(tmp_path):
    path, error = _one_error(tmp_path, VALID.replace("    with:", "    wiht:"))
    assert str(error).startswith(f"{path}:10: steps[0].wiht: unknown key 'wiht'; did you mean 'with'?")


def test_missing_key(tmp_path):
    _path, error = _one_error(tmp_path, VALID.replace("severity: critical\n", ""))
    assert (error.line, error.key, error.problem) == (1, "severity", "missing key 'severity'")
    assert error.expected == "one of low, medium, high, critical"


def test_wrong_type(tmp_path):
    _path, error = _one_error(tmp_path, VALID.replace("events: [StopLogging]", "events: StopLogging"))
    assert (error.line, error.key, error.problem) == (6, "when.events", "is text")
    assert error.expected == "a list of eventNames, such as [StopLogging]"


def test_value_not_allowed(tmp_path):
    path, error = _one_error(tmp_path, VALID.replace("mode: auto", "mode: automatic"))
    assert str(error) == f"{path}:7: mode: 'automatic' is not allowed (expected one of auto, approve, notify, dry-run)"


def test_parameter_value_that_is_not_an_expression(tmp_path):
    _path, error = _one_error(tmp_path, VALID.replace("trail: requestParameters.name", "trail: 42"))
    assert (error.line, error.key, error.problem) == (11, "steps[0].with.trail", "is a number")
    assert "write a literal as 'text'" in error.expected


def test_unknown_action(tmp_path):
    _path, error = _one_error(tmp_path, VALID.replace("cloudtrail.start_logging", "cloudtrail.start_loging"))
    assert (error.line, error.key) == (9, "steps[0].action")
    assert error.problem == "unknown action 'cloudtrail.start_loging'; did you mean 'cloudtrail.start_logging'?"
    assert "kms.enable_key" in error.expected


def test_unknown_parameter(tmp_path):
    text = VALID.replace(
        "      trail: requestParameters.name", "      trail: requestParameters.name\n      trial: eventName"
    )
    path, error = _one_error(tmp_path, text)
    assert str(error) == (
        f"{path}:12: steps[0].with.trial: unknown parameter 'trial' for cloudtrail.start_logging; "
        "did you mean 'trail'? (expected one of: trail)"
    )


def test_missing_required_parameter(tmp_path):
    text = VALID.replace("    with:\n      trail: requestParameters.name\n", "")
    _path, error = _one_error(tmp_path, text)
    assert (error.line, error.key) == (9, "steps[0]")
    assert error.problem == "cloudtrail.start_logging needs the parameter 'trail'"


def test_jmespath_that_does_not_compile(tmp_path):
    _path, error = _one_error(tmp_path, VALID.replace("requestParameters.name", "requestParameters.["))
    assert (error.line, error.key) == (11, "steps[0].with.trail")
    assert "JMESPath syntax error at column" in error.problem


def test_condition_with_an_unknown_function_and_a_misspelt_field(tmp_path):
    text = VALID.replace(
        "  events: [StopLogging]\n",
        "  events: [StopLogging]\n  if: is_public(requestParameters)\n"
        "  unless: [userIdentity.userName == 'ci', usrIdentity.type == 'Root']\n",
    )
    _path, errors = _errors(tmp_path, text)
    assert [(e.line, e.key) for e in errors] == [(7, "when.if"), (8, "when.unless[1]")]
    assert "unknown function is_public()" in errors[0].problem
    assert "'usrIdentity' is not a field of a CloudTrail record; did you mean 'userIdentity'?" in errors[1].problem


def test_bare_true_condition_is_refused(tmp_path):
    _path, error = _one_error(
        tmp_path, VALID.replace("  events: [StopLogging]\n", "  events: [StopLogging]\n  if: 'true'\n")
    )
    assert error.key == "when.if" and "write the literal as `true`" in error.problem


def test_duplicate_id_across_files(tmp_path):
    first = _write(tmp_path, VALID, "a.yaml")
    second = _write(tmp_path, VALID, "b.yaml")
    playbooks, errors = load_playbooks([tmp_path])
    assert [p.path for p in playbooks] == [first]
    assert [str(e) for e in errors] == [
        f"{second}:1: id: the id 'trail-stopped' is already used by {first}:1 (expected an id no other playbook uses)"
    ]


def test_mode_and_steps_must_agree(tmp_path):
    _, error = _one_error(tmp_path, VALID.split("steps:")[0])
    assert (error.key, error.problem) == ("mode", "mode auto needs at least one step")
    _path, error = _one_error(tmp_path, VALID.replace("mode: auto", "mode: notify"))
    assert (error.key, error.problem) == ("steps", "mode notify runs no steps")


def test_a_file_that_is_not_a_mapping(tmp_path):
    _, error = _one_error(tmp_path, "- just\n- a list\n")
    assert error.problem == "a playbook is a mapping of keys, got a list"
    _path, error = _one_error(tmp_path, "")
    assert error.problem == "a playbook is a mapping of keys, got nothing (null)"


def test_bad_test_expectation(tmp_path):
    text = VALID + "tests:\n  - name: x\n    event: {}\n    expect: ignored\n"
    _path, error = _one_error(tmp_path, text)
    assert (error.line, error.key) == (15, "tests[0].expect")
    assert error.expected.startswith("ignore, or {mode: MODE")


def test_catalog_lists_every_mistake_of_every_file(tmp_path):
    _write(tmp_path, VALID.replace("mode: auto", "mode: sometimes"), "a.yaml")
    _write(tmp_path, VALID.replace("id: trail-stopped", "id: Trail Stopped"), "b.yaml")
    with pytest.raises(CatalogError) as raised:
        Catalog.load([tmp_path])
    message = str(raised.value)
    assert message.startswith("2 mistakes in the playbooks:")
    assert "a.yaml:7: mode: 'sometimes' is not allowed" in message
    assert "b.yaml:1: id: 'Trail Stopped' is not in the expected form" in message


def test_the_lambda_loads_playbooks_without_their_tests(tmp_path):
    """Inline tests are most of a playbook file and the Lambda never runs them."""
    from chalicelib.playbooks.catalog import Catalog

    (tmp_path / "p.yaml").write_text(
        "id: pb\ntitle: T\nseverity: low\nmode: notify\n"
        "when: {source: cloudtrail.amazonaws.com, events: [StopLogging]}\n"
        "tests:\n  - name: t\n    event: {eventName: StopLogging}\n    expect: ignore\n"
    )
    assert len(Catalog.load([tmp_path]).playbooks[0].tests) == 1
    assert Catalog.load([tmp_path], with_tests=False).playbooks[0].tests == ()


def test_slack_channel_and_approvers(tmp_path):
    playbook = load_playbook(
        _write(tmp_path, VALID + "slack: {channel: '#trail-owners', approvers: [U0123ABCD, S0SECURITY]}\n")
    )
    assert playbook.slack_channel == "#trail-owners" and playbook.approvers == ("U0123ABCD", "S0SECURITY")
    assert load_playbook(_write(tmp_path, VALID)).approvers == ()


def test_an_approver_named_by_name_is_refused(tmp_path):
    _, error = _one_error(tmp_path, VALID + "slack:\n  approvers: [alice]\n")
    assert error.line == 13 and error.key == "slack.approvers[0]" and "Slack user id" in str(error)


def test_a_tests_named_lists_are_checked_at_load(tmp_path):
    lists = "    named_lists:\n      trusted_organizations: [o-a1b2c3d4e5]\n"
    test = "tests:\n  - name: x\n" + lists + "    event: {}\n    expect: ignore\n"
    [loaded] = load_playbook(_write(tmp_path, VALID + test)).tests
    assert loaded.lists.get("trusted_organizations") == ["o-a1b2c3d4e5"] and loaded.lists.get("trusted_accounts") == []
    _, error = _one_error(tmp_path, VALID + test.replace("trusted_organizations", "trusted_organisations"))
    assert error.key == "tests[0].named_lists.trusted_organisations"
    assert "unknown key 'trusted_organisations'; did you mean 'trusted_organizations'?" in str(error)
    _, error = _one_error(tmp_path, VALID + test.replace("o-a1b2c3d4e5", '"o-a1b2c3d4e5\\n"'))
    assert error.key == "tests[0].named_lists.trusted_organizations[0]" and error.line == 15
    assert "is not in the expected form (expected AWS Organizations ids, such as o-a1b2c3d4e5)" in str(error)


def test_a_list_name_a_playbook_uses_is_checked_at_load(tmp_path):
    text = VALID.replace(
        "  events: [StopLogging]\n",
        "  events: [StopLogging]\n  if: contains(named_list('partners'), recipientAccountId)\n",
    )
    _, error = _one_error(tmp_path, text)
    assert error.key == "when.if" and "named_list(): no list is named 'partners'" in str(error)


INSTEAD = (
    VALID
    + """\
instead:
  - mode: notify
    if: "ends_with(userIdentity.sessionContext.sessionIssuer.arn || '', ':role/AWSControlTowerExecution')"
    because: Control Tower's own role
  - mode: approve
    if: "userIdentity.invokedBy == 'cloudformation.amazonaws.com'"
    because: a stack's own trail
"""
)


def _stop_logging(identity=None):
    fields = {"userIdentity": identity} if identity else {}
    return CloudTrailEvent.from_record(record("StopLogging", "cloudtrail.amazonaws.com", {"name": "main"}, **fields))


def test_instead_gives_the_first_lower_mode_whose_condition_holds_with_its_reason(tmp_path):
    playbook = load_playbook(_write(tmp_path, INSTEAD))
    plain = playbook.plan(_stop_logging())
    assert (plain.mode, plain.because, [s.action for s in plain.steps]) == ("auto", None, ["cloudtrail.start_logging"])
    stack = playbook.plan(_stop_logging({"type": "AssumedRole", "invokedBy": "cloudformation.amazonaws.com"}))
    assert (stack.mode, stack.because) == ("approve", "a stack's own trail")
    assert [s.action for s in stack.steps] == ["cloudtrail.start_logging"]
    tower = {
        "type": "AssumedRole",
        "invokedBy": "cloudformation.amazonaws.com",
        "sessionContext": {"sessionIssuer": {"arn": "arn:aws:iam::111122223333:role/AWSControlTowerExecution"}},
    }
    told = playbook.plan(_stop_logging(tower))
    assert (told.mode, told.steps) == ("notify", ())  # the first that holds; a notice runs no step


def test_instead_never_raises_a_mode(tmp_path):
    text = VALID.replace("mode: auto", "mode: approve") + (
        "instead:\n  - mode: approve\n    if: \"eventName == 'StopLogging'\"\n    because: same\n"
    )
    _, error = _one_error(tmp_path, text)
    assert error.key == "instead[0].mode" and "approve is not below the playbook's mode approve" in error.problem


def test_instead_needs_a_reason(tmp_path):
    text = VALID + "instead:\n  - mode: approve\n    if: \"eventName == 'StopLogging'\"\n"
    _, error = _one_error(tmp_path, text)
    assert "because" in str(error)


def test_a_step_given_no_target_is_not_planned(tmp_path):
    """DeleteFlowLogs naming no flow log (a shape not read) must not plan a restore of nothing,
    which would find nothing missing and report the flow logs safe."""
    from chalicelib.playbooks.plan import PlanError

    playbook = load_playbook(
        _write(
            tmp_path,
            """\
        id: flow-logs
        title: Flow logs deleted
        severity: high
        when:
          source: ec2.amazonaws.com
          events: [DeleteFlowLogs]
        mode: approve
        steps:
          - action: ec2.restore_flow_logs
            with: {flow_logs: flow_log_ids(requestParameters)}
        """,
        )
    )
    event = CloudTrailEvent.from_record(record("DeleteFlowLogs", "ec2.amazonaws.com", {"somethingElse": ["fl-1"]}))
    with pytest.raises(PlanError, match="'flow_logs' from 'flow_log_ids\\(requestParameters\\)' is an empty list"):
        playbook.plan(event)
