"""HTTP probes: one request on the shared session, judged against ``HttpExpect``.

Bodies are read only as far as an expectation needs them, and never past ``MAX_BODY``.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Coroutine
from dataclasses import dataclass
from functools import lru_cache
from time import perf_counter
from typing import Any, Final

import aiohttp
from aiohttp.connector import Connection
from yarl import URL

from monitor.config import HttpClient, HttpExpect, HttpProbe
from monitor.probing.probes.reasons import (
    certificate_expiry,
    say_elapsed,
    show_value,
    too_slow,
    unexpected_status,
)

MAX_BODY: Final = 1024 * 1024
_CUT: Final = f"{MAX_BODY // 1024 // 1024} MiB"
# An unread body makes aiohttp close the connection; reading a small one keeps it reusable.
_DRAIN: Final = 64 * 1024
USER_AGENT: Final = "customer-uptime-monitor"


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing()


class TlsAwareResponse(aiohttp.ClientResponse):
    """A response that keeps its connection's TLS object.

    aiohttp hands a connection back to the pool (and ``resp.connection`` becomes ``None``) as
    soon as a small body has arrived, often before the caller sees the response; the peer
    certificate must be taken before that.
    """

    tls: ssl.SSLObject | None = None

    # Not a coroutine itself, so that every response does not go through one more.
    def start(self, connection: Connection) -> Coroutine[Any, Any, aiohttp.ClientResponse]:
        transport = connection.transport
        if transport is not None:
            self.tls = transport.get_extra_info("ssl_object")
        return super().start(connection)


def make_session(
    http: HttpClient, ssl_context: ssl.SSLContext | None = None
) -> aiohttp.ClientSession:
    """The one session all probes share; call it inside the running event loop.

    Certificates are verified (against ``ssl_context`` when given). The session keeps no
    cookies (each steps run has its own jar) and sets no timeout (each probe has its own).
    """
    connector = aiohttp.TCPConnector(
        limit=http.max_connections,
        limit_per_host=http.max_connections_per_host,
        force_close=not http.reuse_connections,
        ssl=ssl_context if ssl_context is not None else True,
    )
    return aiohttp.ClientSession(
        connector=connector,
        cookie_jar=aiohttp.DummyCookieJar(),
        timeout=aiohttp.ClientTimeout(total=None),
        response_class=TlsAwareResponse,
        headers={"User-Agent": USER_AGENT},
    )


@dataclass(slots=True)
class Answer:
    """What one request got back: enough to judge it, nothing more."""

    status: int
    body: bytes
    truncated: bool  # the body went on past MAX_BODY
    latency: float  # seconds from sending to the end of what was read
    cert_not_after: float | None  # epoch seconds; None when not asked for or not TLS
    _json: Any = MISSING

    def json(self) -> Any:
        """The body as JSON; raises ValueError when it is not."""
        if self._json is MISSING:
            self._json = json.loads(self.body)
        return self._json


async def fetch(
    session: aiohttp.ClientSession,
    method: str,
    url: str | URL,
    *,
    headers: dict[str, str],
    expect: HttpExpect,
    need_body: bool,
    data: Any = None,
    json_body: Any = None,
) -> Answer:
    """Send one request; read the body (up to MAX_BODY) only when ``need_body``."""
    started = perf_counter()
    async with session.request(method, url, headers=headers, data=data, json=json_body) as resp:
        not_after = _cert_not_after(resp) if expect.cert_valid_for is not None else None
        body, truncated = await _read(resp, MAX_BODY if need_body else _DRAIN)
        latency = perf_counter() - started
    if not need_body:
        body, truncated = b"", False
    return Answer(resp.status, body, truncated, latency, not_after)


def judge(answer: Answer, expect: HttpExpect, now: float) -> str | None:
    """The first way ``answer`` falls short of ``expect``, as a reason; None when it passes."""
    if answer.status not in expect.status:
        return unexpected_status(answer.status, expect.status)
    if expect.body_contains is not None and expect.body_contains.encode() not in answer.body:
        cut = f" in its first {_CUT}" if answer.truncated else ""
        return f"body lacks {expect.body_contains!r}{cut}"
    if expect.json_fields:
        try:
            document = answer.json()
        except ValueError:
            return "body is not JSON" + (
                f" (cut at {MAX_BODY // 1024 // 1024} MiB)" if answer.truncated else ""
            )
        for path, wanted in expect.json_fields.items():
            got = json_path(document, path)
            if got is MISSING:
                return f"json has no {path}"
            if not _same(got, wanted):
                return f"json {path} is {show_value(got)}, expected {show_value(wanted)}"
    if expect.max_latency is not None and answer.latency > expect.max_latency:
        return too_slow(answer.latency, expect.max_latency)
    if expect.cert_valid_for is not None:
        if answer.cert_not_after is None:
            return "no TLS certificate to check"
        remaining = answer.cert_not_after - now
        if remaining < expect.cert_valid_for:
            return certificate_expiry(remaining)
    return None


def json_path(document: Any, path: str) -> Any:
    """Follow a dotted path (``data.status``, ``items.0.name``); MISSING where it leads nowhere."""
    for part in path.split("."):
        if isinstance(document, dict):
            if part not in document:
                return MISSING
            document = document[part]
        elif isinstance(document, list) and part.isdigit() and int(part) < len(document):
            document = document[int(part)]
        else:
            return MISSING
    return document


@lru_cache(maxsize=65_536)
def parsed(url: str) -> URL:
    """``url`` parsed as aiohttp parses it; a check probes its URL over and over, and parsing it
    each time was 2% of the monitor's CPU."""
    return URL(url)


async def probe_http(
    session: aiohttp.ClientSession, spec: HttpProbe, now: float
) -> tuple[bool, str]:
    expect = spec.expect
    answer = await fetch(
        session,
        spec.method,
        parsed(spec.url),
        headers=spec.headers,
        expect=expect,
        need_body=expect.body_contains is not None or bool(expect.json_fields),
        data=spec.body,
    )
    failure = judge(answer, expect, now)
    if failure is not None:
        return False, failure
    return True, f"status {answer.status} in {say_elapsed(answer.latency)}"


def _same(got: Any, wanted: Any) -> bool:
    # JSON true is not YAML 1, and "200" is not 200.
    if isinstance(got, bool) or isinstance(wanted, bool):
        return type(got) is type(wanted) and got == wanted
    return bool(got == wanted)


def _cert_not_after(resp: aiohttp.ClientResponse) -> float | None:
    tls = resp.tls if isinstance(resp, TlsAwareResponse) else None
    if tls is None and resp.connection is not None and resp.connection.transport is not None:
        tls = resp.connection.transport.get_extra_info("ssl_object")
    if tls is None:
        return None
    cert = tls.getpeercert()
    not_after = cert.get("notAfter") if cert else None
    return ssl.cert_time_to_seconds(str(not_after)) if not_after else None


async def _read(resp: aiohttp.ClientResponse, limit: int) -> tuple[bytes, bool]:
    """Up to ``limit`` bytes of the body, and whether more was left unread."""
    content = resp.content
    first = await content.read(limit)
    if not first or content.at_eof():
        return first, False
    parts, size = [first], len(first)
    while size < limit:
        chunk = await content.read(limit - size)
        if not chunk:
            return b"".join(parts), False
        parts.append(chunk)
        size += len(chunk)
    return b"".join(parts), not content.at_eof()
