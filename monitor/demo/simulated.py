"""Simulated business systems for ``monitor demo``: a payment service, a login service and a CRM.

Each runs in the caller's event loop on a free 127.0.0.1 port (or the host and ports given, as
``monitor simulate`` does) and answers the shipped checks
(``checks/payment.yaml``, ``checks/login.yaml``, ``checks/crm.yaml``) the way a real one would,
until it is told to fail::

    async with SimulatedSystems() as systems:
        environ = systems.environ()        # PAYMENT_URL, LOGIN_URL, CRM_HOST, CRM_PORT, ...
        systems.payment.fail()             # /healthz now answers 503
        systems.payment.recover()

- payment: ``GET /healthz`` answers ``200 {"status": "up", "db": "ok"}``; failing, ``503``
  ``{"status": "down", "error": "card processor not responding"}``.
- login: ``POST /login`` with ``{"username": "monitor", "password": ...}`` answers
  ``{"token": ...}``, and ``GET /account`` with that bearer token answers ``Welcome back``;
  failing, every route answers ``502 session store unavailable``.
- crm: a TCP service that greets and hangs up; failing, it stops listening (connection refused)
  and comes back on the same port.
"""

from __future__ import annotations

import asyncio
import secrets
from types import TracebackType

from aiohttp import web
from aiohttp.typedefs import Handler

PROBE_USERNAME = "monitor"
DEFAULT_PROBE_PASSWORD = "demo-password"


class SimulatedHttpSystem:
    """An aiohttp server on loopback that answers healthily until ``fail()``."""

    name = "system"
    failure_status = 503
    failure_text = "unavailable"

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.failing = False
        self.requests = 0
        app = web.Application(middlewares=[self._while_failing])
        self.add_routes(app)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        self._port = port

    def add_routes(self, app: web.Application) -> None:
        raise NotImplementedError

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        """The base URL, without a trailing slash."""
        return f"http://{_bracketed(self.host)}:{self._port}"

    def fail(self) -> None:
        """From now on every request gets the failure answer."""
        self.failing = True

    def recover(self) -> None:
        self.failing = False

    async def start(self) -> None:
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self._port)
        await site.start()
        self._port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        await self._runner.cleanup()

    @web.middleware
    async def _while_failing(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        self.requests += 1
        if self.failing:
            return self.failure_response()
        return await handler(request)

    def failure_response(self) -> web.Response:
        return web.Response(status=self.failure_status, text=self.failure_text)


class SimulatedPayment(SimulatedHttpSystem):
    name = "payment"

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/healthz", self._healthz)

    def failure_response(self) -> web.Response:
        return web.json_response(
            {"status": "down", "error": "card processor not responding"}, status=503
        )

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "up", "db": "ok"})


class SimulatedLogin(SimulatedHttpSystem):
    name = "login"
    failure_status = 502
    failure_text = "session store unavailable"

    def __init__(
        self, password: str = DEFAULT_PROBE_PASSWORD, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.password = password
        self._tokens: set[str] = set()
        super().__init__(host, port)

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/login", self._login)
        app.router.add_get("/account", self._account)

    async def _login(self, request: web.Request) -> web.Response:
        try:
            given = await request.json()
        except ValueError:
            given = None
        if (
            not isinstance(given, dict)
            or given.get("username") != PROBE_USERNAME
            or given.get("password") != self.password
        ):
            return web.json_response({"error": "wrong username or password"}, status=401)
        token = secrets.token_hex(8)
        self._tokens.add(token)
        return web.json_response({"token": token})

    async def _account(self, request: web.Request) -> web.Response:
        header = request.headers.get("Authorization", "")
        if header.removeprefix("Bearer ") not in self._tokens:
            return web.Response(status=401, text="Please sign in")
        return web.Response(text=f"Welcome back, {PROBE_USERNAME}")


class SimulatedCrm:
    """A TCP service that greets every connection and hangs up; failing, nothing listens."""

    name = "crm"

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self._port = port
        self._server: asyncio.Server | None = None
        self.connections = 0

    @property
    def port(self) -> int:
        return self._port

    @property
    def failing(self) -> bool:
        return self._server is None

    async def start(self) -> None:
        if self._server is not None:
            return
        self._server = await asyncio.start_server(
            self._greet, self.host, self._port, reuse_address=True
        )
        self._port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
            await server.wait_closed()

    async def fail(self) -> None:
        """Stop listening: connecting is refused until ``recover``."""
        await self.stop()

    async def recover(self) -> None:
        """Listen again on the same port."""
        await self.start()

    async def _greet(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            writer.write(b"CRM ready\r\n")
            await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()


class SimulatedSystems:
    """The three systems the shipped checks watch, started and stopped together: on free
    loopback ports, or on ``host`` and ``ports`` (payment's, login's, crm's; 0 is a free one)."""

    def __init__(
        self,
        probe_password: str | None = None,
        *,
        host: str = "127.0.0.1",
        ports: tuple[int, int, int] = (0, 0, 0),
    ) -> None:
        self.probe_password = probe_password or secrets.token_urlsafe(12)
        self.payment = SimulatedPayment(host, ports[0])
        self.login = SimulatedLogin(self.probe_password, host, ports[1])
        self.crm = SimulatedCrm(host, ports[2])

    def environ(self) -> dict[str, str]:
        """The variables the shipped checks read to find these systems."""
        return {
            "PAYMENT_URL": self.payment.url,
            "LOGIN_URL": self.login.url,
            "LOGIN_PROBE_PASSWORD": self.probe_password,
            "CRM_HOST": self.crm.host,
            "CRM_PORT": str(self.crm.port),
        }

    def describe(self) -> list[str]:
        """One line per system: what it is and where it listens."""
        return [
            f"payment  {self.payment.url}/healthz",
            f"login    {self.login.url}/login, then /account",
            f"crm      tcp {_bracketed(self.crm.host)}:{self.crm.port}",
        ]

    async def start(self) -> None:
        await self.payment.start()
        await self.login.start()
        await self.crm.start()

    async def stop(self) -> None:
        await self.payment.stop()
        await self.login.stop()
        await self.crm.stop()

    async def __aenter__(self) -> SimulatedSystems:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()


def _bracketed(host: str) -> str:
    """``host`` as a URL writes it: an IPv6 address in brackets."""
    return f"[{host}]" if ":" in host else host
