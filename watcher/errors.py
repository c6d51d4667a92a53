"""One error hierarchy: every failure is either worth retrying or not.

The worker decides what happens to a message from the class alone:
``RetryableError`` -> visibility backoff (the queue's redrive policy bounds the tries),
``PermanentError`` -> dead-letter queue at once, with the error text as the reason.
Any other exception escaping a handler is treated as retryable: an unknown failure
must never lose a file.
"""

from __future__ import annotations


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
