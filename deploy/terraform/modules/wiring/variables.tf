# ---- what `watcher render terraform -c config/watcher.yaml` writes (watcher.auto.tfvars.json) ----

variable "queue_name" {
  description = "Name of the queue the worker polls (queue.name). The DLQ is <name>-dlq; the worker's policy and roles are <name>-worker* (without .fifo). A name ending in .fifo needs every bucket's delivery to be eventbridge (refused at plan time otherwise)."
  type        = string
}

variable "visibility_timeout_seconds" {
  description = "The queue's visibility timeout (queue.visibility_timeout). 0-43200."
  type        = number
  default     = 120

  validation {
    condition     = var.visibility_timeout_seconds >= 0 && var.visibility_timeout_seconds <= 43200
    error_message = "visibility_timeout_seconds must be from 0 to 43200."
  }
}

variable "receive_wait_time_seconds" {
  description = "The queue's long-polling wait (queue.wait_time_seconds). 0-20."
  type        = number
  default     = 20

  validation {
    condition     = var.receive_wait_time_seconds >= 0 && var.receive_wait_time_seconds <= 20
    error_message = "receive_wait_time_seconds must be from 0 to 20."
  }
}

variable "max_receive_count" {
  description = "Receives of a message before SQS moves it to the DLQ (queue.max_receive_count). 1-1000."
  type        = number
  default     = 5

  validation {
    condition     = var.max_receive_count >= 1 && var.max_receive_count <= 1000
    error_message = "max_receive_count must be from 1 to 1000."
  }
}

variable "buckets" {
  description = "The buckets the routes watch: how each one's events travel (delivery: direct, sns or eventbridge) and its notification filters, merged as `watcher provision` merges them. Empty prefix or suffix means none. Validated: the delivery, at least one filter per bucket, events starting with `s3:`, S3 bucket names."
  type = map(object({
    delivery = optional(string, "direct")
    filters = list(object({
      prefix = optional(string, "")
      suffix = optional(string, "")
      events = optional(list(string), ["s3:ObjectCreated:*"])
    }))
  }))

  validation {
    condition     = alltrue([for b in values(var.buckets) : contains(["direct", "sns", "eventbridge"], b.delivery)])
    error_message = "Every bucket's delivery must be direct, sns or eventbridge."
  }

  validation {
    condition     = alltrue([for b in values(var.buckets) : length(b.filters) > 0])
    error_message = "Every bucket needs at least one filter."
  }

  validation {
    condition     = alltrue(flatten([for b in values(var.buckets) : [for f in b.filters : length(f.events) > 0 && alltrue([for e in f.events : startswith(e, "s3:")])]]))
    error_message = "Every filter needs events, each starting with s3: (e.g. s3:ObjectCreated:*)."
  }

  validation {
    condition     = alltrue([for name in keys(var.buckets) : can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", name))])
    error_message = "Bucket names must be valid S3 bucket names."
  }
}

variable "read_locations" {
  description = "Where the worker reads objects: the routes' bucket and prefix (s3:GetObject, s3:GetObjectVersion)."
  type = list(object({
    bucket = string
    prefix = optional(string, "")
  }))
  default = []
}

variable "write_locations" {
  description = "Where the worker writes objects: the container routes' outputs (s3:PutObject, s3:AbortMultipartUpload)."
  type = list(object({
    bucket = string
    prefix = optional(string, "")
  }))
  default = []
}

variable "batch_job_queues" {
  description = "AWS Batch job queues of the routes with runtime batch (watcher render terraform)."
  type        = list(string)
  default     = []
}

variable "batch_job_definitions" {
  description = "AWS Batch job definitions of those routes."
  type        = list(string)
  default     = []
}

variable "batch_staging_locations" {
  description = "Where those routes' jobs are staged in S3."
  type = list(object({
    bucket = string
    prefix = string
  }))
  default = []
}

variable "secret_names" {
  description = "Secrets Manager secrets the config references (secretsmanager: placeholders, without #field): secretsmanager:GetSecretValue."
  type        = list(string)
  default     = []
}

variable "ssm_parameter_names" {
  description = "SSM parameters the config references (ssm: placeholders): ssm:GetParameter."
  type        = list(string)
  default     = []
}

variable "idempotency_table" {
  description = "Name of the DynamoDB idempotency table to create (on demand, hash key pk, TTL on expires_at) and cover in the worker's policy, or null for none. Validated as a table name."
  type        = string
  default     = null

  validation {
    condition     = var.idempotency_table == null || can(regex("^[A-Za-z0-9_.-]{3,255}$", coalesce(var.idempotency_table, "x")))
    error_message = "idempotency_table must be a DynamoDB table name (3-255 letters, digits, _ . -)."
  }
}

# ---- what the deployment decides ---------------------------------------------------------------

variable "create_buckets" {
  description = "Create the buckets (encrypted, versioned, public access blocked). False: they exist already; only their notification configuration is managed (and replaced)."
  type        = bool
  default     = true
}

variable "force_destroy_buckets" {
  description = "Let `terraform destroy` delete created buckets that still hold objects."
  type        = bool
  default     = false
}

variable "create_ec2_role" {
  description = "Create an EC2 role and instance profile with the worker's policy (<name>-worker-ec2)."
  type        = bool
  default     = false
}

variable "create_ecs_task_role" {
  description = "Create an ECS task role with the worker's policy (<name>-worker-ecs-task): the ecs-service module's task_role_arn."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags for everything created."
  type        = map(string)
  default     = {}
}
