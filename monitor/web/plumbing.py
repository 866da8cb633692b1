"""Reading requests and writing answers for the JSON API: JSON errors, the bearer token, capped
bodies checked by the models, and the query and path parameters.

Every error is JSON: ``{"error": what is wrong, "field": "user.email" or null, "errors": [...]}``
(``errors`` lists every bad field when a body has several). Bodies are capped (1 MiB; 10 MiB for
``POST /api/v1/users``): larger ones get 413. The token is compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any, TypeVar

from aiohttp import web
from aiohttp.typedefs import Handler
from pydantic import BaseModel, ValidationError

from monitor.people.rules import dotted, explain
from monitor.store import StoreUnavailable
from monitor.web.models import ErrorOut, FieldError
from monitor.web.services import SERVICES

MiB = 1024 * 1024
BODY_LIMIT = 1 * MiB
USERS_BODY_LIMIT = 10 * MiB
MAX_INCIDENT_ID = 2**63 - 1  # SQLite's largest integer: anything above cannot exist
TOKEN_VARIABLE = "MONITOR_API_TOKEN"


class ApiError(Exception):
    """Answer the request with ``status`` and a JSON error body."""

    def __init__(
        self,
        status: int,
        message: str,
        field: str | None = None,
        *,
        errors: Sequence[FieldError] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = ErrorOut(error=message, field=field, errors=list(errors))
        self.headers = dict(headers or {})

    def response(self) -> web.Response:
        return respond(self.body, self.status, self.headers)


def respond(
    model: BaseModel, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.json_response(
        model.model_dump(mode="json"),
        status=status,
        headers=headers,
        dumps=partial(json.dumps, ensure_ascii=False),
    )


@web.middleware
async def errors_as_json(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn ApiError and an unavailable store into JSON answers instead of 500s."""
    try:
        return await handler(request)
    except ApiError as exc:
        return exc.response()
    except StoreUnavailable as exc:
        return ApiError(503, f"the database is unavailable: {exc}").response()


def _digest(value: str) -> bytes:
    # Hashing first makes the comparison constant-time in the length too.
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).digest()


def authorize(request: web.Request) -> None:
    """Raise ApiError unless the request carries the configured bearer token."""
    token = request.app[SERVICES].api_token
    if not token:
        raise ApiError(403, f"{TOKEN_VARIABLE} is not set: write endpoints are disabled")
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    given = given.strip()
    if scheme.lower() != "bearer" or not given:
        raise ApiError(
            401,
            f"this endpoint needs the header Authorization: Bearer ${TOKEN_VARIABLE}",
            headers={"WWW-Authenticate": 'Bearer realm="monitor"'},
        )
    if not hmac.compare_digest(_digest(given), _digest(token)):
        raise ApiError(
            401,
            "the bearer token is not the configured one",
            headers={"WWW-Authenticate": 'Bearer realm="monitor", error="invalid_token"'},
        )


async def read_body(request: web.Request, limit: int) -> bytes:
    """The request body, or ApiError 413 as soon as it is known to exceed ``limit`` bytes."""
    too_large = ApiError(413, f"the request body is larger than {limit} bytes")
    if request.content_length is not None and request.content_length > limit:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.read(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


M = TypeVar("M", bound=BaseModel)


async def parse(
    request: web.Request,
    model: type[M],
    limit: int = BODY_LIMIT,
    wrap_list: str | None = None,
    context: dict[str, Any] | None = None,
) -> M:
    """The body as ``model``, or ApiError 400 naming the first bad field (413 when too large).

    With ``wrap_list``, a bare JSON list is taken as ``{wrap_list: list}``; its errors are then
    named from the list (``3.email``). ``context`` goes to the model's validators (the systems
    there are: ``monitor.people.known_systems``).
    """
    raw = await read_body(request, limit)
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # bad JSON, bad UTF-8, absurd nesting
        raise ApiError(400, f"the body is not valid JSON: {exc}") from exc
    bare = wrap_list is not None and isinstance(data, list)
    if bare:
        data = {wrap_list: data}
    try:
        return model.model_validate(data, context=context)
    except ValidationError as exc:
        found = []
        for error in exc.errors(include_url=False):
            loc = error["loc"][1:] if bare else error["loc"]
            found.append(FieldError(field=dotted(loc) or None, error=explain(error)))
        first = found[0]
        message = f"{first.field}: {first.error}" if first.field else first.error
        raise ApiError(400, message, first.field, errors=found[:50]) from exc


def choice(request: web.Request, name: str, allowed: Sequence[str]) -> str | None:
    """The query parameter ``name`` (None when absent), or ApiError 400 unless allowed."""
    value = request.query.get(name)
    if value is None:
        return None
    if value not in allowed:
        raise ApiError(400, f"{name} must be one of {', '.join(allowed)}", name)
    return value


def int_query(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    """The query parameter ``name`` as a whole number from ``low`` to ``high``, else 400."""
    value = request.query.get(name)
    if value is None:
        return default
    # Length first: int() of thousands of digits is refused by Python itself.
    ok = value.isascii() and value.isdigit() and len(value) <= len(str(high))
    if not ok or not low <= int(value) <= high:
        raise ApiError(400, f"{name} must be a whole number from {low} to {high}", name)
    return int(value)


def incident_id(request: web.Request) -> int:
    """The ``{id}`` of the path: 400 unless a positive whole number, 404 past any id."""
    raw = request.match_info["id"]
    digits = raw.lstrip("0")
    if not raw.isascii() or not raw.isdigit() or not digits:
        raise ApiError(400, "the incident id must be a positive whole number", "id")
    # Length first: int() of thousands of digits is refused by Python itself.
    if len(digits) > len(str(MAX_INCIDENT_ID)) or int(digits) > MAX_INCIDENT_ID:
        raise ApiError(404, f"no incident {digits[:30]}", "id")
    return int(digits)


def no_incident(number: int) -> ApiError:
    return ApiError(404, f"no incident {number}", "id")
