"""The PostgreSQL backend's connections: one psycopg-pool of autocommit connections, and the one
place a driver's error becomes ``StoreUnavailable``, in words of our own.

Autocommit, because most store calls are one statement, atomic on its own: ``BEGIN`` and
``COMMIT`` would be two more round trips each (benchmarks/README.md, "PostgreSQL driver"); a
call of several statements opens ``transaction()``. Messages name the database as
``host:port/dbname`` and never quote the URL: libpq quotes the parts of a URL it cannot read,
and the password is one of them; any text of the driver's passed on has the password taken out.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, Self
from urllib.parse import quote

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from monitor.store.location import PostgresLocation
from monitor.store.types import StoreUnavailable

Connection = psycopg.AsyncConnection[TupleRow]
Params = Sequence[Any] | dict[str, Any]

CONNECT_TIMEOUT_S = 5  # libpq's connect_timeout, unless the URL gives one
WAIT_S = 5.0  # how long a store call waits for a connection before StoreUnavailable
CHECK_WAIT_S = 1.0  # ... and check_writable, which answers /readyz and /metrics
AWAY_WAIT_S = 0.25  # ... any call while the last attempt to connect failed
MIN_CONNECTIONS = 1
MAX_CONNECTIONS = 8  # as the SMTP pool's default: one per sending task, and the probes' writes
APPLICATION = "monitor"  # in pg_stat_activity, unless the URL names another
_READ_ONLY = "25006"  # read_only_sql_transaction: a standby, or default_transaction_read_only
_CONNECTION_CLASSES = ("08", "57")  # connection exceptions; operator intervention (shutdown)
_LIBPQ_PREFIX = re.compile(r"^(connection failed: )?(connection to server (at|on) .*? failed: )?")


class Failures:
    """What the last attempt to connect said ("" once one succeeded), so that a call that
    waited in vain for a connection can say why there was none."""

    def __init__(self) -> None:
        self.last = ""


def _connection_class(failures: Failures) -> type[Connection]:
    """psycopg's connection, remembering in ``failures`` why connecting failed: the pool
    reconnects in the background and only logs it."""

    class Remembering(psycopg.AsyncConnection[TupleRow]):
        @classmethod
        async def connect(cls, conninfo: str = "", **kwargs: Any) -> Self:
            try:
                conn = await super().connect(conninfo, **kwargs)
            except psycopg.Error as exc:
                failures.last = _first_line(exc)
                raise
            failures.last = ""
            return conn

    return Remembering


def connect_options(location: PostgresLocation) -> dict[str, Any]:
    """What every connection is opened with, besides the URL (which wins where it says)."""
    given = conninfo_to_dict(location.url)
    options: dict[str, Any] = {"autocommit": True}
    if "connect_timeout" not in given:
        options["connect_timeout"] = CONNECT_TIMEOUT_S
    if "application_name" not in given:
        options["application_name"] = APPLICATION
    return options


class Database:
    """The pool, and every call's way to it: ``connection()`` for one statement (committed on
    its own), ``transaction()`` for several; both raise only ``StoreUnavailable``."""

    def __init__(self, location: PostgresLocation) -> None:
        self.location = location
        self.where = location.where
        password = str(conninfo_to_dict(location.url).get("password") or "")
        self._secrets = [s for s in {password, quote(password, safe="")} if s]
        self.failures = Failures()
        self.pool: AsyncConnectionPool[Connection] = AsyncConnectionPool(
            location.url,
            connection_class=_connection_class(self.failures),
            kwargs=connect_options(location),
            min_size=MIN_CONNECTIONS,
            max_size=MAX_CONNECTIONS,
            timeout=WAIT_S,
            open=False,
            name="monitor-store",
        )
        self._checking: asyncio.Task[None] | None = None

    async def open(self) -> None:
        """Start the pool: its connections are made in the background, as calls need them."""
        await self.pool.open(wait=False)

    async def close(self) -> None:
        if self._checking is not None:
            self._checking.cancel()
        await self.pool.close()

    async def connect(self) -> Connection:
        """A connection of its own, outside the pool (the schema's upgrade holds one)."""
        try:
            return await psycopg.AsyncConnection.connect(
                self.location.url, **connect_options(self.location)
            )
        except psycopg.Error as exc:
            raise self.unavailable(exc) from None

    @contextlib.asynccontextmanager
    async def unavailable_on_error(self, wait: float = WAIT_S) -> AsyncIterator[None]:
        """Whatever the driver raises in the block, raised as StoreUnavailable."""
        try:
            yield
        except psycopg.Error as exc:
            raise self.unavailable(exc, wait) from None

    @contextlib.asynccontextmanager
    async def connection(self, wait: float | None = None) -> AsyncIterator[Connection]:
        """A connection of the pool, waiting ``wait`` seconds at most (by default ``WAIT_S``:
        every connection may be busy with a fan-out), but only ``AWAY_WAIT_S`` while the last
        attempt to connect failed: calls fail fast while the server is away, and each still
        has the pool try again at once."""
        if self.failures.last:
            wait = AWAY_WAIT_S
        elif wait is None:
            wait = WAIT_S
        async with self.unavailable_on_error(wait), self.pool.connection(wait) as conn:
            yield conn

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Connection]:
        """A connection in a transaction, committed when the block ends, rolled back (and
        StoreUnavailable raised) when anything in it fails."""
        async with self.connection() as conn, conn.transaction():
            yield conn

    async def rows(self, sql: str, params: Params | None = None) -> list[TupleRow]:
        async with self.connection() as conn:
            cursor = await conn.execute(sql, params)
            return await cursor.fetchall()

    async def row(self, sql: str, params: Params | None = None) -> TupleRow | None:
        async with self.connection() as conn:
            cursor = await conn.execute(sql, params)
            return await cursor.fetchone()

    async def run(self, sql: str, params: Params | None = None) -> int:
        """One statement, committed on its own; how many rows it changed."""
        async with self.connection() as conn:
            cursor = await conn.execute(sql, params)
            return cursor.rowcount

    def unavailable(self, exc: psycopg.Error, wait: float = WAIT_S) -> StoreUnavailable:
        """``exc`` in words of our own: where, what kind of trouble, and the driver's first
        line without the password."""
        state = exc.sqlstate or ""
        if isinstance(exc, PoolTimeout):
            why = self.failures.last or "every connection is busy, or the server does not answer"
            said = f"cannot be reached (no connection within {wait:g} s: {why})"
        elif state == _READ_ONLY:
            said = f"refuses writes ({_first_line(exc)})"
        elif not state or state[:2] in _CONNECTION_CLASSES:
            said = _not_connected(_first_line(exc))
            self._check_soon()
        else:
            said = f"failed ({_first_line(exc)})"
        return StoreUnavailable(self.redact(f"the PostgreSQL database {self.where} {said}"))

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def _check_soon(self) -> None:
        """A lost connection (a restarted server) means the idle ones are most likely lost
        too: have the pool test them now, rather than lend each out to fail once."""
        if not self.pool.closed and (self._checking is None or self._checking.done()):
            self._checking = asyncio.get_running_loop().create_task(self._check())

    async def _check(self) -> None:
        with contextlib.suppress(psycopg.Error):
            await self.pool.check()


async def first_that_deletes(
    conn: Connection, statements: Sequence[str], params: Mapping[str, Any]
) -> int:
    """One batch of a prune, in one transaction: ``statements`` in order until one deletes
    rows (how many: the next batch takes the next ones), or a ``SELECT`` among them finds a row
    (0: what it looks for keeps all the rest, as a message still pending does); 0 when none
    has anything left to delete."""
    for sql in statements:
        cursor = await conn.execute(sql, params)
        if sql.startswith("SELECT"):
            if await cursor.fetchone() is not None:
                return 0
        elif cursor.rowcount:
            return cursor.rowcount
    return 0


def _first_line(exc: BaseException) -> str:
    """The driver's first line, less libpq's ``connection to server at "HOST", port PORT
    failed:`` (our messages name the database already)."""
    text = str(exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    return _LIBPQ_PREFIX.sub("", line).strip()


def _not_connected(reason: str) -> str:
    """A server that answered with a FATAL error refuses us (a password, a database that
    does not exist, too many clients); otherwise nothing answered."""
    if reason.startswith("FATAL:"):
        return f"refuses the connection ({reason.removeprefix('FATAL:').strip()})"
    return f"cannot be reached ({reason})"
