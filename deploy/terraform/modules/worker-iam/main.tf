data "aws_partition" "current" {}
data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

locals {
  partition = data.aws_partition.current.partition
  region    = data.aws_region.current.name
  account   = data.aws_caller_identity.current.account_id

  read_arns  = distinct([for l in var.read_locations : "arn:${local.partition}:s3:::${l.bucket}/${l.prefix}*"])
  write_arns = distinct([for l in var.write_locations : "arn:${local.partition}:s3:::${l.bucket}/${l.prefix}*"])

  # A reference may name one field of a JSON secret (NAME#field): the secret is NAME. Secrets
  # Manager appends "-" and six random characters to a secret's ARN.
  secret_arns = distinct([
    for name in var.secret_names : startswith(name, "arn:") ? name :
    "arn:${local.partition}:secretsmanager:${local.region}:${local.account}:secret:${split("#", name)[0]}-??????"
  ])
  batch_arn = "arn:${local.partition}:batch:${local.region}:${local.account}"
  batch_queue_arns = distinct([
    for q in var.batch_job_queues : startswith(q, "arn:") ? q : "${local.batch_arn}:job-queue/${q}"
  ])
  # A job definition named without a revision may be any of its revisions.
  batch_definition_arns = distinct([
    for d in var.batch_job_definitions : startswith(d, "arn:") ? d :
    "${local.batch_arn}:job-definition/${d}${length(split(":", d)) > 1 ? "" : ":*"}"
  ])
  staging_arns = distinct([for l in var.batch_staging_locations : "arn:${local.partition}:s3:::${l.bucket}/${l.prefix}*"])
  parameter_arns = distinct([
    for name in var.ssm_parameter_names : startswith(name, "arn:") ? name :
    "arn:${local.partition}:ssm:${local.region}:${local.account}:parameter/${trimprefix(name, "/")}"
  ])
}

data "aws_iam_policy_document" "worker" {
  statement {
    sid    = "PollTheQueue"
    effect = "Allow"
    actions = [
      "sqs:ReceiveMessage",
      "sqs:DeleteMessage",
      "sqs:ChangeMessageVisibility",
      "sqs:GetQueueAttributes",
      "sqs:GetQueueUrl",
    ]
    resources = [var.queue_arn]
  }

  dynamic "statement" {
    for_each = var.dlq_arn == null ? [] : [var.dlq_arn]
    content {
      sid       = "DeadLetterPermanentFailures"
      effect    = "Allow"
      actions   = ["sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"]
      resources = [statement.value]
    }
  }

  dynamic "statement" {
    for_each = length(local.read_arns) > 0 ? [local.read_arns] : []
    content {
      sid       = "ReadRouteInputs"
      effect    = "Allow"
      actions   = ["s3:GetObject", "s3:GetObjectVersion"]
      resources = statement.value
    }
  }

  dynamic "statement" {
    for_each = length(local.write_arns) > 0 ? [local.write_arns] : []
    content {
      sid       = "WriteContainerOutputs"
      effect    = "Allow"
      actions   = ["s3:PutObject", "s3:AbortMultipartUpload"]
      resources = statement.value
    }
  }

  dynamic "statement" {
    for_each = length(local.secret_arns) > 0 ? [local.secret_arns] : []
    content {
      sid       = "ReadReferencedSecrets"
      effect    = "Allow"
      actions   = ["secretsmanager:GetSecretValue"]
      resources = statement.value
    }
  }

  dynamic "statement" {
    for_each = length(local.parameter_arns) > 0 ? [local.parameter_arns] : []
    content {
      sid       = "ReadReferencedParameters"
      effect    = "Allow"
      actions   = ["ssm:GetParameter"]
      resources = statement.value
    }
  }

  dynamic "statement" {
    for_each = length(var.secrets_kms_key_arns) > 0 ? [var.secrets_kms_key_arns] : []
    content {
      sid       = "DecryptReferencedSecrets"
      effect    = "Allow"
      actions   = ["kms:Decrypt"]
      resources = statement.value

      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["secretsmanager.${local.region}.amazonaws.com", "ssm.${local.region}.amazonaws.com"]
      }
    }
  }

  dynamic "statement" {
    for_each = length(var.sqs_kms_key_arns) > 0 ? [var.sqs_kms_key_arns] : []
    content {
      sid       = "UseTheQueuesKeys"
      effect    = "Allow"
      actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
      resources = statement.value

      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["sqs.${local.region}.amazonaws.com"]
      }
    }
  }

  dynamic "statement" {
    for_each = length(local.batch_queue_arns) > 0 ? [1] : []
    content {
      sid       = "SubmitBatchJobs"
      effect    = "Allow"
      actions   = ["batch:SubmitJob"]
      resources = concat(local.batch_queue_arns, local.batch_definition_arns)
    }
  }

  dynamic "statement" {
    for_each = length(local.batch_queue_arns) > 0 ? [1] : []
    content {
      sid       = "ManageBatchJobs"
      effect    = "Allow"
      actions   = ["batch:TerminateJob", "batch:TagResource"]
      resources = ["${local.batch_arn}:job/*"]
    }
  }

  dynamic "statement" {
    for_each = length(local.batch_queue_arns) > 0 ? [1] : []
    content {
      sid       = "WatchBatchJobs"
      effect    = "Allow"
      actions   = ["batch:DescribeJobQueues", "batch:ListJobs", "batch:DescribeJobs"]
      resources = ["*"] # these actions take no resource
    }
  }

  dynamic "statement" {
    for_each = length(local.batch_queue_arns) > 0 ? [1] : []
    content {
      sid       = "ReadBatchJobLogs"
      effect    = "Allow"
      actions   = ["logs:GetLogEvents"]
      resources = [for g in var.batch_log_groups : "arn:${local.partition}:logs:${local.region}:${local.account}:log-group:${g}:log-stream:*"]
    }
  }

  dynamic "statement" {
    for_each = length(local.staging_arns) > 0 ? [local.staging_arns] : []
    content {
      sid       = "StageBatchJobs"
      effect    = "Allow"
      actions   = ["s3:PutObject", "s3:GetObject", "s3:DeleteObject"]
      resources = statement.value
    }
  }

  dynamic "statement" {
    for_each = { for l in var.batch_staging_locations : l.bucket => l.prefix... }
    content {
      sid       = "ListBatchStaging${replace(title(replace(statement.key, "/[^a-zA-Z0-9]/", " ")), " ", "")}"
      effect    = "Allow"
      actions   = ["s3:ListBucket"]
      resources = ["arn:${local.partition}:s3:::${statement.key}"]
      condition {
        test     = "StringLike"
        variable = "s3:prefix"
        values   = [for prefix in statement.value : "${prefix}*"]
      }
    }
  }

  dynamic "statement" {
    for_each = var.idempotency_table_arn == null ? [] : [var.idempotency_table_arn]
    content {
      sid       = "IdempotencyTable"
      effect    = "Allow"
      actions   = ["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"]
      resources = [statement.value]
    }
  }

  dynamic "statement" {
    for_each = length(var.ecr_repository_arns) > 0 ? [1] : []
    content {
      sid       = "EcrLogin"
      effect    = "Allow"
      actions   = ["ecr:GetAuthorizationToken"]
      resources = ["*"] # the action names no resource
    }
  }

  dynamic "statement" {
    for_each = length(var.ecr_repository_arns) > 0 ? [var.ecr_repository_arns] : []
    content {
      sid       = "EcrPullImages"
      effect    = "Allow"
      actions   = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"]
      resources = statement.value
    }
  }
}

resource "aws_iam_policy" "worker" {
  name        = var.name
  path        = var.path
  description = "What the watcher worker calls: its queue and DLQ, the routes' objects, referenced secrets."
  policy      = data.aws_iam_policy_document.worker.json
  tags        = var.tags
}

# ---- EC2 -----------------------------------------------------------------------------------------

data "aws_iam_policy_document" "ec2_trust" {
  statement {
    effect  = "Allow"
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "ec2" {
  count = var.create_ec2_role ? 1 : 0

  name                 = "${var.name}-ec2"
  path                 = var.path
  description          = "The watcher worker on EC2."
  assume_role_policy   = data.aws_iam_policy_document.ec2_trust.json
  permissions_boundary = var.permissions_boundary
  tags                 = var.tags
}

resource "aws_iam_role_policy_attachment" "ec2" {
  count = var.create_ec2_role ? 1 : 0

  role       = aws_iam_role.ec2[0].name
  policy_arn = aws_iam_policy.worker.arn
}

resource "aws_iam_instance_profile" "ec2" {
  count = var.create_ec2_role ? 1 : 0

  name = "${var.name}-ec2"
  path = var.path
  role = aws_iam_role.ec2[0].name
  tags = var.tags
}

# ---- ECS -----------------------------------------------------------------------------------------

data "aws_iam_policy_document" "ecs_trust" {
  statement {
    effect  = "Allow"
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }

    # Only this account's ECS tasks (the confused-deputy guard AWS recommends).
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account]
    }
    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["arn:${local.partition}:ecs:${local.region}:${local.account}:*"]
    }
  }
}

resource "aws_iam_role" "ecs_task" {
  count = var.create_ecs_task_role ? 1 : 0

  name                 = "${var.name}-ecs-task"
  path                 = var.path
  description          = "The watcher worker as an ECS task (task role)."
  assume_role_policy   = data.aws_iam_policy_document.ecs_trust.json
  permissions_boundary = var.permissions_boundary
  tags                 = var.tags
}

resource "aws_iam_role_policy_attachment" "ecs_task" {
  count = var.create_ecs_task_role ? 1 : 0

  role       = aws_iam_role.ecs_task[0].name
  policy_arn = aws_iam_policy.worker.arn
}
