"""``Replicas`` on PostgreSQL: the heartbeats, who holds each check, and the lead, each one
statement (atomic without a transaction). Two replicas taking the same check at once meet in
the primary key's ON CONFLICT: the second sees the first's row and, it being alive, leaves it.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence

from monitor.store.postgres.connection import Database
from monitor.store.types import ReplicaRecord

_LIVE = "SELECT name FROM replicas WHERE seen_at >= %(alive_since)s"
_TAKE = (
    "INSERT INTO check_owners (system, replica, since) "
    "SELECT system, %(replica)s, %(now)s FROM unnest(%(systems)s::text[]) AS system "
    "ON CONFLICT (system) DO UPDATE SET replica = excluded.replica, "
    "since = CASE WHEN check_owners.replica = excluded.replica THEN check_owners.since "
    "ELSE excluded.since END "
    "WHERE check_owners.replica IS NULL OR check_owners.replica = excluded.replica "
    f"OR check_owners.replica NOT IN ({_LIVE}) RETURNING system"
)
_LEAD = (
    "INSERT INTO leader (only_row, replica, since, until) VALUES (1, %(replica)s, %(now)s, "
    "%(until)s) ON CONFLICT (only_row) DO UPDATE SET replica = excluded.replica, "
    "until = excluded.until, since = CASE WHEN leader.replica = excluded.replica "
    "THEN leader.since ELSE excluded.since END "
    "WHERE leader.replica = excluded.replica OR leader.until < %(now)s RETURNING replica"
)


class Replicas:
    """The replicas sharing this database, the checks each holds, and the leader."""

    db: Database

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
        # The list is rewritten only when its digest changes: 10,000 names are ~150 kB.
        changed = await self.db.run(
            "UPDATE replicas SET seen_at = %s, started_at = %s, host = %s, pid = %s "
            "WHERE name = %s AND digest = %s",
            (now, started_at, host, pid, replica, digest),
        )
        if not changed:
            await self.db.run(
                "INSERT INTO replicas (name, started_at, seen_at, digest, systems, host, pid) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (name) DO UPDATE SET "
                "started_at = excluded.started_at, seen_at = excluded.seen_at, "
                "digest = excluded.digest, systems = excluded.systems, host = excluded.host, "
                "pid = excluded.pid",
                (replica, started_at, now, digest, json.dumps(list(systems)), host, pid),
            )

    async def live_replicas(self, alive_since: float) -> list[ReplicaRecord]:
        rows = await self.db.rows(
            "SELECT name, started_at, seen_at, digest, host, pid FROM replicas "
            "WHERE seen_at >= %s ORDER BY name",
            (alive_since,),
        )
        return [ReplicaRecord(*row) for row in rows]

    async def declared_checks(self, replica: str) -> list[str]:
        row = await self.db.row("SELECT systems FROM replicas WHERE name = %s", (replica,))
        return list(json.loads(row[0])) if row is not None else []

    async def held_checks(self, replica: str) -> set[str]:
        rows = await self.db.rows("SELECT system FROM check_owners WHERE replica = %s", (replica,))
        return {system for (system,) in rows}

    async def take_checks(
        self, replica: str, systems: Collection[str], now: float, alive_since: float
    ) -> set[str]:
        if not systems:
            return set()
        rows = await self.db.rows(
            _TAKE,
            {
                "replica": replica,
                "now": now,
                "systems": sorted(systems),
                "alive_since": alive_since,
            },
        )
        return {system for (system,) in rows}

    async def hand_over_checks(
        self, replica: str, to: Mapping[str, str | None], now: float
    ) -> None:
        if not to:
            return
        systems = sorted(to)
        await self.db.run(
            "UPDATE check_owners AS o SET replica = v.next, since = %s "
            "FROM unnest(%s::text[], %s::text[]) AS v(system, next) "
            "WHERE o.system = v.system AND o.replica = %s",
            (now, systems, [to[s] for s in systems], replica),
        )

    async def lead(self, replica: str, now: float, until: float) -> str | None:
        row = await self.db.row(_LEAD, {"replica": replica, "now": now, "until": until})
        if row is not None:
            return str(row[0])
        row = await self.db.row("SELECT replica FROM leader")
        return str(row[0]) if row is not None else None

    async def leave(self, replica: str) -> None:
        await self.db.run(
            "WITH lead AS (DELETE FROM leader WHERE replica = %(r)s), "
            "gone AS (DELETE FROM replicas WHERE name = %(r)s) "
            "UPDATE check_owners SET replica = NULL WHERE replica = %(r)s",
            {"r": replica},
        )

    async def replica_overview(self, alive_since: float) -> list[ReplicaRecord]:
        rows = await self.db.rows(
            "SELECT r.name, r.started_at, r.seen_at, r.digest, r.host, r.pid, "
            "(SELECT COUNT(*) FROM check_owners o WHERE o.replica = r.name "
            "AND o.system NOT LIKE 'outbox:%%'), "
            "(SELECT COUNT(*) FROM check_owners o WHERE o.replica = r.name "
            "AND o.system LIKE 'outbox:%%'), "
            "EXISTS (SELECT 1 FROM leader l WHERE l.replica = r.name) "
            "FROM replicas r WHERE r.seen_at >= %s ORDER BY r.name",
            (alive_since,),
        )
        return [
            ReplicaRecord(n, s, seen, d, host, pid, int(c), bool(lead), int(shards))
            for n, s, seen, d, host, pid, c, shards, lead in rows
        ]
