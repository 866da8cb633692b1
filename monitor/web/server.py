"""The HTTP server: health for the orchestrator, /metrics for Prometheus, the JSON API
(``monitor.web.api``), its OpenAPI document, and the public status page at ``/``."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from monitor.web.api import ROUTES, add_routes
from monitor.web.openapi import OPENAPI_PATH, openapi_document
from monitor.web.plumbing import BODY_LIMIT, errors_as_json
from monitor.web.services import SERVICES, Services
from monitor.web.statuspage import StatusPage

__all__ = ["PAGE_HEADERS", "SERVICES", "build_web_app"]

PAGE_KEY: web.AppKey[StatusPage] = web.AppKey("status_page", StatusPage)
OPENAPI_KEY: web.AppKey[dict[str, Any]] = web.AppKey("openapi", dict)

# The page is static HTML with inline CSS: forbid everything else, so even a value that slipped
# past escaping could not run a script.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def build_web_app(services: Services) -> web.Application:
    """One aiohttp application serving every route of the monitor from ``services``."""
    # API bodies are read by monitor.web.plumbing with their own caps; this covers the rest.
    app = web.Application(client_max_size=BODY_LIMIT, middlewares=[errors_as_json])
    app[SERVICES] = services
    app[PAGE_KEY] = StatusPage()
    app[OPENAPI_KEY] = openapi_document(ROUTES)
    app.router.add_get("/", status_page)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get(OPENAPI_PATH, openapi)
    add_routes(app.router)
    return app


async def healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok\n")


async def readyz(request: web.Request) -> web.Response:
    """200 while the monitor can do its job, with any warnings below; 503 only while it starts
    or stops (see ``App.ready``: its own trouble must never take a sidecar's pod out of
    service)."""
    services = request.app[SERVICES]
    problem = services.ready()
    if problem:
        return web.Response(status=503, text=f"not ready: {problem}\n")
    store = await services.store_problem()
    warnings = "".join(f"warning: {w}\n" for w in services.warnings(store))
    return web.Response(text=f"ready\n{warnings}")


async def metrics(request: web.Request) -> web.Response:
    body = await request.app[SERVICES].metrics_page()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(request.app[OPENAPI_KEY])


async def status_page(request: web.Request) -> web.Response:
    html = await request.app[PAGE_KEY].render(request.app[SERVICES])
    return web.Response(text=html, content_type="text/html", headers=PAGE_HEADERS)
