variable "name" {
  description = "Name of the function, and prefix of its role and policy (<name>-lambda) and log group (/aws/lambda/<name>)."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,52}$", var.name))
    error_message = "name must be 1-52 characters of letters, digits, hyphens and underscores (the role name adds -lambda and stops at 64)."
  }
}

variable "package_path" {
  description = "Path of the deployment zip made by `watcher package lambda -c watcher.yaml -o watcher-lambda.zip` (watcher, its dependencies for the runtime and, unless config_source is ssm, the configuration)."
  type        = string

  validation {
    condition     = endswith(var.package_path, ".zip")
    error_message = "package_path must be the .zip that `watcher package lambda` wrote."
  }
}

variable "architecture" {
  description = "x86_64 or arm64: the --arch the package was built for (its compiled wheels are for one architecture)."
  type        = string
  default     = "x86_64"

  validation {
    condition     = contains(["x86_64", "arm64"], var.architecture)
    error_message = "architecture must be x86_64 or arm64."
  }
}

variable "memory_mb" {
  description = "Memory of the function in MB (CPU grows with it)."
  type        = number
  default     = 512

  validation {
    condition     = var.memory_mb >= 128 && var.memory_mb <= 10240 && floor(var.memory_mb) == var.memory_mb
    error_message = "memory_mb must be a whole number from 128 to 10240."
  }
}

variable "timeout_seconds" {
  description = "The function's timeout. watcher stops starting records lambda.reserve_seconds before it and gives up the units still running, so that it answers in time; the idempotency leases last at least this long."
  type        = number
  default     = 60

  validation {
    condition     = var.timeout_seconds >= 3 && var.timeout_seconds <= 900 && floor(var.timeout_seconds) == var.timeout_seconds
    error_message = "timeout_seconds must be a whole number from 3 to 900 (15 minutes)."
  }
}

variable "queue_arn" {
  description = "ARN of the queue the function is attached to (the queue module's queue_arn)."
  type        = string

  validation {
    condition     = can(regex("^arn:[a-z-]+:sqs:[a-z0-9-]+:[0-9]{12}:.+$", var.queue_arn))
    error_message = "queue_arn must be an SQS queue ARN."
  }
}

variable "queue_visibility_timeout_seconds" {
  description = "The queue's visibility timeout (the queue module's visibility_timeout_seconds). AWS advises at least six times the function's timeout, so that a batch retried by Lambda's poller (throttling, a failed invocation) is not delivered again while it still runs."
  type        = number

  validation {
    condition     = var.queue_visibility_timeout_seconds >= 6 * var.timeout_seconds
    error_message = "queue_visibility_timeout_seconds must be at least six times timeout_seconds (AWS's advice for an SQS event source): raise the queue's visibility timeout or lower the function's timeout."
  }
}

variable "dlq_arn" {
  description = "ARN of the queue's dead-letter queue: the function sends permanent failures there (with the watcher.* attributes) and finds it through the queue's RedrivePolicy."
  type        = string

  validation {
    condition     = can(regex("^arn:[a-z-]+:sqs:[a-z0-9-]+:[0-9]{12}:.+$", var.dlq_arn))
    error_message = "dlq_arn must be an SQS queue ARN."
  }
}

variable "batch_size" {
  description = "Most records per invocation. Above 10 (standard queues only), batching_window_seconds must be at least 1. The configuration's lambda.max_concurrency says how many of them run at once."
  type        = number
  default     = 10

  validation {
    condition     = var.batch_size >= 1 && var.batch_size <= 10000 && floor(var.batch_size) == var.batch_size
    error_message = "batch_size must be a whole number from 1 to 10000."
  }

  validation {
    condition     = var.batch_size <= 10 || var.batching_window_seconds >= 1
    error_message = "A batch_size above 10 needs batching_window_seconds of at least 1 (an SQS event source's rule)."
  }
}

variable "batching_window_seconds" {
  description = "How long Lambda gathers records before invoking (MaximumBatchingWindowInSeconds), 0 to 300. FIFO queues: 0."
  type        = number
  default     = 0

  validation {
    condition     = var.batching_window_seconds >= 0 && var.batching_window_seconds <= 300 && floor(var.batching_window_seconds) == var.batching_window_seconds
    error_message = "batching_window_seconds must be a whole number from 0 to 300."
  }
}

variable "maximum_concurrency" {
  description = "Most invocations the event source mapping runs at once (scaling_config.maximum_concurrency, 2 to 1000). Null: no limit of the mapping's own (the account's or reserved_concurrency applies)."
  type        = number
  default     = null

  validation {
    condition     = var.maximum_concurrency == null || (coalesce(var.maximum_concurrency, 2) >= 2 && coalesce(var.maximum_concurrency, 2) <= 1000)
    error_message = "maximum_concurrency must be from 2 to 1000, or null."
  }
}

variable "reserved_concurrency" {
  description = "Reserved concurrent executions of the function (null: none reserved, the account's pool). Keep it at or above maximum_concurrency, or Lambda throttles the mapping's invocations."
  type        = number
  default     = null

  validation {
    condition     = var.reserved_concurrency == null || coalesce(var.reserved_concurrency, 0) >= 0
    error_message = "reserved_concurrency must be 0 or more, or null."
  }
}

variable "enabled" {
  description = "Whether the event source mapping polls the queue."
  type        = bool
  default     = true
}

variable "config_source" {
  description = "Where the function's configuration comes from. package: the watcher.yaml inside the zip (`watcher package lambda -c`). ssm: config_yaml, kept in an SSM SecureString parameter that the function reads at each cold start (WATCHER_CONFIG=ssm:<name>): the configuration changes without a new package."
  type        = string
  default     = "package"

  validation {
    condition     = contains(["package", "ssm"], var.config_source)
    error_message = "config_source must be package or ssm."
  }
}

variable "config_yaml" {
  description = "The watcher YAML configuration (config_source ssm), e.g. file(\"watcher.yaml\"). At most 8 KiB (an advanced parameter above 4 KiB)."
  type        = string
  default     = null

  validation {
    condition     = var.config_yaml == null || length(coalesce(var.config_yaml, " ")) <= 8192
    error_message = "config_yaml must be at most 8192 characters (the SSM advanced tier's limit)."
  }
}

variable "config_parameter_name" {
  description = "Name of the SSM parameter holding config_yaml. Default: /<name>/config.yaml."
  type        = string
  default     = null
}

variable "config_kms_key_arn" {
  description = "Customer-managed KMS key of the config parameter (the role may decrypt with it through SSM). Null: the AWS-managed key aws/ssm."
  type        = string
  default     = null
}

variable "environment" {
  description = "Environment of the function: WATCHER_* overrides (WATCHER_LOGGING_LEVEL, WATCHER_LAMBDA_MAX_CONCURRENCY...) and what the routes reference with $${env:NAME}. Not for secrets: reference them ($${secretsmanager:...}, $${ssm:...})."
  type        = map(string)
  default     = {}
}

variable "environment_kms_key_arn" {
  description = "Customer-managed KMS key that encrypts the environment variables at rest. Null: Lambda's AWS-managed key."
  type        = string
  default     = null
}

variable "read_locations" {
  description = "Where the routes read objects (worker-iam's read_locations): s3:GetObject and s3:GetObjectVersion on bucket/prefix*."
  type = list(object({
    bucket = string
    prefix = optional(string, "")
  }))
  default = []
}

variable "write_locations" {
  description = "Where the routes write objects (worker-iam's write_locations)."
  type = list(object({
    bucket = string
    prefix = optional(string, "")
  }))
  default = []
}

variable "secret_names" {
  description = "Secrets Manager secrets the configuration references (worker-iam's secret_names)."
  type        = list(string)
  default     = []
}

variable "ssm_parameter_names" {
  description = "SSM parameters the configuration references (worker-iam's ssm_parameter_names). The config parameter (config_source ssm) is added."
  type        = list(string)
  default     = []
}

variable "secrets_kms_key_arns" {
  description = "Customer-managed KMS keys of the referenced secrets and parameters (worker-iam's secrets_kms_key_arns)."
  type        = list(string)
  default     = []
}

variable "sqs_kms_key_arns" {
  description = "Customer-managed KMS keys of the queues (worker-iam's sqs_kms_key_arns): Lambda's poller and the DLQ sends need them."
  type        = list(string)
  default     = []
}

variable "idempotency_table_arn" {
  description = "ARN of the DynamoDB idempotency table (the configuration's idempotency section, backend dynamodb). Null: none."
  type        = string
  default     = null
}

variable "subnet_ids" {
  description = "Subnets to run the function in (a VPC: it then needs a NAT gateway or VPC endpoints for SQS, S3, CloudWatch Logs, SSM...). Empty: Lambda's own network."
  type        = list(string)
  default     = []
}

variable "security_group_ids" {
  description = "Security groups of the function in the VPC (with subnet_ids)."
  type        = list(string)
  default     = []

  validation {
    condition     = length(var.security_group_ids) == 0 || length(var.subnet_ids) > 0
    error_message = "security_group_ids need subnet_ids: they apply to a function in a VPC."
  }
}

variable "code_signing_config_arn" {
  description = "ARN of a Lambda code signing configuration (AWS Signer) the package must satisfy. Null: none."
  type        = string
  default     = null
}

variable "tracing_mode" {
  description = "X-Ray tracing of the function: PassThrough or Active (the role then gets AWSXRayDaemonWriteAccess)."
  type        = string
  default     = "PassThrough"

  validation {
    condition     = contains(["PassThrough", "Active"], var.tracing_mode)
    error_message = "tracing_mode must be PassThrough or Active."
  }
}

variable "log_retention_days" {
  description = "Retention of the function's log group (its log lines and EMF metrics documents)."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be one of the values CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, ... 3653)."
  }
}

variable "log_kms_key_arn" {
  description = "Customer-managed KMS key of the log group (its policy must let logs.<region>.amazonaws.com use it). Null: CloudWatch Logs' own encryption."
  type        = string
  default     = null
}

variable "iam_path" {
  description = "IAM path of the role and the policy."
  type        = string
  default     = "/"
}

variable "permissions_boundary" {
  description = "ARN of a permissions boundary for the role."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags for everything the module creates."
  type        = map(string)
  default     = {}
}
