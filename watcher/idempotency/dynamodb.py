"""The shared backend: one DynamoDB table for every worker on the queue.

Item: ``pk`` = ``<route>#<request_id>`` (the table's hash key), ``status``, ``owner``,
``lease_until``, ``expires_at`` (the table's TTL attribute; DynamoDB deletes expired items within
days, so expiry is also part of every condition), ``completed_at``, ``subject``. Each operation is
one conditional write; a refused claim returns the item that refused it
(``ReturnValuesOnConditionCheckFailure=ALL_OLD``), so no second read is needed.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

from watcher.aws import client
from watcher.config.schema import AwsConfig, Config
from watcher.errors import error_code
from watcher.idempotency.backend import COMPLETED, IN_PROGRESS, ClaimRequest, ClaimResult, ClaimState

_CLAIMABLE = "attribute_not_exists(pk) OR expires_at < :now OR (#status = :in_progress AND lease_until < :now)"
_OURS = "#status = :in_progress AND #owner = :owner"
_REFUSED = "ConditionalCheckFailedException"


def table_aws(config: Config) -> AwsConfig:
    """Where the table is: the ``aws`` section, with ``idempotency.endpoint_url`` when set."""
    settings = config.idempotency
    if settings is None or not settings.endpoint_url:
        return config.aws
    return AwsConfig(config.aws.region, settings.endpoint_url, config.aws.profile)


def key_of(route: str, request_id: str) -> str:
    return f"{route}#{request_id}"


class DynamoDbBackend:
    def __init__(self, table: str, aws: AwsConfig) -> None:
        self._table = table
        self._client = client(aws, "dynamodb", pool=32)

    def claim(self, request: ClaimRequest) -> ClaimResult:
        condition = _CLAIMABLE + (" OR #status = :completed" if request.force else "")
        values: dict[str, Any] = {":now": _n(request.now), ":in_progress": {"S": IN_PROGRESS}}
        if request.force:
            values[":completed"] = {"S": COMPLETED}
        try:
            self._client.put_item(
                TableName=self._table,
                Item={
                    "pk": {"S": key_of(request.route, request.request_id)},
                    "route": {"S": request.route},
                    "request_id": {"S": request.request_id},
                    "status": {"S": IN_PROGRESS},
                    "owner": {"S": request.owner},
                    "lease_until": _n(request.lease_until),
                    "expires_at": _n(request.expires_at),
                    "subject": {"S": request.subject or "-"},
                },
                ConditionExpression=condition,
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues=values,
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if error_code(exc) != _REFUSED:
                raise
            old = exc.response.get("Item") or {}
            state: ClaimState = "completed" if old.get("status", {}).get("S") == COMPLETED else "in_progress"
            owner = old.get("owner", {}).get("S", "?")
            return ClaimResult(state, owner, _f(old, "lease_until"), _f(old, "completed_at"))
        return ClaimResult("acquired", request.owner, request.lease_until)

    def complete(self, route: str, request_id: str, owner: str, now: float, expires_at: float) -> bool:
        return self._update(
            route,
            request_id,
            owner,
            "SET #status = :completed, completed_at = :now, expires_at = :expires, lease_until = :now",
            {":completed": {"S": COMPLETED}, ":now": _n(now), ":expires": _n(expires_at)},
        )

    def release(self, route: str, request_id: str, owner: str) -> bool:
        try:
            self._client.delete_item(
                TableName=self._table,
                Key={"pk": {"S": key_of(route, request_id)}},
                ConditionExpression=_OURS,
                ExpressionAttributeNames={"#status": "status", "#owner": "owner"},
                ExpressionAttributeValues={":in_progress": {"S": IN_PROGRESS}, ":owner": {"S": owner}},
            )
        except ClientError as exc:
            if error_code(exc) == _REFUSED:
                return False
            raise
        return True

    def renew(self, route: str, request_id: str, owner: str, lease_until: float) -> bool:
        return self._update(route, request_id, owner, "SET lease_until = :lease", {":lease": _n(lease_until)})

    def _update(self, route: str, request_id: str, owner: str, expression: str, values: dict[str, Any]) -> bool:
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"pk": {"S": key_of(route, request_id)}},
                UpdateExpression=expression,
                ConditionExpression=_OURS,
                ExpressionAttributeNames={"#status": "status", "#owner": "owner"},
                ExpressionAttributeValues={":in_progress": {"S": IN_PROGRESS}, ":owner": {"S": owner}, **values},
            )
        except ClientError as exc:
            if error_code(exc) == _REFUSED:
                return False
            raise
        return True

    def forget_expired(self, now: float) -> int:
        return 0  # the table's TTL does it; every condition also treats an expired item as absent

    def close(self) -> None:
        self._client.close()


def create_table(aws: AwsConfig, table: str) -> bool:
    """Create the table (on-demand, TTL on ``expires_at``) unless it exists; True when created."""
    dynamodb = client(aws, "dynamodb")
    try:
        dynamodb.create_table(
            TableName=table,
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )
    except ClientError as exc:
        if error_code(exc) != "ResourceInUseException":
            raise
        return False
    dynamodb.get_waiter("table_exists").wait(TableName=table)
    dynamodb.update_time_to_live(
        TableName=table, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"}
    )
    return True


def _n(value: float) -> dict[str, str]:
    return {"N": str(Decimal(str(round(value, 3))))}


def _f(item: dict[str, Any], name: str) -> float | None:
    value = item.get(name, {}).get("N")
    return float(value) if value is not None else None
