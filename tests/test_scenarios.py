"""Whole outages on a fake clock: who hears what, once, through a real SMTP server."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from pathlib import Path

import aiohttp
from fake_twilio import FakeTwilio
from world import ALICE, BOB, CHARLIE, DANA, World, world

from monitor.delivery.channels import SmsChannel
from monitor.model import Attempt, Person
from monitor.store import SQLiteStore


def subjects(w: World, person: Person) -> list[str]:
    assert person.email is not None
    return [str(m.message["Subject"]) for m in w.mail_to(person.email)]


def message_ids(w: World, person: Person) -> list[str]:
    assert person.email is not None
    return [str(m.message["Message-ID"]) for m in w.mail_to(person.email)]


async def test_payment_and_login_failing_together_is_one_incident_with_one_message_each(
    tmp_path: Path,
) -> None:
    """Payment and login fail together: one incident; Alice, Bob and Dana get one
    acknowledgement each naming their own systems; Charlie (crm) gets nothing."""
    async with world(tmp_path) as w:
        await w.people(ALICE, BOB, CHARLIE, DANA)
        await w.fail(["payment", "login"])
        await w.wait(120)
        assert len(await w.incidents()) == 1
        assert (await w.incidents())[0].systems == ("login", "payment")
        for person in (ALICE, BOB, DANA):
            assert len(w.mail_to(person.email or "")) == 1, person.id
        assert w.mail_to("charlie@example.com") == []
        alice = w.mail_to("alice@example.com")[0]
        assert "Online payments".lower() in alice.text.lower()
        assert "Pay by phone" in alice.text
        assert "Signing in" not in alice.text
        assert "Alice" in alice.text
        dana = w.mail_to("dana@example.com")[0]
        assert "online payments" in dana.text.lower()
        assert "signing in to your account" in dana.text.lower()
        assert message_ids(w, ALICE) == [
            f"<incident-{(await w.incidents())[0].id}.acknowledge.alice@example.com>"
        ]


async def test_recovery_sends_one_resolved_message_to_each_person_told(tmp_path: Path) -> None:
    """When both systems pass again, each acknowledged person gets exactly one follow-up."""
    async with world(tmp_path) as w:
        await w.people(ALICE, BOB, CHARLIE, DANA)
        await w.fail(["payment", "login"])
        await w.wait(300)
        await w.recover(["payment", "login"])
        await w.wait(600)
        incident = (await w.incidents())[0]
        assert incident.resolved_at is not None
        for person in (ALICE, BOB, DANA):
            ids = message_ids(w, person)
            assert ids == [
                f"<incident-{incident.id}.acknowledge.{person.id}@example.com>",
                f"<incident-{incident.id}.resolved.{person.id}@example.com>",
            ]
        resolved = w.mail_to("alice@example.com")[1]
        assert "fixed" in resolved.text.lower() or "working again" in resolved.text.lower()
        assert w.mail_to("charlie@example.com") == []


async def test_a_blip_shorter_than_notify_after_sends_nothing(tmp_path: Path) -> None:
    """DOWN for 30 seconds, then UP: an incident is recorded, but no customer hears of it."""
    async with world(tmp_path) as w:
        await w.people(ALICE, BOB)
        await w.fail(["payment"])  # DOWN on the third failure
        await w.recover(["payment"])  # UP 30 s later, before notify_after (60 s)
        await w.wait(3600)
        assert len(await w.incidents()) == 1
        assert (await w.incidents())[0].resolved_at is not None
        assert w.catcher.messages == []


async def test_flapping_for_ten_minutes_sends_one_acknowledgement_and_one_resolved(
    tmp_path: Path,
) -> None:
    """A system going DOWN and UP over and over for ten minutes is one incident: each person
    hears once that it is broken and once that it is fixed."""
    async with world(tmp_path) as w:
        await w.people(ALICE)
        start = w.clock.now()
        while w.clock.now() - start < 600:
            await w.fail(["payment"])
            await w.recover(["payment"])
        await w.wait(3600)
        assert len(await w.incidents()) == 1
        kinds = [mid.split(".")[1] for mid in message_ids(w, ALICE)]
        assert kinds == ["acknowledge", "resolved"]


async def test_crm_down_under_login_names_crm_the_cause_and_tells_login_users_about_login(
    tmp_path: Path,
) -> None:
    """crm fails and login (which depends on it) fails with it: the cause is crm; Bob hears
    that signing in is broken, with login's workaround, Charlie hears about his orders."""
    async with world(tmp_path, login_depends_on_crm=True) as w:
        await w.people(BOB, CHARLIE)
        await w.fail(["login"])
        await w.fail(["crm"])
        await w.wait(120)
        incident = (await w.incidents())[0]
        assert len(await w.incidents()) == 1
        assert incident.cause == "crm"
        bob = w.mail_to("bob@example.com")
        assert len(bob) == 1
        assert "signing in to your account" in bob[0].text.lower()
        assert "Your account and your data are safe." in bob[0].text
        charlie = w.mail_to("charlie@example.com")
        assert len(charlie) == 1
        assert "order history" in charlie[0].text.lower()


async def test_someone_who_failed_to_pay_half_an_hour_before_is_acknowledged(
    tmp_path: Path,
) -> None:
    """Eve is no subscriber, but the shop reported her failed purchase 30 minutes before the
    outage: she hears from us, with what she was trying to do."""
    eve = Person("eve", "Eve Adams", "eve@example.com")
    async with world(tmp_path) as w:
        await w.report(eve, "payment", "buy the LinkedIn course", ago=1800)
        await w.fail(["payment"])
        await w.wait(120)
        mail = w.mail_to("eve@example.com")
        assert len(mail) == 1
        assert "buy the LinkedIn course" in mail[0].text
        assert "Eve" in mail[0].text


async def test_an_attempt_older_than_the_lookback_does_not_count(tmp_path: Path) -> None:
    """An attempt three hours before the incident (lookback 2h) does not make Eve affected."""
    eve = Person("eve", "Eve Adams", "eve@example.com")
    async with world(tmp_path) as w:
        await w.report(eve, "payment", "buy the LinkedIn course", ago=3 * 3600)
        await w.fail(["payment"])
        await w.wait(120)
        assert w.mail_to("eve@example.com") == []


async def test_the_count_on_call_is_given_is_the_number_of_people_told(tmp_path: Path) -> None:
    """On-call's "N people will be told" counts each person once: Alice (subscriber, also
    reported), Dana (subscriber of both), Eve (reported only), not Fay (reported too long ago),
    not Bob or Charlie (other systems); and it is how many acknowledgements go out."""
    eve = Person("eve", "Eve Adams", "eve@example.com")
    fay = Person("fay", "Fay Lu", "fay@example.com")
    async with world(tmp_path) as w:
        await w.people(ALICE, BOB, CHARLIE, DANA)
        await w.report(ALICE, "payment", "renew her membership", ago=60)
        await w.report(eve, "payment", "buy the LinkedIn course", ago=600)
        await w.report(fay, "payment", "pay an invoice", ago=3 * 3600)
        await w.fail(["payment"])
        [incident] = await w.incidents()
        told_on_call = await w.notifier.audience_size(incident)
        await w.wait(120)
        acknowledged = {to for m in w.catcher.messages for to in m.rcpt_tos}
        assert acknowledged == {"alice@example.com", "dana@example.com", "eve@example.com"}
        assert told_on_call == len(acknowledged)


async def test_a_subscriber_also_reported_is_one_person_messaged_once(tmp_path: Path) -> None:
    """Alice is a payment subscriber and also reported failing to pay: one acknowledgement,
    which mentions what she tried to do."""
    async with world(tmp_path) as w:
        await w.people(ALICE)
        await w.report(ALICE, "payment", "renew her membership", ago=60)
        await w.fail(["payment"])
        await w.wait(120)
        mail = w.mail_to("alice@example.com")
        assert len(mail) == 1
        assert "renew her membership" in mail[0].text


async def test_someone_reported_during_the_incident_is_acknowledged_then(tmp_path: Path) -> None:
    """A failed attempt reported while the incident is open gets that person their own
    acknowledgement at once, and a resolved message later."""
    eve = Person("eve", "Eve Adams", "eve@example.com")
    async with world(tmp_path) as w:
        await w.fail(["payment"])
        await w.wait(600)
        assert w.catcher.messages == []
        await w.report(eve, "payment", "pay an invoice")
        await w.settle()
        assert len(w.mail_to("eve@example.com")) == 1
        await w.recover(["payment"])
        await w.wait(60)
        assert [m.split(".")[1] for m in message_ids(w, eve)] == ["acknowledge", "resolved"]


async def test_a_person_whose_affected_systems_grow_gets_an_update_not_a_second_ack(
    tmp_path: Path,
) -> None:
    """Dana is told about payment; when login joins the incident she gets an update saying
    more is affected, never a second acknowledgement."""
    async with world(tmp_path) as w:
        await w.people(DANA)
        await w.fail(["payment"])
        await w.wait(120)
        await w.fail(["payment", "login"])
        await w.wait(60)
        ids = message_ids(w, DANA)
        assert [i.split(".")[1] for i in ids] == ["acknowledge", "update-1"]
        update = w.mail_to("dana@example.com")[1]
        assert "signing in to your account" in update.text.lower()


async def test_on_call_note_with_send_reaches_everyone_told(tmp_path: Path) -> None:
    """A note sent by on-call goes as an update to each acknowledged person, once."""
    async with world(tmp_path) as w:
        await w.people(ALICE, DANA)
        await w.fail(["payment"])
        await w.wait(120)
        incident = (await w.incidents())[0]
        note = "The card processor's update did not apply; we are rolling it back."
        await w.notifier.add_note(incident.id, note, send=True)
        await w.wait(60)
        for person in (ALICE, DANA):
            mail = w.mail_to(person.email or "")
            assert len(mail) == 2
            assert note in mail[1].text
        kinds = [e.kind for e in await w.store.timeline(incident.id)]
        assert "note" in kinds


async def test_a_long_outage_gets_a_periodic_update(tmp_path: Path) -> None:
    """Still broken a day later: everyone told hears from us again."""
    async with world(tmp_path) as w:
        await w.people(ALICE)
        await w.fail(["payment"])
        await w.wait(120)
        await w.wait(86400, step=600)
        kinds = [m.split(".")[1] for m in message_ids(w, ALICE)]
        assert kinds == ["acknowledge", "update-1"]


async def test_confirm_mode_waits_for_on_call_to_release(tmp_path: Path) -> None:
    """With customer_messages: confirm, nothing goes out until the incident is released."""
    async with world(tmp_path, mode="confirm") as w:
        await w.people(ALICE)
        await w.fail(["payment"])
        await w.wait(900)
        assert w.catcher.messages == []
        await w.notifier.release((await w.incidents())[0].id)
        await w.settle()
        assert len(w.mail_to("alice@example.com")) == 1


async def test_daily_limit_keeps_a_person_from_being_flooded(tmp_path: Path) -> None:
    """With a limit of 2 messages a day, a third incident's acknowledgement is not sent."""
    async with world(tmp_path, limit=2) as w:
        await w.people(ALICE)
        for _ in range(3):
            await w.fail(["payment"])
            await w.wait(120)
            await w.recover(["payment"])
            await w.wait(900)  # past the correlation window: the next one is a new incident
        assert len(await w.incidents()) == 3
        kinds = [m.split(".")[1] for m in message_ids(w, ALICE)]
        assert kinds == ["acknowledge", "resolved"]
        timeline = await w.store.timeline((await w.incidents())[2].id)
        assert any("over the daily limit: 1" in e.text for e in timeline)


async def test_mail_server_down_for_a_while_loses_nothing(tmp_path: Path) -> None:
    """SMTP is down for the whole outage; once it is back, every message arrives exactly once,
    acknowledgement before resolved."""
    async with world(tmp_path) as w:
        await w.people(ALICE, BOB, DANA)
        await w.catcher.stop()
        await w.fail(["payment", "login"])
        await w.wait(600)
        await w.recover(["payment", "login"])
        await w.wait(600)
        assert w.catcher.messages == []
        assert await w.store.pending_count() == 6
        await w.catcher.start()
        await w.wait(900)
        for person in (ALICE, BOB, DANA):
            kinds = [m.split(".")[1] for m in message_ids(w, person)]
            assert kinds == ["acknowledge", "resolved"], person.id
        assert await w.store.pending_count() == 0


async def test_no_such_mailbox_falls_back_to_sms(tmp_path: Path) -> None:
    """The mail server answers 550 for Alice: she gets the acknowledgement by SMS instead."""
    async with FakeTwilio() as twilio, aiohttp.ClientSession() as session:
        sms = SmsChannel(
            session, twilio.account_sid, twilio.auth_token, "+15550001111", base_url=twilio.base_url
        )
        async with world(tmp_path, sms=sms) as w:
            await w.people(ALICE)
            w.catcher.reject = {"alice@example.com"}
            await w.fail(["payment"])
            await w.wait(120)
            assert w.mail_to("alice@example.com") == []
            assert [m.to for m in twilio.messages] == ["+447700900001"]
            assert len(twilio.messages[0].body) <= 320
            assert "Alice" in twilio.messages[0].body


async def test_a_person_with_no_working_channel_is_recorded_undeliverable(
    tmp_path: Path,
) -> None:
    """Bob's mailbox does not exist and he has no phone: his message is marked undeliverable
    with the reason, not dropped."""
    async with world(tmp_path) as w:
        await w.people(BOB)
        w.catcher.reject = {"bob@example.com"}
        await w.fail(["login"])
        await w.wait(120)
        incident = (await w.incidents())[0]
        counts = await w.store.outbox_counts(incident.id)
        assert counts == {"acknowledge": {"undeliverable": 1}}
        item = (await w.store.outbox_items(incident.id))[0]
        assert "550" in item.last_error


async def test_a_restart_keeps_the_outage_and_sends_nothing_twice(tmp_path: Path) -> None:
    """DOWN before a restart is still DOWN (the same incident) after it; nobody is
    acknowledged twice and the resolved message still comes."""
    async with world(tmp_path) as w:
        await w.people(ALICE)
        await w.fail(["payment"])
        await w.wait(120)
        before = await w.incidents()
        await w.restart()
        assert w.monitor.states["payment"].health.value == "DOWN"
        await w.fail(["payment"])
        await w.wait(120)
        assert await w.incidents() == before
        await w.recover(["payment"])
        await w.wait(60)
        kinds = [m.split(".")[1] for m in message_ids(w, ALICE)]
        assert kinds == ["acknowledge", "resolved"]


def crowd(n: int) -> list[Person]:
    """``n`` subscribers of both payment and login."""
    return [
        Person(
            f"p{i:04d}", f"Person {i}", f"p{i:04d}@example.com", None, None, ("payment", "login")
        )
        for i in range(n)
    ]


async def turns_while(work: Awaitable[None]) -> int:
    """How many turns another task gets while ``work`` runs: a probe due meanwhile waits for
    the next one, so a long stretch without a turn is a late probe."""
    task = asyncio.ensure_future(work)
    turns = 0
    while not task.done():
        turns += 1
        await asyncio.sleep(0)
    await task
    return turns


async def test_going_through_people_already_told_lets_probes_run_in_between(
    tmp_path: Path,
) -> None:
    """An attempt reported during an outage makes the monitor look through everyone affected
    again. With 300 people already told it sends nothing new, and it gives other work (probes)
    a turn after each person rather than holding the loop for the whole crowd."""
    async with world(tmp_path) as w:
        people = crowd(300)
        await w.people(*people)
        await w.fail(["payment"])
        await w.wait(120)
        assert len(w.catcher.messages) == 300
        await w.report(people[0], "payment", "pay for the course")
        turns = await turns_while(w.notifier.tick())
        assert turns >= 300
        await w.settle()
        assert len(w.catcher.messages) == 300


async def test_one_system_recovering_while_another_is_down_does_not_go_through_everyone(
    tmp_path: Path,
) -> None:
    """Payment and login fail together; payment passes again while login is still down. No one
    can have become affected by that, so the monitor does not look through the 300 people it
    told again: nothing is sent, and the work is done within a few turns of the loop."""
    async with world(tmp_path) as w:
        await w.people(*crowd(300))
        await w.fail(["payment", "login"])
        await w.wait(120)
        assert len(w.catcher.messages) == 300
        for _ in range(2):
            w.result("payment", ok=True)
            w.result("login", ok=False)
            w.clock.advance(15)
        await w.monitor.flush()  # the notifier reads the transitions from the store
        turns = await turns_while(w.notifier.tick())
        assert turns < 30
        incident = (await w.incidents())[0]
        payment = incident.member("payment")
        assert incident.is_open
        assert payment is not None
        assert not payment.down
        await w.settle()
        assert len(w.catcher.messages) == 300


async def test_an_attempt_reported_to_another_replica_during_an_outage_is_told_once(
    tmp_path: Path,
) -> None:
    """During an outage Eve's failed payment is reported to another replica sharing the
    database (its own store): the notifier here notices it at its next tick and Eve gets one
    acknowledgement."""
    eve = Person("eve", "Eve Adams", "eve@example.com")
    async with world(tmp_path) as w:
        await w.people(ALICE)
        await w.fail(["payment"])
        await w.wait(120)
        assert len(w.mail_to("alice@example.com")) == 1
        other = SQLiteStore(w.db)
        await other.add_attempt(Attempt("payment", eve.id, "pay", w.clock.now()), eve)
        await other.close()
        await w.wait(30)
        assert len(w.mail_to("eve@example.com")) == 1
        assert len(w.mail_to("alice@example.com")) == 1
