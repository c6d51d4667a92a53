# modules/wiring's outputs, by the same names.

output "queue_url" {
  description = "URL of the queue (queue.url in the watcher config)."
  value       = module.wiring.queue_url
}

output "queue_arn" {
  description = "ARN of the queue."
  value       = module.wiring.queue_arn
}

output "dlq_url" {
  description = "URL of the dead-letter queue."
  value       = module.wiring.dlq_url
}

output "queue_policy_json" {
  description = "Who may send to the queue."
  value       = module.wiring.queue_policy_json
}

output "topic_arns" {
  description = "SNS topic of each bucket delivered through SNS."
  value       = module.wiring.topic_arns
}

output "rule_arns" {
  description = "EventBridge rules of each bucket delivered through EventBridge."
  value       = module.wiring.rule_arns
}

output "event_patterns" {
  description = "The EventBridge event patterns, by bucket and filter index."
  value       = module.wiring.event_patterns
}

output "idempotency_table_name" {
  description = "Name of the idempotency table, or null."
  value       = module.wiring.idempotency_table_name
}

output "worker_policy_json" {
  description = "The worker's least-privilege IAM policy."
  value       = module.wiring.worker_policy_json
}

output "worker_policy_arn" {
  description = "ARN of the worker's managed policy."
  value       = module.wiring.worker_policy_arn
}

output "ec2_instance_profile_name" {
  description = "Instance profile for a worker on EC2 (create_ec2_role), or null."
  value       = module.wiring.ec2_instance_profile_name
}

output "ecs_task_role_arn" {
  description = "Task role for a worker on ECS (create_ecs_task_role), or null."
  value       = module.wiring.ecs_task_role_arn
}
