"""The import-layer contract: the runtime package (`chalicelib/`, what ships to Lambda) stands
in layers that follow the flow of an event, and each module imports only its own layer and
the layers below it: never a layer above, never the tooling (`trailguard/`).

Every import counts, at module level, inside a function or under TYPE_CHECKING: each is a
dependency a reader has to follow. Only the incidents package and the runtime, which builds
it, import the incident store; everyone else goes through `Incidents`.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.unit

LAYERS: tuple[tuple[str, ...], ...] = (
    # foundation: what every layer may use
    (
        "chalicelib",
        "chalicelib.clock",
        "chalicelib.formats",
        "chalicelib.logs",
        "chalicelib.metrics",
        "chalicelib.named_lists",
        "chalicelib.settings",
        "chalicelib.stages",
        "chalicelib.text",
    ),
    ("chalicelib.events",),
    ("chalicelib.aws",),
    ("chalicelib.memory",),
    ("chalicelib.actions",),
    ("chalicelib.playbooks",),
    ("chalicelib.organization",),
    ("chalicelib.incidents",),
    # what other tools hear of incidents (metrics, findings, events): it reads incidents and
    # is told by their state-change hook, which the runtime gives the acting functions' door
    ("chalicelib.outputs",),
    ("chalicelib.respond",),
    ("chalicelib.posture",),
    ("chalicelib.slack",),
    ("chalicelib.runtime",),
)
"""Bottom to top. A package stands for all its modules."""

STORE = ("chalicelib.incidents.store", "chalicelib.incidents.seals")
"""Where incidents are kept: read and written through `Incidents` by everyone but the builder."""
STORE_USERS = ("chalicelib.incidents", "chalicelib.runtime")


def layer_of(module: str) -> int | None:
    """The layer of a module of the runtime package, by the longest name that covers it
    (`chalicelib` itself covers only its own `__init__`); None if no layer does."""
    covering = [
        (len(name), number)
        for number, names in enumerate(LAYERS)
        for name in names
        if module == name or (name != "chalicelib" and module.startswith(name + "."))
    ]
    return max(covering)[1] if covering else None


def imports_of(path: Path, module: str) -> Iterator[str]:
    """Every module the file imports, as written (absolute)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                origin = ".".join([*base, *([node.module] if node.module else [])])
            else:
                origin = node.module or ""
            for alias in node.names:
                yield f"{origin}.{alias.name}"  # a name in a module, or a module in a package


def runtime_modules(root: Path = ROOT) -> dict[str, Path]:
    found = {}
    for path in sorted((root / "chalicelib").rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def violations(imports: Mapping[str, set[str]]) -> list[str]:
    """Every import of `imports` (module -> what it imports) that breaks the contract."""
    found = []
    for module, targets in sorted(imports.items()):
        own = layer_of(module)
        for target in sorted(targets):
            if target == "trailguard" or target.startswith("trailguard."):
                found.append(f"{module} imports the tooling ({target})")
                continue
            if not target.startswith("chalicelib"):
                continue
            theirs = layer_of(target)
            if own is not None and theirs is not None and theirs > own:
                found.append(f"{module} (layer {own}) imports {target} (layer {theirs}, above it)")
            if target.startswith(STORE) and not module.startswith(STORE_USERS):
                found.append(f"{module} imports the incident store ({target}): go through Incidents")
    return found


def _real_imports() -> dict[str, set[str]]:
    return {module: set(imports_of(path, module)) for module, path in runtime_modules().items()}


def test_each_module_imports_only_its_own_layer_and_those_below():
    found = violations(_real_imports())
    assert found == [], "\n".join(found)


def test_every_runtime_module_stands_in_a_layer():
    """A new package must be placed: its layer says what it may use, and what may use it."""
    assert [module for module in runtime_modules() if layer_of(module) is None] == []


def test_the_contract_refuses_a_back_edge_the_tooling_and_a_store_reached_around_the_door():
    """The checker itself: each kind of import it must refuse, on made-up modules."""
    assert violations({"chalicelib.aws.clients": {"chalicelib.actions.base.Action"}}) == [
        "chalicelib.aws.clients (layer 2) imports chalicelib.actions.base.Action (layer 4, above it)"
    ]
    assert violations({"chalicelib.memory.trails": {"chalicelib.incidents.model.State"}}) != []
    assert violations({"chalicelib.events.record": {"trailguard.cli"}}) == [
        "chalicelib.events.record imports the tooling (trailguard.cli)"
    ]
    assert violations({"chalicelib.slack.worker": {"chalicelib.incidents.store.StaleIncident"}}) == [
        "chalicelib.slack.worker imports the incident store (chalicelib.incidents.store.StaleIncident): "
        "go through Incidents"
    ]
    assert violations({"chalicelib.runtime": {"chalicelib.incidents.store.DynamoStore", "chalicelib.slack"}}) == []
    assert violations({"chalicelib.settings": {"chalicelib.text.cut", "json"}}) == []


def test_app_py_is_wiring_over_the_runtime_package_only():
    imported = set(imports_of(ROOT / "app.py", "app"))
    assert not [name for name in imported if name.startswith("trailguard")]
    assert {name for name in imported if name.startswith("chalicelib")} <= {
        "chalicelib.runtime.Runtime",
        "chalicelib.respond.handler.eventbridge_rules",
        "chalicelib.settings.ConfigurationError",
    }
