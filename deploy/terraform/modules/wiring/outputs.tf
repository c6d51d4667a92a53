output "queue_name" {
  description = "Name of the queue (queue.name in the watcher config)."
  value       = module.queue.queue_name
}

output "queue_url" {
  description = "URL of the queue (queue.url in the watcher config)."
  value       = module.queue.queue_url
}

output "queue_arn" {
  description = "ARN of the queue."
  value       = module.queue.queue_arn
}

output "dlq_url" {
  description = "URL of the dead-letter queue."
  value       = module.queue.dlq_url
}

output "dlq_arn" {
  description = "ARN of the dead-letter queue."
  value       = module.queue.dlq_arn
}

output "queue_policy_json" {
  description = "Who may send to the queue."
  value       = module.queue.queue_policy_json
}

output "topic_arns" {
  description = "SNS topic of each bucket delivered through SNS."
  value       = { for name, m in module.notifications : name => m.topic_arn if m.delivery == "sns" }
}

output "rule_arns" {
  description = "EventBridge rules of each bucket delivered through EventBridge."
  value       = { for name, m in module.notifications : name => m.rule_arns if m.delivery == "eventbridge" }
}

output "event_patterns" {
  description = "The EventBridge event patterns, by bucket and filter index."
  value       = { for name, m in module.notifications : name => m.event_patterns if m.delivery == "eventbridge" }
}

output "idempotency_table_name" {
  description = "Name of the idempotency table, or null."
  value       = one(aws_dynamodb_table.idempotency[*].name)
}

output "idempotency_table_arn" {
  description = "ARN of the idempotency table, or null."
  value       = one(aws_dynamodb_table.idempotency[*].arn)
}

output "worker_policy_json" {
  description = "The worker's least-privilege IAM policy."
  value       = module.worker_iam.policy_json
}

output "worker_policy_arn" {
  description = "ARN of the worker's managed policy."
  value       = module.worker_iam.policy_arn
}

output "ec2_role_arn" {
  description = "EC2 role of the worker (create_ec2_role), or null."
  value       = module.worker_iam.ec2_role_arn
}

output "ec2_instance_profile_name" {
  description = "Instance profile for a worker on EC2 (create_ec2_role), or null."
  value       = module.worker_iam.ec2_instance_profile_name
}

output "ecs_task_role_arn" {
  description = "Task role for a worker on ECS (create_ecs_task_role), or null: the ecs-service module's task_role_arn."
  value       = module.worker_iam.ecs_task_role_arn
}
