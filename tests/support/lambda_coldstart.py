"""Cold start of a deployment package, measured in the python3.11 Lambda runtime image of the test bed (Debian's
Python 3.11, awslambdaric, boto3 in /var/runtime; tests/support/lambda_runtime.py), one fresh container per run:

    python -m tests.support.lambda_coldstart watcher-lambda.zip [--config log-only.yaml] [--runs 5]

Per run: the import of the runtime interface client (what the runtime loads before the handler), watcher's init
(the handler's module imported and the cold-start state made: configuration, App, handlers), then two invocations
of one SQS record for a route (tests/fixtures/s3_success_marker.json: ``events/2026/11/23/_SUCCESS``). Prints every
run and the medians. Needs a Docker engine; the image is built the first time (about 80 s, root).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from tests.support.fixtures import fixture_path
from tests.support.lambda_runtime import runtime_image

PROBE = r"""
import json, os, sys, time
t0 = time.perf_counter()
import awslambdaric.bootstrap  # what the runtime imports before the handler's module
t1 = time.perf_counter()
sys.path.insert(0, "/var/task")
from watcher.lambda_ import handler
handler.shim()
t2 = time.perf_counter()

class Context:
    aws_request_id = "cold-start"
    def get_remaining_time_in_millis(self):
        return 30000

record = {"messageId": "m", "receiptHandle": "r", "body": open("/body.json").read(), "messageAttributes": {},
          "attributes": {"ApproximateReceiveCount": "1"}, "eventSource": "aws:sqs",
          "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:q"}
event = {"Records": [record]}
t3 = time.perf_counter(); first = handler.handler(event, Context()); t4 = time.perf_counter()
handler.handler(event, Context()); t5 = time.perf_counter()
ms = lambda a, b: round((b - a) * 1000, 1)
print("RESULT " + json.dumps({"runtime_client_ms": ms(t0, t1), "watcher_init_ms": ms(t1, t2),
                              "first_invocation_ms": ms(t3, t4), "second_invocation_ms": ms(t4, t5),
                              "listed": len(first["batchItemFailures"])}))
"""


def measure(package: Path, config: str | None, runs: int) -> list[dict[str, float]]:
    image = runtime_image()
    results = []
    with tempfile.TemporaryDirectory(prefix="watcher-coldstart-") as work:
        task = Path(work) / "task"
        with zipfile.ZipFile(package) as archive:
            archive.extractall(task)
        for path in task.rglob("*"):
            path.chmod(0o755 if path.is_dir() else 0o644)
        probe = Path(work) / "probe.py"
        probe.write_text(PROBE)
        for _ in range(runs):
            command = ["docker", "run", "--rm", "--entrypoint", "/usr/bin/python3", "-e", "PYTHONPATH=/var/runtime"]
            command += ["-e", "LAMBDA_TASK_ROOT=/var/task", "-e", "WATCHER_LOGGING_LEVEL=warning"]
            command += ["-e", f"WATCHER_CONFIG={config}"] if config else []
            command += ["-v", f"{task}:/var/task:ro", "-v", f"{probe}:/probe.py:ro"]
            command += ["-v", f"{fixture_path('s3_success_marker')}:/body.json:ro", image, "/probe.py"]
            done = subprocess.run(command, capture_output=True, text=True, timeout=120)
            lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
            if done.returncode != 0 or not lines:
                raise SystemExit(f"the probe failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
            results.append(json.loads(lines[0][len("RESULT ") :]))
            print(json.dumps(results[-1]))
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("package", type=Path, help="the zip of `watcher package lambda`")
    parser.add_argument("--config", help="WATCHER_CONFIG for the function (a file in the package)")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    results = measure(args.package, args.config, args.runs)
    medians = {key: statistics.median(r[key] for r in results) for key in results[0]}
    print("median " + ", ".join(f"{key} {value:.1f}" for key, value in medians.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
