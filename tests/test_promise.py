"""The promise is kept: a resolved message without an explanation promises one, on-call is
reminded until it is written, and everyone told gets it once; one given before the fix goes
into the resolved message instead. Real App, real SMTP (aiosmtpd), a real apprise endpoint,
real SQLite (and PostgreSQL for the store's part), on a fake clock."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from clock import FakeClock
from fake_twilio import WebhookReceiver
from killable import Killable, until
from process import free_port, run_cli
from running import TOKEN, Replica, sending_to, start_replica
from targets import Mode, Target
from world import ALICE, BOB, DANA, MESSAGES, write_config

from monitor.demo.mailcatcher import CaughtMessage, MailCatcher
from monitor.incidents.correlation import Incident, Member
from monitor.model import ProbeResult
from monitor.store import ExplanationFinal, Store
from monitor.web.server import build_web_app

DAY = 86400.0
EXPLANATION = (
    "A card processor update we installed sent every payment to a server that had been "
    "switched off. From now on each update is tried on a copy of the payment system first."
)


# the store: both backends ----------------------------------------------------------------------


@pytest.fixture
async def store(each_store: Store) -> Store:
    """A store of each backend holding incident 1, resolved."""
    await each_store.save_incident(
        Incident(1, 1000.0, (Member("payment", 1000.0, 2000.0),), "payment", resolved_at=2000.0)
    )
    return each_store


async def test_an_explanation_may_be_replaced_until_it_goes_to_customers(store: Store) -> None:
    """Posting again replaces the text until the messages carrying it start, then refuses."""
    await store.explain(1, "first words", 3000.0)
    replaced = await store.explain(1, "better words", 3100.0)
    assert (replaced.text, replaced.explained_at) == ("better words", 3100.0)
    settled = await store.settle_for_resolution(1, 3200.0)
    assert (settled.told_at, settled.promised_at) == (3200.0, None)  # carried, no promise
    with pytest.raises(ExplanationFinal):
        await store.explain(1, "too late", 3300.0)
    assert (await store.explanation(1)) == settled


async def test_a_resolution_without_explanation_makes_one_promise(store: Store) -> None:
    """The first resolved pass promises; a re-run or a later explanation keeps that promise
    open (the resolved messages already promised) until it is kept."""
    assert await store.explanation(1) is None
    promised = await store.settle_for_resolution(1, 3000.0)
    assert (promised.promised_at, promised.told_at, promised.promise_open) == (3000.0, None, True)
    await store.explain(1, EXPLANATION, 3500.0)
    again = await store.settle_for_resolution(1, 3600.0)
    assert (again.promised_at, again.told_at) == (3000.0, None)
    assert [p.incident_id for p in await store.open_promises()] == [1]
    started = await store.start_explaining(1, 4000.0)
    assert started.told_at == 4000.0
    await store.keep_promise(1, 4100.0)
    kept = await store.explanation(1)
    assert kept is not None
    assert (kept.kept_at, kept.promise_open) == (4100.0, False)
    assert await store.open_promises() == []


async def test_a_reminder_is_taken_once_a_period(store: Store) -> None:
    """Of two callers taking the same reminder, one gets it; the next is taken a period on."""
    await store.settle_for_resolution(1, 3000.0)
    assert await store.take_reminder(1, 9000.0, 9000.0 - DAY)
    assert not await store.take_reminder(1, 9000.0, 9000.0 - DAY)
    assert not await store.take_reminder(1, 9000.0 + DAY - 1, 9000.0 - 1)
    assert await store.take_reminder(1, 9000.0 + DAY, 9000.0)


async def test_a_pruned_incident_takes_its_explanation_and_promise_with_it(store: Store) -> None:
    """Past retention the incident goes as before, its explanation and promise with it."""
    await store.settle_for_resolution(1, 3000.0)
    await store.explain(1, EXPLANATION, 4000.0)
    assert await store.prunable_incidents(10 * DAY) == [1]
    while await store.prune_incident(1, 10 * DAY):
        pass
    assert await store.explanation(1) is None
    assert await store.open_promises() == []


# the monitor: a real App ------------------------------------------------------------------------


@dataclass
class Stage:
    """Two replicas of the monitor on one database, one fake clock, a mail catcher and the
    team's apprise endpoint."""

    clock: FakeClock
    catcher: MailCatcher
    team: WebhookReceiver
    leader: Replica
    other: Replica

    async def tick(self, replica: Replica | None = None) -> None:
        """A notifier tick of ``replica`` (the leader by default) after the probes' flush."""
        # The heartbeats the apps beat every 2 s of real time, at the fake clock's moment: their
        # holds are renewed, so delivery sends at once rather than at the next real beat.
        for each in (self.leader, self.other):
            await each.app.membership.beat()
        app = (replica or self.leader).app
        await app.monitor.flush()
        await app.notifier.tick()

    async def results(self, system: str, ok: bool, rounds: int) -> None:
        for _ in range(rounds):
            self.leader.app.monitor.observe(
                ProbeResult(
                    system, ok, "status 200" if ok else "status 503", self.clock.now(), 0.01
                )
            )
            await self.tick()
            self.clock.advance(15.0)

    async def sent(self, count: int) -> None:
        """Wait until ``count`` mails have arrived (whichever replica's shard sent them)."""
        for replica in (self.leader, self.other):
            replica.app.delivery.wake()
        async with asyncio.timeout(20):
            await self.catcher.wait_for_messages(count)

    async def notices(self) -> list[dict[str, Any]]:
        """What on-call has been told so far, every notice sent."""
        for replica in (self.leader, self.other):
            async with asyncio.timeout(20):
                await replica.app.oncall.queue.join()
        return [json.loads(r.body) for r in self.team.received]

    def mail(self, kind: str) -> list[CaughtMessage]:
        return [m for m in self.catcher.messages if f".{kind}." in m.message["Message-ID"]]


@asynccontextmanager
async def stage(tmp_path: Path) -> AsyncIterator[Stage]:
    async with AsyncExitStack() as stack:
        catcher = await stack.enter_async_context(MailCatcher())
        team = await stack.enter_async_context(WebhookReceiver())
        checks = tmp_path / "checks"
        write_config(checks)
        with (checks / "monitor.yaml").open("a") as settings:
            url = team.url("/team").replace("http://", "json://")
            settings.write(f'oncall: ["{url}"]\nexplain_within: 3d\n')
        clock = FakeClock()
        environ = {"MONITOR_API_TOKEN": TOKEN, **sending_to(catcher)}
        replicas = [
            await start_replica(stack, checks, tmp_path / "monitor.db", clock, environ, name=name)
            for name in ("a", "b")
        ]
        leader, other = sorted(replicas, key=lambda r: not r.app.membership.leads())
        assert (leader.app.membership.leads(), other.app.membership.leads()) == (True, False)
        await leader.app.store.upsert_people([ALICE, BOB, DANA])
        yield Stage(clock, catcher, team, leader, other)


async def outage_then_fix(stage: Stage) -> int:
    """Payment fails past notify_after (Alice and Dana are told), then recovers; the id."""
    await stage.results("payment", False, 3)
    stage.clock.advance(60.0)
    await stage.tick()
    await stage.sent(2)
    await stage.results("payment", True, 2)
    await stage.tick()
    await stage.sent(4)
    return (await stage.leader.app.store.latest_incidents(1))[0].id


async def test_a_promise_made_at_the_fix_is_reminded_then_kept_once_for_everyone_told(
    tmp_path: Path,
) -> None:
    """Resolved without an explanation: the resolved message promises one; on-call is reminded
    after explain_within, then daily, once across two replicas; the explanation posted to the
    other replica goes to each person told exactly once, and the promise is kept."""
    async with stage(tmp_path) as on:
        number = await outage_then_fix(on)
        resolved = on.mail("resolved")
        assert sorted(m.rcpt_tos[0] for m in resolved) == ["alice@example.com", "dana@example.com"]
        for message in resolved:
            assert "I'll write to you once we know" in message.text
            assert "If you'd like to know what we find" not in message.text
            assert "If you need us meanwhile, call 0800 123 456" in message.text
        shown = await on.other.get_json(f"/api/v1/incidents/{number}")
        assert shown["explanation"]["promise"] == "open"
        assert await on.other.metric("monitor_promises_open") == 1

        on.clock.advance(3 * DAY - 600)
        await on.tick()
        assert [n for n in await on.notices() if "still owed" in n["title"]] == []
        on.clock.advance(600)
        await on.tick()
        await on.tick(on.other)  # a second replica leading for a moment reminds nobody again
        await on.tick()
        on.clock.advance(DAY / 2)
        await on.tick()
        reminders = [n for n in await on.notices() if "still owed" in n["title"]]
        assert len(reminders) == 1
        assert f"monitor incident explain {number} FILE" in reminders[0]["message"]
        on.clock.advance(DAY / 2)
        await on.tick(on.other)
        await on.tick()
        reminders = [n for n in await on.notices() if "still owed" in n["title"]]
        assert len(reminders) == 2

        posted = await on.other.call(
            "POST", f"/api/v1/incidents/{number}/explanation", {"text": EXPLANATION}
        )
        assert posted.status == 200, await posted.text()
        await on.tick()
        await on.tick()
        await on.sent(6)
        explained = on.mail("explanation")
        assert sorted(m.rcpt_tos[0] for m in explained) == ["alice@example.com", "dana@example.com"]
        assert {m.message["Message-ID"] for m in explained} == {
            f"<incident-{number}.explanation.alice@example.com>",
            f"<incident-{number}.explanation.dana@example.com>",
        }
        assert all(EXPLANATION[:60] in " ".join(m.text.split()) for m in explained)
        assert [m for m in on.catcher.messages if "bob@example.com" in m.rcpt_tos] == []
        shown = await on.other.get_json(f"/api/v1/incidents/{number}")
        assert shown["explanation"]["promise"] == "kept"
        assert shown["messages"]["explanation"] == {"sent": 2}
        assert await on.leader.metric("monitor_promises_open") == 0

        again = await on.other.call(
            "POST", f"/api/v1/incidents/{number}/explanation", {"text": "other"}
        )
        assert again.status == 409
        assert "can no longer be replaced" in (await again.json())["error"]
        on.clock.advance(5 * DAY)
        await on.tick()
        assert len([n for n in await on.notices() if "still owed" in n["title"]]) == 2
        assert len(on.mail("explanation")) == 2


async def test_an_explanation_before_the_fix_goes_into_the_resolved_message_and_nothing_is_promised(
    tmp_path: Path,
) -> None:
    """Given while the incident is open, the explanation is in each resolved message: no
    promise, no explanation message, no reminder; the status page shows it, escaped."""
    async with stage(tmp_path) as on:
        await on.results("payment", False, 3)
        on.clock.advance(60.0)
        await on.tick()
        await on.sent(2)
        number = (await on.leader.app.store.latest_incidents(1))[0].id
        given = f"{EXPLANATION} <b>Sorry</b>"
        posted = await on.other.call(
            "POST", f"/api/v1/incidents/{number}/explanation", {"text": "draft"}
        )
        assert posted.status == 200
        posted = await on.other.call(
            "POST", f"/api/v1/incidents/{number}/explanation", {"text": given}
        )
        assert (await posted.json())["explanation"]["text"] == given  # replaced: not yet sent
        await on.results("payment", True, 2)
        await on.tick()
        await on.sent(4)
        for message in on.mail("resolved"):
            assert (
                "what we're changing so it doesn't happen again: A card processor" in message.text
            )
            assert "I'll write to you once we know" not in message.text
        shown = await on.other.get_json(f"/api/v1/incidents/{number}")
        assert (shown["explanation"]["promise"], shown["explanation"]["final"]) == ("none", True)
        assert await on.leader.metric("monitor_promises_open") == 0
        refused = await on.other.call(
            "POST", f"/api/v1/incidents/{number}/explanation", {"text": "new"}
        )
        assert refused.status == 409

        on.clock.advance(5 * DAY)
        await on.tick()
        await on.tick()
        assert on.mail("explanation") == []
        assert [n for n in await on.notices() if "still owed" in n["title"]] == []
        page = await (await on.other.client.get("/")).text()
        assert "What happened, and what we are changing:" in page
        assert "&lt;b&gt;Sorry&lt;/b&gt;" in page
        assert "<b>Sorry</b>" not in page
        assert "alice" not in page.lower()


async def test_the_explanation_route_refuses_what_it_cannot_use(tmp_path: Path) -> None:
    """401 without the token, 404 for an unknown incident, 422 for an empty text, 400 for a
    body of the wrong shape, each naming what is wrong."""
    async with stage(tmp_path) as on:
        await on.results("payment", False, 3)
        number = (await on.leader.app.store.latest_incidents(1))[0].id
        path = f"/api/v1/incidents/{number}/explanation"
        assert (await on.other.call("POST", path, {"text": EXPLANATION}, token=None)).status == 401
        assert (
            await on.other.call("POST", path, {"text": EXPLANATION}, token="wrong")
        ).status == 401
        missing = await on.other.call(
            "POST", "/api/v1/incidents/999/explanation", {"text": EXPLANATION}
        )
        assert missing.status == 404
        assert (await missing.json())["error"] == "no incident 999"
        empty = await on.other.call("POST", path, {"text": "  \n "})
        assert empty.status == 422
        body = await empty.json()
        assert body["field"] == "text"
        assert "empty" in body["error"]
        shaped = await on.other.call("POST", path, {"text": EXPLANATION, "send": True})
        assert shaped.status == 400
        assert await on.leader.app.store.explanation(number) is None


async def test_monitor_incident_explain_reads_a_file_and_show_tells_the_promise(
    tmp_path: Path,
) -> None:
    """`monitor incident explain ID FILE` publishes the file through the API; `monitor
    incident ID` then shows the explanation and the promise; an empty file is refused."""
    async with stage(tmp_path) as on:
        number = await outage_then_fix(on)
        server = TestServer(build_web_app(on.other.app.web_services), port=0)
        await server.start_server()
        try:
            url = str(server.make_url("/"))
            env = {"MONITOR_URL": url, "MONITOR_API_TOKEN": TOKEN}
            shown = await run_cli("incident", str(number), env=env)
            assert "Promise:   open since" in shown[1], shown
            empty = tmp_path / "empty.txt"
            empty.write_text("\n")
            code, _, err = await run_cli("incident", "explain", str(number), str(empty), env=env)
            assert code == 2
            assert f"{empty} is empty" in err
            text = tmp_path / "explanation.txt"
            text.write_text(EXPLANATION + "\n")
            code, out, err = await run_cli("incident", "explain", str(number), str(text), env=env)
            assert code == 0, err
            assert "Everyone told gets it once" in out
            await on.tick()
            await on.sent(6)
            code, out, err = await run_cli("incident", str(number), env=env)
            assert "Promise:   kept" in out, out
            assert EXPLANATION in out
            assert "2 explanation messages sent" in out
        finally:
            await server.close()


# the real process, killed -----------------------------------------------------------------------

PEOPLE = 600
SETTINGS = """\
org: {name: Example Ltd, support_email: help@example.com}
notify_after: 0s
correlation_window: 5m
"""
PAYMENT = """\
name: payment
title: Online payments
every: 1s
timeout: 500ms
fail_after: 2
recover_after: 1
probe: {http: {url: "%s", expect: {status: [200], body_contains: ok}}}
"""


async def test_killed_mid_explanation_fan_out_everyone_told_gets_exactly_one_explanation(
    tmp_path: Path,
) -> None:
    """SIGKILL while the explanation messages go out; after a restart each person told has
    exactly one explanation, under one Message-ID, and nothing is left pending."""
    csv = tmp_path / "people.csv"
    csv.write_text(
        "id,name,email,phone,systems\n"
        + "".join(f"p{i},Person {i},p{i}@example.com,,payment\n" for i in range(PEOPLE))
    )
    db = tmp_path / "monitor.db"
    code, _, err = await run_cli("users", "import", str(csv), "--db", str(db))
    assert code == 0, err
    checks = tmp_path / "checks"
    checks.mkdir()
    port = free_port()
    async with MailCatcher() as catcher, Target() as target:
        await target.set_mode(Mode.ERROR)
        (checks / "monitor.yaml").write_text(SETTINGS)
        (checks / "payment.yaml").write_text(PAYMENT % target.url_for("/healthz"))
        monitor = Killable(
            {
                "MONITOR_CONFIG": str(checks),
                "MONITOR_MESSAGES": str(MESSAGES),
                "MONITOR_DB": str(db),
                "MONITOR_LISTEN": f"127.0.0.1:{port}",
                "MONITOR_SMTP_URL": catcher.url,
                "MONITOR_SMTP_FROM": "status@example.com",
                "MONITOR_API_TOKEN": TOKEN,
            },
            f"http://127.0.0.1:{port}",
            TOKEN,
        )
        await monitor.start()
        try:
            async with asyncio.timeout(120):
                await catcher.wait_for_messages(PEOPLE)  # the acknowledgements
                await target.set_mode(Mode.HEALTHY)
                await catcher.wait_for_messages(2 * PEOPLE)  # the resolved messages
            promised = await until(
                "the promise is made",
                lambda: monitor.get("/api/v1/incidents/1"),
                explain=monitor.tail,
            )
            assert promised["explanation"]["promise"] == "open", promised
            catcher.delay = 0.004  # a slightly slow mail server: the fan-out takes a while
            file = tmp_path / "explanation.txt"
            file.write_text(EXPLANATION)
            env = {"MONITOR_URL": monitor.base_url, "MONITOR_API_TOKEN": TOKEN}
            code, _, err = await run_cli("incident", "explain", "1", str(file), env=env)
            assert code == 0, err
            async with asyncio.timeout(120):
                await catcher.wait_for_messages(2 * PEOPLE + PEOPLE // 4)
            monitor.kill("mid explanation fan-out")
            await monitor.killed("mid explanation fan-out")
            killed_at = len(catcher.messages) - 2 * PEOPLE
            assert killed_at < PEOPLE, "the fan-out finished before the kill; nothing was tested"

            await monitor.start()

            def explained() -> set[str]:
                return {
                    r
                    for m in catcher.messages
                    if ".explanation." in m.message["Message-ID"]
                    for r in m.rcpt_tos
                }

            await until("everyone has the explanation", lambda: len(explained()) == PEOPLE)
            kept = await until(
                "the promise is kept",
                lambda: _kept(monitor),
                explain=monitor.tail,
            )
            assert kept["counts"]["pending"] == 0
        finally:
            await monitor.stop()

    ids: dict[str, set[str]] = {}
    for message in catcher.messages:
        if ".explanation." in message.message["Message-ID"]:
            for rcpt in message.rcpt_tos:
                ids.setdefault(rcpt, set()).add(str(message.message["Message-ID"]))
    assert len(ids) == PEOPLE
    for rcpt, found in ids.items():
        assert found == {f"<incident-1.explanation.{rcpt.split('@')[0]}@example.com>"}


async def _kept(monitor: Killable) -> dict[str, Any] | None:
    shown = await monitor.get("/api/v1/incidents/1")
    if shown is None or shown["explanation"]["promise"] != "kept" or shown["counts"]["pending"]:
        return None
    return dict(shown)
