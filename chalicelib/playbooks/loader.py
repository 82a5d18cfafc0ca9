"""Loading playbooks: read the YAML, check it, compile it into `Playbook`s.

A playbook is refused at load (by `validate`, by `chalice package`/`deploy`, which import
the app) with its file, line, key and what was expected, never at 3 a.m. inside Lambda.
Checks happen in two passes: the JSON Schema (shapes and keys, shared with editors),
then what a schema cannot know (actions and their parameters, JMESPath expressions).
"""

from __future__ import annotations

import datetime as dt
import difflib
import gc
import marshal
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

from chalicelib import named_lists
from chalicelib.actions import registered_actions
from chalicelib.events.finding import KINDS
from chalicelib.named_lists import NamedLists
from chalicelib.playbooks import precompiled
from chalicelib.playbooks.expressions import CLOUDTRAIL, FIELDS_BY_SOURCE, Expression, ExpressionError
from chalicelib.playbooks.playbook import Instead, Playbook, PlaybookTest, Step
from chalicelib.playbooks.schema import MODE_ORDER, validator
from chalicelib.playbooks.yamlfile import YamlSyntaxError, format_path, line_of, load_yaml

PLAYBOOK_SUFFIXES = (".yaml", ".yml")


class FileMistake(ValueError):
    """A mistake in a YAML file trailguard reads (a playbook, the organization settings file):
    where it is (file, line, key), what is wrong, what was expected."""

    def __init__(
        self,
        file: str,
        line: int | None,
        key: str | None,
        problem: str,
        expected: str | None = None,
    ) -> None:
        self.file = file
        self.line = line
        self.key = key
        self.problem = problem
        self.expected = expected
        place = f"{file}:{line}" if line else file
        text = f"{place}: {key}: {problem}" if key else f"{place}: {problem}"
        super().__init__(f"{text} (expected {expected})" if expected else text)


class PlaybookError(FileMistake):
    """A mistake in a playbook."""


def iter_playbook_files(paths: Iterable[str | os.PathLike[str]]) -> Iterator[Path]:
    """Playbook files under `paths` (folders searched recursively, without following links
    to folders), in a stable order: by their parts' names."""
    return (Path(name) for name in _playbook_file_names(paths))


def _playbook_file_names(paths: Iterable[str | os.PathLike[str]]) -> Iterator[str]:
    """`iter_playbook_files` as the names the system gave (turning a `Path` back into text
    costs more than reading a small file, a thousand times at a cold start)."""
    for given in paths:
        name = str(Path(given))  # as `Path` writes it (`./a//b/` -> `a/b`), once per folder
        if os.path.isdir(name):
            found: list[tuple[tuple[str, ...], str]] = []
            _find_playbooks(name, (), found)
            yield from (full for _, full in sorted(found))
        else:
            yield name


def _find_playbooks(folder: str, parts: tuple[str, ...], found: list[tuple[tuple[str, ...], str]]) -> None:
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                _find_playbooks(entry.path, (*parts, entry.name), found)
            elif os.path.splitext(entry.name)[1] in PLAYBOOK_SUFFIXES and entry.is_file():
                found.append(((*parts, entry.name), entry.path))


def load_playbooks(
    paths: Iterable[str | os.PathLike[str]], with_tests: bool = True
) -> tuple[list[Playbook], list[PlaybookError]]:
    """Every playbook under `paths`, and every mistake found in them (ids must be unique).
    Without tests (the Lambda), from the precompiled catalog where it holds the file."""
    collecting = gc.isenabled()
    gc.disable()  # a thousand playbooks are tens of thousands of new objects that all live on:
    try:  # the collector's passes over them at a cold start would find nothing to free
        return _load_playbooks(paths, with_tests)
    finally:
        if collecting:
            gc.enable()


def _load_playbooks(
    paths: Iterable[str | os.PathLike[str]], with_tests: bool
) -> tuple[list[Playbook], list[PlaybookError]]:
    playbooks: list[Playbook] = []
    errors: list[PlaybookError] = []
    seen: dict[str, Playbook] = {}
    shipped = None if with_tests else precompiled.shipped()
    remembered = None if with_tests else precompiled.remembered()
    for name in _playbook_file_names(paths):
        try:
            playbook = load_playbook(name, with_tests, shipped, remembered)
        except PlaybookErrors as problems:
            errors.extend(problems.errors)
            continue
        if playbook.id in seen:
            errors.append(
                PlaybookError(
                    name,
                    playbook.line,
                    "id",
                    f"the id {playbook.id!r} is already used by {seen[playbook.id].location}",
                    "an id no other playbook uses",
                )
            )
            continue
        seen[playbook.id] = playbook
        playbooks.append(playbook)
    if remembered is not None:
        remembered.save()
    return playbooks, errors


class PlaybookErrors(ValueError):
    """All the mistakes found in one playbook file."""

    def __init__(self, errors: Sequence[PlaybookError]) -> None:
        self.errors = list(errors)
        super().__init__("\n".join(str(error) for error in self.errors))


def load_playbook(
    path: str | Path,
    with_tests: bool = True,
    catalog: precompiled.Precompiled | None = None,
    remembered: precompiled.Remembered | None = None,
) -> Playbook:
    """Load, check and compile one playbook file; PlaybookErrors lists every mistake.

    Without tests (the Lambda, which never runs them) the `tests:` key is skipped, which
    makes loading several times faster; `validate` and `test` check them. A file `catalog`
    or `remembered` holds (precompiled from these very bytes, by this code) skips the YAML,
    the schema and the expressions' parsing; the rest is checked as always. A file loaded
    the YAML way is kept in `remembered` for next time."""
    name = path if isinstance(path, str) else str(path)
    path = Path(name)
    try:
        data = precompiled.read_file(name)
    except OSError as error:
        raise PlaybookErrors([PlaybookError(name, None, None, f"cannot read the file: {error}")]) from None
    if with_tests or (catalog is None and remembered is None):
        return _Compiler(name, path, read_playbook(name, data, with_tests)).compile()
    key = precompiled.file_key(data)
    for source in (catalog, remembered):
        entry = source.find(key) if source is not None else None
        if entry is not None:
            try:
                return _Compiler(name, path, entry.document, entry.trees, entry.line).compile()
            except PlaybookErrors:
                break  # the code around it changed (an action gone): the YAML way says where
    compiler = _Compiler(name, path, read_playbook(name, data, with_tests))
    playbook = compiler.compile()
    if remembered is not None:
        try:
            remembered.keep(key, compiler.entry(playbook))
        except ValueError:
            pass  # YAML gave what marshal cannot keep (a date): loaded from its YAML each time
    return playbook


def precompile(path: Path, data: bytes) -> precompiled.Entry:
    """What the precompiled catalog keeps of a playbook file (`data`, its bytes) that loads
    without a mistake (PlaybookErrors otherwise), as the Lambda loads it: without its tests."""
    compiler = _Compiler(str(path), path, read_playbook(str(path), data, with_tests=False))
    return compiler.entry(compiler.compile())


def read_playbook(name: str, data: bytes, with_tests: bool = True) -> Any:
    """A playbook file's document, valid against the schema (`tests:` left out without tests)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise PlaybookErrors([PlaybookError(name, None, None, f"cannot read the file: {error}")]) from None
    try:
        document = load_yaml(text, frozenset() if with_tests else frozenset({"tests"}))
    except YamlSyntaxError as error:
        raise PlaybookErrors([PlaybookError(name, error.line, error.key, error.problem)]) from None
    schema_error = _schema_error(name, document)
    if schema_error:
        raise PlaybookErrors([schema_error])
    return document


def _schema_error(name: str, document: Any) -> PlaybookError | None:
    import fastjsonschema

    try:
        validator()(document)
    except fastjsonschema.JsonSchemaValueException as error:
        return _explain(name, document, error)
    return None


def schema_mistake(
    name: str, document: Any, check: Any, mistake: type[FileMistake], whole: str, keys: str
) -> FileMistake | None:
    """The first mistake `check` (a generated schema validator) finds in `document`, explained
    as a playbook's are (file, line, key, did-you-mean); `whole` and `keys` say what the
    document must be when it is not a mapping at all."""
    import fastjsonschema

    try:
        check(document)
    except fastjsonschema.JsonSchemaValueException as error:
        return explain_schema_error(name, document, error, mistake, whole, keys)
    return None


def _document_path(document: Any, raw: Sequence[str]) -> list[str | int]:
    """fastjsonschema's path (`['data', 'steps', '0']`) with list indexes as numbers."""
    path: list[str | int] = []
    node = document
    for part in raw[1:]:
        if isinstance(node, list) and part.isdigit():
            path.append(int(part))
            node = node[int(part)] if int(part) < len(node) else None
        else:
            path.append(part)
            node = node.get(part) if isinstance(node, dict) else None
    return path


def _type_name(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    for kind, name in (
        (bool, "true/false"),
        (dict, "a mapping"),
        (list, "a list"),
        (str, "text"),
        (int, "a number"),
        (float, "a number"),
    ):
        if isinstance(value, kind):
            return name
    return type(value).__name__


def did_you_mean(word: str, choices: Sequence[str]) -> str:
    """`; did you mean 'x'?` for the closest of `choices`, or nothing."""
    return _did_you_mean(word, choices)


def _did_you_mean(word: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def _unknown_key(definition: dict[str, Any], value: Any) -> str | None:
    if definition.get("additionalProperties") is not False or not isinstance(value, dict):
        return None
    allowed = definition.get("properties", {})
    return next((key for key in value if key not in allowed), None)


def _explain(name: str, document: Any, error: Any) -> PlaybookError:
    """Turn a schema violation into a message a playbook author can act on."""
    mistake = explain_schema_error(
        name,
        document,
        error,
        PlaybookError,
        "a playbook is a mapping of keys",
        "keys id, title, severity, when, mode, steps",
    )
    assert isinstance(mistake, PlaybookError)
    return mistake


def explain_schema_error(
    name: str, document: Any, error: Any, mistake: type[FileMistake], whole: str, keys: str
) -> FileMistake:
    """Turn a schema violation into a message the file's author can act on."""
    path = _document_path(document, error.path)
    definition = error.definition if isinstance(error.definition, dict) else {}
    expected = definition.get("description")
    value = error.value
    rule = error.rule
    if not path and not isinstance(document, dict):
        return mistake(name, 1, None, f"{whole}, got {_type_name(document)}", keys)
    unknown = _unknown_key(definition, value) if rule in ("additionalProperties", "required") else None
    if unknown is not None:
        # Checked before `required`: a misspelt key is also a missing one, and the typo is the news.
        allowed = list(definition.get("properties", {}))
        path = [*path, unknown]
        return mistake(
            name,
            line_of(document, path),
            format_path(path),
            f"unknown key {unknown!r}{_did_you_mean(unknown, allowed)}",
            "one of: " + ", ".join(allowed),
        )
    if rule == "propertyNames" and isinstance(value, dict):
        pattern = re.compile(definition.get("propertyNames", {}).get("pattern", ".*"))
        wrong = next((key for key in value if not pattern.search(str(key))), None)
        if wrong is not None:
            return mistake(
                name,
                line_of(document, [*path, wrong]),
                format_path(path),
                f"{wrong!r} is not in the expected form",
                expected,
            )
    if rule == "required" and isinstance(value, dict):
        missing = next(key for key in definition["required"] if key not in value)
        described = definition.get("properties", {}).get(missing, {}).get("description")
        return mistake(
            name, line_of(document, path), format_path([*path, missing]), f"missing key {missing!r}", described
        )
    problems = {
        "type": f"is {_type_name(value)}",
        "enum": f"{value!r} is not allowed",
        "const": f"{value!r} is not allowed",
        "pattern": f"{value!r} is not in the expected form",
        "anyOf": f"{value!r} is not allowed here"
        if not isinstance(value, (dict, list))
        else f"{_type_name(value)} is not allowed here",
        "minItems": "must not be empty",
        "minLength": "must not be empty",
        "uniqueItems": "lists the same item twice",
    }
    problem = problems.get(rule, error.message.replace("data.", "").replace("data ", ""))
    if rule == "type" and not expected:
        expected = f"{definition.get('type')}"
    return mistake(name, line_of(document, path), format_path(path) or None, problem, expected)


DEFAULT_APPROVAL_TIMEOUT = "24h"
_UNITS = {"m": 60, "h": 3600, "d": 86400}
_EVENT_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


@cache
def _duration(text: str) -> dt.timedelta:
    """`30m`, `4h`, `2d` (the schema has checked the shape)."""
    return dt.timedelta(seconds=int(text[:-1]) * _UNITS[text[-1]])


class _Compiler:
    """Second pass over a schema-valid document: actions, parameters, expressions."""

    def __init__(
        self,
        name: str,
        path: Path,
        document: dict[str, Any],
        trees: Mapping[str, bytes] | None = None,
        line: int | None = None,
    ) -> None:
        """`trees`: the expressions' parsed trees by text, parsed and checked before, and
        `line`, the line of its id (the precompiled catalog); every other expression is
        parsed and checked here."""
        self.name = name
        self.path = path
        self.document = document
        self.trees = trees or {}
        self.line = line if line is not None else line_of(document, ["id"])
        self.errors: list[PlaybookError] = []
        self.expressions: dict[str, Expression] = {}
        """Every expression compiled, by its text (what the precompiled catalog keeps)."""

    def entry(self, playbook: Playbook) -> precompiled.Entry:
        """What a precompiled catalog keeps of the playbook this compiled."""
        trees = {text: marshal.dumps(precompiled.plain(e.tree)) for text, e in self.expressions.items()}
        return precompiled.Entry(precompiled.plain(self.document), trees, playbook.line)

    def error(self, at: Sequence[str | int], problem: str, expected: str | None = None) -> None:
        self.errors.append(PlaybookError(self.name, line_of(self.document, at), format_path(at), problem, expected))

    def expression(self, at: Sequence[str | int], text: str) -> Expression | None:
        tree = self.trees.get(text)
        if tree is not None:
            expression = self.expressions[text] = Expression.checked(text, tree)
            return expression
        fields = FIELDS_BY_SOURCE.get(self.document["when"]["source"], CLOUDTRAIL)
        try:
            expression = self.expressions[text] = Expression(text, fields)
            return expression
        except ExpressionError as problem:
            self.error(at, str(problem), f"a JMESPath expression over {fields.what}")
            return None

    def check_events(self, when: Mapping[str, Any]) -> None:
        """CloudTrail eventNames are words; a finding's names are the detector's own (a
        GuardDuty type such as `UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS`)."""
        if when["source"] in KINDS:
            return
        for index, name in enumerate(when["events"]):
            if not _EVENT_NAME.fullmatch(name):
                self.error(
                    ["when", "events", index], f"{name!r} is not an eventName", "an eventName, such as StopLogging"
                )

    def compile(self) -> Playbook:
        doc = self.document
        when = doc["when"]
        self.check_events(when)
        condition = self.expression(["when", "if"], when["if"]) if "if" in when else None
        unless = when.get("unless", [])
        if isinstance(unless, str):
            exclusions = [self.expression(["when", "unless"], unless)]
        else:
            exclusions = [self.expression(["when", "unless", i], text) for i, text in enumerate(unless)]
        steps = [self.step(i, raw) for i, raw in enumerate(doc.get("steps", []))]
        containment = [self.step(i, raw, "contain") for i, raw in enumerate(doc.get("contain", []))]
        self.check_mode(doc)
        instead = [self.instead(i, raw, doc["mode"]) for i, raw in enumerate(doc.get("instead", []))]
        tests = tuple(self.test(i, raw) for i, raw in enumerate(doc.get("tests", [])))
        if self.errors:
            raise PlaybookErrors(self.errors)
        return Playbook(
            id=doc["id"],
            title=doc["title"],
            severity=doc["severity"],
            description=doc.get("description", ""),
            source=when["source"],
            events=tuple(when["events"]),
            mode=doc["mode"],
            steps=tuple(step for step in steps if step is not None),
            containment=tuple(step for step in containment if step is not None),
            condition=condition,
            exclusions=tuple(e for e in exclusions if e is not None),
            instead=tuple(entry for entry in instead if entry is not None),
            tests=tests,
            version=doc.get("version", 1),
            approval_timeout=_duration(doc.get("approval", {}).get("timeout", DEFAULT_APPROVAL_TIMEOUT)),
            slack_channel=doc.get("slack", {}).get("channel"),
            approvers=tuple(doc.get("slack", {}).get("approvers", ())),
            path=self.path,
            line=self.line,
        )

    def test(self, index: int, raw: Mapping[str, Any]) -> PlaybookTest:
        given = raw.get("named_lists", {})
        for name, items in given.items():
            wrong = named_lists.problem(name, items)
            if wrong:
                self.error(["tests", index, "named_lists", name], wrong, named_lists.LISTS[name].expected)
        return PlaybookTest(
            raw["name"], raw["event"], raw["expect"], line_of(self.document, ["tests", index]), NamedLists.of(given)
        )

    def check_mode(self, doc: Mapping[str, Any]) -> None:
        mode, steps = doc["mode"], doc.get("steps", [])
        if mode == "auto" and not steps and doc.get("contain"):
            self.error(
                ["mode"],
                "containment always waits for a person, and this playbook has nothing else to do",
                "mode approve (its Approve approves the containment), or `steps:` to run at once",
            )
        elif mode in ("auto", "approve") and not steps and not doc.get("contain"):
            self.error(["mode"], f"mode {mode} needs at least one step", "a `steps:` list")
        if mode == "notify" and steps:
            self.error(
                ["steps"], "mode notify runs no steps", "no `steps:` (or mode dry-run to show what they would do)"
            )
        if doc.get("contain") and mode == "notify":
            self.error(
                ["contain"],
                "mode notify runs no steps, so it proposes no containment",
                "mode auto or approve (containment then waits for a person), or no `contain:`",
            )

    def instead(self, index: int, raw: Mapping[str, Any], mode: str) -> Instead | None:
        at: list[str | int] = ["instead", index]
        if mode not in MODE_ORDER or MODE_ORDER[raw["mode"]] >= MODE_ORDER[mode]:
            self.error(
                [*at, "mode"],
                f"mode {raw['mode']} is not below the playbook's mode {mode}",
                "a mode that does less on its own: approve or notify below auto, notify below approve",
            )
            return None
        condition = self.expression([*at, "if"], raw["if"])
        return Instead(raw["mode"], condition, raw["because"]) if condition is not None else None

    def step(self, index: int, raw: Mapping[str, Any], group: str = "steps") -> Step | None:
        at: list[str | int] = [group, index]
        actions = registered_actions()
        action = actions.get(raw["action"])
        if action is None:
            hint = _did_you_mean(raw["action"], list(actions))
            self.error(
                [*at, "action"], f"unknown action {raw['action']!r}{hint}", "one of: " + ", ".join(sorted(actions))
            )
            return None
        given = raw.get("with", {})
        known = [parameter.name for parameter in action.parameters]
        params: dict[str, Expression] = {}
        for name, text in given.items():
            if name not in known:
                hint = _did_you_mean(name, known)
                self.error(
                    [*at, "with", name],
                    f"unknown parameter {name!r} for {action.name}{hint}",
                    "one of: " + ", ".join(known),
                )
                continue
            expression = self.expression([*at, "with", name], text)
            if expression is not None:
                params[name] = expression
        for parameter in action.parameters:
            if parameter.required and parameter.name not in given:
                self.error(
                    [*at, "with"] if "with" in raw else at,
                    f"{action.name} needs the parameter {parameter.name!r}",
                    parameter.description,
                )
        unless = self.expression([*at, "unless"], raw["unless"]) if "unless" in raw else None
        return Step(action, params, unless)
