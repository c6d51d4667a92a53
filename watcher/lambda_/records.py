"""One SQS record of a Lambda event, as the event source mapping delivers it (camelCase fields, the
message attributes with ``stringValue`` / ``binaryValue``), turned into what dispatch and
watcher.outcome take."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from watcher.dispatch import Directives

EVENT_SOURCE = "aws:sqs"


class NotAnSqsEvent(ValueError):
    """The function was invoked with something else than an SQS event source mapping's batch."""


@dataclass(frozen=True, slots=True)
class SqsRecord:
    message_id: str
    receipt_handle: str
    body: str
    source_arn: str  # the queue's ARN (eventSourceARN)
    receive_count: int = 1
    sent_timestamp_ms: int | None = None
    group_id: str | None = None  # FIFO queues
    # The message's own attributes in SendMessage form (DataType, StringValue / BinaryValue), kept
    # on the message when it is dead-lettered.
    attributes: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    directives: Directives = field(default_factory=Directives)

    @property
    def fifo(self) -> bool:
        return self.source_arn.endswith(".fifo")

    @classmethod
    def from_event(cls, record: Any) -> SqsRecord:
        if not isinstance(record, Mapping) or record.get("eventSource") != EVENT_SOURCE:
            source = record.get("eventSource") if isinstance(record, Mapping) else type(record).__name__
            raise NotAnSqsEvent(f"a record from {source!r}: watcher's Lambda entry point takes SQS events only")
        try:
            system = record.get("attributes") or {}
            own = record.get("messageAttributes") or {}
            sent = system.get("SentTimestamp")
            return cls(
                message_id=str(record["messageId"]),
                receipt_handle=str(record["receiptHandle"]),
                body=str(record["body"]),
                source_arn=str(record["eventSourceARN"]),
                receive_count=int(system.get("ApproximateReceiveCount", 1)),
                sent_timestamp_ms=int(sent) if sent is not None else None,
                group_id=system.get("MessageGroupId"),
                attributes=send_form(own),
                directives=Directives.from_attributes(own),
            )
        except (KeyError, TypeError, ValueError, binascii.Error) as exc:
            raise NotAnSqsEvent(f"not a valid SQS record ({type(exc).__name__}: {exc})") from None


def records_of(event: Any) -> list[SqsRecord]:
    """The records of a Lambda SQS event, in the batch's order."""
    records = event.get("Records") if isinstance(event, Mapping) else None
    if not isinstance(records, list):
        raise NotAnSqsEvent("no Records list: watcher's Lambda entry point takes SQS events only")
    return [SqsRecord.from_event(record) for record in records]


def send_form(attributes: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Lambda's ``{"stringValue", "binaryValue" (base64), "dataType"}`` -> SendMessage's
    ``{"StringValue", "BinaryValue" (bytes), "DataType"}``."""
    converted: dict[str, dict[str, Any]] = {}
    for name, value in attributes.items():
        data_type = value.get("dataType") or value.get("DataType") or "String"
        if value.get("binaryValue") is not None:
            converted[name] = {"DataType": data_type, "BinaryValue": base64.b64decode(value["binaryValue"])}
        elif value.get("stringValue") is not None:
            converted[name] = {"DataType": data_type, "StringValue": value["stringValue"]}
    return converted
