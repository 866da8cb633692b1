"""The schema's versions: for each backend, ordered migrations, one plain SQL file each
(``sqlite/0001_initial.sql``, ``sqlite/0002_attempts_at.sql``, ...), shipped in the package.

Version N is the schema after files 1 to N. ``0001_initial`` is the schema of monitor 0.1.0,
the first release; each later file changes the one before it. A released file is never
edited: a database that ran it will not run it again. Each backend records its version in the
database itself, reads it and applies what is missing in one transaction under a lock, so two
processes starting together make one schema (``monitor.store.sqlite_schema`` for SQLite). What
may run on which version is decided here, the same for every backend.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from importlib import resources

_FILE = re.compile(r"(\d{4})_[a-z0-9_]+\.sql")


class SchemaMismatch(Exception):
    """The database's schema is not one this monitor can run on, and it will not change by
    itself: the message says what to do. Never worth retrying, unlike ``StoreUnavailable``."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str  # the file's name without ``.sql``: "0002_attempts_at"
    sql: str


@functools.cache
def migrations(backend: str) -> tuple[Migration, ...]:
    """``backend``'s migrations in order, the first version 1. A file misnamed or a number
    missing or repeated is a mistake in the package, refused by name (tests/test_migrations.py
    loads every backend's)."""
    found = []
    for entry in (resources.files(__name__) / backend).iterdir():
        if not entry.name.endswith(".sql"):
            continue
        named = _FILE.fullmatch(entry.name)
        if named is None:
            raise ValueError(f"migrations/{backend}/{entry.name}: not named like 0002_what.sql")
        found.append(Migration(int(named.group(1)), entry.name[:-4], entry.read_text("utf-8")))
    found.sort(key=lambda m: (m.version, m.name))
    for expected, migration in enumerate(found, start=1):
        if migration.version != expected:
            raise ValueError(
                f"migrations/{backend}/{migration.name}.sql: expected number {expected:04d} "
                "(each migration's number is the one before it plus one)"
            )
    return tuple(found)


def to_apply(found: int, known: int, *, upgrade: bool) -> range:
    """The versions to apply, in order, to a database at version ``found`` for a monitor that
    knows up to ``known``; SchemaMismatch when it is newer, or behind and ``upgrade`` is off."""
    if found > known:
        raise too_new(found, known)
    if found < known and not upgrade:
        raise SchemaMismatch(
            f"the database is at schema {found}; this monitor needs {known}: run "
            "`monitor db upgrade` (or start without --no-upgrade, which upgrades it on start)"
        )
    return range(found + 1, known + 1)


def too_new(found: int, known: int) -> SchemaMismatch:
    """A database at ``found`` is newer than a monitor that knows up to ``known``: an older
    monitor never runs on a schema it does not know (its queries could corrupt it)."""
    return SchemaMismatch(
        f"the database is at schema {found}; this monitor knows up to {known}: "
        "upgrade the monitor, or use another database"
    )


@dataclass(frozen=True)
class Schema:
    """Where a database's schema stands, as ``monitor db status`` tells it."""

    backend: str  # "sqlite"
    where: str  # a file path, or a server's address: never a password
    version: int  # 0: nothing made yet
    known: int  # the newest version this monitor knows
    pending: tuple[str, ...]  # the names of the migrations it lacks, in order
    note: str = ""  # what else to know: "the file does not exist yet", ...


@dataclass(frozen=True)
class SchemaChange:
    """What opening a database did to its schema."""

    backend: str
    where: str
    before: int
    after: int
    unversioned: bool = False  # found without a version: made by monitor 0.1.0

    def __str__(self) -> str:
        place = f"({self.backend}, {self.where})"
        before = f"{self.before} (as monitor 0.1.0 made it)" if self.unversioned else self.before
        if self.before == self.after:
            return f"schema {before}, up to date {place}"
        return f"schema {before} -> {self.after} {place}"
