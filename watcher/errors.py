"""One error hierarchy: every failure is either worth retrying or not.

The worker decides what happens to a message from the class alone:
``RetryableError`` -> visibility backoff (the queue's redrive policy bounds the tries),
``PermanentError`` -> dead-letter queue at once, with the error text as the reason.
Any other exception escaping a handler is treated as retryable: an unknown failure
must never lose a file.
"""

from __future__ import annotations

from typing import Any


class WatcherError(Exception):
    """Base class of every error watcher raises on purpose."""


class RetryableError(WatcherError):
    """The unit of work may succeed if tried again later (network, throttling, timeouts)."""


class PermanentError(WatcherError):
    """Trying again cannot help (unparseable message, rejected request, bad input)."""


class MessageFormatError(PermanentError):
    """The SQS message body is not JSON, or not any known S3 notification shape."""


class ConfigError(WatcherError):
    """The configuration is invalid; ``problems`` lists every problem found, each naming its field."""

    def __init__(self, problems: list[str], source: str = "config") -> None:
        self.problems = problems
        self.source = source
        super().__init__(f"{source}: " + "; ".join(problems))


class ReferenceProblem(WatcherError, ValueError):
    """A ``${source:argument}`` reference could not be resolved; the message says which and why,
    never its value."""


def error_code(error: BaseException | dict[str, Any]) -> str | None:
    """The AWS error code of a botocore ``ClientError`` (``exc.response["Error"]["Code"]``), or of
    one failed entry of a batch answer (``{"Code": ...}``); None for anything else. Duck-typed, so
    that this module needs no botocore."""
    if isinstance(error, dict):
        code = error.get("Code")
    else:
        response = getattr(error, "response", None)
        code = response.get("Error", {}).get("Code") if isinstance(response, dict) else None
    return code if isinstance(code, str) else None
