"""``People`` on PostgreSQL: people with their contacts and subscriptions, the attempts apps
report, and who an incident's systems reach, a page at a time."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence

from monitor.model import Attempt, Person
from monitor.store.postgres.connection import Connection, Database
from monitor.store.postgres.rows import columns
from monitor.store.postgres.subscriptions import keep_unsubscribed
from monitor.store.records import PEOPLE_COLUMNS, person, person_row

PAGE = 1000  # people a page of ``subscriber_pages``
UPSERT_BATCH = 1000  # people a statement of ``upsert_people``
SYSTEMS_BY_KEY = 32  # above this many systems, a page is read in person order

_UPSERT_PEOPLE = (
    f"INSERT INTO people ({PEOPLE_COLUMNS}) SELECT * FROM unnest(%b::text[], %b::text[], "
    "%b::text[], %b::text[], %b::text[], %b::text[], %b::text[], %b::text[]) "
    "ON CONFLICT (id) DO UPDATE SET "
    "name = excluded.name, email = excluded.email, phone = excluded.phone, "
    "webhook = excluded.webhook, systems = excluded.systems, "
    "timezone = excluded.timezone, language = excluded.language"
)
_PEOPLE = ", ".join(f"p.{name}" for name in PEOPLE_COLUMNS.split(", "))
# The next ids subscribed to any of a few systems: each system's next ids by its key range,
# merged; at most PAGE a system are read, however many people there are.
_PAGE_BY_SYSTEM = (
    "SELECT DISTINCT s.person_id FROM unnest(%(names)b::text[]) AS n(system) "
    "CROSS JOIN LATERAL (SELECT person_id FROM subscriptions WHERE system = n.system "
    "AND person_id > %(after)s ORDER BY person_id LIMIT %(n)s) AS s "
    "ORDER BY s.person_id LIMIT %(n)s"
)
# ... of many systems (everything failing at once): the subscriptions in person order, kept
# where the system is one of them, so each is read at most once over the whole fan-out.
_PAGE_BY_PERSON = (
    "SELECT DISTINCT person_id FROM subscriptions WHERE person_id > %(after)s "
    "AND system = ANY(%(names)b::text[]) ORDER BY person_id LIMIT %(n)s"
)
# A known person keeps their subscriptions, and what they had of name and contacts; what
# they lacked is filled in from the attempt. Both writes in one statement: atomic alone.
_ADD_ATTEMPT = (
    "WITH known AS (INSERT INTO people (id, name, email, phone, webhook, systems, timezone, "
    "language) VALUES (%(id)s, %(name)s, %(email)s, %(phone)s, %(webhook)s, '[]', "
    "%(timezone)s, %(language)s) "
    "ON CONFLICT (id) DO UPDATE SET "
    "name = COALESCE(NULLIF(people.name, ''), excluded.name), "
    "email = COALESCE(NULLIF(people.email, ''), excluded.email), "
    "phone = COALESCE(NULLIF(people.phone, ''), excluded.phone), "
    "webhook = COALESCE(NULLIF(people.webhook, ''), excluded.webhook), "
    "timezone = COALESCE(people.timezone, excluded.timezone), "
    "language = COALESCE(people.language, excluded.language)) "
    "INSERT INTO attempts (system, person_id, action, at) "
    "VALUES (%(system)s, %(person_id)s, %(action)s, %(at)s)"
)


class People:
    """Who may be told: people with their contacts and subscriptions, the attempts apps
    report, and who an incident's systems reach."""

    db: Database

    async def upsert_people(self, people: Iterable[Person]) -> int:
        """Add or replace each person with their subscriptions, all in one transaction."""
        count = 0
        batch: dict[str, Person] = {}
        async with self.db.transaction() as conn:
            for each in people:
                count += 1
                batch[each.id] = each  # the last of an id wins, as it would one by one
                if len(batch) >= UPSERT_BATCH:
                    await _upsert(conn, list(batch.values()))
                    batch = {}
            if batch:
                await _upsert(conn, list(batch.values()))
        return count

    async def person(self, person_id: str) -> Person | None:
        row = await self.db.row(f"SELECT {PEOPLE_COLUMNS} FROM people WHERE id = %s", (person_id,))
        return person(row) if row is not None else None

    async def people_by_ids(self, ids: Sequence[str]) -> dict[str, Person]:
        if not ids:
            return {}
        rows = await self.db.rows(
            f"SELECT {PEOPLE_COLUMNS} FROM people WHERE id = ANY(%b::text[])", (list(ids),)
        )
        return {found.id: found for found in map(person, rows)}

    async def subscriber_pages(self, systems: Iterable[str]) -> AsyncIterator[list[Person]]:
        """Subscribers of any of ``systems``, by id, a page at a time (one round trip a page);
        each page is read whole, so the caller may write between pages."""
        names = sorted(set(systems))
        if not names:
            return
        ids = _PAGE_BY_SYSTEM if len(names) <= SYSTEMS_BY_KEY else _PAGE_BY_PERSON
        # The page's ids with their people: the last id read, not the last person found,
        # is where the next page starts.
        sql = (
            f"SELECT page.person_id, {_PEOPLE} FROM ({ids}) AS page "
            "LEFT JOIN people AS p ON p.id = page.person_id ORDER BY page.person_id"
        )
        after = ""
        while rows := await self.db.rows(sql, {"names": names, "after": after, "n": PAGE}):
            yield [person(row[1:]) for row in rows if row[1] is not None]
            after = rows[-1][0]

    async def audience_count(
        self, systems: Iterable[str], attempts_from: float, until: float
    ) -> int:
        # Counted by the server: building every recipient to count them held the loop for
        # seconds when an incident opened with 100,000 people to tell.
        row = await self.db.row(
            "SELECT COUNT(*) FROM (SELECT person_id FROM subscriptions JOIN people "
            "ON people.id = person_id WHERE system = ANY(%(names)b::text[]) "
            "UNION SELECT person_id FROM attempts WHERE system = ANY(%(names)b::text[]) "
            "AND at >= %(start)s AND at <= %(end)s) AS audience",
            {"names": sorted(set(systems)), "start": attempts_from, "end": until},
        )
        return int(row[0]) if row is not None else 0

    async def add_attempt(self, attempt: Attempt, person: Person) -> None:
        """Remember an attempt; a person we did not know is kept, with no subscriptions."""
        await self.db.run(
            _ADD_ATTEMPT,
            {
                "id": person.id,
                "name": person.name,
                "email": person.email,
                "phone": person.phone,
                "webhook": person.webhook,
                "timezone": person.timezone,
                "language": person.language,
                "system": attempt.system,
                "person_id": attempt.person_id,
                "action": attempt.action,
                "at": attempt.at,
            },
        )

    async def attempts(self, systems: Iterable[str], since: float) -> list[Attempt]:
        names = sorted(set(systems))
        if not names:
            return []
        rows = await self.db.rows(
            "SELECT system, person_id, action, at FROM attempts "
            "WHERE system = ANY(%b::text[]) AND at >= %s ORDER BY at, id",
            (names, since),
        )
        return [Attempt(*row) for row in rows]

    async def attempt_count(self, systems: Iterable[str], since: float) -> int:
        names = sorted(set(systems))
        if not names:
            return 0
        row = await self.db.row(
            "SELECT COUNT(*) FROM attempts WHERE system = ANY(%b::text[]) AND at >= %s",
            (names, since),
        )
        return int(row[0]) if row is not None else 0

    async def prune_attempts(self, older_than: float) -> int:
        return await self.db.run("DELETE FROM attempts WHERE at < %s", (older_than,))


async def _upsert(conn: Connection, people: list[Person]) -> None:
    ids = [p.id for p in people]
    await conn.execute(_UPSERT_PEOPLE, columns(map(person_row, people), 8))
    await conn.execute("DELETE FROM subscriptions WHERE person_id = ANY(%b::text[])", (ids,))
    await conn.execute(
        "INSERT INTO subscriptions (system, person_id) SELECT * FROM "
        "unnest(%b::text[], %b::text[]) ON CONFLICT DO NOTHING",
        columns(((system, p.id) for p in people for system in p.systems), 2),
    )
    await keep_unsubscribed(conn, ids)  # who cancelled is not subscribed again unasked
