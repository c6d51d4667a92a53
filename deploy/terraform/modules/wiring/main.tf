# The watcher's wiring: buckets (optional), the queue and its DLQ, each bucket's notifications in
# its delivery shape, the idempotency table (optional) and the worker's IAM policy and roles.
# Everything examples/basic and examples/ecs share; no provider block (the caller's is used).

data "aws_partition" "current" {}
data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

locals {
  name = trimsuffix(var.queue_name, ".fifo")
  # The created bucket when there is one, so its notifications wait for it.
  bucket_names = { for name, _ in var.buckets : name => var.create_buckets ? aws_s3_bucket.this[name].id : name }

  # The queue policy names every topic and rule that may send, and the notifications wait for the
  # policy: so their ARNs are built here from names given to the module, not read from its outputs
  # (that would be a dependency cycle).
  arn_prefix  = "${data.aws_partition.current.partition}:%s:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}"
  sanitized   = { for name, _ in var.buckets : name => replace(name, ".", "-") }
  topic_names = { for name, b in var.buckets : name => "${local.sanitized[name]}-s3-events" if b.delivery == "sns" }
  rule_name_prefixes = {
    for name, b in var.buckets : name => (
      length(local.sanitized[name]) <= 58 ? local.sanitized[name] : "${substr(local.sanitized[name], 0, 49)}-${substr(sha1(local.sanitized[name]), 0, 8)}"
    ) if b.delivery == "eventbridge"
  }
  allowed_source_arns = {
    s3  = [for name, b in var.buckets : "arn:${data.aws_partition.current.partition}:s3:::${name}" if b.delivery == "direct"]
    sns = [for name, topic in local.topic_names : "arn:${format(local.arn_prefix, "sns")}:${topic}"]
    events = flatten([
      for name, prefix in local.rule_name_prefixes : [
        for index, _ in var.buckets[name].filters : "arn:${format(local.arn_prefix, "events")}:rule/${prefix}-${index}"
      ]
    ])
  }
}

# ---- buckets -------------------------------------------------------------------------------------

resource "aws_s3_bucket" "this" {
  #checkov:skip=CKV_AWS_18:Access logging needs a log bucket of the user's own; this module makes the watched buckets only.
  #checkov:skip=CKV_AWS_144:Cross-region replication is a data-protection choice of the user, not the watcher's wiring.
  #checkov:skip=CKV2_AWS_61:Lifecycle rules depend on the data kept; the watcher needs none.
  #checkov:skip=CKV_AWS_145:SSE-S3 (set below) keeps readers simple; SSE-KMS needs kms:Decrypt for the worker and every other reader, a user's choice.
  #checkov:skip=CKV2_AWS_62:The notifications are configured, by module.notifications (aws_s3_bucket_notification).
  for_each = var.create_buckets ? var.buckets : {}

  bucket        = each.key
  force_destroy = var.force_destroy_buckets
  tags          = var.tags
}

resource "aws_s3_bucket_public_access_block" "this" {
  for_each = aws_s3_bucket.this

  bucket                  = each.value.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_server_side_encryption_configuration" "this" {
  for_each = aws_s3_bucket.this

  bucket = each.value.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_versioning" "this" {
  for_each = aws_s3_bucket.this

  bucket = each.value.id
  versioning_configuration {
    status = "Enabled"
  }
}

# ---- queue and notifications ---------------------------------------------------------------------

# What only the queue's name and the buckets' shapes decide, refused at plan time (bucket-notifications
# checks it too, but only once the queue's ARN is known, at apply).
resource "terraform_data" "fifo_needs_eventbridge" {
  lifecycle {
    precondition {
      condition     = !endswith(var.queue_name, ".fifo") || alltrue([for b in values(var.buckets) : b.delivery == "eventbridge"])
      error_message = "The queue ${var.queue_name} is FIFO: S3 cannot send event notifications to a FIFO queue, nor publish to a FIFO topic. Give every bucket delivery eventbridge: ${join(", ", [for name, b in var.buckets : name if b.delivery != "eventbridge"])} do not."
    }
  }
}

module "queue" {
  source = "../queue"

  name                       = var.queue_name
  visibility_timeout_seconds = var.visibility_timeout_seconds
  receive_wait_time_seconds  = var.receive_wait_time_seconds
  max_receive_count          = var.max_receive_count
  allowed_source_arns        = local.allowed_source_arns
  tags                       = var.tags
}

module "notifications" {
  source   = "../bucket-notifications"
  for_each = var.buckets

  bucket          = local.bucket_names[each.key]
  delivery        = each.value.delivery
  filters         = each.value.filters
  queue_arn       = module.queue.queue_arn
  queue_policy_id = module.queue.queue_policy_id
  # Null for the shapes that have no topic or rules.
  topic_name       = lookup(local.topic_names, each.key, null)
  rule_name_prefix = lookup(local.rule_name_prefixes, each.key, null)
  tags             = var.tags
}

# ---- idempotency table ---------------------------------------------------------------------------

resource "aws_dynamodb_table" "idempotency" {
  #checkov:skip=CKV_AWS_119:Encrypted at rest with the AWS-owned key; a customer-managed key adds cost and a key policy for short-lived dedup records.
  #checkov:skip=CKV_AWS_28:Point-in-time recovery of records that expire within hours restores nothing useful.
  count = var.idempotency_table == null ? 0 : 1

  name         = var.idempotency_table
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "pk"

  attribute {
    name = "pk"
    type = "S"
  }

  ttl {
    attribute_name = "expires_at"
    enabled        = true
  }

  tags = var.tags
}

# ---- the worker's permissions --------------------------------------------------------------------

module "worker_iam" {
  source = "../worker-iam"

  name                    = "${local.name}-worker"
  queue_arn               = module.queue.queue_arn
  dlq_arn                 = module.queue.dlq_arn
  read_locations          = var.read_locations
  write_locations         = var.write_locations
  secret_names            = var.secret_names
  ssm_parameter_names     = var.ssm_parameter_names
  batch_job_queues        = var.batch_job_queues
  batch_job_definitions   = var.batch_job_definitions
  batch_staging_locations = var.batch_staging_locations
  idempotency_table_arn   = one(aws_dynamodb_table.idempotency[*].arn)
  create_ec2_role         = var.create_ec2_role
  create_ecs_task_role    = var.create_ecs_task_role
  tags                    = var.tags
}
