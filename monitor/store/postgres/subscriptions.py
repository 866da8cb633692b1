"""``Subscriptions`` on PostgreSQL: who cancelled, a confirmed subscription, and the subscribe
requests counted against their limits shared by every replica (``roles.Subscriptions``; the
same rules as SQLite's, ``sqlite_subscriptions.py``)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from monitor.model import Person
from monitor.store.postgres.connection import Connection, Database
from monitor.store.records import PEOPLE_COLUMNS, person, person_row
from monitor.store.types import PENDING, WITHDRAWN

_GONE = "SELECT person_id FROM unsubscribed WHERE person_id = %(id)s OR email = %(email)s"
_UNSUBSCRIBE = (
    "INSERT INTO unsubscribed (person_id, email, at) VALUES (%(id)s, %(email)s, %(at)s) "
    "ON CONFLICT (person_id) DO UPDATE SET email = COALESCE(excluded.email, unsubscribed.email)"
)
# Every person of the address joins the one who cancelled: the address asked to hear nothing.
_MARK_ADDRESS = (
    "INSERT INTO unsubscribed (person_id, email, at) SELECT id, lower(email), %(at)s "
    "FROM people WHERE %(email)s::text IS NOT NULL AND lower(email) = %(email)s "
    "ON CONFLICT (person_id) DO UPDATE SET email = excluded.email"
)
_UPSERT_PERSON = (
    f"INSERT INTO people ({PEOPLE_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "
    "ON CONFLICT (id) DO UPDATE SET name = excluded.name, email = excluded.email, "
    "phone = excluded.phone, webhook = excluded.webhook, systems = excluded.systems, "
    "timezone = excluded.timezone, language = excluded.language"
)


async def keep_unsubscribed(conn: Connection, ids: list[str]) -> None:
    """Inside an import's transaction, after its rows are written: the people of ``ids`` who
    cancelled, by id or by address, keep no subscriptions (their name and contacts are
    updated); one of them new under an address that cancelled is kept as cancelled too."""
    await conn.execute(
        "INSERT INTO unsubscribed (person_id, email, at) SELECT p.id, u.email, min(u.at) "
        "FROM people p JOIN unsubscribed u ON u.email = lower(p.email) "
        "WHERE p.id = ANY(%b::text[]) GROUP BY p.id, u.email ON CONFLICT (person_id) DO NOTHING",
        (ids,),
    )
    gone = "= ANY(%(ids)b::text[]) AND {0} IN (SELECT person_id FROM unsubscribed)"
    params = {"ids": ids}
    await conn.execute(
        f"DELETE FROM subscriptions WHERE person_id {gone.format('person_id')}", params
    )
    await conn.execute(f"UPDATE people SET systems = '[]' WHERE id {gone.format('id')}", params)


class Subscriptions:
    """Self-service subscriptions in the shared database."""

    db: Database

    async def unsubscribe(self, person_id: str, email: str | None, now: float) -> None:
        params = {"id": person_id, "email": (email or "").lower() or None, "at": now}
        async with self.db.transaction() as conn:
            await conn.execute(_UNSUBSCRIBE, params)
            await conn.execute(_MARK_ADDRESS, params)
            await conn.execute(f"DELETE FROM subscriptions WHERE person_id IN ({_GONE})", params)
            await conn.execute(f"UPDATE people SET systems = '[]' WHERE id IN ({_GONE})", params)
            # What was decided for them and not yet sent is not sent: they asked for nothing
            # further.
            await conn.execute(
                "UPDATE outbox SET status = %(undeliverable)s, last_error = %(why)s "
                f"WHERE status = %(pending)s AND person_id IN ({_GONE})",
                {**params, **WITHDRAWN},
            )

    async def unsubscribed_attempters(
        self, systems: Iterable[str], attempts_from: float, until: float
    ) -> int:
        row = await self.db.row(
            "SELECT COUNT(DISTINCT person_id) FROM attempts WHERE system = ANY(%(names)b::text[]) "
            "AND at >= %(start)s AND at <= %(end)s "
            "AND person_id IN (SELECT person_id FROM unsubscribed)",
            {"names": sorted(set(systems)), "start": attempts_from, "end": until},
        )
        return int(row[0]) if row is not None else 0

    async def unsubscribed_among(self, person_ids: Sequence[str]) -> set[str]:
        if not person_ids:
            return set()
        rows = await self.db.rows(
            "SELECT person_id FROM unsubscribed WHERE person_id = ANY(%b::text[])",
            (list(person_ids),),
        )
        return {str(person_id) for (person_id,) in rows}

    async def people_with_email(self, email: str) -> list[Person]:
        rows = await self.db.rows(
            f"SELECT {PEOPLE_COLUMNS} FROM people WHERE lower(email) = %s ORDER BY id",
            (email.lower(),),
        )
        return [person(row) for row in rows]

    async def subscribe(self, subscriber: Person) -> None:
        email = (subscriber.email or "").lower()
        async with self.db.transaction() as conn:
            await conn.execute(
                "DELETE FROM unsubscribed WHERE person_id = %s OR (%s != '' AND email = %s)",
                (subscriber.id, email, email),
            )
            await conn.execute(_UPSERT_PERSON, person_row(subscriber))
            await conn.execute("DELETE FROM subscriptions WHERE person_id = %s", (subscriber.id,))
            for system in subscriber.systems:
                await conn.execute(
                    "INSERT INTO subscriptions (system, person_id) VALUES (%s, %s) "
                    "ON CONFLICT DO NOTHING",
                    (system, subscriber.id),
                )

    async def claim_request(
        self, keys: Sequence[str], now: float, limits: Sequence[tuple[float, int]]
    ) -> bool:
        oldest = now - max((window for window, _ in limits), default=0.0)
        async with self.db.transaction() as conn:
            # A lock a key, held to the commit, in one order: two replicas counting the same
            # address or IP take turns, so neither claims past the limit.
            for key in sorted(set(keys)):
                await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 13))", (key,))
            await conn.execute("DELETE FROM subscription_claims WHERE at <= %s", (oldest,))
            for key, (window, limit) in zip(keys, limits, strict=True):
                cursor = await conn.execute(
                    "SELECT count(*) FROM subscription_claims WHERE key = %s AND at > %s",
                    (key, now - window),
                )
                row = await cursor.fetchone()
                if row is not None and int(row[0]) >= limit:
                    return False
            for key in keys:
                await conn.execute(
                    "INSERT INTO subscription_claims (key, at) VALUES (%s, %s)", (key, now)
                )
        return True

    async def prune_subscription_mails(self, before: float, batch: int = 2000) -> int:
        return await self.db.run(
            "DELETE FROM outbox WHERE key IN (SELECT key FROM outbox WHERE incident_id = 0 "
            "AND status != %s AND created_at < %s LIMIT %s)",
            (PENDING, before, batch),
        )
