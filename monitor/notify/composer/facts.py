"""What templates see: plain frozen records of the person, the incident and the org (their times
and durations worded already, by ``wording``).

No methods worth calling, nothing mutable, and the sandbox refuses every ``_`` attribute, so no
path leads from a template to Python internals.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import get_type_hints

from monitor.config import Org
from monitor.model import SystemInfo

CONTEXT_NAMES = (
    "user",
    "incident",
    "org",
    "kind",
    "reason",
    "next_update",
    "language",
    "manage_url",
    "unsubscribe_url",
)
# What the messages about planned work (maintenance.j2, maintenance-over.j2,
# maintenance-cancelled.j2) see instead of ``incident``, ``reason`` and ``next_update``.
PLANNED_CONTEXT_NAMES = (
    "user",
    "maintenance",
    "org",
    "kind",
    "language",
    "manage_url",
    "unsubscribe_url",
)
# What the confirmation of a subscription (subscribe.j2) sees: nobody is subscribed yet, so
# there is no ``user``, and ``manage_url`` and ``unsubscribe_url`` are "" (``_base.j2``'s html
# and ``manage()`` read them).
SUBSCRIPTION_CONTEXT_NAMES = (
    "subscription",
    "org",
    "kind",
    "language",
    "manage_url",
    "unsubscribe_url",
)


@dataclass(frozen=True, slots=True)
class SystemFacts:
    """A system as a message names it; printing one prints its title."""

    name: str
    title: str
    workaround: str

    def __str__(self) -> str:
        return self.title


@dataclass(frozen=True, slots=True)
class AttemptFacts:
    """Something the person tried and could not do. ``at`` is a formatted time."""

    system: str
    system_title: str
    action: str
    at: str


@dataclass(frozen=True, slots=True)
class UserFacts:
    """The person a message is for. ``systems`` are theirs that are affected, ``workarounds``
    those of them with a workaround; ``actions`` are the distinct things they tried, oldest
    first; ``affected_for`` is a human duration; ``goodwill`` is what we offer them for their
    trouble, in the one update that offers it, else ""."""

    id: str
    name: str
    first_name: str
    email: str
    phone: str
    attempts: tuple[AttemptFacts, ...]
    actions: tuple[str, ...]
    systems: tuple[SystemFacts, ...]
    workarounds: tuple[SystemFacts, ...]
    affected_since: str
    affected_for: str
    goodwill: str


@dataclass(frozen=True, slots=True)
class IncidentFacts:
    """The incident. Times are formatted; ``resolved_at`` is None while it is open;
    ``explanation`` is on-call's (what happened, what changes) in the resolved message when
    given before the fix and in the explanation message, else "". ``alerted_at`` is when
    on-call was alerted (a formatted time) and ``alerted_by`` by which routes ("Slack and
    email"), both "" when no on-call route is configured; ``doing`` is what on-call says the
    team is doing, or ""."""

    id: str
    started_at: str
    resolved_at: str | None
    duration: str
    cause: SystemFacts
    systems: tuple[SystemFacts, ...]
    note: str
    status: str
    explanation: str
    alerted_at: str
    alerted_by: str
    doing: str


@dataclass(frozen=True, slots=True)
class MaintenanceFacts:
    """Planned work, in the notice before it and the note once it is over. ``systems`` are all
    of its systems (the person's own are ``user.systems``); ``when`` says when it is, whole
    ("tomorrow from 2:00 AM to 3:00 AM", "morgen von 02:00 Uhr bis 03:00 Uhr"); ``starts_at``
    and ``ends_at`` are moments as a message says them; ``duration`` how long it lasts;
    ``note`` what the work is, as on-call wrote it; ``id`` names the occurrence."""

    id: str
    note: str
    systems: tuple[SystemFacts, ...]
    when: str
    starts_at: str
    ends_at: str
    duration: str


@dataclass(frozen=True, slots=True)
class SubscriptionFacts:
    """A request to subscribe, in its confirmation mail: ``systems`` are the ones asked for,
    ``confirm_url`` the link that confirms it, ``confirm_within`` how long that link works
    ("48 hours", "48 Stunden")."""

    systems: tuple[SystemFacts, ...]
    confirm_url: str
    confirm_within: str


@dataclass(frozen=True, slots=True)
class OrgFacts:
    """Who is writing. ``contact`` is how to reach them, ready for a sentence: "call 0800 123 456
    or email help@example.com" ("" when neither is configured)."""

    name: str
    support_phone: str
    support_email: str
    contact: str


@dataclass(frozen=True, slots=True)
class Response:
    """What the team is doing about an incident, as the notifier knows it for a pass: when
    on-call was alerted (None: never, as no on-call route is configured) and by which routes
    ("Slack", "email"), and what on-call wrote the team is doing ("" when nothing)."""

    alerted_at: float | None = None
    alerted_by: tuple[str, ...] = ()
    doing: str = ""


NO_RESPONSE = Response()


RECORD_FIELDS: Mapping[type, frozenset[str]] = {
    cls: frozenset(f.name for f in fields(cls))
    for cls in (
        SystemFacts,
        AttemptFacts,
        UserFacts,
        IncidentFacts,
        MaintenanceFacts,
        SubscriptionFacts,
        OrgFacts,
    )
}
"""Each record's fields: the sandbox lets them through unchecked, the check knows them."""
FIELD_TYPES: Mapping[type, Mapping[str, object]] = {
    cls: get_type_hints(cls) for cls in RECORD_FIELDS
}
CONTEXT_RECORDS: Mapping[str, type] = {
    "user": UserFacts,
    "incident": IncidentFacts,
    "maintenance": MaintenanceFacts,
    "subscription": SubscriptionFacts,
    "org": OrgFacts,
}
"""The names of the context that are records, whose fields the check can know."""
LABELS: Mapping[str, tuple[str, type]] = {
    cls.__name__: (label, cls)
    for label, cls in (
        ("user", UserFacts),
        ("incident", IncidentFacts),
        ("maintenance", MaintenanceFacts),
        ("subscription", SubscriptionFacts),
        ("a system", SystemFacts),
        ("an attempt", AttemptFacts),
        ("org", OrgFacts),
    )
}
"""A record's class name, as Jinja says it, -> how a message's author knows it, and the class."""


def system_facts(info: SystemInfo) -> SystemFacts:
    return SystemFacts(info.name, info.title, info.workaround.strip())


def org_facts(org: Org) -> OrgFacts:
    ways = [f"call {org.support_phone}"] if org.support_phone else []
    ways += [f"email {org.support_email}"] if org.support_email else []
    return OrgFacts(org.name, org.support_phone or "", org.support_email or "", " or ".join(ways))
