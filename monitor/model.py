"""Plain values that flow between the parts of the monitor. No I/O, no third-party imports."""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal, Protocol

# How far back the status page and /api/v1/systems reckon uptime; state history is kept this
# long at least, whatever the retention settings say.
UPTIME_WINDOW = 7 * 86400.0


class Clock(Protocol):
    """Where the current time comes from: wall-clock seconds since the epoch."""

    def now(self) -> float: ...


class SystemClock:
    """The real clock."""

    def now(self) -> float:
        return time.time()


class Health(StrEnum):
    UNKNOWN = "UNKNOWN"
    UP = "UP"
    DOWN = "DOWN"


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """One probe's outcome. ``reason`` is what an on-call person reads at a glance."""

    system: str
    ok: bool
    reason: str
    started_at: float
    duration: float


@dataclass(frozen=True, slots=True)
class Transition:
    """A system's health changed. ``streak`` is the run of results that caused it."""

    system: str
    at: float
    previous: Health
    current: Health
    reason: str
    streak: int


@dataclass(frozen=True, slots=True)
class SystemState:
    """Where a system stands: its health since when, and its current runs of results."""

    system: str
    health: Health = Health.UNKNOWN
    since: float | None = None
    fail_streak: int = 0
    pass_streak: int = 0
    last_reason: str = ""
    last_checked: float | None = None


class MessageKind(StrEnum):
    ACKNOWLEDGE = "acknowledge"
    UPDATE = "update"
    RESOLVED = "resolved"
    EXPLANATION = "explanation"


class Reason(StrEnum):
    """Why a message is sent: the first word, a grown outage, on-call's note, a periodic
    re-assurance, the fix, or the explanation promised with it."""

    FIRST = "first"
    GREW = "grew"
    NOTE = "note"
    PERIODIC = "periodic"
    RESOLVED = "resolved"
    EXPLANATION = "explanation"


@dataclass(frozen=True, slots=True)
class SystemInfo:
    """A system as customers know it."""

    name: str
    title: str
    workaround: str = ""


@dataclass(frozen=True, slots=True)
class Attempt:
    """An app reported that a person just failed to do something on a system."""

    system: str
    person_id: str
    action: str
    at: float


@dataclass(frozen=True, slots=True)
class Person:
    """Someone we may have to tell. ``systems`` are the ones they subscribed to."""

    id: str
    name: str = ""
    email: str | None = None
    phone: str | None = None
    webhook: str | None = None
    systems: tuple[str, ...] = ()
    # Where they are and what they read: an IANA zone and a BCP 47 tag, checked on the way
    # in; None means monitor.yaml's default_timezone / default_language.
    timezone: str | None = None
    language: str | None = None

    @property
    def first_name(self) -> str:
        return self.name.split()[0] if self.name.strip() else ""


ChannelKind = Literal["email", "sms", "webhook"]
"""The ways a person can be reached, best first."""


@dataclass(frozen=True, slots=True)
class Address:
    """Where one channel reaches a person: ``Address("email", "alice@example.com")``,
    ``Address("sms", "+447700900001")`` or ``Address("webhook", "https://...")``.

    A value, decided once from the person and carried to delivery as it is: nothing splits a
    string to learn the kind. The store writes it as the text ``email:alice@example.com``.
    """

    kind: ChannelKind
    to: str


@dataclass(frozen=True, slots=True)
class IncidentView:
    """What a message may say about an incident."""

    id: str
    started_at: float
    resolved_at: float | None
    cause: SystemInfo
    systems: tuple[SystemInfo, ...]
    note: str
    status: str  # "open" or "resolved"
    explanation: str = ""  # what happened and what changes, once on-call has written it


@dataclass(frozen=True, slots=True)
class Explanation:
    """On-call's explanation of an incident (what happened, and what changes so it does not
    happen again), and the promise to give one that a resolved message made without it.

    The promise is open from ``promised_at`` until ``kept_at``, when every explanation message
    has been decided. ``told_at`` is when messages carrying the text began to be decided (the
    explanation messages, or resolved messages when it came before the fix): from then on the
    text is final, as customers read it.
    """

    incident_id: int
    text: str = ""
    explained_at: float | None = None
    told_at: float | None = None
    promised_at: float | None = None
    kept_at: float | None = None
    reminded_at: float | None = None  # on-call's last reminder of the open promise

    @property
    def promise_open(self) -> bool:
        return self.promised_at is not None and self.kept_at is None


@dataclass(frozen=True, slots=True)
class Recipient:
    """A person as one message addresses them: what of theirs is affected, and since when."""

    person: Person
    affected: tuple[SystemInfo, ...]
    attempts: tuple[Attempt, ...]
    affected_since: float


@dataclass(frozen=True, slots=True)
class RenderedMessage:
    subject: str
    text: str
    html: str | None
    sms: str
