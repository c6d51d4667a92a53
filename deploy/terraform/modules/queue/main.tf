data "aws_partition" "current" {}
data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

locals {
  fifo     = endswith(var.name, ".fifo")
  dlq_name = coalesce(var.dlq_name, local.fifo ? "${trimsuffix(var.name, ".fifo")}-dlq.fifo" : "${var.name}-dlq")
  account  = data.aws_caller_identity.current.account_id
  # The queue's ARN, known before the queue exists: the DLQ's redrive allow policy names it
  # without waiting for the queue, so both are created at once.
  queue_arn = "arn:${data.aws_partition.current.partition}:sqs:${data.aws_region.current.name}:${local.account}:${var.name}"
  # Who owns the senders: aws:SourceAccount in the queue policy.
  source_account = var.source_account != null ? var.source_account : local.account

  # SSE-KMS with the caller's key replaces SSE-SQS; null leaves the attribute to SQS.
  sse_sqs = var.kms_master_key_id == null ? var.sqs_managed_sse_enabled : null

  principals = {
    s3     = "s3.amazonaws.com"
    sns    = "sns.amazonaws.com"
    events = "events.amazonaws.com"
  }
  senders = { for service, arns in var.allowed_source_arns : service => arns if length(arns) > 0 }
}

resource "aws_sqs_queue" "dlq" {
  name                              = local.dlq_name
  fifo_queue                        = local.fifo ? true : null
  message_retention_seconds         = var.dlq_message_retention_seconds
  sqs_managed_sse_enabled           = local.sse_sqs
  kms_master_key_id                 = var.kms_master_key_id
  kms_data_key_reuse_period_seconds = var.kms_master_key_id == null ? null : var.kms_data_key_reuse_period_seconds
  tags                              = var.tags

  # Only the watcher's queue may redrive into this DLQ. An argument of the queue rather than an
  # aws_sqs_queue_redrive_allow_policy resource: LocalStack answers an emptied RedriveAllowPolicy
  # with "" instead of leaving it out, and the provider's delete of that resource then waits for
  # "" to equal "" as JSON, which never happens (destroy hangs until its timeout). Deleting the
  # queue takes the policy with it.
  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [local.queue_arn]
  })
}

resource "aws_sqs_queue" "this" {
  name                              = var.name
  fifo_queue                        = local.fifo ? true : null
  visibility_timeout_seconds        = var.visibility_timeout_seconds
  receive_wait_time_seconds         = var.receive_wait_time_seconds
  message_retention_seconds         = var.message_retention_seconds
  sqs_managed_sse_enabled           = local.sse_sqs
  kms_master_key_id                 = var.kms_master_key_id
  kms_data_key_reuse_period_seconds = var.kms_master_key_id == null ? null : var.kms_data_key_reuse_period_seconds
  tags                              = var.tags
}

resource "aws_sqs_queue_redrive_policy" "this" {
  queue_url = aws_sqs_queue.this.id
  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dlq.arn
    maxReceiveCount     = var.max_receive_count
  })
}

data "aws_iam_policy_document" "queue" {
  count = length(local.senders) > 0 ? 1 : 0

  dynamic "statement" {
    for_each = local.senders
    content {
      sid       = "Allow${title(statement.key)}ToSend"
      effect    = "Allow"
      actions   = ["sqs:SendMessage"]
      resources = [aws_sqs_queue.this.arn]

      principals {
        type        = "Service"
        identifiers = [local.principals[statement.key]]
      }

      condition {
        test     = "ArnEquals"
        variable = "aws:SourceArn"
        values   = statement.value
      }

      condition {
        test     = "StringEquals"
        variable = "aws:SourceAccount"
        values   = [local.source_account]
      }
    }
  }
}

resource "aws_sqs_queue_policy" "this" {
  count = length(local.senders) > 0 ? 1 : 0

  queue_url = aws_sqs_queue.this.id
  policy    = data.aws_iam_policy_document.queue[0].json
}
