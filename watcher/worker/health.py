"""The worker's HTTP endpoint: /metrics, /healthz (the process answers) and /readyz (the queue
answered recently), served by a WSGI server in a daemon thread so that scrapes keep answering while
the event loop is busy; and the gauges computed when scraped (readiness, the oldest message held)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer

from watcher.metrics import Metrics


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # scrapes are not worth a log line
        return None


class MetricsServer:
    """/metrics, /healthz (the process answers) and /readyz (the queue answered recently)."""

    def __init__(self, metrics: Metrics, is_ready: Callable[[], tuple[bool, str]]) -> None:
        self._metrics_app = make_wsgi_app(metrics.registry)
        self._is_ready = is_ready
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    def _app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/")
        if path == "/healthz":
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"ok\n"]
        if path == "/readyz":
            ready, detail = self._is_ready()
            start_response("200 OK" if ready else "503 Service Unavailable", [("Content-Type", "text/plain")])
            return [f"{'ready' if ready else 'not ready'}: {detail}\n".encode()]
        if path in ("/metrics", "/"):
            result: Iterable[bytes] = self._metrics_app(environ, start_response)
            return result
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found: try /metrics, /healthz or /readyz\n"]

    def start(self, host: str, port: int) -> int:
        """Serve in a daemon thread; return the bound port."""
        self._server = make_server(host, port, self._app, ThreadingWSGIServer, handler_class=_QuietHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="metrics-http", daemon=True)
        self._thread.start()
        return int(self._server.server_port)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


class Readiness:
    """Ready while the latest SQS call succeeded, and did so within ``window`` seconds."""

    def __init__(self, window: float) -> None:
        self.window = window
        self._last_ok: float | None = None
        self._failing = False
        self._last_error = "no SQS call yet"

    def ok(self) -> None:
        self._last_ok = time.monotonic()
        self._failing = False

    def failed(self, error: str) -> None:
        self._failing = True
        self._last_error = error

    def __call__(self) -> tuple[bool, str]:
        if self._last_ok is None or self._failing:
            return False, f"the queue is not answering: {self._last_error}"
        age = time.monotonic() - self._last_ok
        if age > self.window:
            return False, f"no successful SQS call for {age:.0f}s; last error: {self._last_error}"
        return True, f"queue answered {age:.0f}s ago"


def bind_scrape_time_gauges(metrics: Metrics, readiness: Readiness, sent_times: Mapping[str, float]) -> None:
    """``watcher_ready`` and ``watcher_sqs_oldest_message_age_seconds``, computed by the scrape itself
    (in the metrics thread): nothing to keep up to date on the event loop. ``sent_times`` holds the
    SentTimestamp (epoch seconds) of every message the worker holds, by receipt handle."""
    metrics.ready.set_function(lambda: 1.0 if readiness()[0] else 0.0)
    metrics.oldest_message_age.set_function(lambda: oldest_age(sent_times))


def oldest_age(sent_times: Mapping[str, float], now: float | None = None) -> float:
    """Seconds since the earliest of ``sent_times``, 0 when there is none. Called from the metrics
    thread while the event loop adds and removes entries: the values are copied in one C call, and a
    copy that still lost the race (the size changed) is simply taken again."""
    for _ in range(10):
        try:
            values = list(sent_times.values())
            break
        except RuntimeError:  # changed size during iteration
            continue
    else:
        return 0.0
    if not values:
        return 0.0
    return max(0.0, (time.time() if now is None else now) - min(values))
