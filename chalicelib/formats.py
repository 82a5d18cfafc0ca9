"""How the ids trailguard reads from its settings and its playbooks are written.

One definition each, shared by the settings (checked when a function starts) and the
playbook schema (checked when a playbook is loaded). An id is matched whole
(`re.fullmatch`): with `re.match`, `$` would also match before a trailing newline.
"""

from __future__ import annotations

SLACK_CHANNEL = "^(#[a-z0-9][a-z0-9._-]{0,79}|[CG][A-Z0-9]{6,})$"
"""A channel id (C0123ABCD, G0123ABCD) or #name."""
SLACK_APPROVER = "^[UWS][A-Z0-9]{6,}$"
"""A Slack user id (U0123ABCD, W0123ABCD) or user-group id (S0123ABCD)."""
SLACK_TEAM = r"[TE][A-Z0-9]{2,}"
"""A Slack workspace (team) or Enterprise Grid organization id."""
SLACK_APP = r"A[A-Z0-9]{2,}"
"""A Slack app id."""
INTEGRITY_KEY = (
    r"alias/[A-Za-z0-9/_-]{1,250}"
    r"|arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:(alias/[A-Za-z0-9/_-]{1,250}|key/[A-Za-z0-9-]{1,100})"
    r"|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32}"
)
"""A KMS key alias, an alias or key ARN, or a key id: what TRAILGUARD_INTEGRITY_KEY may name."""
