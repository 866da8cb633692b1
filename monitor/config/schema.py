"""What a check file and monitor.yaml may say: the pydantic models, with their types and rules.

Durations are written with a unit (``15s``, ``5m``); counts are whole numbers and never yes/no.
A rule that spans fields (``timeout`` within ``every``, one body per step) raises ``FieldFault``
naming the field at fault, so the problem points at the line to fix, not at the whole file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, TypeAlias
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from monitor.durations import parse_duration, short_duration
from monitor.locales import check_language, check_timezone

SETTINGS_FILE = "monitor.yaml"
DEFAULT_TIMEOUT = 5.0  # a probe's, when its check file does not say (and every is longer)
KeyPath: TypeAlias = tuple[str | int, ...]  # keys and list positions from a document's root


class FieldFault(ValueError):
    """A whole-model check whose fault lies in one field: ``at`` is that field's path."""

    def __init__(self, at: KeyPath, message: str) -> None:
        super().__init__(message)
        self.at = at


def _duration(value: object) -> object:
    if isinstance(value, str):
        return parse_duration(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise PydanticCustomError("duration_unit", "{number} needs a unit", {"number": value})
    raise PydanticCustomError("duration_type", "expected a duration")


def _optional_duration(value: object) -> object:
    return None if value is None else _duration(value)


def _goodwill(value: object) -> object:
    # One text for every system, or texts by system with a ``default``: both are read as the
    # mapping, so nothing downstream asks which was written.
    if isinstance(value, str):
        return {"default": value}
    return value


def _goodwill_texts(value: dict[str, str]) -> dict[str, str]:
    texts = {name: text.strip() for name, text in value.items()}
    for name, text in texts.items():
        if not text:
            raise PydanticCustomError(
                "goodwill_empty",
                "goodwill for {name!r} is empty: leave it out instead",
                {"name": name},
            )
    return texts


def _whole(value: object) -> object:
    # pydantic would read `true` as 1; a count written as yes/no is a mistake, not a number.
    if isinstance(value, bool):
        raise PydanticCustomError("int_type", "Input should be a valid integer")
    return value


Duration = Annotated[float, BeforeValidator(_duration), Field(gt=0)]
OptionalDuration = Annotated[float | None, BeforeValidator(_optional_duration)]
Whole = Annotated[int, BeforeValidator(_whole)]


def _status_list(value: object) -> object:
    return [value] if isinstance(value, int) else value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _check_http_url(url: str) -> str:
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise ValueError(f"{_without_password(url)!r} is not a valid URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        shown = _without_password(url)
        guess = (
            f" (did you mean 'https://{shown}'?)" if "://" not in url and url[:1].isalnum() else ""
        )
        raise ValueError(f"{shown!r} is not an http:// or https:// URL{guess}")
    return url


def _without_password(url: str) -> str:
    """The URL with any ``user:password@`` reduced to ``user:***@``, for messages."""
    return re.sub(r"(//[^/@:]*):[^/@]*@", r"\1:***@", url)


class HttpExpect(_Strict):
    """What a passing HTTP answer looks like."""

    status: Annotated[
        list[Annotated[int, BeforeValidator(_whole), Field(ge=100, le=599)]],
        BeforeValidator(_status_list),
    ] = [200]
    body_contains: str | None = None
    json_fields: dict[str, Any] | None = Field(default=None, alias="json")
    max_latency: OptionalDuration = None
    cert_valid_for: OptionalDuration = None


class HttpProbe(_Strict):
    url: str
    method: Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] = "GET"
    headers: dict[str, str] = {}
    body: str | None = None
    expect: HttpExpect = HttpExpect()

    _url = field_validator("url")(classmethod(lambda cls, v: _check_http_url(v)))

    @model_validator(mode="after")
    def _cert_needs_https(self) -> HttpProbe:
        if self.expect.cert_valid_for is not None and not self.url.startswith("https://"):
            raise FieldFault(
                ("expect", "cert_valid_for"),
                "checks a TLS certificate, so the url must start with https://",
            )
        return self


class TcpProbe(_Strict):
    host: str = Field(min_length=1)
    port: Whole = Field(ge=1, le=65535)


class Step(_Strict):
    """One request of a journey. A relative ``url`` is resolved against the first step's URL."""

    name: str | None = None
    method: Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"] = "GET"
    url: str = Field(min_length=1)
    headers: dict[str, str] = {}
    body: str | None = None
    json_body: Any = Field(default=None, alias="json")
    form: dict[str, str] | None = None
    expect: HttpExpect = HttpExpect()
    token: str | None = Field(
        default=None,
        description=(
            "Dotted path into this step's JSON answer; later steps send it as a bearer token."
        ),
    )

    @model_validator(mode="after")
    def _one_body(self) -> Step:
        bodies = {"body": self.body, "json": self.json_body, "form": self.form}
        given = [written for written, value in bodies.items() if value is not None]
        if len(given) > 1:
            raise FieldFault(
                (given[-1],), f"give only one of body, json and form (found {', '.join(given)})"
            )
        return self


class Probe(_Strict):
    http: HttpProbe | None = None
    tcp: TcpProbe | None = None
    steps: list[Step] | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _exactly_one(self) -> Probe:
        given = [k for k in ("http", "tcp", "steps") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one probe kind: http, tcp or steps"
                + (f" (found {', '.join(given)})" if given else "")
            )
        if self.steps is not None:
            try:
                _check_http_url(self.steps[0].url)
            except ValueError as exc:
                raise FieldFault(
                    ("steps", 0, "url"), f"{exc} (only later steps may be relative)"
                ) from None
        return self

    @property
    def kind(self) -> str:
        return "http" if self.http else "tcp" if self.tcp else "steps"


class SystemConfig(_Strict):
    """One watched system, from one file in checks/."""

    name: str = Field(pattern=r"^[a-z0-9-]+$", max_length=63)
    title: str = Field(min_length=1)
    every: Duration = 30.0
    timeout: Duration = Field(
        default=DEFAULT_TIMEOUT, description="Default 5s, or every when that is shorter."
    )
    fail_after: Whole = Field(default=3, ge=1)
    recover_after: Whole = Field(default=2, ge=1)
    depends_on: list[str] = []
    workaround: str = ""
    probe: Probe

    @model_validator(mode="after")
    def _timeout_within_interval(self) -> SystemConfig:
        if "timeout" not in self.model_fields_set:
            # Not written: a probe every 1s waits at most 1s, not the default 5s. The model
            # is frozen, and this is still its construction.
            object.__setattr__(self, "timeout", min(DEFAULT_TIMEOUT, self.every))
        elif self.timeout > self.every:
            raise FieldFault(
                ("timeout",),
                f"must not be longer than every ({short_duration(self.every)}):"
                " a probe must end before the next one starts",
            )
        return self


class Org(_Strict):
    name: str = "Our team"
    support_phone: str | None = None
    support_email: str | None = None
    domain: str | None = Field(
        default=None, description="Domain of Message-IDs; defaults to support_email's domain."
    )

    @property
    def message_domain(self) -> str:
        if self.domain:
            return self.domain
        if self.support_email and "@" in self.support_email:
            return self.support_email.rsplit("@", 1)[1]
        return "monitor.invalid"


class Retention(_Strict):
    max_age: Duration = 7 * 86400.0
    max_results_per_system: Whole = Field(default=1000, ge=1)


class HttpClient(_Strict):
    """How probes use the network. By default each probe opens a fresh connection, as a new
    customer would; ``reuse_connections`` keeps connections alive between probes instead."""

    max_connections: Whole = Field(default=200, ge=1)
    max_connections_per_host: Whole = Field(default=0, ge=0)
    reuse_connections: bool = False


class Replicas(_Strict):
    """How replicas sharing one database (docs/replicas.md) notice each other: each says it is
    alive every ``heartbeat``; a replica not heard from for ``takeover`` has its checks and its
    lead taken over (the takeover is at most that long, then each check's next probe)."""

    heartbeat: Duration = 2.0
    takeover: Duration = 30.0

    @model_validator(mode="after")
    def _takeover_spans_heartbeats(self) -> Replicas:
        if self.takeover < 3 * self.heartbeat:
            raise FieldFault(
                ("takeover",),
                "must be at least 3 heartbeats: one missed heartbeat must not make a live "
                "replica look dead",
            )
        return self


class MonitorSettings(_Strict):
    """Global settings from checks/monitor.yaml."""

    org: Org = Org()
    correlation_window: Duration = 300.0
    notify_after: Annotated[float, BeforeValidator(_duration), Field(ge=0)] = 60.0
    update_every: Duration = 86400.0
    attempt_lookback: Duration = 7200.0
    customer_messages: Literal["auto", "confirm"] = "auto"
    max_messages_per_person_per_day: Whole = Field(default=6, ge=1)
    # After a resolved message promised an explanation: when on-call is first reminded of it.
    explain_within: Duration = 3 * 86400.0
    # Offered once to each person an incident has lasted goodwill_after for (by their own
    # affected_since), in the update that goes out then: one text, or {default: ..., <system>:
    # ...}; the system names are checked against the check files with the templates.
    goodwill: Annotated[
        dict[str, str], BeforeValidator(_goodwill), AfterValidator(_goodwill_texts)
    ] = {}
    goodwill_after: Duration = 86400.0
    oncall: list[str] = []
    retention: Retention = Retention()
    http: HttpClient = HttpClient()
    replicas: Replicas = Replicas()
    # For people without a zone or language of their own; the top-level messages/*.j2 are
    # written in default_language.
    default_timezone: Annotated[str, AfterValidator(check_timezone)] = "UTC"
    default_language: Annotated[str, AfterValidator(check_language)] = "en"


@dataclass(frozen=True)
class Config:
    """A whole configuration: monitor.yaml's settings and each system by its name."""

    settings: MonitorSettings
    systems: dict[str, SystemConfig]
    files: dict[str, str] = field(default_factory=dict)  # system name -> file it came from
