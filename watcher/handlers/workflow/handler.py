"""The ``workflow`` handler: trigger an external workflow API (Sparkflows / Fire Insights style) for
the dataset a marker such as ``_SUCCESS`` completes, optionally waiting for the run to finish.

One request: ``Authorization: Bearer <token>``, ``Content-Type: application/json`` and
``Idempotency-Key: {request_id}``, over the process-wide aiohttp session (``session``). Connection
errors, timeouts, 5xx, 408 and 429 are retried with exponential backoff and jitter (tenacity),
honouring ``Retry-After``, within ``retry.attempts`` and ``retry.max_seconds``; then the unit is
retryable. A 401 re-reads the token reference once (a rotated secret) and tries again. Any other
4xx is permanent, with the status and a bounded excerpt of the response. The token is registered
as a secret and never put in an error message; response excerpts are masked too.
"""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import urlsplit

import aiohttp
from multidict import CIMultiDict
from prometheus_client import Counter, Histogram
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt, stop_before_delay

from watcher.backoff import equal_jitter
from watcher.config.refs import Lookup, resolve_string
from watcher.config.schema import AwsConfig, RouteConfig
from watcher.errors import PermanentError, ReferenceProblem, RetryableError
from watcher.handlers.base import HandlerContext, HandlerDefaults
from watcher.handlers.workflow import session as http
from watcher.handlers.workflow.options import WorkflowOptions, parse_options
from watcher.handlers.workflow.templates import extract, placeholder_values, placeholders_in, render, render_body
from watcher.logs import MASK, bind_log_fields, get_logger, mask_secrets, register_secret
from watcher.metrics import Metrics
from watcher.routing import Unit

_log = get_logger("watcher.handlers.workflow")
_MAX_BODY = 1 << 20  # read at most this much of a response
_EXCERPT = 300  # characters of a response body quoted in an error
_RETRY_STATUSES = frozenset({408, 429})


@dataclass(frozen=True, slots=True)
class _Response:
    status: int
    text: str


class _Transient(Exception):
    """A failure worth another attempt; ``reason`` labels the retry metric."""

    def __init__(self, reason: str, detail: str, retry_after: float | None = None) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
        self.retry_after = retry_after


class _Token:
    """The bearer token, and how to read it again when the API starts refusing it."""

    def __init__(self, value: str | None, reference: str | None, aws: AwsConfig) -> None:
        self.value = value
        self.generation = 0
        self._reference = reference if reference and "${" in reference else None
        self._aws = aws
        self._lock = asyncio.Lock()
        if value:
            register_secret(value)

    @property
    def refreshable(self) -> bool:
        return self._reference is not None

    async def refresh(self, seen_generation: int) -> None:
        """Re-read the reference, once for all the requests refused with the same token."""
        assert self._reference is not None
        async with self._lock:
            if self.generation != seen_generation:
                return  # another request refreshed it meanwhile
            lookup = Lookup(aws=self._aws, fresh=True)  # blocking (a secret store): in a thread
            try:
                value = await asyncio.to_thread(resolve_string, self._reference, lookup, secret=True)
            except ReferenceProblem as exc:
                raise RetryableError(f"cannot refresh the token: {mask_secrets(str(exc))}") from None
            register_secret(value)
            changed = value != self.value
            self.value, self.generation = value, self.generation + 1
            _log.info("token re-read after a 401", changed=changed)


def _retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _where(url: str) -> str:
    """A URL for error messages: no query string or credentials."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}{parts.path}"


class WorkflowHandler(HandlerDefaults):
    type_name: ClassVar[str] = "workflow"

    def __init__(self, route: str, options: WorkflowOptions, token: _Token, metrics: Metrics) -> None:
        self._route = route
        self._options = options
        self._token = token
        self._metrics = metrics
        self._ssl = http.ssl_context(options.ca_bundle, options.verify_tls)
        self._timeout = aiohttp.ClientTimeout(total=options.timeout_seconds)
        self._session: aiohttp.ClientSession | None = None
        # Computed per event: only the values the templates use (request_id is a hash).
        used = placeholders_in([options.url, options.body, *options.headers.values()])
        if options.poll is not None:
            used |= placeholders_in(options.poll.url) - {"execution_id"}
        if options.idempotency_key:
            used.add("request_id")
        self._placeholders = tuple(sorted(used))
        self._requests_by_status: dict[str, Counter] = {}  # the metrics' children, made on first use
        self._duration: Histogram | None = None

    @classmethod
    def validate(cls, options: Mapping[str, Any]) -> list[str]:
        return parse_options(options)[1]

    @classmethod
    def create(cls, route: RouteConfig, options: Mapping[str, Any], context: HandlerContext) -> WorkflowHandler:
        parsed, problems = parse_options(options)
        if parsed is None:
            raise ValueError("; ".join(problems))
        reference = route.handler.raw_options.get("token")
        token = _Token(parsed.token, reference if isinstance(reference, str) else None, context.aws)
        return cls(route.name, parsed, token, context.metrics)

    async def close(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await http.release(session)

    # --- one unit ------------------------------------------------------------------------------

    async def handle(self, unit: Unit) -> None:
        options = self._options
        values = placeholder_values(unit, self._placeholders)
        url = render(options.url, values, quote_values=True)
        headers: CIMultiDict[str] = CIMultiDict()
        data: bytes | None = None
        if options.body is not None:
            data = render_body(options.body, values)
            headers["Content-Type"] = "application/json"
        if options.idempotency_key:
            headers["Idempotency-Key"] = values["request_id"]
        headers.update({name: render(value, values) for name, value in options.headers.items()})
        response = await self._request(options.method, url, data, headers, "execute")
        bind_log_fields(http_status=response.status)  # on the unit's summary line
        if options.poll is None:
            return
        execution_id = extract(options.poll.execution_id, response.text)
        if execution_id is None:
            where = options.poll.execution_id
            raise PermanentError(f"the execute response has no execution id at {where}: {self._excerpt(response.text)}")
        _log.info("workflow run started", execution_id=execution_id, dataset_uri=unit.dataset_uri)
        poll_headers: CIMultiDict[str] = CIMultiDict(
            {name: render(value, values) for name, value in options.headers.items()}
        )
        poll_url = render(options.poll.url, {**values, "execution_id": execution_id}, quote_values=True)
        await self._poll(execution_id, poll_url, poll_headers)

    async def _poll(self, execution_id: str, url: str, headers: CIMultiDict[str]) -> None:
        poll = self._options.poll
        assert poll is not None
        deadline = time.monotonic() + poll.timeout_seconds
        status: str | None = None
        while True:
            try:
                response = await self._request("GET", url, None, headers, "poll")
            except RetryableError as exc:  # the run goes on; so do we, until the poll timeout
                _log.warning("status poll failed", execution_id=execution_id, error=str(exc))
            else:
                status = extract(poll.status, response.text)
                upper = (status or "").upper()
                if upper in poll.success:
                    _log.info("workflow run finished", execution_id=execution_id, status=status)
                    return
                if upper in poll.failure:
                    raise PermanentError(f"workflow run {execution_id} ended with status {status}")
            if time.monotonic() + poll.interval_seconds > deadline:
                raise RetryableError(
                    f"workflow run {execution_id} not finished after {poll.timeout_seconds:g}s (last status: {status})"
                )
            await asyncio.sleep(poll.interval_seconds)

    # --- one request, with retries -------------------------------------------------------------

    async def _request(
        self, method: str, url: str, data: bytes | None, headers: CIMultiDict[str], purpose: str
    ) -> _Response:
        # The common case, a first attempt answered 2xx, returns without building tenacity's machinery
        # (about a tenth of a busy workflow route's CPU); any other first outcome enters the retry
        # loop below as its first attempt, so nothing is sent twice and the budget counts it.
        started = time.monotonic()
        generation = self._token.generation
        pending: _Response | _Transient | None
        try:
            pending = await self._send(method, url, data, headers)
        except _Transient as exc:
            pending = exc
        else:
            if 200 <= pending.status < 300:
                return pending
        retry = self._options.retry
        refreshed = False
        retrying = AsyncRetrying(
            stop=stop_after_attempt(retry.attempts)
            | stop_before_delay(retry.max_seconds - (time.monotonic() - started)),
            wait=self._wait,
            retry=retry_if_exception_type(_Transient),
            before_sleep=self._before_sleep,
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    if pending is not None:  # the first attempt, already made
                        outcome, pending = pending, None
                        if isinstance(outcome, _Transient):
                            raise outcome
                        response = outcome
                    else:
                        generation = self._token.generation
                        response = await self._send(method, url, data, headers)
                    if response.status == 401 and self._token.refreshable and not refreshed:
                        refreshed = True
                        await self._token.refresh(generation)
                        raise _Transient("auth_refresh", "401 Unauthorized", retry_after=0.0)
                    if 200 <= response.status < 300:
                        return response
                    if response.status in _RETRY_STATUSES or response.status >= 500:
                        raise _Transient(
                            str(response.status), f"HTTP {response.status}: {self._excerpt(response.text)}"
                        )
                    after_refresh = " (after re-reading the token)" if response.status == 401 and refreshed else ""
                    raise PermanentError(
                        f"{purpose} {method} {_where(url)} -> HTTP {response.status}{after_refresh}: "
                        f"{self._excerpt(response.text)}"
                    )
        except _Transient as exc:
            attempts = retrying.statistics.get("attempt_number", retry.attempts)
            raise RetryableError(
                f"{purpose} {method} {_where(url)} failed after {attempts} attempts: {exc.detail}"
            ) from None
        raise AssertionError("unreachable: tenacity either returns or raises")  # pragma: no cover

    async def _send(self, method: str, url: str, data: bytes | None, headers: CIMultiDict[str]) -> _Response:
        if self._session is None or self._session.closed:
            self._session = http.acquire()
        sending = CIMultiDict(headers)
        proxy, proxy_auth = await http.proxy_for(url)
        if self._token.value:
            sending["Authorization"] = f"Bearer {self._token.value}"
        started = time.perf_counter()
        status_label = "error"
        try:
            async with self._session.request(
                method,
                url,
                data=data,
                headers=sending,
                ssl=self._ssl,
                proxy=proxy,
                proxy_auth=proxy_auth,
                timeout=self._timeout,
            ) as response:
                status_label = str(response.status)
                body = await response.content.read(_MAX_BODY)
                try:
                    text = body.decode(response.charset or "utf-8", errors="replace")
                except LookupError:
                    text = body.decode("utf-8", errors="replace")
                if response.status in _RETRY_STATUSES or response.status >= 500:
                    retry_after = _retry_after(response.headers.get("Retry-After"))
                    if retry_after is not None:
                        raise _Transient(
                            str(response.status),
                            f"HTTP {response.status} (Retry-After {retry_after:g}s): {self._excerpt(text)}",
                            retry_after,
                        )
                return _Response(response.status, text)
        except TimeoutError:
            status_label = "timeout"
            raise _Transient("timeout", f"no response within {self._options.timeout_seconds:g}s") from None
        except aiohttp.ClientError as exc:
            status_label = "connection_error"
            detail = mask_secrets(f"{type(exc).__name__}: {exc}")
            raise _Transient("connection_error", detail) from None
        finally:
            self._count_request(status_label, time.perf_counter() - started)

    def _count_request(self, status_label: str, seconds: float) -> None:
        if (counter := self._requests_by_status.get(status_label)) is None:
            counter = self._metrics.http_requests.labels(self._route, status_label)
            self._requests_by_status[status_label] = counter
        counter.inc()
        if self._duration is None:
            self._duration = self._metrics.http_duration.labels(self._route)
        self._duration.observe(seconds)

    def _wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome is not None else None
        if isinstance(error, _Transient) and error.retry_after is not None:
            return error.retry_after
        retry = self._options.retry
        return equal_jitter(state.attempt_number, retry.initial_seconds, retry.max_wait_seconds)

    def _before_sleep(self, state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome is not None else None
        reason = error.reason if isinstance(error, _Transient) else "error"
        self._metrics.http_retries.labels(self._route, reason).inc()
        _log.warning(
            "http request will be retried",
            reason=reason,
            detail=str(error) if error is not None else None,
            attempt=state.attempt_number,
            retry_in_seconds=round(state.upcoming_sleep, 2),
        )

    def _excerpt(self, text: str) -> str:
        text = " ".join(text.split())
        if self._token.value:
            text = text.replace(self._token.value, MASK)
        text = mask_secrets(text)
        return text if len(text) <= _EXCERPT else text[: _EXCERPT - 3] + "..."
