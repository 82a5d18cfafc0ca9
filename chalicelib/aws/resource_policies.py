"""Who a resource policy or a role's trust policy lets in: the organization only, or strangers too.

One definition serves the playbooks' conditions (`public_statements()`,
`external_principals()`) and the actions that fix what those found (their `check` and
`apply`), so that a playbook never calls "fixed" what its action considers fine, or the
reverse. The organization is `Trusted`: its accounts and AWS Organizations, from the named
lists (`named_lists`), never from the policy being judged.

An Allow statement admits a request when its principal AND every condition clause match it.
A statement open to any principal is therefore restricted when one clause pins the caller
to trusted values, and a clause pins only when:

- its operator is false for a request without the key: `StringEquals`, `StringLike`,
  `ArnLike`, `IpAddress`..., or their `ForAnyValue:` form. `ForAllValues:` operators,
  `...IfExists` operators and negations (`StringNotEquals`, `NotIpAddress`) are true for a
  request without the key, so they pin nothing (IAM user guide: condition operators;
  single-valued and multivalued context keys);
- EVERY value it lists is trusted, since the values of one key are alternatives: a trusted
  account id; a trusted organization id (or an organization path under one); an ARN whose
  account field is a trusted account; an IP range no wider than S3 Block Public Access
  accepts (/8 for IPv4, /32 for IPv6: "The meaning of public" in the S3 user guide); a VPC
  or VPC endpoint id written out in full; for the OIDC tokens anyone can get
  (`OPEN_ISSUERS`), the tenant written out in full: a GitHub repository owner, a GitLab
  group, an HCP Terraform organization, a Google client, a Cognito identity pool. A
  wildcard or a policy variable where the account, organization or tenant should be pins
  nothing.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

GITHUB_ACTIONS_ISSUER = "token.actions.githubusercontent.com"
"""GitHub's OIDC issuer for Actions: any workflow of any repository on github.com gets its tokens."""

OPEN_ISSUERS = {
    GITHUB_ACTIONS_ISSUER: "GitHub Actions",
    "gitlab.com": "GitLab.com CI/CD",
    "app.terraform.io": "HCP Terraform",
    "accounts.google.com": "Google",
    "cognito-identity.amazonaws.com": "Amazon Cognito identity pools",
}
"""OIDC issuers anyone can get a token from (any repository, project, organization, Google
client or identity pool, of anyone): a role trusting one is open to all of them unless a
condition names the tenant (see `_PINNING_KEYS`). Issuers of one tenant each (a GitHub
Enterprise's own, CircleCI's `oidc.circleci.com/org/ID`, Bitbucket's per workspace, an
organization's own IdP) are not open."""


@dataclass(frozen=True)
class Trusted:
    """The organization: the accounts and AWS Organizations a policy may let in."""

    accounts: frozenset[str] = frozenset()
    organizations: frozenset[str] = frozenset()

    @classmethod
    def of(cls, accounts: Any, organizations: Any) -> Trusted:
        """From playbook values (lists of strings; anything else in them is ignored)."""
        return cls(
            frozenset(a for a in _as_list(accounts) if isinstance(a, str)),
            frozenset(o for o in _as_list(organizations) if isinstance(o, str)),
        )


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def parse_policy(policy: Any) -> Any:
    """A policy as an object, whether given as one or as JSON text (None if the text is not JSON)."""
    if isinstance(policy, str):
        try:
            return json.loads(policy)
        except ValueError:
            return None
    return policy


def allow_statements(policy: Any) -> list[Mapping[str, Any]]:
    document = parse_policy(policy)
    if not isinstance(document, Mapping):
        return []
    return [s for s in _as_list(document.get("Statement")) if isinstance(s, Mapping) and s.get("Effect") == "Allow"]


# -- values that pin the caller -------------------------------------------------------------


def _written_out(value: str) -> bool:
    """No wildcard and no policy variable: the value means itself."""
    return bool(value.strip()) and not any(mark in value for mark in ("*", "?", "${"))


def _arn_account(value: str) -> str | None:
    parts = value.split(":", 5)
    return parts[4] if len(parts) == 6 and parts[0] == "arn" else None


_IPV4_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")


def _narrow_range(value: str) -> bool:
    """S3 Block Public Access: a range wider than /8 (IPv4) or /32 (IPv6) is public, private ranges aside."""
    try:
        network = ipaddress.ip_network(value.strip(), strict=False)
    except ValueError:
        return False
    if isinstance(network, ipaddress.IPv6Network) and network.subnet_of(_IPV4_MAPPED):
        # ::ffff:0.0.0.0/96 is every IPv4 address: judge it as the IPv4 range it maps.
        return network.prefixlen - 96 >= 8
    if network.is_private:
        return True
    return network.prefixlen >= (8 if network.version == 4 else 32)


def _github_owner(value: str, prefix: str) -> bool:
    """`prefix` + OWNER + `/`..., with the owner written out (repo:octo-org/octo-repo:ref:...)."""
    return _tenant(value, prefix, "/")


def _tenant(value: str, prefix: str, end: str) -> bool:
    """`prefix` + TENANT + `end`..., with the tenant written out: `project_path:my-group/`...
    (GitLab), `organization:my-org:`... (HCP Terraform)."""
    if not value.startswith(prefix):
        return False
    tenant, found, _ = value[len(prefix) :].partition(end)
    return bool(found) and _written_out(tenant)


@dataclass(frozen=True)
class _Key:
    operators: frozenset[str]
    pins: Callable[[str, Trusted], bool]
    who: bool = True
    """Pins who calls (an account, an organization, a repository owner), not only from where
    (an IP range, a VPC): only who-keys make a named outside account or an open OIDC issuer safe."""


_STRING = frozenset({"stringequals", "stringequalsignorecase", "stringlike"})
_ARN = _STRING | {"arnequals", "arnlike"}
_IP = frozenset({"ipaddress"})


def _account(value: str, trusted: Trusted) -> bool:
    return value in trusted.accounts


def _organization(value: str, trusted: Trusted) -> bool:
    return value in trusted.organizations


def _organization_path(value: str, trusted: Trusted) -> bool:
    return value.split("/", 1)[0] in trusted.organizations


def _arn_in_trusted_account(value: str, trusted: Trusted) -> bool:
    return _arn_account(value) in trusted.accounts


def _named(value: str, trusted: Trusted) -> bool:
    return _written_out(value)


def _ip_range(value: str, trusted: Trusted) -> bool:
    return _narrow_range(value)


_GITHUB = GITHUB_ACTIONS_ISSUER + ":"
_PINNING_KEYS: Mapping[str, _Key] = {
    "aws:principalaccount": _Key(_STRING, _account),
    "aws:sourceaccount": _Key(_STRING, _account),
    "aws:sourceowner": _Key(_STRING, _account),
    "kms:calleraccount": _Key(_STRING, _account),
    "s3:dataaccesspointaccount": _Key(_STRING, _account),
    "aws:principalorgid": _Key(_STRING, _organization),
    "aws:principalorgpaths": _Key(_STRING, _organization_path),
    "aws:sourceorgid": _Key(_STRING, _organization),
    "aws:sourceorgpaths": _Key(_STRING, _organization_path),
    "aws:sourcearn": _Key(_ARN, _arn_in_trusted_account),
    "aws:principalarn": _Key(_ARN, _arn_in_trusted_account),
    "s3:dataaccesspointarn": _Key(_ARN, _arn_in_trusted_account),
    "aws:sourcevpc": _Key(_STRING, _named, who=False),
    "aws:sourcevpce": _Key(_STRING, _named, who=False),
    "aws:sourceip": _Key(_IP, _ip_range, who=False),
    # GitHub Actions' OIDC claims (IAM: condition keys for OIDC federation): pinned to one
    # repository owner, whose repositories strangers cannot create.
    _GITHUB + "sub": _Key(_STRING, lambda value, trusted: _github_owner(value, "repo:")),
    _GITHUB + "repository": _Key(_STRING, lambda value, trusted: _github_owner(value, "")),
    _GITHUB + "job_workflow_ref": _Key(_STRING, lambda value, trusted: _github_owner(value, "")),
    _GITHUB + "repository_owner": _Key(_STRING, _named),
    _GITHUB + "repository_owner_id": _Key(_STRING, _named),
    _GITHUB + "repository_id": _Key(_STRING, _named),
    # The other open issuers' tenant claims: GitLab.com's project path (GitLab docs, "Configure
    # OpenID Connect in AWS"), HCP Terraform's organization (its "Dynamic Credentials with the
    # AWS Provider"), the Google client or user, the Cognito identity pool (IAM user guide,
    # "Available keys for AWS OIDC federation").
    "gitlab.com:sub": _Key(_STRING, lambda value, trusted: _tenant(value, "project_path:", "/")),
    "app.terraform.io:sub": _Key(_STRING, lambda value, trusted: _tenant(value, "organization:", ":")),
    "accounts.google.com:aud": _Key(_STRING, _named),
    "accounts.google.com:oaud": _Key(_STRING, _named),
    "accounts.google.com:sub": _Key(_STRING, _named),
    "cognito-identity.amazonaws.com:aud": _Key(_STRING, _named),
}


def pins_caller(condition: Any, trusted: Trusted, *, where_is_enough: bool) -> bool:
    """Does one clause of this Condition block admit only trusted callers (see the module's
    rules)? With `where_is_enough`, a clause that pins only where the call comes from counts."""
    if not isinstance(condition, Mapping):
        return False
    for operator, clauses in condition.items():
        if not isinstance(clauses, Mapping):
            continue
        # ForAnyValue: is false when the key is absent, like the plain operator; ForAllValues: is true.
        name = str(operator).lower().removeprefix("foranyvalue:")
        for key, values in clauses.items():
            rule = _PINNING_KEYS.get(str(key).lower())
            if rule is None or name not in rule.operators or not (rule.who or where_is_enough):
                continue
            listed = _as_list(values)
            if listed and all(isinstance(value, str) and rule.pins(value, trusted) for value in listed):
                return True
    return False


# -- principals ------------------------------------------------------------------------------


def _is_everyone(principal: Any) -> bool:
    if principal == "*":
        return True
    if isinstance(principal, list):
        return any(_is_everyone(item) for item in principal)
    if isinstance(principal, Mapping):
        return any("*" in _as_list(principal.get(kind)) for kind in ("AWS", "CanonicalUser"))
    return False


def _aws_principals(principal: Any) -> list[str]:
    """The AWS principals of a Principal element, as written ("*", account ids, ARNs)."""
    if principal == "*":
        return ["*"]
    if isinstance(principal, Mapping):
        return [str(p) for p in _as_list(principal.get("AWS"))]
    return [str(p) for p in _as_list(principal) if isinstance(p, str)]


def _account_of(principal: str) -> str | None:
    if principal.isascii() and principal.isdigit():
        return principal
    return _arn_account(principal) if principal.startswith("arn:") else None


def _open_issuer(federated: str) -> bool:
    """A federated principal whose tokens anyone can get (`OPEN_ISSUERS`), written as an
    OIDC provider's ARN or, for Google and Cognito, by name; not an enterprise's own
    issuer (token.actions.githubusercontent.com/ENTERPRISE)."""
    provider = federated.split(":oidc-provider/", 1)[1] if ":oidc-provider/" in federated else federated
    return provider.rstrip("/").removeprefix("https://") in OPEN_ISSUERS


def statement_outsiders(statement: Mapping[str, Any], trusted: Trusted) -> list[str]:
    """Who outside the organization an Allow statement lets in, as written in its Principal:
    `*` (anyone), AWS principals of untrusted accounts, and the OIDC providers anyone can get
    a token from (`OPEN_ISSUERS`); nobody when a condition pins the caller to trusted values.
    Service principals and the organization's own principals are not outsiders.

    Everyone is kept out by any pinning clause (S3 calls a policy limited to a VPC or to
    narrow IP ranges non-public); a named outside account or an open OIDC issuer only by a
    clause that pins who calls (an organization, an account, a repository owner).
    """
    if statement.get("Effect") != "Allow":
        return []
    condition = statement.get("Condition")
    if pins_caller(condition, trusted, where_is_enough=False):
        return []
    principal = statement.get("Principal")
    found = []
    if "NotPrincipal" in statement or _is_everyone(principal):  # NotPrincipal: everyone but a few
        if not pins_caller(condition, trusted, where_is_enough=True):
            found.append("*")
    if "NotPrincipal" not in statement:
        found += [p for p in _aws_principals(principal) if p != "*" and _account_of(p) not in trusted.accounts]
        if isinstance(principal, Mapping):
            found += [str(f) for f in _as_list(principal.get("Federated")) if _open_issuer(str(f))]
    return list(dict.fromkeys(found))


def public_statements(policy: Any, trusted_accounts: Any, trusted_organizations: Any) -> list[Any]:
    """The Allow statements of a resource policy (object or JSON text) that any principal may
    use: Principal `"*"`, `{"AWS": "*"}` or a list holding `"*"` (or NotPrincipal), unless a
    condition pins the caller to trusted values: an account of `trusted_accounts` or an
    organization of `trusted_organizations` (aws:PrincipalAccount, aws:SourceAccount,
    aws:SourceOwner, kms:CallerAccount, aws:PrincipalOrgID, aws:PrincipalOrgPaths, an ARN's
    account in aws:SourceArn or aws:PrincipalArn), a VPC or endpoint written out
    (aws:SourceVpc, aws:SourceVpce), or IP ranges no wider than /8 (IPv4) or /32 (IPv6)
    (aws:SourceIp, as S3 Block Public Access judges). Operators true for a request without
    the key (`ForAllValues:...`, `...IfExists`, negations) pin nothing, and every value of a
    key must be trusted. Pass `named_list('trusted_accounts')` and
    `named_list('trusted_organizations')`. The statements are returned as written.
    """
    return open_to_everyone(policy, Trusted.of(trusted_accounts, trusted_organizations))


def open_to_everyone(policy: Any, trusted: Trusted) -> list[Any]:
    """`public_statements()`, for the actions that fix what it found."""
    return [s for s in allow_statements(policy) if "*" in statement_outsiders(s, trusted)]


def external_principals(policy: Any, trusted_accounts: Any, trusted_organizations: Any) -> list[str]:
    """Who outside the organization the Allow statements of a trust or resource policy let
    in, as written: `*`, AWS principals in accounts not in `trusted_accounts`, and an OIDC
    provider anyone can get tokens from when no condition names the tenant: GitHub Actions
    without the repository owner (`sub` such as `repo:octo-org/*`, `repository`,
    `repository_owner`...; `repo:*` or no `sub` pins nothing), GitLab.com without the
    project's group (`gitlab.com:sub` `project_path:my-group/...`), HCP Terraform without
    the organization (`app.terraform.io:sub` `organization:my-org:...`), Google without the
    client (`accounts.google.com:aud`), Cognito identity pools without the pool
    (`cognito-identity.amazonaws.com:aud`). A
    statement whose condition pins the caller to trusted values (as `public_statements()`
    judges) lets no outsider in. Service principals are not external. Pass
    `named_list('trusted_accounts')` and `named_list('trusted_organizations')`.
    """
    trusted = Trusted.of(trusted_accounts, trusted_organizations)
    found = [p for s in allow_statements(policy) for p in statement_outsiders(s, trusted)]
    return list(dict.fromkeys(found))


_EVERY_ACTION = frozenset({"*", "*:*", "iam:*"})
"""Actions that amount to everything: all of them, or all of IAM (its holder grants itself the rest)."""


def administrator_statements(policy: Any) -> list[Any]:
    """The Allow statements of an identity policy (object or JSON text) that make its holder
    an administrator: every action (`*`), or all of IAM (`iam:*`, with which it grants
    itself the rest), or everything but a few (`NotAction`), on every resource (`*`, or
    `NotResource`). Conditions are not weighed: a notice is cheaper than a missed
    administrator. For PutUserPolicy/PutRolePolicy/PutGroupPolicy and CreatePolicyVersion.
    """
    found = []
    for statement in allow_statements(policy):
        resources = {str(r) for r in _as_list(statement.get("Resource"))}
        every_resource = "*" in resources or "NotResource" in statement
        actions = {str(a).lower() for a in _as_list(statement.get("Action"))}
        every_action = bool(actions & _EVERY_ACTION) or "NotAction" in statement
        if every_resource and every_action:
            found.append(statement)
    return found


def lambda_permission_policy(request: Any) -> dict[str, Any] | None:
    """The statement a Lambda AddPermission request adds to the function's policy, as Lambda
    writes it, in a one-statement policy for `public_statements()`: `principal` (`*`, an
    account, a service), `sourceArn` (ArnLike AWS:SourceArn), `sourceAccount`,
    `principalOrgID` and `functionUrlAuthType` (StringEquals), `invokedViaFunctionUrl`
    (Bool lambda:InvokedViaFunctionUrl, which function URLs need since October 2025: it
    limits the way in, not who, so it pins nothing). Null without a principal.
    """
    if not isinstance(request, Mapping):
        return None
    given = request.get("principal")
    if not isinstance(given, str) or not given:
        return None
    principal: Any = given
    if given != "*":
        principal = {"AWS": given} if _account_of(given) else {"Service": given}
    equals = {
        key: request[field]
        for field, key in (
            ("sourceAccount", "AWS:SourceAccount"),
            ("principalOrgID", "aws:PrincipalOrgID"),
            ("functionUrlAuthType", "lambda:FunctionUrlAuthType"),
        )
        if isinstance(request.get(field), str)
    }
    condition: dict[str, Any] = {"StringEquals": equals} if equals else {}
    if request.get("invokedViaFunctionUrl") in (True, "true"):
        condition["Bool"] = {"lambda:InvokedViaFunctionUrl": "true"}
    if isinstance(request.get("sourceArn"), str):
        condition["ArnLike"] = {"AWS:SourceArn": request["sourceArn"]}
    statement: dict[str, Any] = {
        "Sid": request.get("statementId"),
        "Effect": "Allow",
        "Principal": principal,
        "Action": request.get("action"),
    }
    if condition:
        statement["Condition"] = condition
    return {"Version": "2012-10-17", "Statement": [statement]}


# -- what CloudTrail needs of the audit chain's policies ---------------------------------------

CLOUDTRAIL_SERVICE = "cloudtrail.amazonaws.com"


def _grants_service(statement: Mapping[str, Any], service: str, wanted: set[str]) -> bool:
    """An Allow statement naming `service` as its principal, for one of the `wanted` actions
    (lower case; `service:*` and `*` count)."""
    principal = statement.get("Principal")
    services = principal.get("Service") if isinstance(principal, Mapping) else None
    if service not in _as_list(services):
        return False
    actions = {str(action).lower() for action in _as_list(statement.get("Action"))}
    prefix = next(iter(wanted)).split(":", 1)[0]
    return bool(actions & (wanted | {f"{prefix}:*", "*"}))


def _denies_service(policy: Any, service: str) -> bool:
    """A Deny statement that names `service` itself. A Deny for everyone is left out: log
    buckets commonly deny requests without TLS to everyone, which CloudTrail never makes."""
    document = parse_policy(policy)
    statements = _as_list(document.get("Statement")) if isinstance(document, Mapping) else []
    for statement in statements:
        if not isinstance(statement, Mapping) or statement.get("Effect") != "Deny":
            continue
        principal = statement.get("Principal")
        if isinstance(principal, Mapping) and service in _as_list(principal.get("Service")):
            return True
    return False


def cloudtrail_can_write(policy: Any) -> bool:
    """Whether a bucket policy still lets CloudTrail deliver log files: an Allow for the service
    principal `cloudtrail.amazonaws.com` to `s3:PutObject` and to `s3:GetBucketAcl` (CloudTrail
    user guide, "Amazon S3 bucket policy for CloudTrail": it checks the ACL, then writes), and
    no Deny statement naming CloudTrail (whatever its condition: trailguard does not guess
    whether it spares CloudTrail's own requests). Given
    as JSON text or as the object CloudTrail records (`requestParameters.bucketPolicy`)."""
    statements = allow_statements(policy)
    writes = any(_grants_service(s, CLOUDTRAIL_SERVICE, {"s3:putobject"}) for s in statements)
    checks = any(_grants_service(s, CLOUDTRAIL_SERVICE, {"s3:getbucketacl"}) for s in statements)
    return writes and checks and not _denies_service(policy, CLOUDTRAIL_SERVICE)


def cloudtrail_can_encrypt(policy: Any) -> bool:
    """Whether a key policy still lets CloudTrail encrypt log files: an Allow for the service
    principal `cloudtrail.amazonaws.com` to `kms:GenerateDataKey*` (CloudTrail user guide,
    "Configure AWS KMS key policies for CloudTrail"), and no Deny naming CloudTrail.
    A policy trailguard cannot read (not JSON) counts as not letting it."""
    statements = allow_statements(policy)
    encrypts = any(
        _grants_service(s, CLOUDTRAIL_SERVICE, {"kms:generatedatakey*", "kms:generatedatakey"}) for s in statements
    )
    return encrypts and not _denies_service(policy, CLOUDTRAIL_SERVICE)
