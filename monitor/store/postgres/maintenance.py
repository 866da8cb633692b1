"""``Maintenance`` on PostgreSQL: the windows posted to the API, and the occurrences whose
customers are being or were told (``roles.Maintenance``; the same rules as SQLite's,
``sqlite_maintenance.py``). Ids come from identity columns, never handed out again."""

from __future__ import annotations

import json
from collections.abc import Sequence

from monitor.store.notices import NOTICE_COLUMNS, notice_record
from monitor.store.postgres.connection import Database, first_that_deletes
from monitor.store.types import PENDING, NoticeRecord, StoredWindow

# The record made unless there, and read either way, in one statement. A row another
# transaction committed while this one waited on it (ON CONFLICT waits for the other's outcome)
# is not in this statement's snapshot: then nothing comes back, and it is read again.
_BEGIN_NOTICE = (
    "WITH made AS (INSERT INTO maintenance_notices (ref, systems, starts_at, ends_at) "
    "VALUES (%(ref)s, %(systems)s, %(starts_at)s, %(ends_at)s) ON CONFLICT (ref) DO NOTHING "
    f"RETURNING {NOTICE_COLUMNS}) SELECT {NOTICE_COLUMNS} FROM made UNION ALL "
    f"SELECT {NOTICE_COLUMNS} FROM maintenance_notices WHERE ref = %(ref)s"
)
_MARK_NOTICE = (
    "UPDATE maintenance_notices SET announced_at = COALESCE(announced_at, %(announced_at)s), "
    "over_at = COALESCE(over_at, %(over_at)s), "
    "cancelled_at = COALESCE(cancelled_at, %(cancelled_at)s) WHERE id = %(id)s"
)
_OVER = (
    "EXISTS (SELECT 1 FROM maintenance_notices WHERE id = %(id)s AND over_at IS NOT NULL "
    "AND over_at < %(before)s)"
)


class Maintenance:
    """Planned work in the shared database."""

    db: Database

    async def add_maintenance_window(self, spec: str, now: float) -> StoredWindow:
        row = await self.db.row(
            "INSERT INTO maintenance_windows (spec, created_at) VALUES (%s, %s) RETURNING id",
            (spec, now),
        )
        assert row is not None
        return StoredWindow(int(row[0]), spec, now)

    async def maintenance_windows(self) -> list[StoredWindow]:
        rows = await self.db.rows(
            "SELECT id, spec, created_at FROM maintenance_windows ORDER BY id"
        )
        return [StoredWindow(int(id_), str(spec), float(at)) for id_, spec, at in rows]

    async def remove_maintenance_window(self, window_id: int) -> bool:
        return bool(
            await self.db.run("DELETE FROM maintenance_windows WHERE id = %s", (window_id,))
        )

    async def begin_maintenance_notice(
        self, ref: str, systems: Sequence[str], starts_at: float, ends_at: float
    ) -> NoticeRecord:
        rows = await self.db.rows(
            _BEGIN_NOTICE,
            {
                "ref": ref,
                "systems": json.dumps(list(systems)),
                "starts_at": starts_at,
                "ends_at": ends_at,
            },
        )
        if not rows:
            rows = await self.db.rows(
                f"SELECT {NOTICE_COLUMNS} FROM maintenance_notices WHERE ref = %s", (ref,)
            )
        return notice_record(rows[0])

    async def maintenance_notices(self) -> list[NoticeRecord]:
        rows = await self.db.rows(
            f"SELECT {NOTICE_COLUMNS} FROM maintenance_notices WHERE over_at IS NULL ORDER BY id"
        )
        return [notice_record(row) for row in rows]

    async def mark_maintenance_notice(
        self,
        notice_id: int,
        *,
        announced_at: float | None = None,
        over_at: float | None = None,
        cancelled_at: float | None = None,
    ) -> None:
        await self.db.run(
            _MARK_NOTICE,
            {
                "id": notice_id,
                "announced_at": announced_at,
                "over_at": over_at,
                "cancelled_at": cancelled_at,
            },
        )

    async def prunable_maintenance_notices(self, over_before: float, limit: int = 100) -> list[int]:
        rows = await self.db.rows(
            "SELECT id FROM maintenance_notices WHERE over_at IS NOT NULL "
            "AND over_at < %(before)s AND NOT EXISTS (SELECT 1 FROM outbox WHERE "
            "outbox.incident_id = -maintenance_notices.id AND outbox.status = %(pending)s) "
            "ORDER BY over_at, id LIMIT %(limit)s",
            {"before": over_before, "pending": PENDING, "limit": limit},
        )
        return [int(id_) for (id_,) in rows]

    async def prune_maintenance_notice(
        self, notice_id: int, over_before: float, batch: int = 2000
    ) -> int:
        params = {
            "id": notice_id,
            "key": -notice_id,
            "before": over_before,
            "pending": PENDING,
            "n": batch,
        }
        async with self.db.transaction() as conn:
            return await first_that_deletes(
                conn,
                (
                    "DELETE FROM outbox WHERE key IN (SELECT key FROM outbox WHERE "
                    f"incident_id = %(key)s AND status != %(pending)s LIMIT %(n)s) AND {_OVER}",
                    # A message still pending: keep all of it.
                    "SELECT 1 FROM outbox WHERE incident_id = %(key)s LIMIT 1",
                    "DELETE FROM told WHERE incident_id = %(key)s AND person_id IN (SELECT "
                    f"person_id FROM told WHERE incident_id = %(key)s LIMIT %(n)s) AND {_OVER}",
                    f"DELETE FROM maintenance_notices WHERE id = %(id)s AND {_OVER}",
                ),
                params,
            )
