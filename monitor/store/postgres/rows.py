"""Rows of the PostgreSQL tables and the values they hold, written as SQLite's are: addresses
as ``monitor.store.addresses`` writes them for both, a person's systems and an incident's
members as JSON.

A batch goes to the server as one statement: a list per column, unnested by the server
(``columns``), so a batch of any size is the same query text, prepared once per connection.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import fields
from typing import Any

from monitor.incidents.correlation import Incident, Member
from monitor.model import Person
from monitor.store.addresses import address, address_text, channels_text
from monitor.store.types import OutboxItem

PEOPLE_COLUMNS = "id, name, email, phone, webhook, systems"
# OutboxItem's fields, in order: a row of them is the item's arguments.
OUTBOX_FIELDS = [f.name for f in fields(OutboxItem)]
OUTBOX_COLUMNS = ", ".join(OUTBOX_FIELDS)
OUTBOX_TYPES = (
    "text[], bigint[], text[], text[], text[], float8[], text[], text[], text[], text[], "
    "text[], text[], int[], float8[], text[], float8[], text[]"
)
_CHANNELS = OUTBOX_FIELDS.index("channels")
_SENT_VIA = OUTBOX_FIELDS.index("sent_via")

INCIDENT_COLUMNS = (
    "id, opened_at, resolved_at, cause, members, note, held, notified_at, last_update_at, "
    "update_seq, pending_round, resolution_told_at"
)
INCIDENT_TYPES = (
    "bigint[], float8[], float8[], text[], text[], text[], bool[], float8[], float8[], int[], "
    "text[], float8[]"
)


def columns(rows: Iterable[Sequence[Any]], width: int) -> list[list[Any]]:
    """``rows`` as one list per column, for ``unnest(%b::type[], ...)``."""
    found: list[list[Any]] = [[] for _ in range(width)]
    for row in rows:
        for column, value in zip(found, row, strict=True):
            column.append(value)
    return found


def incident_row(incident: Incident) -> tuple[Any, ...]:
    return (
        incident.id,
        incident.opened_at,
        incident.resolved_at,
        incident.cause,
        json.dumps([[m.name, m.down_at, m.up_at] for m in incident.members]),
        incident.note,
        incident.held,
        incident.notified_at,
        incident.last_update_at,
        incident.update_seq,
        incident.pending_round,
        incident.resolution_told_at,
    )


def incident(row: Sequence[Any]) -> Incident:
    """An incident from a row of ``INCIDENT_COLUMNS``."""
    id_, opened, resolved, cause, members, note, held, notified, updated, seq, round_, told = row
    return Incident(
        id=id_,
        opened_at=opened,
        members=tuple(Member(n, d, u) for n, d, u in json.loads(members)),
        cause=cause,
        resolved_at=resolved,
        note=note,
        held=held,
        notified_at=notified,
        last_update_at=updated,
        update_seq=seq,
        pending_round=round_,
        resolution_told_at=told,
    )


def person_row(person: Person) -> tuple[Any, ...]:
    return (
        person.id,
        person.name,
        person.email,
        person.phone,
        person.webhook,
        json.dumps(person.systems),
    )


def person(row: Sequence[Any]) -> Person:
    """A person from a row of ``PEOPLE_COLUMNS``."""
    person_id, name, email, phone, webhook, systems = row
    return Person(person_id, name, email, phone, webhook, tuple(json.loads(systems)))


def outbox_row(item: OutboxItem) -> tuple[Any, ...]:
    return (
        item.key,
        item.incident_id,
        item.person_id,
        item.kind,
        item.reason,
        item.created_at,
        item.subject,
        item.text,
        item.html,
        item.sms,
        channels_text(item.channels),
        item.status,
        item.tries,
        item.next_try_at,
        item.last_error,
        item.sent_at,
        address_text(item.sent_via),
    )


def outbox_item(row: Sequence[Any]) -> OutboxItem:
    """An item from a row of ``OUTBOX_COLUMNS``, which are OutboxItem's fields in order."""
    values = list(row)
    values[_CHANNELS] = tuple([address(text) for text in json.loads(values[_CHANNELS])])
    values[_SENT_VIA] = address(values[_SENT_VIA]) if values[_SENT_VIA] else None
    return OutboxItem(*values)


def systems_text(systems: Iterable[str]) -> str:
    """What a person was told of, as ``told.systems`` keeps it: sorted, as JSON."""
    return json.dumps(sorted(systems))
