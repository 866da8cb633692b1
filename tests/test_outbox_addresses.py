"""The outbox keeps addresses in the column format every earlier database has, and hands them
back as Address values."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import pytest

from monitor.model import Address
from monitor.store import SENT, OutboxItem, SQLiteStore

CHANNELS = (
    Address("email", "zoë@example.com"),
    Address("sms", "+447700900001"),
    Address("webhook", 'https://hooks.example.com/a?b="c"&d=\\e'),
)
ITEM = OutboxItem(
    key="incident-1.acknowledge.zoe",
    incident_id=1,
    person_id="zoe",
    kind="acknowledge",
    reason="first",
    created_at=1_800_000_000.0,
    subject="Sorry: payments are failing",
    text="We are on it.",
    html=None,
    sms="We are on it.",
    channels=CHANNELS,
)


def stored(store: SQLiteStore) -> tuple[str, str]:
    """The item's channels and sent_via columns, as the file holds them."""
    row = store.db.conn.execute(
        "SELECT channels, sent_via FROM outbox WHERE key = ?", (ITEM.key,)
    ).fetchone()
    return row[0], row[1]


async def test_addresses_are_stored_as_the_text_earlier_versions_wrote(tmp_path: Path) -> None:
    """Channels are a JSON list of "kind:to" texts, exactly as json.dumps wrote them before,
    and sent_via is "" until a channel delivers, then that address's text; both read back as
    the same Address values."""
    store = SQLiteStore(tmp_path / "m.db")
    await store.decide([ITEM], {}, 1)
    earlier = json.dumps([f"{a.kind}:{a.to}" for a in CHANNELS])
    assert stored(store) == (earlier, "")
    assert await store.due(ITEM.created_at, 10) == [ITEM]

    sent = replace(ITEM, channels=CHANNELS[1:], status=SENT, sent_via=CHANNELS[1])
    await store.update_items([sent])
    assert stored(store) == (
        json.dumps([f"{a.kind}:{a.to}" for a in CHANNELS[1:]]),
        "sms:+447700900001",
    )
    [back] = await store.outbox_items(1)
    assert (back.channels, back.sent_via) == (CHANNELS[1:], Address("sms", "+447700900001"))
    await store.close()


async def test_a_stored_channel_of_a_kind_this_monitor_does_not_know_is_refused(
    tmp_path: Path,
) -> None:
    """A channel the monitor cannot use is an error naming its kind and the known ones, never
    a guess."""
    store = SQLiteStore(tmp_path / "m.db")
    await store.decide([ITEM], {}, 1)
    store.db.conn.execute("UPDATE outbox SET channels = ?", (json.dumps(["fax:+44 20 7946"]),))
    refusal = "outbox: no channel is named 'fax' (there are: email, sms, webhook)"
    with pytest.raises(ValueError, match=f"^{re.escape(refusal)}$"):
        await store.outbox_items(1)
    await store.close()
