"""One aiohttp ``ClientSession`` per process (per event loop), shared by every HTTP handler so that
connections to the same API are reused. Handlers ``acquire`` it when they first call out and
``release`` it when they close; the last release closes it. TLS is verified by default; a handler
with its own CA bundle passes an ``ssl.SSLContext`` per request (``ssl_context``)."""

from __future__ import annotations

import asyncio
import ssl
from functools import lru_cache

import aiohttp

from watcher import __version__

USER_AGENT = f"watcher/{__version__}"
_session: aiohttp.ClientSession | None = None
_loop: asyncio.AbstractEventLoop | None = None
_users = 0


def acquire() -> aiohttp.ClientSession:
    """The shared session of the running loop, created on first use."""
    global _session, _loop, _users
    loop = asyncio.get_running_loop()
    if _session is None or _session.closed or _loop is not loop:
        connector = aiohttp.TCPConnector(limit=256, limit_per_host=0, ttl_dns_cache=300)
        _session = aiohttp.ClientSession(
            connector=connector,
            headers={"User-Agent": USER_AGENT},
            trust_env=True,  # HTTPS_PROXY / NO_PROXY as everywhere else
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
