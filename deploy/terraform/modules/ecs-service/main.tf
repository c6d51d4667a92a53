data "aws_partition" "current" {}
data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

locals {
  partition    = data.aws_partition.current.partition
  region       = data.aws_region.current.name
  account      = data.aws_caller_identity.current.account_id
  cluster_name = coalesce(var.cluster_name, var.name)
  use_ssm      = var.config_source == "ssm"
  config_yaml  = var.config_yaml == null ? "" : var.config_yaml

  # The worker hands its in-flight messages back within the grace, then flushes its deletes and
  # exits: 10 s more before ECS's SIGKILL.
  stop_timeout = var.shutdown_grace_seconds + 10

  parameter_name = coalesce(var.config_parameter_name, "/${var.name}/config.yaml")
  parameter_arn  = "arn:${local.partition}:ssm:${local.region}:${local.account}:parameter/${trimprefix(local.parameter_name, "/")}"

  # An image from a private ECR repository: the execution role may pull from that repository only.
  ecr = try(regex("^(?P<account>[0-9]{12})\\.dkr\\.ecr\\.(?P<region>[a-z0-9-]+)\\.amazonaws\\.com(?:\\.cn)?/(?P<repository>[^:@]+)", var.image), null)
  ecr_repository_arn = local.ecr == null ? null : (
    "arn:${local.partition}:ecr:${local.ecr.region}:${local.ecr.account}:repository/${local.ecr.repository}"
  )

  # Writable places on a read-only root file system: ephemeral bind mounts of the task.
  volumes = {
    run  = "/run/watcher"
    tmp  = "/tmp"
    jobs = "/var/lib/watcher/jobs"
  }

  environment = merge(
    {
      WATCHER_WORKER_SHUTDOWN_GRACE_SECONDS = tostring(var.shutdown_grace_seconds)
      WATCHER_WORK_DIR                      = local.volumes.jobs
      WATCHER_AWS_REGION                    = local.region
      WATCHER_LOGGING_FORMAT                = "json"
    },
    var.metrics_port > 0 ? { WATCHER_METRICS_PORT = tostring(var.metrics_port) } : {},
    var.environment,
  )

  # With config_source ssm, ECS puts the YAML into WATCHER_CONFIG_YAML; the wrapper writes it to
  # config_path (private to the worker's user), drops the variable and execs the worker, which
  # thus is PID 1 and gets ECS's SIGTERM itself.
  wrapper = join(" && ", [
    "umask 077",
    "printf '%s\\n' \"$WATCHER_CONFIG_YAML\" > ${var.config_path}",
    "unset WATCHER_CONFIG_YAML",
    "exec watcher run -c ${var.config_path}",
  ])

  # One object per part, merged: the optional parts are lists of zero or one object (they are
  # objects of different types, which a conditional cannot choose between).
  container = merge(concat(
    [{
      name                   = "watcher"
      image                  = var.image
      essential              = true
      stopTimeout            = local.stop_timeout
      readonlyRootFilesystem = true
      environment            = [for k in sort(keys(local.environment)) : { name = k, value = local.environment[k] }]
      mountPoints            = [for v in sort(keys(local.volumes)) : { sourceVolume = v, containerPath = local.volumes[v], readOnly = false }]
      portMappings           = var.metrics_port > 0 ? [{ containerPort = var.metrics_port, protocol = "tcp" }] : []
      logConfiguration = {
        logDriver = "awslogs"
        options = {
          awslogs-group         = aws_cloudwatch_log_group.this.name
          awslogs-region        = local.region
          awslogs-stream-prefix = "watcher"
        }
      }
    }],
    [for _ in local.use_ssm ? [1] : [] : {
      entryPoint = ["/bin/sh", "-c"]
      command    = [local.wrapper]
      secrets    = [{ name = "WATCHER_CONFIG_YAML", valueFrom = local.parameter_arn }]
    }],
    [for _ in local.use_ssm ? [] : [1] : { command = ["watcher", "run", "-c", var.config_path] }],
    [for command in var.health_check_command == null ? [] : [var.health_check_command] : {
      healthCheck = { command = command, interval = 30, timeout = 5, retries = 3, startPeriod = 30 }
    }],
  )...)
}

# ---- cluster, logs, config -----------------------------------------------------------------------

resource "aws_ecs_cluster" "this" {
  count = var.create_cluster ? 1 : 0

  name = local.cluster_name

  setting {
    name  = "containerInsights"
    value = "enabled"
  }

  tags = var.tags
}

resource "aws_cloudwatch_log_group" "this" {
  name              = "/ecs/${var.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.log_kms_key_id
  tags              = var.tags
}

resource "aws_ssm_parameter" "config" {
  count = local.use_ssm ? 1 : 0

  name        = local.parameter_name
  description = "The watcher's YAML configuration (ECS service ${var.name})."
  type        = "SecureString"
  key_id      = var.config_kms_key_id
  tier        = length(local.config_yaml) > 4096 ? "Advanced" : "Standard"
  value       = local.config_yaml
  tags        = var.tags

  lifecycle {
    precondition {
      condition     = var.config_yaml != null
      error_message = "config_source is ssm: set config_yaml to the watcher YAML configuration."
    }
  }
}

# ---- execution role: what ECS itself needs to start the task -------------------------------------

data "aws_iam_policy_document" "execution_trust" {
  statement {
    effect  = "Allow"
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account]
    }
    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["arn:${local.partition}:ecs:${local.region}:${local.account}:*"]
    }
  }
}

data "aws_iam_policy_document" "execution" {
  statement {
    sid       = "WriteLogs"
    effect    = "Allow"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.this.arn}:*"]
  }

  dynamic "statement" {
    for_each = local.use_ssm ? [1] : []
    content {
      sid       = "ReadTheConfig"
      effect    = "Allow"
      actions   = ["ssm:GetParameters"]
      resources = [local.parameter_arn]
    }
  }

  dynamic "statement" {
    for_each = local.use_ssm && var.config_kms_key_id != null ? [var.config_kms_key_id] : []
    content {
      sid       = "DecryptTheConfig"
      effect    = "Allow"
      actions   = ["kms:Decrypt"]
      resources = [statement.value]
      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["ssm.${local.region}.amazonaws.com"]
      }
    }
  }

  dynamic "statement" {
    for_each = local.ecr_repository_arn == null ? [] : [1]
    content {
      sid       = "EcrLogin"
      effect    = "Allow"
      actions   = ["ecr:GetAuthorizationToken"]
      resources = ["*"] # the action names no resource
    }
  }

  dynamic "statement" {
    for_each = local.ecr_repository_arn == null ? [] : [local.ecr_repository_arn]
    content {
      sid       = "PullTheImage"
      effect    = "Allow"
      actions   = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"]
      resources = [statement.value]
    }
  }
}

resource "aws_iam_role" "execution" {
  name               = "${var.name}-ecs-execution"
  description        = "ECS task execution role of ${var.name}: logs, the config parameter, the image."
  assume_role_policy = data.aws_iam_policy_document.execution_trust.json
  tags               = var.tags
}

resource "aws_iam_role_policy" "execution" {
  name   = "start-the-task"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution.json
}

# ---- network -------------------------------------------------------------------------------------

resource "aws_security_group" "this" {
  count = length(var.security_group_ids) == 0 ? 1 : 0

  name        = "${var.name}-tasks"
  description = "Tasks of the watcher service ${var.name}"
  vpc_id      = var.vpc_id
  tags        = var.tags

  egress {
    description = "HTTPS: AWS APIs (SQS, S3, Logs, SSM, ECR) and workflow endpoints"
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = var.egress_cidr_blocks
  }

  dynamic "ingress" {
    for_each = var.metrics_port > 0 && length(var.metrics_ingress_cidr_blocks) > 0 ? [1] : []
    content {
      description = "Prometheus scrapes /metrics"
      from_port   = var.metrics_port
      to_port     = var.metrics_port
      protocol    = "tcp"
      cidr_blocks = var.metrics_ingress_cidr_blocks
    }
  }

  lifecycle {
    precondition {
      condition     = var.vpc_id != null
      error_message = "Set vpc_id (for the security group this module creates) or security_group_ids."
    }
  }
}

# ---- task definition and service -----------------------------------------------------------------

resource "aws_ecs_task_definition" "this" {
  family                   = var.name
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.cpu
  memory                   = var.memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = var.task_role_arn
  container_definitions    = jsonencode([local.container])

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = var.cpu_architecture
  }

  dynamic "ephemeral_storage" {
    for_each = var.ephemeral_storage_gib == null ? [] : [var.ephemeral_storage_gib]
    content {
      size_in_gib = ephemeral_storage.value
    }
  }

  dynamic "volume" {
    for_each = sort(keys(local.volumes))
    content {
      name = volume.value
    }
  }

  tags = var.tags
}

resource "aws_ecs_service" "this" {
  name             = var.name
  cluster          = var.create_cluster ? aws_ecs_cluster.this[0].arn : local.cluster_name
  task_definition  = aws_ecs_task_definition.this.arn
  desired_count    = var.min_tasks
  launch_type      = "FARGATE"
  platform_version = var.platform_version

  # Start the new tasks before stopping old ones; roll back a deployment whose tasks keep failing.
  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200
  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  network_configuration {
    subnets          = var.subnet_ids
    security_groups  = length(var.security_group_ids) > 0 ? var.security_group_ids : [aws_security_group.this[0].id]
    assign_public_ip = var.assign_public_ip
  }

  propagate_tags = "SERVICE"
  tags           = var.tags

  lifecycle {
    # Autoscaling owns the task count after the first apply.
    ignore_changes = [desired_count]
  }
}

# ---- autoscaling on backlog per task -------------------------------------------------------------

resource "aws_appautoscaling_target" "this" {
  service_namespace  = "ecs"
  resource_id        = "service/${local.cluster_name}/${aws_ecs_service.this.name}"
  scalable_dimension = "ecs:service:DesiredCount"
  min_capacity       = var.scale_to_zero ? 0 : var.min_tasks
  max_capacity       = var.max_tasks
  tags               = var.tags

  lifecycle {
    precondition {
      condition     = var.max_tasks >= var.min_tasks
      error_message = "max_tasks must be at least min_tasks."
    }
  }
}

resource "aws_appautoscaling_policy" "backlog" {
  name               = "${var.name}-backlog-per-task"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.this.service_namespace
  resource_id        = aws_appautoscaling_target.this.resource_id
  scalable_dimension = aws_appautoscaling_target.this.scalable_dimension

  target_tracking_scaling_policy_configuration {
    target_value       = var.backlog_per_task_target
    scale_out_cooldown = var.scale_out_cooldown_seconds
    scale_in_cooldown  = var.scale_in_cooldown_seconds

    customized_metric_specification {
      metrics {
        id          = "visible"
        label       = "messages visible"
        return_data = false
        metric_stat {
          stat = "Average"
          metric {
            namespace   = "AWS/SQS"
            metric_name = "ApproximateNumberOfMessagesVisible"
            dimensions {
              name  = "QueueName"
              value = var.queue_name
            }
          }
        }
      }

      dynamic "metrics" {
        for_each = var.backlog_includes_in_flight ? [1] : []
        content {
          id          = "inflight"
          label       = "messages in flight"
          return_data = false
          metric_stat {
            stat = "Average"
            metric {
              namespace   = "AWS/SQS"
              metric_name = "ApproximateNumberOfMessagesNotVisible"
              dimensions {
                name  = "QueueName"
                value = var.queue_name
              }
            }
          }
        }
      }

      metrics {
        id          = "running"
        label       = "running tasks"
        return_data = false
        metric_stat {
          stat = "Average"
          metric {
            namespace   = "ECS/ContainerInsights"
            metric_name = "RunningTaskCount"
            dimensions {
              name  = "ClusterName"
              value = local.cluster_name
            }
            dimensions {
              name  = "ServiceName"
              value = aws_ecs_service.this.name
            }
          }
        }
      }

      metrics {
        id          = "backlog"
        label       = "backlog per task"
        expression  = var.backlog_includes_in_flight ? "(visible + inflight) / running" : "visible / running"
        return_data = true
      }
    }
  }
}

# Scale to zero: with no task running, "visible / running" has no value and target tracking does
# nothing, so it never adds the first task. This step policy does: its alarm fires while messages
# are visible and none is in flight (no worker is receiving), adds one task, and returns to OK once
# that task receives. Both are SQS metrics, which always have data points for an active queue.

resource "aws_appautoscaling_policy" "wake" {
  count = var.scale_to_zero ? 1 : 0

  name               = "${var.name}-scale-from-zero"
  policy_type        = "StepScaling"
  service_namespace  = aws_appautoscaling_target.this.service_namespace
  resource_id        = aws_appautoscaling_target.this.resource_id
  scalable_dimension = aws_appautoscaling_target.this.scalable_dimension

  step_scaling_policy_configuration {
    adjustment_type         = "ChangeInCapacity"
    cooldown                = var.scale_from_zero_cooldown_seconds
    metric_aggregation_type = "Maximum"

    step_adjustment {
      metric_interval_lower_bound = 0
      scaling_adjustment          = 1
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "wake" {
  count = var.scale_to_zero ? 1 : 0

  alarm_name          = "${var.name}-messages-waiting-and-no-worker"
  alarm_description   = "Messages are visible on ${var.queue_name} and none is in flight: start the first task of ${var.name}."
  comparison_operator = "GreaterThanOrEqualToThreshold"
  threshold           = 1
  evaluation_periods  = 1
  datapoints_to_alarm = 1
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_appautoscaling_policy.wake[0].arn]

  metric_query {
    id          = "visible"
    return_data = false
    metric {
      namespace   = "AWS/SQS"
      metric_name = "ApproximateNumberOfMessagesVisible"
      period      = 60
      stat        = "Maximum"
      dimensions  = { QueueName = var.queue_name }
    }
  }

  metric_query {
    id          = "inflight"
    return_data = false
    metric {
      namespace   = "AWS/SQS"
      metric_name = "ApproximateNumberOfMessagesNotVisible"
      period      = 60
      stat        = "Maximum"
      dimensions  = { QueueName = var.queue_name }
    }
  }

  metric_query {
    id          = "waiting"
    label       = "messages waiting with no worker"
    expression  = "IF(visible > 0 AND inflight == 0, 1, 0)"
    return_data = true
  }

  tags = var.tags
}
