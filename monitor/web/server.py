"""The HTTP server: health for the orchestrator, /metrics for Prometheus, the JSON API
(``monitor.web.api``), its OpenAPI document, and what customers see: the status page at ``/``,
a page per incident, the past incidents, the Atom feed and the JSON for embedding."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from monitor.model import SystemInfo
from monitor.web.api import ROUTES, add_routes
from monitor.web.feed import (
    FEED_PATH,
    JSON_PATH,
    atom,
    incident_entries,
    maintenance_entries,
    status_json,
)
from monitor.web.openapi import OPENAPI_PATH, openapi_document
from monitor.web.plumbing import BODY_LIMIT, errors_as_json
from monitor.web.public import NoSuchPage, PublicView, planned_work
from monitor.web.services import SERVICES, Services
from monitor.web.statuspage import StatusPage
from monitor.web.subscribing import add_subscription_routes, titles

__all__ = ["PAGE_HEADERS", "SERVICES", "build_web_app"]

PAGE_KEY: web.AppKey[StatusPage] = web.AppKey("status_page", StatusPage)
PUBLIC_KEY: web.AppKey[PublicView] = web.AppKey("public_view", PublicView)
OPENAPI_KEY: web.AppKey[dict[str, Any]] = web.AppKey("openapi", dict)
PUBLIC_HEADERS_KEY: web.AppKey[dict[str, str]] = web.AppKey("public_headers", dict)

# A page of static HTML with inline CSS: forbid everything else, so even a value that slipped
# past escaping could not run a script.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'self'; "
        "frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
# What other sites read (the feed, the JSON): anyone's page may fetch it, and a minute's copy
# is fresh enough for a page that refreshes every minute.
SHARED_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "public, max-age=60",
    "Vary": "Accept-Encoding",
}


def public_page_headers(script_hash: str) -> dict[str, str]:
    """``PAGE_HEADERS`` letting the status pages run one script: the one whose hash is given
    (``StatusPage.script_hash``), and nothing else."""
    policy = PAGE_HEADERS["Content-Security-Policy"].replace(
        "style-src 'unsafe-inline';", f"style-src 'unsafe-inline'; script-src '{script_hash}';"
    )
    return {**PAGE_HEADERS, "Content-Security-Policy": policy, "Vary": "Accept-Encoding"}


def build_web_app(services: Services) -> web.Application:
    """One aiohttp application serving every route of the monitor from ``services``."""
    # API bodies are read by monitor.web.plumbing with their own caps; this covers the rest.
    app = web.Application(client_max_size=BODY_LIMIT, middlewares=[errors_as_json])
    app[SERVICES] = services
    app[PAGE_KEY] = StatusPage()
    app[PUBLIC_KEY] = PublicView()
    app[PUBLIC_HEADERS_KEY] = public_page_headers(app[PAGE_KEY].script_hash)
    app[OPENAPI_KEY] = openapi_document(ROUTES)
    app.router.add_get("/", status_page)
    app.router.add_get("/incidents/{id}", incident_page)
    app.router.add_get("/history", history_page)
    app.router.add_get(FEED_PATH, feed)
    app.router.add_get(JSON_PATH, status_data)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get(OPENAPI_PATH, openapi)
    add_routes(app.router)
    add_subscription_routes(app, app[PAGE_KEY], app[PUBLIC_HEADERS_KEY])
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
    """The front page; ``?page=N`` for the Nth hundred services where there are more."""
    try:
        page = _number(request, "page")
        overview = await request.app[PUBLIC_KEY].overview(request.app[SERVICES], page or 1)
    except _Unusable as exc:
        return _missing(request, 400, str(exc))
    except NoSuchPage:
        return _missing(request, 404, f"There is no page {page} of services")
    services = request.app[SERVICES]
    offered = titles(_infos(services)) if services.subscriptions() is not None else []
    # In a thread: 100 services' bars are ~750 kB of HTML, tens of milliseconds to write.
    html = await asyncio.to_thread(request.app[PAGE_KEY].front, overview, offered)
    return _page(request, html)


async def incident_page(request: web.Request) -> web.Response:
    """One incident's page, with its public timeline; 404 for one not kept (or never there)."""
    number = request.match_info["id"]
    found = None
    if number.isascii() and number.isdigit() and len(number) <= 18:
        found = await request.app[PUBLIC_KEY].incident(request.app[SERVICES], int(number))
    if found is None:
        return _missing(request, 404, "There is no such incident")
    return _page(request, request.app[PAGE_KEY].incident(found))


async def history_page(request: web.Request) -> web.Response:
    """Resolved incidents, newest first, a page at a time: ``?before=ID`` for older ones."""
    try:
        before = _number(request, "before")
    except _Unusable as exc:
        return _missing(request, 400, str(exc))
    past = await request.app[PUBLIC_KEY].past(request.app[SERVICES], before)
    return _page(request, request.app[PAGE_KEY].history(past))


async def feed(request: web.Request) -> web.Response:
    """The Atom feed of the newest incidents."""
    services = request.app[SERVICES]
    org = services.config().settings.org
    base = _base(request)
    latest = await request.app[PUBLIC_KEY].latest(services)
    planned = [planned_work(w) for w in await services.planned_work()]
    entries = [*incident_entries(latest, base), *maintenance_entries(planned, base)]
    document = atom(org.name, org.message_domain, base, entries, services.clock.now())
    return _compressed(
        web.Response(
            body=document,
            content_type="application/atom+xml",
            charset="utf-8",
            headers=SHARED_HEADERS,
        )
    )


async def status_data(request: web.Request) -> web.Response:
    """The front page as JSON, for other sites to embed: every service, no bars."""
    overview = await request.app[PUBLIC_KEY].overview(request.app[SERVICES], None)
    text = await asyncio.to_thread(json.dumps, status_json(overview, _base(request)))
    return _compressed(
        web.Response(text=text, content_type="application/json", headers=SHARED_HEADERS)
    )


def _infos(services: Services) -> dict[str, SystemInfo]:
    return {n: SystemInfo(n, s.title) for n, s in services.config().systems.items()}


def _base(request: web.Request) -> str:
    """Where the feed's and the JSON's links lead: ``public_url`` when set (a Host header is
    the client's to write), else where they were asked for."""
    public = request.app[SERVICES].config().settings.public_url
    return public.rstrip("/") if public else str(request.url.origin())


class _Unusable(ValueError):
    """A query value the pages cannot use, saying why."""


def _number(request: web.Request, name: str) -> int | None:
    """The query's ``name`` as a whole number from 1; None when it is not given."""
    given = request.query.get(name)
    if given is None:
        return None
    if given.isascii() and given.isdigit() and len(given) <= 18 and int(given) >= 1:
        return int(given)
    raise _Unusable(f"{name} must be a whole number from 1")


def _page(request: web.Request, html: str, status: int = 200) -> web.Response:
    headers = request.app[PUBLIC_HEADERS_KEY]
    return _compressed(
        web.Response(text=html, status=status, content_type="text/html", headers=headers)
    )


def _compressed(response: web.Response) -> web.Response:
    """Gzipped for a client that takes it: 100 services' bars are half a megabyte of HTML, and
    the same few hundred bytes over and over."""
    response.enable_compression()
    return response


def _missing(request: web.Request, status: int, message: str) -> web.Response:
    org = request.app[SERVICES].config().settings.org.name
    return _page(request, request.app[PAGE_KEY].missing(org, message), status)
