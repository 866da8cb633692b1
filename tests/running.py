"""A real App started in the test's event loop on a fake clock, with an HTTP client on its web
application: one replica of the running monitor, as the in-process tests drive it.

By default the App ticks only when a test ticks it and watches no files; what it runs on (its
checks, database and environment) is the test's.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient, TestServer
from clock import FakeClock
from world import MESSAGES

from monitor.app import App, Options
from monitor.demo.mailcatcher import MailCatcher
from monitor.web.server import build_web_app

TOKEN = "t0ken-for-tests"


def sending_to(catcher: MailCatcher) -> dict[str, str]:
    """The environment that has an App send its mail to ``catcher``."""
    return {"MONITOR_SMTP_URL": catcher.url, "MONITOR_SMTP_FROM": "status@example.com"}


@dataclass
class Replica:
    """A started App, with an HTTP client on its web application."""

    app: App
    client: TestClient[web.Request, web.Application]

    async def call(
        self, method: str, path: str, body: object = None, token: str | None = TOKEN
    ) -> ClientResponse:
        """``method`` on ``path`` with ``body`` (if any) as JSON, and ``token`` as the bearer
        (None: no Authorization header)."""
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        if body is None:
            return await self.client.request(method, path, headers=headers)
        headers["Content-Type"] = "application/json"
        # A file-like body: aiohttp warns (an error here) about large bytes sent in one go.
        data = io.BytesIO(json.dumps(body).encode())
        return await self.client.request(method, path, data=data, headers=headers)

    async def get_json(self, path: str) -> Any:
        """What GET ``path`` answers, which must be 200, read as JSON."""
        response = await self.client.get(path)
        assert response.status == 200, await response.text()
        return await response.json()

    async def metrics(self) -> str:
        """The /metrics page."""
        return await (await self.client.get("/metrics")).text()

    async def metric(self, name: str) -> float:
        """The value of the unlabelled metric ``name`` on /metrics."""
        line = next(x for x in (await self.metrics()).splitlines() if x.startswith(name + " "))
        return float(line.split()[1])


async def start_replica(
    stack: AsyncExitStack,
    checks: Path,
    db: str | Path,
    clock: FakeClock,
    environ: Mapping[str, str],
    *,
    messages: Path = MESSAGES,
    name: str | None = None,
    tick_every: float = 3600.0,
    watch_files: bool = False,
) -> Replica:
    """An App on ``checks`` and ``db`` at ``clock``'s time, with ``environ`` (and ``name`` as
    its MONITOR_REPLICA), started with its client; ``stack`` closes the client, then stops it.
    With the default ``tick_every`` it ticks only when the test ticks it."""
    app = App(
        # The test's client serves the web application (no serve_http): listen is only logged.
        Options(config=checks, messages=messages, db=db, listen=":0"),
        clock=clock,
        environ={**environ, **({"MONITOR_REPLICA": name} if name is not None else {})},
        serve_http=False,
        watch_files=watch_files,
        tick_every=tick_every,
    )
    await app.start()
    stack.push_async_callback(app.stop)
    client = TestClient(TestServer(build_web_app(app.web_services)))
    await client.start_server()
    stack.push_async_callback(client.close)
    return Replica(app, client)
