"""``Maintenance`` on SQLite: the windows posted to the API, and the occurrences whose
customers are being or were told (``roles.Maintenance``; the same rules as PostgreSQL's,
``postgres/maintenance.py``). Each method is one statement, or one transaction."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence

from monitor.store.notices import NOTICE_COLUMNS, notice_record
from monitor.store.sqlite_rows import SQLiteRows
from monitor.store.types import PENDING, NoticeRecord, StoredWindow, StoreUnavailable

# Made unless there: an occurrence is recorded once, whoever records it first.
BEGIN_NOTICE = (
    "INSERT INTO maintenance_notices (ref, systems, starts_at, ends_at) "
    "VALUES (:ref, :systems, :starts_at, :ends_at) ON CONFLICT (ref) DO NOTHING"
)
MARK_NOTICE = (
    "UPDATE maintenance_notices SET announced_at = COALESCE(announced_at, :announced_at), "
    "over_at = COALESCE(over_at, :over_at), "
    "cancelled_at = COALESCE(cancelled_at, :cancelled_at) WHERE id = :id"
)
PRUNABLE_NOTICES = (
    "SELECT id FROM maintenance_notices WHERE over_at IS NOT NULL AND over_at < :before "
    "AND NOT EXISTS (SELECT 1 FROM outbox WHERE outbox.incident_id = -maintenance_notices.id "
    "AND outbox.status = :pending) ORDER BY over_at, id LIMIT :limit"
)


class SQLiteMaintenance(SQLiteRows):
    """Planned work in this file."""

    async def add_maintenance_window(self, spec: str, now: float) -> StoredWindow:
        [(id_,)] = self._rows(
            "INSERT INTO maintenance_windows (spec, created_at) VALUES (?, ?) RETURNING id",
            (spec, now),
        )
        return StoredWindow(int(id_), spec, now)

    async def maintenance_windows(self) -> list[StoredWindow]:
        rows = self.db.execute(
            "SELECT id, spec, created_at FROM maintenance_windows ORDER BY id"
        ).fetchall()
        return [StoredWindow(int(id_), str(spec), float(at)) for id_, spec, at in rows]

    async def remove_maintenance_window(self, window_id: int) -> bool:
        gone = self._rows("DELETE FROM maintenance_windows WHERE id = ? RETURNING id", (window_id,))
        return bool(gone)

    async def begin_maintenance_notice(
        self, ref: str, systems: Sequence[str], starts_at: float, ends_at: float
    ) -> NoticeRecord:
        params = {
            "ref": ref,
            "systems": json.dumps(list(systems)),
            "starts_at": starts_at,
            "ends_at": ends_at,
        }
        try:
            with self.db.atomic():
                self.db.execute(BEGIN_NOTICE, params)
                row = self.db.execute(
                    f"SELECT {NOTICE_COLUMNS} FROM maintenance_notices WHERE ref = ?", (ref,)
                ).fetchone()
        except sqlite3.OperationalError as exc:
            raise StoreUnavailable(str(exc)) from exc
        return notice_record(row)

    async def maintenance_notices(self) -> list[NoticeRecord]:
        rows = self.db.execute(
            f"SELECT {NOTICE_COLUMNS} FROM maintenance_notices WHERE over_at IS NULL ORDER BY id"
        ).fetchall()
        return [notice_record(row) for row in rows]

    async def mark_maintenance_notice(
        self,
        notice_id: int,
        *,
        announced_at: float | None = None,
        over_at: float | None = None,
        cancelled_at: float | None = None,
    ) -> None:
        self._rows(
            MARK_NOTICE,
            {
                "id": notice_id,
                "announced_at": announced_at,
                "over_at": over_at,
                "cancelled_at": cancelled_at,
            },
        )

    async def prunable_maintenance_notices(self, over_before: float, limit: int = 100) -> list[int]:
        rows = self.db.execute(
            PRUNABLE_NOTICES, {"before": over_before, "pending": PENDING, "limit": limit}
        ).fetchall()
        return [int(id_) for (id_,) in rows]

    async def prune_maintenance_notice(
        self, notice_id: int, over_before: float, batch: int = 2000
    ) -> int:
        over = (
            "EXISTS (SELECT 1 FROM maintenance_notices WHERE id = :id AND over_at IS NOT NULL "
            "AND over_at < :before)"
        )
        params: dict[str, object] = {
            "id": notice_id,
            "key": -notice_id,
            "before": over_before,
            "pending": PENDING,
            "n": batch,
        }
        conn = self.db.conn
        try:
            with self.db.atomic():
                deleted = conn.execute(
                    "DELETE FROM outbox WHERE rowid IN (SELECT rowid FROM outbox WHERE "
                    f"incident_id = :key AND status != :pending LIMIT :n) AND {over}",
                    params,
                ).rowcount
                if deleted:
                    return int(deleted)
                left = "SELECT 1 FROM outbox WHERE incident_id = :key LIMIT 1"
                if conn.execute(left, params).fetchone() is not None:
                    return 0  # a message is still pending: keep all of it
                deleted = conn.execute(
                    "DELETE FROM told WHERE incident_id = :key AND person_id IN (SELECT "
                    f"person_id FROM told WHERE incident_id = :key LIMIT :n) AND {over}",
                    params,
                ).rowcount
                if deleted:
                    return int(deleted)
                sql = f"DELETE FROM maintenance_notices WHERE id = :id AND {over}"
                return int(conn.execute(sql, params).rowcount)
        except sqlite3.OperationalError as exc:
            raise StoreUnavailable(str(exc)) from exc
