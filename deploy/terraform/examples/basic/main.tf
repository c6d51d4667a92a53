# The watcher's wiring without the worker (modules/wiring): buckets (optional), the queue and its
# DLQ, each bucket's notifications in its delivery shape, the idempotency table (optional) and the
# worker's IAM policy with an EC2 role. Run the worker wherever you like with that role.

module "wiring" {
  source = "../../modules/wiring"

  queue_name                 = var.queue_name
  visibility_timeout_seconds = var.visibility_timeout_seconds
  receive_wait_time_seconds  = var.receive_wait_time_seconds
  max_receive_count          = var.max_receive_count
  buckets                    = var.buckets
  read_locations             = var.read_locations
  write_locations            = var.write_locations
  secret_names               = var.secret_names
  ssm_parameter_names        = var.ssm_parameter_names
  batch_job_queues           = var.batch_job_queues
  batch_job_definitions      = var.batch_job_definitions
  batch_staging_locations    = var.batch_staging_locations
  idempotency_table          = var.idempotency_table
  create_buckets             = var.create_buckets
  force_destroy_buckets      = var.force_destroy_buckets
  create_ec2_role            = var.create_ec2_role
  create_ecs_task_role       = var.create_ecs_task_role
  tags                       = var.tags
}
