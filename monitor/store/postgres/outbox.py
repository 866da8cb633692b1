"""``Outbox`` on PostgreSQL: what each person was told about each incident, the decided
messages with their outcomes, and the counts read from them. A decision's key is unique by the
table's primary key, so a fan-out run twice (a restart, a second process) decides nothing
twice; ``decide`` and ``update_items`` are one statement a batch, atomic without a transaction.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from typing import Any

from monitor.model import MessageKind
from monitor.store.postgres.connection import Database
from monitor.store.postgres.rows import DECIDED_TYPES, columns, systems_text
from monitor.store.records import (
    DECIDED_COLUMNS,
    OUTBOX_COLUMNS,
    address_text,
    channels_text,
    decided_row,
    outbox_item,
)
from monitor.store.types import PENDING, SENT, UNDELIVERABLE, MessageTally, OutboxItem

# What each person has now been told and the new decisions, in one statement; its row count
# is the outbox's: how many decisions were new.
_DECIDE = (
    "WITH told_now AS (INSERT INTO told (incident_id, person_id, systems) "
    "SELECT %s::bigint, * FROM unnest(%b::text[], %b::text[]) "
    "ON CONFLICT (incident_id, person_id) DO UPDATE SET systems = excluded.systems) "
    f"INSERT INTO outbox ({DECIDED_COLUMNS}) SELECT * FROM unnest("
    + ", ".join(f"%b::{kind}" for kind in DECIDED_TYPES.split(", "))
    + ") ON CONFLICT (key) DO NOTHING"
)
# A settled message (sent, undeliverable) is final: its rendered text, html and sms go in the
# same statement, and it is never changed again (only a pending row is updated). MERGE, not
# UPDATE ... FROM ... WHERE o.key = v.key AND o.status = 'pending': with the status in the join,
# statistics gathered before a large fan-out (a few pending rows) made the planner read every
# pending row through outbox_due for each batch of 8 outcomes (7.4 ms a batch at 100,000
# pending, the server's cores saturated). Here rows are found by key alone; the status is a
# condition on the row found.
OUTCOMES = (
    "MERGE INTO outbox AS o USING unnest(%b::text[], %b::int[], %b::float8[], %b::text[], "
    "%b::float8[], %b::text[], %b::text[], %b::text[]) "
    "AS v(status, tries, next_try_at, last_error, sent_at, sent_via, channels, key) "
    f"ON o.key = v.key WHEN MATCHED AND o.status = '{PENDING}' THEN UPDATE SET "
    "status = v.status, tries = v.tries, next_try_at = v.next_try_at, "
    "last_error = v.last_error, sent_at = v.sent_at, sent_via = v.sent_via, "
    f"channels = v.channels, text = CASE WHEN v.status = '{PENDING}' THEN o.text ELSE '' END, "
    f"html = CASE WHEN v.status = '{PENDING}' THEN o.html END, "
    f"sms = CASE WHEN v.status = '{PENDING}' THEN o.sms ELSE '' END"
)
# Pending messages due, oldest due first, but none while an earlier message of the same person
# about the same incident is still pending: a person hears about one incident in order.
# The earlier message is looked for by incident and person; its status is wrapped so that no
# index can be chosen by it: with statistics taken before a fan-out (every message sent), the
# planner took "status = pending" for a handful of rows and read every pending message through
# outbox_due for each message due (2 replicas: 70 ms a read, PostgreSQL at a core, the fan-out
# at 0.5x-0.75x of one replica's; it came and went with when autovacuum had analysed).
DUE = (
    f"SELECT {OUTBOX_COLUMNS} FROM outbox WHERE status = %(pending)s "
    "AND next_try_at <= %(now)s AND NOT EXISTS (SELECT 1 FROM outbox AS earlier WHERE "
    "earlier.incident_id = outbox.incident_id AND earlier.person_id = outbox.person_id "
    "AND coalesce(earlier.status, '') = %(pending)s AND earlier.seq < outbox.seq) "
    "ORDER BY next_try_at, seq LIMIT %(limit)s"
)
# The same, of some shards only (a replica's): each shard's first ``each`` through its own
# index (outbox_pending_by_shard), then the oldest of those. One scan of outbox_due filtered by
# shard walks past every pending message of the other replicas' shards due before its own, on
# every read, and the leader, which also decides every message, sends behind the others. A
# read gives at most ``each`` of a shard: a replica behind in one shard reads again at once (it
# read something), so that shard's messages still go out in order.
# The status is written out, not a parameter: a prepared statement's generic plan could not
# tell that the partial index holds every row it asks for.
DUE_IN_SHARDS = (
    f"SELECT {OUTBOX_COLUMNS} FROM unnest(%(shards)s::int[]) AS held (shard) CROSS JOIN LATERAL "
    f"(SELECT {OUTBOX_COLUMNS}, seq FROM outbox WHERE outbox.shard = held.shard "
    f"AND status = '{PENDING}' AND next_try_at <= %(now)s AND NOT EXISTS (SELECT 1 FROM outbox "
    "AS earlier WHERE earlier.incident_id = outbox.incident_id AND earlier.person_id = "
    "outbox.person_id AND coalesce(earlier.status, '') = %(pending)s "
    "AND earlier.seq < outbox.seq) "
    "ORDER BY next_try_at, seq LIMIT %(each)s) AS due ORDER BY due.next_try_at, due.seq "
    "LIMIT %(limit)s"
)


def outcome_params(items: Sequence[OutboxItem]) -> list[list[Any]] | None:
    """``OUTCOMES``'s parameters: one outcome a key, the one that holds when they are applied
    one by one (the first that settles the message, else the last); None when there is none."""
    chosen: dict[str, OutboxItem] = {}
    for item in items:
        earlier = chosen.get(item.key)
        if earlier is None or earlier.status == PENDING:
            chosen[item.key] = item
    if not chosen:
        return None
    return columns(
        (
            (
                i.status,
                i.tries,
                i.next_try_at,
                i.last_error,
                i.sent_at,
                address_text(i.sent_via),
                channels_text(i.channels),
                i.key,
            )
            for i in chosen.values()
        ),
        8,
    )


class Outbox:
    """Decisions to send, committed before anything is sent, and what they became."""

    db: Database

    async def told_about(
        self, incident_id: int, person_ids: Sequence[str]
    ) -> dict[str, frozenset[str]]:
        if not person_ids:
            return {}
        rows = await self.db.rows(
            "SELECT person_id, systems FROM told "
            "WHERE incident_id = %s AND person_id = ANY(%b::text[])",
            (incident_id, list(person_ids)),
        )
        return {person: frozenset(json.loads(systems)) for person, systems in rows}

    async def told_pages(
        self, incident_id: int, size: int = 1000
    ) -> AsyncIterator[dict[str, frozenset[str]]]:
        """What each person was told about ``incident_id``, ``size`` people at a time by id;
        each page is read whole, so the caller may write between pages."""
        last = ""
        while rows := await self.db.rows(
            "SELECT person_id, systems FROM told WHERE incident_id = %s AND person_id > %s "
            "ORDER BY person_id LIMIT %s",
            (incident_id, last, size),
        ):
            yield {person: frozenset(json.loads(systems)) for person, systems in rows}
            last = rows[-1][0]

    async def decide(
        self, items: Sequence[OutboxItem], told: Mapping[str, frozenset[str]], incident_id: int
    ) -> int:
        """Commit decisions and what each person has now been told, in one statement; how many
        items were new (an item whose key exists already is left as it is)."""
        if not items and not told:
            return 0
        people = list(told)
        return await self.db.run(
            _DECIDE,
            [
                incident_id,
                people,
                [systems_text(told[person]) for person in people],
                *columns(map(decided_row, items), len(DECIDED_TYPES.split(", "))),
            ],
        )

    async def offer_goodwill(self, incident_id: int, offers: Mapping[str, str]) -> dict[str, str]:
        if not offers:
            return {}
        people = list(offers)
        rows = await self.db.rows(
            _OFFER_GOODWILL,
            {"id": incident_id, "people": people, "keys": [offers[p] for p in people]},
        )
        return {person: key for person, key in rows}

    async def due(
        self, now: float, limit: int, shards: Collection[int] | None = None
    ) -> list[OutboxItem]:
        if shards is None:
            rows = await self.db.rows(DUE, {"pending": PENDING, "now": now, "limit": limit})
        elif shards:
            # Twice a fair share of ``limit`` from each shard: full reads while most shards have
            # messages due, few rows read where they do not.
            each = max(8, -(-2 * limit // len(shards)))
            rows = await self.db.rows(
                DUE_IN_SHARDS,
                {
                    "pending": PENDING,
                    "now": now,
                    "limit": limit,
                    "each": each,
                    "shards": sorted(shards),
                },
            )
        else:
            return []
        return [outbox_item(row) for row in rows]

    async def update_item(self, item: OutboxItem) -> None:
        await self.update_items((item,))

    async def update_items(self, items: Sequence[OutboxItem]) -> None:
        """Record the outcomes of several sends in one statement: all of them, or (raising
        StoreUnavailable) none. A settled message is final (see ``OUTCOMES``)."""
        if params := outcome_params(items):
            await self.db.run(OUTCOMES, params)

    async def message_counts(self, person_ids: Sequence[str], since: float) -> dict[str, int]:
        if not person_ids:
            return {}
        rows = await self.db.rows(
            "SELECT person_id, COUNT(*) FROM outbox WHERE person_id = ANY(%b::text[]) "
            "AND created_at >= %s GROUP BY person_id",
            (list(person_ids), since),
        )
        return {str(person): int(count) for person, count in rows}

    async def outbox_counts(self, incident_id: int | None = None) -> dict[str, dict[str, int]]:
        where, params = ("WHERE incident_id = %s", [incident_id]) if incident_id else ("", [])
        counts: dict[str, dict[str, int]] = {}
        for kind, status, count in await self.db.rows(
            f"SELECT kind, status, COUNT(*) FROM outbox {where} GROUP BY kind, status", params
        ):
            counts.setdefault(kind, {})[status] = int(count)
        return counts

    async def outbox_items(self, incident_id: int) -> list[OutboxItem]:
        rows = await self.db.rows(
            f"SELECT {OUTBOX_COLUMNS} FROM outbox WHERE incident_id = %s ORDER BY created_at, key",
            (incident_id,),
        )
        return [outbox_item(row) for row in rows]

    async def undeliverable(self, incident_id: int, limit: int) -> list[tuple[str, str, str]]:
        rows = await self.db.rows(
            "SELECT person_id, kind, last_error FROM outbox WHERE incident_id = %s "
            "AND status = %s ORDER BY person_id, created_at LIMIT %s",
            (incident_id, UNDELIVERABLE, limit),
        )
        return [(str(person), str(kind), str(why)) for person, kind, why in rows]

    async def message_tally(self, incident_id: int) -> MessageTally:
        """Two statements: the counts, then the people undeliverable with the times of the
        acknowledgements as one array (decoded by the driver in C, not row by row)."""
        params = {
            "id": incident_id,
            "sent": SENT,
            "undeliverable": UNDELIVERABLE,
            "acknowledge": MessageKind.ACKNOWLEDGE.value,
        }
        rows = await self.db.rows(_TALLY_COUNTS, params)
        row = await self.db.row(_TALLY_PEOPLE, params)
        people, times = (row[0], row[1]) if row is not None else (0, None)
        return MessageTally(
            {(str(kind), str(status), str(via)): int(n) for kind, status, via, n in rows},
            int(people),
            tuple(float(at) for at in times or ()),
        )

    async def pending_count(self) -> int:
        row = await self.db.row("SELECT COUNT(*) FROM outbox WHERE status = %s", (PENDING,))
        return int(row[0]) if row is not None else 0


# The rows inserted now, and those there before (the statement's snapshot does not see its own
# inserts): a person whose row another transaction is inserting at this moment is in neither,
# and gets no goodwill in this message.
_OFFER_GOODWILL = (
    "WITH offered AS (INSERT INTO goodwill SELECT %(id)s, o.person, o.key "
    "FROM unnest(%(people)s::text[], %(keys)s::text[]) AS o(person, key) "
    "ON CONFLICT (incident_id, person_id) DO NOTHING RETURNING person_id, outbox_key) "
    "SELECT person_id, outbox_key FROM offered UNION ALL "
    "SELECT person_id, outbox_key FROM goodwill "
    "WHERE incident_id = %(id)s AND person_id = ANY(%(people)s::text[])"
)
# An incident's messages by kind, status and the channel that sent them (sent_via is
# "kind:to"), for its report.
_TALLY_COUNTS = (
    "SELECT kind, status, CASE WHEN status = %(sent)s THEN split_part(sent_via, ':', 1) "
    "ELSE '' END AS via, COUNT(*) FROM outbox WHERE incident_id = %(id)s "
    "GROUP BY kind, status, via"
)
_TALLY_PEOPLE = (
    "SELECT (SELECT COUNT(DISTINCT person_id) FROM outbox WHERE incident_id = %(id)s "
    "AND status = %(undeliverable)s), (SELECT array_agg(sent_at ORDER BY sent_at) FROM outbox "
    "WHERE incident_id = %(id)s AND kind = %(acknowledge)s AND status = %(sent)s)"
)
