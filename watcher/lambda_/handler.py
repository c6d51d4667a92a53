"""The AWS Lambda entry point: set the function's handler to ``watcher.lambda_.handler.handler``
and attach it to the queue with an SQS event source mapping whose ``FunctionResponseTypes`` is
``["ReportBatchItemFailures"]``.

Imported by the Lambda runtime, this module makes the cold-start state (watcher.lambda_.shim) at
once, in the function's init phase; imported anywhere else, on the first call.
"""

from __future__ import annotations

import os
from typing import Any

from watcher.lambda_.shim import LambdaContext, Shim

_shim: Shim | None = None


def handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    """An SQS batch -> ``{"batchItemFailures": [{"itemIdentifier": messageId}, ...]}``."""
    return shim().invoke(event, context)


def shim() -> Shim:
    """This execution environment's shim, made on first use (``WATCHER_CONFIG``, ``WATCHER_*``)."""
    global _shim
    if _shim is None:
        _shim = Shim.from_environment()
    return _shim


if "AWS_LAMBDA_RUNTIME_API" in os.environ:  # in a Lambda runtime: the cold start belongs to init
    shim()
