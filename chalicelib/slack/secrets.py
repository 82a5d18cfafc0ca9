"""The Slack bot token and signing secret: where they are kept, and how they are read.

A setting holds either the value (for local runs and tests) or where to read it:
`ssm:NAME` (a SecureString parameter, decrypted) or `secretsmanager:NAME` (a secret's
string). Deployed stages use a reference, so that the value appears neither in the
Lambda's configuration nor in `.chalice/config.json`. Values are read once per container
and never logged: errors name the reference, never what it holds.
"""

from __future__ import annotations

from typing import Any, Callable

SSM = "ssm:"
SECRETS_MANAGER = "secretsmanager:"


class SecretError(Exception):
    """A secret could not be read; the message names where it was looked for."""


def is_reference(setting: str) -> bool:
    return setting.startswith((SSM, SECRETS_MANAGER))


def read_secret(setting: str, home_client: Callable[[str], Any]) -> str:
    """The value a setting holds or points to. `home_client(service)` gives a boto3 client."""
    if setting.startswith(SSM):
        name = setting[len(SSM):]
        client = home_client("ssm")
        try:
            value = client.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
        except client.exceptions.ParameterNotFound:
            raise SecretError(f"the SSM parameter {name} does not exist (python -m chalicelib bootstrap creates it)") from None
        except Exception as error:  # noqa: BLE001 - reported without the value
            raise SecretError(f"could not read the SSM parameter {name}: {type(error).__name__}") from None
    elif setting.startswith(SECRETS_MANAGER):
        name = setting[len(SECRETS_MANAGER):]
        client = home_client("secretsmanager")
        try:
            value = client.get_secret_value(SecretId=name).get("SecretString")
        except client.exceptions.ResourceNotFoundException:
            raise SecretError(f"the secret {name} does not exist in Secrets Manager") from None
        except Exception as error:  # noqa: BLE001 - reported without the value
            raise SecretError(f"could not read the secret {name}: {type(error).__name__}") from None
    else:
        value = setting
    if not value or not value.strip():
        raise SecretError(f"{_where(setting)} is empty")
    return value.strip()


def _where(setting: str) -> str:
    return setting if is_reference(setting) else "the setting"
