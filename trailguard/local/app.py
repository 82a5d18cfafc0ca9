"""The app with a runtime of the caller's: what the demo, the tests and the benchmarks run
`app.py`'s handlers on, a new Lambda container as far as they can tell."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from typing import Any

from chalicelib.organization.model import Organization
from chalicelib.playbooks.catalog import Catalog
from chalicelib.runtime import Runtime


def container(
    catalog: Catalog | None = None, *, clients: Any = None, organization: Organization | None = None, **settings: Any
) -> Runtime:
    """A new runtime: the app's settings with `settings` changed, the app's catalog and
    organization settings unless others are given, and `clients` of the caller's if given
    (see `Runtime`)."""
    import app

    current = app.runtime
    return Runtime(
        dataclasses.replace(current.settings, **settings),
        catalog or current.catalog,
        clients=clients,
        organization=organization if organization is not None else current.organization,
    )


@contextlib.contextmanager
def running(runtime: Runtime) -> Iterator[Runtime]:
    """Make `runtime` the one app.py's handlers use until the block ends, then put the
    previous one back."""
    import app

    saved = app.runtime
    app.runtime = runtime
    try:
        yield runtime
    finally:
        app.runtime = saved
