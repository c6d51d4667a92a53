variable "name" {
  description = "Name (and prefix of the role names) of the worker's IAM policy, e.g. watcher-events-worker."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9+=,.@_-]{1,52}$", var.name))
    error_message = "name must be 1-52 characters of letters, digits and +=,.@_- (role names get a suffix and stop at 64)."
  }
}

variable "path" {
  description = "IAM path of the policy and the roles."
  type        = string
  default     = "/"
}

variable "queue_arn" {
  description = "ARN of the queue the worker polls: ReceiveMessage, DeleteMessage, ChangeMessageVisibility, GetQueueAttributes, GetQueueUrl."
  type        = string

  validation {
    condition     = can(regex("^arn:[a-z-]+:sqs:[a-z0-9-]+:[0-9]{12}:.+$", var.queue_arn))
    error_message = "queue_arn must be an SQS queue ARN."
  }
}

variable "dlq_arn" {
  description = "ARN of the dead-letter queue: the worker finds it (GetQueueUrl, GetQueueAttributes) and sends permanent failures there (SendMessage). Null: no DLQ permissions (not recommended: the worker refuses to start without a DLQ it can reach)."
  type        = string
  default     = null

  validation {
    condition     = var.dlq_arn == null || can(regex("^arn:[a-z-]+:sqs:[a-z0-9-]+:[0-9]{12}:.+$", coalesce(var.dlq_arn, "x")))
    error_message = "dlq_arn must be an SQS queue ARN."
  }
}

variable "read_locations" {
  description = "Where the worker reads objects (the routes' inputs): s3:GetObject and s3:GetObjectVersion (events of a versioned bucket name the version) on bucket/prefix*. An empty prefix means the whole bucket."
  type = list(object({
    bucket = string
    prefix = optional(string, "")
  }))
  default = []

  validation {
    condition     = alltrue([for l in var.read_locations : can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", l.bucket))])
    error_message = "read_locations: every bucket must be a valid S3 bucket name (no ARN, no s3:// prefix)."
  }
}

variable "write_locations" {
  description = "Where the worker writes objects (container outputs): s3:PutObject and s3:AbortMultipartUpload (large uploads are multipart) on bucket/prefix*."
  type = list(object({
    bucket = string
    prefix = optional(string, "")
  }))
  default = []

  validation {
    condition     = alltrue([for l in var.write_locations : can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", l.bucket))])
    error_message = "write_locations: every bucket must be a valid S3 bucket name (no ARN, no s3:// prefix)."
  }
}

variable "secret_names" {
  description = "Secrets Manager secrets the config references ($${secretsmanager:NAME} or $${secretsmanager:NAME#field}): secretsmanager:GetSecretValue. Names (the random suffix AWS appends is matched) or full ARNs."
  type        = list(string)
  default     = []
}

variable "ssm_parameter_names" {
  description = "SSM parameters the config references ($${ssm:/path}): ssm:GetParameter. Names with or without the leading slash, or full ARNs."
  type        = list(string)
  default     = []
}

variable "batch_job_queues" {
  description = "AWS Batch job queues of container routes with runtime batch (names or ARNs): batch:SubmitJob there, and DescribeJobQueues, ListJobs, DescribeJobs, TerminateJob, TagResource on its jobs."
  type        = list(string)
  default     = []
}

variable "batch_job_definitions" {
  description = "AWS Batch job definitions of those routes (name, name:revision or ARN): batch:SubmitJob with them."
  type        = list(string)
  default     = []
}

variable "batch_staging_locations" {
  description = "Where batch jobs' scripts, inputs and results pass (`.watcher/batch/` under a route's staging or first output): s3:PutObject, GetObject, DeleteObject there and s3:ListBucket of that prefix."
  type = list(object({
    bucket = string
    prefix = string
  }))
  default = []
}

variable "batch_log_groups" {
  description = "CloudWatch log groups the batch jobs write to (their job definitions' awslogs-group option; Batch's default is /aws/batch/job): logs:GetLogEvents on their streams, to keep a job's log when it hands back nothing."
  type        = list(string)
  default     = ["/aws/batch/job"]
}

variable "secrets_kms_key_arns" {
  description = "Customer-managed KMS keys that encrypt the referenced secrets or SecureString parameters: kms:Decrypt, only through Secrets Manager or SSM (kms:ViaService). Not needed for the AWS-managed keys aws/secretsmanager and aws/ssm, whose key policies already let every principal of the account use them through their service."
  type        = list(string)
  default     = []
}

variable "sqs_kms_key_arns" {
  description = "Customer-managed KMS keys of the queues (SSE-KMS): kms:Decrypt to receive and kms:GenerateDataKey to send to the DLQ, only through SQS. Not needed with SSE-SQS (the queue module's default)."
  type        = list(string)
  default     = []
}

variable "idempotency_table_arn" {
  description = "ARN of the DynamoDB idempotency table: PutItem, UpdateItem, DeleteItem. Null: none."
  type        = string
  default     = null

  validation {
    condition     = var.idempotency_table_arn == null || can(regex("^arn:[a-z-]+:dynamodb:[a-z0-9-]+:[0-9]{12}:table/.+$", coalesce(var.idempotency_table_arn, "x")))
    error_message = "idempotency_table_arn must be a DynamoDB table ARN."
  }
}

variable "ecr_repository_arns" {
  description = "Private ECR repositories of the container routes' images when the worker itself pulls them (runtime docker on EC2): ecr:GetAuthorizationToken (on *, it names no resource) and the layer reads on these repositories."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for arn in var.ecr_repository_arns : can(regex("^arn:[a-z-]+:ecr:[a-z0-9-]+:[0-9]{12}:repository/.+$", arn))])
    error_message = "ecr_repository_arns must be ECR repository ARNs."
  }
}

variable "create_ec2_role" {
  description = "Create an IAM role for EC2 (trust ec2.amazonaws.com) with the policy attached, and its instance profile."
  type        = bool
  default     = false
}

variable "create_ecs_task_role" {
  description = "Create an IAM role for ECS tasks (trust ecs-tasks.amazonaws.com, limited to this account's ECS tasks) with the policy attached: the task role of the ecs-service module."
  type        = bool
  default     = false
}

variable "permissions_boundary" {
  description = "ARN of a permissions boundary for the roles."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags for the policy and the roles."
  type        = map(string)
  default     = {}
}
