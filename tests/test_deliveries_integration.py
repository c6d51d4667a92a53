"""The other ways S3 events reach the queue on a real LocalStack: through an SNS topic (wrapped and
raw delivery) and through EventBridge; and a real network outage between the worker and SQS."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.fixtures import s3_event
from tests.support.process import WatcherProcess, base_config, calls, wait_until
from tests.support.proxy import CuttableProxy
from tests.test_worker_integration import python_route, run_cli

pytestmark = pytest.mark.integration


def _allow_sends(sqs: Any, queue_url: str, queue_arn: str, service: str) -> None:
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sqs:SendMessage", "Resource": queue_arn}
        ],
    }
    sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"Policy": json.dumps(policy)})


@pytest.mark.parametrize("raw_delivery", [False, True], ids=["sns-wrapped", "sns-raw"])
def test_s3_events_through_an_sns_topic(
    raw_delivery: bool, s3: Any, sns: Any, make_queues: Any, unique: str, tmp_path: Path
) -> None:
    queues = make_queues()
    queue_arn = queues.arn(queues.url)
    _allow_sends(queues.sqs, queues.url, queue_arn, "sns.amazonaws.com")
    topic_arn = sns.create_topic(Name=f"watcher-topic-{unique}")["TopicArn"]
    sns.subscribe(
        TopicArn=topic_arn,
        Protocol="sqs",
        Endpoint=queue_arn,
        Attributes={"RawMessageDelivery": "true" if raw_delivery else "false"},
    )
    bucket = f"sns-lake-{unique}"
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={
            "TopicConfigurations": [
                {
                    "TopicArn": topic_arn,
                    "Events": ["s3:ObjectCreated:*"],
                    "Filter": {"Key": {"FilterRules": [{"Name": "suffix", "Value": "_SUCCESS"}]}},
                }
            ]
        },
    )
    calls_file = tmp_path / "calls.jsonl"
    config = base_config(queues.url, [python_route("datasets", "record", calls_file, bucket=bucket, suffix="_SUCCESS")])
    config_path = tmp_path / "check.yaml"
    config_path.write_text(yaml.safe_dump(config))
    checked = run_cli("check", "-c", str(config_path), "--live")
    assert checked.returncode == 0, checked.stdout
    worker = WatcherProcess(config, tmp_path)
    try:
        worker.wait_started()
        s3.put_object(Bucket=bucket, Key="daily/dt=2026-11-23/_SUCCESS", Body=b"")
        wait_until(lambda: calls(calls_file), 30, what="the handler call")
        (call,) = calls(calls_file)
        assert call["key"] == "daily/dt=2026-11-23/_SUCCESS"
        assert call["dataset_uri"] == f"s3://{bucket}/daily/dt=2026-11-23"
        wait_until(lambda: worker.metric("watcher_sqs_messages_deleted_total") >= 1, 10, what="the delete")
        assert worker.metric("watcher_sqs_messages_dead_lettered_total") == 0
    finally:
        assert worker.stop() == 0
        sns.delete_topic(TopicArn=topic_arn)


def test_s3_events_through_eventbridge(s3: Any, events: Any, make_queues: Any, unique: str, tmp_path: Path) -> None:
    queues = make_queues()
    queue_arn = queues.arn(queues.url)
    _allow_sends(queues.sqs, queues.url, queue_arn, "events.amazonaws.com")
    bucket = f"eb-lake-{unique}"
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={"EventBridgeConfiguration": {}})
    rule = f"watcher-rule-{unique}"
    pattern = {"source": ["aws.s3"], "detail-type": ["Object Created"], "detail": {"bucket": {"name": [bucket]}}}
    events.put_rule(Name=rule, EventPattern=json.dumps(pattern))
    events.put_targets(Rule=rule, Targets=[{"Id": "watcher", "Arn": queue_arn}])
    calls_file = tmp_path / "calls.jsonl"
    config = base_config(queues.url, [python_route("images", "record", calls_file, bucket=bucket, prefix="img/")])
    worker = WatcherProcess(config, tmp_path)
    try:
        worker.wait_started()
        s3.put_object(Bucket=bucket, Key="img/cat photo+1.jpg", Body=b"jpeg")
        s3.put_object(Bucket=bucket, Key="txt/ignored.txt", Body=b"no route")
        wait_until(lambda: calls(calls_file), 30, what="the handler call")
        wait_until(lambda: worker.metric("watcher_sqs_messages_deleted_total") >= 2, 15, what="both deletes")
        assert [c["key"] for c in calls(calls_file)] == ["img/cat photo+1.jpg"]
        assert worker.metric("watcher_records_skipped_total", {"reason": "no_route"}) == 1
    finally:
        assert worker.stop() == 0
        events.remove_targets(Rule=rule, Ids=["watcher"])
        events.delete_rule(Name=rule)


def test_a_network_outage_to_sqs_is_survived_and_reported(make_queues: Any, tmp_path: Path) -> None:
    queues = make_queues()
    proxy = CuttableProxy(4566)
    calls_file = tmp_path / "calls.jsonl"
    config = base_config(queues.url, [python_route("any", "record", calls_file)], aws={"endpoint_url": proxy.url})
    worker = WatcherProcess(config, tmp_path)
    try:
        worker.wait_started()
        proxy.cut()
        wait_until(lambda: len(worker.events("receive failed; backing off")) >= 2, 60, what="receive failures")
        assert worker.process.poll() is None, "the worker must survive the outage"
        status, body = worker.http_get("/readyz")
        assert status == 503 and "not answering" in body, body
        queues.send(s3_event("b", "after/outage.csv"))
        time.sleep(1)
        proxy.resume()
        wait_until(lambda: calls(calls_file), 60, what="the message after the outage")
        wait_until(lambda: worker.metric("watcher_sqs_messages_deleted_total") == 1, 15, what="the delete")
        assert worker.metric("watcher_errors_total", {"stage": "receive"}) >= 2
        assert worker.events("receive recovered")
        assert worker.http_get("/readyz")[0] == 200
    finally:
        assert worker.stop() == 0
        proxy.cut()
