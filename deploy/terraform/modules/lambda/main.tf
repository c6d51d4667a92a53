# watcher as an AWS Lambda function: the function (from the zip of `watcher package lambda`), its
# role (the worker's least-privilege policy from ../worker-iam plus Lambda's own needs), its log
# group, the configuration in SSM (optional) and the SQS event source mapping with
# ReportBatchItemFailures.

data "aws_partition" "current" {}
data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

locals {
  partition = data.aws_partition.current.partition
  region    = data.aws_region.current.name
  account   = data.aws_caller_identity.current.account_id
  use_ssm   = var.config_source == "ssm"

  parameter_name = coalesce(var.config_parameter_name, "/${var.name}/config.yaml")
  log_group_name = "/aws/lambda/${var.name}"

  environment = merge(
    { WATCHER_LOGGING_FORMAT = "json" },
    local.use_ssm ? { WATCHER_CONFIG = "ssm:${local.parameter_name}" } : {},
    var.environment,
  )
}

# ---- role: the worker's policy, plus logs (and the VPC's network interfaces) -----------------------

module "policy" {
  source = "../worker-iam"

  name                  = var.name
  path                  = var.iam_path
  queue_arn             = var.queue_arn
  dlq_arn               = var.dlq_arn
  read_locations        = var.read_locations
  write_locations       = var.write_locations
  secret_names          = var.secret_names
  ssm_parameter_names   = concat(var.ssm_parameter_names, local.use_ssm ? [local.parameter_name] : [])
  secrets_kms_key_arns  = compact(concat(var.secrets_kms_key_arns, local.use_ssm ? [var.config_kms_key_arn] : []))
  sqs_kms_key_arns      = var.sqs_kms_key_arns
  idempotency_table_arn = var.idempotency_table_arn
  permissions_boundary  = var.permissions_boundary
  tags                  = var.tags
}

data "aws_iam_policy_document" "trust" {
  statement {
    effect  = "Allow"
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account]
    }
  }
}

resource "aws_iam_role" "this" {
  name                 = "${var.name}-lambda"
  path                 = var.iam_path
  description          = "The watcher Lambda function ${var.name}."
  assume_role_policy   = data.aws_iam_policy_document.trust.json
  permissions_boundary = var.permissions_boundary
  tags                 = var.tags
}

resource "aws_iam_role_policy_attachment" "worker" {
  role       = aws_iam_role.this.name
  policy_arn = module.policy.policy_arn
}

data "aws_iam_policy_document" "lambda" {
  statement {
    sid       = "WriteLogs"
    effect    = "Allow"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.this.arn}:*"]
  }
}

resource "aws_iam_role_policy" "lambda" {
  name   = "lambda-basics"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.lambda.json
}

resource "aws_iam_role_policy_attachment" "xray" {
  count = var.tracing_mode == "Active" ? 1 : 0

  role       = aws_iam_role.this.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/AWSXRayDaemonWriteAccess"
}

resource "aws_iam_role_policy_attachment" "vpc" {
  count = length(var.subnet_ids) > 0 ? 1 : 0

  role       = aws_iam_role.this.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"
}

# ---- logs and configuration ----------------------------------------------------------------------

# Lambda writes to /aws/lambda/<name>: made here, with a retention, before the function exists.
resource "aws_cloudwatch_log_group" "this" {
  name              = local.log_group_name
  retention_in_days = var.log_retention_days
  kms_key_id        = var.log_kms_key_arn
  tags              = var.tags
}

resource "aws_ssm_parameter" "config" {
  count = local.use_ssm ? 1 : 0

  name        = local.parameter_name
  description = "The watcher's YAML configuration (Lambda function ${var.name})."
  type        = "SecureString"
  key_id      = var.config_kms_key_arn
  tier        = length(coalesce(var.config_yaml, " ")) > 4096 ? "Advanced" : "Standard"
  value       = coalesce(var.config_yaml, " ")
  tags        = var.tags

  lifecycle {
    precondition {
      condition     = var.config_yaml != null
      error_message = "config_source is ssm: set config_yaml to the watcher YAML configuration."
    }
  }
}

# ---- the function and its event source mapping ---------------------------------------------------

resource "aws_lambda_function" "this" {
  #checkov:skip=CKV_AWS_116:An on-failure DLQ serves asynchronous invocations; the SQS event source mapping invokes synchronously, failed records stay on the queue, and the queue's RedrivePolicy (and watcher, for permanent failures) moves them to its DLQ.
  #checkov:skip=CKV_AWS_272:Code signing needs an AWS Signer profile of the user's own: set code_signing_config_arn to enforce it.
  function_name                  = var.name
  description                    = "watcher: S3 events from SQS to the routes of its configuration."
  role                           = aws_iam_role.this.arn
  filename                       = var.package_path
  source_code_hash               = filebase64sha256(var.package_path)
  handler                        = "watcher.lambda_.handler.handler"
  runtime                        = "python3.11"
  architectures                  = [var.architecture]
  memory_size                    = var.memory_mb
  timeout                        = var.timeout_seconds
  reserved_concurrent_executions = var.reserved_concurrency
  kms_key_arn                    = var.environment_kms_key_arn
  code_signing_config_arn        = var.code_signing_config_arn
  tags                           = var.tags

  environment {
    variables = local.environment
  }

  tracing_config {
    mode = var.tracing_mode
  }

  dynamic "vpc_config" {
    for_each = length(var.subnet_ids) > 0 ? [1] : []
    content {
      subnet_ids         = var.subnet_ids
      security_group_ids = var.security_group_ids
    }
  }

  depends_on = [
    aws_iam_role_policy.lambda,
    aws_iam_role_policy_attachment.worker,
    aws_iam_role_policy_attachment.vpc,
    aws_iam_role_policy_attachment.xray,
    aws_ssm_parameter.config,
  ]
}

resource "aws_lambda_event_source_mapping" "this" {
  event_source_arn                   = var.queue_arn
  function_name                      = aws_lambda_function.this.arn
  enabled                            = var.enabled
  batch_size                         = var.batch_size
  maximum_batching_window_in_seconds = var.batching_window_seconds
  # Records that must come back are listed in batchItemFailures; the others are deleted.
  function_response_types = ["ReportBatchItemFailures"]

  dynamic "scaling_config" {
    for_each = var.maximum_concurrency == null ? [] : [var.maximum_concurrency]
    content {
      maximum_concurrency = scaling_config.value
    }
  }
}
