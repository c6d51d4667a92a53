"""A forward HTTP proxy on 127.0.0.1 (plain HTTP, absolute-form request targets), run in a thread:
it records each request's target and forwards it without a proxy. Enough to see that a client
honours HTTP_PROXY / NO_PROXY."""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType


class ForwardProxy:
    def __init__(self) -> None:
        self.targets: list[str] = []  # "POST http://127.0.0.1:1234/api/..." per request
        proxy = self
        direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))

        class Handler(BaseHTTPRequestHandler):
            def _forward(self) -> None:
                proxy.targets.append(f"{self.command} {self.path}")
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "proxy-connection")}
                request = urllib.request.Request(self.path, data=body, headers=headers, method=self.command)
                try:
                    with direct.open(request, timeout=10) as response:
                        status, payload, answer = response.status, response.read(), response.headers
                except urllib.error.HTTPError as exc:
                    status, payload, answer = exc.code, exc.read(), exc.headers
                self.send_response(status)
                for name, value in answer.items():
                    if name.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = _forward

            def log_message(self, format: str, *args: object) -> None:  # quiet
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> ForwardProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self._server.shutdown()
        self._server.server_close()
