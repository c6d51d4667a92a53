"""``${secretsmanager:NAME}`` and ``${ssm:/path}`` references: secret stores read with the AWS SDK.

``${secretsmanager:NAME}`` is the secret's string value; ``${secretsmanager:NAME#field}`` one field
of a JSON secret. ``${ssm:/path}`` is a Parameter Store value, SecureString decrypted. The AWS
settings are the configuration's ``aws`` section (``watcher.refs.AWS_SETTINGS``). Values are cached
for ``CACHE_SECONDS``; ``resolve_fresh`` reads them again (a token rotated since it was cached).
Every value is registered as a secret, so that it is masked in logs; error messages name the
reference, never a value.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from watcher.config import AwsConfig
from watcher.refs import AWS_SETTINGS, RESOLVERS, SECRET_SOURCES, ReferenceError_, resolve_string

CACHE_SECONDS = 300.0
_bypass_cache: ContextVar[bool] = ContextVar("watcher_secrets_bypass_cache", default=False)
_lock = threading.Lock()
_cache: dict[tuple[str, str, AwsConfig], tuple[float, str]] = {}
_clients: dict[tuple[str, AwsConfig], Any] = {}


def _settings() -> AwsConfig:
    settings = AWS_SETTINGS.get()
    return settings if isinstance(settings, AwsConfig) else AwsConfig()


def _client(service: str, aws: AwsConfig) -> Any:
    from watcher.aws import client  # watcher.aws imports the config module, which imports this one

    with _lock:
        found = _clients.get((service, aws))
        if found is None:
            found = _clients[(service, aws)] = client(aws, service)
        return found


def _cached(source: str, argument: str, fetch: Callable[[AwsConfig], str]) -> str:
    aws = _settings()
    key = (source, argument, aws)
    now = time.monotonic()
    if not _bypass_cache.get():
        with _lock:
            hit = _cache.get(key)
        if hit is not None and now - hit[0] < CACHE_SECONDS:
            return hit[1]
    try:
        value = fetch(aws)
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise ReferenceError_(
            f"{source} {argument}: {error.get('Code', 'error')}: {error.get('Message', '')}"
        ) from None
    except BotoCoreError as exc:
        raise ReferenceError_(f"{source} {argument}: {exc}") from None
    with _lock:
        _cache[key] = (now, value)
    return value


def _from_secrets_manager(argument: str, _environ: Mapping[str, str]) -> str:
    name, _, json_field = argument.partition("#")

    def fetch(aws: AwsConfig) -> str:
        response = _client("secretsmanager", aws).get_secret_value(SecretId=name)
        value = response.get("SecretString")
        if value is None:
            raise ReferenceError_(f"secretsmanager {name}: the secret is binary, not a string")
        return str(value)

    value = _cached("secretsmanager", name, fetch)
    if not json_field:
        return value
    try:
        document = json.loads(value)
    except ValueError:
        raise ReferenceError_(f"secretsmanager {name}: not a JSON secret, cannot take field {json_field!r}") from None
    if not isinstance(document, dict) or json_field not in document:
        raise ReferenceError_(f"secretsmanager {name}: no field {json_field!r}")
    return str(document[json_field])


def _from_ssm(argument: str, _environ: Mapping[str, str]) -> str:
    def fetch(aws: AwsConfig) -> str:
        response = _client("ssm", aws).get_parameter(Name=argument, WithDecryption=True)
        return str(response["Parameter"]["Value"])

    return _cached("ssm", argument, fetch)


def resolve_fresh(text: str, aws: AwsConfig, environ: Mapping[str, str] | None = None) -> str:
    """Resolve the references in ``text`` bypassing the cache (blocking: call it in a thread)."""
    settings = AWS_SETTINGS.set(aws)
    bypass = _bypass_cache.set(True)
    try:
        return resolve_string(text, secret=True, environ=environ)
    finally:
        _bypass_cache.reset(bypass)
        AWS_SETTINGS.reset(settings)


def clear_cache() -> None:
    with _lock:
        _cache.clear()


RESOLVERS["secretsmanager"] = _from_secrets_manager
RESOLVERS["ssm"] = _from_ssm
SECRET_SOURCES.update(("secretsmanager", "ssm"))
