output "policy_json" {
  description = "The worker's least-privilege policy document (JSON)."
  value       = data.aws_iam_policy_document.worker.json
}

output "policy_arn" {
  description = "ARN of the managed policy holding policy_json: attach it to whatever runs the worker."
  value       = aws_iam_policy.worker.arn
}

output "ec2_role_arn" {
  description = "ARN of the EC2 role (create_ec2_role), else null."
  value       = one(aws_iam_role.ec2[*].arn)
}

output "ec2_instance_profile_name" {
  description = "Name of the EC2 instance profile (create_ec2_role), else null."
  value       = one(aws_iam_instance_profile.ec2[*].name)
}

output "ecs_task_role_arn" {
  description = "ARN of the ECS task role (create_ecs_task_role), else null: the ecs-service module's task_role_arn."
  value       = one(aws_iam_role.ecs_task[*].arn)
}
