"""What a check file and monitor.yaml may say: the pydantic models, with their types and rules.

Durations are written with a unit (``15s``, ``5m``); counts are whole numbers and never yes/no.
A rule that spans fields (``timeout`` within ``every``, one body per step) raises ``FieldFault``
naming the field at fault, so the problem points at the line to fix, not at the whole file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Annotated, Any, Literal, TypeAlias
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_serializer,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from monitor.durations import parse_duration, short_duration
from monitor.locales import check_language, check_timezone
from monitor.text import unknown_name

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
    # The status page's history: a bar a day, and the incidents' public part, kept this long.
    history: Duration = 90 * 86400.0

    @field_validator("history")
    @classmethod
    def _whole_days_a_phone_can_show(cls, value: float) -> float:
        if value % 86400 or not 86400 <= value <= 90 * 86400:
            raise ValueError(
                "must be whole days from 1d to 90d: the status page shows a bar a day, and 90 "
                "is as many as a phone's width can show"
            )
        return value


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


_DNS_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DNS_NAME = re.compile(rf"{_DNS_LABEL}(?:\.{_DNS_LABEL})*")


def _dns_name(value: str) -> str:
    if not _DNS_NAME.fullmatch(value) or len(value) > 253:
        raise ValueError(
            f"{value!r} is not a DNS name (labels of letters, digits and inner hyphens)"
        )
    return value


DnsName = Annotated[str, AfterValidator(_dns_name)]


class Dkim(_Strict):
    """DKIM signing of customer mail (the email channel's): the key is read from ``key_file``,
    else from the environment's MONITOR_DKIM_KEY (never written here), and published in DNS
    at ``<selector>._domainkey.<domain>``; ``domain`` is the From address's by default."""

    selector: DnsName
    domain: DnsName | None = None
    key_file: str | None = Field(default=None, min_length=1)


class Subscriptions(_Strict):
    """Self-service subscriptions from the status page (README, "Subscriptions")."""

    # A confirm link older than this is refused: the page says to subscribe again.
    confirm_within: Duration = 48 * 3600.0
    # Confirmation mails an address may be sent in a day, and subscribe requests a client IP
    # may make in an hour: over either, the page is the same, but no mail goes out.
    mails_per_address_per_day: Whole = Field(default=3, ge=1)
    requests_per_ip_per_hour: Whole = Field(default=10, ge=1)
    # Whether someone who cancelled is still told when an app reports they just failed to do
    # something (affected_only), or hears nothing further at all (nothing).
    unsubscribed: Literal["nothing", "affected_only"] = "nothing"
    # Behind a proxy (an ingress, a load balancer) every visitor comes from the proxy's address:
    # the header it writes the client's address into (X-Forwarded-For), whose last entry (the
    # one the nearest proxy added) is the client counted. Unset: the connection's address.
    client_address_header: str | None = Field(default=None, pattern=r"^[A-Za-z0-9-]{1,64}$")


class EmailSettings(_Strict):
    """How customer mail is sent, besides MONITOR_SMTP_URL and MONITOR_SMTP_FROM."""

    dkim: Dkim | None = None


WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_EVERY_DAY = ("day", "daily")
_CLOCK_TIME = re.compile(r"([01]?[0-9]|2[0-3]):([0-5][0-9])(?::([0-5][0-9]))?")
_MOMENT_WANTED = "a date and time like 2026-12-13 02:00 (2026-12-13T02:00+01:00 with an offset)"


def _moment(value: object) -> object:
    # A window's start or end: a date and time (ISO 8601; YAML's own timestamps too), or for a
    # window that recurs, a time of day. Which one a window needs is checked on the whole.
    if isinstance(value, datetime):
        return _in_range(value)
    if isinstance(value, time):
        return value
    if isinstance(value, date):
        raise PydanticCustomError(
            "moment_date", "{day} needs a time too, like '{day} 02:00'", {"day": str(value)}
        )
    if not isinstance(value, str):
        raise PydanticCustomError(
            "moment_type",
            "expected {wanted}, or a time of day like 02:00",
            {"wanted": _MOMENT_WANTED},
        )
    text = value.strip()
    clock = _CLOCK_TIME.fullmatch(text)
    if clock is not None:
        return time(int(clock[1]), int(clock[2]), int(clock[3] or 0))
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        moment = None
    if moment is None or len(text) <= 10:  # a date alone reads as midnight: never meant
        raise PydanticCustomError(
            "moment_format",
            "{text} is not a date and time: write {wanted}, or a time of day like 02:00",
            {"text": repr(text), "wanted": _MOMENT_WANTED},
        )
    return _in_range(moment)


def _in_range(moment: datetime) -> datetime:
    # A year the clock cannot reach is a typo, and past 9998 a time zone could not convert it.
    if not 1971 <= moment.year <= 9998:
        raise PydanticCustomError(
            "moment_year", "{year} is not a year planned work happens in", {"year": moment.year}
        )
    return moment


def _weekdays(value: object) -> object:
    # ``day`` (every day), a day of the week, or a list of days: the days, in the week's order.
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        raise PydanticCustomError(
            "every_type", "expected day, a day of the week like sunday, or a list of days"
        )
    days: set[str] = set()
    for item in items:
        word = item.strip().lower() if isinstance(item, str) else ""
        if word in _EVERY_DAY:
            days.update(WEEKDAYS)
        elif word in WEEKDAYS or (len(word) == 3 and any(d.startswith(word) for d in WEEKDAYS)):
            days.add(next(d for d in WEEKDAYS if d.startswith(word)))
        else:
            raise PydanticCustomError(
                "every_day", "{said}", {"said": unknown_name("day", str(item), [*WEEKDAYS, "day"])}
            )
    return tuple(d for d in WEEKDAYS if d in days)


def _window_name(name: str) -> str:
    if not re.fullmatch(r"[a-z][a-z0-9-]*", name):
        slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-").lstrip("0123456789-")
        raise ValueError(
            f"{name!r} is not a valid window name: a letter, then lowercase letters, digits and "
            f"'-', like {slug or 'db-upgrade'!r}"
        )
    return name


Moment = Annotated[datetime | time, BeforeValidator(_moment)]


def _at_most_30_days(seconds: float) -> float:
    if seconds > 30 * 86400:
        raise ValueError(f"must be at most 30d, got {short_duration(seconds)}")
    return seconds


# How long before planned work its customers are told (0: not told), or the grace after it.
Lead = Annotated[float, BeforeValidator(_duration), Field(ge=0), AfterValidator(_at_most_30_days)]


class MaintenanceWindow(_Strict):
    """Planned work on some systems (docs/configuration.md, "Maintenance windows"): once, from
    ``start`` to ``end`` (dates and times; without an offset, in ``timezone``), or, with
    ``every``, on those days from ``start`` to ``end`` (times of day in ``timezone``; an end
    before the start is the next day's). ``note`` is what customers read the work is."""

    systems: list[str] = Field(min_length=1, max_length=10_000)
    start: Moment
    end: Moment
    every: Annotated[tuple[str, ...], BeforeValidator(_weekdays)] | None = None
    timezone: Annotated[str, AfterValidator(check_timezone)] | None = None
    note: str = Field(min_length=1, max_length=2000)
    notify_before: Lead | None = None  # this window's, instead of monitor.yaml's; 0: no notice
    grace: Lead | None = None  # this window's maintenance_grace, instead of monitor.yaml's

    @field_serializer("notify_before", "grace")
    def _lead_as_written(self, seconds: float | None) -> str | None:
        # As a file writes it, so that what is dumped (the API's windows, kept as JSON) reads
        # back the same: never with an exponent ("1.1232e+06s" is no duration).
        return None if seconds is None else f"{seconds:.3f}".rstrip("0").rstrip(".") + "s"

    @model_validator(mode="after")
    def _times_fit(self) -> MaintenanceWindow:
        if self.every is not None:
            for key, value in (("start", self.start), ("end", self.end)):
                if isinstance(value, datetime):
                    raise FieldFault(
                        (key,), "a window with every takes a time of day, like 02:00, not a date"
                    )
            if self.start == self.end:
                raise FieldFault(("end",), "must not be the same time as start")
            return self
        start, end = self.start, self.end
        for key, value in (("start", start), ("end", end)):
            if not isinstance(value, datetime):
                raise FieldFault(
                    (key,),
                    f"needs a date as well, like 2026-12-13 {value:%H:%M} (or write every: "
                    "sunday for a window that recurs)",
                )
        if isinstance(start, datetime) and isinstance(end, datetime):
            if (start.tzinfo is None) != (end.tzinfo is None):
                raise FieldFault(("end",), "give an offset to both start and end, or to neither")
            if end <= start:
                raise FieldFault(("end",), "must be after start")
        return self


class NamedMaintenanceWindow(MaintenanceWindow):
    """A window written in a file: its name (in its notices' Message-IDs) keeps it the same
    window however the files move."""

    name: Annotated[str, Field(max_length=63), AfterValidator(_window_name)]


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
    email: EmailSettings = EmailSettings()
    # For people without a zone or language of their own; the top-level messages/*.j2 are
    # written in default_language.
    default_timezone: Annotated[str, AfterValidator(check_timezone)] = "UTC"
    default_language: Annotated[str, AfterValidator(check_language)] = "en"
    # Planned work: windows written here (as in checks/maintenance/*.yaml); their systems'
    # subscribers are told notify_before each starts (0: not told), and a failure inside one is
    # told to customers only once it outlasts it by maintenance_grace.
    maintenance: list[NamedMaintenanceWindow] = []
    notify_before: Lead = 86400.0
    maintenance_grace: Lead = 900.0
    # The status page's public address (https://status.example.com): the links in customer
    # messages (manage, unsubscribe, confirm) start with it. Without it, messages carry none.
    public_url: Annotated[str, AfterValidator(_check_http_url)] | None = None
    subscriptions: Subscriptions = Subscriptions()


@dataclass(frozen=True)
class Config:
    """A whole configuration: monitor.yaml's settings and each system by its name."""

    settings: MonitorSettings
    systems: dict[str, SystemConfig]
    files: dict[str, str] = field(default_factory=dict)  # system name -> file it came from
    # Every maintenance window of the files (monitor.yaml's, then checks/maintenance/'s) and,
    # by its name, the file it came from.
    maintenance: tuple[NamedMaintenanceWindow, ...] = ()
    maintenance_files: dict[str, str] = field(default_factory=dict)
