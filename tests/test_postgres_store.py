"""The PostgreSQL backend against a real server (``pg_database``: a throwaway cluster, a fresh
database a test): what matters most when several processes share one database and the server
goes away, the schema's versions, and the URL's password kept out of every message. The
behaviour every backend shares is in tests/test_store_contract.py."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
from postgres import Database

from monitor.model import Address, Person
from monitor.store import PENDING, SENT, UNDELIVERABLE, OutboxItem, Store, StoreUnavailable
from monitor.store.location import (
    PostgresLocation,
    SQLiteLocation,
    database_location,
)
from monitor.store.migrations import SchemaMismatch, migrations
from monitor.store.postgres import PostgresStore, open_postgres
from monitor.store.postgres.outbox import DUE, DUE_IN_SHARDS, OUTCOMES, outcome_params
from monitor.store.postgres.schema import FOLDER, LOCK
from monitor.store.types import outbox_shard

KNOWN = len(migrations(FOLDER))
RECONNECT_S = 30.0  # how long the pool may take to reach a server started again


@pytest.fixture
async def opened(pg_database: Database) -> AsyncIterator[list[PostgresStore]]:
    """Stores opened by a test, closed after it (each its own pool, as a process's)."""
    stores: list[PostgresStore] = []
    yield stores
    if not pg_database.cluster.running:
        pg_database.cluster.start()
    for store in stores:
        await store.close()


async def open_store(pg_database: Database, opened: list[PostgresStore]) -> PostgresStore:
    store = await open_postgres(pg_database.url, upgrade=True)
    opened.append(store)
    return store


def secrets_of(pg_database: Database) -> list[str]:
    password = pg_database.cluster.password
    return [password, quote(password, safe="")]


def item(key: str, person: str, incident: int = 1, kind: str = "acknowledge") -> OutboxItem:
    return OutboxItem(
        key=key,
        incident_id=incident,
        person_id=person,
        kind=kind,
        reason="affected",
        created_at=100.0,
        subject="Online payments are failing",
        text="We are sorry.",
        html="<p>We are sorry.</p>",
        sms="Payments are failing.",
        channels=(Address("email", f"{person}@example.com"),),
    )


def run_sql(pg_database: Database, sql: str) -> list[tuple[object, ...]]:
    with psycopg.connect(pg_database.url, autocommit=True) as conn:
        cursor = conn.execute(sql.encode())
        return cursor.fetchall() if cursor.description else []


# sharing one database ----------------------------------------------------------------------


async def test_a_decision_made_by_two_processes_at_once_is_inserted_once(
    pg_database: Database, opened: list[PostgresStore]
) -> None:
    """The same 300 decisions committed by two stores (two pools) at the same moment: the
    primary key lets each in once, so the two counts of new decisions add up to 300."""
    first, second = await open_store(pg_database, opened), await open_store(pg_database, opened)
    incident = await first.new_incident_id()
    items = [item(f"i{incident}.acknowledge.p{n}", f"p{n}", incident) for n in range(300)]
    told = {f"p{n}": frozenset({"payment"}) for n in range(300)}
    new = await asyncio.gather(
        first.decide(items, told, incident), second.decide(items, told, incident)
    )
    assert sum(new) == 300
    assert await second.decide(items, told, incident) == 0
    assert await first.pending_count() == 300
    assert await first.told_about(incident, ["p0", "p299", "p300"]) == {
        "p0": frozenset({"payment"}),
        "p299": frozenset({"payment"}),
    }


async def test_incident_ids_taken_by_two_processes_at_once_are_never_equal(
    pg_database: Database, opened: list[PostgresStore]
) -> None:
    """Two stores taking 50 incident ids each, all at once, get 100 different ids."""
    first, second = await open_store(pg_database, opened), await open_store(pg_database, opened)
    taken = await asyncio.gather(
        *(store.new_incident_id() for _ in range(50) for store in (first, second))
    )
    assert len(set(taken)) == 100


async def test_due_keeps_each_persons_order_and_an_outcome_settles_a_message_for_good(
    pg_database: Database, opened: list[PostgresStore]
) -> None:
    """A person's resolved message is not due while their acknowledgement is pending; once
    that is sent (its text dropped) the resolved one is due, and a later outcome for the
    sent message changes nothing."""
    store = await open_store(pg_database, opened)
    ack, other = item("1.acknowledge.p1", "p1"), item("1.acknowledge.p2", "p2")
    resolved = item("1.resolved.p1", "p1", kind="resolved")
    await store.decide([ack, other], {}, 1)
    await store.decide([resolved], {}, 1)
    assert [i.key for i in await store.due(now=200.0, limit=10)] == [ack.key, other.key]

    sent = replace(ack, status=SENT, tries=1, sent_at=150.0, sent_via=ack.channels[0])
    retry = replace(other, tries=1, next_try_at=300.0, last_error="421 try later")
    await store.update_items([sent, retry])
    assert [i.key for i in await store.due(now=200.0, limit=10)] == [resolved.key]
    # Oldest due first: the resolved message was due at once, the retry at 300.
    assert [i.key for i in await store.due(now=300.0, limit=10)] == [resolved.key, other.key]

    await store.update_items([replace(sent, status=UNDELIVERABLE, last_error="550")])
    by_key = {i.key: i for i in await store.outbox_items(1)}
    assert by_key[ack.key] == replace(sent, text="", html=None, sms="")
    assert by_key[other.key] == retry
    assert by_key[resolved.key].status == PENDING
    assert await store.outbox_counts(1) == {
        "acknowledge": {SENT: 1, PENDING: 1},
        "resolved": {PENDING: 1},
    }


async def test_outcomes_find_their_messages_by_key_however_stale_the_statistics(
    pg_database: Database, opened: list[PostgresStore]
) -> None:
    """Statistics taken while the outbox held 300 sent messages, then a fan-out of 3,000
    (autovacuum off, so they stay stale): a batch of outcomes still finds its 8 rows through
    the primary key and reads a few pages, not every pending message (which made the 100,000
    fan-out on PostgreSQL 2x slower: benchmarks/README.md)."""
    store = await open_store(pg_database, opened)
    earlier = [item(f"1.acknowledge.q{n}", f"q{n}") for n in range(300)]
    await store.decide(earlier, {}, 1)
    await store.update_items([replace(i, status=SENT, tries=1, sent_at=120.0) for i in earlier])
    run_sql(pg_database, "ALTER TABLE outbox SET (autovacuum_enabled = off); ANALYZE outbox")
    items = [item(f"1.acknowledge.p{n:04}", f"p{n:04}") for n in range(3000)]
    await store.decide(items, {}, 1)

    sent = [replace(i, status=SENT, tries=1, sent_at=150.0) for i in items[:8]]
    (plan,) = await store.db.rows(
        "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + OUTCOMES, outcome_params(sent)
    )
    text = json.dumps(plan)
    assert "outbox_pkey" in text, text
    assert "outbox_due" not in text, text
    assert plan[0][0]["Plan"]["Shared Hit Blocks"] < 200, text
    assert await store.pending_count() == 3000 - 8


async def test_a_replica_reads_its_own_shards_due_messages_past_the_others_backlog(
    pg_database: Database, opened: list[PostgresStore]
) -> None:
    """3,000 messages pending in shards other replicas hold, all due before the 10 of the
    shard this replica holds: it reads its 10, oldest first, through that shard's own index,
    reading a few pages, not the others' backlog (walking it on every read made three replicas
    send at 0.55x one replica's rate: benchmarks/README.md)."""
    store = await open_store(pg_database, opened)
    ids = [f"p{n:05}" for n in range(6000)]
    held = outbox_shard(ids[0])
    others = [i for i in ids if outbox_shard(i) != held][:3000]
    mine = [i for i in ids if outbox_shard(i) == held][:10]
    await store.decide([item(f"1.acknowledge.{i}", i) for i in others], {}, 1)
    await store.decide([item(f"1.acknowledge.{i}", i) for i in mine], {}, 1)
    run_sql(pg_database, "ANALYZE outbox")

    due = await store.due(now=200.0, limit=128, shards={held})
    assert [i.person_id for i in due] == mine
    params = {"pending": PENDING, "now": 200.0, "limit": 128, "each": 256, "shards": [held]}
    (plan,) = await store.db.rows(
        "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + DUE_IN_SHARDS, params
    )
    text = json.dumps(plan)
    assert "outbox_pending_by_shard" in text, text
    assert plan[0][0]["Plan"]["Shared Hit Blocks"] < 200, text


def _index_scans(plan: object) -> list[tuple[str, str]]:
    """(alias, index) of every index scan in an EXPLAIN (FORMAT JSON) plan."""
    found: list[tuple[str, str]] = []
    if isinstance(plan, dict):
        if "Index Name" in plan:
            found.append((plan.get("Alias", ""), plan["Index Name"]))
        for value in plan.values():
            found += _index_scans(value)
    elif isinstance(plan, list):
        for value in plan:
            found += _index_scans(value)
    return found


async def test_due_reads_find_earlier_messages_by_person_however_stale_the_statistics(
    pg_database: Database, opened: list[PostgresStore]
) -> None:
    """Statistics taken while every message was sent, then 3,000 pending (autovacuum off, so
    they stay stale): a due read, of all shards or of some, looks for each message's earlier
    pending one by incident and person, not through every pending message (which took 70 ms a
    read and made two replicas send at half one replica's rate: benchmarks/README.md)."""
    store = await open_store(pg_database, opened)
    earlier = [item(f"1.acknowledge.q{n}", f"q{n}") for n in range(300)]
    await store.decide(earlier, {}, 1)
    await store.update_items([replace(i, status=SENT, tries=1, sent_at=120.0) for i in earlier])
    run_sql(pg_database, "ALTER TABLE outbox SET (autovacuum_enabled = off); ANALYZE outbox")
    await store.decide([item(f"2.acknowledge.p{n:04}", f"p{n:04}", 2) for n in range(3000)], {}, 2)

    shards = sorted({outbox_shard(f"p{n:04}") for n in range(3000)})[::2]
    for sql, params in (
        (DUE, {"pending": PENDING, "now": 200.0, "limit": 128}),
        (
            DUE_IN_SHARDS,
            {"pending": PENDING, "now": 200.0, "limit": 128, "each": 8, "shards": shards},
        ),
    ):
        (plan,) = await store.db.rows("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql, params)
        scans = _index_scans(plan)
        assert ("earlier", "outbox_due") not in scans, scans
        assert plan[0][0]["Plan"]["Shared Hit Blocks"] < 2000, json.dumps(plan)


@pytest.mark.parametrize("systems", [2, 40], ids=["a few systems", "many systems"])
async def test_subscribers_come_a_page_at_a_time_in_id_order_each_once(
    pg_database: Database, opened: list[PostgresStore], systems: int
) -> None:
    """2,500 people, some subscribed to several of the failing systems, some to none of them:
    every subscriber comes exactly once, in pages of at most 1,000, in byte order of their ids
    (as SQLite's), whichever way the pages are read (by system for a few, by person for many)."""
    store = await open_store(pg_database, opened)
    names = [f"system{n}" for n in range(systems)]
    people = [
        Person(f"p{n}", f"Person {n}", f"p{n}@example.com", systems=tuple(names[n % 3 :][:2]))
        for n in range(2500)
    ] + [
        Person("Zoë", "Zoë", "zoe@example.com", systems=(names[0],)),
        Person("ß", "Eszett", "ss@example.com", systems=(names[-1],)),
        Person("elsewhere", "Elsewhere", "e@example.com", systems=("crm",)),
    ]
    assert await store.upsert_people(people) == len(people)
    pages = [page async for page in store.subscriber_pages(names)]
    ids = [p.id for page in pages for p in page]
    expected = sorted(p.id for p in people if set(p.systems) & set(names))
    assert ids == expected
    assert all(len(page) <= 1000 for page in pages)
    assert len(pages) == -(-len(expected) // 1000)
    assert await store.audience_count(names, 0.0, 1.0) == len(expected)


# the server going away ---------------------------------------------------------------------


async def test_a_stopped_server_is_store_unavailable_without_the_password_then_works_again(
    pg_database: Database, opened: list[PostgresStore]
) -> None:
    """With the server stopped, reads, writes and the writability check raise
    StoreUnavailable naming host:port/database and never the password; once the server is
    started again, the same store works again by itself."""
    store = await open_store(pg_database, opened)
    await store.upsert_people([Person("p1", "Ann", "ann@example.com", systems=("payment",))])
    pg_database.cluster.stop("fast")
    for call in (store.pending_count, store.check_writable, lambda: store.new_incident_id()):
        with pytest.raises(StoreUnavailable) as raised:
            await call()
        message = str(raised.value)
        assert f"the PostgreSQL database {store.location.where} " in message
        assert not any(secret in message for secret in secrets_of(pg_database))
    pg_database.cluster.start()
    await eventually(store.check_writable)
    assert await store.person("p1") == Person("p1", "Ann", "ann@example.com", systems=("payment",))


async def test_a_read_only_database_is_reported_by_check_writable(
    pg_database: Database, opened: list[PostgresStore]
) -> None:
    """A database that takes no writes (as a standby) is StoreUnavailable from
    check_writable, saying it refuses writes."""
    await open_store(pg_database, opened)
    pg_database.cluster.sql(
        f"ALTER DATABASE {pg_database.name} SET default_transaction_read_only = on"
    )
    store = await open_store(pg_database, opened)  # up to date: opening writes nothing
    with pytest.raises(StoreUnavailable, match=r"refuses writes .*read-only transaction"):
        await store.check_writable()


async def test_a_wrong_password_is_refused_naming_the_database_not_the_password(
    pg_database: Database,
) -> None:
    """A URL with a wrong password: StoreUnavailable saying the server refuses the
    connection and why, with neither password in it."""
    wrong = "not-the-password"
    url = pg_database.url.replace(quote(pg_database.cluster.password, safe=""), wrong)
    with pytest.raises(StoreUnavailable) as raised:
        await open_postgres(url)
    message = str(raised.value)
    assert "refuses the connection (password authentication failed" in message
    assert not any(s in message for s in [wrong, *secrets_of(pg_database)])


# the schema --------------------------------------------------------------------------------


async def test_an_empty_database_gets_every_migration_then_is_up_to_date(
    pg_database: Database, opened: list[PostgresStore]
) -> None:
    """Opening an empty database applies every migration and records the version in the
    one-row schema_version; opening it again applies nothing."""
    first = await open_store(pg_database, opened)
    assert str(first.schema) == f"schema 0 -> {KNOWN} (postgresql, {first.location.where})"
    second = await open_store(pg_database, opened)
    assert str(second.schema) == f"schema {KNOWN}, up to date (postgresql, {second.location.where})"
    assert run_sql(pg_database, "SELECT version FROM schema_version") == [(KNOWN,)]
    indexes = {name for (name,) in run_sql(pg_database, "SELECT indexname FROM pg_indexes")}
    assert {"outbox_due", "attempts_system_at", "attempts_at"} <= indexes


async def test_two_opens_at_once_on_an_empty_database_make_one_schema_without_errors(
    pg_database: Database, opened: list[PostgresStore]
) -> None:
    """Two stores opening an empty database together, both held at the schema's lock until
    both wait there: one makes the schema, the other then finds it made; neither errs."""
    with psycopg.connect(pg_database.url, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (LOCK,))
        opening = [
            asyncio.create_task(open_postgres(pg_database.url, upgrade=True)) for _ in range(2)
        ]
        try:
            await eventually(lambda: waiting_at_the_lock(pg_database, 2))
        finally:
            holder.execute("SELECT pg_advisory_unlock(%s)", (LOCK,))
        stores = await asyncio.gather(*opening)
    opened.extend(stores)
    where = stores[0].location.where
    assert sorted(str(s.schema) for s in stores) == [
        f"schema 0 -> {KNOWN} (postgresql, {where})",
        f"schema {KNOWN}, up to date (postgresql, {where})",
    ]
    assert run_sql(pg_database, "SELECT version FROM schema_version") == [(KNOWN,)]


async def waiting_at_the_lock(pg_database: Database, count: int) -> None:
    waiting = run_sql(
        pg_database,
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted",
    )
    assert waiting == [(count,)]


async def test_a_newer_schema_is_refused_naming_both_versions_and_left_as_it_is(
    pg_database: Database, opened: list[PostgresStore]
) -> None:
    """A database a newer monitor upgraded is refused with both versions named, whether
    opening would upgrade or not, and nothing in it changes."""
    await open_store(pg_database, opened)
    run_sql(pg_database, f"UPDATE schema_version SET version = {KNOWN + 1}")
    for upgrade in (True, False):
        with pytest.raises(SchemaMismatch) as raised:
            await open_postgres(pg_database.url, upgrade=upgrade)
        assert str(raised.value) == (
            f"the database is at schema {KNOWN + 1}; this monitor knows up to {KNOWN}: "
            "upgrade the monitor, or use another database"
        )
    assert run_sql(pg_database, "SELECT version FROM schema_version") == [(KNOWN + 1,)]


async def test_without_upgrade_a_database_behind_is_refused_and_nothing_is_written(
    pg_database: Database,
) -> None:
    """``upgrade=False`` on an empty database refuses it, naming ``monitor db upgrade``, and
    makes no table."""
    with pytest.raises(SchemaMismatch, match=f"at schema 0; this monitor needs {KNOWN}"):
        await open_postgres(pg_database.url, upgrade=False)
    tables = "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
    assert run_sql(pg_database, tables) == [(0,)]


async def test_the_monitors_tables_without_a_version_are_refused_untouched(
    pg_database: Database,
) -> None:
    """A database that has tables of the monitor's names but no schema_version is no
    monitor's: refused, naming the tables, and left as it is."""
    run_sql(pg_database, "CREATE TABLE people (id text); CREATE TABLE outbox (key text)")
    with pytest.raises(SchemaMismatch, match=r"tables named as the monitor's \(outbox, people\)"):
        await open_postgres(pg_database.url)
    assert run_sql(pg_database, "SELECT to_regclass('states') IS NULL") == [(True,)]


async def test_the_backend_is_a_whole_store(
    pg_database: Database, opened: list[PostgresStore]
) -> None:
    """PostgresStore is a ``Store`` (mypy checks every role's methods) whose maintenance is
    autovacuum's: ``maintain`` does nothing."""
    store: Store = await open_store(pg_database, opened)
    assert await store.maintain() == {}


# what --db names ---------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["postgresql", "postgres"])
def test_a_postgresql_url_names_its_database_without_the_password(scheme: str) -> None:
    """Both schemes libpq reads are PostgreSQL; the location shows user, host, port and
    database, never the password."""
    location = database_location(f"{scheme}://monitor:s3cr%40t@db.internal:6432/shop")
    assert isinstance(location, PostgresLocation)
    assert location.where == "db.internal:6432/shop"
    assert str(location) == "postgresql://monitor@db.internal:6432/shop"
    assert "s3cr" not in repr(location)


def test_a_url_libpq_cannot_read_is_refused_without_quoting_the_password() -> None:
    """libpq quotes the part of a URL it cannot read, which may be the password: the reason
    keeps libpq's words without what it quoted."""
    with pytest.raises(ValueError, match="cannot be read") as raised:
        database_location("postgresql://monitor:100%zzsecret@db/monitor")
    assert "zzsecret" not in str(raised.value)
    assert "invalid percent-encoded token" in str(raised.value)


def test_other_schemes_are_refused_and_paths_are_sqlite_files() -> None:
    """A URL of another scheme is refused naming the forms that work; a path is a file."""
    with pytest.raises(ValueError, match=r"^mysql:// URLs are not supported: give a SQLite"):
        database_location("mysql://monitor:secret@db/monitor")
    assert database_location("monitor.db") == SQLiteLocation(Path("monitor.db"))


async def eventually(check: Callable[[], Awaitable[object]], deadline: float = RECONNECT_S) -> None:
    """Await ``check()`` until it stops raising; fail after ``deadline`` seconds. (The server
    runs on real time: this polls, with a generous deadline.)"""
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    while True:
        try:
            await check()
            return
        except (StoreUnavailable, AssertionError):
            if loop.time() > end:
                raise
            await asyncio.sleep(0.1)
