"""``monitor db status`` and ``monitor db upgrade``: the database's schema version, and
upgrading it explicitly (``monitor run`` upgrades on start unless ``--no-upgrade``)."""

from __future__ import annotations

import argparse
import asyncio
import sys

from monitor.app import Options
from monitor.store import StoreUnavailable
from monitor.store.location import DatabaseLocation, database_location
from monitor.store.migrations import SchemaChange, SchemaMismatch, too_new
from monitor.store.opening import open_store, schema_status


def on_database(args: argparse.Namespace, options: Options, env: dict[str, str]) -> int:
    db = database_location(str(options.db))  # checked by main: usable
    return _status(db) if args.db_command == "status" else _upgrade(db)


def _upgrade(db: DatabaseLocation) -> int:
    """Exit 0 with what was done; 2 when the database cannot be upgraded (newer than this
    monitor, not a monitor's, cannot be opened)."""
    try:
        print(asyncio.run(_upgraded(db)))
    except (SchemaMismatch, StoreUnavailable) as exc:
        print(f"{db}: {exc}", file=sys.stderr)
        return 2
    return 0


async def _upgraded(db: DatabaseLocation) -> SchemaChange:
    store = await open_store(db)  # opening it upgrades it
    await store.close()
    return store.schema


def _status(db: DatabaseLocation) -> int:
    """Exit 0 when the schema is this monitor's, 1 when migrations are pending, 2 when this
    monitor cannot use the database."""
    try:
        schema = asyncio.run(schema_status(db))
    except (SchemaMismatch, StoreUnavailable) as exc:
        print(f"{db}: {exc}", file=sys.stderr)
        return 2
    version = f"{schema.version} ({schema.note})" if schema.note else str(schema.version)
    print(f"backend: {schema.backend}")
    print(f"database: {schema.where}")
    print(f"schema: {version}; this monitor knows up to {schema.known}")
    if schema.version > schema.known:
        print("pending: none; the database is newer than this monitor")
        print(f"{db}: {too_new(schema.version, schema.known)}", file=sys.stderr)
        return 2
    if schema.pending:
        print(
            f"pending: {', '.join(schema.pending)} (`monitor db upgrade` applies "
            f"{'it' if len(schema.pending) == 1 else 'them'}; so does `monitor run` on start)"
        )
        return 1
    print("pending: none")
    return 0
