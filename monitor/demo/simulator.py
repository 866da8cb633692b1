"""``monitor simulate``: the demo's simulated payment, login and CRM systems as a process of their
own (a container in deploy/docker-compose.yml, or a shell beside three local replicas), with an
HTTP control to break and mend each of them.

The control answers on ``--listen HOST:PORT``; payment, login and crm listen on the same host
and the next three ports. With the default 127.0.0.1:8080 those are 8081, 8082 and 8083, the
addresses the shipped check files fall back to, so they probe these systems with no variable
set. Port 0 takes four free ports instead (the lines printed at start say which).

- ``GET /``: one line per system: what it is, where it listens, whether it is failing.
- ``POST /-/fail/NAME``: NAME fails as in the demo (payment's ``/healthz`` answers 503, login
  answers 502, crm refuses connections) until ``POST /-/recover/NAME``.

The control has no token: it breaks pretend systems, so it guards nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Mapping

from aiohttp import web

from monitor.demo.simulated import (
    DEFAULT_PROBE_PASSWORD,
    SimulatedCrm,
    SimulatedHttpSystem,
    SimulatedSystems,
)
from monitor.text import unknown_name

FAILURES = {
    "payment": "/healthz answers 503",
    "login": "every route answers 502",
    "crm": "connections are refused",
}
_LAST_CONTROL_PORT = 65535 - len(FAILURES)


class CannotListen(Exception):
    """A system or the control could not listen on its address."""

    def __init__(self, what: str, address: str, error: OSError) -> None:
        # asyncio's bind error repeats the address; the errno's own words say it once.
        reason = os.strerror(error.errno).lower() if error.errno else str(error)
        super().__init__(f"{what} cannot listen on {address}: {reason}")


class Simulator:
    """The simulated systems and the control that breaks and mends them."""

    def __init__(self, host: str, port: int, probe_password: str) -> None:
        ports = (port + 1, port + 2, port + 3) if port else (0, 0, 0)
        self.systems = SimulatedSystems(probe_password, host=host, ports=ports)
        self.host = host
        self.port = port
        app = web.Application()
        app.router.add_get("/", self._show)
        app.router.add_post("/-/fail/{name}", self._fail)
        app.router.add_post("/-/recover/{name}", self._recover)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        self._by_name: dict[str, SimulatedHttpSystem | SimulatedCrm] = {
            "payment": self.systems.payment,
            "login": self.systems.login,
            "crm": self.systems.crm,
        }

    @property
    def control_url(self) -> str:
        return f"http://{self._address(self.port)}"

    def _address(self, port: int) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{port}"

    async def start(self) -> None:
        """Start the systems, then the control; CannotListen names the one that could not."""
        for offset, (name, system) in enumerate(self._by_name.items(), start=1):
            try:
                await system.start()
            except OSError as exc:
                port = self.port + offset if self.port else 0
                raise CannotListen(name, self._address(port), exc) from None
        await self._runner.setup()
        try:
            await web.TCPSite(self._runner, self.host, self.port).start()
        except OSError as exc:
            raise CannotListen("the control", self._address(self.port), exc) from None
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        await self._runner.cleanup()
        await self.systems.stop()

    def lines(self) -> list[str]:
        """What listens where, and how to break it."""
        return [
            *self.systems.describe(),
            f"control  {self.control_url}/: POST /-/fail/NAME and /-/recover/NAME "
            f"(NAME: {', '.join(self._by_name)})",
        ]

    def _state(self, name: str) -> str:
        return (
            f"{name} is failing: {FAILURES[name]}"
            if self._by_name[name].failing
            else f"{name} works"
        )

    async def _show(self, request: web.Request) -> web.Response:
        return web.Response(text="".join(f"{self._state(name)}\n" for name in self._by_name))

    async def _fail(self, request: web.Request) -> web.Response:
        return await self._change(request, failing=True)

    async def _recover(self, request: web.Request) -> web.Response:
        return await self._change(request, failing=False)

    async def _change(self, request: web.Request, *, failing: bool) -> web.Response:
        name = request.match_info["name"]
        system = self._by_name.get(name)
        if system is None:
            return web.Response(status=404, text=unknown_name("system", name, self._by_name) + "\n")
        if isinstance(system, SimulatedCrm):
            await (system.fail() if failing else system.recover())
        elif failing:
            system.fail()
        else:
            system.recover()
        said = self._state(name)
        print(said, flush=True)
        return web.Response(text=f"{said}\n")


def listen_address(listen: str) -> tuple[str, int]:
    """``HOST:PORT`` read, or ValueError saying what --listen must be."""
    host, _, port_text = listen.rpartition(":")
    port = int(port_text) if port_text.isascii() and port_text.isdigit() else -1
    if not host or not 0 <= port <= _LAST_CONTROL_PORT:
        raise ValueError(
            f"--listen must be HOST:PORT with a port from 0 to {_LAST_CONTROL_PORT} (the systems "
            f"take the next three), like 127.0.0.1:8080, not {listen!r}"
        )
    return host.strip("[]"), port


async def serve_simulated(listen: str, environ: Mapping[str, str] | None = None) -> int:
    """Serve the simulated systems and their control until SIGINT or SIGTERM: 0 then, 2 when
    ``listen`` is not an address or something cannot listen (saying which)."""
    try:
        host, port = listen_address(listen)
    except ValueError as exc:
        print(f"simulate: {exc}", file=sys.stderr)
        return 2
    env = os.environ if environ is None else environ
    # The password the shipped login check signs in with, read from the variable it reads.
    password = env.get("LOGIN_PROBE_PASSWORD") or DEFAULT_PROBE_PASSWORD
    simulator = Simulator(host, port, password)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    handled = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # Windows: Ctrl-C stays KeyboardInterrupt
            loop.add_signal_handler(sig, stop.set)
            handled.append(sig)
    try:
        try:
            await simulator.start()
        except CannotListen as exc:
            print(f"simulate: {exc}", file=sys.stderr)
            return 2
        print("Simulated systems, until Ctrl-C:", *simulator.lines(), sep="\n", flush=True)
        await stop.wait()
        return 0
    finally:
        await simulator.stop()
        for sig in handled:
            loop.remove_signal_handler(sig)
