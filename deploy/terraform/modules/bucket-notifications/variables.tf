variable "bucket" {
  description = "Name of the bucket whose events reach the queue. This module owns the bucket's whole notification configuration (aws_s3_bucket_notification replaces what is there)."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.bucket))
    error_message = "bucket must be a valid S3 bucket name (3-63 lowercase letters, digits, dots and hyphens)."
  }
}

variable "delivery" {
  description = "How events travel: direct (S3 -> SQS), sns (S3 -> an SNS topic of this bucket -> SQS, for fan-out) or eventbridge (S3 -> EventBridge -> a rule per filter -> SQS)."
  type        = string
  default     = "direct"

  validation {
    condition     = contains(["direct", "sns", "eventbridge"], var.delivery)
    error_message = "delivery must be one of direct, sns, eventbridge."
  }
}

variable "filters" {
  description = "The notification filters of the bucket, as `watcher render terraform` merges them from the routes (S3 refuses two filters of one bucket that could match the same event). Empty prefix or suffix means none."
  type = list(object({
    prefix = optional(string, "")
    suffix = optional(string, "")
    events = optional(list(string), ["s3:ObjectCreated:*"])
  }))

  validation {
    condition     = length(var.filters) > 0 && length(var.filters) <= 100
    error_message = "filters must hold 1 to 100 filters."
  }

  validation {
    condition     = alltrue([for f in var.filters : length(f.events) > 0 && alltrue([for e in f.events : startswith(e, "s3:")])])
    error_message = "Every filter needs at least one event, and every event starts with s3: (e.g. s3:ObjectCreated:*)."
  }

  validation {
    condition     = alltrue([for f in var.filters : length(f.prefix) <= 1024 && length(f.suffix) <= 1024])
    error_message = "A prefix or suffix is at most 1024 characters (S3's key length)."
  }
}

variable "queue_arn" {
  description = "ARN of the watcher's queue (queue module output queue_arn)."
  type        = string

  validation {
    condition     = can(regex("^arn:[a-z-]+:sqs:[a-z0-9-]+:[0-9]{12}:.+$", var.queue_arn))
    error_message = "queue_arn must be an SQS queue ARN."
  }
}

variable "queue_policy_id" {
  description = "The queue policy's ID (queue module output queue_policy_id). Only used to order creation: the notification, subscription and rule targets are configured after the queue accepts them."
  type        = string
  default     = null
}

variable "topic_name" {
  description = "Name of the SNS topic (delivery sns). Default: the bucket's name (dots as hyphens) followed by -s3-events. A caller that needs the topic's ARN before it exists (for the queue policy) passes the name and builds the ARN itself."
  type        = string
  default     = null

  validation {
    condition     = var.topic_name == null || can(regex("^[A-Za-z0-9_-]{1,256}$", coalesce(var.topic_name, "x")))
    error_message = "topic_name may hold 1-256 letters, digits, hyphens and underscores."
  }
}

variable "rule_name_prefix" {
  description = "The EventBridge rules (delivery eventbridge) are named <rule_name_prefix>-<filter index>. Default: the bucket's name (dots as hyphens; past 58 characters cut to 49 plus a hash of the whole). A caller that needs the rules' ARNs before they exist passes the prefix and builds the ARNs itself."
  type        = string
  default     = null

  validation {
    condition     = var.rule_name_prefix == null || can(regex("^[A-Za-z0-9_.-]{1,58}$", coalesce(var.rule_name_prefix, "x")))
    error_message = "rule_name_prefix may hold 1-58 letters, digits, dots, hyphens and underscores (rule names stop at 64)."
  }
}

variable "topic_kms_master_key_id" {
  description = "Customer-managed KMS key to encrypt the SNS topic with (delivery sns). Its key policy must let s3.amazonaws.com call kms:GenerateDataKey* and kms:Decrypt: S3 cannot publish to a topic encrypted with the AWS-managed key alias/aws/sns."
  type        = string
  default     = null
}

variable "raw_message_delivery" {
  description = "Subscribe the watcher's queue with raw message delivery (delivery sns): the queue then receives the plain S3 event instead of the SNS envelope. The worker reads both."
  type        = bool
  default     = false
}

variable "extra_subscriber_queue_arns" {
  description = "Other SQS queues subscribed to the bucket's topic (delivery sns): the fan-out the SNS shape exists for. Each queue's own policy must let this topic send (condition aws:SourceArn = topic_arn output)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for arn in var.extra_subscriber_queue_arns : can(regex("^arn:[a-z-]+:sqs:[a-z0-9-]+:[0-9]{12}:.+$", arn))])
    error_message = "extra_subscriber_queue_arns must be SQS queue ARNs."
  }
}

variable "tags" {
  description = "Tags for the SNS topic and the EventBridge rules."
  type        = map(string)
  default     = {}
}
