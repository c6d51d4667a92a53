output "cluster_name" {
  description = "Name of the ECS cluster."
  value       = local.cluster_name
}

output "service_name" {
  description = "Name of the ECS service."
  value       = aws_ecs_service.this.name
}

output "task_definition_arn" {
  description = "ARN of the task definition (with revision)."
  value       = aws_ecs_task_definition.this.arn
}

output "container_definition" {
  description = "The worker's container definition, as sent to ECS."
  value       = local.container
}

output "stop_timeout" {
  description = "The container's stopTimeout: shutdown_grace_seconds + 10."
  value       = local.stop_timeout
}

output "execution_role_arn" {
  description = "ARN of the task execution role the module created."
  value       = aws_iam_role.execution.arn
}

output "log_group_name" {
  description = "The worker's CloudWatch log group."
  value       = aws_cloudwatch_log_group.this.name
}

output "config_parameter_name" {
  description = "Name of the SSM parameter holding the config (config_source ssm), else null."
  value       = one(aws_ssm_parameter.config[*].name)
}

output "security_group_id" {
  description = "ID of the security group the module created, else null."
  value       = one(aws_security_group.this[*].id)
}

output "autoscaling_policy_arns" {
  description = "ARNs of the target-tracking policy and (scale_to_zero) the 0 -> 1 step policy."
  value       = concat([aws_appautoscaling_policy.backlog.arn], aws_appautoscaling_policy.wake[*].arn)
}
