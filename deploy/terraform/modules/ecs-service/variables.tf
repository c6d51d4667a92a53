variable "name" {
  description = "Name of the service, its task family, log group, roles and alarms."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,40}$", var.name))
    error_message = "name must be 1-40 letters, digits, hyphens or underscores."
  }
}

variable "create_cluster" {
  description = "Create the ECS cluster (with Container Insights, which the autoscaling metric RunningTaskCount comes from). False: run in cluster_name, which must have Container Insights on."
  type        = bool
  default     = true
}

variable "cluster_name" {
  description = "Name of the ECS cluster to create or to use. Default: the service's name."
  type        = string
  default     = null
}

variable "image" {
  description = "The worker's container image URI (the watcher image, e.g. 123456789012.dkr.ecr.eu-west-1.amazonaws.com/watcher:0.1.0). It must hold /bin/sh and `watcher` on PATH when config_source is ssm. An ECR image gets pull permissions on its repository."
  type        = string

  validation {
    condition     = length(var.image) > 0 && !can(regex("\\s", var.image))
    error_message = "image must be a container image URI without spaces."
  }
}

variable "cpu" {
  description = "Task CPU units (Fargate: 256, 512, 1024, 2048, 4096, 8192, 16384)."
  type        = number
  default     = 512

  validation {
    condition     = contains([256, 512, 1024, 2048, 4096, 8192, 16384], var.cpu)
    error_message = "cpu must be a Fargate CPU size: 256, 512, 1024, 2048, 4096, 8192 or 16384."
  }
}

variable "memory" {
  description = "Task memory in MiB (must fit the CPU size, see the Fargate table)."
  type        = number
  default     = 1024

  validation {
    condition     = var.memory >= 512 && var.memory <= 122880
    error_message = "memory must be from 512 to 122880 MiB."
  }
}

variable "cpu_architecture" {
  description = "X86_64 or ARM64: the image's architecture."
  type        = string
  default     = "X86_64"

  validation {
    condition     = contains(["X86_64", "ARM64"], var.cpu_architecture)
    error_message = "cpu_architecture must be X86_64 or ARM64."
  }
}

variable "ephemeral_storage_gib" {
  description = "Task ephemeral storage in GiB (21-200), where container jobs (runtime process) download their inputs. Null: Fargate's 20 GiB."
  type        = number
  default     = null

  validation {
    condition     = var.ephemeral_storage_gib == null || (coalesce(var.ephemeral_storage_gib, 21) >= 21 && coalesce(var.ephemeral_storage_gib, 21) <= 200)
    error_message = "ephemeral_storage_gib must be from 21 to 200."
  }
}

variable "task_role_arn" {
  description = "The task role: what the worker may call (worker-iam's ecs_task_role_arn)."
  type        = string

  validation {
    condition     = can(regex("^arn:[a-z-]+:iam::[0-9]{12}:role/.+$", var.task_role_arn))
    error_message = "task_role_arn must be an IAM role ARN."
  }
}

variable "subnet_ids" {
  description = "Subnets of the tasks (private subnets with a NAT gateway or VPC endpoints for SQS, S3, CloudWatch Logs, SSM and ECR)."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) > 0 && alltrue([for s in var.subnet_ids : can(regex("^subnet-[0-9a-f]+$", s))])
    error_message = "subnet_ids must hold at least one subnet ID (subnet-...)."
  }
}

variable "vpc_id" {
  description = "VPC of the subnets, for the security group created when security_group_ids is empty."
  type        = string
  default     = null
}

variable "security_group_ids" {
  description = "Security groups of the tasks. Empty: one is created (outbound HTTPS only, plus the metrics port from metrics_ingress_cidr_blocks)."
  type        = list(string)
  default     = []
}

variable "egress_cidr_blocks" {
  description = "Where the created security group lets tasks open HTTPS connections (AWS APIs, workflow endpoints)."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "metrics_port" {
  description = "Port of the worker's /metrics, /healthz and /readyz (metrics.port in the config). 0: none."
  type        = number
  default     = 9400

  validation {
    condition     = var.metrics_port >= 0 && var.metrics_port <= 65535
    error_message = "metrics_port must be from 0 to 65535."
  }
}

variable "metrics_ingress_cidr_blocks" {
  description = "Who may scrape metrics_port (the created security group). Empty: nobody from outside the task."
  type        = list(string)
  default     = []
}

variable "assign_public_ip" {
  description = "Give the tasks public IPs (only for public subnets without NAT)."
  type        = bool
  default     = false
}

variable "config_source" {
  description = "Where the worker's YAML config comes from. ssm: config_yaml is stored in an SSM SecureString parameter, injected by ECS as the secret environment variable WATCHER_CONFIG_YAML, written to config_path by the container's shell wrapper, then `watcher run -c config_path`. image: the image already holds the config at config_path; only `environment` (WATCHER_* overrides) changes it."
  type        = string
  default     = "ssm"

  validation {
    condition     = contains(["ssm", "image"], var.config_source)
    error_message = "config_source must be ssm or image."
  }
}

variable "config_yaml" {
  description = "The watcher YAML configuration (config_source ssm), e.g. file(\"config/watcher.yaml\"). At most 8 KiB (an advanced SSM parameter above 4 KiB)."
  type        = string
  default     = null

  validation {
    condition     = var.config_yaml == null || length(coalesce(var.config_yaml, " ")) <= 8192
    error_message = "config_yaml must be at most 8192 characters (SSM's advanced parameter limit)."
  }
}

variable "config_parameter_name" {
  description = "Name of the SSM parameter holding config_yaml. Default: /<name>/config.yaml."
  type        = string
  default     = null
}

variable "config_kms_key_id" {
  description = "Customer-managed KMS key of the config parameter (the execution role gets kms:Decrypt on it). Null: the AWS-managed key aws/ssm."
  type        = string
  default     = null
}

variable "config_path" {
  description = "Path of the config file in the container."
  type        = string
  default     = "/run/watcher/watcher.yaml"
}

variable "environment" {
  description = "Extra environment of the worker: WATCHER_* overrides (WATCHER_QUEUE_NAME, WATCHER_LOGGING_LEVEL...) and anything the routes reference with $${env:NAME}. Not for secrets."
  type        = map(string)
  default     = {}
}

variable "shutdown_grace_seconds" {
  description = "The worker's drain grace after SIGTERM (worker.shutdown_grace_seconds, set through WATCHER_WORKER_SHUTDOWN_GRACE_SECONDS). The container's stopTimeout is this plus 10 s, so ECS never SIGKILLs a worker that is handing its messages back; Fargate caps stopTimeout at 120 s."
  type        = number
  default     = 30

  validation {
    condition     = var.shutdown_grace_seconds >= 1 && var.shutdown_grace_seconds <= 110
    error_message = "shutdown_grace_seconds must be from 1 to 110: stopTimeout (grace + 10 s) is at most 120 s on Fargate."
  }
}

variable "health_check_command" {
  description = "Container health check command (ECS format, e.g. [\"CMD\", \"python\", \"-c\", \"import urllib.request; urllib.request.urlopen('http://127.0.0.1:9400/healthz')\"]). Null: none."
  type        = list(string)
  default     = null
}

variable "log_retention_days" {
  description = "Retention of the worker's CloudWatch log group."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a value CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653)."
  }
}

variable "log_kms_key_id" {
  description = "ARN of a customer-managed KMS key for the log group (its policy must let logs.<region>.amazonaws.com use it). Null: CloudWatch Logs' own encryption."
  type        = string
  default     = null
}

variable "queue_name" {
  description = "Name of the queue the worker polls: the autoscaling metric's QueueName dimension."
  type        = string
}

variable "min_tasks" {
  description = "Fewest tasks while messages arrive (and the service's initial desired count). With scale_to_zero the service may still go down to 0."
  type        = number
  default     = 1

  validation {
    condition     = var.min_tasks >= 1 && floor(var.min_tasks) == var.min_tasks
    error_message = "min_tasks must be a whole number >= 1 (use scale_to_zero for 0)."
  }
}

variable "max_tasks" {
  description = "Most tasks."
  type        = number
  default     = 10

  validation {
    condition     = var.max_tasks >= 1 && var.max_tasks <= 1000 && floor(var.max_tasks) == var.max_tasks
    error_message = "max_tasks must be a whole number from 1 to 1000."
  }
}

variable "backlog_per_task_target" {
  description = "Target of the target-tracking policy: visible messages per running task (ApproximateNumberOfMessagesVisible / RunningTaskCount). Pick (acceptable latency) / (time per message) x (messages a task works on at once)."
  type        = number
  default     = 20

  validation {
    condition     = var.backlog_per_task_target > 0
    error_message = "backlog_per_task_target must be positive."
  }
}

variable "backlog_includes_in_flight" {
  description = "Count in-flight messages (ApproximateNumberOfMessagesNotVisible) in the backlog too, so that tasks busy with long jobs are not scaled in while the visible backlog is empty."
  type        = bool
  default     = false
}

variable "scale_out_cooldown_seconds" {
  description = "Target tracking: seconds after a scale-out before another."
  type        = number
  default     = 60
}

variable "scale_in_cooldown_seconds" {
  description = "Target tracking: seconds after a scale-in before another."
  type        = number
  default     = 300
}

variable "scale_to_zero" {
  description = "Let the service scale in to 0 tasks when the queue is idle. Target tracking cannot scale out from 0 (its metric divides by the running tasks), so a step-scaling policy adds the first task when an alarm sees visible messages and none in flight."
  type        = bool
  default     = false
}

variable "scale_from_zero_cooldown_seconds" {
  description = "Cooldown of the 0 -> 1 step policy: how long a starting task has before the alarm may add another."
  type        = number
  default     = 300
}

variable "platform_version" {
  description = "Fargate platform version."
  type        = string
  default     = "LATEST"
}

variable "tags" {
  description = "Tags for everything the module creates."
  type        = map(string)
  default     = {}
}
