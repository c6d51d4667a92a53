data "aws_partition" "current" {}

data "aws_caller_identity" "current" {
  count = var.delivery == "sns" ? 1 : 0
}

locals {
  bucket_arn = "arn:${data.aws_partition.current.partition}:s3:::${var.bucket}"
  # Topic and rule names: letters, digits, hyphens and underscores (a bucket name may hold dots).
  sanitized        = replace(var.bucket, ".", "-")
  topic_name       = coalesce(var.topic_name, "${local.sanitized}-s3-events")
  rule_name_prefix = coalesce(var.rule_name_prefix, length(local.sanitized) <= 58 ? local.sanitized : "${substr(local.sanitized, 0, 49)}-${substr(sha1(local.sanitized), 0, 8)}")
  fifo_queue       = endswith(var.queue_arn, ".fifo")
  filters          = { for index, f in var.filters : tostring(index) => f }

  # EventBridge detail-type of each S3 event type. The rule matches on the detail type only: a
  # narrower type (s3:ObjectCreated:Put) widens to its family (Object Created), and the worker's
  # routing drops the records no route wants (counted with reason event_type).
  detail_types = {
    "s3:ObjectCreated:*"                         = ["Object Created"]
    "s3:ObjectCreated:Put"                       = ["Object Created"]
    "s3:ObjectCreated:Post"                      = ["Object Created"]
    "s3:ObjectCreated:Copy"                      = ["Object Created"]
    "s3:ObjectCreated:CompleteMultipartUpload"   = ["Object Created"]
    "s3:ObjectRemoved:*"                         = ["Object Deleted"]
    "s3:ObjectRemoved:Delete"                    = ["Object Deleted"]
    "s3:ObjectRemoved:DeleteMarkerCreated"       = ["Object Deleted"]
    "s3:LifecycleExpiration:*"                   = ["Object Deleted"]
    "s3:LifecycleExpiration:Delete"              = ["Object Deleted"]
    "s3:LifecycleExpiration:DeleteMarkerCreated" = ["Object Deleted"]
    "s3:ObjectRestore:*"                         = ["Object Restore Initiated", "Object Restore Completed", "Object Restore Expired"]
    "s3:ObjectRestore:Post"                      = ["Object Restore Initiated"]
    "s3:ObjectRestore:Completed"                 = ["Object Restore Completed"]
    "s3:ObjectRestore:Delete"                    = ["Object Restore Expired"]
    "s3:ObjectTagging:*"                         = ["Object Tags Added", "Object Tags Deleted"]
    "s3:ObjectTagging:Put"                       = ["Object Tags Added"]
    "s3:ObjectTagging:Delete"                    = ["Object Tags Deleted"]
    "s3:ObjectAcl:Put"                           = ["Object ACL Updated"]
    "s3:LifecycleTransition"                     = ["Object Storage Class Changed"]
    "s3:IntelligentTiering"                      = ["Object Access Tier Changed"]
  }

  # EventBridge matches the key as the event carries it: URL-encoded like an S3 notification's key
  # ("=" is %3D). The prefix and suffix are encoded the same way ("/" kept). A prefix and a suffix
  # together need one matcher (two matchers in a list are OR-ed): "wildcard", whose "*" crosses "/";
  # the encoded strings hold no "*" or "\" to escape.
  rules = {
    for index, f in local.filters : index => {
      prefix = replace(urlencode(f.prefix), "%2F", "/")
      suffix = replace(urlencode(f.suffix), "%2F", "/")
      events = f.events
    } if var.delivery == "eventbridge"
  }
  # As JSON text: the three matcher shapes are different object types.
  key_matchers = {
    for index, r in local.rules : index => (
      r.prefix != "" && r.suffix != "" ? jsonencode([{ wildcard = "${r.prefix}*${r.suffix}" }]) :
      r.prefix != "" ? jsonencode([{ prefix = r.prefix }]) :
      r.suffix != "" ? jsonencode([{ suffix = r.suffix }]) : ""
    )
  }
  patterns = {
    for index, r in local.rules : index => jsonencode({
      source        = ["aws.s3"]
      "detail-type" = distinct(flatten([for e in r.events : lookup(local.detail_types, e, [])]))
      detail = merge(
        { bucket = { name = [var.bucket] } },
        [for matcher in [local.key_matchers[index]] : { object = { key = jsondecode(matcher) } } if matcher != ""]...
      )
    })
  }
}

# ---- direct: S3 -> SQS ---------------------------------------------------------------------------

resource "aws_s3_bucket_notification" "direct" {
  count  = var.delivery == "direct" ? 1 : 0
  bucket = var.bucket

  dynamic "queue" {
    for_each = local.filters
    content {
      id            = "watcher-${queue.key}"
      queue_arn     = var.queue_arn
      events        = queue.value.events
      filter_prefix = queue.value.prefix == "" ? null : queue.value.prefix
      filter_suffix = queue.value.suffix == "" ? null : queue.value.suffix
    }
  }

  # S3 sends a test event to the queue when the notification is written, and refuses the
  # configuration when it may not.
  depends_on = [var.queue_policy_id]

  lifecycle {
    precondition {
      condition     = !local.fifo_queue
      error_message = "S3 cannot send event notifications to a FIFO queue: use delivery eventbridge, or a standard queue."
    }
  }
}

# ---- sns: S3 -> SNS topic -> SQS (and other subscribers) -----------------------------------------

resource "aws_sns_topic" "this" {
  #checkov:skip=CKV_AWS_26:Encryption is topic_kms_master_key_id's: S3 cannot publish to a topic encrypted with the AWS-managed key alias/aws/sns, only with a customer-managed key whose policy lets s3.amazonaws.com use it.
  count = var.delivery == "sns" ? 1 : 0

  name              = local.topic_name
  kms_master_key_id = var.topic_kms_master_key_id
  tags              = var.tags

  lifecycle {
    precondition {
      condition     = !local.fifo_queue
      error_message = "S3 cannot publish to a FIFO topic, and a standard topic cannot deliver to a FIFO queue: use delivery eventbridge, or a standard queue."
    }
  }
}

data "aws_iam_policy_document" "topic" {
  count = var.delivery == "sns" ? 1 : 0

  statement {
    sid       = "AllowS3ToPublish"
    effect    = "Allow"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.this[0].arn]

    principals {
      type        = "Service"
      identifiers = ["s3.amazonaws.com"]
    }

    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [local.bucket_arn]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current[0].account_id]
    }
  }
}

resource "aws_sns_topic_policy" "this" {
  count = var.delivery == "sns" ? 1 : 0

  arn    = aws_sns_topic.this[0].arn
  policy = data.aws_iam_policy_document.topic[0].json
}

resource "aws_sns_topic_subscription" "watcher" {
  count = var.delivery == "sns" ? 1 : 0

  topic_arn            = aws_sns_topic.this[0].arn
  protocol             = "sqs"
  endpoint             = var.queue_arn
  raw_message_delivery = var.raw_message_delivery

  depends_on = [var.queue_policy_id]
}

resource "aws_sns_topic_subscription" "extra" {
  for_each = var.delivery == "sns" ? toset(var.extra_subscriber_queue_arns) : toset([])

  topic_arn = aws_sns_topic.this[0].arn
  protocol  = "sqs"
  endpoint  = each.value
}

resource "aws_s3_bucket_notification" "sns" {
  count  = var.delivery == "sns" ? 1 : 0
  bucket = var.bucket

  dynamic "topic" {
    for_each = local.filters
    content {
      id            = "watcher-${topic.key}"
      topic_arn     = aws_sns_topic.this[0].arn
      events        = topic.value.events
      filter_prefix = topic.value.prefix == "" ? null : topic.value.prefix
      filter_suffix = topic.value.suffix == "" ? null : topic.value.suffix
    }
  }

  depends_on = [aws_sns_topic_policy.this, aws_sns_topic_subscription.watcher]
}

# ---- eventbridge: S3 -> EventBridge -> a rule per filter -> SQS ----------------------------------

resource "aws_s3_bucket_notification" "eventbridge" {
  count  = var.delivery == "eventbridge" ? 1 : 0
  bucket = var.bucket

  eventbridge = true
}

resource "aws_cloudwatch_event_rule" "this" {
  for_each = local.rules

  name          = "${local.rule_name_prefix}-${each.key}"
  description   = "S3 events of bucket ${var.bucket} (prefix '${var.filters[tonumber(each.key)].prefix}', suffix '${var.filters[tonumber(each.key)].suffix}') for the watcher's queue"
  event_pattern = local.patterns[each.key]
  tags          = var.tags

  lifecycle {
    precondition {
      condition = alltrue([for e in each.value.events : contains(keys(local.detail_types), e)])
      # (Not naming the bucket: a bucket created in the same run has no known name at plan time.)
      error_message = "Filter ${each.key}: EventBridge has no detail type for one of ${join(", ", each.value.events)}; known event types: ${join(", ", keys(local.detail_types))}."
    }
  }
}

resource "aws_cloudwatch_event_target" "this" {
  for_each = local.rules

  rule      = aws_cloudwatch_event_rule.this[each.key].name
  target_id = "watcher-queue"
  arn       = var.queue_arn

  dynamic "sqs_target" {
    for_each = local.fifo_queue ? [1] : []
    content {
      message_group_id = var.bucket
    }
  }

  depends_on = [var.queue_policy_id]
}
