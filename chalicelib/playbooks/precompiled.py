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

The command line (replay over an organization's folders, `--compare`) also remembers what it
compiled, as Python keeps `__pycache__`: a file like the catalog in the user's cache folder
(`Remembered`), keyed the same way, so a file of the same bytes is served from it the next
time, wherever it lies. The Lambda never writes there: it has the shipped catalog.
"""

from __future__ import annotations

import hashlib
import logging
import marshal
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path
from typing import Any

log = logging.getLogger("trailguard")

MAGIC = b"trailguard-playbooks-2\n"
"""The file's first bytes: its layout's version (a new one makes older files stale)."""
CHALICELIB = Path(__file__).resolve().parent.parent
CATALOG_FILE = Path(__file__).resolve().parent / "__pycache__" / f"playbooks.{sys.implementation.cache_tag}.bin"


@dataclass(frozen=True)
class Entry:
    """One playbook file as its text was checked: its document and its expressions' trees."""

    document: Any
    """Plain dicts and lists (the lines YAML gave them are not kept: a precompiled file has no mistake to point at)."""
    trees: Mapping[str, bytes]
    """jmespath's parsed tree of each expression, by its text, as marshal writes it: read when
    the expression is first needed (`Expression.checked`)."""
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
        return self.find(file_key(data))

    def find(self, key: bytes) -> Entry | None:
        """What was precompiled for the file whose `file_key` is `key`, if anything."""
        found = self._entries.get(key)
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
    def loads(cls, data: bytes, code: bytes, what: str = "the precompiled playbook catalog") -> Precompiled | None:
        """The catalog in `data` if it is whole and was written for `code` (this code); None
        otherwise, whatever the bytes are."""
        header = len(MAGIC)
        payload = data[header + 64 :]
        if data[:header] != MAGIC or data[header : header + 32] != code:
            return None
        if data[header + 32 : header + 64] != hashlib.sha256(payload).digest():
            log.warning("%s is damaged; loading the YAML files", what)
            return None
        try:
            entries = marshal.loads(payload)
        except (EOFError, ValueError, TypeError):
            log.warning("%s cannot be read; loading the YAML files", what)
            return None
        return cls(entries, code) if isinstance(entries, dict) else None


def plain(value: Any) -> Any:
    """`value` with YAML's line-keeping maps and lists as plain ones (what marshal writes)."""
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    return value


def read_file(name: str) -> bytes:
    """A file's bytes with the fewest system calls (half the time of `Path.read_bytes`, which
    counts with a thousand playbooks at a cold start): a short read of a file is its end."""
    chunk = 1 << 16
    descriptor = os.open(name, os.O_RDONLY)
    try:
        parts = [os.read(descriptor, chunk)]
        while len(parts[-1]) == chunk:
            parts.append(os.read(descriptor, chunk))
    finally:
        os.close(descriptor)
    return b"".join(parts)


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
def _this_code() -> bytes:
    return code_version()


@cache
def shipped() -> Precompiled | None:
    """The catalog the package ships, if it was written for this code (read once a process)."""
    try:
        data = CATALOG_FILE.read_bytes()
    except OSError:
        return None
    return Precompiled.loads(data, _this_code())


CACHE_VARIABLE = "TRAILGUARD_CACHE_DIR"
"""Where the command line keeps what it compiled; empty: nowhere."""


def cache_folder(environ: Mapping[str, str] = os.environ) -> Path | None:
    """$TRAILGUARD_CACHE_DIR (empty: no cache), else $XDG_CACHE_HOME/trailguard, else
    ~/.cache/trailguard."""
    if CACHE_VARIABLE in environ:
        return Path(environ[CACHE_VARIABLE]) if environ[CACHE_VARIABLE] else None
    base = environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "trailguard"


REMEMBERED_LIMIT = 5000
"""The most playbook files the command line's cache keeps (those used last stay)."""


class Remembered:
    """Playbooks the command line compiled before: one file like the shipped catalog (behind
    a hash of itself, for this code only), read when the shipped catalog first lacks a file
    (a replay of the bundled playbooks never reads it) and written again, whole, when loading
    compiled something new. A damaged, unreadable or missing file, or one
    of other code, is a cache of nothing, never a wrong playbook; if it cannot be written,
    nothing is kept. One file, not one per playbook: creating a thousand files costs more
    system time than parsing their YAML."""

    def __init__(self, folder: Path, code: bytes) -> None:
        self.file = folder / CATALOG_FILE.name
        self.code = code
        self._used: dict[bytes, tuple[Any, Any, Any]] = {}
        self._changed = False

    @cached_property
    def _kept(self) -> dict[bytes, tuple[Any, Any, Any]]:
        try:
            found = Precompiled.loads(read_file(str(self.file)), self.code, "the cache of compiled playbooks")
        except OSError:
            return {}
        return dict(found._entries) if found is not None else {}

    def find(self, key: bytes) -> Entry | None:
        found = self._kept.get(key)
        if found is None:
            return None
        self._used[key] = found
        return Entry(*found)

    def keep(self, key: bytes, entry: Entry) -> None:
        """Remember `entry` (ValueError: YAML gave what marshal cannot keep, such as a date)."""
        value = (entry.document, dict(entry.trees), entry.line)
        marshal.dumps(value)
        self._used[key] = value
        self._changed = True

    def save(self) -> None:
        """Write the file again if something new was compiled: what was used last, then the
        rest, up to `REMEMBERED_LIMIT` (two replays at once: the last one's file stays)."""
        if not self._changed:
            return
        entries = {key: value for key, value in self._kept.items() if key not in self._used}
        entries.update(self._used)
        for key in list(entries)[: max(0, len(entries) - REMEMBERED_LIMIT)]:
            del entries[key]
        partial = self.file.with_name(f".{self.file.name}.{os.getpid()}")
        try:
            self.file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            partial.write_bytes(Precompiled(entries, self.code).dumps())
            os.replace(partial, self.file)  # whole or absent
        except OSError as error:
            log.debug("cannot keep the compiled playbooks in %s: %s", self.file, error)
        self._kept, self._used, self._changed = entries, {}, False


_cache: Path | None = None


def remember_in(folder: Path | None) -> None:
    """Keep and read compiled playbooks under `folder` from now on in this process (the
    command line's entry point calls it; None: stop)."""
    global _cache
    _cache = folder


def remembered() -> Remembered | None:
    """Where this process keeps compiled playbooks, if anywhere (`remember_in`)."""
    return Remembered(_cache, _this_code()) if _cache is not None else None
