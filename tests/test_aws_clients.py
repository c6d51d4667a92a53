"""The AWS clients watcher makes (blocking and asynchronous) name themselves in the User-Agent header,
as a real HTTP server on 127.0.0.1 standing in for SQS receives them."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from watcher import __version__
from watcher.aws import USER_AGENT, client
from watcher.aws_async import aio_client_kwargs, aio_session
from watcher.config.schema import AwsConfig


class _SqsStandIn(BaseHTTPRequestHandler):
    """Answers every call as an SQS ListQueues (JSON protocol) and records the request's headers."""

    seen: ClassVar[list[dict[str, str]]] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        type(self).seen.append(dict(self.headers))
        body = b'{"QueueUrls": []}'
        self.send_response(200)
        self.send_header("Content-Type", "application/x-amz-json-1.0")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def endpoint() -> Iterator[str]:
    _SqsStandIn.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SqsStandIn)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _aws(endpoint: str) -> AwsConfig:
    return AwsConfig(region="us-east-1", endpoint_url=endpoint)


def test_a_blocking_client_sends_watchers_user_agent(endpoint: str) -> None:
    client(_aws(endpoint), "sqs").list_queues()
    (headers,) = _SqsStandIn.seen
    assert headers["User-Agent"].startswith(f"watcher/{__version__} ") and headers["User-Agent"].startswith(USER_AGENT)


async def test_an_asynchronous_client_sends_watchers_user_agent_on_every_call(endpoint: str) -> None:
    aws = _aws(endpoint)
    async with aio_session(aws).create_client("sqs", **aio_client_kwargs(aws)) as sqs:
        for _ in range(2):
            await sqs.list_queues()
    assert [h["User-Agent"].startswith(f"watcher/{__version__} ") for h in _SqsStandIn.seen] == [True, True]
    assert all(h["User-Agent"].startswith(USER_AGENT) for h in _SqsStandIn.seen)
