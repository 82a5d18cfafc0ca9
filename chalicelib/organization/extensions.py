"""The organization's own playbooks and actions, without a fork.

- Playbooks: the shipped folder (`TRAILGUARD_PLAYBOOKS`, default `playbooks/`) first (and
  `settings/playbooks/`, when `opt_out.by_tag` is on), then the settings'
  `playbooks.folders`. A playbook of the organization's with a shipped playbook's id
  replaces it (`Catalog.overrides` says which); two with one id in the same set are a
  mistake, as before. `playbooks.disabled` turns shipped (or own) ones
  off by id. The organization's files live in its own folders, so upgrading trailguard
  touches none of them.
- Actions: the modules the settings name (`actions:`), imported before the playbooks are
  loaded; each `@register`s its actions, declaring parameters and permissions (with their
  resource types) like a shipped one, so the generated policies grant them. Named modules
  rather than an entry-point scan: scanning the installed distributions costs a cold
  start ~35 ms (importlib.metadata, measured), and the list is reviewed in the settings
  file like everything else. A package that declares a `trailguard.actions` entry point is
  named by its module.

Folders and modules are relative to the project (in Lambda, the task root, where
`vendor/`'s contents land: link the organization's folder into `vendor/`).
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

from chalicelib.organization.loader import OrganizationError, load_organization, mistake_at, unknown_playbooks
from chalicelib.organization.model import NO_ORGANIZATION, Organization
from chalicelib.playbooks.catalog import Catalog, CatalogError
from chalicelib.playbooks.loader import load_playbooks
from chalicelib.playbooks.playbook import Playbook
from chalicelib.settings import PROJECT_ROOT, Settings

OPT_OUT_PLAYBOOKS = PROJECT_ROOT / "settings" / "playbooks"
"""Playbooks the settings turn on: where `opt_out.by_tag` honours the opt-out tag, adding it
to a resource is told (`opt-out-tag-added-*`); elsewhere the tag means nothing, and its
events are not even delivered (their patterns would need a second EventBridge rule)."""


def stage_organization(settings: Settings, project: Path = PROJECT_ROOT) -> Organization:
    """The stage's organization settings file, loaded (none: the defaults)."""
    if settings.organization_file is None:
        return NO_ORGANIZATION
    return load_organization(settings.organization_file, project)


def import_actions(organization: Organization, project: Path = PROJECT_ROOT) -> list[str]:
    """Import the organization's action modules (their actions register themselves); the
    modules imported. A module that cannot be imported is a mistake of the settings file."""
    if not organization.action_modules:
        return []
    if str(project) not in sys.path:
        sys.path.append(str(project))
    mistakes = []
    for index, module in enumerate(organization.action_modules):
        try:
            importlib.import_module(module)
        except Exception as error:  # whatever it is, the stage cannot start without the module's actions
            mistakes.append(
                mistake_at(
                    organization,
                    ["actions", index],
                    f"cannot import {module}: {type(error).__name__}: {error}",
                    "a module importable from the project (or from vendor/ when deployed)",
                )
            )
    if mistakes:
        raise OrganizationError(mistakes)
    return list(organization.action_modules)


def load_catalog(
    shipped: tuple[Path, ...], organization: Organization, *, with_tests: bool = True, project: Path = PROJECT_ROOT
) -> Catalog:
    """The stage's playbooks: the shipped ones, the organization's (which replace shipped
    ones of the same id), less the disabled ones. CatalogError lists every mistake in the
    playbooks; OrganizationError, in the settings file."""
    import_actions(organization, project)
    theirs: list[Playbook] = []
    if organization.opt_out_by_tag:
        shipped = (*shipped, OPT_OUT_PLAYBOOKS)
    ours, errors = load_playbooks(shipped, with_tests)
    if organization.playbook_folders:
        theirs, their_errors = load_playbooks(organization.playbook_folders, with_tests)
        errors += their_errors
    if errors:
        raise CatalogError(errors)
    replaced = {playbook.id for playbook in theirs}
    overrides = {p.id: (p.location, next(t.location for t in theirs if t.id == p.id)) for p in ours if p.id in replaced}
    every = [*(p for p in ours if p.id not in replaced), *theirs]
    mistakes = unknown_playbooks(organization, [p.id for p in every])
    if mistakes:
        raise OrganizationError(mistakes)
    disabled = set(organization.disabled)
    return Catalog([p for p in every if p.id not in disabled], overrides=overrides)
