output "bucket" {
  description = "Name of the bucket."
  value       = var.bucket
}

output "delivery" {
  description = "The wiring shape: direct, sns or eventbridge."
  value       = var.delivery
}

output "topic_arn" {
  description = "ARN of the bucket's SNS topic (delivery sns), else null. Subscribe more queues to it for fan-out."
  value       = one(aws_sns_topic.this[*].arn)
}

output "rule_arns" {
  description = "ARNs of the EventBridge rules, one per filter (delivery eventbridge), else empty."
  value       = [for index in sort(keys(local.rules)) : aws_cloudwatch_event_rule.this[index].arn]
}

output "event_patterns" {
  description = "The EventBridge event pattern of each rule, by filter index (delivery eventbridge)."
  value       = local.patterns
}
