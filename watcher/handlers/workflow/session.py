"""One aiohttp ``ClientSession`` per process (per event loop), shared by every HTTP handler so that
connections to the same API are reused. Handlers ``acquire`` it when they first call out and
``release`` it when they close; the last release closes it. TLS is verified by default; a handler
with its own CA bundle passes an ``ssl.SSLContext`` per request (``ssl_context``).

Proxies come from the environment (``HTTPS_PROXY``, ``HTTP_PROXY``, ``NO_PROXY``, credentials in
the proxy URL or ``~/.netrc``), looked up once per scheme and host (``proxy_for``). The session does
not ``trust_env``: aiohttp would then read the environment and ``~/.netrc`` again, in a thread, on
every request (two thread hops per call: half the throughput of a busy workflow route), and a
``~/.netrc`` entry for the API's host would clash with the handler's own Authorization header."""

from __future__ import annotations

import asyncio
import ssl
from functools import lru_cache
from urllib.parse import urlsplit

import aiohttp
from aiohttp.helpers import get_env_proxy_for_url
from yarl import URL

from watcher import __version__

USER_AGENT = f"watcher/{__version__}"
_session: aiohttp.ClientSession | None = None
_loop: asyncio.AbstractEventLoop | None = None
_users = 0
_proxies: dict[tuple[str, str], tuple[str | None, aiohttp.BasicAuth | None]] = {}


def acquire() -> aiohttp.ClientSession:
    """The shared session of the running loop, created on first use."""
    global _session, _loop, _users
    loop = asyncio.get_running_loop()
    if _session is None or _session.closed or _loop is not loop:
        connector = aiohttp.TCPConnector(limit=256, limit_per_host=0, ttl_dns_cache=300)
        _session = aiohttp.ClientSession(
            connector=connector,
            headers={"User-Agent": USER_AGENT},
            trust_env=False,  # proxies: proxy_for, once per host
            raise_for_status=False,
        )
        _loop, _users = loop, 0
    _users += 1
    return _session


async def release(session: aiohttp.ClientSession) -> None:
    """A handler is done with ``session``; the last one closes it."""
    global _session, _users
    if session is not _session:
        if not session.closed:
            await session.close()
        return
    _users -= 1
    if _users <= 0 and _session is not None:
        closing, _session = _session, None
        await closing.close()


@lru_cache(maxsize=16)
def ssl_context(ca_bundle: str | None, verify: bool = True) -> ssl.SSLContext | bool:
    """What to pass as ``ssl=``: default verification (True), a context trusting ``ca_bundle`` as
    well as the system store, or False when verification is off."""
    if not verify:
        return False
    if ca_bundle is None:
        return True
    context = ssl.create_default_context()
    context.load_verify_locations(cafile=ca_bundle)
    return context


async def proxy_for(url: str) -> tuple[str | None, aiohttp.BasicAuth | None]:
    """The proxy (and its credentials) the environment sets for ``url``, or (None, None); read
    once per scheme and host, in a thread (it may read ``~/.netrc``)."""
    parts = urlsplit(url)
    key = (parts.scheme, parts.hostname or "")
    if key not in _proxies:
        _proxies[key] = await asyncio.to_thread(_env_proxy, *key)
    return _proxies[key]


def _env_proxy(scheme: str, host: str) -> tuple[str | None, aiohttp.BasicAuth | None]:
    try:
        proxy, auth = get_env_proxy_for_url(URL.build(scheme=scheme, host=host))
    except LookupError:  # none set, or NO_PROXY names the host
        return None, None
    except ValueError:  # no valid host: aiohttp refuses the URL itself, with its own error
        return None, None
    return str(proxy), auth
