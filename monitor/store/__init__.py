"""Where the monitor remembers things, behind one async interface (``roles.Store``, made of
small roles: ``StateLog``, ``IncidentLog``, ``People``, ``Outbox``, ``Replicas``,
``Housekeeping``; see docs/store.md) with the data types every backend and caller share
(``types``); ``sqlite`` is
the embedded backend, ``postgres`` the shared one, ``location`` says which database ``--db`` /
``MONITOR_DB`` names and ``opening`` opens it. Only this package knows SQL.
"""

from monitor.store.roles import (
    Housekeeping,
    IncidentLog,
    Outbox,
    People,
    Replicas,
    StateLog,
    Store,
)
from monitor.store.sqlite import SQLiteStore
from monitor.store.types import (
    PENDING,
    SENT,
    UNDELIVERABLE,
    ExplanationFinal,
    OutboxItem,
    ReplicaRecord,
    StoreUnavailable,
    TimelineEntry,
)

__all__ = [
    "PENDING",
    "SENT",
    "UNDELIVERABLE",
    "ExplanationFinal",
    "Housekeeping",
    "IncidentLog",
    "Outbox",
    "OutboxItem",
    "People",
    "ReplicaRecord",
    "Replicas",
    "SQLiteStore",
    "StateLog",
    "Store",
    "StoreUnavailable",
    "TimelineEntry",
]
