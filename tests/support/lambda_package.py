"""The deployment package the Lambda tests run: `watcher package lambda` as a user runs it, once per session (about
8 s: the wheels come from the PyPI mirror), with the routes of the end-to-end tests, their module
(tests/support/lambda_routes.py), a log-only configuration (``WATCHER_CONFIG=log-only.yaml``) and one Lambda cannot
run (``not-for-lambda.yaml``)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.fire_server import EXECUTE
from tests.support.process import REPO

HANDLER = "watcher.lambda_.handler.handler"
ROUTES = REPO / "tests" / "support" / "lambda_routes.py"
REPORT = {"queue_url": "${env:DONE_QUEUE_URL}"}  # options of the routes that report to the done queue
CONFIG = {
    "lambda": {"max_concurrency": 4, "reserve_seconds": 2},
    "queue": {"name": "watcher-events"},  # for watcher check --live and provision: the function reads eventSourceARN
    "worker": {"retry_initial_seconds": 2, "retry_max_seconds": 2},
    "logging": {"format": "json"},
    "routes": [
        {
            "name": "good",
            "prefix": "good/",
            "handler": {"type": "python", "function": "lambda_routes:report", "options": REPORT},
        },
        {"name": "bad", "prefix": "bad/", "handler": {"type": "python", "function": "lambda_routes:fail_permanently"}},
        {
            "name": "flaky",
            "prefix": "flaky/",
            "handler": {
                "type": "python",
                "function": "lambda_routes:fail_first_delivery",
                "options": {"queue_url": "${env:DONE_QUEUE_URL}"},
            },
        },
        {
            "name": "fire",
            "prefix": "events/",
            "suffix": "_SUCCESS",
            "handler": {
                "type": "workflow",
                "url": "${env:FIRE_URL}" + EXECUTE,
                "token": "${env:FIRE_TOKEN}",
                "workflow_id": "42",
                "timeout_seconds": 5,
                "retry": {"attempts": 3, "max_seconds": 5, "initial_seconds": 0.2},
            },
        },
    ],
}
LOG_ONLY = {
    "lambda": {},
    "queue": {"name": "watcher-events"},
    "logging": {"format": "json"},
    "routes": [{"name": "events", "prefix": "events/", "handler": {"type": "log"}}],
}


# What Lambda cannot run: a container route on Docker (refused at the cold start, naming the route).
NOT_FOR_LAMBDA = {
    **LOG_ONLY,
    "routes": [
        *LOG_ONLY["routes"],
        {"name": "frames", "prefix": "videos/", "handler": {"type": "container", "image": "ffmpeg", "command": "true"}},
    ],
}


@dataclass
class Built:
    path: Path
    report: str
    seconds: float

    def names(self) -> list[str]:
        with zipfile.ZipFile(self.path) as archive:
            return archive.namelist()


def package(tmp: Path, config: dict[str, Any], *args: str) -> Built:
    """`watcher package lambda`, as a user runs it: the variables the configuration references set (the
    routes' module is importable for the validation only through its ``--add``)."""
    path = tmp / "watcher.yaml"
    path.write_text(yaml.safe_dump(config))
    output = tmp / "watcher-lambda.zip"
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "DONE_QUEUE_URL": "http://sqs.example/000000000000/done",
        "FIRE_URL": "http://fire.example",
        "FIRE_TOKEN": "not-the-token",
    }
    began = time.monotonic()
    command = [sys.executable, "-m", "watcher", "package", "lambda", "-c", str(path), "-o", str(output), *args]
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    built = Built(output, done.stdout, time.monotonic() - began)
    print(f"\n[watcher package lambda {' '.join(args)}] {built.seconds:.1f} s\n{built.report}")
    return built


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    tmp = tmp_path_factory.mktemp("lambda-package")
    (tmp / "log-only.yaml").write_text(yaml.safe_dump(LOG_ONLY))
    (tmp / "not-for-lambda.yaml").write_text(yaml.safe_dump(NOT_FOR_LAMBDA))
    added = [str(path) for path in (ROUTES, tmp / "log-only.yaml", tmp / "not-for-lambda.yaml")]
    return package(tmp, CONFIG, *(argument for path in added for argument in ("--add", path)))
