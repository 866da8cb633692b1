"""A fake business service on loopback, for tests that probe something real.

``Target`` is a real aiohttp server playing a payment, login or CRM system. Tests switch it
between modes to make it fail the ways real systems do::

    async with Target() as target:
        url = target.url_for("/healthz")     # http://127.0.0.1:PORT/healthz
        await target.set_mode(Mode.ERROR)    # now every route answers 500

Routes:

- ``GET|HEAD /healthz``: ``200`` JSON ``{"status": "up", "db": "ok", "items": [...]}``.
- ``POST /login``: JSON or form ``{"username", "password"}`` (see ``USERNAME``/``PASSWORD``).
  Good credentials answer ``{"token": ...}`` and set a ``session`` cookie; bad ones ``401``.
  With ``?next=/path`` it answers ``303 See Other`` to that path instead (cookie still set).
- ``GET /account``: ``200`` ``"Welcome Alice"`` when signed in, else ``401`` ``"Please sign in"``.
  ``auth`` decides what counts as signed in: the session cookie, the bearer token, or either.
- ``GET /big``: a body of ``BIG_BODY_SIZE`` bytes whose only ``ok`` is at its very end.

Modes (``Mode``):

- ``healthy``: as above.
- ``500``: every route answers ``500 internal error``.
- ``slow``: every request waits until the mode changes or the target stops (at most
  ``SLOW_FOR`` seconds), then answers as healthy. Tests never wait for it: the probe's
  timeout ends the wait on the client side.
- ``refused``: nothing listens on the port and open connections are closed, so connecting
  is refused. The URL stays the same and comes back when the mode changes.
- ``wrong-body``: ``/healthz`` answers ``200`` with a maintenance page (no ``ok``, not JSON)
  and ``/account`` answers ``200 "Please sign in"`` (a soft failure).
- ``wrong-json``: ``/healthz`` says ``{"status": "down", ...}`` (still containing ``ok``) and
  ``/login`` answers without a ``token`` field.

``delay`` (seconds, default 0) makes every answer wait that long on the server side first, for
latency checks. ``requests`` records ``"METHOD /path"`` for every request the target received.
"""

from __future__ import annotations

import asyncio
import secrets
import ssl
from enum import StrEnum
from types import TracebackType
from typing import Literal

from aiohttp import web
from aiohttp.typedefs import Handler

USERNAME = "alice"
PASSWORD = "correct horse battery staple"
WELCOME = "Welcome Alice"
BIG_BODY_SIZE = 2 * 1024 * 1024
SLOW_FOR = 30.0

Auth = Literal["cookie", "bearer", "either"]


class Mode(StrEnum):
    HEALTHY = "healthy"
    ERROR = "500"
    SLOW = "slow"
    REFUSED = "refused"
    WRONG_BODY = "wrong-body"
    WRONG_JSON = "wrong-json"


class Target:
    """A fake service on 127.0.0.1; use as ``async with Target(...) as target``.

    ``auth`` is what ``/account`` accepts; ``ssl_context`` (a server context) makes it HTTPS.
    """

    def __init__(
        self,
        *,
        auth: Auth = "cookie",
        ssl_context: ssl.SSLContext | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self.auth: Auth = auth
        self.delay = 0.0
        self.requests: list[str] = []
        self._ssl_context = ssl_context
        self._host = host
        self._port = 0
        self._mode = Mode.HEALTHY
        self._released = asyncio.Event()
        self._sessions: set[str] = set()
        self._tokens: set[str] = set()
        app = web.Application(middlewares=[self._apply_mode])
        app.router.add_get("/healthz", self._healthz)  # also answers HEAD
        app.router.add_post("/login", self._login)
        app.router.add_get("/account", self._account)
        app.router.add_get("/big", self._big)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
        self._site: web.TCPSite | None = None

    @property
    def url(self) -> str:
        """The base URL, without a trailing slash: ``http://127.0.0.1:PORT``."""
        scheme = "https" if self._ssl_context is not None else "http"
        return f"{scheme}://{self._host}:{self._port}"

    def url_for(self, path: str) -> str:
        return self.url + path

    @property
    def mode(self) -> Mode:
        return self._mode

    async def set_mode(self, mode: Mode | str) -> None:
        """Switch behaviour; returns once the new mode is in force (``refused`` included)."""
        mode = Mode(mode)
        if mode == self._mode:
            return
        previous, self._mode = self._mode, mode
        if previous == Mode.SLOW:
            self._released.set()
        if mode == Mode.SLOW:
            self._released = asyncio.Event()
        if mode == Mode.REFUSED:
            await self._stop_listening()
        elif previous == Mode.REFUSED:
            await self._listen()

    async def start(self) -> None:
        await self._runner.setup()
        await self._listen()

    async def stop(self) -> None:
        self._released.set()
        await self._runner.cleanup()

    async def __aenter__(self) -> Target:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def _listen(self) -> None:
        self._site = web.TCPSite(
            self._runner, self._host, self._port, ssl_context=self._ssl_context
        )
        await self._site.start()
        self._port = self._runner.addresses[0][1]

    async def _stop_listening(self) -> None:
        self._released.set()
        if self._site is not None:
            await self._site.stop()
            self._site = None
        server = self._runner.server
        if server is not None:
            # Keep-alive connections would otherwise still reach us: close them too.
            server.pre_shutdown()
            await server.shutdown(1.0)

    @web.middleware
    async def _apply_mode(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        self.requests.append(f"{request.method} {request.path}")
        if self._mode == Mode.ERROR:
            return web.Response(status=500, text="internal error")
        if self.delay:
            await asyncio.sleep(self.delay)
        if self._mode == Mode.SLOW:
            try:
                async with asyncio.timeout(SLOW_FOR):
                    await self._released.wait()
            except TimeoutError:
                pass
        return await handler(request)

    async def _healthz(self, request: web.Request) -> web.Response:
        if self._mode == Mode.WRONG_BODY:
            return web.Response(text="<html>Down for maintenance</html>", content_type="text/html")
        status = "down" if self._mode == Mode.WRONG_JSON else "up"
        return web.json_response(
            {
                "status": status,
                "db": "ok",
                "items": [{"name": "db", "latency_ms": 3}, {"name": "queue", "latency_ms": 7}],
            }
        )

    async def _login(self, request: web.Request) -> web.StreamResponse:
        if request.content_type == "application/json":
            given = await request.json()
            credentials = given if isinstance(given, dict) else {}
        else:
            credentials = dict(await request.post())
        if credentials.get("username") != USERNAME or credentials.get("password") != PASSWORD:
            return web.json_response({"error": "bad credentials"}, status=401)
        session, token = secrets.token_hex(8), secrets.token_hex(8)
        self._sessions.add(session)
        self._tokens.add(token)
        answer: web.StreamResponse
        if "next" in request.query:
            answer = web.Response(status=303, headers={"Location": request.query["next"]})
        elif self._mode == Mode.WRONG_JSON:
            answer = web.json_response({"user": USERNAME})
        else:
            answer = web.json_response({"token": token, "user": {"name": "Alice"}})
        answer.set_cookie("session", session, httponly=True, path="/")
        return answer

    async def _account(self, request: web.Request) -> web.Response:
        by_cookie = request.cookies.get("session") in self._sessions
        header = request.headers.get("Authorization", "")
        by_token = header.startswith("Bearer ") and header.removeprefix("Bearer ") in self._tokens
        signed_in = {"cookie": by_cookie, "bearer": by_token, "either": by_cookie or by_token}
        if self._mode == Mode.WRONG_BODY:
            return web.Response(text="Please sign in")
        if not signed_in[self.auth]:
            return web.Response(status=401, text="Please sign in")
        return web.Response(text=WELCOME)

    async def _big(self, request: web.Request) -> web.Response:
        return web.Response(body=b"x" * (BIG_BODY_SIZE - 2) + b"ok")
