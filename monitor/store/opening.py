"""Opening the database ``--db`` names, whichever backend it is: the one place that chooses.

``open_store`` opens it, bringing its schema up to this monitor's (``store.schema`` says what
that did); ``schema_status`` reads where its schema stands without changing anything. Both
raise ``StoreUnavailable`` when it cannot be reached or read and ``SchemaMismatch`` when its
schema is not one this monitor can run on.
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

from monitor.store import sqlite_schema
from monitor.store.location import DatabaseLocation, PostgresLocation
from monitor.store.migrations import Schema
from monitor.store.sqlite import SQLiteStore
from monitor.store.types import StoreUnavailable

if TYPE_CHECKING:
    from monitor.store.postgres import PostgresStore

# The PostgreSQL backend is imported when a location names it: a monitor on SQLite never
# loads the driver and its pool (~95 ms at start).


async def open_store(
    location: DatabaseLocation, *, upgrade: bool = True
) -> SQLiteStore | PostgresStore:
    """The store at ``location``, its schema upgraded (or, with ``upgrade`` off, refused when
    behind)."""
    if isinstance(location, PostgresLocation):
        from monitor.store.postgres import open_postgres

        return await open_postgres(location, upgrade=upgrade)
    return SQLiteStore(location.path, upgrade=upgrade)


async def schema_status(location: DatabaseLocation) -> Schema:
    """Where the database's schema stands, read without changing (or creating) anything."""
    if isinstance(location, PostgresLocation):
        from monitor.store.postgres import schema
        from monitor.store.postgres.connection import Database

        return await schema.status(Database(location))
    try:
        return sqlite_schema.status(location.path)
    except sqlite3.Error as exc:
        raise StoreUnavailable(f"cannot read the database: {exc}") from None
