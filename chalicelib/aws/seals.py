"""Seals: tags over what trailguard's acting roles wrote, that only they can make (an HMAC with
a KMS key only they may use), so that what anyone else wrote is never acted on.

What is sealed, and when it is checked, is the business of what is stored: incidents
(`incidents.seals`) and remembered configurations. This module makes and checks the tags.
`LocalSealer` (a random key per process) serves runs whose incidents live in this
process's memory only.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import secrets
import threading
from typing import Any, Protocol

MAC_ALGORITHM = "HMAC_SHA_256"
KEY_SPEC = "HMAC_256"
KEY_USAGE = "GENERATE_VERIFY_MAC"
SEAL_VERSION = "trailguard-seal-v1"
REFUSALS_KEPT = 100

log = logging.getLogger("trailguard")


class ChangedOutsideTrailguard(Exception):
    """A stored incident or remembered configuration is not as trailguard's acting roles
    wrote it: nothing is done with it."""

    def __init__(self, what: str, reason: str) -> None:
        super().__init__(f"{what} changed outside trailguard: {reason}; nothing was done with it")
        self.what = what
        self.reason = reason


class Sealer(Protocol):
    def seal(self, message: bytes) -> str:
        """A tag over `message` that only the holder of the key can make."""

    def verify(self, message: bytes, tag: Any) -> bool:
        """Whether `tag` was made over `message` with the key. A wrong tag is False; not
        being able to check (KMS unreachable, access denied) raises."""


class LocalSealer:
    """HMAC-SHA256 with a key made for this process: for incidents kept in its memory only."""

    def __init__(self, key: bytes | None = None) -> None:
        self._key = key or secrets.token_bytes(32)

    def seal(self, message: bytes) -> str:
        return base64.b64encode(hmac.digest(self._key, message, "sha256")).decode()

    def verify(self, message: bytes, tag: Any) -> bool:
        return isinstance(tag, str) and hmac.compare_digest(self.seal(message).encode(), tag.encode())


class KmsSealer:
    """HMAC in KMS (`GenerateMac`/`VerifyMac`): the key never leaves KMS, and IAM says who may seal.

    Tags this container made or KMS confirmed are remembered (a bounded set of exact
    message/tag pairs), so that reading back what was just written costs no KMS call.
    """

    def __init__(self, client: Any, key_id: str) -> None:
        self.client = client
        self.key_id = key_id
        self._known: set[tuple[bytes, str]] = set()
        self._lock = threading.Lock()

    def seal(self, message: bytes) -> str:
        mac = self.client.generate_mac(KeyId=self.key_id, Message=message, MacAlgorithm=MAC_ALGORITHM)["Mac"]
        tag = base64.b64encode(mac).decode()
        self._remember(message, tag)
        return tag

    def verify(self, message: bytes, tag: Any) -> bool:
        if not isinstance(tag, str):
            return False
        with self._lock:
            if (message, tag) in self._known:
                return True
        try:
            mac = base64.b64decode(tag, validate=True)
        except (binascii.Error, ValueError):
            return False
        if not 1 <= len(mac) <= 6144:  # what VerifyMac accepts
            return False
        try:
            valid = self.client.verify_mac(KeyId=self.key_id, Message=message, Mac=mac, MacAlgorithm=MAC_ALGORITHM)
        except self.client.exceptions.KMSInvalidMacException:
            return False
        if not valid.get("MacValid"):
            return False
        self._remember(message, tag)
        return True

    def _remember(self, message: bytes, tag: str) -> None:
        with self._lock:
            if len(self._known) >= 4096:
                self._known.clear()
            self._known.add((message, tag))


def message(kind: str, key: str, content: Any) -> bytes:
    """What a seal covers: the kind of record, the key it is stored under, and its content.

    The content is hashed in a canonical JSON form (what the store writes, read back, with
    sorted keys), so that the tag made before a write matches what a later read finds; the
    digest keeps the message within KMS's 4,096 bytes whatever the content's size.
    """
    canonical = json.dumps(json.loads(json.dumps(content, default=str)), sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256(json.dumps([kind, key, canonical]).encode()).hexdigest()
    return f"{SEAL_VERSION}:{digest}".encode()


class Refusals:
    """What failed its seal check: each refusal is logged ("... changed outside trailguard")
    and kept, the last `REFUSALS_KEPT`, as "key: why" for the sweep's report."""

    def __init__(self) -> None:
        self.refused: list[str] = []

    def refuse(self, kind: str, key: str, reason: str) -> ChangedOutsideTrailguard:
        """Log and keep a refusal; returns the exception to raise, for callers that raise."""
        log.error(f"{kind} changed outside trailguard", extra={"key": key, "reason": reason})
        self.refused.append(f"{key}: {reason}")
        del self.refused[:-REFUSALS_KEPT]
        return ChangedOutsideTrailguard(f"{kind} {key}", reason)
