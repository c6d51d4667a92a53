"""watcher as an AWS Lambda function attached to the queue by an SQS event source mapping with
``ReportBatchItemFailures``: the entry point is ``watcher.lambda_.handler.handler``.

The same composition root (watcher.app), dispatcher, idempotency store and handlers as the worker;
what differs is around them: Lambda receives and deletes, so the shim only reports which records
must come back (``batchItemFailures``), dead-letters permanent failures itself, backs retryable
ones off with ChangeMessageVisibility, and returns before the function's time runs out.

Modules: ``handler`` (the entry point and the cold-start state), ``settings`` (where the
configuration comes from), ``records`` (one SQS record of a Lambda event), ``batch`` (records ->
outcomes, concurrently, within the time left), ``settle`` (outcomes -> SQS actions -> the
response), ``queues`` (the SQS calls), ``emf`` (metrics as CloudWatch Embedded Metric Format
lines), ``rules`` (what a Lambda configuration may not contain).
"""

import time

IMPORT_STARTED = time.perf_counter()  # the cold start's first moment we see: its "watcher ready" line says how long
