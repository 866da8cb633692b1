"""Where the monitor remembers things, behind one interface (``roles.Store``) with the data
types every backend and caller share (``types``); ``sqlite`` is the embedded backend, and
``location`` says which database ``--db`` / ``MONITOR_DB`` names. Only this package knows SQL.
"""

from monitor.store.roles import Store
from monitor.store.sqlite import SQLiteStore
from monitor.store.types import (
    PENDING,
    SENT,
    UNDELIVERABLE,
    OutboxItem,
    StoreUnavailable,
    TimelineEntry,
)

__all__ = [
    "PENDING",
    "SENT",
    "UNDELIVERABLE",
    "OutboxItem",
    "SQLiteStore",
    "Store",
    "StoreUnavailable",
    "TimelineEntry",
]
