"""The HTTP server: health for the orchestrator, /metrics for Prometheus."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

if TYPE_CHECKING:
    from monitor.app import App

APP_KEY: web.AppKey[App] = web.AppKey("monitor")


def build_web_app(monitor_app: App) -> web.Application:
    app = web.Application(client_max_size=1024 * 1024)
    app[APP_KEY] = monitor_app
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    return app


async def healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok\n")


async def readyz(request: web.Request) -> web.Response:
    problem = request.app[APP_KEY].ready()
    if problem:
        return web.Response(status=503, text=f"not ready: {problem}\n")
    return web.Response(text="ready\n")


async def metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[APP_KEY].metrics.registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
