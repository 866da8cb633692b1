"""The HTTP API of a running monitor, from the command line: what ``monitor incidents``,
``monitor incident ...`` and ``monitor report`` call instead of curl.

Every failure is a ``ClientError`` whose text on-call can act on and whose ``exit_code`` a
script can branch on: 1 when the monitor refused the request or has no such incident, 2 when
the monitor could not be reached or is not the one answering. Neither the token nor a password
in the URL is ever part of an error.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable, Mapping
from types import TracebackType
from typing import Any, TypeVar

import aiohttp
from pydantic import BaseModel, ValidationError
from yarl import URL

from monitor.probing.probes.reasons import explain
from monitor.web.maintenance import MaintenanceList, MaintenanceOut, MaintenanceRemoved
from monitor.web.models import IncidentDetail, IncidentList
from monitor.web.plumbing import TOKEN_VARIABLE

URL_VARIABLE = "MONITOR_URL"
LISTEN_VARIABLE = "MONITOR_LISTEN"
DEFAULT_LISTEN = "0.0.0.0:9108"
TIMEOUT = 10.0  # seconds for a whole request: the API answers in milliseconds when it is up

REFUSED = 1
UNREACHABLE = 2

M = TypeVar("M", bound=BaseModel)


class ClientError(Exception):
    """A request that did not work; ``exit_code`` is 1 (refused, not found) or 2 (unreachable)."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def monitor_url(given: str | None, environ: Mapping[str, str]) -> URL:
    """Where the monitor's API is: ``given`` (``--url``), else ``MONITOR_URL``, else the address
    ``monitor run`` listens on (``MONITOR_LISTEN``, default ``0.0.0.0:9108``) as seen from this
    machine: ``http://127.0.0.1:9108``. Raises ValueError naming the bad value."""
    if given:
        return _http_url(given, "--url")
    if environ.get(URL_VARIABLE):
        return _http_url(environ[URL_VARIABLE], URL_VARIABLE)
    return url_for_listen(environ.get(LISTEN_VARIABLE) or DEFAULT_LISTEN)


def url_for_listen(listen: str) -> URL:
    """``0.0.0.0:9108`` (every address) -> ``http://127.0.0.1:9108``; ``[::]:9108`` ->
    ``http://[::1]:9108``; a named host stays as it is."""
    host, _, port = listen.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not port.isascii() or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(
            f"{LISTEN_VARIABLE}: {listen!r} is not HOST:PORT; say where the monitor is with --url"
        )
    local = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}
    return URL.build(scheme="http", host=local.get(host, host), port=int(port))


def _http_url(text: str, where: str) -> URL:
    try:
        url = URL(text.strip())
    except ValueError:
        url = URL()
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError(
            f"{where}: {shown(url) if url.host else 'the value'} is not an http:// or https:// "
            "URL such as http://127.0.0.1:9108"
        )
    return url.with_path(url.path.rstrip("/")).with_query(None).with_fragment(None)


def shown(url: URL) -> str:
    """The URL as it may be printed: without a user name or password."""
    return str(url.with_user(None))


class MonitorClient:
    """The API at ``url``; write calls send ``token`` as a bearer token. Use ``async with``."""

    def __init__(self, url: URL, token: str | None, *, timeout: float = TIMEOUT) -> None:
        self.url = url
        self._token = token or None
        self._timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> MonitorClient:
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self._timeout), raise_for_status=False
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._session is not None:
            await self._session.close()

    async def incidents(self, status: str | None = None, limit: int = 50) -> IncidentList:
        """Incidents, newest first (only open or only resolved ones with ``status``)."""
        query = {"limit": str(limit)} | ({"status": status} if status else {})
        return await self._call("GET", "api/v1/incidents", IncidentList, query=query)

    async def incident(self, number: int) -> IncidentDetail:
        return await self._call("GET", f"api/v1/incidents/{number}", IncidentDetail)

    async def note(self, number: int, text: str, send: bool) -> IncidentDetail:
        """Set the public note; with ``send`` everyone told gets it as an update."""
        path = f"api/v1/incidents/{number}/note"
        return await self._call("POST", path, IncidentDetail, {"text": text, "send": send})

    async def explain(self, number: int, text: str) -> IncidentDetail:
        """Publish the incident's explanation (what happened, what changes)."""
        path = f"api/v1/incidents/{number}/explanation"
        return await self._call("POST", path, IncidentDetail, {"text": text})

    async def hold(self, number: int) -> IncidentDetail:
        return await self._call("POST", f"api/v1/incidents/{number}/hold", IncidentDetail)

    async def release(self, number: int) -> IncidentDetail:
        return await self._call("POST", f"api/v1/incidents/{number}/release", IncidentDetail)

    async def report(self, number: int, form: str, timezone: str | None = None) -> str:
        """The incident's post-incident report as ``form`` (json, markdown or html), its times
        in ``timezone`` (default: the monitor's default_timezone)."""
        query = {"format": form} | ({"timezone": timezone} if timezone else {})
        path = f"api/v1/incidents/{number}/report"
        status, media, raw = await self._request("GET", path, query=query)
        expected = {"json": "application/json", "markdown": "text/markdown", "html": "text/html"}
        if media != expected[form]:
            raise self._not_the_monitor(status)
        if form == "json":
            return json.dumps(_json(raw), indent=2, ensure_ascii=False)
        return raw.decode("utf-8", "replace")

    async def maintenance(self) -> MaintenanceList:
        """Every maintenance window, the files' and the API's."""
        return await self._call("GET", "api/v1/maintenance", MaintenanceList)

    async def add_maintenance(self, window: Mapping[str, object]) -> MaintenanceOut:
        """Plan work (a window as ``POST /api/v1/maintenance`` takes it); the window made."""
        return await self._call("POST", "api/v1/maintenance", MaintenanceOut, dict(window))

    async def remove_maintenance(self, window_id: str) -> MaintenanceRemoved:
        path = f"api/v1/maintenance/{window_id}"
        return await self._call("DELETE", path, MaintenanceRemoved)

    async def _call(
        self,
        method: str,
        path: str,
        answer: type[M],
        body: object = None,
        *,
        query: Mapping[str, str] | None = None,
    ) -> M:
        status, _, raw = await self._request(method, path, body, query=query)
        try:
            return answer.model_validate(_json(raw))
        except ValidationError:
            raise self._not_the_monitor(status) from None

    async def _request(
        self,
        method: str,
        path: str,
        body: object = None,
        *,
        query: Mapping[str, str] | None = None,
    ) -> tuple[int, str, bytes]:
        """The answer's status, media type and body; ClientError unless it is a success."""
        assert self._session is not None, "use MonitorClient in `async with`"
        url = self.url.joinpath(*path.split("/")).with_query(query)
        headers = {}
        if method != "GET" and self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        try:
            async with self._session.request(method, url, json=body, headers=headers) as response:
                status = response.status
                media = response.content_type
                raw = await response.read()
        except TimeoutError:
            raise self._unreachable(f"no answer within {self._timeout:g}s") from None
        except aiohttp.ClientError as exc:
            raise self._unreachable(explain(exc, [self._token or ""])) from None
        if status >= 400:
            raise self._refusal(status, _json(raw), write=method != "GET")
        return status, media, raw

    def _unreachable(self, why: str) -> ClientError:
        return ClientError(
            f"cannot reach the monitor at {shown(self.url)} ({why}): is `monitor run` running "
            f"there? Point --url or {URL_VARIABLE} at it.",
            UNREACHABLE,
        )

    def _not_the_monitor(self, status: int) -> ClientError:
        return ClientError(
            f"{shown(self.url)} answered {status}, but not as the monitor's API does: is --url "
            f"(or {URL_VARIABLE}) the address `monitor run` listens on?",
            UNREACHABLE,
        )

    def _refusal(self, status: int, data: Any, *, write: bool) -> ClientError:
        error = data.get("error") if isinstance(data, dict) else None
        if not isinstance(error, str):
            return self._not_the_monitor(status)
        where = shown(self.url)
        if status == 401 and write and self._token is None:
            message = (
                f"{TOKEN_VARIABLE} is not set: the monitor at {where} needs its API token for "
                f"this; set {TOKEN_VARIABLE} to the token `monitor run` was started with"
            )
        elif status == 401:
            message = (
                f"the monitor at {where} did not accept the token in {TOKEN_VARIABLE}: it is not "
                "the one `monitor run` was started with"
            )
        elif status == 403:
            message = (
                f"the monitor at {where} takes no changes from anyone: {TOKEN_VARIABLE} is not "
                "set where `monitor run` runs (start it with one to allow them)"
            )
        elif status >= 500:
            message = f"the monitor at {where} could not do it ({status}): {error}"
        else:
            message = error
        return ClientError(message, REFUSED)


def ask_monitor(
    given_url: str | None,
    environ: Mapping[str, str],
    command: str,
    ask: Callable[[MonitorClient], Awaitable[str]],
) -> int:
    """Ask the running monitor (``ask``, with a client of ``--url`` or ``MONITOR_URL``) and
    print its answer: 0; the refusal's code (1) or 2 when it cannot be reached, saying why on
    stderr after ``monitor COMMAND:``."""
    try:
        url = monitor_url(given_url, environ)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return UNREACHABLE

    async def asked() -> str:
        async with MonitorClient(url, environ.get(TOKEN_VARIABLE)) as client:
            return await ask(client)

    try:
        text = asyncio.run(asked())
    except ClientError as exc:
        print(f"monitor {command}: {exc}", file=sys.stderr)
        return exc.exit_code
    print(text)
    return 0


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        return None
