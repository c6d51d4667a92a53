"""``${secretsmanager:NAME}`` and ``${ssm:/path}`` references: secret stores read with the AWS SDK.

``${secretsmanager:NAME}`` is the secret's string value; ``${secretsmanager:NAME#field}`` one field
of a JSON secret. ``${ssm:/path}`` is a Parameter Store value, SecureString decrypted. The AWS
settings are the configuration's ``aws`` section. Values are cached for ``CACHE_SECONDS``; ``fresh``
reads them again (a token rotated since it was cached). Error messages name the reference, never a
value; watcher.config.refs registers every value as a secret.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from watcher.aws import client
from watcher.config.schema import AwsConfig
from watcher.errors import ReferenceProblem, error_code

CACHE_SECONDS = 300.0
_lock = threading.Lock()
_cache: dict[tuple[str, str, AwsConfig], tuple[float, str]] = {}
_clients: dict[tuple[str, AwsConfig], Any] = {}


def _client(service: str, aws: AwsConfig) -> Any:
    with _lock:
        found = _clients.get((service, aws))
        if found is None:
            found = _clients[(service, aws)] = client(aws, service)
        return found


def _cached(source: str, argument: str, aws: AwsConfig, fresh: bool, fetch: Callable[[], str]) -> str:
    key = (source, argument, aws)
    now = time.monotonic()
    if not fresh:
        with _lock:
            hit = _cache.get(key)
        if hit is not None and now - hit[0] < CACHE_SECONDS:
            return hit[1]
    try:
        value = fetch()
    except ClientError as exc:
        message = exc.response.get("Error", {}).get("Message", "")
        raise ReferenceProblem(f"{source} {argument}: {error_code(exc) or 'error'}: {message}") from None
    except BotoCoreError as exc:
        raise ReferenceProblem(f"{source} {argument}: {exc}") from None
    with _lock:
        _cache[key] = (now, value)
    return value


def from_secrets_manager(argument: str, aws: AwsConfig, *, fresh: bool = False) -> str:
    name, _, json_field = argument.partition("#")

    def fetch() -> str:
        response = _client("secretsmanager", aws).get_secret_value(SecretId=name)
        value = response.get("SecretString")
        if value is None:
            raise ReferenceProblem(f"secretsmanager {name}: the secret is binary, not a string")
        return str(value)

    value = _cached("secretsmanager", name, aws, fresh, fetch)
    if not json_field:
        return value
    try:
        document = json.loads(value)
    except ValueError:
        raise ReferenceProblem(f"secretsmanager {name}: not a JSON secret, cannot take field {json_field!r}") from None
    if not isinstance(document, dict) or json_field not in document:
        raise ReferenceProblem(f"secretsmanager {name}: no field {json_field!r}")
    return str(document[json_field])


def from_ssm(argument: str, aws: AwsConfig, *, fresh: bool = False) -> str:
    def fetch() -> str:
        response = _client("ssm", aws).get_parameter(Name=argument, WithDecryption=True)
        return str(response["Parameter"]["Value"])

    return _cached("ssm", argument, aws, fresh, fetch)


def clear_cache() -> None:
    with _lock:
        _cache.clear()
