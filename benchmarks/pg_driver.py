"""psycopg 3 (async, psycopg-pool, the binary wheel) against asyncpg on the fan-out's query shapes.

    python benchmarks/pg_driver.py                 # 3 rounds of both drivers: ~3-5 minutes
    python benchmarks/pg_driver.py --rounds 1 --scale 0.1   # a quick look

A throwaway cluster (``tests/postgres.py``: initdb in a temp dir, 127.0.0.1, a role with a
scram-sha-256 password; PostgreSQL's durable defaults unless ``--fast``) serves every run. Each
(driver, shape) runs in a fresh process against a fresh database, on uvloop as ``monitor run``
does, through the driver's pool (8 connections) taking a connection per store call as a backend
would. The data a shape needs is made by the server (``generate_series``) before the clock
starts; what is timed is the driver's work, and the CPU is this client process's own
(``getrusage``: user + system). The shapes:

- ``insert``: 100,000 outbox rows (the decide step), 64 a transaction, as one multi-row
  ``INSERT ... ON CONFLICT (key) DO NOTHING`` whose command status says how many were new
  (what ``decide()`` returns); ``insert-many`` does the same batches with ``executemany``.
- ``people``: 100,000 subscribers of one system read back in pages of 1,000 by key range
  (``person_id > last ORDER BY person_id LIMIT 1000``, joined to ``people``).
- ``marks``: 20,000 transactions each updating 8 rows by key (a delivery batch's outcomes),
  ``executemany``, from 8 tasks at once sharing the pool.
- ``marks-one``: the same 20,000 batches, each one ``UPDATE ... FROM unnest(arrays)`` on its
  own (one statement is atomic without ``BEGIN``/``COMMIT``).
- ``claim``: 100,000 due items claimed 1,000 at a time: in a transaction, ``UPDATE ... SET
  claimed_by, claimed_until WHERE key IN (SELECT ... FOR UPDATE SKIP LOCKED) RETURNING`` every
  column, the rendered text and html among them.

Rounds alternate which driver goes first; the table shows each figure's median.
``--role psycopg|asyncpg --shape S`` runs one measurement against ``$BENCH_PG_URL`` and prints JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from importlib.metadata import version
from pathlib import Path
from typing import Any, Protocol

import asyncpg
import psycopg
import psycopg_pool
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from postgres import DURABLE_SETTINGS, FAST_SETTINGS, start_cluster

DRIVERS = ("psycopg", "asyncpg")
SHAPES = ("insert", "insert-many", "people", "marks", "marks-one", "claim")
POOL = 8  # connections, as the SMTP pool's default: one per sending task
CHILD_TIMEOUT = 900.0
URL_VARIABLE = (
    "BENCH_PG_URL"  # the URL (with its password) reaches a child by environment, not argv
)

SCHEMA = """
CREATE TABLE outbox (
    key TEXT PRIMARY KEY, incident_id BIGINT NOT NULL, person_id TEXT NOT NULL,
    kind TEXT NOT NULL, reason TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL,
    subject TEXT NOT NULL, text TEXT NOT NULL, html TEXT, sms TEXT NOT NULL,
    channels TEXT NOT NULL, status TEXT NOT NULL, tries INTEGER NOT NULL,
    next_try_at DOUBLE PRECISION NOT NULL, last_error TEXT NOT NULL,
    sent_at DOUBLE PRECISION, sent_via TEXT NOT NULL,
    claimed_by TEXT, claimed_until DOUBLE PRECISION);
CREATE INDEX outbox_due ON outbox (status, next_try_at);
CREATE TABLE people (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, email TEXT, phone TEXT, webhook TEXT,
    systems TEXT NOT NULL);
CREATE TABLE subscriptions (
    system TEXT NOT NULL, person_id TEXT NOT NULL, PRIMARY KEY (system, person_id));
"""
COLUMNS = (
    "key, incident_id, person_id, kind, reason, created_at, subject, text, html, sms, channels, "
    "status, tries, next_try_at, last_error, sent_at, sent_via"
)
WIDTH = len(COLUMNS.split(", "))
# A rendered acknowledgement is about this size (text ~0.9 kB, HTML ~3 kB, SMS ~150 B).
TEXT, HTML, SMS = "t" * 900, "h" * 3000, "s" * 150
OUTBOX_ROWS = f"""
INSERT INTO outbox ({COLUMNS})
SELECT 'incident-1.acknowledge.u' || lpad(i::text, 6, '0'), 1, 'u' || lpad(i::text, 6, '0'),
    'acknowledge', 'affected', 1.7e9 + i, 'Online payments are failing', repeat('t', 900),
    repeat('h', 3000), repeat('s', 150), '["email:u' || i || '@example.com"]', 'pending', 0,
    1.7e9, '', NULL, ''
FROM generate_series(1, {{n}}) AS i;
ANALYZE outbox;
"""
PEOPLE_ROWS = """
INSERT INTO people
SELECT 'u' || lpad(i::text, 6, '0'), 'Person ' || i, 'u' || i || '@example.com',
    '+4420' || lpad(i::text, 8, '0'), NULL, '["payment"]'
FROM generate_series(1, {n}) AS i;
INSERT INTO subscriptions SELECT 'payment', id FROM people;
ANALYZE people; ANALYZE subscriptions;
"""


# --- the drivers, behind the calls a store backend would make -------------------------------


class Client(Protocol):
    async def script(self, sql: str) -> None:
        """Run statements without parameters (setup)."""

    async def write(self, sql: str, args: Sequence[Any]) -> int:
        """One statement in a transaction; how many rows it changed."""

    async def write_alone(self, sql: str, args: Sequence[Any]) -> int:
        """One statement on its own (atomic without BEGIN and COMMIT); rows it changed."""

    async def write_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """One statement for each of ``rows``, in one transaction."""

    async def read(self, sql: str, args: Sequence[Any]) -> list[Sequence[Any]]:
        """The rows of one query (autocommit)."""

    async def read_in_transaction(self, sql: str, args: Sequence[Any]) -> list[Sequence[Any]]:
        """The rows of one statement run in an explicit transaction."""

    async def close(self) -> None: ...


class Psycopg:
    """psycopg 3's async connections from psycopg-pool; ``$n`` placeholders (a raw cursor) so
    both drivers run the very same SQL text."""

    def __init__(self, pool: psycopg_pool.AsyncConnectionPool[psycopg.AsyncConnection[Any]]):
        self.pool = pool

    @classmethod
    async def open(cls, url: str) -> Psycopg:
        pool = psycopg_pool.AsyncConnectionPool(
            url,
            min_size=POOL,
            max_size=POOL,
            open=False,
            kwargs={"autocommit": True, "cursor_factory": psycopg.AsyncRawCursor},
        )
        await pool.open(wait=True)
        return cls(pool)

    async def script(self, sql: str) -> None:
        async with self.pool.connection() as conn:
            await conn.execute(sql)

    async def write(self, sql: str, args: Sequence[Any]) -> int:
        async with self.pool.connection() as conn, conn.transaction():
            cursor = await conn.execute(sql, args)
            return cursor.rowcount

    async def write_alone(self, sql: str, args: Sequence[Any]) -> int:
        async with self.pool.connection() as conn:
            cursor = await conn.execute(sql, args)
            return cursor.rowcount

    async def write_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        async with self.pool.connection() as conn, conn.transaction():
            await conn.cursor().executemany(sql, rows)

    async def read(self, sql: str, args: Sequence[Any]) -> list[Sequence[Any]]:
        async with self.pool.connection() as conn:
            cursor = await conn.execute(sql, args)
            return await cursor.fetchall()

    async def read_in_transaction(self, sql: str, args: Sequence[Any]) -> list[Sequence[Any]]:
        async with self.pool.connection() as conn, conn.transaction():
            cursor = await conn.execute(sql, args)
            return await cursor.fetchall()

    async def close(self) -> None:
        await self.pool.close()


class Asyncpg:
    """asyncpg's own pool; its statement cache prepares every statement on first use."""

    def __init__(self, pool: Any) -> None:
        self.pool = pool

    @classmethod
    async def open(cls, url: str) -> Asyncpg:
        return cls(await asyncpg.create_pool(url, min_size=POOL, max_size=POOL))

    async def script(self, sql: str) -> None:
        async with self.pool.acquire() as conn:
            await conn.execute(sql)

    async def write(self, sql: str, args: Sequence[Any]) -> int:
        async with self.pool.acquire() as conn, conn.transaction():
            status: str = await conn.execute(sql, *args)  # e.g. "INSERT 0 64"
            return int(status.rsplit(" ", 1)[-1])

    async def write_alone(self, sql: str, args: Sequence[Any]) -> int:
        async with self.pool.acquire() as conn:
            status: str = await conn.execute(sql, *args)
            return int(status.rsplit(" ", 1)[-1])

    async def write_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.executemany(sql, rows)

    async def read(self, sql: str, args: Sequence[Any]) -> list[Sequence[Any]]:
        async with self.pool.acquire() as conn:
            rows: list[Sequence[Any]] = await conn.fetch(sql, *args)
            return rows

    async def read_in_transaction(self, sql: str, args: Sequence[Any]) -> list[Sequence[Any]]:
        async with self.pool.acquire() as conn, conn.transaction():
            rows: list[Sequence[Any]] = await conn.fetch(sql, *args)
            return rows

    async def close(self) -> None:
        await self.pool.close()


OPENERS: dict[str, Callable[[str], Awaitable[Client]]] = {
    "psycopg": Psycopg.open,
    "asyncpg": Asyncpg.open,
}


# --- the shapes: each prepares its data, then returns the timed part and its row count -------


Timed = tuple[Callable[[], Awaitable[int]], int]


def outbox_row(i: int) -> tuple[Any, ...]:
    person = f"u{i:06d}"
    return (
        f"incident-1.acknowledge.{person}",
        1,
        person,
        "acknowledge",
        "affected",
        1.7e9 + i,
        "Online payments are failing",
        TEXT,
        HTML,
        SMS,
        f'["email:{person}@example.com"]',
        "pending",
        0,
        1.7e9,
        "",
        None,
        "",
    )


def placeholders(rows: int) -> str:
    return ", ".join(
        "(" + ", ".join(f"${r * WIDTH + c + 1}" for c in range(WIDTH)) + ")" for r in range(rows)
    )


async def insert(client: Client, n: int, batch: int = 64) -> Timed:
    rows = [outbox_row(i) for i in range(n)]
    into = f"INSERT INTO outbox ({COLUMNS}) VALUES"
    sql = {
        size: f"{into} {placeholders(size)} ON CONFLICT (key) DO NOTHING"
        for size in {batch, n % batch}
        if size
    }

    async def run() -> int:
        new = 0
        for start in range(0, n, batch):
            chunk = rows[start : start + batch]
            new += await client.write(sql[len(chunk)], [v for row in chunk for v in row])
        assert new == n, new
        return n

    return run, n


async def insert_many(client: Client, n: int, batch: int = 64) -> Timed:
    rows = [outbox_row(i) for i in range(n)]
    sql = f"INSERT INTO outbox ({COLUMNS}) VALUES {placeholders(1)} ON CONFLICT (key) DO NOTHING"

    async def run() -> int:
        for start in range(0, n, batch):
            await client.write_many(sql, rows[start : start + batch])
        return n

    return run, n


async def people(client: Client, n: int, page: int = 1000) -> Timed:
    await client.script(PEOPLE_ROWS.format(n=n))
    sql = (
        "SELECT p.id, p.name, p.email, p.phone, p.webhook, p.systems FROM subscriptions s "
        "JOIN people p ON p.id = s.person_id WHERE s.system = $1 AND s.person_id > $2 "
        "ORDER BY s.person_id LIMIT $3"
    )

    async def run() -> int:
        seen, last = 0, ""
        while rows := await client.read(sql, ("payment", last, page)):
            seen += len(rows)
            last = rows[-1][0]
        assert seen == n, seen
        return seen

    return run, n


async def marks(client: Client, n: int, each: int = 8) -> Timed:
    batches = n // each
    await client.script(OUTBOX_ROWS.format(n=batches * each))
    sql = (
        "UPDATE outbox SET status = $1, tries = $2, next_try_at = $3, last_error = $4, "
        "sent_at = $5, sent_via = $6, text = '', html = NULL, sms = '' "
        "WHERE key = $7 AND status = 'pending'"
    )
    work = [
        [
            (
                "sent",
                1,
                1.7e9,
                "",
                1.7e9 + 1,
                f"email:u{i:06d}@example.com",
                f"incident-1.acknowledge.u{i:06d}",
            )
            for i in range(b * each + 1, (b + 1) * each + 1)
        ]
        for b in range(batches)
    ]

    async def worker(mine: list[list[tuple[Any, ...]]]) -> None:
        for rows in mine:
            await client.write_many(sql, rows)

    async def run() -> int:
        await asyncio.gather(*(worker(work[w::POOL]) for w in range(POOL)))
        left = await client.read("SELECT count(*) FROM outbox WHERE status = 'pending'", ())
        assert left[0][0] == 0, left
        return batches * each

    return run, batches * each


async def marks_one(client: Client, n: int, each: int = 8) -> Timed:
    """``marks`` as one statement a batch, atomic alone: the 8 outcomes as arrays, by key."""
    batches = n // each
    await client.script(OUTBOX_ROWS.format(n=batches * each))
    sql = (
        "UPDATE outbox AS o SET status = v.status, tries = v.tries, next_try_at = v.next_try_at, "
        "last_error = v.last_error, sent_at = v.sent_at, sent_via = v.sent_via, text = '', "
        "html = NULL, sms = '' FROM unnest($1::text[], $2::int[], $3::float8[], $4::text[], "
        "$5::float8[], $6::text[], $7::text[]) "
        "AS v(status, tries, next_try_at, last_error, sent_at, sent_via, key) "
        "WHERE o.key = v.key AND o.status = 'pending'"
    )
    work: list[list[list[Any]]] = []
    for b in range(batches):
        people = [f"u{i:06d}" for i in range(b * each + 1, (b + 1) * each + 1)]
        work.append(
            [
                ["sent"] * each,
                [1] * each,
                [1.7e9] * each,
                [""] * each,
                [1.7e9 + 1] * each,
                [f"email:{p}@example.com" for p in people],
                [f"incident-1.acknowledge.{p}" for p in people],
            ]
        )

    async def worker(mine: list[list[list[Any]]]) -> None:
        for columns in mine:
            assert await client.write_alone(sql, columns) == each

    async def run() -> int:
        await asyncio.gather(*(worker(work[w::POOL]) for w in range(POOL)))
        return batches * each

    return run, batches * each


async def claim(client: Client, n: int, page: int = 1000) -> Timed:
    await client.script(OUTBOX_ROWS.format(n=n))
    sql = (
        f"UPDATE outbox SET claimed_by = $1, claimed_until = $2 WHERE key IN ("
        "SELECT key FROM outbox WHERE status = 'pending' AND next_try_at <= $3 "
        "AND (claimed_until IS NULL OR claimed_until < $3) ORDER BY next_try_at, key "
        f"LIMIT $4 FOR UPDATE SKIP LOCKED) RETURNING {COLUMNS}, claimed_by, claimed_until"
    )
    now = 1.7e9 + 1

    async def run() -> int:
        seen = 0
        while rows := await client.read_in_transaction(sql, ("replica-1", now + 60, now, page)):
            seen += len(rows)
        assert seen == n, seen
        return seen

    return run, n


SHAPE_RUNS: dict[str, Callable[[Client, int], Awaitable[Timed]]] = {
    "insert": insert,
    "insert-many": insert_many,
    "people": people,
    "marks": marks,
    "marks-one": marks_one,
    "claim": claim,
}
# Rows a shape handles at --scale 1 (marks: 20,000 transactions of 8).
SHAPE_ROWS = {
    "insert": 100_000,
    "insert-many": 100_000,
    "people": 100_000,
    "marks": 160_000,
    "marks-one": 160_000,
    "claim": 100_000,
}


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def measure(driver: str, shape: str, url: str, n: int) -> dict[str, Any]:
    client = await OPENERS[driver](url)
    try:
        await client.script(SCHEMA)
        run, rows = await SHAPE_RUNS[shape](client, n)
        wall, cpu = time.perf_counter(), cpu_seconds()
        await run()
        wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
    finally:
        await client.close()
    return {
        "driver": driver,
        "shape": shape,
        "rows": rows,
        "seconds": round(wall, 3),
        "cpu_s": round(cpu, 3),
        "rows_per_s": round(rows / wall),
        "rows_per_cpu_s": round(rows / cpu) if cpu else None,
    }


# --- the run ----------------------------------------------------------------------------------


def versions(server: str) -> str:
    impl = psycopg.pq.__impl__
    return (
        f"Python {platform.python_version()}, uvloop {version('uvloop')}, psycopg "
        f"{version('psycopg')} ({impl}, libpq {psycopg.pq.version()}), psycopg-pool "
        f"{version('psycopg-pool')}, asyncpg {version('asyncpg')}, {server}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--role", choices=DRIVERS)
    parser.add_argument("--shape", choices=SHAPES, action="append")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--scale", type=float, default=1.0, help="1.0: 100,000 rows a shape")
    parser.add_argument("--fast", action="store_true", help="fsync off (the tests' settings)")
    args = parser.parse_args()
    shapes = args.shape or list(SHAPES)
    if args.role:
        url = os.environ[URL_VARIABLE]
        for shape in shapes:
            rows = max(1000, int(SHAPE_ROWS[shape] * args.scale))
            print(json.dumps(uvloop.run(measure(args.role, shape, url, rows))), flush=True)
        return 0
    results: dict[tuple[str, str], list[dict[str, Any]]] = {}
    with start_cluster(FAST_SETTINGS if args.fast else DURABLE_SETTINGS) as cluster:
        server = cluster.sql("SELECT version()").split(" on ")[0]
        print(versions(server), flush=True)
        for round_ in range(args.rounds):
            order = DRIVERS if round_ % 2 == 0 else DRIVERS[::-1]
            for shape in shapes:
                for driver in order:
                    name = cluster.create_database("bench")
                    done = subprocess.run(
                        [
                            sys.executable,
                            __file__,
                            "--role",
                            driver,
                            "--shape",
                            shape,
                            "--scale",
                            str(args.scale),
                        ],
                        env={**os.environ, URL_VARIABLE: cluster.url(name)},
                        capture_output=True,
                        text=True,
                        timeout=CHILD_TIMEOUT,
                        check=False,
                    )
                    cluster.drop_database(name)
                    if done.returncode != 0:
                        print(done.stderr, file=sys.stderr)
                        return 1
                    result = json.loads(done.stdout)
                    print(json.dumps(result), flush=True)
                    results.setdefault((shape, driver), []).append(result)
    heads = ("shape", "driver", "rows", "rows/s", "client CPU s", "rows/CPU-s")
    print("\n{:<12} {:<8} {:>8} {:>9} {:>13} {:>11}".format(*heads))
    for (shape, driver), runs in results.items():
        print(
            f"{shape:<12} {driver:<8} {runs[0]['rows']:>8,} "
            f"{statistics.median(r['rows_per_s'] for r in runs):>9,.0f} "
            f"{statistics.median(r['cpu_s'] for r in runs):>13.2f} "
            f"{statistics.median(r['rows_per_cpu_s'] for r in runs):>11,.0f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
