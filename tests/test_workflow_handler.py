"""The workflow handler in-process against the fake Fire Insights server (no LocalStack): retries,
Retry-After, permanent 4xx, token refresh on a 401, polling, and the token kept out of errors."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.fire_server import EXECUTE, STATUS, Canned, FireServer
from tests.support.http_proxy import ForwardProxy
from tests.support.process import free_port
from watcher.app import parse_config
from watcher.config.schema import Config
from watcher.errors import PermanentError, RetryableError
from watcher.handlers.base import Handler
from watcher.handlers.registry import create_handler
from watcher.handlers.workflow import session as http_session
from watcher.handlers.workflow.handler import _retry_after
from watcher.metrics import Metrics
from watcher.records import S3Record
from watcher.routing import Unit

TOKEN = "tok-4f1c9e0b7a"


@pytest.fixture
def fire() -> Iterator[FireServer]:
    with FireServer(TOKEN) as server:
        yield server


def config(url: str, environ: dict[str, str] | None = None, **options: Any) -> Config:
    """A workflow route on ``url``; an option given as None is left out."""
    handler = {
        "type": "workflow",
        "url": url + EXECUTE,
        "workflow_id": "42",
        "token": "${env:FIRE_TOKEN}",
        "retry": {"attempts": 4, "max_seconds": 10, "initial_seconds": 0.05},
        "timeout_seconds": 2,
        **options,
    }
    handler = {name: value for name, value in handler.items() if value is not None}
    document = {
        "queue": {"url": "https://sqs.us-east-1.amazonaws.com/1/q"},
        "routes": [{"name": "fire", "prefix": "events/", "suffix": "_SUCCESS", "handler": handler}],
    }
    return parse_config(document, environ=environ if environ is not None else {"FIRE_TOKEN": TOKEN})


def make(cfg: Config) -> tuple[Handler, Unit, Metrics]:
    metrics = Metrics()
    route = cfg.routes[0]
    record = S3Record("lake", "events/2026/11/23/_SUCCESS", "ObjectCreated:Put", size=0, etag="e1")
    return create_handler(route, metrics=metrics, aws=cfg.aws), Unit(record, route), metrics


def sample(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


async def test_one_post_with_the_sparkflows_body_and_headers(fire: FireServer) -> None:
    handler, unit, metrics = make(config(fire.url))
    try:
        await handler.handle(unit)
    finally:
        await handler.close()
    [call] = fire.calls()
    assert json.loads(call.body) == {"workflowId": "42", "parameters": "--var datapath=s3://lake/events/2026/11/23"}
    assert call.headers["Authorization"] == f"Bearer {TOKEN}"
    assert call.headers["Content-Type"] == "application/json"
    assert call.headers["Idempotency-Key"] == unit.request_id
    assert sample(metrics, "watcher_http_requests_total", route="fire", status="200") == 1
    assert sample(metrics, "watcher_http_request_duration_seconds_count", route="fire") == 1


async def test_5xx_are_retried_then_succeed_and_counted(fire: FireServer) -> None:
    fire.fail_next(Canned(503), Canned(502))
    handler, unit, metrics = make(config(fire.url))
    try:
        await handler.handle(unit)
    finally:
        await handler.close()
    assert [c.status for c in fire.calls()] == [503, 502, 200]
    assert sample(metrics, "watcher_http_retries_total", route="fire", reason="503") == 1
    assert sample(metrics, "watcher_http_retries_total", route="fire", reason="502") == 1


async def test_retries_exhausted_are_retryable(fire: FireServer) -> None:
    fire.fail_next(*[Canned(500, "boom")] * 4)
    handler, unit, _ = make(config(fire.url))
    try:
        with pytest.raises(RetryableError, match=r"failed after 4 attempts: HTTP 500: boom"):
            await handler.handle(unit)
    finally:
        await handler.close()


async def test_retry_after_is_honoured(fire: FireServer) -> None:
    fire.fail_next(Canned(429, headers={"Retry-After": "1"}))
    handler, unit, metrics = make(config(fire.url))
    try:
        await handler.handle(unit)
    finally:
        await handler.close()
    first, second = fire.calls()
    assert 0.9 <= second.time - first.time < 1.8
    assert sample(metrics, "watcher_http_retries_total", route="fire", reason="429") == 1


async def test_a_retry_after_beyond_the_budget_gives_up_at_once(fire: FireServer) -> None:
    fire.fail_next(Canned(503, headers={"Retry-After": "60"}))
    handler, unit, _ = make(config(fire.url))
    started = time.monotonic()
    try:
        with pytest.raises(RetryableError, match=r"Retry-After 60s"):
            await handler.handle(unit)
    finally:
        await handler.close()
    assert time.monotonic() - started < 1


async def test_a_400_is_permanent_with_status_and_a_masked_bounded_excerpt(fire: FireServer) -> None:
    fire.fail_next(Canned(400, f"bad workflowId; you sent token {TOKEN} " + "x" * 1000))
    handler, unit, _ = make(config(fire.url))
    try:
        with pytest.raises(PermanentError) as error:
            await handler.handle(unit)
    finally:
        await handler.close()
    text = str(error.value)
    assert text.startswith(f"execute POST {fire.url}{EXECUTE} -> HTTP 400: bad workflowId; you sent token ***")
    assert TOKEN not in text and len(text) < 500
    assert len(fire.calls()) == 1


async def test_a_401_rereads_the_token_once(fire: FireServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FIRE_TOKEN", "tok-old-000000")
    handler, unit, metrics = make(config(fire.url, environ={"FIRE_TOKEN": "tok-old-000000"}))
    monkeypatch.setenv("FIRE_TOKEN", TOKEN)  # rotated after the config was loaded
    try:
        await handler.handle(unit)
    finally:
        await handler.close()
    assert [c.status for c in fire.calls()] == [401, 200]
    assert sample(metrics, "watcher_http_retries_total", route="fire", reason="auth_refresh") == 1


async def test_a_401_that_persists_is_permanent(fire: FireServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FIRE_TOKEN", "tok-wrong-0000")
    handler, unit, _ = make(config(fire.url, environ={"FIRE_TOKEN": "tok-wrong-0000"}))
    try:
        with pytest.raises(PermanentError, match=r"HTTP 401 \(after re-reading the token\)") as error:
            await handler.handle(unit)
    finally:
        await handler.close()
    assert "tok-wrong" not in str(error.value)
    assert len(fire.calls()) == 2


async def test_connection_refused_is_retryable() -> None:
    handler, unit, metrics = make(config(f"http://127.0.0.1:{free_port()}"))
    try:
        with pytest.raises(RetryableError, match=r"ClientConnectorError|Connect"):
            await handler.handle(unit)
    finally:
        await handler.close()
    assert sample(metrics, "watcher_http_requests_total", route="fire", status="connection_error") == 4


def poll(fire: FireServer, **extra: Any) -> dict[str, Any]:
    return {"url": fire.url + STATUS, "interval_seconds": 0.05, "timeout_seconds": 5, **extra}


@pytest.mark.parametrize(("final", "error"), [("COMPLETED", None), ("FAILED", PermanentError)])
async def test_polling_until_the_run_ends(fire: FireServer, final: str, error: type[Exception] | None) -> None:
    fire.final_status = final
    handler, unit, _ = make(config(fire.url, poll=poll(fire)))
    try:
        if error is None:
            await handler.handle(unit)
        else:
            with pytest.raises(error, match=f"workflow run 1000 ended with status {final}"):
                await handler.handle(unit)
    finally:
        await handler.close()
    assert len(fire.calls("GET", STATUS)) == 3  # RUNNING, RUNNING, final


async def test_every_template_gets_the_placeholders_it_uses(fire: FireServer) -> None:
    """The handler computes per event only the values its templates use: here each template uses
    others (the poll URL's are its own), and no Idempotency-Key asks for the request id."""
    options = {
        "body": {"path": "{key}", "size": "{size}"},
        "headers": {"X-Dataset": "{dataset}", "X-Etag": "{etag}"},
        "idempotency_key": False,
        "poll": poll(fire, url=fire.url + STATUS + "?at={event_time}&in={bucket}"),
        "workflow_id": None,  # only for the default body
    }
    handler, unit, _ = make(config(fire.url, **options))
    try:
        await handler.handle(unit)
    finally:
        await handler.close()
    [call] = fire.calls("POST", EXECUTE)
    assert json.loads(call.body) == {"path": "events/2026/11/23/_SUCCESS", "size": "0"}
    assert (call.headers["X-Dataset"], call.headers["X-Etag"]) == ("events/2026/11/23", "e1")
    assert "Idempotency-Key" not in call.headers
    assert len(fire.calls("GET", STATUS)) == 3


async def test_a_poll_timeout_is_retryable(fire: FireServer) -> None:
    fire.running_polls = 1000
    handler, unit, _ = make(config(fire.url, poll=poll(fire, timeout_seconds=0.3)))
    try:
        with pytest.raises(RetryableError, match=r"workflow run 1000 not finished after 0.3s \(last status: RUNNING\)"):
            await handler.handle(unit)
    finally:
        await handler.close()


def test_retry_after_values() -> None:
    assert _retry_after("2") == 2.0
    assert _retry_after(" 0.5 ") == 0.5
    assert _retry_after(None) is None and _retry_after("soon") is None
    assert _retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0


@pytest.mark.parametrize(("no_proxy", "through_proxy"), [("", True), ("127.0.0.1", False)])
async def test_the_proxy_comes_from_the_environment_once_per_host(
    fire: FireServer, monkeypatch: pytest.MonkeyPatch, no_proxy: str, through_proxy: bool
) -> None:
    with ForwardProxy() as proxy:
        monkeypatch.setattr(http_session, "_proxies", {})  # looked up once per process: forget earlier tests'
        for name in ("HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.setenv("NO_PROXY", no_proxy)
        handler, unit, _ = make(config(fire.url))
        try:
            await handler.handle(unit)
            monkeypatch.setenv("NO_PROXY", "" if no_proxy else "127.0.0.1")  # read once: no effect now
            await handler.handle(unit)
        finally:
            await handler.close()
    assert len(fire.calls()) == 2
    assert proxy.targets == ([f"POST {fire.url}{EXECUTE}"] * 2 if through_proxy else [])


async def test_a_netrc_entry_for_the_api_host_does_not_replace_or_clash_with_the_bearer_token(
    fire: FireServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # aiohttp's trust_env would take these credentials and refuse the request ("Cannot combine
    # AUTHORIZATION header with AUTH argument"): the handler reads proxies only, never ~/.netrc logins.
    netrc = tmp_path / ".netrc"
    netrc.write_text("machine 127.0.0.1 login someone password not-the-token\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    handler, unit, _ = make(config(fire.url))
    try:
        await handler.handle(unit)
    finally:
        await handler.close()
    [call] = fire.calls()
    assert call.headers["Authorization"] == f"Bearer {TOKEN}"
