"""boto3 clients for remediation: created on first use, kept for the life of the container.

Creating a client costs tens of milliseconds, so none is created at import (cold start)
and each is reused. botocore's `standard` retry mode absorbs throttling and transient
errors. trailguard acts only in the account it runs in: an event from another account
is refused with a clear error rather than acted on with the wrong credentials.
"""

from __future__ import annotations

import threading
from typing import Any, Protocol

from chalicelib.actions import ActionError

RETRY_CONFIG = {
    "retries": {"mode": "standard", "max_attempts": 5},
    "connect_timeout": 5,
    "read_timeout": 20,
}


class ClientProvider(Protocol):
    def client(self, service: str, account: str | None, region: str) -> Any:
        """A boto3 client for `service` that acts in `account` and `region`."""


class AwsClients:
    def __init__(self, home_account: str | None = None) -> None:
        self._home_account = home_account
        self._clients: dict[tuple[str, str], Any] = {}
        self._session: Any = None
        self._identity: dict[str, str] | None = None
        self._lock = threading.Lock()

    def client(self, service: str, account: str | None, region: str) -> Any:
        if account and account != self.home_account():
            raise ActionError(
                f"the event is in account {account}, but trailguard runs in {self.home_account()} "
                "and has no role to act in other accounts"
            )
        key = (service, region)
        with self._lock:
            if key not in self._clients:
                self._clients[key] = self._new_client(service, region)
            return self._clients[key]

    def home_account(self) -> str:
        if self._home_account is None:
            self._home_account = self._caller_identity()["Account"]
        return self._home_account

    def own_role_name(self) -> str | None:
        """The IAM role these credentials come from (the Lambda's execution role), if any.

        Calls made through it (an undo, say) must never be answered again, whatever the
        role is called: Chalice and CloudFormation name roles differently.
        """
        arn = self._caller_identity()["Arn"]
        if ":assumed-role/" not in arn:
            return None
        return arn.split(":assumed-role/", 1)[1].split("/", 1)[0]

    def _caller_identity(self) -> dict[str, str]:
        if self._identity is None:
            self._identity = self._new_client("sts", None).get_caller_identity()
        return self._identity

    def _new_client(self, service: str, region: str | None) -> Any:
        import boto3
        from botocore.config import Config

        if self._session is None:
            self._session = boto3.session.Session()
        return self._session.client(service, region_name=region, config=Config(**RETRY_CONFIG))
