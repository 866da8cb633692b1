"""How records are stored, by every backend alike: the columns of a person and of an outbox item,
an incident's members as JSON, and addresses as text: an address is "kind:to"
("email:alice@example.com"), a message's channels a JSON list of those, and the sent_via of a
message not sent (yet) ""."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import fields
from json.encoder import encode_basestring_ascii as _json_string
from typing import Any

from monitor.incidents.correlation import Incident, Member
from monitor.model import Address, ChannelKind, Person
from monitor.store.types import OutboxItem, outbox_shard
from monitor.text import unknown_name

_KINDS: dict[str, ChannelKind] = {"email": "email", "sms": "sms", "webhook": "webhook"}


def address(text: str) -> Address:
    """The address stored as ``text``; ValueError for a kind this monitor does not know."""
    name, _, to = text.partition(":")
    kind = _KINDS.get(name)
    if kind is None:
        raise ValueError("outbox: " + unknown_name("channel", name, _KINDS))
    return Address(kind, to)


def address_text(sent: Address | None) -> str:
    return "" if sent is None else f"{sent.kind}:{sent.to}"


def channels_text(addresses: Sequence[Address]) -> str:
    """``json.dumps`` of the addresses' texts, written with the encoder's own string quoting
    (a third of the time, for the one or two a message has, written at each try)."""
    return "[" + ", ".join([_json_string(f"{a.kind}:{a.to}") for a in addresses]) + "]"


PEOPLE_COLUMNS = "id, name, email, phone, webhook, systems, timezone, language"
# OutboxItem's fields, in order: a row of them is the item's arguments.
OUTBOX_FIELDS = [f.name for f in fields(OutboxItem)]
OUTBOX_COLUMNS = ", ".join(OUTBOX_FIELDS)
# What a decision writes: the item and, last, its shard (``outbox_shard``), which is not read back.
DECIDED_COLUMNS = OUTBOX_COLUMNS + ", shard"
_CHANNELS = OUTBOX_FIELDS.index("channels")
_SENT_VIA = OUTBOX_FIELDS.index("sent_via")


def person_row(person: Person) -> tuple[Any, ...]:
    """A row of ``PEOPLE_COLUMNS``."""
    return (
        person.id,
        person.name,
        person.email,
        person.phone,
        person.webhook,
        json.dumps(person.systems),
        person.timezone,
        person.language,
    )


def person(row: Sequence[Any]) -> Person:
    """A person from a row of ``PEOPLE_COLUMNS``."""
    person_id, name, email, phone, webhook, systems, timezone, language = row
    return Person(
        person_id, name, email, phone, webhook, tuple(json.loads(systems)), timezone, language
    )


def members_text(incident: Incident) -> str:
    return json.dumps([[m.name, m.down_at, m.up_at] for m in incident.members])


def members(text: str) -> tuple[Member, ...]:
    return tuple(Member(n, d, u) for n, d, u in json.loads(text))


def outbox_row(item: OutboxItem) -> tuple[Any, ...]:
    """A row of ``OUTBOX_COLUMNS``."""
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


def decided_row(item: OutboxItem) -> tuple[Any, ...]:
    """A row of ``DECIDED_COLUMNS``."""
    return (*outbox_row(item), outbox_shard(item.person_id))


def outbox_item(row: Sequence[Any]) -> OutboxItem:
    """An item from a row of ``OUTBOX_COLUMNS``, which are OutboxItem's fields in order."""
    values = list(row)
    values[_CHANNELS] = tuple([address(text) for text in json.loads(values[_CHANNELS])])
    values[_SENT_VIA] = address(values[_SENT_VIA]) if values[_SENT_VIA] else None
    return OutboxItem(*values)
