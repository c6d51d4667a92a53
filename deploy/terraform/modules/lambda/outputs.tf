output "function_name" {
  description = "Name of the function."
  value       = aws_lambda_function.this.function_name
}

output "function_arn" {
  description = "ARN of the function."
  value       = aws_lambda_function.this.arn
}

output "role_arn" {
  description = "ARN of the function's role: the worker's policy (policy_arn), logs, and the VPC's and X-Ray's managed policies when used."
  value       = aws_iam_role.this.arn
}

output "role_name" {
  description = "Name of the function's role: attach what a python route's own code calls to it."
  value       = aws_iam_role.this.name
}

output "policy_arn" {
  description = "ARN of the worker's least-privilege policy (../worker-iam) attached to the role."
  value       = module.policy.policy_arn
}

output "event_source_mapping_uuid" {
  description = "UUID of the SQS event source mapping."
  value       = aws_lambda_event_source_mapping.this.uuid
}

output "log_group_name" {
  description = "The function's log group: JSON log lines with the Lambda request id, and the EMF documents CloudWatch turns into metrics (namespace lambda.metrics_namespace, default watcher)."
  value       = aws_cloudwatch_log_group.this.name
}

output "config_parameter_name" {
  description = "Name of the SSM parameter holding the configuration (config_source ssm), else null."
  value       = one(aws_ssm_parameter.config[*].name)
}
