"""deploy/terraform, for real: every module and example is formatted and valid; examples/basic,
applied to LocalStack with three buckets wired three ways (direct, SNS, EventBridge), passes
`watcher check --live`, carries S3 uploads to the queue in the shape each wiring gives, and leaves
nothing behind when destroyed; examples/ecs plans (LocalStack's free edition has no ECS); checkov
finds nothing it is not told why to skip.

The durations of apply, destroy, plan and checkov are printed (pytest -s, or -rP)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from tests.support.terraform import (
    DEPLOY,
    EXAMPLES,
    FIXTURES,
    MODULES,
    REPO,
    Terraform,
    checkov,
    copy_deploy_tree,
    renamed,
    requires_terraform,
)
from watcher.envelope import parse_body

REGION = "us-east-1"


def _client(endpoint: str, service: str) -> Any:
    return boto3.client(
        service, endpoint_url=endpoint, region_name=REGION, aws_access_key_id="test", aws_secret_access_key="test"
    )


def _took(what: str, seconds: float, output: str = "") -> None:
    slow = re.findall(r"^(\S+): (?:Creation|Destruction) complete after (\d+m)?(\d+)s", output, re.MULTILINE)
    slowest = sorted(((int(m[:-1] or 0) * 60 + int(s), a) for a, m, s in slow), reverse=True)[:4]
    detail = ", ".join(f"{address} {seconds_}s" for seconds_, address in slowest if seconds_ >= 5)
    print(f"\n[terraform timing] {what}: {seconds:.1f} s" + (f" (slowest: {detail})" if detail else ""))


# ---- static checks -------------------------------------------------------------------------------


@requires_terraform
def test_every_terraform_file_is_formatted() -> None:
    result = Terraform(DEPLOY).run("fmt", "-check", "-recursive", "-diff", "-no-color", ".", check=False)
    assert result.returncode == 0, f"run `terraform fmt -recursive deploy/terraform`:\n{result.stdout}"


@requires_terraform
@pytest.mark.parametrize("root", [f"modules/{m}" for m in MODULES] + [f"examples/{e}" for e in EXAMPLES])
def test_every_module_and_example_is_valid(root: str, tmp_path: Path) -> None:
    terraform = Terraform(copy_deploy_tree(tmp_path) / root)
    terraform.init("-backend=false")
    report = terraform.run("validate", "-json", check=False).json()
    assert report["valid"], json.dumps(report["diagnostics"], indent=2)
    assert report["warning_count"] == 0, json.dumps(report["diagnostics"], indent=2)


# ---- examples/basic on LocalStack ----------------------------------------------------------------


@dataclass
class Applied:
    """examples/basic applied with the three-shapes variables, renamed for this run."""

    terraform: Terraform
    endpoint: str
    unique: str
    variables: dict[str, Any]
    config_path: Path
    outputs: dict[str, Any] = field(default_factory=dict)
    destroyed: bool = False

    def name(self, fixture_name: str) -> str:
        return renamed(fixture_name, self.unique)

    def client(self, service: str) -> Any:
        return _client(self.endpoint, service)

    def tf_vars(self) -> list[str]:
        return ["-var", f"aws_endpoint={self.endpoint}", "-var", "force_destroy_buckets=true"]


@pytest.fixture(scope="module")
def applied(localstack_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Applied]:
    unique = uuid.uuid4().hex[:10]
    workdir = tmp_path_factory.mktemp("terraform-basic")
    example = copy_deploy_tree(workdir) / "examples" / "basic"
    config_path = workdir / "watcher.yaml"
    config_path.write_text(renamed((FIXTURES / "three-shapes.yaml").read_text(), unique))
    # As a user does: `watcher render terraform -c watcher.yaml > watcher.auto.tfvars.json`.
    rendered = subprocess.run(
        [sys.executable, "-m", "watcher", "render", "terraform", "-c", str(config_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    tfvars = rendered.stdout
    (example / "watcher.auto.tfvars.json").write_text(tfvars)
    state = Applied(Terraform(example), localstack_endpoint, unique, json.loads(tfvars), config_path)

    # The config references a secret and a parameter: `watcher check` resolves them.
    secrets, ssm = state.client("secretsmanager"), state.client("ssm")
    (secret,) = state.variables["secret_names"]
    (parameter,) = state.variables["ssm_parameter_names"]
    secrets.create_secret(Name=secret, SecretString="not-a-real-token")
    ssm.put_parameter(Name=parameter, Value="not-a-real-key", Type="SecureString")
    try:
        state.terraform.init()
        result = state.terraform.run("apply", "-auto-approve", "-input=false", "-no-color", *state.tf_vars())
        added = re.search(r"Resources: (\d+) added", result.stdout)
        _took(
            f"apply examples/basic (3 buckets, {added.group(1) if added else '?'} resources)",
            result.seconds,
            result.stdout,
        )
        state.outputs = state.terraform.outputs()
        yield state
    finally:
        if not state.destroyed:
            state.terraform.run("destroy", "-auto-approve", "-input=false", "-no-color", *state.tf_vars(), check=False)
        secrets.delete_secret(SecretId=secret, ForceDeleteWithoutRecovery=True)
        ssm.delete_parameter(Name=parameter)


@pytest.mark.integration
@requires_terraform
def test_the_queue_has_its_dlq_encryption_and_a_policy_naming_every_sender(applied: Applied) -> None:
    sqs = applied.client("sqs")
    queue = sqs.get_queue_attributes(QueueUrl=applied.outputs["queue_url"], AttributeNames=["All"])["Attributes"]
    dlq = sqs.get_queue_attributes(QueueUrl=applied.outputs["dlq_url"], AttributeNames=["All"])["Attributes"]
    assert applied.outputs["dlq_url"].endswith(f"/{applied.name('watcher-tf-events')}-dlq")
    assert (queue["VisibilityTimeout"], queue["ReceiveMessageWaitTimeSeconds"]) == ("120", "20")
    assert json.loads(queue["RedrivePolicy"]) == {"deadLetterTargetArn": dlq["QueueArn"], "maxReceiveCount": 5}
    assert json.loads(dlq["RedriveAllowPolicy"]) == {
        "redrivePermission": "byQueue",
        "sourceQueueArns": [queue["QueueArn"]],
    }
    assert dlq["MessageRetentionPeriod"] == str(14 * 24 * 3600)
    assert queue["SqsManagedSseEnabled"] == dlq["SqsManagedSseEnabled"] == "true"

    statements = json.loads(queue["Policy"])["Statement"]
    senders = {s["Principal"]["Service"]: s for s in statements}
    account = queue["QueueArn"].split(":")[4]
    rules = applied.outputs["rule_arns"][applied.name("watcher-tf-archive")]
    expected = {
        "s3.amazonaws.com": [f"arn:aws:s3:::{applied.name('watcher-tf-data-lake')}"],
        "sns.amazonaws.com": [applied.outputs["topic_arns"][applied.name("watcher-tf-media")]],
        "events.amazonaws.com": sorted(rules),
    }
    assert sorted(senders) == sorted(expected)
    for service, statement in senders.items():
        assert statement["Action"] == "sqs:SendMessage" and statement["Resource"] == queue["QueueArn"]
        source_arns = statement["Condition"]["ArnEquals"]["aws:SourceArn"]
        assert sorted([source_arns] if isinstance(source_arns, str) else source_arns) == expected[service]
        assert statement["Condition"]["StringEquals"]["aws:SourceAccount"] == account
    assert len(rules) == 2  # one rule per filter of the EventBridge bucket


@pytest.mark.integration
@requires_terraform
def test_the_worker_policy_grants_its_queue_dlq_routes_outputs_and_secrets(applied: Applied) -> None:
    statements = {s["Sid"]: s for s in json.loads(applied.outputs["worker_policy_json"])["Statement"]}

    def listed(value: str | list[str]) -> list[str]:
        return sorted([value] if isinstance(value, str) else value)

    queue_arn, account = applied.outputs["queue_arn"], applied.outputs["queue_arn"].split(":")[4]
    assert listed(statements["PollTheQueue"]["Action"]) == sorted(
        [
            "sqs:ReceiveMessage",
            "sqs:DeleteMessage",
            "sqs:ChangeMessageVisibility",
            "sqs:GetQueueAttributes",
            "sqs:GetQueueUrl",
        ]
    )
    assert listed(statements["PollTheQueue"]["Resource"]) == [queue_arn]
    assert listed(statements["DeadLetterPermanentFailures"]["Action"]) == sorted(
        ["sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"]
    )
    assert listed(statements["DeadLetterPermanentFailures"]["Resource"]) == [queue_arn + "-dlq"]
    assert listed(statements["ReadRouteInputs"]["Resource"]) == sorted(
        f"arn:aws:s3:::{location['bucket']}/{location['prefix']}*" for location in applied.variables["read_locations"]
    )
    assert listed(statements["WriteContainerOutputs"]["Resource"]) == [
        f"arn:aws:s3:::{applied.name('watcher-tf-data-lake')}/reports/*"
    ]
    assert listed(statements["ReadReferencedSecrets"]["Resource"]) == [
        f"arn:aws:secretsmanager:{REGION}:{account}:secret:{applied.name('watcher-tf')}/fire-token-??????"
    ]
    assert listed(statements["ReadReferencedParameters"]["Resource"]) == [
        f"arn:aws:ssm:{REGION}:{account}:parameter/{applied.name('watcher-tf')}/api-key"
    ]
    # No idempotency table in this config, no customer-managed keys, no ECR images: nothing more.
    assert sorted(statements) == sorted(
        [
            "PollTheQueue",
            "DeadLetterPermanentFailures",
            "ReadRouteInputs",
            "WriteContainerOutputs",
            "ReadReferencedSecrets",
            "ReadReferencedParameters",
        ]
    )
    role = applied.client("iam").get_role(RoleName=f"{applied.name('watcher-tf-events')}-worker-ec2")["Role"]
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": "ec2.amazonaws.com"}


@pytest.mark.integration
@requires_terraform
def test_a_second_plan_finds_nothing_to_change(applied: Applied) -> None:
    result = applied.terraform.run(
        "plan", "-detailed-exitcode", "-input=false", "-no-color", *applied.tf_vars(), check=False
    )
    _took("plan examples/basic with nothing to change", result.seconds)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


@pytest.mark.integration
@requires_terraform
def test_watcher_check_live_passes_on_what_terraform_made(applied: Applied) -> None:
    checked = subprocess.run(
        [sys.executable, "-m", "watcher", "check", "-c", str(applied.config_path), "--live"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={
            **os.environ,
            "PYTHONPATH": str(REPO),
            "WATCHER_AWS_ENDPOINT_URL": applied.endpoint,
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
        },
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    for route in ("spark-markers", "raw-csv", "videos", "archive-csv", "archive-logs"):
        assert f"ok: route {route}: bucket" in checked.stdout, checked.stdout


def _shape(document: dict[str, Any]) -> str:
    if document.get("Type") == "Notification":
        return "sns"
    if document.get("source") == "aws.s3" and "detail-type" in document:
        return "eventbridge"
    return "s3" if "Records" in document else "unknown"


@pytest.mark.integration
@requires_terraform
def test_uploads_reach_the_queue_in_the_shape_of_each_wiring(applied: Applied) -> None:
    s3, sqs = applied.client("s3"), applied.client("sqs")
    lake, media, archive = (applied.name(f"watcher-tf-{b}") for b in ("data-lake", "media", "archive"))
    uploads = {
        (lake, "events/2026/11/30/_SUCCESS"): "s3",
        (lake, "events/2026/11/30/part-00000.parquet"): None,  # no filter matches: never sent
        (lake, "raw/sales 2026-11.csv"): "s3",
        (lake, "raw/README.txt"): None,
        (media, "video/cat.mp4"): "sns",
        (media, "video/cat.txt"): None,
        (media, "audio/cat.mp4"): None,
        (archive, "in/dt=2026-11-30/daily orders.csv"): "eventbridge",  # the rule's wildcard in/*.csv
        (archive, "in/notes.txt"): None,
        (archive, "logs/app.log"): "eventbridge",  # the rule's prefix logs/
        (archive, "other/app.csv"): None,
    }
    for bucket, key in uploads:
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    expected = {(shape, bucket, key) for (bucket, key), shape in uploads.items() if shape}

    arrived: set[tuple[str, str, str]] = set()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        # Once everything expected is in, one more receive catches anything that should not be.
        settled = arrived >= expected
        messages = sqs.receive_message(
            QueueUrl=applied.outputs["queue_url"], MaxNumberOfMessages=10, WaitTimeSeconds=3 if settled else 1
        ).get("Messages", [])
        for message in messages:
            shape = _shape(json.loads(message["Body"]))
            parsed = parse_body(message["Body"])  # the worker's own parser
            for record in parsed.records:
                assert record.event_name.startswith("ObjectCreated:"), record
                arrived.add((shape, record.bucket, record.key))
            if not parsed.records:  # the s3:TestEvent S3 sends when a notification is written
                assert [skip.reason for skip in parsed.skipped] == ["test_event"], message["Body"]
            sqs.delete_message(QueueUrl=applied.outputs["queue_url"], ReceiptHandle=message["ReceiptHandle"])
        if settled and not messages:
            break
    assert arrived == expected


@pytest.mark.integration
@requires_terraform
def test_destroy_leaves_nothing(applied: Applied) -> None:
    result = applied.terraform.run("destroy", "-auto-approve", "-input=false", "-no-color", *applied.tf_vars())
    applied.destroyed = True
    _took("destroy examples/basic", result.seconds, result.stdout)
    assert applied.terraform.run("state", "list").stdout.strip() == ""

    def gone(call: Any, *codes: str) -> bool:
        try:
            call()
        except ClientError as exc:
            return exc.response["Error"]["Code"] in codes
        return False

    sqs, s3, iam = applied.client("sqs"), applied.client("s3"), applied.client("iam")
    for queue in ("watcher-tf-events", "watcher-tf-events-dlq"):
        name = applied.name(queue)
        assert gone(
            lambda name=name: sqs.get_queue_url(QueueName=name),
            "AWS.SimpleQueueService.NonExistentQueue",
            "QueueDoesNotExist",
        ), name
    for bucket in ("watcher-tf-data-lake", "watcher-tf-media", "watcher-tf-archive"):
        name = applied.name(bucket)
        assert gone(lambda name=name: s3.head_bucket(Bucket=name), "404", "NoSuchBucket"), name
    topics = [t["TopicArn"] for t in applied.client("sns").list_topics()["Topics"]]
    assert not [t for t in topics if applied.unique in t]
    assert applied.client("events").list_rules(NamePrefix=applied.name("watcher-tf"))["Rules"] == []
    role = f"{applied.name('watcher-tf-events')}-worker-ec2"
    assert gone(lambda: iam.get_role(RoleName=role), "NoSuchEntity")
    assert gone(lambda: iam.get_policy(PolicyArn=applied.outputs["worker_policy_arn"]), "NoSuchEntity")


def _invalid_variables(variables: dict[str, Any]) -> None:
    by_delivery = {b["delivery"]: b for b in variables["buckets"].values()}
    by_delivery["direct"]["delivery"] = "lambda"
    by_delivery["sns"]["filters"][0]["events"] = ["ObjectCreated:*"]
    variables["max_receive_count"] = 0


def _fifo_queue_with_s3_notifications(variables: dict[str, Any]) -> None:
    variables["queue_name"] += ".fifo"


def _eventbridge_event_it_does_not_carry(variables: dict[str, Any]) -> None:
    archive = next(b for b in variables["buckets"].values() if b["delivery"] == "eventbridge")
    archive["filters"][0]["events"] = ["s3:Replication:*"]


@pytest.mark.integration
@requires_terraform
@pytest.mark.parametrize(
    ("change", "messages"),
    [
        (
            _invalid_variables,
            [
                "Every bucket's delivery must be direct, sns or eventbridge.",
                "Every filter needs events, each starting with s3:",
                "max_receive_count must be from 1 to 1000.",
            ],
        ),
        (_fifo_queue_with_s3_notifications, ["S3 cannot send event notifications to a FIFO queue"]),
        (_eventbridge_event_it_does_not_carry, ["EventBridge has no detail type for one of s3:Replication:*"]),
    ],
    ids=["variables", "fifo-queue", "eventbridge-event"],
)
def test_the_basic_example_refuses_at_plan_time_what_aws_would_refuse(
    change: Any, messages: list[str], localstack_endpoint: str, tmp_path: Path
) -> None:
    variables = json.loads(renamed((FIXTURES / "three-shapes.auto.tfvars.json").read_text(), uuid.uuid4().hex[:10]))
    change(variables)
    example = copy_deploy_tree(tmp_path) / "examples" / "basic"
    (example / "watcher.auto.tfvars.json").write_text(json.dumps(variables))
    terraform = Terraform(example)
    terraform.init()
    result = terraform.run(
        "plan", "-input=false", "-no-color", "-var", f"aws_endpoint={localstack_endpoint}", check=False
    )
    assert result.returncode == 1
    for message in messages:
        assert message in " ".join(result.stderr.split()), result.stderr[-3000:]


# ---- examples/ecs: plan only ---------------------------------------------------------------------


@pytest.mark.integration
@requires_terraform
def test_the_ecs_example_plans_a_fargate_service_that_scales_on_backlog(
    localstack_endpoint: str, tmp_path: Path
) -> None:
    """LocalStack's free edition has no ECS, so this is a plan. It needs no ECS or EC2 API: the VPC
    and subnets are variables, not data sources, and a first plan refreshes nothing; the only calls
    are STS GetCallerIdentity for the account ID."""
    unique = uuid.uuid4().hex[:10]
    example = copy_deploy_tree(tmp_path) / "examples" / "ecs"
    (example / "watcher.auto.tfvars.json").write_text(
        renamed((FIXTURES / "three-shapes.auto.tfvars.json").read_text(), unique)
    )
    config = tmp_path / "watcher.yaml"
    config.write_text(renamed((FIXTURES / "three-shapes.yaml").read_text(), unique))
    terraform = Terraform(example)
    terraform.init()
    image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/watcher:0.1.0"
    result = terraform.run(
        "plan",
        "-input=false",
        "-no-color",
        "-out=ecs.tfplan",
        *("-var", f"aws_endpoint={localstack_endpoint}"),
        *("-var", f"image={image}"),
        *("-var", "vpc_id=vpc-0123456789abcdef0"),
        *("-var", 'subnet_ids=["subnet-0123456789abcdef0"]'),
        *("-var", f"config_file={config}"),
        *("-var", f"idempotency_table=watcher-tf-{unique}-idempotency"),
        *("-var", "shutdown_grace_seconds=45"),
        *("-var", "scale_to_zero=true"),
    )
    _took("plan examples/ecs", result.seconds)
    plan = terraform.run("show", "-json", "ecs.tfplan").json()
    planned = _planned_resources(plan["planned_values"]["root_module"])

    (container,) = json.loads(planned["module.service.aws_ecs_task_definition.this"]["container_definitions"])
    assert container["image"] == image
    assert container["stopTimeout"] == 55  # the drain grace (45 s) + 10 s
    assert {"name": "WATCHER_WORKER_SHUTDOWN_GRACE_SECONDS", "value": "45"} in container["environment"]
    assert container["secrets"] == [
        {
            "name": "WATCHER_CONFIG_YAML",
            "valueFrom": f"arn:aws:ssm:{REGION}:000000000000:parameter/watcher-tf-{unique}-events/config.yaml",
        }
    ]
    assert container["readonlyRootFilesystem"] is True
    assert planned["module.service.aws_ssm_parameter.config[0]"]["value"] == config.read_text()

    service = planned["module.service.aws_ecs_service.this"]
    assert service["launch_type"] == "FARGATE"
    assert service["deployment_circuit_breaker"] == [{"enable": True, "rollback": True}]

    target = planned["module.service.aws_appautoscaling_target.this"]
    assert (target["min_capacity"], target["max_capacity"]) == (0, 10)
    tracking = planned["module.service.aws_appautoscaling_policy.backlog"]
    (configuration,) = tracking["target_tracking_scaling_policy_configuration"]
    (metric,) = configuration["customized_metric_specification"]
    by_id = {m["id"]: m for m in metric["metrics"]}
    assert by_id["backlog"]["expression"] == "visible / running"
    assert by_id["visible"]["metric_stat"][0]["metric"][0]["metric_name"] == "ApproximateNumberOfMessagesVisible"
    assert by_id["running"]["metric_stat"][0]["metric"][0]["metric_name"] == "RunningTaskCount"
    wake = planned["module.service.aws_appautoscaling_policy.wake[0]"]
    assert wake["policy_type"] == "StepScaling"
    alarm = planned["module.service.aws_cloudwatch_metric_alarm.wake[0]"]
    assert "IF(visible > 0 AND inflight == 0, 1, 0)" in [q.get("expression") for q in alarm["metric_query"]]

    table = planned["module.wiring.aws_dynamodb_table.idempotency[0]"]
    assert (table["billing_mode"], table["hash_key"]) == ("PAY_PER_REQUEST", "pk")
    assert table["ttl"] == [{"attribute_name": "expires_at", "enabled": True}]
    role = planned["module.wiring.module.worker_iam.aws_iam_role.ecs_task[0]"]
    assert role["name"] == f"watcher-tf-{unique}-events-worker-ecs-task"


def _planned_resources(module: dict[str, Any]) -> dict[str, Any]:
    """Every planned resource by address, from this module and the modules it calls, at any depth."""
    planned = {r["address"]: r.get("values", {}) for r in module.get("resources", [])}
    for child in module.get("child_modules", []):
        planned.update(_planned_resources(child))
    return planned


# ---- checkov -------------------------------------------------------------------------------------

SKIP_COMMENT = re.compile(r"#\s*checkov:skip=(CKV2?_[A-Z0-9_]+)(?::(.*))?")


@pytest.mark.integration  # installs checkov from PyPI on first use
def test_checkov_finds_no_failed_check_and_every_skip_says_why() -> None:
    executable = checkov()
    started = time.monotonic()
    done = subprocess.run(
        [str(executable), "-d", str(DEPLOY), "--framework", "terraform", "-o", "json", "--quiet", "--compact"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    _took("checkov on deploy/terraform", time.monotonic() - started)
    report = json.loads(done.stdout)
    results = report["results"] if isinstance(report, dict) else report[0]["results"]
    failed = [(c["check_id"], c["resource"], c["file_path"]) for c in results.get("failed_checks", [])]
    assert failed == [] and done.returncode == 0, failed or done.stderr[-3000:]

    skips = [
        (path.relative_to(DEPLOY), match)
        for path in DEPLOY.rglob("*.tf")
        for match in SKIP_COMMENT.finditer(path.read_text())
    ]
    assert skips, "expected the justified skips of modules/wiring/main.tf"
    for path, match in skips:
        assert match.group(2) and len(match.group(2).strip()) >= 20, (
            f"{path}: {match.group(1)} is skipped without a reason"
        )
