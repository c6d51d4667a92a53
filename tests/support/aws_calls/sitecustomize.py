"""Loaded by a `watcher run` started with this folder on its PYTHONPATH (tests/test_worker_iam.py):
every AWS API call of the process, through boto3 or aiobotocore, is recorded (operation and the
parameters that name resources) as one JSON line in $WATCHER_TEST_AWS_CALLS, through botocore's own
event hook (before-parameter-build), registered on every session the process makes."""

from __future__ import annotations

import json
import os
import threading
from typing import Any

import botocore.session

_PATH = os.environ.get("WATCHER_TEST_AWS_CALLS")
_NAMING = ("QueueUrl", "QueueName", "QueueOwnerAWSAccountId", "Bucket", "Key", "VersionId", "SecretId", "Name",
           "TableName", "TopicArn", "TargetArn", "registryIds")  # fmt: skip
_lock = threading.Lock()


def _record(params: dict[str, Any], model: Any, **_: Any) -> None:
    line = {
        "service": model.service_model.signing_name,
        "operation": model.name,
        "params": {k: v for k, v in params.items() if k in _NAMING},
    }
    with _lock, open(str(_PATH), "a", encoding="utf-8") as calls:
        calls.write(json.dumps(line) + "\n")


if _PATH:
    _original_init = botocore.session.Session.__init__

    def _init(self: botocore.session.Session, *args: Any, **kwargs: Any) -> None:
        _original_init(self, *args, **kwargs)
        self.register("before-parameter-build", _record)

    botocore.session.Session.__init__ = _init  # type: ignore[method-assign]
