variable "name" {
  description = "Name of the queue the worker polls. A name ending in .fifo makes both queues FIFO (S3 and SNS cannot deliver to a FIFO queue: only EventBridge can)."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,80}$", trimsuffix(var.name, ".fifo")))
    error_message = "The queue name must be 1-80 characters of letters, digits, hyphens and underscores (plus an optional .fifo suffix)."
  }
}

variable "dlq_name" {
  description = "Name of the dead-letter queue. Default: the queue's name with -dlq appended (before .fifo), as `watcher provision` names it."
  type        = string
  default     = null

  validation {
    condition     = var.dlq_name == null || can(regex("^[A-Za-z0-9_-]{1,80}$", trimsuffix(coalesce(var.dlq_name, "x"), ".fifo")))
    error_message = "The DLQ name must be 1-80 characters of letters, digits, hyphens and underscores (plus an optional .fifo suffix)."
  }
}

variable "visibility_timeout_seconds" {
  description = "Visibility timeout of the queue (queue.visibility_timeout in the watcher config). The worker extends it while a message is in flight."
  type        = number
  default     = 120

  validation {
    condition     = var.visibility_timeout_seconds >= 0 && var.visibility_timeout_seconds <= 43200 && floor(var.visibility_timeout_seconds) == var.visibility_timeout_seconds
    error_message = "visibility_timeout_seconds must be a whole number from 0 to 43200 (12 hours)."
  }
}

variable "receive_wait_time_seconds" {
  description = "Long-polling wait of ReceiveMessage (queue.wait_time_seconds in the watcher config)."
  type        = number
  default     = 20

  validation {
    condition     = var.receive_wait_time_seconds >= 0 && var.receive_wait_time_seconds <= 20 && floor(var.receive_wait_time_seconds) == var.receive_wait_time_seconds
    error_message = "receive_wait_time_seconds must be a whole number from 0 to 20."
  }
}

variable "message_retention_seconds" {
  description = "How long the queue keeps a message (60 s to 14 days). Default 4 days, SQS's own default."
  type        = number
  default     = 345600

  validation {
    condition     = var.message_retention_seconds >= 60 && var.message_retention_seconds <= 1209600
    error_message = "message_retention_seconds must be from 60 to 1209600 (14 days)."
  }
}

variable "dlq_message_retention_seconds" {
  description = "How long the DLQ keeps a message. Default 14 days, the maximum: time to look at a failure and redrive it."
  type        = number
  default     = 1209600

  validation {
    condition     = var.dlq_message_retention_seconds >= 60 && var.dlq_message_retention_seconds <= 1209600
    error_message = "dlq_message_retention_seconds must be from 60 to 1209600 (14 days)."
  }
}

variable "max_receive_count" {
  description = "Receives of a message before SQS moves it to the DLQ (the RedrivePolicy's maxReceiveCount)."
  type        = number
  default     = 5

  validation {
    condition     = var.max_receive_count >= 1 && var.max_receive_count <= 1000 && floor(var.max_receive_count) == var.max_receive_count
    error_message = "max_receive_count must be a whole number from 1 to 1000."
  }
}

variable "sqs_managed_sse_enabled" {
  description = "Encrypt both queues at rest with SQS-managed keys (SSE-SQS). Ignored when kms_master_key_id is set. S3, SNS and EventBridge can all send to an SSE-SQS queue; with SSE-KMS they need a customer-managed key whose policy lets them use it."
  type        = bool
  default     = true
}

variable "kms_master_key_id" {
  description = "A customer-managed KMS key (id, ARN or alias) to encrypt both queues with instead of SSE-SQS. Its key policy must let s3.amazonaws.com / sns.amazonaws.com / events.amazonaws.com call kms:GenerateDataKey and kms:Decrypt, and the worker needs kms:Decrypt and kms:GenerateDataKey (worker-iam's sqs_kms_key_arns)."
  type        = string
  default     = null
}

variable "kms_data_key_reuse_period_seconds" {
  description = "How long SQS reuses a data key before calling KMS again (with kms_master_key_id)."
  type        = number
  default     = 300

  validation {
    condition     = var.kms_data_key_reuse_period_seconds >= 60 && var.kms_data_key_reuse_period_seconds <= 86400
    error_message = "kms_data_key_reuse_period_seconds must be from 60 to 86400."
  }
}

variable "allowed_source_arns" {
  description = "Who may send to the queue, per service: buckets (s3, e.g. arn:aws:s3:::data-lake), SNS topics (sns) and EventBridge rules (events). Each non-empty list becomes one statement of the queue policy allowing sqs:SendMessage to that service principal, on condition ArnEquals aws:SourceArn and StringEquals aws:SourceAccount. All empty: no queue policy is written."
  type = object({
    s3     = optional(list(string), [])
    sns    = optional(list(string), [])
    events = optional(list(string), [])
  })
  default = {}

  validation {
    condition = alltrue(concat(
      [for arn in var.allowed_source_arns.s3 : can(regex("^arn:[a-z-]+:s3:::[^/]+$", arn))],
      [for arn in var.allowed_source_arns.sns : can(regex("^arn:[a-z-]+:sns:[a-z0-9-]+:[0-9]{12}:.+$", arn))],
      [for arn in var.allowed_source_arns.events : can(regex("^arn:[a-z-]+:events:[a-z0-9-]+:[0-9]{12}:rule/.+$", arn))],
    ))
    error_message = "allowed_source_arns: s3 takes bucket ARNs (arn:aws:s3:::NAME), sns topic ARNs, events EventBridge rule ARNs (arn:aws:events:REGION:ACCOUNT:rule/NAME)."
  }
}

variable "source_account" {
  description = "Account ID required as aws:SourceAccount in the queue policy (the account that owns the buckets, topics and rules). Default: the caller's account."
  type        = string
  default     = null

  validation {
    condition     = var.source_account == null || can(regex("^[0-9]{12}$", coalesce(var.source_account, "x")))
    error_message = "source_account must be a 12-digit AWS account ID."
  }
}

variable "tags" {
  description = "Tags for both queues."
  type        = map(string)
  default     = {}
}
