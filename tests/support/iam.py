"""Just enough of IAM's evaluation for tests/test_worker_iam.py: which action an API call needs, on
which resource ARN, and whether an identity policy's Allow statements (actions and resources with
``*`` and ``?`` wildcards; no Deny, no conditions) grant it. The action names are AWS's documented
mapping ("Actions, resources, and condition keys" of each service): a batch call needs the action
of its single form, HeadObject needs s3:GetObject, and naming a version s3:GetObjectVersion too."""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any
from urllib.parse import urlsplit

_ACTIONS = {
    ("sqs", "DeleteMessageBatch"): ("sqs:DeleteMessage",),
    ("sqs", "ChangeMessageVisibilityBatch"): ("sqs:ChangeMessageVisibility",),
    ("sqs", "SendMessageBatch"): ("sqs:SendMessage",),
    ("s3", "HeadObject"): ("s3:GetObject",),
    ("s3", "ListObjectsV2"): ("s3:ListBucket",),
    ("s3", "CreateMultipartUpload"): ("s3:PutObject",),
    ("s3", "UploadPart"): ("s3:PutObject",),
    ("s3", "CompleteMultipartUpload"): ("s3:PutObject",),
    ("sts", "GetCallerIdentity"): (),  # needs no permission
}
SECRET_SUFFIX = "-AbCdEf"  # Secrets Manager appends six random characters to a secret's ARN


@dataclass(frozen=True)
class Need:
    action: str
    resource: str


def needs(call: dict[str, Any], region: str, account: str) -> list[Need]:
    service, operation, params = call["service"], call["operation"], call["params"]
    actions = _ACTIONS.get((service, operation), (f"{service}:{operation}",))
    if service == "s3" and params.get("VersionId") and "s3:GetObject" in actions:
        actions = ("s3:GetObjectVersion",)  # reading a named version needs this action instead
    resource = _resource(service, params, region, account)
    return [Need(action, resource) for action in actions]


def _resource(service: str, params: dict[str, Any], region: str, account: str) -> str:
    if service == "sqs":
        if "QueueUrl" in params:
            owner, name = urlsplit(params["QueueUrl"]).path.strip("/").split("/")[-2:]
        else:
            owner, name = params.get("QueueOwnerAWSAccountId", account), params["QueueName"]
        return f"arn:aws:sqs:{region}:{owner}:{name}"
    if service == "s3":
        return f"arn:aws:s3:::{params['Bucket']}" + (f"/{params['Key']}" if "Key" in params else "")
    if service == "secretsmanager":
        return f"arn:aws:secretsmanager:{region}:{account}:secret:{params['SecretId']}{SECRET_SUFFIX}"
    if service == "ssm":
        return f"arn:aws:ssm:{region}:{account}:parameter/{params['Name'].lstrip('/')}"
    if service == "dynamodb":
        return f"arn:aws:dynamodb:{region}:{account}:table/{params['TableName']}"
    return "*"


def statements(policy: dict[str, Any]) -> list[dict[str, Any]]:
    found = policy["Statement"]
    return [found] if isinstance(found, dict) else list(found)


def _listed(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def granting(policy: dict[str, Any], need: Need) -> list[tuple[str, str, str]]:
    """The (statement id, action pattern, resource pattern) triples of the policy that allow ``need``."""
    return [
        (statement.get("Sid", "?"), action, resource)
        for statement in statements(policy)
        if statement.get("Effect") == "Allow"
        for action in _listed(statement["Action"])
        if fnmatchcase(need.action.lower(), action.lower())
        for resource in _listed(statement["Resource"])
        if fnmatchcase(need.resource, resource)
    ]


def grants(policy: dict[str, Any]) -> set[tuple[str, str, str]]:
    """Every (statement id, action, resource) the policy allows."""
    return {
        (statement.get("Sid", "?"), action, resource)
        for statement in statements(policy)
        if statement.get("Effect") == "Allow"
        for action in _listed(statement["Action"])
        for resource in _listed(statement["Resource"])
    }
