# ---- what `watcher render terraform -c config/watcher.yaml` writes (watcher.auto.tfvars.json) ----
# Validated by modules/wiring, which documents each one.

variable "queue_name" {
  description = "Name of the queue the worker polls (queue.name). The DLQ is <name>-dlq."
  type        = string
  default     = "watcher-events"
}

variable "visibility_timeout_seconds" {
  description = "The queue's visibility timeout (queue.visibility_timeout)."
  type        = number
  default     = 120
}

variable "receive_wait_time_seconds" {
  description = "The queue's long-polling wait (queue.wait_time_seconds)."
  type        = number
  default     = 20
}

variable "max_receive_count" {
  description = "Receives of a message before SQS moves it to the DLQ."
  type        = number
  default     = 5
}

variable "buckets" {
  description = "The buckets the routes watch: each one's delivery (direct, sns or eventbridge) and merged notification filters."
  type = map(object({
    delivery = optional(string, "direct")
    filters = list(object({
      prefix = optional(string, "")
      suffix = optional(string, "")
      events = optional(list(string), ["s3:ObjectCreated:*"])
    }))
  }))
}

variable "read_locations" {
  description = "Where the worker reads objects: the routes' bucket and prefix."
  type        = list(object({ bucket = string, prefix = optional(string, "") }))
  default     = []
}

variable "write_locations" {
  description = "Where the worker writes objects: the container routes' outputs."
  type        = list(object({ bucket = string, prefix = optional(string, "") }))
  default     = []
}

variable "batch_job_queues" {
  description = "AWS Batch job queues of routes with runtime batch."
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
  description = "Secrets Manager secrets the config references."
  type        = list(string)
  default     = []
}

variable "ssm_parameter_names" {
  description = "SSM parameters the config references."
  type        = list(string)
  default     = []
}

variable "idempotency_table" {
  description = "Name of the DynamoDB idempotency table to create, or null for none."
  type        = string
  default     = null
}

# ---- where and how ---------------------------------------------------------------------------------

variable "region" {
  description = "AWS region."
  type        = string
  default     = "us-east-1"
}

variable "aws_endpoint" {
  description = "Endpoint of every AWS service, for LocalStack (http://127.0.0.1:4566). Null: AWS itself. When set, the provider also gets test credentials, path-style S3 and skips the checks that need real AWS."
  type        = string
  default     = null
}

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

# ---- the ECS service ---------------------------------------------------------------------------------

variable "image" {
  description = "The worker's container image URI."
  type        = string
}

variable "cpu" {
  description = "Task CPU units."
  type        = number
  default     = 512
}

variable "memory" {
  description = "Task memory (MiB)."
  type        = number
  default     = 1024
}

variable "vpc_id" {
  description = "VPC of the tasks (for their security group)."
  type        = string
}

variable "subnet_ids" {
  description = "Subnets of the tasks."
  type        = list(string)
}

variable "config_file" {
  description = "Path of the watcher YAML config, stored in SSM and handed to the tasks. Null: the image's own config (plus environment)."
  type        = string
  default     = null
}

variable "environment" {
  description = "Extra environment of the worker (WATCHER_* overrides)."
  type        = map(string)
  default     = {}
}

variable "shutdown_grace_seconds" {
  description = "The worker's drain grace (the container's stopTimeout is 10 s more)."
  type        = number
  default     = 30
}

variable "min_tasks" {
  description = "Fewest tasks (unless scale_to_zero)."
  type        = number
  default     = 1
}

variable "max_tasks" {
  description = "Most tasks."
  type        = number
  default     = 10
}

variable "scale_to_zero" {
  description = "Scale in to 0 tasks when the queue is idle."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags for everything created."
  type        = map(string)
  default     = {}
}
