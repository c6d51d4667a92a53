#!/usr/bin/python3
"""STAND-IN for LocalStack's Lambda init (``lambda-runtime-init``, a Go build of the AWS Runtime Interface Emulator
that LocalStack downloads from GitHub: it cannot be fetched or built on these machines).

LocalStack copies this file into each Lambda container as ``/var/rapid/init`` and starts the container with it as
entrypoint. It runs inside the runtime image (Python 3 only, no third-party module) and does what the real init
does for LocalStack (``cmd/localstack/custom_interop.go`` and ``main.go`` in that project):

* serves the AWS Lambda Runtime API (``/2018-06-01/runtime/invocation/next``, ``.../{id}/response``,
  ``.../{id}/error``, ``/2018-06-01/runtime/init/error``) on 127.0.0.1:9001 to the runtime's bootstrap
  (``/var/runtime/bootstrap``, which runs ``python3 -m awslambdaric $_HANDLER``: the real runtime interface
  client calls the handler), started as the unprivileged ``sbx_user1051`` like on AWS;
* reports ``$LOCALSTACK_RUNTIME_ENDPOINT/status/$LOCALSTACK_RUNTIME_ID/ready`` once the runtime asks for its first
  invocation (``/error`` with the runtime's payload when its init fails or it exits first);
* serves LocalStack's ``POST /invoke`` on port 9563 (``{"invoke-id", "invoked-function-arn", "payload",
  "trace-id"}``), answers 200 at once, hands the event to the runtime with the deadline
  (``Lambda-Runtime-Deadline-Ms`` = now + ``AWS_LAMBDA_FUNCTION_TIMEOUT``, so ``context.
  get_remaining_time_in_millis()`` works), then posts the logs (START/END/REPORT lines around the runtime's
  output) to ``.../invocations/<id>/logs`` and the outcome to ``.../invocations/<id>/response`` or ``/error``;
* enforces the function timeout (``Task timed out after N.00 seconds``; the runtime is killed and started again),
  reports a runtime that exits during an invocation (``Runtime.ExitError``) and a response above the payload
  limit (``Function.ResponseSizeTooLarge``).

Not done (the real init does): the X-Ray daemon, the DNS rewriter, hot reloading, code archives downloaded from
S3, the Extensions and Telemetry APIs, SnapStart.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

RUNTIME_API = ("127.0.0.1", 9001)
API = "/2018-06-01/runtime"
BOOTSTRAP_CANDIDATES = ("/var/runtime/bootstrap", "/var/task/bootstrap", "/opt/bootstrap")
SANDBOX_UID, SANDBOX_GID = 993, 990
DEFAULT_MAX_PAYLOAD = 6 * 1024 * 1024
# Internal to LocalStack and this init: the function does not see them (as with the real init).
HIDDEN = ("HOSTNAME", "HOME")
KEPT_LOCALSTACK = ("LOCALSTACK_HOSTNAME",)

_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def log(message: str) -> None:
    print(f"[init stand-in] {message}", file=sys.stderr, flush=True)


def post(url: str, body: bytes) -> None:
    """POST to LocalStack (no proxy, as the real init); failures are logged, not fatal."""
    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json"})
    try:
        with _NO_PROXY.open(request, timeout=30) as response:
            response.read()
    except OSError as exc:
        log(f"POST {url} failed: {exc}")


class Logs:
    """What the runtime prints, plus the START/END/REPORT lines, handed to LocalStack after each invocation."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._parts: list[str] = []

    def put(self, text: str) -> None:
        with self._lock:
            self._parts.append(text)

    def take(self) -> str:
        with self._lock:
            text, self._parts = "".join(self._parts), []
            return text


class Invocation:
    def __init__(self, request: dict[str, Any], timeout: int) -> None:
        self.id = str(request["invoke-id"])
        self.arn = str(request.get("invoked-function-arn", ""))
        self.trace_id = str(request.get("trace-id", ""))
        self.payload = str(request.get("payload", "")).encode()
        self.started = time.time()
        self.deadline = self.started + timeout
        self.outcome: tuple[str, bytes] | None = None  # ("response" | "error", body)


class Sandbox:
    """The runtime process and the state the two HTTP servers share."""

    def __init__(self, env: dict[str, str], bootstrap: list[str], timeout: int, logs: Logs) -> None:
        self.env, self.bootstrap, self.timeout, self.logs = env, bootstrap, timeout, logs
        self.max_payload = int(os.environ.get("LOCALSTACK_MAX_PAYLOAD_SIZE") or DEFAULT_MAX_PAYLOAD)
        self.cond = threading.Condition()
        self.generation = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.exit_code: int | None = None
        self.ready = False
        self.init_error: bytes | None = None
        self.init_started = 0.0
        self.init_duration_ms: float | None = None
        self.pending: Invocation | None = None  # waiting for the runtime's /next
        self.current: Invocation | None = None  # handed to the runtime, no outcome yet
        self.peak_memory_mb = 0

    # -- the runtime process -------------------------------------------------------------------------------
    def start_runtime(self) -> None:
        with self.cond:
            self.generation += 1
            self.exit_code, self.ready, self.init_error = None, False, None
            self.init_started = time.monotonic()
            process = subprocess.Popen(
                self.bootstrap,
                env=self.env,
                cwd=self.env.get("LAMBDA_TASK_ROOT", "/var/task"),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                **_sandbox_user(),
            )
            self.process = process
            generation = self.generation
        threading.Thread(target=self._pump, args=(process,), daemon=True).start()
        threading.Thread(target=self._reap, args=(process, generation), daemon=True).start()

    def _pump(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None
        for line in iter(process.stdout.readline, b""):
            text = line.decode(errors="replace")
            sys.stdout.write(text)
            sys.stdout.flush()
            self.logs.put(text)

    def _reap(self, process: subprocess.Popen[bytes], generation: int) -> None:
        code = process.wait()
        with self.cond:
            if generation == self.generation:
                self.exit_code = code
                self.cond.notify_all()

    def kill_runtime(self) -> None:
        with self.cond:
            process, self.process = self.process, None
            self.generation += 1  # a /next still waiting belongs to the dead runtime
            self.cond.notify_all()
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def wait_ready(self) -> tuple[bool, bytes]:
        """Until the runtime asks for its first invocation (True), or fails its init or exits (False, payload)."""
        with self.cond:
            self.cond.wait_for(lambda: self.ready or self.init_error is not None or self.exit_code is not None)
            if self.ready:
                return True, b""
            if self.init_error is not None:
                return False, self.init_error
            return False, _error("Runtime.ExitError", f"Runtime exited with error: {_exit_text(self.exit_code)}")

    # -- Runtime API side ----------------------------------------------------------------------------------
    def next_invocation(self) -> Invocation | None:
        with self.cond:
            generation = self.generation
            if not self.ready:
                self.ready = True
                self.init_duration_ms = (time.monotonic() - self.init_started) * 1000
                self.cond.notify_all()
            self.cond.wait_for(lambda: self.pending is not None or self.generation != generation)
            if self.generation != generation:
                return None
            invocation, self.pending = self.pending, None
            self.current = invocation
            return invocation

    def finish(self, request_id: str, kind: str, body: bytes) -> HTTPStatus:
        with self.cond:
            invocation = self.current
            if invocation is None or invocation.id != request_id or invocation.outcome is not None:
                return HTTPStatus.BAD_REQUEST
            if kind == "response" and len(body) > self.max_payload:
                message = f"Response payload size exceeded maximum allowed payload size ({self.max_payload} bytes)."
                invocation.outcome = ("error", _error("Function.ResponseSizeTooLarge", message))
                self.cond.notify_all()
                return HTTPStatus.REQUEST_ENTITY_TOO_LARGE
            invocation.outcome = (kind, body)
            self.cond.notify_all()
            return HTTPStatus.ACCEPTED

    def fail_init(self, body: bytes) -> None:
        with self.cond:
            self.init_error = body
            self.cond.notify_all()

    # -- LocalStack side -----------------------------------------------------------------------------------
    def invoke(self, invocation: Invocation) -> tuple[str, bytes]:
        """Hand ``invocation`` to the runtime and wait for its outcome, the deadline or the runtime's exit."""
        if self.process is None or self.exit_code is not None:  # reset or dead: init again, within this invocation
            self.kill_runtime()
            self.start_runtime()
        with self.cond:
            self.pending = invocation
            self.cond.notify_all()
            finished = self.cond.wait_for(
                lambda: invocation.outcome is not None or self.init_error is not None or self.exit_code is not None,
                timeout=max(0.0, invocation.deadline - time.time()),
            )
            self.pending = None if self.pending is invocation else self.pending
            self.current = None
            if invocation.outcome is not None:
                self.peak_memory_mb = self.memory_used_mb()
                return invocation.outcome
            init_error, exit_code = self.init_error, self.exit_code
        self.peak_memory_mb = self.memory_used_mb()  # before the runtime is killed below
        if init_error is not None:
            self.kill_runtime()
            return "error", init_error
        if not finished:
            self.kill_runtime()
            stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            message = f"{stamp} {invocation.id} Task timed out after {self.timeout}.00 seconds"
            return "error", json.dumps({"errorMessage": message}).encode()
        self.kill_runtime()
        text = f"RequestId: {invocation.id} Error: Runtime exited with error: {_exit_text(exit_code)}"
        return "error", _error("Runtime.ExitError", text)

    def memory_used_mb(self) -> int:
        """The runtime's peak resident memory (``VmHWM``), for the REPORT line."""
        process = self.process
        if process is None:
            return 0
        with contextlib.suppress(OSError, ValueError), open(f"/proc/{process.pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return max(1, int(line.split()[1]) // 1024)
        return 0


def _error(error_type: str, message: str) -> bytes:
    return json.dumps({"errorType": error_type, "errorMessage": message}).encode()


def _exit_text(code: int | None) -> str:
    if code is not None and code < 0:
        return f"signal: {signal.Signals(-code).name.removeprefix('SIG').lower()}"
    return f"exit status {code}"


def _sandbox_user() -> dict[str, Any]:
    """Run the runtime as ``$LOCALSTACK_USER`` (default ``sbx_user1051``, as on AWS) when the init is root."""
    name = os.environ.get("LOCALSTACK_USER", "sbx_user1051")
    if os.geteuid() != 0 or not name or name == "root":
        return {}
    try:
        entry = pwd.getpwnam(name)
        uid, gid = entry.pw_uid, entry.pw_gid
    except KeyError:
        uid, gid = SANDBOX_UID, SANDBOX_GID
        with open("/etc/passwd", "a") as passwd:
            passwd.write(f"{name}:x:{uid}:{gid}::/tmp:/usr/sbin/nologin\n")
        with open("/etc/group", "a") as group:
            group.write(f"{name}:x:{gid}:\n")
    with contextlib.suppress(OSError):
        os.chown("/tmp", uid, gid)
    return {"user": uid, "group": gid, "extra_groups": []}


def _chmod_paths() -> None:
    """``LOCALSTACK_CHMOD_PATHS`` ([{"path", "mode"}]): modes the real init sets, recursively, before the runtime."""
    for item in json.loads(os.environ.get("LOCALSTACK_CHMOD_PATHS") or "[]"):
        mode = int(str(item["mode"]), 8)
        for folder, dirs, files in os.walk(item["path"]):
            for name in [folder, *(os.path.join(folder, n) for n in dirs + files)]:
                with contextlib.suppress(OSError):
                    os.chmod(name, mode, follow_symlinks=False)


def _read_body(handler: BaseHTTPRequestHandler) -> bytes:
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        chunks: list[bytes] = []
        while True:
            size = int(handler.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                handler.rfile.readline()
                return b"".join(chunks)
            chunks.append(handler.rfile.read(size))
            handler.rfile.readline()
    return handler.rfile.read(int(handler.headers.get("Content-Length") or 0))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive and Expect: 100-continue, as the runtime client's libcurl expects
    sandbox: Sandbox

    def reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {"Content-Type": "application/json"}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class RuntimeApi(_Handler):
    def do_GET(self) -> None:
        if self.path != f"{API}/invocation/next":
            self.reply(404, _error("UnknownEndpoint", f"{self.path} is not served by the init stand-in"))
            return
        invocation = self.sandbox.next_invocation()
        if invocation is None:
            self.reply(500, _error("Runtime.Reset", "the runtime was reset"))
            self.close_connection = True
            return
        headers = {
            "Content-Type": "application/json",
            "Lambda-Runtime-Aws-Request-Id": invocation.id,
            "Lambda-Runtime-Deadline-Ms": str(int(invocation.deadline * 1000)),
            "Lambda-Runtime-Invoked-Function-Arn": invocation.arn,
            "Lambda-Runtime-Trace-Id": invocation.trace_id,
        }
        self.reply(200, invocation.payload, headers)

    def do_POST(self) -> None:
        body = _read_body(self)
        parts = self.path.removeprefix(API).strip("/").split("/")
        if parts == ["init", "error"]:
            self.sandbox.fail_init(_with_type(body, self.headers.get("Lambda-Runtime-Function-Error-Type")))
            self.reply(202, b'{"status":"OK"}')
        elif len(parts) == 3 and parts[0] == "invocation" and parts[2] in ("response", "error"):
            if parts[2] == "error":
                body = _with_type(body, self.headers.get("Lambda-Runtime-Function-Error-Type"))
            status = self.sandbox.finish(parts[1], parts[2], body)
            payload = b'{"status":"OK"}' if status == HTTPStatus.ACCEPTED else _error("InvalidRequestID", parts[1])
            self.reply(status, payload)
        else:
            self.reply(404, _error("UnknownEndpoint", f"{self.path} is not served by the init stand-in"))


def _with_type(body: bytes, error_type: str | None) -> bytes:
    """An error body as the runtime sent it when it is a JSON object, else one made from the error-type header."""
    with contextlib.suppress(ValueError):
        if isinstance(json.loads(body), dict):
            return body
    return _error(error_type or "Runtime.Unknown", body.decode(errors="replace"))


class Interop(_Handler):
    endpoint: str
    version: str
    memory: str

    def do_POST(self) -> None:
        body = _read_body(self)
        if self.path != "/invoke":
            self.reply(404, b"")
            return
        invocation = Invocation(json.loads(body), self.sandbox.timeout)
        threading.Thread(target=self.run, args=(invocation,), daemon=True).start()
        self.reply(200, b"OK", {"Content-Type": "text/plain"})

    def run(self, invocation: Invocation) -> None:
        sandbox = self.sandbox
        sandbox.logs.put(f"START RequestId: {invocation.id} Version: {self.version}\n")
        kind, body = sandbox.invoke(invocation)
        wait_ms = os.environ.get("LOCALSTACK_POST_INVOKE_WAIT_MS")
        if wait_ms:
            time.sleep(int(wait_ms) / 1000)
        duration = (time.time() - invocation.started) * 1000
        init = sandbox.init_duration_ms
        sandbox.init_duration_ms = None  # reported once, with the first invocation after an init
        report = (
            f"REPORT RequestId: {invocation.id}\tDuration: {duration:.2f} ms\tBilled Duration: {int(duration) + 1} ms"
            f"\tMemory Size: {self.memory} MB\tMax Memory Used: {sandbox.peak_memory_mb} MB\t"
            + (f"Init Duration: {init:.2f} ms\t" if init is not None else "")
        )
        sandbox.logs.put(f"END RequestId: {invocation.id}\n{report}\n")
        post(f"{self.endpoint}/invocations/{invocation.id}/logs", json.dumps({"logs": sandbox.logs.take()}).encode())
        if kind == "response":  # the real init also treats a response object with an errorType as an error
            with contextlib.suppress(ValueError):
                decoded = json.loads(body)
                if isinstance(decoded, dict) and "errorType" in decoded:
                    kind = "error"
        post(f"{self.endpoint}/invocations/{invocation.id}/{kind}", body)


def _serve(handler: type[_Handler], address: tuple[str, int]) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(address, handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main(argv: list[str]) -> int:
    endpoint = os.environ["LOCALSTACK_RUNTIME_ENDPOINT"]
    runtime_id = os.environ["LOCALSTACK_RUNTIME_ID"]
    interop_port = int(os.environ.get("LOCALSTACK_INTEROP_PORT") or 9563)
    timeout = int(os.environ["AWS_LAMBDA_FUNCTION_TIMEOUT"])
    _chmod_paths()
    bootstrap = argv[1:] or next(([path] for path in BOOTSTRAP_CANDIDATES if os.access(path, os.X_OK)), [])
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in HIDDEN and (not key.startswith("LOCALSTACK_") or key in KEPT_LOCALSTACK)
    }
    env["AWS_LAMBDA_RUNTIME_API"] = f"{RUNTIME_API[0]}:{RUNTIME_API[1]}"
    status_url = f"{endpoint}/status/{runtime_id}"
    if not bootstrap:
        post(f"{status_url}/error", _error("Runtime.InvalidEntrypoint", "no bootstrap in " + str(BOOTSTRAP_CANDIDATES)))
        return 1

    logs = Logs()
    sandbox = Sandbox(env, bootstrap, timeout, logs)
    RuntimeApi.sandbox = Interop.sandbox = sandbox
    Interop.endpoint, Interop.memory = endpoint, os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
    Interop.version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
    _serve(RuntimeApi, RUNTIME_API)
    _serve(Interop, ("0.0.0.0", interop_port))

    def terminate(*_: Any) -> None:  # as PID 1, nothing else would end us on `docker stop`
        process = sandbox.process
        if process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
        os._exit(0)

    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGINT, terminate)

    sandbox.start_runtime()
    ok, payload = sandbox.wait_ready()
    if not ok:
        log(f"runtime init failed: {payload.decode(errors='replace')}")
        post(f"{status_url}/error", payload)
        sandbox.kill_runtime()
        return 1
    post(f"{status_url}/ready", b"")
    threading.Event().wait()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
