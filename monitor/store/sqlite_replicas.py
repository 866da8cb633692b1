"""``Replicas`` on SQLite: the same rules as PostgreSQL's (``postgres/replicas.py``), for
replicas on one machine sharing one file; a single monitor is a replica alone, holding every
check and the lead. Each method is one statement, or one transaction, under SQLite's write
lock."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection, Mapping, Sequence

from monitor.store.sqlite_rows import SQLiteRows
from monitor.store.types import ReplicaRecord, StoreUnavailable

_TAKE = (
    "INSERT INTO check_owners (system, replica, since) SELECT value, :replica, :now "
    "FROM json_each(:systems) WHERE true "  # WHERE: the upsert clause needs it after a SELECT
    "ON CONFLICT (system) DO UPDATE SET replica = excluded.replica, "
    "since = CASE WHEN check_owners.replica = excluded.replica THEN check_owners.since "
    "ELSE excluded.since END "
    "WHERE check_owners.replica IS NULL OR check_owners.replica = excluded.replica "
    "OR check_owners.replica NOT IN (SELECT name FROM replicas WHERE seen_at >= :alive_since) "
    "RETURNING system"
)
_LEAD = (
    "INSERT INTO leader (only_row, replica, since, until) VALUES (1, :replica, :now, :until) "
    "ON CONFLICT (only_row) DO UPDATE SET replica = excluded.replica, until = excluded.until, "
    "since = CASE WHEN leader.replica = excluded.replica THEN leader.since "
    "ELSE excluded.since END "
    "WHERE leader.replica = excluded.replica OR leader.until < :now RETURNING replica"
)


class SQLiteReplicas(SQLiteRows):
    """The replicas sharing this file, the checks each holds, and the leader."""

    async def beat(
        self,
        replica: str,
        started_at: float,
        now: float,
        digest: str,
        systems: Sequence[str],
        host: str = "",
        pid: int = 0,
    ) -> None:
        changed = self._rows(
            "UPDATE replicas SET seen_at = ?, started_at = ?, host = ?, pid = ? "
            "WHERE name = ? AND digest = ? RETURNING name",
            (now, started_at, host, pid, replica, digest),
        )
        if not changed:
            self._rows(
                "INSERT INTO replicas (name, started_at, seen_at, digest, systems, host, pid) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET "
                "started_at = excluded.started_at, seen_at = excluded.seen_at, "
                "digest = excluded.digest, systems = excluded.systems, host = excluded.host, "
                "pid = excluded.pid",
                (replica, started_at, now, digest, json.dumps(list(systems)), host, pid),
            )

    async def live_replicas(self, alive_since: float) -> list[ReplicaRecord]:
        rows = self._rows(
            "SELECT name, started_at, seen_at, digest, host, pid FROM replicas "
            "WHERE seen_at >= ? "
            "ORDER BY name",
            (alive_since,),
        )
        return [ReplicaRecord(*row) for row in rows]

    async def declared_checks(self, replica: str) -> list[str]:
        rows = self._rows("SELECT systems FROM replicas WHERE name = ?", (replica,))
        return list(json.loads(rows[0][0])) if rows else []

    async def held_checks(self, replica: str) -> set[str]:
        rows = self._rows("SELECT system FROM check_owners WHERE replica = ?", (replica,))
        return {system for (system,) in rows}

    async def take_checks(
        self, replica: str, systems: Collection[str], now: float, alive_since: float
    ) -> set[str]:
        if not systems:
            return set()
        rows = self._rows(
            _TAKE,
            {
                "replica": replica,
                "now": now,
                "systems": json.dumps(sorted(systems)),
                "alive_since": alive_since,
            },
        )
        return {system for (system,) in rows}

    async def hand_over_checks(
        self, replica: str, to: Mapping[str, str | None], now: float
    ) -> None:
        if not to:
            return
        try:
            with self.db.atomic():
                self.db.conn.executemany(
                    "UPDATE check_owners SET replica = ?, since = ? "
                    "WHERE system = ? AND replica = ?",
                    [(next_one, now, system, replica) for system, next_one in to.items()],
                )
        except sqlite3.OperationalError as exc:
            raise StoreUnavailable(str(exc)) from exc

    async def lead(self, replica: str, now: float, until: float) -> str | None:
        rows = self._rows(_LEAD, {"replica": replica, "now": now, "until": until})
        if not rows:
            rows = self._rows("SELECT replica FROM leader")
        return str(rows[0][0]) if rows else None

    async def leave(self, replica: str) -> None:
        try:
            with self.db.atomic():
                self.db.execute("DELETE FROM leader WHERE replica = ?", (replica,))
                self.db.execute("DELETE FROM replicas WHERE name = ?", (replica,))
                self.db.execute(
                    "UPDATE check_owners SET replica = NULL WHERE replica = ?", (replica,)
                )
        except sqlite3.OperationalError as exc:
            raise StoreUnavailable(str(exc)) from exc

    async def replica_overview(self, alive_since: float) -> list[ReplicaRecord]:
        rows = self._rows(
            "SELECT r.name, r.started_at, r.seen_at, r.digest, r.host, r.pid, "
            "(SELECT COUNT(*) FROM check_owners o WHERE o.replica = r.name "
            "AND o.system NOT LIKE 'outbox:%'), "
            "(SELECT COUNT(*) FROM check_owners o WHERE o.replica = r.name "
            "AND o.system LIKE 'outbox:%'), "
            "EXISTS (SELECT 1 FROM leader l WHERE l.replica = r.name) "
            "FROM replicas r WHERE r.seen_at >= ? ORDER BY r.name",
            (alive_since,),
        )
        return [
            ReplicaRecord(n, s, seen, d, host, pid, int(c), bool(lead), int(shards))
            for n, s, seen, d, host, pid, c, shards, lead in rows
        ]
