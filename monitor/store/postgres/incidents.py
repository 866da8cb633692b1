"""``IncidentLog`` on PostgreSQL: incidents, their ids (the sequence ``incident_ids``), their
timeline, their explanations and promises (``store.explaining``'s SQL), and the pruning of
resolved ones."""

from __future__ import annotations

import functools
from collections.abc import Sequence

from monitor.incidents.correlation import Incident
from monitor.model import Explanation
from monitor.store.explaining import (
    EXPLAIN,
    EXPLANATION_COLUMNS,
    KEEP_PROMISE,
    PROMISE_OPEN,
    SETTLE_FOR_RESOLUTION,
    START_EXPLAINING,
    TAKE_REMINDER,
    postgres_params,
)
from monitor.store.postgres.connection import Database, first_that_deletes
from monitor.store.postgres.rows import (
    INCIDENT_COLUMNS,
    INCIDENT_TYPES,
    columns,
    incident,
    incident_row,
)
from monitor.store.roles import PUBLIC_TIMELINE
from monitor.store.types import (
    PENDING,
    AffectedCount,
    Alert,
    AlreadyApplied,
    ExplanationFinal,
    TimelineEntry,
)

_UPSERT_INCIDENTS = (
    f"INSERT INTO incidents ({INCIDENT_COLUMNS}) SELECT * FROM unnest("
    + ", ".join(f"%b::{kind}" for kind in INCIDENT_TYPES.split(", "))
    + ") ON CONFLICT (id) DO UPDATE SET "
    + ", ".join(
        f"{name} = excluded.{name}" for name in INCIDENT_COLUMNS.split(", ") if name != "id"
    )
)
_ADD_TIMELINE = (
    "INSERT INTO timeline (incident_id, at, kind, text) "
    "SELECT * FROM unnest(%b::bigint[], %b::float8[], %b::text[], %b::text[])"
)
_MARK_APPLIED = "UPDATE transitions SET applied = true WHERE id = ANY(%b::bigint[]) AND NOT applied"
_RESOLVED = (
    "EXISTS (SELECT 1 FROM incidents WHERE id = %(id)s AND resolved_at IS NOT NULL "
    "AND resolved_at < %(before)s)"
)
_PRIVATE_KEPT = (
    "EXISTS (SELECT 1 FROM incidents WHERE id = %(id)s AND resolved_at IS NOT NULL "
    "AND resolved_at < %(before)s AND NOT private_pruned)"
)


class Incidents:
    """The incidents: their ids, their state as the notifier leaves it, their timeline."""

    db: Database

    async def new_incident_id(self) -> int:
        """The sequence's next value: atomic, never handed out twice (a sequence never goes
        back, not even for a transaction that rolled back), so an id pruned is never reused."""
        row = await self.db.row("SELECT nextval('incident_ids')")
        assert row is not None
        return int(row[0])

    async def save_incident(self, incident: Incident) -> None:
        await self.save_incidents([incident], [])

    async def save_incidents(
        self,
        incidents: Sequence[Incident],
        timeline: Sequence[tuple[int, TimelineEntry]],
        applied: Sequence[int] = (),
    ) -> None:
        parts: list[str] = []
        params: list[list[object]] = []
        if incidents:
            # One row an incident, its last state: the upsert may not touch a row twice.
            last = {i.id: i for i in incidents}
            parts.append(_UPSERT_INCIDENTS)
            params += columns((incident_row(i) for i in last.values()), 12)
        if timeline:
            parts.append(_ADD_TIMELINE)
            params += columns(((id_, e.at, e.kind, e.text) for id_, e in timeline), 4)
        if not applied:
            if parts:
                await self.db.run(_one_statement(tuple(parts)), params)
            return
        # Marked first, in the same transaction: if another process applied any of them
        # meanwhile, its incidents stand and nothing of these is written.
        ids = sorted(set(applied))
        async with self.db.transaction() as conn:
            marked = await conn.execute(_MARK_APPLIED, (ids,))
            if marked.rowcount != len(ids):
                raise AlreadyApplied(
                    f"{len(ids) - marked.rowcount} of {len(ids)} transitions were applied by "
                    "another process"
                )
            if parts:
                await conn.execute(_one_statement(tuple(parts)), params)

    async def incident(self, incident_id: int) -> Incident | None:
        row = await self.db.row(
            f"SELECT {INCIDENT_COLUMNS} FROM incidents WHERE id = %s", (incident_id,)
        )
        return incident(row) if row is not None else None

    async def incidents(
        self,
        open_only: bool = False,
        resolved_since: float | None = None,
        opened_before: float | None = None,
    ) -> list[Incident]:
        if open_only:
            sql, params = "WHERE (resolved_at IS NULL)", []
        elif resolved_since is not None:
            sql, params = "WHERE (resolved_at IS NULL OR resolved_at >= %s)", [resolved_since]
        else:
            sql, params = "WHERE true", []
        if opened_before is not None:
            sql, params = f"{sql} AND opened_at < %s", [*params, opened_before]
        rows = await self.db.rows(
            f"SELECT {INCIDENT_COLUMNS} FROM incidents {sql} ORDER BY id", params
        )
        return [incident(row) for row in rows]

    async def latest_incidents(
        self, limit: int, status: str | None = None, before: int | None = None
    ) -> list[Incident]:
        where = [
            {
                None: "true",
                "open": "resolved_at IS NULL",
                "resolved": "resolved_at IS NOT NULL",
            }[status]
        ]
        if before is not None:
            where.append("id < %(before)s")
        rows = await self.db.rows(
            f"SELECT {INCIDENT_COLUMNS} FROM incidents WHERE {' AND '.join(where)} "
            "ORDER BY id DESC LIMIT %(limit)s",
            {"before": before, "limit": limit},
        )
        return [incident(row) for row in rows]

    async def open_incident_count(self) -> int:
        row = await self.db.row("SELECT COUNT(*) FROM incidents WHERE resolved_at IS NULL")
        return int(row[0]) if row is not None else 0

    async def add_timeline(self, incident_id: int, at: float, kind: str, text: str) -> None:
        await self.db.run(
            "INSERT INTO timeline (incident_id, at, kind, text) VALUES (%s, %s, %s, %s)",
            (incident_id, at, kind, text),
        )

    async def timeline(self, incident_id: int) -> list[TimelineEntry]:
        rows = await self.db.rows(
            "SELECT at, kind, text FROM timeline WHERE incident_id = %s ORDER BY id",
            (incident_id,),
        )
        return [TimelineEntry(*row) for row in rows]

    async def public_timeline(self, incident_id: int) -> list[TimelineEntry]:
        rows = await self.db.rows(
            "SELECT at, kind, text FROM timeline WHERE incident_id = %s "
            "AND kind = ANY(%s::text[]) ORDER BY id",
            (incident_id, list(PUBLIC_TIMELINE)),
        )
        return [TimelineEntry(*row) for row in rows]

    async def private_prunable_incidents(
        self, resolved_before: float, limit: int = 100
    ) -> list[int]:
        return await self._prunable(resolved_before, limit, private_kept=True)

    async def prune_private(
        self, incident_id: int, resolved_before: float, batch: int = 2000
    ) -> int:
        """Delete up to ``batch`` rows of the private part of one incident resolved before
        ``resolved_before`` (settled messages first), then mark it pruned; how many rows went
        or were marked, 0 once it is, or while a message is pending."""
        params = {
            "id": incident_id,
            "before": resolved_before,
            "pending": PENDING,
            "n": batch,
            "public": list(PUBLIC_TIMELINE),
        }
        kept = _PRIVATE_KEPT
        async with self.db.transaction() as conn:
            return await first_that_deletes(
                conn,
                (
                    "DELETE FROM outbox WHERE key IN (SELECT key FROM outbox WHERE "
                    f"incident_id = %(id)s AND status != %(pending)s LIMIT %(n)s) AND {kept}",
                    # A message still pending: keep all of the incident.
                    "SELECT 1 FROM outbox WHERE incident_id = %(id)s LIMIT 1",
                    "DELETE FROM told WHERE incident_id = %(id)s AND person_id IN (SELECT "
                    f"person_id FROM told WHERE incident_id = %(id)s LIMIT %(n)s) AND {kept}",
                    "DELETE FROM timeline WHERE id IN (SELECT id FROM timeline WHERE incident_id "
                    f"= %(id)s AND kind <> ALL(%(public)s::text[]) LIMIT %(n)s) AND {kept}",
                    f"DELETE FROM explanations WHERE incident_id = %(id)s AND text = '' AND {kept}",
                    f"DELETE FROM alerts WHERE incident_id = %(id)s AND {kept}",
                    "DELETE FROM goodwill WHERE incident_id = %(id)s AND person_id IN (SELECT "
                    f"person_id FROM goodwill WHERE incident_id = %(id)s LIMIT %(n)s) AND {kept}",
                    "UPDATE incidents SET private_pruned = true WHERE id = %(id)s AND resolved_at "
                    "IS NOT NULL AND resolved_at < %(before)s AND NOT private_pruned",
                ),
                params,
            )

    async def prunable_incidents(self, resolved_before: float, limit: int = 100) -> list[int]:
        return await self._prunable(resolved_before, limit, private_kept=False)

    async def _prunable(self, resolved_before: float, limit: int, private_kept: bool) -> list[int]:
        """Incidents resolved and told before ``resolved_before`` with no message pending;
        with ``private_kept``, only those whose private part is still kept."""
        kept = "AND NOT private_pruned " if private_kept else ""
        rows = await self.db.rows(
            f"SELECT id FROM incidents WHERE resolved_at IS NOT NULL {kept}"
            "AND resolved_at < %(before)s "
            "AND (resolution_told_at IS NULL OR resolution_told_at < %(before)s) "
            "AND NOT EXISTS (SELECT 1 FROM outbox WHERE outbox.incident_id = incidents.id "
            "AND outbox.status = %(pending)s) ORDER BY resolved_at, id LIMIT %(limit)s",
            {"before": resolved_before, "pending": PENDING, "limit": limit},
        )
        return [int(id_) for (id_,) in rows]

    async def prune_incident(
        self, incident_id: int, resolved_before: float, batch: int = 2000
    ) -> int:
        """Delete up to ``batch`` rows of one incident resolved before ``resolved_before``: its
        settled messages first, then what each person was told, its timeline, and last the
        incident itself (an interrupted prune carries on at the next pass); 0 once it is
        gone, or while it is open, resolved since, or has a message pending."""
        params = {"id": incident_id, "before": resolved_before, "pending": PENDING, "n": batch}
        async with self.db.transaction() as conn:
            return await first_that_deletes(
                conn,
                (
                    "DELETE FROM outbox WHERE key IN (SELECT key FROM outbox WHERE "
                    f"incident_id = %(id)s AND status != %(pending)s LIMIT %(n)s) AND {_RESOLVED}",
                    # A message still pending: keep all of the incident.
                    "SELECT 1 FROM outbox WHERE incident_id = %(id)s LIMIT 1",
                    "DELETE FROM told WHERE incident_id = %(id)s AND person_id IN (SELECT "
                    f"person_id FROM told WHERE incident_id = %(id)s LIMIT %(n)s) AND {_RESOLVED}",
                    "DELETE FROM timeline WHERE id IN (SELECT id FROM timeline "
                    f"WHERE incident_id = %(id)s LIMIT %(n)s) AND {_RESOLVED}",
                    f"DELETE FROM explanations WHERE incident_id = %(id)s AND {_RESOLVED}",
                    f"DELETE FROM alerts WHERE incident_id = %(id)s AND {_RESOLVED}",
                    "DELETE FROM goodwill WHERE incident_id = %(id)s AND person_id IN (SELECT "
                    f"person_id FROM goodwill WHERE incident_id = %(id)s LIMIT %(n)s) "
                    f"AND {_RESOLVED}",
                    f"DELETE FROM incidents WHERE id = %(id)s AND {_RESOLVED}",
                ),
                params,
            )

    async def record_alert(self, incident_id: int, at: float, routes: Sequence[str]) -> None:
        await self.db.run(
            "INSERT INTO alerts VALUES (%s, %s, %s) ON CONFLICT (incident_id) DO NOTHING",
            (incident_id, at, ",".join(routes)),
        )

    async def alert(self, incident_id: int) -> Alert | None:
        row = await self.db.row(
            "SELECT alerted_at, routes FROM alerts WHERE incident_id = %s", (incident_id,)
        )
        return None if row is None else Alert(row[0], tuple(filter(None, row[1].split(","))))

    async def record_audience(self, incident_id: int, audience: AffectedCount) -> None:
        await self.db.run(
            "UPDATE incidents SET affected = %s, affected_unsubscribed = %s WHERE id = %s",
            (audience.people, audience.unsubscribed, incident_id),
        )

    async def audience(self, incident_id: int) -> AffectedCount | None:
        row = await self.db.row(
            "SELECT affected, affected_unsubscribed FROM incidents WHERE id = %s", (incident_id,)
        )
        return None if row is None or row[0] is None else AffectedCount(row[0], row[1] or 0)

    async def explanation(self, incident_id: int) -> Explanation | None:
        row = await self.db.row(
            f"SELECT {EXPLANATION_COLUMNS} FROM explanations WHERE incident_id = %s",
            (incident_id,),
        )
        return Explanation(*row) if row is not None else None

    async def explain(self, incident_id: int, text: str, now: float) -> Explanation:
        row = await self.db.row(_EXPLAIN, {"id": incident_id, "text": text, "now": now})
        if row is None:
            final = await self.explanation(incident_id)
            raise ExplanationFinal(incident_id, final.told_at if final and final.told_at else now)
        return Explanation(*row)

    async def settle_for_resolution(self, incident_id: int, now: float) -> Explanation:
        row = await self.db.row(_SETTLE, {"id": incident_id, "now": now})
        assert row is not None
        return Explanation(*row)

    async def start_explaining(self, incident_id: int, now: float) -> Explanation:
        row = await self.db.row(_START_EXPLAINING, {"id": incident_id, "now": now})
        return Explanation(*row) if row is not None else Explanation(incident_id)

    async def keep_promise(self, incident_id: int, now: float) -> None:
        await self.db.run(_KEEP_PROMISE, {"id": incident_id, "now": now})

    async def open_promises(self) -> list[Explanation]:
        rows = await self.db.rows(
            f"SELECT {EXPLANATION_COLUMNS} FROM explanations WHERE {PROMISE_OPEN} "
            "ORDER BY incident_id"
        )
        return [Explanation(*row) for row in rows]

    async def take_reminder(self, incident_id: int, now: float, last_before: float) -> bool:
        taken = await self.db.run(
            _TAKE_REMINDER, {"id": incident_id, "now": now, "last": last_before}
        )
        return taken == 1


_EXPLAIN = postgres_params(EXPLAIN)
_SETTLE = postgres_params(SETTLE_FOR_RESOLUTION)
_START_EXPLAINING = postgres_params(START_EXPLAINING)
_KEEP_PROMISE = postgres_params(KEEP_PROMISE)
_TAKE_REMINDER = postgres_params(TAKE_REMINDER)


@functools.cache
def _one_statement(parts: tuple[str, ...]) -> str:
    """``parts`` as one statement (all but the last as data-modifying WITH queries, which run
    whether read or not), so they commit together without BEGIN/COMMIT; the same few texts,
    each prepared once per connection."""
    *first, last = parts
    if not first:
        return last
    return "WITH " + ", ".join(f"part{n} AS ({sql})" for n, sql in enumerate(first)) + f" {last}"
