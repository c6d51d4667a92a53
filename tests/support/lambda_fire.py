"""The Fire-Insights-like server of tests/support/fire_server.py, listening where a Lambda function can reach it:
on the Docker bridge's address of this host (``LambdaBed.bridge``), not on 127.0.0.1."""

from __future__ import annotations

from aiohttp import web

from tests.support.fire_server import EXECUTE, STATUS, FireServer


class BridgeFireServer(FireServer):
    def __init__(self, token: str, address: str) -> None:
        super().__init__(token)
        self.address = address
        self.url = f"http://{address}:{self.port}"

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post(EXECUTE, self._execute)
        app.router.add_get(STATUS, self._status)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.address, self.port).start()
