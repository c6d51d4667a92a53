"""An aiohttp application that behaves like the Fire Insights (Sparkflows) workflow endpoints, run in a
thread on 127.0.0.1: `make demo` starts one for its `fire-insights` route, and the tests that drive
`watcher run` as a subprocess use it (through tests/support/fire_server.py).

- ``POST /api/v1/workflow/execute`` checks ``Authorization: Bearer <token>`` and returns a new
  execution id as the whole body (an ``Idempotency-Key`` already seen returns the same id and starts
  nothing);
- ``GET /api/v1/workflow-executions/{id}/status`` answers ``RUNNING`` ``running_polls`` times, then
  ``final_status`` (COMPLETED unless told otherwise).

``fail_next`` queues canned answers for the next execute calls (503 x N, 429 with Retry-After,
400, ...); ``token`` may be changed at any time (a rotation: the old one then gets 401). Every
request is recorded, with the time it arrived.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

EXECUTE = "/api/v1/workflow/execute"
STATUS = "/api/v1/workflow-executions/{execution_id}/status"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Canned:
    status: int
    body: str = ""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: str
    time: float
    status: int
    response: str = ""  # the body of the answer


class FireServer:
    def __init__(
        self,
        token: str,
        port: int | None = None,
        on_request: Callable[[Recorded], None] | None = None,
        host: str = "127.0.0.1",  # a Lambda function's container reaches this host on the Docker bridge
    ) -> None:
        self.token = token
        self.final_status = "COMPLETED"
        self.running_polls = 2
        self.requests: list[Recorded] = []
        self.runs: dict[str, dict[str, Any]] = {}  # execution id -> {body, polls}
        self._canned: deque[Canned] = deque()
        self._by_key: dict[str, str] = {}
        self._ids = itertools.count(1000)
        self._lock = threading.Lock()
        self.on_request = on_request
        self.host = host
        self.port = port or free_port()
        self.url = f"http://{host}:{self.port}"
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, name="fire-server", daemon=True)

    # --- control (from the test thread) --------------------------------------------------------

    def start(self) -> FireServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        if not self._thread.is_alive():
            self._loop.close()

    def __enter__(self) -> FireServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def fail_next(self, *answers: Canned) -> None:
        with self._lock:
            self._canned.extend(answers)

    def calls(self, method: str = "POST", path: str = EXECUTE) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.method == method and r.path.startswith(path.split("{")[0])]

    # --- the application -----------------------------------------------------------------------

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post(EXECUTE, self._execute)
        app.router.add_get(STATUS, self._status)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()

    def _record(self, request: web.Request, body: str, status: int, response: str = "") -> None:
        recorded = Recorded(request.method, request.path, dict(request.headers), body, time.time(), status, response)
        with self._lock:
            self.requests.append(recorded)
        if self.on_request is not None:
            self.on_request(recorded)

    def _authorized(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"Bearer {self.token}"

    async def _execute(self, request: web.Request) -> web.Response:
        body = await request.text()
        with self._lock:
            canned = self._canned.popleft() if self._canned else None
        if canned is not None:
            self._record(request, body, canned.status, canned.body)
            return web.Response(status=canned.status, text=canned.body, headers=canned.headers)
        if not self._authorized(request):
            self._record(request, body, 401, "invalid or expired token")
            return web.Response(status=401, text="invalid or expired token")
        key = request.headers.get("Idempotency-Key")
        with self._lock:
            execution_id = self._by_key.get(key) if key else None
            if execution_id is None:
                execution_id = str(next(self._ids))
                self.runs[execution_id] = {"body": body, "polls": 0}
                if key:
                    self._by_key[key] = execution_id
        self._record(request, body, 200, execution_id)
        return web.Response(status=200, text=execution_id, content_type="text/plain")

    async def _status(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            self._record(request, "", 401, "invalid or expired token")
            return web.Response(status=401, text="invalid or expired token")
        execution_id = request.match_info["execution_id"]
        with self._lock:
            run = self.runs.get(execution_id)
            if run is None:
                status, text = 404, f"no execution {execution_id}"
            else:
                run["polls"] += 1
                status = 200
                text = "RUNNING" if run["polls"] <= self.running_polls else self.final_status
        self._record(request, "", status, text)
        return web.Response(status=status, text=text, content_type="text/plain")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="A local server that behaves like Fire Insights' workflow API.")
    parser.add_argument("--port", type=int, default=9410)
    parser.add_argument("--token", default="demo-token", help="the bearer token it accepts (the config's default)")
    parser.add_argument("--running-polls", type=int, default=2, help="status polls answered RUNNING per run")
    args = parser.parse_args(argv)

    def show(call: Recorded) -> None:
        print(f"{call.method} {call.path} {call.body} -> {call.status} {call.response}", flush=True)

    server = FireServer(args.token, args.port, on_request=show)
    server.running_polls = args.running_polls
    with server:
        print(f"serving {server.url}{EXECUTE} (Ctrl-C stops)", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
