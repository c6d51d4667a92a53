# Everything: the wiring of examples/basic (modules/wiring: buckets, queue and DLQ, notifications,
# idempotency table, the worker's policy, here with an ECS task role) and the worker itself as an
# ECS Fargate service that scales on the queue's backlog per task (modules/ecs-service).

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
  create_ec2_role            = false
  create_ecs_task_role       = true
  tags                       = var.tags
}

# ---- the worker on ECS Fargate -------------------------------------------------------------------

module "service" {
  source = "../../modules/ecs-service"

  name                   = trimsuffix(var.queue_name, ".fifo")
  image                  = var.image
  cpu                    = var.cpu
  memory                 = var.memory
  task_role_arn          = module.wiring.ecs_task_role_arn
  vpc_id                 = var.vpc_id
  subnet_ids             = var.subnet_ids
  config_source          = var.config_file == null ? "image" : "ssm"
  config_yaml            = var.config_file == null ? null : file(var.config_file)
  environment            = var.environment
  shutdown_grace_seconds = var.shutdown_grace_seconds
  queue_name             = module.wiring.queue_name
  min_tasks              = var.min_tasks
  max_tasks              = var.max_tasks
  scale_to_zero          = var.scale_to_zero
  tags                   = var.tags
}
