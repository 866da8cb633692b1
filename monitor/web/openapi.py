"""The OpenAPI 3.1 document for the HTTP server, built from the API's route table and models.

Schemas come from the same pydantic models that check request bodies and shape responses, so
the document cannot promise what the server does not do. Served at ``/api/v1/openapi.json``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, JsonSchemaValue, models_json_schema

from monitor.web.api import Route
from monitor.web.models import ErrorOut
from monitor.web.plumbing import BODY_LIMIT, TOKEN_VARIABLE, USERS_BODY_LIMIT

OPENAPI_PATH = "/api/v1/openapi.json"
_NUMBER = {"type": "integer", "minimum": 1}
# A signed link's token: URL-safe base64 and dots.
_TOKEN = {"type": "string", "pattern": "^[A-Za-z0-9_.-]{1,400}$"}

# The routes that are not JSON API: (path, operationId, summary, {status: (description, type)}).
_PLAIN: tuple[tuple[str, str, str, dict[int, tuple[str, str]]], ...] = (
    (
        "/",
        "status_page",
        "The public status page: `?page=N` for the Nth hundred services.",
        {
            200: ("The page.", "text/html"),
            400: ("`page` is not a whole number from 1.", "text/html"),
            404: ("No such page of services.", "text/html"),
        },
    ),
    (
        "/incidents/{id}",
        "incident_page",
        "An incident's public page, with its timeline.",
        {200: ("The page.", "text/html"), 404: ("No such incident kept.", "text/html")},
    ),
    (
        "/history",
        "history_page",
        "Past incidents, newest first, 20 a page: `?before=ID` for older ones.",
        {
            200: ("The page.", "text/html"),
            400: ("`before` is not a whole number from 1.", "text/html"),
        },
    ),
    (
        "/feed.atom",
        "feed",
        "The Atom feed of the newest incidents.",
        {200: ("The feed.", "application/atom+xml")},
    ),
    (
        "/status.json",
        "status_json",
        "The status page as JSON, for other sites to embed (any origin may read it).",
        {200: ("Every service with its state and uptime; the incidents.", "application/json")},
    ),
    ("/healthz", "healthz", "The process is alive.", {200: ("Alive.", "text/plain")}),
    (
        "/readyz",
        "readyz",
        "Able to do its job: started and not stopping. Its own trouble (a refused reload, a "
        "store refusing writes, no channel) is listed as warnings, still 200: a sidecar's "
        "readiness must never take the app's pod out of service. Details: /api/v1/status.",
        {
            200: (
                "Ready; a `warning: ...` line for each thing on-call should look at.",
                "text/plain",
            ),
            503: ("Starting or stopping, with the reason.", "text/plain"),
        },
    ),
    (
        "/metrics",
        "metrics",
        "Prometheus metrics.",
        {200: ("Metrics in the Prometheus text format.", "text/plain")},
    ),
    (
        OPENAPI_PATH,
        "openapi",
        "This document.",
        {200: ("The OpenAPI document.", "application/json")},
    ),
)


# What customers do with their subscription (``monitor.web.subscribing``): (method, path,
# operationId, summary, {status: description}); each answers a short HTML page.
_SUBSCRIBING: tuple[tuple[str, str, str, str, dict[int, str]], ...] = (
    (
        "post",
        "/subscribe",
        "subscribe",
        "The status page's form (email, system by title): a confirmation mail within the "
        "limits; the same page whoever asks.",
        {
            200: "Check your inbox.",
            400: "Not an email address, or a service not offered.",
            404: "Subscriptions are off.",
        },
    ),
    (
        "get",
        "/subscribe/confirm/{token}",
        "confirm_page",
        "The confirm link of the mail: a page with one button.",
        {200: "The page.", 400: "The link is too old, or not ours.", 404: "Off."},
    ),
    (
        "post",
        "/subscribe/confirm/{token}",
        "confirm",
        "Confirms the subscription.",
        {200: "Subscribed.", 400: "The link is too old, or not ours.", 404: "Off."},
    ),
    (
        "get",
        "/unsubscribe/{token}",
        "manage_page",
        "A person's manage link: a button to unsubscribe and the services to tick.",
        {200: "The page.", 404: "The link is not ours."},
    ),
    (
        "post",
        "/unsubscribe/{token}",
        "unsubscribe",
        "Unsubscribes at once (RFC 8058 one-click: body List-Unsubscribe=One-Click).",
        {200: "Unsubscribed.", 404: "The link is not ours."},
    ),
    (
        "post",
        "/unsubscribe/{token}/manage",
        "manage",
        "The manage form: the services ticked (by title) are the person's; none unsubscribes.",
        {200: "Saved.", 400: "A service not offered.", 404: "The link is not ours."},
    ),
)


def _package_version() -> str:
    try:
        return version("customer-uptime-monitor")
    except PackageNotFoundError:
        return "0.0.0"


def _models(routes: Sequence[Route]) -> list[tuple[type[BaseModel], JsonSchemaMode]]:
    found: dict[tuple[type[BaseModel], JsonSchemaMode], None] = {(ErrorOut, "serialization"): None}
    for route in routes:
        if route.body is not None:
            found[(route.body, "validation")] = None
        if route.body_may_be_list_of is not None:
            found[(route.body_may_be_list_of, "validation")] = None
        for _, model in route.responses.values():
            found[(model, "serialization")] = None
    return list(found)


def _json(schema: JsonSchemaValue) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _operation(
    route: Route, refs: Mapping[tuple[Any, JsonSchemaMode], JsonSchemaValue]
) -> dict[str, Any]:
    error = refs[(ErrorOut, "serialization")]
    responses: dict[str, Any] = {
        str(status): {
            "description": description,
            "content": _json(refs[(model, "serialization")]),
        }
        for status, (description, model) in sorted(route.responses.items())
    }
    for media, said in route.also_as.items():
        responses["200"]["description"] += f" {said}"
        responses["200"]["content"][media] = {"schema": {"type": "string"}}
    responses["503"] = {"description": "The database is unavailable.", "content": _json(error)}
    operation: dict[str, Any] = {
        "operationId": route.handler.__name__,
        "summary": route.summary,
        "tags": list(route.tags),
        "responses": responses,
    }
    if route.params:
        operation["parameters"] = [
            {
                "name": p.name,
                "in": p.where,
                "required": p.required,
                "description": p.description,
                "schema": p.schema,
            }
            for p in route.params
        ]
    if route.body is not None:
        schema = refs[(route.body, "validation")]
        if route.body_may_be_list_of is not None:
            item = refs[(route.body_may_be_list_of, "validation")]
            schema = {"oneOf": [schema, {"type": "array", "items": item}]}
        limit = USERS_BODY_LIMIT if route.body_may_be_list_of is not None else BODY_LIMIT
        operation["requestBody"] = {
            "required": True,
            "description": f"JSON, at most {limit} bytes.",
            "content": _json(schema),
        }
    if route.write:
        operation["security"] = [{"bearerAuth": []}]
        responses["401"] = {
            "description": "The bearer token is missing or wrong.",
            "headers": {"WWW-Authenticate": {"schema": {"type": "string"}}},
            "content": _json(error),
        }
        responses["403"] = {
            "description": f"{TOKEN_VARIABLE} is not set: write endpoints are disabled.",
            "content": _json(error),
        }
    operation["responses"] = dict(sorted(responses.items()))
    return operation


def openapi_document(routes: Sequence[Route]) -> dict[str, Any]:
    """The whole document: every JSON route of ``routes`` and the plain HTTP routes."""
    refs, definitions = models_json_schema(
        _models(routes), ref_template="#/components/schemas/{model}"
    )
    paths: dict[str, dict[str, Any]] = {}
    for path, operation_id, summary, answers in _PLAIN:
        operation = paths.setdefault(path, {})["get"] = {
            "operationId": operation_id,
            "summary": summary,
            "tags": ["operations"],
            "responses": {
                str(status): {
                    "description": description,
                    "content": {
                        media: {
                            "schema": {"type": "object" if media.endswith("json") else "string"}
                        }
                    },
                }
                for status, (description, media) in answers.items()
            },
        }
        if named := re.findall(r"\{(\w+)\}", path):  # an incident's number: its page's
            operation["parameters"] = [
                {"name": name, "in": "path", "required": True, "schema": _NUMBER} for name in named
            ]
    for method, path, operation_id, summary, said in _SUBSCRIBING:
        paths.setdefault(path, {})[method] = {
            "operationId": operation_id,
            "summary": summary,
            "tags": ["subscriptions"],
            "responses": {
                str(status): {
                    "description": description,
                    "content": {"text/html": {"schema": {"type": "string"}}},
                }
                for status, description in sorted(said.items())
            },
        }
        if "{token}" in path:
            paths[path][method]["parameters"] = [
                {"name": "token", "in": "path", "required": True, "schema": _TOKEN}
            ]
        if method == "post" and path != "/subscribe/confirm/{token}":
            paths[path][method]["requestBody"] = {
                "required": False,
                "content": {"application/x-www-form-urlencoded": {"schema": {"type": "object"}}},
            }
    for route in routes:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route, refs)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Customer uptime monitor",
            "version": _package_version(),
            "description": (
                "Systems, incidents and the people told about them. Times are ISO 8601 in UTC; "
                "durations are seconds. Write routes need `Authorization: Bearer "
                f"${TOKEN_VARIABLE}`."
            ),
        },
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": definitions.get("$defs", {}),
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": f"The value of {TOKEN_VARIABLE}.",
                }
            },
        },
    }
