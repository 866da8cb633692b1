"""The PostgreSQL database's schema version, and its upgrade by the files in
``migrations/postgres`` (numbered in step with SQLite's: one monitor version, one schema number).

The version is the one row of ``schema_version``, written in the same transaction as the
migrations it records: PostgreSQL's DDL is transactional, so a crash leaves both or neither.
Reading it and applying what is missing happen in one transaction that first takes
``pg_advisory_xact_lock``: a second process starting meanwhile waits there, then reads the
version the first committed and finds nothing to do, so two monitors starting together on an
empty database make one schema and no errors. The lock ends with the transaction, or with the
session of a process that died holding it: nothing is left to break by hand.

The monitor never wrote a PostgreSQL database before versions were recorded, so a database
without ``schema_version`` is empty to the monitor; one that already has tables of the
monitor's names is refused, never guessed at.
"""

from __future__ import annotations

import functools
import re

from monitor.store.migrations import Schema, SchemaChange, SchemaMismatch, migrations, to_apply
from monitor.store.postgres.connection import Connection, Database

BACKEND = "postgresql"  # as ``db status`` and every SchemaChange name it
FOLDER = "postgres"  # migrations/postgres
# pg_advisory_xact_lock's key: any number, the same in every monitor ("monitor" in ASCII).
LOCK = 0x6D6F6E69746F72
VERSION_TABLE = "schema_version"
_MAKE_VERSION_TABLE = (
    f"CREATE TABLE IF NOT EXISTS {VERSION_TABLE} ("
    "only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row), version integer NOT NULL)"
)
_RECORD_VERSION = (
    f"INSERT INTO {VERSION_TABLE} (version) VALUES (%s) "
    "ON CONFLICT (only_row) DO UPDATE SET version = excluded.version"
)
_TABLE = re.compile(r"^CREATE TABLE (\w+)", re.MULTILINE)


async def upgrade(db: Database, *, apply: bool = True) -> SchemaChange:
    """Bring the database to the newest schema this monitor knows, on a connection of its own.
    SchemaMismatch when it is newer than that, when it is behind and ``apply`` is off (then
    nothing is written), or when it has the monitor's tables but no version;
    StoreUnavailable when it cannot be reached."""
    steps = migrations(FOLDER)
    conn = await db.connect()
    try:
        async with db.unavailable_on_error(), conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK,))
            found = await _version(conn)
            todo = to_apply(found, len(steps), upgrade=apply)
            if todo:
                await conn.execute(_MAKE_VERSION_TABLE)
                for version in todo:
                    await conn.execute(steps[version - 1].sql)
                await conn.execute(_RECORD_VERSION, (len(steps),))
    finally:
        await conn.close()
    return SchemaChange(BACKEND, db.where, found, len(steps))


async def status(db: Database) -> Schema:
    """Where the database's schema stands, read without changing anything. SchemaMismatch when
    it has the monitor's tables but no version; StoreUnavailable when it cannot be reached."""
    steps = migrations(FOLDER)
    conn = await db.connect()
    try:
        async with db.unavailable_on_error(), conn.transaction():
            found = await _version(conn)
    finally:
        await conn.close()
    pending = tuple(step.name for step in steps[found:])
    return Schema(BACKEND, db.where, found, len(steps), pending, "" if found else "empty")


async def _version(conn: Connection) -> int:
    cursor = await conn.execute("SELECT to_regclass(%s) IS NOT NULL", (VERSION_TABLE,))
    made = await cursor.fetchone()
    if made is not None and made[0]:
        cursor = await conn.execute(f"SELECT version FROM {VERSION_TABLE}")
        row = await cursor.fetchone()
        return int(row[0]) if row is not None else 0
    cursor = await conn.execute(
        "SELECT name FROM unnest(%b::text[]) AS name WHERE to_regclass(name) IS NOT NULL "
        "ORDER BY name",
        (list(_monitor_tables()),),
    )
    clashing = [str(name) for (name,) in await cursor.fetchall()]
    if clashing:
        more = f" and {len(clashing) - 5} more" if len(clashing) > 5 else ""
        raise SchemaMismatch(
            f"the database has tables named as the monitor's ({', '.join(clashing[:5])}{more}) "
            f"but no {VERSION_TABLE}, so it is no monitor's: give a monitor's database, or an "
            "empty one"
        )
    return 0


@functools.cache
def _monitor_tables() -> tuple[str, ...]:
    """Every table the migrations make."""
    made = (name for step in migrations(FOLDER) for name in _TABLE.findall(step.sql))
    return (*made, VERSION_TABLE)
