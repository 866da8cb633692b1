"""``Subscriptions`` on SQLite: who cancelled, a confirmed subscription, and the subscribe
requests counted against their limits (``roles.Subscriptions``; the same rules as PostgreSQL's,
``postgres/subscriptions.py``). Each method is one transaction."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence

import sqlite_utils

from monitor.model import Person
from monitor.store.records import PEOPLE_COLUMNS, person_row
from monitor.store.records import person as person_of
from monitor.store.types import PENDING, WITHDRAWN, StoreUnavailable

# Every person of the address joins the one who cancelled: the address asked to hear nothing.
_MARK_ADDRESS = (
    "INSERT INTO unsubscribed (person_id, email, at) SELECT id, lower(email), :at FROM people "
    "WHERE email IS NOT NULL AND lower(email) = :email "
    "ON CONFLICT (person_id) DO UPDATE SET email = excluded.email"
)
_DROP_SUBSCRIPTIONS = (
    "DELETE FROM subscriptions WHERE person_id IN (SELECT person_id FROM unsubscribed "
    "WHERE person_id = :id OR email = :email)"
)
# What was decided for them and not yet sent is not sent: they asked for nothing further.
_WITHDRAW = (
    "UPDATE outbox SET status = :undeliverable, last_error = :why WHERE status = :pending AND "
    "person_id IN (SELECT person_id FROM unsubscribed WHERE person_id = :id OR email = :email)"
)
_CLEAR_SYSTEMS = (
    "UPDATE people SET systems = '[]' WHERE id IN (SELECT person_id FROM unsubscribed "
    "WHERE person_id = :id OR email = :email)"
)


def keep_unsubscribed(conn: sqlite3.Connection, people: Sequence[Person]) -> None:
    """Inside an import's transaction, after its rows are written: the people of ``people``
    who cancelled, by id or by address, keep no subscriptions (their name and contacts are
    updated); one of them new under an address that cancelled is kept as cancelled too."""
    if not people:
        return
    ids = json.dumps([p.id for p in people])
    batch = "(SELECT value FROM json_each(?))"
    conn.execute(
        "INSERT INTO unsubscribed (person_id, email, at) SELECT p.id, u.email, u.at "
        f"FROM people p JOIN unsubscribed u ON u.email = lower(p.email) WHERE p.id IN {batch} "
        "ON CONFLICT (person_id) DO NOTHING",
        (ids,),
    )
    gone = f"IN {batch} AND {{}} IN (SELECT person_id FROM unsubscribed)"
    conn.execute(f"DELETE FROM subscriptions WHERE person_id {gone.format('person_id')}", (ids,))
    conn.execute(f"UPDATE people SET systems = '[]' WHERE id {gone.format('id')}", (ids,))


class SQLiteSubscriptions:
    """Self-service subscriptions in this file."""

    db: sqlite_utils.Database

    async def unsubscribe(self, person_id: str, email: str | None, now: float) -> None:
        params = {"id": person_id, "email": (email or "").lower() or None, "at": now}
        try:
            with self.db.atomic():
                conn = self.db.conn
                conn.execute(
                    "INSERT INTO unsubscribed (person_id, email, at) VALUES (:id, :email, :at) "
                    "ON CONFLICT (person_id) DO UPDATE SET email = "
                    "COALESCE(excluded.email, unsubscribed.email)",
                    params,
                )
                if params["email"]:
                    conn.execute(_MARK_ADDRESS, params)
                conn.execute(_DROP_SUBSCRIPTIONS, params)
                conn.execute(_CLEAR_SYSTEMS, params)
                conn.execute(_WITHDRAW, {**params, **WITHDRAWN})
        except sqlite3.OperationalError as exc:
            raise StoreUnavailable(str(exc)) from exc

    async def unsubscribed_attempters(
        self, systems: Iterable[str], attempts_from: float, until: float
    ) -> int:
        row = self.db.conn.execute(
            "SELECT COUNT(DISTINCT person_id) FROM attempts WHERE system IN "
            "(SELECT value FROM json_each(:names)) AND at >= :start AND at <= :end "
            "AND person_id IN (SELECT person_id FROM unsubscribed)",
            {"names": json.dumps(sorted(set(systems))), "start": attempts_from, "end": until},
        ).fetchone()
        return int(row[0])

    async def unsubscribed_among(self, person_ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        ids = list(dict.fromkeys(person_ids))
        for start in range(0, len(ids), 500):
            part = ids[start : start + 500]
            marks = ", ".join("?" * len(part))
            found.update(
                row[0]
                for row in self.db.conn.execute(
                    f"SELECT person_id FROM unsubscribed WHERE person_id IN ({marks})", part
                )
            )
        return found

    async def people_with_email(self, email: str) -> list[Person]:
        rows = self.db.conn.execute(
            f"SELECT {PEOPLE_COLUMNS} FROM people WHERE lower(email) = ? ORDER BY id",
            (email.lower(),),
        ).fetchall()
        return [person_of(row) for row in rows]

    async def subscribe(self, person: Person) -> None:
        email = (person.email or "").lower()
        try:
            with self.db.atomic():
                conn = self.db.conn
                conn.execute(
                    "DELETE FROM unsubscribed WHERE person_id = ? OR (? != '' AND email = ?)",
                    (person.id, email, email),
                )
                conn.execute(
                    f"INSERT OR REPLACE INTO people ({PEOPLE_COLUMNS}) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    person_row(person),
                )
                conn.execute("DELETE FROM subscriptions WHERE person_id = ?", (person.id,))
                conn.executemany(
                    "INSERT OR IGNORE INTO subscriptions VALUES (?, ?)",
                    [(system, person.id) for system in person.systems],
                )
        except sqlite3.OperationalError as exc:
            raise StoreUnavailable(str(exc)) from exc

    async def claim_request(
        self, keys: Sequence[str], now: float, limits: Sequence[tuple[float, int]]
    ) -> bool:
        oldest = now - max((window for window, _ in limits), default=0.0)
        try:
            # One writer at a time on a file: the count and the claim cannot interleave.
            with self.db.atomic():
                conn = self.db.conn
                conn.execute("DELETE FROM subscription_claims WHERE at <= ?", (oldest,))
                for key, (window, limit) in zip(keys, limits, strict=True):
                    (count,) = conn.execute(
                        "SELECT count(*) FROM subscription_claims WHERE key = ? AND at > ?",
                        (key, now - window),
                    ).fetchone()
                    if count >= limit:
                        return False
                conn.executemany(
                    "INSERT INTO subscription_claims (key, at) VALUES (?, ?)",
                    [(key, now) for key in keys],
                )
        except sqlite3.OperationalError as exc:
            raise StoreUnavailable(str(exc)) from exc
        return True

    async def prune_subscription_mails(self, before: float, batch: int = 2000) -> int:
        try:
            with self.db.atomic():
                return self.db.conn.execute(
                    "DELETE FROM outbox WHERE key IN (SELECT key FROM outbox WHERE "
                    "incident_id = 0 AND status != ? AND created_at < ? LIMIT ?)",
                    (PENDING, before, batch),
                ).rowcount
        except sqlite3.OperationalError as exc:
            raise StoreUnavailable(str(exc)) from exc
