# `terraform test` in modules/lambda: plans with a mocked AWS provider (no account, no network), checking
# the wiring and that the variable validations refuse what AWS advises against.

mock_provider "aws" {
  mock_data "aws_caller_identity" {
    defaults = { account_id = "123456789012" }
  }
  mock_data "aws_partition" {
    defaults = { partition = "aws" }
  }
  # The provider still checks that a policy is a JSON object.
  mock_data "aws_iam_policy_document" {
    defaults = { json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}" }
  }
}

variables {
  name                             = "watcher-events"
  package_path                     = "tests/placeholder.zip"
  queue_arn                        = "arn:aws:sqs:eu-west-1:123456789012:watcher-events"
  dlq_arn                          = "arn:aws:sqs:eu-west-1:123456789012:watcher-events-dlq"
  timeout_seconds                  = 60
  queue_visibility_timeout_seconds = 360
}

run "the_function_and_its_mapping" {
  command = plan

  assert {
    condition     = aws_lambda_function.this.handler == "watcher.lambda_.handler.handler" && aws_lambda_function.this.runtime == "python3.11"
    error_message = "the function runs watcher's entry point on python3.11"
  }
  assert {
    condition     = aws_lambda_event_source_mapping.this.function_response_types == toset(["ReportBatchItemFailures"])
    error_message = "the mapping reports batch item failures"
  }
  assert {
    condition     = aws_lambda_event_source_mapping.this.batch_size == 10 && length(aws_lambda_event_source_mapping.this.scaling_config) == 0
    error_message = "batch size 10 and no maximum concurrency by default"
  }
  assert {
    condition     = aws_lambda_function.this.environment[0].variables == tomap({ WATCHER_LOGGING_FORMAT = "json" })
    error_message = "the packaged configuration: no WATCHER_CONFIG"
  }
  assert {
    condition     = length(aws_ssm_parameter.config) == 0 && aws_cloudwatch_log_group.this.name == "/aws/lambda/watcher-events"
    error_message = "no parameter with config_source package; the log group Lambda writes to"
  }
}

run "the_configuration_from_ssm_and_a_concurrency_limit" {
  command = plan

  variables {
    config_source           = "ssm"
    config_yaml             = "lambda: {}\nroutes: [{name: a, handler: {type: log}}]\n"
    maximum_concurrency     = 5
    batch_size              = 100
    batching_window_seconds = 2
    environment             = { WATCHER_LAMBDA_MAX_CONCURRENCY = "20" }
  }

  assert {
    condition     = aws_lambda_function.this.environment[0].variables["WATCHER_CONFIG"] == "ssm:/watcher-events/config.yaml"
    error_message = "the function reads its configuration from the parameter"
  }
  assert {
    condition     = aws_ssm_parameter.config[0].type == "SecureString" && aws_lambda_event_source_mapping.this.scaling_config[0].maximum_concurrency == 5
    error_message = "a SecureString parameter; the mapping's maximum concurrency"
  }
}

run "a_visibility_timeout_under_six_function_timeouts_is_refused" {
  command = plan

  variables {
    queue_visibility_timeout_seconds = 359
  }

  expect_failures = [var.queue_visibility_timeout_seconds]
}

run "a_batch_above_ten_needs_a_batching_window" {
  command = plan

  variables {
    batch_size = 11
  }

  expect_failures = [var.batch_size]
}

run "the_ssm_source_needs_the_yaml" {
  command = plan

  variables {
    config_source = "ssm"
  }

  expect_failures = [aws_ssm_parameter.config]
}
