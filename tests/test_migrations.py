"""The schema's versions: a file of monitor 0.1.0 upgraded in place with every row kept, two
processes upgrading one empty file together, an older monitor refusing a newer schema, and
`monitor db status` / `db upgrade` / `run --no-upgrade` as a user sees them."""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
import sys
from pathlib import Path

import pytest
from process import REPO, free_port, monitor_env, run_cli, start_monitor, stop, wait_http

from monitor.incidents.correlation import Correlator
from monitor.model import Health, SystemState, Transition
from monitor.notify.correlating import correlate
from monitor.store import SQLiteStore
from monitor.store.migrations import Migration, SchemaChange, SchemaMismatch, migrations
from monitor.store.sqlite_schema import statements

FIXTURE = Path(__file__).parent / "fixtures" / "release-0.1.0.db"
KNOWN = len(migrations("sqlite"))  # the newest schema this monitor knows
TABLES = [
    *("states", "transitions", "results", "incidents", "timeline", "people", "subscriptions"),
    *("attempts", "told", "outbox", "counters"),
]


def release_file(tmp_path: Path) -> Path:
    """A copy of the file monitor 0.1.0 wrote (tests/fixtures/README.md says what it holds)."""
    db = tmp_path / "monitor.db"
    shutil.copyfile(FIXTURE, db)
    return db


def names_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def every_row(db: Path) -> dict[str, list[tuple[object, ...]]]:
    with sqlite3.connect(db) as conn:
        rows = {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall() for t in TABLES}
    conn.close()
    return rows


def schema_of(db: Path) -> tuple[int, set[tuple[str, str]], int]:
    """The file's recorded version, its tables and indexes (type, name), and auto_vacuum."""
    conn = sqlite3.connect(db)
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        made = set(conn.execute("SELECT type, name FROM sqlite_master WHERE sql IS NOT NULL"))
        return version, made, conn.execute("PRAGMA auto_vacuum").fetchone()[0]
    finally:
        conn.close()


def newest_schema() -> set[tuple[str, str]]:
    conn = sqlite3.connect(":memory:")
    for migration in migrations("sqlite"):
        for statement in statements(migration):
            conn.execute(statement)
    made = set(conn.execute("SELECT type, name FROM sqlite_master WHERE sql IS NOT NULL"))
    conn.close()
    return made


async def test_a_file_of_release_0_1_0_is_upgraded_in_place_keeping_every_row(
    tmp_path: Path,
) -> None:
    """A file monitor 0.1.0 wrote (no version recorded) is recognised as version 1, upgraded to
    the newest on opening, and keeps every incident, person, message, state and transition,
    unchanged and usable: the next incident id is past the highest ever taken, pruned too."""
    db = release_file(tmp_path)
    before = every_row(db)
    assert all(before.values())  # the fixture has rows in every table
    assert before["counters"] == [("incident", 1)]  # incident 1 was pruned
    assert schema_of(db)[0] == 0

    store = SQLiteStore(db)
    try:
        assert store.schema == SchemaChange("sqlite", str(db), 1, KNOWN, unversioned=True)
        assert str(store.schema) == f"schema 1 (as monitor 0.1.0 made it) -> {KNOWN} (sqlite, {db})"
        assert [i.id for i in await store.incidents()] == [2, 3]
        assert (await store.incidents(open_only=True))[0].note.startswith("A database update")
        assert (await store.load_states())["payment"].health is Health.DOWN
        assert len(await store.transitions(limit=100)) == 6
        people = await store.people_by_ids(["u1", "u2", "u3", "u4", "u5"])
        assert sorted(people) == ["u1", "u2", "u3", "u4", "u5"]
        assert await store.outbox_counts() == {
            "acknowledge": {"sent": 1, "undeliverable": 1, "pending": 3},
            "resolved": {"sent": 1, "undeliverable": 1},
        }
        assert await store.pending_count() == 3
        assert await store.new_incident_id() == 4
    finally:
        await store.close()
    after = every_row(db)
    assert after.pop("counters") == [("incident", 4)]  # new_incident_id above took 4
    del before["counters"]
    # Version 3 gives each transition `applied`, 1 here: 0.1.0 applied each one itself.
    assert [row[-1] for row in after["transitions"]] == [1] * len(before["transitions"])
    after["transitions"] = [row[:-1] for row in after["transitions"]]
    # Version 5 gives each message its outbox shard, 0 for what was decided before.
    assert [row[-1] for row in after["outbox"]] == [0] * len(before["outbox"])
    after["outbox"] = [row[:-1] for row in after["outbox"]]
    # Version 6 gives each person a timezone and a language, none for those there before.
    assert [row[-2:] for row in after["people"]] == [(None, None)] * len(before["people"])
    after["people"] = [row[:-2] for row in after["people"]]
    # Version 11 marks incidents whose private part is pruned: none of those there before;
    # version 14 gives each the people it affected, counted at the fix: not for those before.
    assert [row[-3:] for row in after["incidents"]] == [(0, None, None)] * len(before["incidents"])
    after["incidents"] = [row[:-3] for row in after["incidents"]]
    assert after == before
    version, made, auto_vacuum = schema_of(db)
    assert (version, auto_vacuum) == (KNOWN, 2)
    assert made - {("table", "_probe_write")} == newest_schema()


async def test_the_transitions_of_a_release_0_1_0_file_stay_applied_after_the_upgrade(
    tmp_path: Path,
) -> None:
    """Monitor 0.1.0 applied each transition to the incidents itself: upgraded, none of its six
    is handed to the notifier again, so correlating re-opens no incident (login's, resolved)
    and adds nothing to a timeline; a transition saved afterwards waits to be applied."""
    store = SQLiteStore(release_file(tmp_path))
    try:
        assert await store.unapplied_transitions(100) == []
        before = [(i, await store.timeline(i.id)) for i in await store.incidents()]
        grown: list[int] = []
        done = await correlate(
            store,
            [],
            correlator=Correlator({}, 300.0),
            hold_new=False,
            systems={},
            listeners=[],
            audience_may_grow=grown.append,
        )
        assert done
        assert [(i, await store.timeline(i.id)) for i in await store.incidents()] == before
        assert grown == []
        down = Transition("login", 1764007200.0, Health.UP, Health.DOWN, "status 503", 3)
        await store.save_transition(
            down, SystemState("login", Health.DOWN, down.at, 3, 0, "status 503", down.at)
        )
        assert [t for _, t in await store.unapplied_transitions(100)] == [down]
    finally:
        await store.close()


def test_version_1_is_exactly_the_schema_release_0_1_0_made() -> None:
    """0001_initial makes the very tables and indexes, with the same SQL, that monitor 0.1.0's
    file holds: which is how a file without a version is known to be that release's."""
    conn = sqlite3.connect(":memory:")
    for statement in statements(migrations("sqlite")[0]):
        conn.execute(statement)
    query = "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY name"
    first = conn.execute(query).fetchall()
    conn.close()
    release = sqlite3.connect(FIXTURE)
    made = [row for row in release.execute(query) if row[1] != "_probe_write"]
    release.close()
    assert made == first


async def test_an_empty_file_is_version_0_and_gets_every_migration(tmp_path: Path) -> None:
    """A file of no bytes is an empty database: every migration runs, in WAL mode, with
    freed pages given back to the filesystem (auto_vacuum incremental)."""
    db = tmp_path / "monitor.db"
    db.touch()
    store = SQLiteStore(db)
    assert store.schema == SchemaChange("sqlite", str(db), 0, KNOWN)
    assert store.incremental
    await store.close()
    again = SQLiteStore(db)
    assert str(again.schema) == f"schema {KNOWN}, up to date (sqlite, {db})"
    await again.close()
    version, made, auto_vacuum = schema_of(db)
    assert (version, made, auto_vacuum) == (KNOWN, newest_schema(), 2)


def test_a_file_of_other_tables_without_a_version_is_refused_untouched(tmp_path: Path) -> None:
    """A database the monitor did not make is refused, naming what is not the release's, and
    nothing is added to it."""
    db = tmp_path / "other.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY)")
    conn.close()
    with pytest.raises(SchemaMismatch) as refused:
        SQLiteStore(db)
    assert "not monitor 0.1.0's: invoices" in str(refused.value)
    assert str(refused.value).endswith(
        "give a monitor's database, or a file that does not exist yet"
    )
    assert schema_of(db)[:2] == (0, {("table", "invoices")})


def test_a_newer_schema_is_refused_and_left_as_it_is(tmp_path: Path) -> None:
    """A database a newer monitor upgraded is never run on: both versions are named."""
    db = tmp_path / "monitor.db"
    with sqlite3.connect(db) as conn:
        conn.execute(f"PRAGMA user_version = {KNOWN + 1}")
    conn.close()
    with pytest.raises(SchemaMismatch) as refused:
        SQLiteStore(db)
    assert str(refused.value) == (
        f"the database is at schema {KNOWN + 1}; this monitor knows up to {KNOWN}: "
        "upgrade the monitor, or use another database"
    )
    assert schema_of(db)[:2] == (KNOWN + 1, set())


def test_migrations_are_numbered_one_by_one_and_split_into_statements() -> None:
    """The shipped migrations are 0001, 0002, ... with no gap, each split into whole
    statements; a ";" in a string or a comment does not end a statement."""
    assert [m.version for m in migrations("sqlite")] == list(range(1, KNOWN + 1))
    assert migrations("sqlite")[0].name == "0001_initial"
    assert all(statements(m) for m in migrations("sqlite"))
    tricky = Migration(
        9,
        "0009_tricky",
        "-- one; two\nINSERT INTO t VALUES ('a;b');\nCREATE INDEX i ON t (x); -- three;\n",
    )
    assert statements(tricky) == (
        "-- one; two\nINSERT INTO t VALUES ('a;b');",
        "CREATE INDEX i ON t (x);",
    )


# The real command ---------------------------------------------------------------------------


def holds_open(pid: int, db: Path) -> bool:
    fds = Path(f"/proc/{pid}/fd")
    try:
        return any(os.path.realpath(fd) == str(db.resolve()) for fd in fds.iterdir())
    except OSError:  # it exited, or closed a descriptor while we looked
        return False


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs Linux's /proc")
@pytest.mark.parametrize("empty", ["no bytes", "in WAL mode"])
async def test_two_upgrades_at_once_on_an_empty_file_make_one_schema_without_errors(
    tmp_path: Path, empty: str
) -> None:
    """Two `monitor db upgrade` on one empty file, held at its write lock until both have it
    open and then let go together: one makes the schema, the other finds it made; neither
    errs. ("in WAL mode": nothing else serialises them first, so both wait at the very
    check-and-apply; with no bytes they meet first at switching the file to WAL.)"""
    db = tmp_path / "monitor.db"
    db.touch()
    holder = sqlite3.connect(db, isolation_level=None)
    if empty == "in WAL mode":
        holder.execute("PRAGMA auto_vacuum=INCREMENTAL")  # as the monitor makes a new file
        holder.execute("PRAGMA journal_mode=WAL")
    holder.execute("BEGIN IMMEDIATE")  # the write lock: both wait for it with their busy timeout
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "monitor.cli",
            "db",
            "upgrade",
            "--db",
            str(db),
            env=monitor_env({}),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=REPO,
        )
        for _ in range(2)
    ]
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        # (One that gave up already is reported below, with what it said.)
        while not all(p.returncode is not None or holds_open(p.pid, db) for p in processes):
            assert loop.time() < deadline, "the processes never opened the database"
            await asyncio.sleep(0.02)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    said = [await asyncio.wait_for(p.communicate(), 60) for p in processes]
    assert [p.returncode for p in processes] == [0, 0], said
    assert [err for _, err in said] == [b"", b""]
    assert sorted(out.decode() for out, _ in said) == [
        f"schema 0 -> {KNOWN} (sqlite, {db})\n",
        f"schema {KNOWN}, up to date (sqlite, {db})\n",
    ]
    assert schema_of(db) == (KNOWN, newest_schema(), 2)


async def test_db_status_and_db_upgrade_say_where_a_file_stands_and_what_was_done(
    tmp_path: Path,
) -> None:
    """`db status` names the backend, the file, its version and what is pending (exit 1), and
    changes nothing; `db upgrade` says "schema 1 -> 2"; then status says none (exit 0)."""
    db = release_file(tmp_path)
    code, out, err = await run_cli("db", "status", "--db", str(db))
    assert (code, err) == (1, "")
    pending = ", ".join(m.name for m in migrations("sqlite")[1:])
    them = "it" if KNOWN == 2 else "them"
    assert out == (
        "backend: sqlite\n"
        f"database: {db}\n"
        f"schema: 1 (monitor 0.1.0's: no version recorded yet); this monitor knows up to {KNOWN}\n"
        f"pending: {pending} (`monitor db upgrade` applies {them}; so does `monitor run` on "
        "start)\n"
    )
    assert db.read_bytes() == FIXTURE.read_bytes()
    assert names_in(tmp_path) == ["monitor.db"]  # no write-ahead log left behind either

    code, out, err = await run_cli("db", "upgrade", env={"MONITOR_DB": str(db)})
    assert (code, out, err) == (
        0,
        f"schema 1 (as monitor 0.1.0 made it) -> {KNOWN} (sqlite, {db})\n",
        "",
    )
    code, out, err = await run_cli("db", "status", "--db", str(db))
    assert (code, err) == (0, "")
    assert out.splitlines()[2:] == [
        f"schema: {KNOWN}; this monitor knows up to {KNOWN}",
        "pending: none",
    ]

    missing = tmp_path / "new.db"
    code, out, _ = await run_cli("db", "status", "--db", str(missing))
    assert code == 1
    assert f"schema: 0 (the file does not exist yet); this monitor knows up to {KNOWN}\n" in out
    assert not missing.exists()


async def test_an_older_monitor_refuses_a_newer_schema_with_exit_2(tmp_path: Path) -> None:
    """`monitor run`, `users import`, `db upgrade` and `db status` on a database a newer
    monitor upgraded: exit 2 and one line naming both versions, no traceback, the file left as
    it is."""
    db = tmp_path / "monitor.db"
    with sqlite3.connect(db) as conn:
        conn.execute(f"PRAGMA user_version = {KNOWN + 1}")
    conn.close()
    refusal = (
        f"{db}: the database is at schema {KNOWN + 1}; this monitor knows up to {KNOWN}: "
        "upgrade the monitor, or use another database\n"
    )
    env = {"MONITOR_DB": str(db), "MONITOR_LISTEN": f"127.0.0.1:{free_port()}"}
    assert await run_cli("run", env=env) == (2, "", refusal)
    people = tmp_path / "people.csv"
    people.write_text("id,name,email,phone,systems\nu1,Ann Lee,ann@example.com,,payment\n")
    assert await run_cli("users", "import", str(people), env=env) == (2, "", refusal)
    assert await run_cli("db", "upgrade", "--db", str(db)) == (2, "", refusal)
    code, out, err = await run_cli("db", "status", "--db", str(db))
    assert (code, err) == (2, refusal)
    assert f"schema: {KNOWN + 1}; this monitor knows up to {KNOWN}\n" in out
    assert schema_of(db)[:2] == (KNOWN + 1, set())


async def test_run_no_upgrade_refuses_a_database_behind_and_run_upgrades_it(
    tmp_path: Path,
) -> None:
    """`monitor run --no-upgrade` on a file of 0.1.0 refuses to start (exit 2), naming both
    versions and `monitor db upgrade`, and writes nothing; `monitor run` upgrades it on start,
    says so in its log, and serves."""
    db = release_file(tmp_path)
    port = free_port()
    env = {"MONITOR_DB": str(db), "MONITOR_LISTEN": f"127.0.0.1:{port}"}
    assert await run_cli("run", "--no-upgrade", env=env) == (
        2,
        "",
        f"{db}: the database is at schema 1; this monitor needs {KNOWN}: run `monitor db "
        "upgrade` (or start without --no-upgrade, which upgrades it on start)\n",
    )
    assert db.read_bytes() == FIXTURE.read_bytes()

    process = await start_monitor(env)
    try:
        await wait_http(f"http://127.0.0.1:{port}/healthz", "ok")
    finally:
        log = await stop(process)
    assert f"schema 1 (as monitor 0.1.0 made it) -> {KNOWN} (sqlite, {db})" in log
    assert schema_of(db)[0] == KNOWN
