"""Retention of incidents and messages: what is settled gives its text back, what is old goes,
and the database file stops growing; nothing pending or open is ever touched."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from world import ALICE, World, world

from monitor.config import load_config
from monitor.model import Address, Person
from monitor.store import PENDING, SENT, UNDELIVERABLE, SQLiteStore
from monitor.store.sqlite import _SCHEMA

DAY = 86400.0
RETENTION = 7 * DAY  # the default retention.max_age
HISTORY = 90 * DAY  # the default retention.history: the status page's
GONE = {"incidents": 0, "outbox": 0, "told": 0, "timeline": 0}
# What stays for the status page's history (no note was written: no timeline customers see).
PUBLIC = {"incidents": 1, "outbox": 0, "told": 0, "timeline": 0}


def rows(store: SQLiteStore, table: str, incident_id: int | None = None) -> int:
    column = "id" if table == "incidents" else "incident_id"
    where, params = (f"WHERE {column} = ?", [incident_id]) if incident_id is not None else ("", [])
    return int(next(store.db.query(f"SELECT COUNT(*) AS n FROM {table} {where}", params))["n"])


def everything_of(store: SQLiteStore, incident_id: int) -> dict[str, int]:
    return {t: rows(store, t, incident_id) for t in ("incidents", "outbox", "told", "timeline")}


def crowd(count: int) -> list[Person]:
    """Payment's subscribers: a few with an email address (sent through the mail server),
    the rest with no contact at all (settled at once as undeliverable)."""
    return [
        Person(
            f"p{n:05d}",
            f"Person {n}",
            f"p{n}@example.com" if n % 50 == 0 else None,
            None,
            None,
            ("payment",),
        )
        for n in range(count)
    ]


async def outage(w: World) -> int:
    """Payment down long enough for everyone to be told, then fixed and followed up."""
    await w.fail(["payment"])
    await w.wait(120)
    await w.recover(["payment"])
    await w.wait(120)
    incident = (await w.store.latest_incidents(1))[0]
    assert incident.resolved_at is not None
    assert incident.resolution_told_at is not None
    return incident.id


def size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


async def test_a_settled_message_keeps_its_subject_but_not_its_bodies(tmp_path: Path) -> None:
    """Once sent (or undeliverable) a message's text, html and sms are cleared in the update
    that records it; its key, kind, subject, times and error stay. A pending message keeps
    everything, and a settled one is never changed back."""
    async with world(tmp_path) as w:
        bob = Person("bob", "Bob", "bob@example.com", None, None, ("payment",))
        await w.people(ALICE, bob)
        w.catcher.reject = {"bob@example.com"}
        await w.fail(["payment"])
        w.clock.advance(120)
        await w.notifier.tick()  # decided, not sent yet
        incident = (await w.incidents())[0].id
        pending = {i.person_id: i for i in await w.store.outbox_items(incident)}
        assert {i.status for i in pending.values()} == {PENDING}
        assert all(i.text and i.sms and i.html for i in pending.values())
        await w.settle()
        settled = {i.person_id: i for i in await w.store.outbox_items(incident)}
        assert settled["alice"].status == SENT
        assert settled["bob"].status == UNDELIVERABLE
        assert "550" in settled["bob"].last_error
        for person, item in settled.items():
            assert (item.text, item.html, item.sms) == ("", None, ""), person
            assert item.subject == pending[person].subject
            assert item.key == pending[person].key
            assert item.created_at == pending[person].created_at
        assert settled["alice"].sent_via == Address("email", "alice@example.com")
        mail = w.mail_to("alice@example.com")[0]
        assert "Alice" in mail.text  # what went out was the whole message
        # A stale outcome written again cannot make a settled message pending (and empty).
        await w.store.update_items([pending["alice"]])
        assert (await w.store.outbox_items(incident))[0].status == SENT
        assert await w.store.pending_count() == 0


@pytest.mark.parametrize("made", ["new", "existing"])
async def test_old_incidents_are_pruned_and_the_file_stops_growing(
    tmp_path: Path, made: str
) -> None:
    """Six outages to 1,000 people, each resolved and then past retention: after each prune
    nothing of the old incident is left but what the status page shows, incident ids are never
    reused, and the database file after the sixth outage is within 5% of its size after the
    second; past the status page's history the incidents go too. "existing" is a file made
    before auto_vacuum was set (it reuses its free pages instead of giving them back)."""
    db = tmp_path / "monitor.db"
    if made == "existing":
        with sqlite3.connect(db) as conn:
            conn.executescript(_SCHEMA)
        conn.close()
    async with world(tmp_path) as w:
        assert w.store.incremental is (made == "new")
        await w.people(*crowd(1000))
        peak: list[int] = []
        after: list[int] = []
        wal: list[int] = []
        ids = []
        for _ in range(6):
            incident = await outage(w)
            ids.append(incident)
            assert rows(w.store, "outbox", incident) == 2000  # acknowledge + resolved each
            assert await w.store.pending_count() == 0
            peak.append(size(db))
            wal.append(size(db.with_name("monitor.db-wal")))
            w.clock.advance(RETENTION + 60)
            deleted = await w.monitor.prune()
            assert deleted >= 2000 + 1000 + 1
            assert everything_of(w.store, incident) == PUBLIC
            after.append(size(db))
            assert size(db.with_name("monitor.db-wal")) == 0  # checkpointed after the prune
        print(f"\n{made}: peak {peak}\n{made}: after prune {after}\n{made}: wal {wal}")
        assert ids == [1, 2, 3, 4, 5, 6]  # never reused, though each was pruned
        assert peak[-1] <= peak[1] * 1.05, peak
        assert max(wal) <= 16 * 1024 * 1024, wal  # journal_size_limit
        if made == "new":
            assert after[-1] < peak[-1] / 2, (after, peak)  # free pages went back
        w.clock.advance(HISTORY)
        assert await w.monitor.prune() >= 6
        assert [everything_of(w.store, i) for i in ids] == [GONE] * 6


async def test_what_is_recent_open_or_pending_is_never_pruned(tmp_path: Path) -> None:
    """Past retention: an incident still open keeps everything; a resolved one whose messages
    are still pending (the mail server is down) keeps everything too, and after a restart its
    messages still go out, in full; an incident resolved a minute ago is kept. Once its
    messages are sent, the old resolved one is pruned."""
    async with world(tmp_path) as w:
        bob = Person("bob", "Bob Stone", "bob@example.com", None, None, ("login",))
        await w.people(ALICE, bob)
        await w.catcher.stop()
        old = await outage(w)  # payment: alice told nothing yet, both messages pending
        assert await w.store.pending_count() == 2
        await w.fail(["login"])
        await w.wait(120)  # login: open, bob's acknowledgement pending
        still_open = (await w.store.latest_incidents(1))[0].id
        assert still_open != old
        w.clock.advance(RETENTION + DAY)
        kept = {i: everything_of(w.store, i) for i in (old, still_open)}
        await w.monitor.prune()  # payment's first DOWN goes: its UP says how it was since
        assert {i: everything_of(w.store, i) for i in (old, still_open)} == kept
        await w.restart()  # crash safety: what was decided before is still there after a restart
        assert await w.monitor.prune() == 0
        await w.catcher.start()
        await w.settle()
        kinds = [str(m.message["Message-ID"]).split(".")[1] for m in w.mail_to(ALICE.email or "")]
        assert kinds == ["acknowledge", "resolved"]
        assert "Alice" in w.mail_to(ALICE.email or "")[0].text
        assert w.mail_to("bob@example.com")
        assert await w.monitor.prune() > 0
        assert everything_of(w.store, old) == PUBLIC
        assert everything_of(w.store, still_open)["incidents"] == 1
        assert rows(w.store, "outbox", still_open) >= kept[still_open]["outbox"] == 1
        # Resolved just now: kept until retention has passed.
        await w.recover(["login"])
        await w.wait(60)
        assert await w.store.incident(still_open) is not None
        w.clock.advance(RETENTION - 3600)
        await w.monitor.prune()
        assert await w.store.incident(still_open) is not None
        w.clock.advance(2 * 3600)
        await w.monitor.prune()
        assert rows(w.store, "outbox", still_open) == 0
        assert await w.store.incident(still_open) is not None  # for the status page's history
        w.clock.advance(HISTORY)
        await w.monitor.prune()
        assert await w.store.incident(still_open) is None


async def test_the_daily_limit_holds_across_a_prune(tmp_path: Path) -> None:
    """With retention.max_age 1h and a limit of 2 messages a day: an incident resolved two hours
    ago is kept (a day at least), so Alice, told twice about it, hears nothing of a second
    incident that same day; a day later it is gone and a third incident reaches her."""
    checks = tmp_path / "checks"
    async with world(tmp_path, limit=2) as w:
        with (checks / "monitor.yaml").open("a") as settings:
            settings.write("retention: {max_age: 1h}\n")
        w.config = load_config(checks, {})
        await w.restart()
        await w.people(ALICE)
        first = await outage(w)
        w.clock.advance(2 * 3600)
        await w.monitor.prune()
        assert await w.store.incident(first) is not None
        second = await outage(w)
        await w.monitor.prune()
        assert await w.store.incident(first) is not None
        kinds = [str(m.message["Message-ID"]).split(".")[1] for m in w.mail_to("alice@example.com")]
        assert kinds == ["acknowledge", "resolved"]
        assert rows(w.store, "outbox", second) == 0
        w.clock.advance(DAY)
        await w.monitor.prune()
        assert rows(w.store, "outbox", first) == rows(w.store, "outbox", second) == 0
        third = await outage(w)
        assert third == second + 1
        assert len(w.mail_to("alice@example.com")) == 4
