"""The SQLite file's schema version, and its upgrade by the files in ``migrations/sqlite``.

The version is ``PRAGMA user_version``, the number SQLite keeps in the file's header for the
application: it is written in the same transaction as the migration it records (a crash
leaves both or neither), needs no table of its own, and is 0 in a file nothing was made in.
Reading it and applying what is missing happen in one ``BEGIN IMMEDIATE`` transaction, which
takes the file's write lock first: a second process opening the same file meanwhile waits for
it (``OPENING_BUSY_TIMEOUT_MS``: minutes, not the 5 s of ordinary writes) and then finds the
schema made, so two monitors starting together on an empty file make one schema and no errors,
however slow the machine.

Monitor 0.1.0 recorded no version. Its files are recognised by their tables and indexes, which
must be exactly those ``0001_initial.sql`` makes, and are stamped version 1 on their first
upgrade; a file with other tables and no version is refused, never guessed at.
"""

from __future__ import annotations

import functools
import sqlite3
from pathlib import Path

from monitor.store.migrations import (
    Migration,
    Schema,
    SchemaChange,
    SchemaMismatch,
    migrations,
    to_apply,
)

BACKEND = "sqlite"
# SQLiteStore.check_writable's scratch table: made outside the migrations, by every release.
_SCRATCH = "_probe_write"


def upgrade(conn: sqlite3.Connection, where: str, *, apply: bool = True) -> SchemaChange:
    """Bring the database on ``conn`` (no transaction open) to the newest schema this monitor
    knows. SchemaMismatch when it is newer than that, when it is behind and ``apply`` is off
    (then nothing is written), or when it is not a monitor's database."""
    steps = migrations(BACKEND)
    conn.execute("BEGIN IMMEDIATE")
    try:
        found, unversioned = _version(conn)
        todo = to_apply(found, len(steps), upgrade=apply)
        for version in todo:
            for statement in statements(steps[version - 1]):
                conn.execute(statement)
        if todo or (apply and unversioned):
            conn.execute(f"PRAGMA user_version = {len(steps)}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return SchemaChange(BACKEND, where, found, len(steps), unversioned)


def status(path: Path) -> Schema:
    """Where the file's schema stands, read without changing (or creating) the file.
    SchemaMismatch when it is not a monitor's database; sqlite3.Error when it is no database."""
    steps = migrations(BACKEND)
    if not path.exists():
        return Schema(
            BACKEND, str(path), 0, len(steps), _names(steps), "the file does not exist yet"
        )
    # Read-write but never made (mode=rw): as the last connection to close, it removes the
    # write-ahead log files that a read-only one would leave behind.
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=rw", uri=True)
    try:
        conn.execute("BEGIN")  # both reads from one snapshot, even while another upgrades it
        found, unversioned = _version(conn)
    finally:
        conn.close()
    note = "monitor 0.1.0's: no version recorded yet" if unversioned else ""
    if not found:
        note = "empty"
    return Schema(BACKEND, str(path), found, len(steps), _names(steps[found:]), note)


@functools.cache
def statements(migration: Migration) -> tuple[str, ...]:
    """The statements of a migration's file, one by one: ``executescript`` would commit the
    transaction the upgrade must stay in."""
    found = []
    current = ""
    pieces = migration.sql.split(";")
    for piece in pieces[:-1]:
        current += piece + ";"
        if sqlite3.complete_statement(current):  # not a ";" inside a string or a comment
            found.append(current.strip())
            current = ""
    rest = (current + pieces[-1]).strip()
    if any(line.strip() and not line.lstrip().startswith("--") for line in rest.splitlines()):
        raise ValueError(f"migrations/{BACKEND}/{migration.name}.sql: the last statement has no ;")
    return tuple(found)


def _names(steps: tuple[Migration, ...]) -> tuple[str, ...]:
    return tuple(step.name for step in steps)


def _version(conn: sqlite3.Connection) -> tuple[int, bool]:
    """The file's schema version, and whether it was found by its tables (0.1.0 recorded none)."""
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version:
        return version, False
    made = _objects(conn)
    if not made:
        return 0, False
    release = _release_objects()
    if made == release:
        return 1, True
    raise SchemaMismatch(
        "the file has tables but no schema version, and they are not monitor 0.1.0's ("
        + "; ".join(
            f"{what}: {_some(names)}"
            for what, names in (
                ("missing or changed", {name for _, name, _ in release - made}),
                ("not monitor 0.1.0's", {name for _, name, _ in made - release}),
            )
            if names
        )
        + "): give a monitor's database, or a file that does not exist yet"
    )


def _objects(conn: sqlite3.Connection) -> frozenset[tuple[str, str, str]]:
    """Every table, index, view and trigger the file's user made, as (type, name, SQL)."""
    rows = conn.execute(
        "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL AND name != ? "
        "AND name NOT LIKE 'sqlite^_%' ESCAPE '^'",
        (_SCRATCH,),
    )
    return frozenset((str(kind), str(name), str(sql)) for kind, name, sql in rows)


@functools.cache
def _release_objects() -> frozenset[tuple[str, str, str]]:
    """What monitor 0.1.0 made in a file: version 1, made in memory. (SQLite keeps each
    ``CREATE TABLE IF NOT EXISTS`` of that release as ``CREATE TABLE``, so the SQL matches.)"""
    conn = sqlite3.connect(":memory:")
    try:
        for statement in statements(migrations(BACKEND)[0]):
            conn.execute(statement)
        return _objects(conn)
    finally:
        conn.close()


def _some(names: set[str]) -> str:
    listed = sorted(names)
    more = f" and {len(listed) - 5} more" if len(listed) > 5 else ""
    return ", ".join(listed[:5]) + more
