"""The store's contract for self-service subscriptions (``roles.Subscriptions``), run against
every backend (SQLite, PostgreSQL) with the contract suite's fixtures: who cancelled is kept by
id and by address, so no import subscribes them again unasked; a confirmed subscription undoes
it; the requests are counted against limits every process shares; confirmation mails are
pruned once settled."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from test_store_contract import Backend, backend, database, message, sent, store

from monitor.model import Person
from monitor.store import PENDING, SENT, UNDELIVERABLE, Store

__all__ = ["backend", "database", "store"]  # the contract suite's fixtures, used here

ANNA = Person("u1", "Anna", "Anna@Example.com", systems=("payment", "login"))
ANNA_AGAIN = Person("crm-7", "Anna K.", "anna@example.com", systems=("payment",))
BEN = Person("u2", "Ben", "ben@example.com", systems=("payment",))


async def subscriber_ids(store: Store, *systems: str) -> list[str]:
    return [p.id async for page in store.subscriber_pages(systems) for p in page]


async def test_who_unsubscribes_keeps_their_record_and_loses_every_subscription(
    store: Store,
) -> None:
    """Unsubscribing keeps the person (name, address) but no subscription, for them and for
    every person of the same address in any case; others are untouched."""
    await store.upsert_people([ANNA, ANNA_AGAIN, BEN])
    await store.unsubscribe("u1", "Anna@Example.com", 100.0)
    assert await subscriber_ids(store, "payment", "login") == ["u2"]
    kept = await store.person("u1")
    assert kept is not None
    assert kept.email == "Anna@Example.com"
    assert kept.systems == ()
    assert await store.unsubscribed_among(["u1", "crm-7", "u2", "nobody"]) == {"u1", "crm-7"}


async def test_an_import_does_not_subscribe_someone_who_unsubscribed_again(
    backend: Backend, store: Store
) -> None:
    """A later import (or POST /api/v1/users) of the same id, or of a new id with the same
    address, updates their details but subscribes them to nothing, even in another process."""
    await store.upsert_people([ANNA, BEN])
    await store.unsubscribe("u1", ANNA.email, 100.0)
    other = await backend.open()
    await other.upsert_people([replace(ANNA, name="Anna Smith"), ANNA_AGAIN, BEN])
    assert await subscriber_ids(store, "payment", "login") == ["u2"]
    kept = await store.person("u1")
    assert kept is not None
    assert kept.name == "Anna Smith"
    assert await store.unsubscribed_among(["u1", "crm-7"]) == {"u1", "crm-7"}


async def test_a_confirmed_subscription_subscribes_the_address_again(store: Store) -> None:
    """Subscribing (double opt-in, or the person's own manage link) keeps the person with their
    systems and no longer as unsubscribed, by id and by address."""
    await store.upsert_people([ANNA, ANNA_AGAIN])
    await store.unsubscribe("u1", ANNA.email, 100.0)
    await store.subscribe(replace(ANNA, systems=("login",)))
    assert await subscriber_ids(store, "login") == ["u1"]
    assert await store.unsubscribed_among(["u1", "crm-7"]) == set()
    assert [p.id for p in await store.people_with_email("ANNA@example.com")] == ["crm-7", "u1"]
    new = Person("sub-abc", email="new@example.com", systems=("payment",))
    await store.subscribe(new)
    assert await store.person("sub-abc") == new


async def test_requests_are_counted_against_every_limit_until_their_window_passes(
    store: Store,
) -> None:
    """A request is counted under each key unless one is at its limit; claims older than the
    window no longer count."""
    limits = [(86400.0, 2), (3600.0, 3)]
    assert await store.claim_request(["address:a", "ip:1"], 0.0, limits)
    assert await store.claim_request(["address:a", "ip:1"], 10.0, limits)
    assert not await store.claim_request(["address:a", "ip:1"], 20.0, limits)  # the address
    assert await store.claim_request(["address:b", "ip:1"], 30.0, limits)
    assert not await store.claim_request(["address:c", "ip:1"], 40.0, limits)  # the IP
    assert await store.claim_request(["address:c", "ip:1"], 3700.0, limits)
    assert not await store.claim_request(["address:a", "ip:2"], 3800.0, limits)
    assert await store.claim_request(["address:a", "ip:2"], 86401.0, limits)


async def test_two_processes_claiming_the_last_request_at_once_give_it_to_one(
    backend: Backend, store: Store
) -> None:
    """The limit holds across replicas: of two processes claiming the last request of an
    address at the same moment, one gets it."""
    other = await backend.open()
    limits = [(86400.0, 1)]
    got = await asyncio.gather(
        store.claim_request(["address:a"], 5.0, limits),
        other.claim_request(["address:a"], 5.0, limits),
    )
    assert sorted(got) == [False, True]


async def test_settled_confirmation_mails_are_pruned_and_pending_ones_kept(store: Store) -> None:
    """Confirmation mails (``incident_id`` 0) sent before the moment go; one still pending, a
    newer one and an incident's message stay."""
    old, pending, new = (
        replace(message(p, incident=0, kind="subscribe", created_at=at), key=f"subscribe-{p}")
        for p, at in (("sub-1", 100.0), ("sub-2", 100.0), ("sub-3", 500.0))
    )
    incident = message("u1", incident=1, created_at=100.0)
    await store.decide([old, pending, new], {}, 0)
    await store.decide([incident], {}, 1)
    await store.update_items([sent(old), sent(new), sent(incident)])
    assert await store.prune_subscription_mails(200.0) == 1
    assert await store.prune_subscription_mails(200.0) == 0
    assert {i.key for i in await store.outbox_items(0)} == {"subscribe-sub-2", "subscribe-sub-3"}
    assert len(await store.outbox_items(1)) == 1


async def test_what_was_decided_and_not_yet_sent_to_who_unsubscribes_is_never_sent(
    store: Store,
) -> None:
    """Unsubscribing settles each message still pending for them (and for their address's
    other person) as undeliverable, saying why: no replica sends it; what was sent stays sent,
    and others' messages stay pending."""
    await store.upsert_people([ANNA, ANNA_AGAIN, BEN])
    first = message("u1", kind="acknowledge")
    await store.decide([first], {}, 1)
    await store.update_items([sent(first)])
    later = [message("u1", kind="update-1"), message("crm-7"), message("u2")]
    await store.decide(later, {}, 1)
    await store.unsubscribe("u1", ANNA.email, 200.0)
    items = {item.key: item for item in await store.outbox_items(1)}
    assert items[first.key].status == SENT
    for gone in (later[0].key, later[1].key):
        assert (items[gone].status, items[gone].last_error) == (
            UNDELIVERABLE,
            "unsubscribed before it was sent",
        )
    assert items[later[2].key].status == PENDING
    due = await store.due(1000.0, 10)
    assert [item.person_id for item in due] == ["u2"]
