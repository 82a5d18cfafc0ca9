"""Loading the organization settings file: the playbook loader's YAML (lines kept, duplicate
and boolean keys refused), its schema explanations (file, line, key, did-you-mean), then
what a schema cannot check (a date, a folder that must exist, the playbook ids it names).

Every mistake found is listed, one line each, and the stage does not start: a typo in a
scope must not quietly widen it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from chalicelib.named_lists import NamedLists
from chalicelib.organization.baseline import CHECKS, Baseline
from chalicelib.organization.model import (
    DEFAULT_EXCEPTION_DAYS,
    Account,
    Modes,
    Organization,
    Where,
)
from chalicelib.organization.schema import validator
from chalicelib.playbooks.loader import FileMistake, did_you_mean, schema_mistake
from chalicelib.playbooks.yamlfile import YamlSyntaxError, format_path, line_of, load_yaml
from chalicelib.settings import PROJECT_ROOT, ConfigurationError

TOP_KEYS = "keys lists, accounts, scope, modes, playbooks, actions, opt_out, exceptions, baseline"


class SettingsMistake(FileMistake):
    """A mistake in the organization settings file."""


class OrganizationError(ConfigurationError):
    """The organization settings file cannot be used; every mistake found, one per line."""

    def __init__(self, mistakes: Sequence[FileMistake]) -> None:
        self.mistakes = list(mistakes)
        count = len(self.mistakes)
        lines = "\n".join(f"  {mistake}" for mistake in self.mistakes)
        super().__init__(f"{count} mistake{'s' if count != 1 else ''} in the organization settings:\n{lines}")


def load_organization(path: Path, project: Path = PROJECT_ROOT) -> Organization:
    """The settings in `path` (folders in it are relative to `project`); OrganizationError
    lists every mistake."""
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise OrganizationError([SettingsMistake(name, None, None, f"cannot read the file: {error}")]) from None
    try:
        document = load_yaml(text)
    except YamlSyntaxError as error:
        raise OrganizationError([SettingsMistake(name, error.line, error.key, error.problem)]) from None
    if document is None:
        return Organization(path=path, document={})
    mistake = schema_mistake(
        name, document, validator(), SettingsMistake, "the settings file is a mapping of keys", TOP_KEYS
    )
    if mistake is not None:
        raise OrganizationError([mistake])
    return _Reader(name, path, document, project).read()


class _Reader:
    """Second pass over a schema-valid document: what a schema cannot know."""

    def __init__(self, name: str, path: Path, document: Mapping[str, Any], project: Path) -> None:
        self.name = name
        self.path = path
        self.document = document
        self.project = project
        self.mistakes: list[FileMistake] = []

    def mistake(self, at: Sequence[str | int], problem: str, expected: str | None = None) -> None:
        self.mistakes.append(SettingsMistake(self.name, line_of(self.document, at), format_path(at), problem, expected))

    def read(self) -> Organization:
        doc = self.document
        playbooks = doc.get("playbooks", {})
        opt_out = doc.get("opt_out", {})
        exceptions = doc.get("exceptions", {})
        organization = Organization(
            path=self.path,
            lists=NamedLists.of(doc.get("lists", {})),
            accounts={
                account: Account(entry.get("name"), tuple(entry["ou"].split("/")) if "ou" in entry else None)
                for account, entry in doc.get("accounts", {}).items()
            },
            scope=_where("scope", doc.get("scope", {})),
            playbook_scopes={
                playbook: _where(f"scope.playbooks.{playbook}", given)
                for playbook, given in doc.get("scope", {}).get("playbooks", {}).items()
            },
            modes=self.modes(doc.get("modes", {})),
            playbook_folders=tuple(self.folder(index, text) for index, text in enumerate(playbooks.get("folders", []))),
            disabled=tuple(playbooks.get("disabled", [])),
            action_modules=tuple(doc.get("actions", [])),
            opt_out_by_tag=bool(opt_out.get("by_tag", False)),
            opt_out_never=frozenset(opt_out.get("never", [])),
            exception_days=int(exceptions.get("max_days", DEFAULT_EXCEPTION_DAYS)),
            exceptions_never=frozenset(exceptions.get("never", [])),
            baseline=Baseline(
                frozenset(CHECKS) - set(doc.get("baseline", {}).get("skip", [])),
                int(doc.get("baseline", {}).get("lifecycle_min_days", 365)),
                bool(doc.get("baseline", {}).get("sweep", False)),
            ),
            document=doc,
        )
        if self.mistakes:
            raise OrganizationError(self.mistakes)
        return organization

    def modes(self, given: Mapping[str, Any]) -> Modes:
        until = given.get("dry_run_until")
        return Modes(
            default=given.get("default", "auto"),
            ous=dict(given.get("ous", {})),
            accounts=dict(given.get("accounts", {})),
            playbooks=dict(given.get("playbooks", {})),
            dry_run_until=self.moment(["modes", "dry_run_until"], until) if until else None,
            break_glass=given.get("break_glass", "notify"),
        )

    def moment(self, at: Sequence[str | int], text: str) -> dt.datetime | None:
        try:
            moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError as error:
            self.mistake(at, f"{text!r} is not a date: {error}", "a date such as '2026-12-14' (UTC)")
            return None
        return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)

    def folder(self, index: int, text: str) -> Path:
        folder = (self.project / text).resolve()
        if not folder.is_dir():
            self.mistake(
                ["playbooks", "folders", index],
                f"no folder {text!r} in {self.project}",
                "a folder of playbooks, relative to the project (and linked into vendor/ to be deployed)",
            )
        return folder


def _where(at: str, given: Mapping[str, Any]) -> Where:
    def names(key: str) -> frozenset[str]:
        return frozenset(given.get(key, ()))

    return Where(
        at=at,
        accounts=names("accounts"),
        exclude_accounts=names("exclude_accounts"),
        ous=names("ous"),
        exclude_ous=names("exclude_ous"),
        regions=names("regions"),
        exclude_regions=names("exclude_regions"),
        principals=names("principals"),
        exclude_principals=names("exclude_principals"),
        tags=dict(given.get("tags", {})),
        exclude_tags=dict(given.get("exclude_tags", {})),
    )


def mistake_at(organization: Organization, at: Sequence[str | int], problem: str, expected: str) -> FileMistake:
    """A mistake found after loading (an action module that cannot be imported), where it is written."""
    return SettingsMistake(
        organization.where, line_of(organization.document, at), format_path(at) or None, problem, expected
    )


def unknown_playbooks(organization: Organization, known: Iterable[str]) -> list[FileMistake]:
    """Every playbook id the settings name that no loaded playbook has (a typo would quietly
    turn nothing off, or scope nothing), with where it is written and the closest id."""
    if organization.path is None or organization.document is None:
        return []
    document = organization.document
    ids = sorted(set(known))
    places: list[tuple[list[str | int], str]] = []
    for index, playbook in enumerate(document.get("playbooks", {}).get("disabled", [])):
        places.append((["playbooks", "disabled", index], playbook))
    for key in ("opt_out", "exceptions"):
        for index, playbook in enumerate(document.get(key, {}).get("never", [])):
            places.append(([key, "never", index], playbook))
    for playbook in document.get("scope", {}).get("playbooks", {}):
        places.append((["scope", "playbooks", playbook], playbook))
    for playbook in document.get("modes", {}).get("playbooks", {}):
        places.append((["modes", "playbooks", playbook], playbook))
    return [
        SettingsMistake(
            str(organization.path),
            line_of(document, at),
            format_path(at),
            f"no playbook has the id {playbook!r}{did_you_mean(playbook, ids)}",
            "the id of a loaded playbook",
        )
        for at, playbook in places
        if playbook not in ids
    ]
