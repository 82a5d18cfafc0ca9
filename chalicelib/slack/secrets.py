"""The Slack bot token and signing secret: where they are kept, and how they are read.

A setting holds either the value (for local runs and tests) or where to read it:
`ssm:NAME` (a SecureString parameter, decrypted) or `secretsmanager:NAME` (a secret's
string). Deployed stages use a reference, so that the value appears neither in the
Lambda's configuration nor in `.chalice/config.json`. Values are read once per container
and never logged: errors name the reference, never what it holds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

SSM = "ssm:"
SECRETS_MANAGER = "secretsmanager:"
PLACEHOLDER = "trailguard-placeholder: put the real value here"
"""What `bootstrap` stores in a secret it creates; refused when read, with what to do."""


class SecretError(Exception):
    """A secret could not be read; the message names where it was looked for."""


def is_reference(setting: str) -> bool:
    return setting.startswith((SSM, SECRETS_MANAGER))


def read_secret(setting: str, home_client: Callable[[str], Any]) -> str:
    """The value a setting holds or points to. `home_client(service)` gives a boto3 client."""
    if setting.startswith(SSM):
        name = setting[len(SSM) :]
        client = home_client("ssm")
        try:
            value = client.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
        except client.exceptions.ParameterNotFound:
            raise SecretError(
                f"the SSM parameter {name} does not exist (python -m trailguard bootstrap creates it)"
            ) from None
        except Exception as error:
            raise SecretError(f"could not read the SSM parameter {name}: {type(error).__name__}") from None
    elif setting.startswith(SECRETS_MANAGER):
        name = setting[len(SECRETS_MANAGER) :]
        client = home_client("secretsmanager")
        try:
            value = client.get_secret_value(SecretId=name).get("SecretString")
        except client.exceptions.ResourceNotFoundException:
            raise SecretError(f"the secret {name} does not exist in Secrets Manager") from None
        except Exception as error:
            raise SecretError(f"could not read the secret {name}: {type(error).__name__}") from None
    else:
        value = setting
    if not value or not value.strip():
        raise SecretError(f"{_where(setting)} is empty")
    if value.strip() == PLACEHOLDER:
        raise SecretError(f"{setting} still holds bootstrap's placeholder: {how_to_set(setting)}")
    return value.strip()


def how_to_set(setting: str) -> str:
    """The command that puts a real value into a referenced secret."""
    if setting.startswith(SSM):
        return f"aws ssm put-parameter --overwrite --type SecureString --name {setting[len(SSM) :]} --value VALUE"
    return f"aws secretsmanager put-secret-value --secret-id {setting[len(SECRETS_MANAGER) :]} --secret-string VALUE"


def ensure_placeholder(setting: str, home_client: Callable[[str], Any]) -> str | None:
    """Create a referenced secret holding the placeholder, unless it exists (never overwrites).
    Returns what was done, or None."""
    if setting.startswith(SSM):
        name, client = setting[len(SSM) :], home_client("ssm")
        try:
            client.put_parameter(
                Name=name,
                Value=PLACEHOLDER,
                Type="SecureString",
                Overwrite=False,
                Description="trailguard: Slack secret (replace the placeholder)",
            )
        except client.exceptions.ParameterAlreadyExists:
            return None
        return f"created the SSM parameter {name} (SecureString) with a placeholder"
    if setting.startswith(SECRETS_MANAGER):
        name, client = setting[len(SECRETS_MANAGER) :], home_client("secretsmanager")
        try:
            client.create_secret(
                Name=name, SecretString=PLACEHOLDER, Description="trailguard: Slack secret (replace the placeholder)"
            )
        except client.exceptions.ResourceExistsException:
            return None
        return f"created the secret {name} with a placeholder"
    return None


def _where(setting: str) -> str:
    return setting if is_reference(setting) else "the setting"
