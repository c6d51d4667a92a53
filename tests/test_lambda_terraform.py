"""deploy/terraform/modules/lambda for real: formatted and valid; its own `terraform test` (a mocked provider:
the wiring, and the variable validations that refuse a queue whose visibility timeout is under six times the
function's timeout, AWS's advice) passes; applied to the Lambda test bed's LocalStack with the zip of `watcher
package lambda` and the configuration in SSM, the function it makes takes messages from the queue through its
event source mapping and dead-letters a bad one.

The module uses ../worker-iam; without Terraform these tests skip, saying so (tests/support/terraform.py)."""

from __future__ import annotations

import json
import re
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support import lambda_bed, lambda_package, terraform
from tests.support.fixtures import s3_event
from tests.support.lambda_bed import LambdaBed
from tests.support.lambda_package import LOG_ONLY, Built
from tests.support.process import REPO, wait_until

pytestmark = terraform.requires_terraform
lambda_env = lambda_bed.lambda_env
built = lambda_package.built

# A root module around modules/lambda, the provider pointed at LocalStack. The queues are made by the test: the
# provider's aws_sqs_queue waits about 25 s per queue for LocalStack's attributes to settle.
ROOT = """
variable "endpoint" { type = string }
variable "name" { type = string }
variable "package_path" { type = string }
variable "config_yaml" { type = string }
variable "timeout_seconds" { type = number }
variable "queue_arn" { type = string }
variable "dlq_arn" { type = string }
variable "visibility_timeout_seconds" { type = number }
variable "batch_size" { type = number }

provider "aws" {
  region                      = "us-east-1"
  access_key                  = "test"
  secret_key                  = "test"
  skip_credentials_validation = true
  skip_metadata_api_check     = true
  skip_requesting_account_id  = true
  endpoints {
    iam    = var.endpoint
    lambda = var.endpoint
    logs   = var.endpoint
    ssm    = var.endpoint
    sts    = var.endpoint
  }
}

module "watcher" {
  source = "../modules/lambda"

  name                             = var.name
  package_path                     = var.package_path
  timeout_seconds                  = var.timeout_seconds
  queue_arn                        = var.queue_arn
  queue_visibility_timeout_seconds = var.visibility_timeout_seconds
  dlq_arn                          = var.dlq_arn
  batch_size                       = var.batch_size
  maximum_concurrency              = 2
  config_source                    = "ssm"
  config_yaml                      = var.config_yaml
  environment                      = { WATCHER_LOGGING_LEVEL = "info" }
  log_retention_days               = 7
}

output "function_name" { value = module.watcher.function_name }
output "config_parameter_name" { value = module.watcher.config_parameter_name }
output "event_source_mapping_uuid" { value = module.watcher.event_source_mapping_uuid }
"""


def root(tmp_path: Path) -> Any:
    tree = terraform.copy_deploy_tree(tmp_path)
    (tree / "root").mkdir()
    (tree / "root" / "main.tf").write_text(ROOT)
    return terraform.Terraform(tree / "root")


def variables(endpoint: str, name: str, package: Path, **values: Any) -> list[str]:
    settings = {
        "endpoint": endpoint,
        "name": name,
        "package_path": str(package),
        "config_yaml": yaml.safe_dump(LOG_ONLY),
        "timeout_seconds": 10,
        "queue_arn": f"arn:aws:sqs:us-east-1:000000000000:{name}",
        "dlq_arn": f"arn:aws:sqs:us-east-1:000000000000:{name}-dlq",
        "visibility_timeout_seconds": 60,
        "batch_size": 10,
        **values,
    }
    return [argument for key, value in settings.items() for argument in ("-var", f"{key}={value}")]


def test_the_module_is_formatted_valid_and_passes_its_terraform_tests(tmp_path: Path) -> None:
    """`terraform test` (modules/lambda/tests/module.tftest.hcl) plans with a mocked AWS provider: the wiring,
    and the validations that refuse a visibility timeout under six function timeouts, a batch above ten
    without a batching window, the ssm source without its YAML."""
    module = REPO / "deploy" / "terraform" / "modules" / "lambda"
    fmt = terraform.Terraform(module).run("fmt", "-check", "-recursive", "-diff", "-no-color", ".", check=False)
    assert fmt.returncode == 0, f"run `terraform fmt -recursive deploy/terraform/modules/lambda`:\n{fmt.stdout}"
    tf = terraform.Terraform(terraform.copy_deploy_tree(tmp_path) / "modules" / "lambda")
    tf.init("-backend=false")
    report = tf.run("validate", "-json", check=False).json()
    assert report["valid"] and report["warning_count"] == 0, json.dumps(report["diagnostics"], indent=2)
    tested = tf.run("test", "-no-color", check=False)
    assert tested.returncode == 0, tested.stdout[-4000:] + tested.stderr[-2000:]
    assert "Success! 5 passed, 0 failed." in tested.stdout
    assert 'run "a_visibility_timeout_under_six_function_timeouts_is_refused"... pass' in tested.stdout


@pytest.mark.integration
def test_applied_to_localstack_the_function_takes_the_queue_and_dead_letters_a_bad_message(
    tmp_path: Path, lambda_env: LambdaBed, built: Built
) -> None:
    tf = root(tmp_path)
    tf.init()
    name = f"watcher-tf-{uuid.uuid4().hex[:8]}"
    sqs, lam = lambda_env.client("sqs"), lambda_env.client("lambda")
    dlq_url = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 3})
    queue_url = sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "60", "RedrivePolicy": redrive})[
        "QueueUrl"
    ]
    arguments = variables(lambda_env.endpoint, name, built.path)
    began = time.monotonic()
    result = tf.run("apply", "-auto-approve", "-input=false", "-no-color", *arguments)
    applied = time.monotonic() - began
    try:
        outputs = tf.outputs()
        function = lam.get_function(FunctionName=outputs["function_name"])["Configuration"]
        assert function["Handler"] == "watcher.lambda_.handler.handler" and function["Runtime"] == "python3.11"
        assert function["Environment"]["Variables"]["WATCHER_CONFIG"] == f"ssm:{outputs['config_parameter_name']}"
        mapping = lam.get_event_source_mapping(UUID=outputs["event_source_mapping_uuid"])
        assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        assert mapping["ScalingConfig"] == {"MaximumConcurrency": 2}

        sqs.send_message(QueueUrl=queue_url, MessageBody="not an S3 notification")
        sqs.send_message(QueueUrl=queue_url, MessageBody=s3_event("lake", "events/2026/11/30/report.csv"))

        def dead() -> list[dict[str, Any]]:
            answer = sqs.receive_message(QueueUrl=dlq_url, MessageAttributeNames=["All"], WaitTimeSeconds=1)
            return list(answer.get("Messages", []))

        (message,) = wait_until(dead, 90, 0.5, "the bad message in the DLQ")
        assert message["Body"] == "not an S3 notification"
        assert message["MessageAttributes"]["watcher.route"]["StringValue"] == "-"
        assert message["MessageAttributes"]["watcher.error"]["StringValue"].startswith("unparseable message")
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]

        def emptied() -> bool:
            attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=names)["Attributes"]
            return all(attributes[n] == "0" for n in names)

        wait_until(emptied, 30, 0.5, "the queue emptied")
    finally:
        began_destroy = time.monotonic()
        tf.run("destroy", "-auto-approve", "-input=false", "-no-color", "-refresh=false", *arguments)
        destroyed = time.monotonic() - began_destroy
        for url in (queue_url, dlq_url):
            sqs.delete_queue(QueueUrl=url)
        slowest = sorted(
            re.findall(r"^(\S+): Creation complete after (\d+)s", result.stdout, re.M), key=lambda x: -int(x[1])
        )
        print(
            f"\n[terraform modules/lambda on LocalStack] apply {applied:.1f} s (slowest: {slowest[:3]}), "
            f"destroy {destroyed:.1f} s"
        )
