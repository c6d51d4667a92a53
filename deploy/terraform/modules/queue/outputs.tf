output "queue_name" {
  description = "Name of the queue (queue.name in the watcher config)."
  value       = aws_sqs_queue.this.name
}

output "queue_url" {
  description = "URL of the queue (queue.url in the watcher config)."
  value       = aws_sqs_queue.this.id
}

output "queue_arn" {
  description = "ARN of the queue: the target of the bucket notifications and the resource of the worker's receive permissions."
  value       = aws_sqs_queue.this.arn
}

output "dlq_name" {
  description = "Name of the dead-letter queue."
  value       = aws_sqs_queue.dlq.name
}

output "dlq_url" {
  description = "URL of the dead-letter queue."
  value       = aws_sqs_queue.dlq.id
}

output "dlq_arn" {
  description = "ARN of the dead-letter queue (the worker sends permanent failures there)."
  value       = aws_sqs_queue.dlq.arn
}

output "queue_policy_id" {
  description = "ID of the queue policy (null when no sender was given). Pass it to bucket-notifications so notifications are configured only once the queue accepts them: S3 checks the destination when a notification is written."
  value       = one(aws_sqs_queue_policy.this[*].id)
}

output "queue_policy_json" {
  description = "The queue policy document (null when no sender was given)."
  value       = one(data.aws_iam_policy_document.queue[*].json)
}
