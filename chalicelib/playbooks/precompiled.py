"""The playbooks precompiled at package time, so that a cold start skips YAML, the schema
and JMESPath's parser for them.

`python -m trailguard.bytecode` (run before `chalice package` and `chalice deploy`) loads every
playbook the package ships the usual way and writes, for each file that loads without a
mistake, its document (as `load_yaml` gives it, without `tests:`, which the Lambda skips)
and the parsed tree of each of its expressions, keyed by a hash of the file's bytes. At a
cold start the loader still reads every playbook file, hashes it, and takes what the
catalog holds for that hash instead of parsing and checking the text again; it then builds
the playbook as for a YAML file (its actions and their parameters are checked against the
actions registered now, the organization's included).

What the catalog cannot answer goes the YAML way: a file changed since (another hash), a
catalog written by other code (the hash of chalicelib's sources and the versions of the
libraries that parse, recorded in it, differ), a missing, unreadable or corrupted catalog.
Never a wrong playbook: at worst no gain.

The file sits in `chalicelib/playbooks/__pycache__/`, which Chalice zips with chalicelib/
like the bytecode beside it, and holds plain data (marshal) behind a hash of itself.
"""

from __future__ import annotations

import hashlib
import logging
import marshal
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

log = logging.getLogger("trailguard")

MAGIC = b"trailguard-playbooks-1\n"
"""The file's first bytes: its layout's version (a new one makes older files stale)."""
CHALICELIB = Path(__file__).resolve().parent.parent
CATALOG_FILE = Path(__file__).resolve().parent / "__pycache__" / f"playbooks.{sys.implementation.cache_tag}.bin"


@dataclass(frozen=True)
class Entry:
    """One playbook file as its text was checked: its document and its expressions' trees."""

    document: Any
    """Plain dicts and lists (the lines YAML gave them are not kept: a precompiled file has no mistake to point at)."""
    trees: Mapping[str, Mapping[str, Any]]
    """jmespath's parsed tree of each expression, by its text."""
    line: int | None
    """The line of its `id:` (`Playbook.line`)."""


class Precompiled:
    """Entries by the hash of their file's bytes, for the code that wrote them."""

    def __init__(self, entries: Mapping[bytes, tuple[Any, Any, Any]], code: bytes) -> None:
        self._entries = entries
        self.code = code

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, data: bytes) -> Entry | None:
        """What was precompiled for a file of exactly these bytes, if anything."""
        found = self._entries.get(file_key(data))
        return Entry(*found) if found is not None else None

    @classmethod
    def of(cls, entries: Mapping[bytes, Entry], code: bytes) -> Precompiled:
        return cls({key: (entry.document, entry.trees, entry.line) for key, entry in entries.items()}, code)

    def dumps(self) -> bytes:
        """The file: MAGIC, the code's hash, the payload's hash, the payload (marshal: plain
        data only, and the fastest of Python's formats to read)."""
        payload = marshal.dumps(dict(self._entries))
        return MAGIC + self.code + hashlib.sha256(payload).digest() + payload

    @classmethod
    def loads(cls, data: bytes, code: bytes) -> Precompiled | None:
        """The catalog in `data` if it is whole and was written for `code` (this code); None
        otherwise, whatever the bytes are."""
        header = len(MAGIC)
        payload = data[header + 64 :]
        if data[:header] != MAGIC or data[header : header + 32] != code:
            return None
        if data[header + 32 : header + 64] != hashlib.sha256(payload).digest():
            log.warning("the precompiled playbook catalog is damaged; loading the YAML files")
            return None
        try:
            entries = marshal.loads(payload)
        except (EOFError, ValueError, TypeError):
            log.warning("the precompiled playbook catalog cannot be read; loading the YAML files")
            return None
        return cls(entries, code) if isinstance(entries, dict) else None


def plain(value: Any) -> Any:
    """`value` with YAML's line-keeping maps and lists as plain ones (what marshal writes)."""
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    return value


def file_key(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def code_version(root: Path = CHALICELIB) -> bytes:
    """A hash of what turns a playbook's text into what the catalog keeps: every source of
    chalicelib (the YAML loader, the schema, the expression checks and everything they read),
    the parsing libraries' versions and the interpreter. A few milliseconds: the sources are
    small, and Python has just read them to check their bytecode."""
    import jmespath
    import yaml

    digest = hashlib.sha256(f"{sys.implementation.cache_tag}\n{yaml.__version__}\n{jmespath.__version__}\n".encode())
    for folder, folders, files in os.walk(root):
        folders[:] = sorted(name for name in folders if name != "__pycache__")
        for name in sorted(files):
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                digest.update(os.path.relpath(path, root).encode() + b"\0")
                with open(path, "rb") as source:
                    digest.update(hashlib.sha256(source.read()).digest())
    return digest.digest()


@cache
def shipped() -> Precompiled | None:
    """The catalog the package ships, if it was written for this code (read once a process)."""
    try:
        data = CATALOG_FILE.read_bytes()
    except OSError:
        return None
    return Precompiled.loads(data, code_version())
