"""The shared store: PostgreSQL through psycopg 3 and psycopg-pool, behind ``roles.Store``.

A module a role (``states``, ``incidents``, ``people``, ``outbox``, ``replicas``,
``maintenance``, ``subscriptions``), each
holding its SQL, over one ``connection.Database`` (the pool; every driver error becomes
``StoreUnavailable``); ``schema`` applies ``migrations/postgres``; ``rows`` writes values as
SQLite's backend does.
``open_postgres`` opens one: the schema first, on a connection of its own, then the pool.
"""

from __future__ import annotations

from monitor.store.location import PostgresLocation, postgres_location
from monitor.store.migrations import SchemaChange
from monitor.store.postgres import schema
from monitor.store.postgres.connection import CHECK_WAIT_S, Database
from monitor.store.postgres.incidents import Incidents
from monitor.store.postgres.maintenance import Maintenance
from monitor.store.postgres.outbox import Outbox
from monitor.store.postgres.people import People
from monitor.store.postgres.replicas import Replicas
from monitor.store.postgres.states import States
from monitor.store.postgres.subscriptions import Subscriptions

__all__ = ["PostgresStore", "open_postgres"]


class PostgresStore(States, Incidents, People, Outbox, Replicas, Maintenance, Subscriptions):
    """Every role on one PostgreSQL database. Open it with ``open_postgres``."""

    def __init__(self, db: Database, schema_change: SchemaChange) -> None:
        self.db = db
        self.schema = schema_change  # what opening did to the schema, as SQLiteStore's

    @property
    def location(self) -> PostgresLocation:
        return self.db.location

    async def check_writable(self) -> None:
        """Raise StoreUnavailable unless a write commits now: one row updated to itself, so
        a server that is down, unreachable or read-only (a standby) says so, within a second."""
        async with self.db.connection(CHECK_WAIT_S) as conn:
            await conn.execute(f"UPDATE {schema.VERSION_TABLE} SET version = version")

    async def maintain(self) -> dict[str, int]:
        """Nothing: autovacuum gives the rows a prune deleted back for reuse by itself."""
        return {}

    async def close(self) -> None:
        await self.db.close()


async def open_postgres(url: str | PostgresLocation, *, upgrade: bool = True) -> PostgresStore:
    """Open the database at ``url`` and bring its schema up to this monitor's version
    (``store.schema`` says what that did). With ``upgrade`` off, a database behind it is
    refused; one ahead of it always is (SchemaMismatch). StoreUnavailable when it cannot be
    reached; ValueError for a URL libpq cannot read."""
    location = url if isinstance(url, PostgresLocation) else postgres_location(url)
    db = Database(location)
    change = await schema.upgrade(db, apply=upgrade)
    await db.open()
    return PostgresStore(db, change)
