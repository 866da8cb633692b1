"""Sample messages for ``monitor validate`` and ``monitor preview``: a realistic incident, and
a person it stopped (Alice Martin, or a nameless subscriber), at a realistic moment for each
reason a message is sent; planned work; a request to subscribe."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Literal

from monitor.maintenance import NoticeKind, Occurrence, Window
from monitor.model import (
    Attempt,
    IncidentView,
    MessageKind,
    Person,
    Reason,
    Recipient,
    SystemInfo,
)
from monitor.notify.composer.facts import NO_RESPONSE, Response
from monitor.text import one_line

REASONS: Mapping[MessageKind, tuple[Reason, ...]] = {
    MessageKind.ACKNOWLEDGE: (Reason.FIRST,),
    MessageKind.UPDATE: (Reason.GREW, Reason.NOTE, Reason.PERIODIC),
    MessageKind.RESOLVED: (Reason.RESOLVED,),
    MessageKind.EXPLANATION: (Reason.EXPLANATION,),
}
"""The reasons each kind of message is sent for; ``validate()`` renders each kind with each."""


@dataclass(frozen=True, slots=True)
class Sample:
    """Everything ``Composer.render`` needs for one realistic message."""

    kind: MessageKind
    reason: Reason
    recipient: Recipient
    incident: IncidentView
    now: float
    response: Response = NO_RESPONSE
    goodwill: str = ""  # what the message offers for a long outage, when it does


SamplePerson = Literal["alice", "subscriber"]
# The two people samples are written to: Alice, who tried something, and a nameless subscriber.
_ALICE = Person(
    id="u-1042",
    name="Alice Martin",
    email="alice.martin@example.com",
    phone="+44 7700 900123",
)
_SUBSCRIBER = Person(id="u-2208", email="orders@northwind.example")
SAMPLE_PEOPLE: tuple[SamplePerson, ...] = ("alice", "subscriber")
SAMPLE_SYSTEMS = {
    "payment": SystemInfo(
        "payment", "Online payments", "Pay by phone on 0800 123 456 and we will process it by hand."
    )
}
"""The systems of a sample when the configuration has none."""

_SAMPLE_START = datetime(2025, 3, 4, 14, 3, tzinfo=UTC).timestamp()  # a Tuesday afternoon
_SAMPLE_NOW: Mapping[Reason, float] = {
    Reason.FIRST: _SAMPLE_START + 4 * 60,
    Reason.GREW: _SAMPLE_START + 27 * 60,
    Reason.NOTE: _SAMPLE_START + 37 * 60,
    Reason.PERIODIC: _SAMPLE_START + 86400 + 7 * 60,
    Reason.RESOLVED: _SAMPLE_START + 82 * 60,
    Reason.EXPLANATION: _SAMPLE_START + 2 * 86400 + 3 * 3600,
}
# The explanation: in the explanation message, and (for one sample person) in the resolved one.
_SAMPLE_EXPLANATION = (
    "A card processor update we installed on Tuesday sent every payment to a server that had "
    "been switched off. We now try each update on a copy of the payment system first, and an "
    "alarm tells us within a minute when payments stop going through."
)
_EXPLAINED_FOR: Mapping[SamplePerson, frozenset[Reason]] = {
    "alice": frozenset({Reason.EXPLANATION}),
    "subscriber": frozenset({Reason.RESOLVED, Reason.EXPLANATION}),
}
_SAMPLE_NOTE = {
    "open": "An update we made this afternoon did not apply properly; we are rolling it back.",
    "resolved": (
        "An update we made this afternoon did not apply properly. We rolled it back, and from "
        "now on every update is tried on a test copy before it goes live."
    ),
}
# What on-call says the team is doing, for Alice's messages while it lasts (the subscriber's
# say what the monitor knows).
_SAMPLE_DOING: Mapping[Reason, str] = {
    reason: "we are rolling the update back and checking every payment made since 3 PM."
    if reason in (Reason.NOTE, Reason.PERIODIC)
    else ""
    for reason in Reason
}
_SAMPLE_GOODWILL = "Your next month is on us: we have taken it off your bill."
# Between them the two people cover a note and no note for every reason but NOTE (which has one).
_NOTE_FOR: Mapping[SamplePerson, frozenset[Reason]] = {
    "alice": frozenset({Reason.NOTE, Reason.RESOLVED}),
    "subscriber": frozenset({Reason.FIRST, Reason.GREW, Reason.NOTE}),
}
# What people do on the usual kinds of system, found in its name or title; any other system's
# sample person tried to use it, so a CRM's acknowledgement does not speak of a payment.
_SAMPLE_ACTIONS = (
    (re.compile(r"\b(pay|checkout|billing|card)", re.IGNORECASE), "make a payment"),
    (
        re.compile(r"\b(log ?in|sign(ing)? ?(in|on)|sso|auth(entication)?\b)", re.IGNORECASE),
        "sign in",
    ),
)


def sample_action(system: SystemInfo) -> str:
    """What the sample person tried to do on ``system``: ``make a payment`` or ``sign in`` when
    its name or title says it is for that, else ``use`` and its title as a sentence says it
    (``use your order history``; a first word such as ``CRM`` keeps its capitals)."""
    for pattern, action in _SAMPLE_ACTIONS:
        if pattern.search(f"{system.name} {system.title}"):
            return action
    title = one_line(system.title) or system.name
    first = title.split(" ", 1)[0]
    if first[1:].islower():
        title = title[0].lower() + title[1:]
    return f"use {title}"


def sample_context(
    systems: Mapping[str, SystemInfo],
    system: str,
    kind: MessageKind = MessageKind.ACKNOWLEDGE,
    reason: Reason | None = None,
    *,
    as_cause: bool = True,
    person: SamplePerson = "alice",
    language: str | None = None,
) -> Sample:
    """A realistic message about ``system``: it is the incident's cause, or (``as_cause=False``)
    affected by another system's failure.

    ``person="alice"`` is Alice Martin, who just failed to do what ``system`` is for (see
    ``sample_action``; and, when the problem grew, is affected by every system of the incident);
    ``"subscriber"`` has no name and no attempts and follows every system of the incident.
    ``reason`` defaults to the kind's usual one (an update defaults to on-call's note);
    ``language`` is the person's (None: the default language).
    """
    known = dict(systems) or dict(SAMPLE_SYSTEMS)
    if reason is None:
        reason = Reason.NOTE if kind is MessageKind.UPDATE else REASONS[kind][0]
    focus = known.get(system) or SystemInfo(system, system)
    others = [info for name, info in sorted(known.items()) if name != system]
    other = others[0] if others else SystemInfo("database", "Our database")
    cause = focus if as_cause else other
    involved = (focus, other) if as_cause else (other, focus)

    now = _SAMPLE_NOW[reason]
    resolved = reason in (Reason.RESOLVED, Reason.EXPLANATION)
    status = "resolved" if resolved else "open"
    incident = IncidentView(
        id="42",
        started_at=_SAMPLE_START,
        resolved_at=_SAMPLE_NOW[Reason.RESOLVED] if resolved else None,
        cause=cause,
        systems=involved,
        note=_SAMPLE_NOTE[status] if reason in _NOTE_FOR[person] else "",
        status=status,
        explanation=_SAMPLE_EXPLANATION if reason in _EXPLAINED_FOR[person] else "",
    )
    if person == "alice":
        alice = replace(_ALICE, language=language)
        tried = Attempt(focus.name, alice.id, sample_action(focus), _SAMPLE_START + 120)
        grown = involved if reason is Reason.GREW else (focus,)
        recipient = Recipient(alice, grown, (tried,), tried.at)
    else:
        names = tuple(info.name for info in involved)
        subscriber = replace(_SUBSCRIBER, systems=names, language=language)
        recipient = Recipient(subscriber, involved, (), _SAMPLE_START)
    # Alice's team has on-call routes and offers goodwill (in the day-long periodic update);
    # the subscriber's has neither, so both wordings are rendered.
    if person == "alice":
        response = Response(_SAMPLE_START + 60, ("Slack", "email"), _SAMPLE_DOING[reason])
        goodwill = _SAMPLE_GOODWILL if reason is Reason.PERIODIC else ""
        return Sample(kind, reason, recipient, incident, now, response, goodwill)
    return Sample(kind, reason, recipient, incident, now)


@dataclass(frozen=True, slots=True)
class PlannedSample:
    """Everything ``Composer.render_planned`` needs for one realistic message."""

    kind: NoticeKind
    recipient: Recipient
    occurrence: Occurrence
    now: float


# Planned work on a Sunday night, told the day before at lunchtime; over ten minutes after,
# or cancelled that evening.
_PLANNED_START = datetime(2025, 3, 9, 2, 0, tzinfo=UTC).timestamp()
_PLANNED_END = _PLANNED_START + 2 * 3600
_PLANNED_NOW = {
    NoticeKind.NOTICE: _PLANNED_START - 14 * 3600,
    NoticeKind.OVER: _PLANNED_END + 600,
    NoticeKind.CANCELLED: _PLANNED_START - 6 * 3600,
}
_PLANNED_NOTE = "We are moving our database to a faster server."


def sample_planned(
    systems: Mapping[str, SystemInfo],
    system: str,
    kind: NoticeKind = NoticeKind.NOTICE,
    *,
    person: SamplePerson = "alice",
    language: str | None = None,
) -> PlannedSample:
    """A realistic message about planned work on ``system`` and another: to Alice Martin, who
    follows ``system``, or to a nameless subscriber of both."""
    known = dict(systems) or dict(SAMPLE_SYSTEMS)
    focus = known.get(system) or SystemInfo(system, system)
    others = [info for name, info in sorted(known.items()) if name != system]
    involved = (focus, *others[:1])
    window = Window(
        ref="db-move",
        systems=tuple(info.name for info in involved),
        # Cancelled: the window is gone, and its note with it.
        note="" if kind is NoticeKind.CANCELLED else _PLANNED_NOTE,
        zone="UTC",
        source="sample",
        start=_PLANNED_START,
        end=_PLANNED_END,
    )
    occurrence = Occurrence(window, _PLANNED_START, _PLANNED_END)
    if person == "alice":
        alice = replace(_ALICE, systems=(focus.name,), language=language)
        recipient = Recipient(alice, (focus,), (), _PLANNED_START)
    else:
        subscriber = replace(_SUBSCRIBER, systems=window.systems, language=language)
        recipient = Recipient(subscriber, involved, (), _PLANNED_START)
    return PlannedSample(kind, recipient, occurrence, _PLANNED_NOW[kind])


@dataclass(frozen=True, slots=True)
class SubscriptionSample:
    """Everything ``Composer.render_confirmation`` needs for one realistic confirmation."""

    systems: tuple[str, ...]
    confirm_url: str
    confirm_within: float


# The shape of a real link (``/subscribe/confirm/`` and a signed token), never one that works.
SAMPLE_CONFIRM_URL = (
    "https://status.example.com/subscribe/confirm/"
    "eyJlIjoib3JkZXJzQG5vcnRod2luZC5leGFtcGxlIn0.Z9cT1A.sample-token-not-a-real-one"
)
SAMPLE_CONFIRM_WITHIN = 48 * 3600.0  # subscriptions.confirm_within's default


def sample_subscription(
    systems: Mapping[str, SystemInfo], system: str, *, alone: bool = False
) -> SubscriptionSample:
    """A realistic request to subscribe to ``system`` and another (``alone``: to it only),
    confirmed within ``subscriptions.confirm_within``'s default."""
    known = dict(systems) or dict(SAMPLE_SYSTEMS)
    others = [name for name in sorted(known) if name != system]
    names = (system,) if alone else (system, *others[:1])
    return SubscriptionSample(names, SAMPLE_CONFIRM_URL, SAMPLE_CONFIRM_WITHIN)
