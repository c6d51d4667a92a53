"""The worker's IAM policy, checked against reality: a real `watcher run` handles units of every
handler type (log, python, container, workflow; a retry, a permanent failure, a heartbeat; the
DynamoDB idempotency store; secrets read at start) while botocore's event hooks record every AWS API
call it makes. Each call must be allowed by the policy that deploy/terraform/modules/worker-iam
writes for the variables of `watcher render terraform`, and the policy must grant nothing no call
used: every action of every statement, and every resource of it, is needed by some call.

LocalStack enforces no IAM: the policy is evaluated here (tests/support/iam.py), by AWS's
documented action names and resource ARNs. Not covered: the container route's batch runtime (its
Batch, CloudWatch Logs and staging calls run against moto in tests/test_batch_integration.py, where
no call is recorded against this policy), so the policy's batch statements are not checked against calls."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import Queues
from tests.support.fire_server import FireServer
from tests.support.iam import Need, granting, grants, needs, statements
from tests.support.process import REPO, WatcherProcess, calls, provision_named_queue, wait_until
from tests.support.terraform import FIXTURES, Terraform, copy_deploy_tree, requires_terraform
from tests.test_worker_integration import python_route

pytestmark = [pytest.mark.integration, requires_terraform]
REGION, ACCOUNT = "us-east-1", "000000000000"
# Granted for a failure no normal run produces: a multipart upload of an output over 64 MB that
# fails (boto3's transfer manager then aborts it, so that no parts are left to pay for).
FAILURE_PATHS = {"s3:AbortMultipartUpload": "the abort of a failed multipart upload"}


def config(unique: str, tmp_path: Path, fire: FireServer, dynamodb: str) -> dict[str, Any]:
    lake, media = f"iam-lake-{unique}", f"iam-media-{unique}"
    calls_file = str(tmp_path / "calls.jsonl")
    container = {"type": "container", "runtime": "process", "work_dir": str(tmp_path / "work")}
    return {
        "aws": {"region": REGION, "endpoint_url": "http://127.0.0.1:4566"},
        "queue": {"name": f"iam-{unique}", "wait_time_seconds": 1, "visibility_timeout": 4, "max_in_flight": 8},
        "worker": {"shutdown_grace_seconds": 5, "retry_initial_seconds": 1, "retry_max_seconds": 2},
        "idempotency": {"backend": "dynamodb", "table": f"iam-done-{unique}", "endpoint_url": dynamodb},
        "routes": [
            {"name": "logs", "bucket": lake, "prefix": "logs/", "handler": {"type": "log"}},
            python_route("slow", "sleep", Path(calls_file), bucket=lake, prefix="slow/", options={"seconds": 3}),
            python_route("broken", "fail_permanent", Path(calls_file), bucket=lake, prefix="bad/"),
            python_route("flaky", "fail_first", Path(calls_file), bucket=lake, prefix="flaky/"),
            {"name": "csv", "bucket": lake, "prefix": "raw/", "handler": {**container,
             "command": "wc -c < \"$INPUT_FILE_PATH\" > \"$TMP_OUTPUT_DIR/size.txt\"",
             "output": f"s3://{lake}/reports/"}},
            {"name": "frames", "bucket": media, "prefix": "video/", "handler": {**container,
             "command": "cp \"$INPUT_FILE_PATH\" \"$TMP_OUTPUT_DIR/copy\"", "output": f"s3://{lake}/frames/",
             "environment": {"API_KEY": f"${{ssm:/iam-{unique}/api-key}}"}}},
            {"name": "fire", "bucket": lake, "prefix": "events/", "suffix": "_SUCCESS", "handler": {
                "type": "workflow", "url": fire.url + "/api/v1/workflow/execute", "workflow_id": "42",
                "token": f"${{secretsmanager:iam-{unique}/fire-token}}"}},
        ],
    }  # fmt: skip


def planned_policy(tmp_path: Path, variables: dict[str, Any], endpoint: str) -> dict[str, Any]:
    root = copy_deploy_tree(tmp_path) / "examples" / "worker-policy"
    root.mkdir()
    (root / "main.tf").write_text((FIXTURES / "worker-policy" / "main.tf").read_text())
    (root / "watcher.auto.tfvars.json").write_text(json.dumps(variables))
    terraform = Terraform(root)
    terraform.init()
    terraform.run("plan", "-input=false", "-no-color", "-out=plan.bin", "-var", f"aws_endpoint={endpoint}")
    plan = terraform.run("show", "-json", "plan.bin").json()
    document: dict[str, Any] = json.loads(plan["planned_values"]["outputs"]["policy_json"]["value"])
    return document


def test_every_call_the_worker_makes_is_allowed_and_nothing_else_is(
    localstack_endpoint: str, dynamodb_endpoint: str, s3: Any, sqs: Any, unique: str, tmp_path: Path
) -> None:
    secrets = boto3_client(localstack_endpoint, "secretsmanager")
    ssm = boto3_client(localstack_endpoint, "ssm")
    secrets.create_secret(Name=f"iam-{unique}/fire-token", SecretString="s3cr3t-token")
    ssm.put_parameter(Name=f"/iam-{unique}/api-key", Value="k3y", Type="SecureString")
    with FireServer("s3cr3t-token") as fire:
        document = config(unique, tmp_path, fire, dynamodb_endpoint)
        path = provision_named_queue(document, f"iam-{unique}", tmp_path)  # queue, DLQ, buckets, table
        queues = Queues.existing(sqs, f"iam-{unique}")
        lake, media = f"iam-lake-{unique}", f"iam-media-{unique}"
        s3.put_bucket_versioning(Bucket=media, VersioningConfiguration={"Status": "Enabled"})
        rendered = subprocess.run(
            [sys.executable, "-m", "watcher", "render", "terraform", "-c", str(path)],
            cwd=REPO, capture_output=True, text=True, check=True,
        )  # fmt: skip
        policy = planned_policy(tmp_path, json.loads(rendered.stdout), localstack_endpoint)

        recorded = tmp_path / "aws-calls.jsonl"
        env = {"WATCHER_TEST_AWS_CALLS": str(recorded), "PYTHONPATH": f"{REPO / 'tests/support/aws_calls'}:{REPO}"}
        worker = WatcherProcess(yaml.safe_load(path.read_text()), tmp_path, env=env)
        try:
            worker.wait_started()
            for bucket, key in [
                (lake, "logs/a.log"), (lake, "slow/a.bin"), (lake, "bad/a.csv"), (lake, "flaky/a.csv"),
                (lake, "raw/a.csv"), (media, "video/a.mp4"), (lake, "events/2026/11/30/_SUCCESS"),
            ]:  # fmt: skip
                s3.put_object(Bucket=bucket, Key=key, Body=b"some bytes")
            wait_until(lambda: queues.empty() and len(worker.units()) >= 8, 90,
                       what="every unit done, the message that failed once included")  # fmt: skip
            wait_until(lambda: queues.depth(queues.dlq_url)["visible"] == 1, 30, what="the permanent failure")
            time.sleep(2)  # the queue-depth poll and a last receive or two
        finally:
            assert worker.stop() == 0
            queues.delete()
        assert len(fire.calls()) == 1 and len(calls(tmp_path / "calls.jsonl")) >= 4

    made = [json.loads(line) for line in recorded.read_text().splitlines()]
    wanted = {need for call in made for need in needs(call, REGION, ACCOUNT)}
    operations = {(c["service"], c["operation"]) for c in made}
    for expected in [("sqs", "ChangeMessageVisibilityBatch"), ("sqs", "SendMessage"), ("s3", "GetObject"),
                     ("s3", "PutObject"), ("dynamodb", "DeleteItem"), ("ssm", "GetParameter"),
                     ("secretsmanager", "GetSecretValue")]:  # fmt: skip
        assert expected in operations, f"the run did not exercise {expected}: {sorted(operations)}"
    assert any(n.action == "s3:GetObjectVersion" for n in wanted)  # the versioned bucket's object

    refused = [need for need in wanted if not granting(policy, need)]
    assert refused == [], "calls the policy does not allow:\n" + "\n".join(map(str, refused))
    unused = _unused(policy, wanted)
    assert unused == [], "granted but never needed:\n" + "\n".join(unused)


def _unused(policy: dict[str, Any], wanted: set[Need]) -> list[str]:
    """Per statement: each action needed on one of its resources, each resource by one of its actions."""
    used = {grant for need in wanted for grant in granting(policy, need)}
    problems = []
    for statement in statements(policy):
        sid = statement.get("Sid", "?")
        pairs = {(a, r) for s, a, r in grants(policy) if s == sid}
        for action in {a for a, _ in pairs}:
            if action not in FAILURE_PATHS and not any((sid, action, r) in used for _, r in pairs):
                problems.append(f"{sid}: {action} on any of {sorted({r for _, r in pairs})}")
        for resource in {r for _, r in pairs}:
            if not any((sid, a, resource) in used for a, _ in pairs):
                problems.append(f"{sid}: {resource} by any of {sorted({a for a, _ in pairs})}")
    return problems


def boto3_client(endpoint: str, service: str) -> Any:
    import boto3

    return boto3.client(
        service, endpoint_url=endpoint, region_name=REGION, aws_access_key_id="test", aws_secret_access_key="test"
    )
