"""`monitor run` as a process a test can SIGKILL at a chosen moment, then start again.

A moment is recognised by what the outside world sees, never by time: a line of the monitor's
JSON log (``kill_on_log``), or anything the test's own servers notice (a probe reaching a
``Target``, a message reaching the ``MailCatcher``), which call ``kill`` from their callbacks::

    monitor = Killable(env, api_token=TOKEN)
    monitor.kill_on_log("DOWN transition", lambda line: line.get("current") == "DOWN")
    await monitor.start()
    await monitor.killed("DOWN transition")   # SIGKILLed the moment the line was written
    await monitor.start()                      # the same database, a new process
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp
from process import REPO, monitor_env

LogLine = dict[str, Any]
DEADLINE = 60.0  # generous: a slow machine makes a test slower, never red


class Killable:
    """One ``monitor run`` at a time on the same database and port, killed and restarted."""

    def __init__(self, env: Mapping[str, str], base_url: str, api_token: str = "") -> None:
        self.env = dict(env)
        self.base_url = base_url
        self.api_token = api_token
        self.lines: list[LogLine] = []  # every incarnation's log, in order
        self.kills: list[str] = []  # the moments at which the process was killed, in order
        self.process: asyncio.subprocess.Process | None = None
        self._watch: tuple[str, Callable[[LogLine], bool]] | None = None
        self._reader: asyncio.Task[None] | None = None

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def start(self) -> None:
        """Start ``monitor run`` (it is not ready yet: see ``ready``)."""
        assert not self.alive, "the previous process is still running"
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "monitor.cli",
            "run",
            env=monitor_env(self.env),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            cwd=REPO,
            limit=2**20,
        )
        self._reader = asyncio.create_task(self._read(self.process))

    def kill(self, moment: str) -> None:
        """SIGKILL the running process now, naming the moment; no-op if it is not running."""
        if not self.alive:
            return
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()
            self.kills.append(moment)

    def kill_on_log(self, moment: str, matches: Callable[[LogLine], bool]) -> None:
        """Kill the process as soon as it logs a line that ``matches`` (once)."""
        self._watch = (moment, matches)

    async def killed(self, moment: str, deadline: float = DEADLINE) -> None:
        """Wait until the process was killed at ``moment``; fail if it never was."""
        assert self.process is not None
        try:
            async with asyncio.timeout(deadline):
                await self.process.wait()
                if self._reader is not None:
                    await self._reader
        except TimeoutError:
            raise AssertionError(
                f"the moment {moment!r} never came in {deadline:.0f} s; log tail:\n{self.tail()}"
            ) from None
        finally:
            self._watch = None
        assert self.process.returncode == -9, (
            f"exited with {self.process.returncode}, not killed; log tail:\n{self.tail()}"
        )
        assert self.kills[-1:] == [moment], (self.kills, moment)

    async def stop(self) -> None:
        """SIGTERM (as an orchestrator stops it) and wait; kill it if it hangs."""
        if self.process is None:
            return
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.terminate()
        try:
            async with asyncio.timeout(DEADLINE):
                await self.process.wait()
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
        if self._reader is not None:
            await self._reader

    def tail(self, count: int = 40) -> str:
        state = "not started"
        if self.process is not None:
            state = f"pid {self.process.pid}, " + (
                "running" if self.process.returncode is None else f"exit {self.process.returncode}"
            )
        lines = "\n".join(json.dumps(line) for line in self.lines[-count:])
        return f"({state})\n{lines}"

    def logged(self, event: str) -> list[LogLine]:
        return [line for line in self.lines if line.get("event") == event]

    async def _read(self, process: asyncio.subprocess.Process) -> None:
        assert process.stderr is not None
        while raw := await process.stderr.readline():
            text = raw.decode(errors="replace").rstrip("\n")
            try:
                line = json.loads(text)
            except ValueError:
                line = {"event": "(not JSON)", "text": text}
            if not isinstance(line, dict):
                line = {"event": "(not JSON)", "text": text}
            self.lines.append(line)
            if self._watch is not None and self._watch[1](line):
                moment, self._watch = self._watch[0], None
                self.kill(moment)

    # the HTTP API, polled while the process may be restarting ---------------------------

    async def get(self, path: str) -> Any:
        """GET a JSON document from the API; None while the process does not answer."""
        try:
            async with (
                aiohttp.ClientSession() as session,
                session.get(self.base_url + path, timeout=aiohttp.ClientTimeout(total=5)) as r,
            ):
                return await r.json() if r.status == 200 else None
        except (aiohttp.ClientError, TimeoutError):
            return None

    async def text(self, path: str) -> str:
        """GET ``path`` as text; "" while the process does not answer."""
        try:
            async with (
                aiohttp.ClientSession() as session,
                session.get(self.base_url + path, timeout=aiohttp.ClientTimeout(total=5)) as r,
            ):
                return await r.text()
        except (aiohttp.ClientError, TimeoutError):
            return ""

    async def post(self, path: str) -> tuple[int, str]:
        headers = {"Authorization": f"Bearer {self.api_token}"}
        async with (
            aiohttp.ClientSession() as session,
            session.post(self.base_url + path, headers=headers) as response,
        ):
            return response.status, await response.text()

    async def readyz(self) -> tuple[int, str]:
        """(status, body) of /readyz, or (0, why) while nothing answers."""
        try:
            async with (
                aiohttp.ClientSession() as session,
                session.get(self.base_url + "/readyz") as response,
            ):
                return response.status, await response.text()
        except aiohttp.ClientError as exc:
            return 0, repr(exc)


async def until(
    what: str,
    check: Callable[[], Any],
    deadline: float = DEADLINE,
    every: float = 0.05,
    explain: Callable[[], str] = str,
) -> Any:
    """Poll ``check`` (sync or async) until it returns something truthy, and return that.

    Fails after ``deadline`` seconds naming ``what``; polls at ``every`` s so a moment is seen
    soon after it comes. ``explain()`` adds to the failure message (a log tail, say).
    """
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if loop.time() > end:
            raise AssertionError(f"{what}: not so after {deadline:.0f} s\n{explain()}")
        await asyncio.sleep(every)
