"""What the store keeps and hands out, for every backend and its callers: the outbox item, a
timeline entry, the statuses of a message, and the one error a caller must expect."""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from monitor.model import Address

PENDING, SENT, UNDELIVERABLE = "pending", "sent", "undeliverable"
# A message still pending when its person unsubscribes is never sent: it is settled as
# undeliverable, saying why (the post-incident report lists it so).
WITHDRAWN = {
    "pending": PENDING,
    "undeliverable": UNDELIVERABLE,
    "why": "unsubscribed before it was sent",
}
# The outbox is read in shards (a person's messages all in one): each replica sends from those it
# holds. Changing the number would move messages already decided between shards.
OUTBOX_SHARDS = 64


def outbox_shard(person_id: str) -> int:
    """The shard of ``person_id``'s messages: the same in every process and version."""
    return zlib.crc32(person_id.encode()) % OUTBOX_SHARDS


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """A decision to send one message to one person, rendered and addressed when decided.

    ``key`` is unique per (incident, person, kind[, update number]): deciding the same thing
    twice inserts nothing. ``channels`` lists what is left to try, best first; ``sent_via`` is
    the one that delivered it.
    """

    key: str
    incident_id: int
    person_id: str
    kind: str
    reason: str
    created_at: float
    subject: str
    text: str
    html: str | None
    sms: str
    channels: tuple[Address, ...]
    status: str = PENDING
    tries: int = 0
    next_try_at: float = 0.0
    last_error: str = ""
    sent_at: float | None = None
    sent_via: Address | None = None


@dataclass(frozen=True, slots=True)
class Alert:
    """When on-call was first alerted of an incident (its notice handed to apprise), and by
    which routes: the services of the ``oncall:`` URLs ("Slack", "email")."""

    at: float
    routes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AffectedCount:
    """How many people an incident affected, counted when its fix was told: the subscribers
    of its systems and those who reported a failed attempt (``People.audience_count``), and
    how many of those had unsubscribed (told nothing further, or only of that failure:
    ``subscriptions.unsubscribed``)."""

    people: int
    unsubscribed: int


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    at: float
    kind: str
    text: str


class StoreUnavailable(Exception):
    """The database cannot be written (read-only, disk full, locked): retry later."""


class ExplanationFinal(Exception):
    """An incident's explanation cannot be replaced: messages carrying it have been decided
    (``told_at``), so customers read it as it is."""

    def __init__(self, incident_id: int, told_at: float) -> None:
        super().__init__(
            f"incident {incident_id}'s explanation has gone to customers and can no longer be "
            "replaced"
        )
        self.incident_id = incident_id
        self.told_at = told_at


class AlreadyApplied(StoreUnavailable):
    """Another process applied some of these transitions first (two replicas leading for a
    moment): nothing was written, and what is left unapplied is read again next time."""


@dataclass(frozen=True, slots=True)
class ReplicaRecord:
    """A replica as the database knows it: when it started, when it last said it was alive
    (its own clock), the digest of the checks its files declare, how many checks it holds and
    whether it leads."""

    name: str
    started_at: float
    seen_at: float
    digest: str
    host: str  # where its process runs, and its process id there
    pid: int
    checks: int = 0
    leads: bool = False
    shards: int = 0  # outbox shards it sends from


@dataclass(frozen=True, slots=True)
class MessageTally:
    """An incident's messages counted, for its post-incident report: how many of each kind
    went by each channel, wait or could not be delivered; how many people could not be told
    anything; and when each acknowledgement went out."""

    # (kind, status, channel) -> messages; the channel ("email", "sms", "webhook") of those
    # sent, "" for the others.
    counts: dict[tuple[str, str, str], int]
    undeliverable_people: int  # people with a message nobody could deliver
    acknowledged_at: tuple[float, ...]  # when each acknowledgement was sent, earliest first


@dataclass(frozen=True, slots=True)
class StoredWindow:
    """A maintenance window posted to the API: its settings as the API took them (JSON of
    ``config.MaintenanceWindow``), under an id the database never hands out again."""

    id: int
    spec: str
    created_at: float


@dataclass(frozen=True, slots=True)
class NoticeRecord:
    """An occurrence of a maintenance window whose customers are being, or were, told: by its
    ``ref`` (the window's and its start's), with the id its messages are kept under (the
    outbox's and told's ``incident_id`` is ``-id``), when all its notices were decided, when
    it was told as over (or found owing no such note), and when telling it cancelled began."""

    id: int
    ref: str
    systems: tuple[str, ...]
    starts_at: float
    ends_at: float
    announced_at: float | None = None
    over_at: float | None = None
    cancelled_at: float | None = None
