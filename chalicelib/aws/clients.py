"""boto3 clients for remediation, in the account and region of each event.

Creating a client costs tens of milliseconds, so none is created at import (cold start)
and each is kept for the life of the container, per (service, account, region). In the
account trailguard runs in, it uses its own role; in any other account of the
organization it assumes the member role (`TRAILGUARD_MEMBER_ROLE`) with the session
name `trailguard`, and botocore refreshes those credentials before they expire. The
member clients note the request id of every write call they make (`own_calls`), so that
the loop guard skips exactly trailguard's own calls, not whoever else uses the member role.

botocore's `standard` retry mode absorbs throttling and transient errors, a bounded
number of times.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Protocol

from chalicelib.aws.errors import ActionError, describe_error
from chalicelib.aws.own_calls import note_write_calls

RETRY_CONFIG = {
    "retries": {"mode": "standard", "total_max_attempts": 5},  # the first call and 4 retries
    "connect_timeout": 5,
    "read_timeout": 20,
}
DEFAULT_MEMBER_ROLE = "trailguard-remediator"
MANAGEMENT_SERVICES = frozenset({"organizations"})
"""Services called through the management account's own role, not the member role: AWS
Organizations answers only there, and the member role there need not hold its permissions."""
MEMBER_SESSION_NAME = "trailguard"
"""The session name trailguard gives every member-role session it opens. Anyone can choose a
session name, so it only narrows (see `respond.guards`): it is not what makes a call ours."""


class ClientProvider(Protocol):
    def client(self, service: str, account: str | None, region: str) -> Any:
        """A boto3 client for `service` that acts in `account` and `region`."""


def partition_of(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


class AwsClients:
    def __init__(
        self,
        *,
        member_role: str = DEFAULT_MEMBER_ROLE,
        management_role: str | None = None,
        external_id: str | None = None,
        home_account: str | None = None,
        note_own_call: Callable[[str], None] | None = None,
    ) -> None:
        """`note_own_call(request_id)` is told of every write call made in a member account."""
        self.member_role = member_role
        self.management_role = management_role
        self.external_id = external_id
        self.note_own_call = note_own_call
        self._home_account = home_account
        self._clients: dict[tuple[str, str, str], Any] = {}
        self._sessions: dict[str, Any] = {}
        self._identity: dict[str, str] | None = None
        self._lock = threading.RLock()

    def client(self, service: str, account: str | None, region: str) -> Any:
        """A client in `account` (None: trailguard's own, which takes no call to STS to learn:
        the Slack endpoint's table, invoke and secret need none) and `region`."""
        member = None if account is None or account == self.home_account() else account
        key = (service, member or "", region)
        with self._lock:
            if key not in self._clients:
                if member is None:
                    client = self._new_client(self._home_session(), service, region)
                else:
                    role = self.management_role if service in MANAGEMENT_SERVICES else None
                    client = self._new_client(self._session_for(member, region, role), service, region)
                    if self.note_own_call is not None:
                        note_write_calls(client, self.note_own_call)
                self._clients[key] = client
            return self._clients[key]

    def home_client(self, service: str) -> Any:
        """A client in trailguard's own account and region (its table, its own resources)."""
        return self.client(service, None, self.home_region())

    def home_region(self) -> str:
        region = self._home_session().region_name
        if not region:
            raise ActionError("no AWS region is configured (AWS_REGION or AWS_DEFAULT_REGION)")
        return str(region)

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

    def member_role_arn(self, account: str, region: str) -> str:
        return f"arn:{partition_of(region)}:iam::{account}:role/{self.member_role}"

    def _caller_identity(self) -> dict[str, str]:
        with self._lock:
            if self._identity is None:
                self._identity = self._new_client(self._home_session(), "sts", None).get_caller_identity()
            return self._identity

    def _home_session(self) -> Any:
        with self._lock:
            if "home" not in self._sessions:
                import boto3

                self._sessions["home"] = boto3.session.Session()
            return self._sessions["home"]

    def _session_for(self, account: str, region: str, role: str | None = None) -> Any:
        """The home session in trailguard's own account; elsewhere a session of the member role
        (or of `role`, the management account's own role)."""
        if account == self.home_account():
            return self._home_session()
        key = f"{account}#{role}" if role else account
        with self._lock:
            if key not in self._sessions:
                arn = self.member_role_arn(account, region)
                if role:
                    arn = arn.rsplit("/", 1)[0] + "/" + role
                self._sessions[key] = self._member_session(arn, region)
            return self._sessions[key]

    def _member_session(self, role_arn: str, region: str) -> Any:
        """A session with the member role's credentials (refreshed by AssumeRole when they
        expire) on a copy of the home botocore session: the loader, the parsed service
        models and the endpoint data are the container's, made once. A fresh botocore
        session per account would register its handlers and read the models again
        (about 100 ms of CPU per account not seen yet; see bench/member_accounts.py)."""
        import copy

        from botocore.credentials import RefreshableCredentials

        sts = self.client("sts", self.home_account(), region)
        extra = {"ExternalId": self.external_id} if self.external_id else {}

        def assume() -> dict[str, str]:
            try:
                response = sts.assume_role(RoleArn=role_arn, RoleSessionName=MEMBER_SESSION_NAME, **extra)
                credentials = response["Credentials"]
            except Exception as error:
                raise ActionError(f"cannot assume {role_arn}: {describe_error(error)}") from error
            return {
                "access_key": credentials["AccessKeyId"],
                "secret_key": credentials["SecretAccessKey"],
                "token": credentials["SessionToken"],
                "expiry_time": credentials["Expiration"].isoformat(),
            }

        botocore_session = copy.copy(self._home_session()._session)
        botocore_session._credentials = RefreshableCredentials.create_from_metadata(
            metadata=assume(), refresh_using=assume, method="sts-assume-role"
        )
        return _MemberSession(botocore_session)

    def _new_client(self, session: Any, service: str, region: str | None) -> Any:
        from botocore.config import Config

        return session.client(service, region_name=region, config=Config(**RETRY_CONFIG))


class _MemberSession:
    """What `_new_client` needs of a session, for a member account: clients made by the
    copied botocore session (boto3's Session would register its handlers again on the
    event emitter the copy shares with the home session)."""

    def __init__(self, botocore_session: Any) -> None:
        self._session = botocore_session

    def client(self, service: str, region_name: str | None = None, config: Any = None) -> Any:
        return self._session.create_client(service, region_name=region_name, config=config)
