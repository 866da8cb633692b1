"""The embedded store: SQLite through sqlite-utils, in WAL mode, one file.
(Over 400 lines: every query of the embedded backend is here, the one module that knows its SQL.)
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import sqlite_utils

from monitor.incidents.correlation import Incident
from monitor.model import (
    Attempt,
    Explanation,
    Health,
    MessageKind,
    Person,
    ProbeResult,
    SystemState,
    Transition,
)
from monitor.store import sqlite_schema
from monitor.store.explaining import (
    EXPLAIN,
    EXPLANATION_COLUMNS,
    KEEP_PROMISE,
    PROMISE_OPEN,
    SETTLE_FOR_RESOLUTION,
    START_EXPLAINING,
    TAKE_REMINDER,
)
from monitor.store.migrations import SchemaChange, migrations
from monitor.store.records import (
    DECIDED_COLUMNS,
    OUTBOX_COLUMNS,
    PEOPLE_COLUMNS,
    address_text,
    channels_text,
    decided_row,
    members,
    members_text,
    outbox_item,
    person_row,
)
from monitor.store.records import person as person_of
from monitor.store.roles import PUBLIC_TIMELINE
from monitor.store.sqlite_maintenance import SQLiteMaintenance
from monitor.store.sqlite_replicas import SQLiteReplicas
from monitor.store.sqlite_subscriptions import SQLiteSubscriptions, keep_unsubscribed
from monitor.store.types import (
    PENDING,
    SENT,
    UNDELIVERABLE,
    AffectedCount,
    Alert,
    AlreadyApplied,
    ExplanationFinal,
    MessageTally,
    OutboxItem,
    StoreUnavailable,
    TimelineEntry,
)

BUSY_TIMEOUT_MS = 5000
# While opening: another process may be applying the migrations under the write lock (two
# monitors starting together, or `monitor db upgrade` on a large file); waiting for it is the
# point, so the wait is long, bounded only against a lock nobody will ever let go.
OPENING_BUSY_TIMEOUT_MS = 10 * 60 * 1000
WAL_LIMIT = 16 * 1024 * 1024  # bytes a write-ahead log is cut back to after a checkpoint
RECLAIM_STEP = 256  # free pages given back per step (1 MiB at SQLite's 4 KiB pages)


# The schema is made and upgraded by the files in migrations/sqlite (sqlite_schema.py). This is
# version 1, monitor 0.1.0's, for tests that make a file as that release did.
_SCHEMA = migrations(sqlite_schema.BACKEND)[0].sql

_PEOPLE_PAGE = 1000
_HEALTH = {health.value: health for health in Health}  # a lookup: 100,000 rows of history
_SYSTEMS_BY_KEY = 32  # above this many systems, an audience is read in person order
_IDS_PER_QUERY = 500
_TALLY_PART = 5000  # messages a step of message_tally reads: ~5 ms
# OutboxItem's fields, in order: a row of them is the item's arguments.


class SQLiteStore(SQLiteReplicas, SQLiteMaintenance, SQLiteSubscriptions):
    """The embedded store: one SQLite file in WAL mode, behind ``roles.Store``.

    Its methods are coroutines with synchronous bodies: the file is local and each call is
    short (the long ones are paged, batched or bounded by their callers), so a thread per call
    would cost more than the wait it saves, and a call never yields halfway through a
    transaction.
    """

    def __init__(self, path: str | Path, *, upgrade: bool = True) -> None:
        """Open the file (made if missing) and bring its schema up to this monitor's version
        (``sqlite_schema.upgrade``; ``schema`` says what that did). With ``upgrade`` off, a
        file behind it is refused; one ahead of it always is (SchemaMismatch)."""
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite_utils.Database(self.path)
        try:
            self.db.execute(f"PRAGMA busy_timeout={OPENING_BUSY_TIMEOUT_MS}")
            # Pages freed by retention are reused for new rows. A new file can also give them
            # back to the filesystem (``reclaim``); an older file would need a full VACUUM to
            # switch, which is not done behind on-call's back (see README, Retention). It
            # takes effect only outside a transaction and before WAL mode writes the header;
            # setting it takes the write lock, so it is not set again.
            if not self.db.table_names() and self._pragma("auto_vacuum") != 2:
                self.db.execute("PRAGMA auto_vacuum=INCREMENTAL")
            if self.path != ":memory:":
                self.db.enable_wal()
            # After a checkpoint, a WAL grown by a burst of writes is cut back to this size.
            self.db.execute(f"PRAGMA journal_size_limit={WAL_LIMIT}")
            # NORMAL is durable across process crashes in WAL mode; only power loss may lose
            # the last commits.
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.schema: SchemaChange = sqlite_schema.upgrade(
                self.db.conn, self.path, apply=upgrade
            )
            self.incremental = self._pragma("auto_vacuum") == 2
            self.db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        except sqlite3.Error as exc:
            self.db.close()
            raise StoreUnavailable(f"cannot open the database {self.path}: {exc}") from exc
        except BaseException:
            self.db.close()
            raise

    async def close(self) -> None:
        self.db.close()

    def _pragma(self, name: str) -> int:
        return int(self.db.conn.execute(f"PRAGMA {name}").fetchone()[0])

    def _write(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> sqlite3.Cursor:
        try:
            return self.db.execute(sql, params)
        except sqlite3.OperationalError as exc:
            raise StoreUnavailable(str(exc)) from exc

    async def check_writable(self) -> None:
        """Raise StoreUnavailable unless a write commits now."""
        try:
            with self.db.atomic():
                self.db.execute("CREATE TABLE IF NOT EXISTS _probe_write (x INTEGER)")
                self.db.execute("DELETE FROM _probe_write")
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"database {self.path} is not writable: {exc}") from exc

    # monitoring ---------------------------------------------------------------------------

    async def load_states(self) -> dict[str, SystemState]:
        return {
            row["system"]: SystemState(
                system=row["system"],
                health=Health(row["health"]),
                since=row["since"],
                fail_streak=row["fail_streak"],
                pass_streak=row["pass_streak"],
                last_reason=row["last_reason"],
                last_checked=row["last_checked"],
            )
            for row in self.db.query("SELECT * FROM states")
        }

    async def states_changed(self, since: int | None) -> tuple[dict[str, SystemState], int | None]:
        # A file on one machine: read in-process, every state costs little.
        return await self.load_states(), None

    async def save_transition(self, transition: Transition, state: SystemState) -> None:
        await self.save_transitions([(transition, state)])

    async def save_transitions(
        self, saved: Sequence[tuple[Transition, SystemState]], holder: str | None = None
    ) -> None:
        try:
            with self.db.atomic():
                held = self._held_of(holder, {t.system for t, _ in saved})
                self.db.conn.executemany(
                    "INSERT INTO transitions (system, at, previous, current, reason, streak, "
                    "applied) VALUES (?, ?, ?, ?, ?, ?, 0)",
                    [
                        (t.system, t.at, t.previous.value, t.current.value, t.reason, t.streak)
                        for t, _ in saved
                        if held is None or t.system in held
                    ],
                )
                self._upsert_states(
                    state for _, state in saved if held is None or state.system in held
                )
        except sqlite3.OperationalError as exc:
            raise StoreUnavailable(str(exc)) from exc

    async def save_states(self, states: Iterable[SystemState], holder: str | None = None) -> None:
        try:
            with self.db.atomic():
                states = list(states)
                held = self._held_of(holder, {s.system for s in states})
                self._upsert_states(s for s in states if held is None or s.system in held)
        except sqlite3.OperationalError as exc:
            raise StoreUnavailable(str(exc)) from exc

    def _held_of(self, holder: str | None, systems: set[str]) -> set[str] | None:
        """Which of ``systems`` ``holder`` holds (None: no holder, all of them), read in the
        caller's transaction: a replica writes only the state of the systems it holds."""
        if holder is None or not systems:
            return None
        rows = self.db.conn.execute(
            "SELECT system FROM check_owners WHERE replica = ? AND system IN "
            "(SELECT value FROM json_each(?))",
            (holder, json.dumps(sorted(systems))),
        )
        return {system for (system,) in rows}

    def _upsert_states(self, states: Iterable[SystemState]) -> None:
        self.db.conn.executemany(
            "INSERT OR REPLACE INTO states VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    s.system,
                    s.health.value,
                    s.since,
                    s.fail_streak,
                    s.pass_streak,
                    s.last_reason,
                    s.last_checked,
                )
                for s in states
            ],
        )

    async def record_results(self, results: Sequence[ProbeResult]) -> None:
        if not results:
            return
        try:
            with self.db.atomic():
                self.db.conn.executemany(
                    "INSERT INTO results (system, ok, reason, started_at, duration) "
                    "VALUES (?, ?, ?, ?, ?)",
                    [(r.system, int(r.ok), r.reason, r.started_at, r.duration) for r in results],
                )
        except sqlite3.OperationalError as exc:
            raise StoreUnavailable(str(exc)) from exc

    async def prune_results(self, older_than: float, keep_per_system: int) -> int:
        """Delete results older than ``older_than`` and all but the newest ``keep_per_system``."""
        deleted = 0
        while batch := await self.prune_aged(older_than):
            deleted += batch
        deleted += await self.prune_systems(await self.result_systems(), keep_per_system)
        return deleted

    async def prune_aged(self, older_than: float, batch: int = 5000) -> int:
        """Delete up to ``batch`` results older than ``older_than``; how many went."""
        cursor = self._write(
            "DELETE FROM results WHERE id IN (SELECT id FROM results WHERE started_at < ? "
            "ORDER BY started_at LIMIT ?)",
            (older_than, batch),
        )
        return int(cursor.rowcount)

    async def result_systems(self) -> list[str]:
        return [r["system"] for r in self.db.query("SELECT DISTINCT system FROM results")]

    async def prune_systems(self, systems: Sequence[str], keep: int) -> int:
        """Keep the newest ``keep`` results of each of ``systems``: a quick indexed delete per
        system, so a caller can prune thousands of systems a batch at a time without holding
        the loop for long."""
        deleted = 0
        for system in systems:
            cursor = self._write(
                "DELETE FROM results WHERE system = ? AND id <= (SELECT id FROM results "
                "WHERE system = ? ORDER BY id DESC LIMIT 1 OFFSET ?)",
                (system, system, keep),
            )
            deleted += int(cursor.rowcount)
        return deleted

    async def prune_attempts(self, older_than: float) -> int:
        """Forget reported attempts older than ``older_than``: they can no longer count."""
        return int(self._write("DELETE FROM attempts WHERE at < ?", (older_than,)).rowcount)

    async def transition_systems(self) -> list[str]:
        return [r["system"] for r in self.db.query("SELECT DISTINCT system FROM transitions")]

    async def prune_transitions(self, systems: Sequence[str], older_than: float) -> int:
        # One system at a time, by its index: a single statement over every system held the
        # loop ~70 ms at 10,000 systems even with nothing to delete.
        # An unapplied one stays: the incidents have not seen it yet.
        deleted = 0
        for system in systems:
            cursor = self._write(
                "DELETE FROM transitions WHERE system = ? AND id < (SELECT MAX(id) FROM "
                "transitions WHERE system = ? AND at < ?) AND applied",
                (system, system, older_than),
            )
            deleted += int(cursor.rowcount)
        return deleted

    async def unapplied_transitions(self, limit: int) -> list[tuple[int, Transition]]:
        rows = self.db.conn.execute(
            "SELECT id, system, at, previous, current, reason, streak FROM transitions "
            "INDEXED BY transitions_unapplied WHERE NOT applied ORDER BY at, id LIMIT ?",
            (limit,),
        )
        return [
            (id_, Transition(system, at, Health(previous), Health(current), reason, streak))
            for id_, system, at, previous, current, reason, streak in rows
        ]

    async def recent_results(self, system: str, limit: int = 100) -> list[ProbeResult]:
        rows = self.db.query(
            "SELECT * FROM results WHERE system = ? ORDER BY id DESC LIMIT ?", (system, limit)
        )
        return [
            ProbeResult(r["system"], bool(r["ok"]), r["reason"], r["started_at"], r["duration"])
            for r in rows
        ]

    async def transitions(self, system: str | None = None, limit: int = 100) -> list[Transition]:
        where, params = ("WHERE system = ?", [system]) if system else ("", [])
        rows = self.db.query(
            f"SELECT * FROM transitions {where} ORDER BY id DESC LIMIT ?", [*params, limit]
        )
        return [
            Transition(
                r["system"],
                r["at"],
                Health(r["previous"]),
                Health(r["current"]),
                r["reason"],
                r["streak"],
            )
            for r in rows
        ][::-1]

    async def health_history(
        self, since: float, until: float | None = None
    ) -> dict[str, list[tuple[float, Health]]]:
        """Each system's health from ``since`` on: ``[(at, health), ...]`` in time order.

        The first entry is ``(since, health then)`` when a transition before ``since`` says what
        it was; every transition after ``since`` (up to ``until``) follows. Systems with no
        transitions are absent.
        """
        history: dict[str, list[tuple[float, Health]]] = {}
        # Each system (every one with a transition has a state row) finds its last transition
        # at ``since`` by one probe of its (system, at) index: a GROUP BY would read all the
        # history the status page keeps (90 days).
        for system, current in self.db.execute(
            "SELECT system, (SELECT current FROM transitions INDEXED BY transitions_system_at "
            "WHERE transitions.system = states.system AND at <= ? ORDER BY at DESC, id DESC "
            "LIMIT 1) FROM states",
            (since,),
        ).fetchall():
            if current is not None:
                history[system] = [(since, _HEALTH[current])]
        for system, changes in (await self.health_changes(since, until)).items():
            history.setdefault(system, []).extend(changes)
        return history

    async def health_changes(
        self, since: float, until: float | None = None
    ) -> dict[str, list[tuple[float, Health]]]:
        changes: dict[str, list[tuple[float, Health]]] = {}
        bounds, params = ("AND at <= ?", (since, until)) if until is not None else ("", (since,))
        for system, at, current in self.db.execute(
            "SELECT system, at, current FROM transitions INDEXED BY transitions_at "
            f"WHERE at > ? {bounds} ORDER BY at, id",
            params,
        ).fetchall():
            changes.setdefault(system, []).append((at, _HEALTH[current]))
        return changes

    # incidents ----------------------------------------------------------------------------

    async def new_incident_id(self) -> int:
        """Reserve the next id in one write: the ``counters`` row is the last id handed out
        (or pruned), so two processes never both read the same highest id and take it.

        Never an id used before, even once its incident is pruned: the id is in every
        Message-ID sent about it, and a reused one would thread new mail into an old outage.
        The incidents' own highest id counts too, for a file whose ids were taken before the
        counter was (and for an incident saved with an id of its own)."""
        try:
            with self.db.atomic():
                rows = self.db.conn.execute(_RESERVE_INCIDENT_ID).fetchall()
        except sqlite3.OperationalError as exc:
            raise StoreUnavailable(str(exc)) from exc
        return int(rows[0][0])

    async def save_incident(self, incident: Incident) -> None:
        self._write(_SAVE_INCIDENT, _incident_row(incident))

    async def save_incidents(
        self,
        incidents: Sequence[Incident],
        timeline: Sequence[tuple[int, TimelineEntry]],
        applied: Sequence[int] = (),
    ) -> None:
        try:
            with self.db.atomic():
                ids = set(applied)
                marked = self.db.conn.executemany(
                    "UPDATE transitions SET applied = 1 WHERE id = ? AND NOT applied",
                    [(id_,) for id_ in ids],
                )
                if ids and marked.rowcount != len(ids):  # another process applied some first
                    raise AlreadyApplied(
                        f"{len(ids) - marked.rowcount} of {len(ids)} transitions were applied "
                        "by another process"
                    )
                self.db.conn.executemany(_SAVE_INCIDENT, [_incident_row(i) for i in incidents])
                self.db.conn.executemany(
                    _ADD_TIMELINE, [(id_, e.at, e.kind, e.text) for id_, e in timeline]
                )
        except sqlite3.OperationalError as exc:
            raise StoreUnavailable(str(exc)) from exc

    async def incident(self, incident_id: int) -> Incident | None:
        rows = list(self.db.query("SELECT * FROM incidents WHERE id = ?", (incident_id,)))
        return _incident(rows[0]) if rows else None

    async def incidents(
        self,
        open_only: bool = False,
        resolved_since: float | None = None,
        opened_before: float | None = None,
    ) -> list[Incident]:
        if open_only:
            sql, params = "WHERE (resolved_at IS NULL)", []
        elif resolved_since is not None:
            sql, params = "WHERE (resolved_at IS NULL OR resolved_at >= ?)", [resolved_since]
        else:
            sql, params = "WHERE 1", []
        if opened_before is not None:
            sql, params = f"{sql} AND opened_at < ?", [*params, opened_before]
        rows = self.db.query(f"SELECT * FROM incidents {sql} ORDER BY id", params)
        return [_incident(r) for r in rows]

    async def add_timeline(self, incident_id: int, at: float, kind: str, text: str) -> None:
        self._write(_ADD_TIMELINE, (incident_id, at, kind, text))

    async def timeline(self, incident_id: int) -> list[TimelineEntry]:
        rows = self.db.query(
            "SELECT at, kind, text FROM timeline WHERE incident_id = ? ORDER BY id", (incident_id,)
        )
        return [TimelineEntry(r["at"], r["kind"], r["text"]) for r in rows]

    async def public_timeline(self, incident_id: int) -> list[TimelineEntry]:
        rows = self.db.query(
            "SELECT at, kind, text FROM timeline WHERE incident_id = ? AND kind IN "
            f"({', '.join('?' for _ in PUBLIC_TIMELINE)}) ORDER BY id",
            (incident_id, *PUBLIC_TIMELINE),
        )
        return [TimelineEntry(r["at"], r["kind"], r["text"]) for r in rows]

    async def latest_incidents(
        self, limit: int, status: str | None = None, before: int | None = None
    ) -> list[Incident]:
        """The newest ``limit`` incidents, newest first; ``status`` "open" or "resolved" filters,
        ``before`` keeps those with a lower id."""
        where = [
            {
                None: "1",
                "open": "resolved_at IS NULL",
                "resolved": "resolved_at IS NOT NULL",
            }[status]
        ]
        if before is not None:
            where.append("id < :before")
        rows = self.db.query(
            f"SELECT * FROM incidents WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT :limit",
            {"before": before, "limit": limit},
        )
        return [_incident(r) for r in rows]

    async def prunable_incidents(self, resolved_before: float, limit: int = 100) -> list[int]:
        """Incidents resolved, and their resolution decided, before ``resolved_before``, with no
        message still pending: oldest first."""
        return self._prunable(resolved_before, limit, private_kept=False)

    async def private_prunable_incidents(
        self, resolved_before: float, limit: int = 100
    ) -> list[int]:
        return self._prunable(resolved_before, limit, private_kept=True)

    def _prunable(self, resolved_before: float, limit: int, private_kept: bool) -> list[int]:
        """As ``prunable_incidents``; with ``private_kept``, only those whose private part is
        still kept (read by the index that holds only them, so the history is never walked)."""
        kept = (
            "INDEXED BY incidents_private_kept WHERE NOT private_pruned AND "
            if private_kept
            else "WHERE "
        )
        rows = self.db.query(
            f"SELECT id FROM incidents {kept}resolved_at IS NOT NULL AND resolved_at < :before "
            "AND (resolution_told_at IS NULL OR resolution_told_at < :before) "
            "AND NOT EXISTS (SELECT 1 FROM outbox WHERE outbox.incident_id = incidents.id "
            "AND outbox.status = :pending) ORDER BY resolved_at, id LIMIT :limit",
            {"before": resolved_before, "pending": PENDING, "limit": limit},
        )
        return [int(r["id"]) for r in rows]

    async def prune_private(
        self, incident_id: int, resolved_before: float, batch: int = 2000
    ) -> int:
        """Delete up to ``batch`` rows of the private part of one incident resolved before
        ``resolved_before`` (settled messages first, as ``prune_incident`` does), then mark it
        pruned; how many rows went or were marked, 0 once it is."""
        resolved = (
            "EXISTS (SELECT 1 FROM incidents WHERE id = :id AND resolved_at IS NOT NULL "
            "AND resolved_at < :before AND NOT private_pruned)"
        )
        params: dict[str, Any] = {
            "id": incident_id,
            "before": resolved_before,
            "pending": PENDING,
            "n": batch,
        }
        public = ", ".join(f"'{kind}'" for kind in PUBLIC_TIMELINE)
        conn = self.db.conn
        try:
            with self.db.atomic():
                steps = (
                    "DELETE FROM told WHERE incident_id = :id AND person_id IN (SELECT "
                    f"person_id FROM told WHERE incident_id = :id LIMIT :n) AND {resolved}",
                    "DELETE FROM timeline WHERE id IN (SELECT id FROM timeline WHERE "
                    f"incident_id = :id AND kind NOT IN ({public}) LIMIT :n) AND {resolved}",
                    "DELETE FROM explanations WHERE incident_id = :id AND text = '' "
                    f"AND {resolved}",
                    f"DELETE FROM alerts WHERE incident_id = :id AND {resolved}",
                    "DELETE FROM goodwill WHERE incident_id = :id AND person_id IN (SELECT "
                    f"person_id FROM goodwill WHERE incident_id = :id LIMIT :n) AND {resolved}",
                    "UPDATE incidents SET private_pruned = 1 WHERE id = :id "
                    "AND resolved_at IS NOT NULL AND resolved_at < :before AND NOT private_pruned",
                )
                return _prune_part(conn, params, resolved, steps) or 0
        except sqlite3.OperationalError as exc:
            raise StoreUnavailable(str(exc)) from exc

    async def prune_incident(
        self, incident_id: int, resolved_before: float, batch: int = 2000
    ) -> int:
        """Delete up to ``batch`` rows of one incident resolved before ``resolved_before``: its
        settled outbox rows first, then what each person was told, its timeline, and last the
        incident itself (an interrupted prune carries on at the next pass). Returns how many
        rows went: 0 once the incident is gone, or when it is open or resolved since
        ``resolved_before``. A pending message is never deleted, and while one is left
        nothing else of its incident is.
        """
        resolved = (
            "EXISTS (SELECT 1 FROM incidents WHERE id = :id AND resolved_at IS NOT NULL "
            "AND resolved_at < :before)"
        )
        params = {"id": incident_id, "before": resolved_before, "pending": PENDING, "n": batch}
        conn = self.db.conn
        try:
            with self.db.atomic():
                steps = (
                    "DELETE FROM told WHERE incident_id = :id AND person_id IN (SELECT "
                    f"person_id FROM told WHERE incident_id = :id LIMIT :n) AND {resolved}",
                    "DELETE FROM timeline WHERE id IN (SELECT id FROM timeline "
                    f"WHERE incident_id = :id LIMIT :n) AND {resolved}",
                    f"DELETE FROM explanations WHERE incident_id = :id AND {resolved}",
                    f"DELETE FROM alerts WHERE incident_id = :id AND {resolved}",
                    "DELETE FROM goodwill WHERE incident_id = :id AND person_id IN (SELECT "
                    f"person_id FROM goodwill WHERE incident_id = :id LIMIT :n) AND {resolved}",
                )
                went = _prune_part(conn, params, resolved, steps)
                if went is not None:
                    return went
                # Its id is remembered, so that no new incident takes it again.
                conn.execute(
                    "INSERT INTO counters VALUES ('incident', :id) ON CONFLICT (name) "
                    "DO UPDATE SET value = MAX(value, excluded.value)",
                    params,
                )
                sql = f"DELETE FROM incidents WHERE id = :id AND {resolved}"
                return int(conn.execute(sql, params).rowcount)
        except sqlite3.OperationalError as exc:
            raise StoreUnavailable(str(exc)) from exc

    # on-call's alert, and goodwill ----------------------------------------------------------

    async def record_alert(self, incident_id: int, at: float, routes: Sequence[str]) -> None:
        self._write(
            "INSERT OR IGNORE INTO alerts VALUES (?, ?, ?)", (incident_id, at, ",".join(routes))
        )

    async def alert(self, incident_id: int) -> Alert | None:
        row = self.db.conn.execute(
            "SELECT alerted_at, routes FROM alerts WHERE incident_id = ?", (incident_id,)
        ).fetchone()
        return None if row is None else Alert(row[0], tuple(filter(None, row[1].split(","))))

    async def record_audience(self, incident_id: int, audience: AffectedCount) -> None:
        self._write(
            "UPDATE incidents SET affected = ?, affected_unsubscribed = ? WHERE id = ?",
            (audience.people, audience.unsubscribed, incident_id),
        )

    async def audience(self, incident_id: int) -> AffectedCount | None:
        row = self.db.conn.execute(
            "SELECT affected, affected_unsubscribed FROM incidents WHERE id = ?", (incident_id,)
        ).fetchone()
        return None if row is None or row[0] is None else AffectedCount(row[0], row[1] or 0)

    async def offer_goodwill(self, incident_id: int, offers: Mapping[str, str]) -> dict[str, str]:
        if not offers:
            return {}
        try:
            with self.db.atomic():
                self.db.conn.executemany(
                    "INSERT OR IGNORE INTO goodwill VALUES (?, ?, ?)",
                    [(incident_id, person, key) for person, key in offers.items()],
                )
                rows = self.db.conn.execute(
                    "SELECT person_id, outbox_key FROM goodwill WHERE incident_id = ? "
                    "AND person_id IN (SELECT value FROM json_each(?))",
                    (incident_id, json.dumps(list(offers))),
                ).fetchall()
        except sqlite3.OperationalError as exc:
            raise StoreUnavailable(str(exc)) from exc
        return {person: key for person, key in rows}

    # explanations and promises ------------------------------------------------------------

    async def explanation(self, incident_id: int) -> Explanation | None:
        rows = list(
            self.db.query(
                f"SELECT {EXPLANATION_COLUMNS} FROM explanations WHERE incident_id = ?",
                (incident_id,),
            )
        )
        return Explanation(**rows[0]) if rows else None

    async def explain(self, incident_id: int, text: str, now: float) -> Explanation:
        found = self._returning(EXPLAIN, {"id": incident_id, "text": text, "now": now})
        if found is None:
            final = await self.explanation(incident_id)
            raise ExplanationFinal(incident_id, final.told_at if final and final.told_at else now)
        return found

    async def settle_for_resolution(self, incident_id: int, now: float) -> Explanation:
        found = self._returning(SETTLE_FOR_RESOLUTION, {"id": incident_id, "now": now})
        assert found is not None
        return found

    async def start_explaining(self, incident_id: int, now: float) -> Explanation:
        found = self._returning(START_EXPLAINING, {"id": incident_id, "now": now})
        if found is None:  # no explanation row: nothing to start
            return Explanation(incident_id)
        return found

    async def keep_promise(self, incident_id: int, now: float) -> None:
        self._write(KEEP_PROMISE, {"id": incident_id, "now": now})

    async def open_promises(self) -> list[Explanation]:
        rows = self.db.query(
            f"SELECT {EXPLANATION_COLUMNS} FROM explanations WHERE {PROMISE_OPEN} "
            "ORDER BY incident_id"
        )
        return [Explanation(**row) for row in rows]

    async def take_reminder(self, incident_id: int, now: float, last_before: float) -> bool:
        taken = self._write(TAKE_REMINDER, {"id": incident_id, "now": now, "last": last_before})
        return taken.rowcount == 1

    def _returning(self, sql: str, params: dict[str, Any]) -> Explanation | None:
        """The row a write ``... RETURNING`` gives (None: it changed none), committed."""
        try:
            with self.db.atomic():
                row = self.db.conn.execute(sql, params).fetchone()
        except sqlite3.OperationalError as exc:
            raise StoreUnavailable(str(exc)) from exc
        return Explanation(*row) if row is not None else None

    # maintenance: ``maintain`` (the interface's) runs ``reclaim``, ``checkpoint`` (SQLite's)

    async def maintain(self) -> dict[str, int]:
        """After a prune: give the freed pages back ``RECLAIM_STEP`` at a time, yielding to the
        probes between steps, then checkpoint, since until then the file keeps its size and
        the log holds the changes."""
        given = 0
        while step := self.reclaim(RECLAIM_STEP):
            given += step
            await asyncio.sleep(0)
        self.checkpoint()
        return {"pages_given_back": given}

    def reclaim(self, pages: int) -> int:
        """Give up to ``pages`` free pages back to the filesystem; how many went (0 when none
        are free). Only a file made with ``auto_vacuum=INCREMENTAL`` can: any other keeps its
        free pages, and reuses them for new rows."""
        if pages <= 0 or not self.incremental:
            return 0
        try:
            before = self._pragma("freelist_count")
            self.db.conn.execute(f"PRAGMA incremental_vacuum({int(pages)})").fetchall()
            return before - self._pragma("freelist_count")
        except sqlite3.OperationalError as exc:
            raise StoreUnavailable(str(exc)) from exc

    def checkpoint(self) -> bool:
        """Copy the write-ahead log into the database file and truncate the log to nothing;
        False, having waited for nobody, if another connection is reading or writing (the
        next checkpoint will do). Until a checkpoint, pages given back by ``reclaim`` are
        still in the database file, and the log holds what replaced them."""
        if self.path == ":memory:":
            return True
        conn = self.db.conn
        try:
            conn.execute("PRAGMA busy_timeout=0")
            try:
                busy = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
            finally:
                conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        except sqlite3.OperationalError as exc:
            raise StoreUnavailable(str(exc)) from exc
        return not busy

    # people -------------------------------------------------------------------------------

    async def upsert_people(self, people: Iterable[Person]) -> int:
        count = 0
        batch: list[Person] = []
        try:
            with self.db.atomic():
                for person in people:
                    batch.append(person)
                    if len(batch) >= 1000:
                        count += self._upsert_batch(batch)
                        batch = []
                count += self._upsert_batch(batch)
        except sqlite3.OperationalError as exc:
            raise StoreUnavailable(str(exc)) from exc
        return count

    def _upsert_batch(self, people: list[Person]) -> int:
        conn = self.db.conn
        conn.executemany(
            f"INSERT OR REPLACE INTO people ({PEOPLE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [person_row(p) for p in people],
        )
        conn.executemany("DELETE FROM subscriptions WHERE person_id = ?", [(p.id,) for p in people])
        conn.executemany(
            "INSERT OR IGNORE INTO subscriptions VALUES (?, ?)",
            [(system, p.id) for p in people for system in p.systems],
        )
        keep_unsubscribed(conn, people)  # who cancelled is not subscribed again unasked
        return len(people)

    async def person(self, person_id: str) -> Person | None:
        return self._person(person_id)

    def _person(self, person_id: str) -> Person | None:
        row = self.db.conn.execute(
            f"SELECT {PEOPLE_COLUMNS} FROM people WHERE id = ?", (person_id,)
        ).fetchone()
        return person_of(row) if row else None

    async def subscriber_pages(self, systems: Iterable[str]) -> AsyncIterator[list[Person]]:
        """Subscribers of any of ``systems``, by id, a page at a time so a caller may write
        between pages."""
        names = sorted(set(systems))
        next_page = self._page_by_system if len(names) <= _SYSTEMS_BY_KEY else self._page_by_person
        last = ""
        while page := next_page(names, last):
            found = self._people_by_ids(page)
            yield [found[person_id] for person_id in page if person_id in found]
            last = page[-1]

    def _page_by_system(self, names: list[str], after: str) -> list[str]:
        """The next ids subscribed to any of a few systems: each system's next ids by its key
        range, merged. (One ``id IN (SELECT ... WHERE system IN ...)`` query per page built
        the whole list of ids again each time: 61 ms a page at 100,000 people.)"""
        ids: set[str] = set()
        for name in names:
            ids.update(
                person_id
                for (person_id,) in self.db.conn.execute(
                    "SELECT person_id FROM subscriptions WHERE system = ? AND person_id > ? "
                    "ORDER BY person_id LIMIT ?",
                    (name, after, _PEOPLE_PAGE),
                )
            )
        return sorted(ids)[:_PEOPLE_PAGE]

    def _page_by_person(self, names: list[str], after: str) -> list[str]:
        """The next ids subscribed to any of many systems (everything failing at once): the
        subscriptions in person order, kept where the system is one of them. A query per
        system per page, as above, grows with pages times systems; this reads each
        subscription at most once over the whole fan-out."""
        return [
            person_id
            for (person_id,) in self.db.conn.execute(
                "SELECT DISTINCT person_id FROM subscriptions INDEXED BY subscriptions_person "
                "WHERE person_id > ? AND system IN (SELECT value FROM json_each(?)) "
                "ORDER BY person_id LIMIT ?",
                (after, json.dumps(names), _PEOPLE_PAGE),
            )
        ]

    async def audience_count(
        self, systems: Iterable[str], attempts_from: float, until: float
    ) -> int:
        # Counted by SQLite: building every recipient to count them held the loop for seconds
        # when an incident opened with 100,000 people to tell.
        names = json.dumps(sorted(set(systems)))
        row = self.db.conn.execute(
            "SELECT COUNT(*) FROM (SELECT person_id FROM subscriptions JOIN people "
            "ON people.id = person_id WHERE system IN (SELECT value FROM json_each(:names)) "
            "UNION SELECT person_id FROM attempts WHERE system IN "
            "(SELECT value FROM json_each(:names)) AND at >= :start AND at <= :end)",
            {"names": names, "start": attempts_from, "end": until},
        ).fetchone()
        return int(row[0])

    async def add_attempt(self, attempt: Attempt, person: Person) -> None:
        """Remember an attempt; a person we did not know is kept, with no subscriptions.

        A known person keeps their subscriptions; contact details given with the attempt
        fill in what we did not have.
        """
        try:
            with self.db.atomic():
                known = self._person(person.id)
                merged = (
                    Person(
                        id=known.id,
                        name=known.name or person.name,
                        email=known.email or person.email,
                        phone=known.phone or person.phone,
                        webhook=known.webhook or person.webhook,
                        systems=known.systems,
                        timezone=known.timezone or person.timezone,
                        language=known.language or person.language,
                    )
                    if known
                    else replace(person, systems=())
                )
                self._upsert_batch([merged])
                self.db.execute(
                    "INSERT INTO attempts (system, person_id, action, at) VALUES (?, ?, ?, ?)",
                    (attempt.system, attempt.person_id, attempt.action, attempt.at),
                )
        except sqlite3.OperationalError as exc:
            raise StoreUnavailable(str(exc)) from exc

    async def attempts(self, systems: Iterable[str], since: float) -> list[Attempt]:
        names = sorted(set(systems))
        if not names:
            return []
        marks = ", ".join("?" for _ in names)
        rows = self.db.query(
            f"SELECT * FROM attempts WHERE system IN ({marks}) AND at >= ? ORDER BY at, id",
            [*names, since],
        )
        return [Attempt(r["system"], r["person_id"], r["action"], r["at"]) for r in rows]

    async def attempt_count(self, systems: Iterable[str], since: float) -> int:
        names = sorted(set(systems))
        if not names:
            return 0
        marks = ", ".join("?" for _ in names)
        row = self.db.execute(
            f"SELECT COUNT(*) FROM attempts WHERE system IN ({marks}) AND at >= ?",
            [*names, since],
        ).fetchone()
        return int(row[0])

    # outbox -------------------------------------------------------------------------------

    async def told_about(
        self, incident_id: int, person_ids: Sequence[str]
    ) -> dict[str, frozenset[str]]:
        """What each of ``person_ids`` was told about ``incident_id``; nothing for the rest."""
        found: dict[str, frozenset[str]] = {}
        for chunk, marks in _id_chunks(person_ids):
            for person, systems in self.db.conn.execute(
                "SELECT person_id, systems FROM told "
                f"WHERE incident_id = ? AND person_id IN ({marks})",
                [incident_id, *chunk],
            ):
                found[person] = frozenset(json.loads(systems))
        return found

    async def told_pages(
        self, incident_id: int, size: int = 1000
    ) -> AsyncIterator[dict[str, frozenset[str]]]:
        """What each person was told about ``incident_id``, ``size`` people at a time by id;
        each page is read whole, so the caller may write between pages."""
        last = ""
        while rows := self.db.conn.execute(
            "SELECT person_id, systems FROM told WHERE incident_id = ? AND person_id > ? "
            "ORDER BY person_id LIMIT ?",
            (incident_id, last, size),
        ).fetchall():
            yield {person: frozenset(json.loads(systems)) for person, systems in rows}
            last = rows[-1][0]

    async def decide(
        self, items: Sequence[OutboxItem], told: Mapping[str, frozenset[str]], incident_id: int
    ) -> int:
        """Commit decisions and what each person has now been told about, in one transaction.

        Returns how many items were new; an item whose key exists already is left as it is.
        """
        try:
            with self.db.atomic():
                before = self.db.conn.total_changes
                self.db.conn.executemany(
                    f"INSERT OR IGNORE INTO outbox ({DECIDED_COLUMNS}) VALUES "
                    "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [decided_row(i) for i in items],
                )
                inserted = self.db.conn.total_changes - before
                self.db.conn.executemany(
                    "INSERT OR REPLACE INTO told VALUES (?, ?, ?)",
                    [(incident_id, p, json.dumps(sorted(s))) for p, s in told.items()],
                )
        except sqlite3.OperationalError as exc:
            raise StoreUnavailable(str(exc)) from exc
        return inserted

    async def due(
        self, now: float, limit: int, shards: Collection[int] | None = None
    ) -> list[OutboxItem]:
        if shards is not None and not shards:
            return []
        in_shards = "" if shards is None else "AND shard IN (SELECT value FROM json_each(?)) "
        rows = self.db.conn.execute(
            f"SELECT {OUTBOX_COLUMNS} FROM outbox WHERE status = ? AND next_try_at <= ? "
            + in_shards
            # A person hears about one incident in order: nothing goes out while an earlier
            # message of theirs for it is still waiting.
            + "AND NOT EXISTS (SELECT 1 FROM outbox AS earlier WHERE "
            "earlier.incident_id = outbox.incident_id AND earlier.person_id = outbox.person_id "
            "AND earlier.status = ? AND earlier.rowid < outbox.rowid) "
            "ORDER BY next_try_at, outbox.rowid LIMIT ?",
            (
                PENDING,
                now,
                *([] if shards is None else [json.dumps(sorted(shards))]),
                PENDING,
                limit,
            ),
        )
        return [outbox_item(r) for r in rows]

    async def update_item(self, item: OutboxItem) -> None:
        await self.update_items((item,))

    async def update_items(self, items: Sequence[OutboxItem]) -> None:
        """Record the outcomes of several sends in one transaction: all of them, or (raising
        StoreUnavailable) none.

        A settled item (sent or undeliverable) is final: nothing sends it again, so its rendered
        text, html and sms are cleared in the same UPDATE. The row keeps its key, kind, reason,
        person, subject, times, status, tries, channels, sent_via and last error: what the
        API, the daily limit, the exactly-once keys and the demo read. A settled row is never
        changed again.
        """
        try:
            with self.db.atomic():
                self.db.conn.executemany(
                    "UPDATE outbox SET status = :status, tries = :tries, "
                    "next_try_at = :next_try_at, last_error = :last_error, sent_at = :sent_at, "
                    "sent_via = :sent_via, channels = :channels, "
                    "text = CASE WHEN :status = :pending THEN text ELSE '' END, "
                    "html = CASE WHEN :status = :pending THEN html END, "
                    "sms = CASE WHEN :status = :pending THEN sms ELSE '' END "
                    "WHERE key = :key AND status = :pending",
                    [
                        {
                            "status": item.status,
                            "tries": item.tries,
                            "next_try_at": item.next_try_at,
                            "last_error": item.last_error,
                            "sent_at": item.sent_at,
                            "sent_via": address_text(item.sent_via),
                            "channels": channels_text(item.channels),
                            "pending": PENDING,
                            "key": item.key,
                        }
                        for item in items
                    ],
                )
        except sqlite3.OperationalError as exc:
            raise StoreUnavailable(str(exc)) from exc

    async def message_counts(self, person_ids: Sequence[str], since: float) -> dict[str, int]:
        """How many messages each of ``person_ids`` was sent (or is about to be) since
        ``since``; people with none are left out."""
        counts: dict[str, int] = {}
        for chunk, marks in _id_chunks(person_ids):
            counts.update(
                self.db.conn.execute(
                    "SELECT person_id, COUNT(*) FROM outbox "
                    f"WHERE person_id IN ({marks}) AND created_at >= ? GROUP BY person_id",
                    [*chunk, since],
                ).fetchall()
            )
        return counts

    async def people_by_ids(self, ids: Sequence[str]) -> dict[str, Person]:
        return self._people_by_ids(ids)

    def _people_by_ids(self, ids: Sequence[str]) -> dict[str, Person]:
        found: dict[str, Person] = {}
        for chunk, marks in _id_chunks(ids):
            for row in self.db.conn.execute(
                f"SELECT {PEOPLE_COLUMNS} FROM people WHERE id IN ({marks})", chunk
            ):
                person = person_of(row)
                found[person.id] = person
        return found

    async def outbox_counts(self, incident_id: int | None = None) -> dict[str, dict[str, int]]:
        """``{kind: {status: count}}``, for one incident or all."""
        where, params = ("WHERE incident_id = ?", [incident_id]) if incident_id else ("", [])
        counts: dict[str, dict[str, int]] = {}
        for row in self.db.query(
            f"SELECT kind, status, COUNT(*) AS n FROM outbox {where} GROUP BY kind, status",
            params,
        ):
            counts.setdefault(row["kind"], {})[row["status"]] = row["n"]
        return counts

    async def pending_count(self) -> int:
        row = next(self.db.query("SELECT COUNT(*) AS n FROM outbox WHERE status = ?", (PENDING,)))
        return int(row["n"])

    async def open_incident_count(self) -> int:
        row = next(self.db.query("SELECT COUNT(*) AS n FROM incidents WHERE resolved_at IS NULL"))
        return int(row["n"])

    async def outbox_items(self, incident_id: int) -> list[OutboxItem]:
        rows = self.db.conn.execute(
            f"SELECT {OUTBOX_COLUMNS} FROM outbox WHERE incident_id = ? ORDER BY created_at, key",
            (incident_id,),
        )
        return [outbox_item(r) for r in rows]

    async def undeliverable(self, incident_id: int, limit: int) -> list[tuple[str, str, str]]:
        """``(person_id, kind, why)`` of the incident's messages nobody could deliver, by
        person, at most ``limit``."""
        rows = self.db.conn.execute(
            "SELECT person_id, kind, last_error FROM outbox WHERE incident_id = ? AND status = ?"
            " ORDER BY person_id, created_at LIMIT ?",
            (incident_id, UNDELIVERABLE, limit),
        )
        return [(str(person), str(kind), str(why)) for person, kind, why in rows]

    async def message_tally(self, incident_id: int) -> MessageTally:
        """Counted a part of the incident's people at a time (their messages all in one part),
        yielding between parts: the 200,000 messages of a 100,000-person incident, counted at
        once, would hold the event loop (and every probe) for a fifth of a second
        (benchmarks/report.py)."""
        counts: dict[tuple[str, str, str], int] = {}
        acknowledged: list[float] = []
        undeliverable = 0
        after: str | None = None
        while True:
            await asyncio.sleep(0)  # the loop's turn before each part, the first one too
            # The last person of the next part: its messages are in the part, so no person's
            # messages are split between two.
            last = self.db.conn.execute(
                "SELECT person_id FROM outbox WHERE incident_id = ? AND person_id > ? "
                "ORDER BY person_id LIMIT 1 OFFSET ?",
                (incident_id, after or "", _TALLY_PART - 1),
            ).fetchone()
            where = "incident_id = ? AND person_id > ?" + (" AND person_id <= ?" if last else "")
            params = [incident_id, after or "", *([last[0]] if last else [])]
            for kind, status, channel, count in self.db.conn.execute(
                "SELECT kind, status, CASE WHEN status = ? "
                "THEN substr(sent_via, 1, instr(sent_via, ':') - 1) ELSE '' END AS channel, "
                f"COUNT(*) FROM outbox WHERE {where} GROUP BY kind, status, channel",
                [SENT, *params],
            ):
                key = (str(kind), str(status), str(channel))
                counts[key] = counts.get(key, 0) + int(count)
            acknowledged.extend(
                float(at)
                for (at,) in self.db.conn.execute(
                    f"SELECT sent_at FROM outbox WHERE {where} AND kind = ? AND status = ? "
                    "ORDER BY sent_at",
                    [*params, MessageKind.ACKNOWLEDGE.value, SENT],
                )
            )
            undeliverable += self.db.conn.execute(
                f"SELECT COUNT(DISTINCT person_id) FROM outbox WHERE {where} AND status = ?",
                [*params, UNDELIVERABLE],
            ).fetchone()[0]
            if last is None:
                break
            after = last[0]
        acknowledged.sort()  # a merge of the parts' runs, each in order already
        return MessageTally(counts, undeliverable, tuple(acknowledged))


def _id_chunks(ids: Sequence[str]) -> Iterator[tuple[Sequence[str], str]]:
    """``ids`` in pieces a query can take as parameters, each with its ``?, ?, ...``."""
    for start in range(0, len(ids), _IDS_PER_QUERY):
        chunk = ids[start : start + _IDS_PER_QUERY]
        yield chunk, ", ".join("?" * len(chunk))


_INCIDENT_COLUMNS = (
    "id", "opened_at", "resolved_at", "cause", "members", "note", "held", "notified_at",
    "last_update_at", "update_seq", "pending_round", "resolution_told_at",
)  # fmt: skip
# An upsert of the notifier's columns: whether the incident's private part was pruned is the
# store's own (a note added to an old incident must not make it look unpruned).
_SAVE_INCIDENT = (
    f"INSERT INTO incidents ({', '.join(_INCIDENT_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in _INCIDENT_COLUMNS)}) ON CONFLICT (id) DO UPDATE SET "
    + ", ".join(f"{name} = excluded.{name}" for name in _INCIDENT_COLUMNS[1:])
)
_HIGHEST_INCIDENT = "COALESCE((SELECT MAX(id) FROM incidents), 0)"
_RESERVE_INCIDENT_ID = (
    f"INSERT INTO counters (name, value) VALUES ('incident', {_HIGHEST_INCIDENT} + 1) "
    f"ON CONFLICT (name) DO UPDATE SET value = MAX(value, {_HIGHEST_INCIDENT}) + 1 "
    "RETURNING value"
)
_ADD_TIMELINE = "INSERT INTO timeline (incident_id, at, kind, text) VALUES (?, ?, ?, ?)"


def _incident_row(incident: Incident) -> tuple[object, ...]:
    return (
        incident.id,
        incident.opened_at,
        incident.resolved_at,
        incident.cause,
        members_text(incident),
        incident.note,
        int(incident.held),
        incident.notified_at,
        incident.last_update_at,
        incident.update_seq,
        incident.pending_round,
        incident.resolution_told_at,
    )


def _incident(row: dict[str, Any]) -> Incident:
    return Incident(
        id=row["id"],
        opened_at=row["opened_at"],
        members=members(row["members"]),
        cause=row["cause"],
        resolved_at=row["resolved_at"],
        note=row["note"],
        held=bool(row["held"]),
        notified_at=row["notified_at"],
        last_update_at=row["last_update_at"],
        update_seq=row["update_seq"],
        pending_round=row["pending_round"],
        resolution_told_at=row["resolution_told_at"],
    )


def _prune_part(
    conn: sqlite3.Connection, params: Mapping[str, Any], resolved: str, steps: Sequence[str]
) -> int | None:
    """One batch of an incident's prune: its settled messages first, then (once none is left,
    and none pending) the first of ``steps`` that deletes anything. How many rows went; 0 while
    a message is pending (all of the incident is kept); None when nothing was left to go."""
    deleted = conn.execute(
        "DELETE FROM outbox WHERE rowid IN (SELECT rowid FROM outbox WHERE "
        f"incident_id = :id AND status != :pending LIMIT :n) AND {resolved}",
        params,
    ).rowcount
    if deleted:
        return int(deleted)
    if conn.execute("SELECT 1 FROM outbox WHERE incident_id = :id LIMIT 1", params).fetchone():
        return 0  # a message is still pending: keep all of the incident
    for sql in steps:
        deleted = conn.execute(sql, params).rowcount
        if deleted:
            return int(deleted)
    return None
