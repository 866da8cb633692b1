"""Where the monitor remembers things, behind one async interface (``roles.Store``, made of
small roles: ``StateLog``, ``IncidentLog``, ``People``, ``Outbox``, ``Replicas``,
``Maintenance``, ``Subscriptions``, ``Housekeeping``; see docs/store.md) with the data types
every backend and caller share (``types``); ``sqlite`` is the embedded backend, ``postgres``
the shared one, ``location`` says which database ``--db`` / ``MONITOR_DB`` names and
``opening`` opens it.
Only this package knows SQL.
"""

from monitor.store.audience import count_audience
from monitor.store.roles import (
    Housekeeping,
    IncidentLog,
    Maintenance,
    Outbox,
    People,
    Replicas,
    StateLog,
    Store,
    Subscriptions,
)
from monitor.store.sqlite import SQLiteStore
from monitor.store.types import (
    PENDING,
    SENT,
    UNDELIVERABLE,
    AffectedCount,
    ExplanationFinal,
    NoticeRecord,
    OutboxItem,
    ReplicaRecord,
    StoredWindow,
    StoreUnavailable,
    TimelineEntry,
)

__all__ = [
    "PENDING",
    "SENT",
    "UNDELIVERABLE",
    "AffectedCount",
    "ExplanationFinal",
    "Housekeeping",
    "IncidentLog",
    "Maintenance",
    "NoticeRecord",
    "Outbox",
    "OutboxItem",
    "People",
    "ReplicaRecord",
    "Replicas",
    "SQLiteStore",
    "StateLog",
    "Store",
    "StoreUnavailable",
    "StoredWindow",
    "Subscriptions",
    "TimelineEntry",
    "count_audience",
]
