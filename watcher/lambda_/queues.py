"""The SQS calls of the shim, for the records that did not succeed: send to the DLQ, delay the next
delivery (ChangeMessageVisibility), hand back records never started. Lambda itself receives and
deletes.

A blocking boto3 client, created on the first failure (a batch that succeeds makes no SQS call and
does not import boto3), driven from the event loop in threads. The retries, metrics and log lines of
each call are the worker's (watcher.sqs_settle); the queue's URL and DLQ are found once per cold
start from the record's ``eventSourceARN`` and the queue's RedrivePolicy, or ``queue.dlq_url``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from watcher.blocking import run_blocking
from watcher.config.schema import Config, QueueConfig
from watcher.lambda_.records import SqsRecord
from watcher.logs import get_logger
from watcher.metrics import Metrics
from watcher.outcome import MessageOutcome, dead_letter_request
from watcher.sqs import QueueInfo, arn_to_name_and_account, describe_queue_blocking, is_gone

_log = get_logger("watcher.lambda")
_BATCH = 10  # SQS maximum per ChangeMessageVisibilityBatch


class _Threaded:
    """An SQS client whose calls are awaited (run in threads), for the worker's helpers."""

    def __init__(self, client: Any) -> None:
        self._client = client

    async def send_message(self, **request: Any) -> Any:
        return await run_blocking(self._client.send_message, **request)

    async def change_message_visibility(self, **request: Any) -> Any:
        return await run_blocking(self._client.change_message_visibility, **request)

    async def change_message_visibility_batch(self, **request: Any) -> Any:
        return await run_blocking(self._client.change_message_visibility_batch, **request)


class Queues:
    def __init__(self, config: Config, metrics: Metrics) -> None:
        self._config = config
        self._metrics = metrics
        self._sqs: _Threaded | None = None
        self._client: Any = None
        self._queues: dict[str, QueueInfo] = {}
        self._lock = asyncio.Lock()

    async def _connect(self) -> _Threaded:
        if self._sqs is None:
            from watcher.aws import client  # boto3, on the first failure only

            self._client = await run_blocking(client, self._config.aws, "sqs", pool=32)
            self._sqs = _Threaded(self._client)
        return self._sqs

    async def queue(self, source_arn: str) -> QueueInfo | None:
        """The queue of ``source_arn`` and its DLQ, looked up once; None when SQS does not answer."""
        found = self._queues.get(source_arn)
        if found is not None:
            return found
        async with self._lock:  # one lookup for the records of a batch that fail together
            if source_arn in self._queues:
                return self._queues[source_arn]
            await self._connect()
            try:
                found = await run_blocking(self._describe, source_arn)
            except Exception as exc:
                self._metrics.errors.labels("connect").inc()
                _log.error("cannot find the queue of the event source", source_arn=source_arn, error=str(exc))
                return None
            self._queues[source_arn] = found
            return found

    def _describe(self, source_arn: str) -> QueueInfo:
        name, account = arn_to_name_and_account(source_arn)
        url = self._client.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
        return describe_queue_blocking(self._client, QueueConfig(url=url, dlq_url=self._config.queue.dlq_url))

    async def dead_letter(self, record: SqsRecord, outcome: MessageOutcome) -> str | None:
        """Send ``record`` to the DLQ with the worker's ``watcher.*`` attributes; its URL when sent."""
        from watcher.sqs_settle import send_to_dead_letter_queue  # botocore: on the first failure only

        queue = await self.queue(record.source_arn)
        if queue is None or queue.dlq_url is None:
            if queue is not None:
                _log.error("the queue has no RedrivePolicy and queue.dlq_url is not set: no dead-letter queue")
            return None
        request = dead_letter_request(
            queue.dlq_url,
            body=record.body,
            message_id=record.message_id,
            own_attributes=record.attributes,
            group_id=record.group_id,
            outcome=outcome,
            receive_count=record.receive_count,
        )
        sent = await send_to_dead_letter_queue(await self._connect(), request, self._metrics)
        return queue.dlq_url if sent else None

    async def delay(self, record: SqsRecord, seconds: int) -> bool:
        """Make ``record`` visible again in ``seconds`` (the worker's backoff)."""
        from watcher.sqs_settle import change_visibility  # botocore: on the first failure only

        queue = await self.queue(record.source_arn)
        if queue is None:
            return False
        sqs = await self._connect()
        return await change_visibility(sqs, queue.url, record.receipt_handle, seconds, self._metrics, record.message_id)

    async def hand_back(self, records: Sequence[SqsRecord]) -> int:
        """Make records never started visible again at once (ten per call); how many were."""
        if not records:
            return 0
        queue = await self.queue(records[0].source_arn)
        if queue is None:
            return 0
        sqs = await self._connect()
        calls = [records[i : i + _BATCH] for i in range(0, len(records), _BATCH)]
        answers = await asyncio.gather(*(self._hand_back(sqs, queue.url, batch) for batch in calls))
        return sum(answers)

    async def _hand_back(self, sqs: _Threaded, url: str, records: Sequence[SqsRecord]) -> int:
        entries = [
            {"Id": str(i), "ReceiptHandle": record.receipt_handle, "VisibilityTimeout": 0}
            for i, record in enumerate(records)
        ]
        try:
            answer = await sqs.change_message_visibility_batch(QueueUrl=url, Entries=entries)
        except Exception as exc:
            self._metrics.errors.labels("visibility").inc()
            _log.warning("records not handed back", error=str(exc), message_ids=[r.message_id for r in records])
            return 0
        for failed in answer.get("Failed", []):
            message_id = records[int(failed["Id"])].message_id
            if is_gone(failed):  # another consumer holds it now, as in sqs_settle.change_visibility
                _log.info("record not handed back: the receipt handle is no longer ours", message_id=message_id)
                continue
            self._metrics.errors.labels("visibility").inc()
            _log.warning("record not handed back", message_id=message_id, code=failed.get("Code"))
        return len(answer.get("Successful", []))

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
