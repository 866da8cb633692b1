"""Maintenance windows in the running monitor: two real Apps on one SQLite file, a fake clock,
real SMTP (aiosmtpd) and on-call's real apprise endpoint. Subscribers are told once before
the work, in their language and at their clock, and once after; a failure inside a window
tells no customer (on-call hears it, marked as in maintenance) unless it outlasts the window
by the grace; windows posted to one replica are every replica's; /metrics says which systems
are in maintenance; a bad window file is refused by line and the monitor keeps running."""

from __future__ import annotations

import asyncio
import json
import textwrap
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import feedparser
from clock import FakeClock
from fake_twilio import WebhookReceiver
from running import TOKEN, Replica, sending_to, start_replica
from world import ALICE, BOB, DANA, write_config

from monitor.demo.mailcatcher import CaughtMessage, MailCatcher
from monitor.model import Address, Person, ProbeResult
from monitor.store import OutboxItem

BERLIN = ZoneInfo("Europe/Berlin")
HANNA = Person(
    "hanna", "Hanna Schmidt", "hanna@example.com", None, None, ("payment",), "Europe/Berlin", "de"
)
# The fake clock starts on Friday 2027-01-15 at 08:00 UTC; the work is on Sunday night, Berlin
# time (UTC+1 in January): 01:00 to 03:00 UTC.
START = datetime(2027, 1, 17, 2, 0, tzinfo=BERLIN).timestamp()
END = datetime(2027, 1, 17, 4, 0, tzinfo=BERLIN).timestamp()
REF = "db-upgrade-202701170100"
WINDOW = """\
    name: db-upgrade
    systems: [payment]
    start: 2027-01-17 02:00
    end: 2027-01-17 04:00
    timezone: Europe/Berlin
    note: We are moving the payment database to a faster server.
    """


@dataclass
class Stage:
    clock: FakeClock
    catcher: MailCatcher
    team: WebhookReceiver
    leader: Replica
    other: Replica
    outcomes: list[OutboxItem] = field(default_factory=list)  # messages settled, either replica
    _settled: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        def outcome(item: OutboxItem, result: str, _address: Address | None) -> None:
            if result in ("sent", "undeliverable"):
                self.outcomes.append(item)
                self._settled.set()

        for replica in (self.leader, self.other):
            replica.app.delivery.on_outcome.append(outcome)

    async def settled(self, count: int) -> None:
        """Wait until ``count`` messages have their outcome recorded."""
        async with asyncio.timeout(20):
            while len(self.outcomes) < count:
                self._settled.clear()
                await self._settled.wait()

    async def tick(self, replica: Replica | None = None) -> None:
        for each in (self.leader, self.other):
            await each.app.membership.beat()
        app = (replica or self.leader).app
        await app.monitor.flush()
        await app.notifier.tick()

    async def at(self, moment: float) -> None:
        """The clock at ``moment``, and a tick."""
        self.clock.time = moment
        await self.tick()

    async def results(self, system: str, ok: bool, rounds: int) -> None:
        for _ in range(rounds):
            self.leader.app.monitor.observe(
                ProbeResult(
                    system, ok, "status 200" if ok else "status 503", self.clock.now(), 0.01
                )
            )
            await self.tick()
            self.clock.advance(15.0)

    async def sent(self, count: int) -> list[CaughtMessage]:
        for replica in (self.leader, self.other):
            replica.app.delivery.wake()
        async with asyncio.timeout(20):
            return await self.catcher.wait_for_messages(count)

    async def quiet(self) -> list[CaughtMessage]:
        """Every mail caught, once whatever was due has had its chance to go."""
        for replica in (self.leader, self.other):
            while await replica.app.delivery.run_once():
                pass
        return list(self.catcher.messages)

    async def notices(self) -> list[dict[str, Any]]:
        for replica in (self.leader, self.other):
            async with asyncio.timeout(20):
                await replica.app.oncall.queue.join()
        return [json.loads(r.body) for r in self.team.received]

    def mail(self, kind: str) -> dict[str, CaughtMessage]:
        """The caught mails whose Message-ID says ``kind`` (``.notice.``), by recipient."""
        return {
            m.rcpt_tos[0]: m
            for m in self.catcher.messages
            if f".{kind}." in m.message["Message-ID"]
        }


PUBLIC = "https://status.example.com"
LINK_SECRET = "a-link-secret-of-forty-characters-000000"


@asynccontextmanager
async def stage(
    tmp_path: Path, window: str | None = WINDOW, links: bool = False
) -> AsyncIterator[Stage]:
    """Two replicas on one file with ``window`` in checks/maintenance/db.yaml; ``links``: with
    public_url and MONITOR_LINK_SECRET (the subscribe form, manage links)."""
    async with AsyncExitStack() as stack:
        catcher = await stack.enter_async_context(MailCatcher())
        team = await stack.enter_async_context(WebhookReceiver())
        checks = tmp_path / "checks"
        write_config(checks)
        with (checks / "monitor.yaml").open("a") as settings:
            url = team.url("/team").replace("http://", "json://")
            settings.write(f'oncall: ["{url}"]\nmaintenance_grace: 15m\n')
            if links:
                settings.write(f"public_url: {PUBLIC}\n")
        if window is not None:
            (checks / "maintenance").mkdir()
            (checks / "maintenance" / "db.yaml").write_text(textwrap.dedent(window))
        clock = FakeClock()
        environ = {
            "MONITOR_API_TOKEN": TOKEN,
            **sending_to(catcher),
            **({"MONITOR_LINK_SECRET": LINK_SECRET} if links else {}),
        }
        replicas = [
            await start_replica(stack, checks, tmp_path / "monitor.db", clock, environ, name=name)
            for name in ("a", "b")
        ]
        leader, other = sorted(replicas, key=lambda r: not r.app.membership.leads())
        await leader.app.store.upsert_people([ALICE, BOB, DANA, HANNA])
        yield Stage(clock, catcher, team, leader, other)


def flat(text: str) -> str:
    return " ".join(text.split())


async def test_subscribers_are_told_once_before_in_their_language_and_zone_and_once_after(
    tmp_path: Path,
) -> None:
    """A day before the work each subscriber of its systems gets one notice (Alice in English
    at UTC, Hanna in German at Berlin time; Bob, of another system, nothing), whichever replica
    ticks, with the Message-ID its occurrence gives; once it is over, each of them one note."""
    async with stage(tmp_path) as on:
        await on.at(START - 86400 - 1)
        assert await on.quiet() == []
        await on.at(START - 86400)
        await on.tick()
        await on.tick(on.other)  # a second replica leading for a moment decides nothing again
        await on.sent(3)
        notices = on.mail("notice")
        assert sorted(notices) == ["alice@example.com", "dana@example.com", "hanna@example.com"]
        alice, hanna = notices["alice@example.com"], notices["hanna@example.com"]
        assert alice.message["Message-ID"] == f"<maintenance-{REF}.notice.alice@example.com>"
        assert (
            alice.subject
            == "Planned work on Online payments tomorrow from 1:00 AM UTC to 3:00 AM UTC"
        )
        text = flat(alice.text)
        assert "We are moving the payment database to a faster server." in text
        assert "Pay by phone on 0800 123 456" in text  # what they can do meanwhile
        assert "call 0800 123 456 or email help@example.com" in text  # whom to contact
        assert "morgen von 02:00 Uhr bis 04:00 Uhr" in flat(hanna.text)
        assert "Guten Tag Hanna Schmidt" in hanna.text
        assert '<html lang="de"' in (hanna.html or "")

        await on.at(END - 1)
        assert len(await on.quiet()) == 3
        await on.at(END)
        await on.tick(on.other)
        await on.sent(6)
        over = on.mail("over")
        assert sorted(over) == sorted(notices)
        assert "works as usual again" in flat(over["alice@example.com"].text)
        assert "wieder wie gewohnt" in flat(over["hanna@example.com"].text)
        await on.at(END + 86400)
        assert len(await on.quiet()) == 6
        # Retention: a week after it is over, its messages go (the leader prunes), and who
        # was told: the record with them.
        await on.settled(6)
        await on.at(END + 8 * 86400)  # the heartbeats keep the lead where it was
        await on.leader.app._prune()
        store = on.other.app.store
        assert await store.outbox_items(-1) == []
        assert [p async for p in store.told_pages(-1)] == []


async def test_a_failure_inside_the_window_tells_no_customer_and_on_call_sees_it_marked(
    tmp_path: Path,
) -> None:
    """Payment failing during the work opens an incident on-call hears of, marked in
    maintenance, and that no customer hears of, long past notify_after; recovering within the
    window it resolves telling nobody, and the note that the work is over goes as planned."""
    async with stage(tmp_path) as on:
        await on.at(START - 86400)
        await on.sent(3)
        on.clock.time = START + 600
        await on.results("payment", False, 3)
        await on.at(START + 3600)
        notices = await on.notices()
        opened = [n for n in notices if "opened" in n["title"]]
        assert [n["title"] for n in opened] == [
            "Incident 1 opened: Online payments is down (in maintenance)"
        ]
        assert "window db-upgrade, until 2027-01-17 03:00 UTC" in opened[0]["message"]
        assert "still down 15 minutes after the window" in opened[0]["message"]
        assert len(await on.quiet()) == 3  # the notices alone
        detail = await (await on.other.client.get("/api/v1/incidents/1")).json()
        said = [e["text"] for e in detail["timeline"] if e["kind"] == "maintenance"]
        assert said == [
            "Online payments: in maintenance (db-upgrade, until 2027-01-17 03:00 UTC); customers "
            "are not told unless it is still down 15 minutes after"
        ]
        await on.results("payment", True, 2)
        await on.at(END)
        await on.sent(6)
        assert len(on.mail("over")) == 3
        assert len(await on.quiet()) == 6  # no acknowledgement, no resolved message


async def test_a_failure_that_outlasts_the_window_by_the_grace_is_told_as_usual(
    tmp_path: Path,
) -> None:
    """Still down when the work should be over, no note says it is over; 15 minutes on, the
    incident is told as any other (each subscriber acknowledged), and its fix as usual."""
    async with stage(tmp_path) as on:
        await on.at(START - 86400)
        await on.sent(3)
        on.clock.time = START + 600
        await on.results("payment", False, 3)
        await on.at(END + 899)
        assert len(await on.quiet()) == 3
        await on.at(END + 900)
        await on.sent(6)
        acknowledged = on.mail("acknowledge")
        assert sorted(acknowledged) == [
            "alice@example.com",
            "dana@example.com",
            "hanna@example.com",
        ]
        assert on.mail("over") == {}
        detail = await (await on.leader.client.get("/api/v1/incidents/1")).json()
        said = [e["text"] for e in detail["timeline"] if e["kind"] == "maintenance"]
        assert said[-1] == (
            "Online payments: in maintenance no more (its window and 15 minutes after it are "
            "over, or the window was removed) and still down; customers are told as usual"
        )
        await on.results("payment", True, 2)
        await on.tick()
        await on.sent(9)
        assert sorted(on.mail("resolved")) == sorted(acknowledged)
        await on.at(END + 86400)
        assert len(await on.quiet()) == 9  # and no note that the work is over, ever


async def test_a_window_posted_to_one_replica_is_every_replicas_and_told_by_the_leader(
    tmp_path: Path,
) -> None:
    """POSTed to the other replica, a window is listed by both, shows in /metrics while under
    way, and its notices go once; writes need the token, a system no check declares is refused
    with "did you mean", a file's window cannot be removed here, and an API one can (under way:
    the note that it is over goes at once)."""
    async with stage(tmp_path, window=None) as on:
        body = {
            "systems": ["login"],
            "start": "2027-01-16T10:00:00Z",
            "end": "2027-01-16T11:00:00Z",
            "note": "We are updating the sign-in service.",
            "notify_before": "1h",
        }
        assert (await on.other.call("POST", "/api/v1/maintenance", body, token=None)).status == 401
        wrong = await on.other.call("POST", "/api/v1/maintenance", {**body, "systems": ["logn"]})
        assert (wrong.status, (await wrong.json())["field"]) == (400, "systems.0")
        assert "did you mean 'login'" in (await wrong.json())["error"]
        posted = await on.other.call("POST", "/api/v1/maintenance", body)
        assert posted.status == 201, await posted.text()
        window = await posted.json()
        assert (window["id"], window["source"], window["start"]) == (
            "1",
            "api",
            "2027-01-16T10:00:00Z",
        )
        listed = await (await on.leader.client.get("/api/v1/maintenance")).json()
        assert [w["id"] for w in listed["windows"]] == ["1"]
        assert 'monitor_maintenance_active{system="login"} 0.0' in await on.leader.metrics()

        start = datetime(2027, 1, 16, 10, tzinfo=ZoneInfo("UTC")).timestamp()
        await on.at(start - 3600)
        await on.sent(2)
        assert sorted(on.mail("notice")) == ["bob@example.com", "dana@example.com"]
        assert on.mail("notice")["bob@example.com"].message["Message-ID"] == (
            "<maintenance-1-202701161000.notice.bob@example.com>"
        )
        on.clock.time = start + 60
        assert 'monitor_maintenance_active{system="login"} 1.0' in await on.other.metrics()

        gone = await on.leader.call("DELETE", "/api/v1/maintenance/1")
        assert gone.status == 200, await gone.text()
        assert (await (await on.other.client.get("/api/v1/maintenance")).json())["windows"] == []
        missing = await on.leader.call("DELETE", "/api/v1/maintenance/1")
        assert missing.status == 404
        # Removed under way, with login working: the work ended early, and the note that it
        # is over goes at once to those told (the notice promised it), once.
        await on.at(start + 120)
        await on.sent(4)
        assert sorted(on.mail("over")) == ["bob@example.com", "dana@example.com"]
        await on.at(start + 7200)
        assert len(await on.quiet()) == 4


async def test_a_files_window_is_listed_and_cannot_be_removed_through_the_api(
    tmp_path: Path,
) -> None:
    """The file's window is listed with its file and next occurrence; DELETE says where to
    change it (409)."""
    async with stage(tmp_path) as on:
        listed = await (await on.other.client.get("/api/v1/maintenance")).json()
        [window] = listed["windows"]
        assert window["id"] == "db-upgrade"
        assert window["source"].endswith("maintenance/db.yaml")
        assert window["next"] == {"start": "2027-01-17T01:00:00Z", "end": "2027-01-17T03:00:00Z"}
        refused = await on.other.call("DELETE", "/api/v1/maintenance/db-upgrade")
        assert refused.status == 409
        assert "maintenance/db.yaml" in (await refused.json())["error"]


async def test_a_bad_window_file_is_refused_by_its_line_and_the_monitor_keeps_running(
    tmp_path: Path,
) -> None:
    """A window file with a typo is a reload refused with its file, line and field; the window
    of before still runs, and its notices still go."""
    async with stage(tmp_path) as on:
        bad = tmp_path / "checks" / "maintenance" / "db.yaml"
        bad.write_text(textwrap.dedent(WINDOW).replace("systems: [payment]", "systems: [paymnet]"))
        problems = on.leader.app.reload()
        assert [str(p) for p in problems] == [
            f"{bad}:2: systems[0]: no system is named 'paymnet' (did you mean 'payment'?)"
        ]
        status = await (await on.leader.client.get("/api/v1/status")).json()
        assert status["config"]["problems"][0]["line"] == 2
        await on.at(START - 86400)
        await on.sent(3)
        assert len(on.mail("notice")) == 3


async def test_a_window_file_edited_is_reloaded_and_its_new_time_told(tmp_path: Path) -> None:
    """Moving the work a week on in its file and reloading: the API lists the new time, and
    the notice goes a day before it, not before the old one."""
    async with stage(tmp_path) as on:
        moved = textwrap.dedent(WINDOW).replace("2027-01-17", "2027-01-24")
        (tmp_path / "checks" / "maintenance" / "db.yaml").write_text(moved)
        for replica in (on.leader, on.other):
            assert replica.app.reload() == []
        listed = await (await on.other.client.get("/api/v1/maintenance")).json()
        assert listed["windows"][0]["start"] == "2027-01-24T01:00:00Z"
        await on.at(START - 86400)
        assert await on.quiet() == []
        await on.at(START + 6 * 86400)
        await on.sent(3)
        assert {m.message["Message-ID"] for m in on.mail("notice").values()} == {
            f"<maintenance-db-upgrade-202701240100.notice.{who}@example.com>"
            for who in ("alice", "dana", "hanna")
        }


async def test_the_status_page_feed_and_json_show_planned_then_active_maintenance(
    tmp_path: Path,
) -> None:
    """Two weeks ahead at most, planned work is on the status page (its systems' titles, its
    times, the note; never the window's name), in the feed and in the JSON; while under way the
    page says so; once over it is gone from all three."""
    async with stage(tmp_path) as on:
        await on.at(START - 86400)
        page = await (await on.other.client.get("/")).text()
        assert "Planned maintenance" in page
        assert "Online payments" in page
        assert "We are moving the payment database to a faster server." in page
        assert f'datetime="{datetime.fromtimestamp(START, UTC):%Y-%m-%dT%H:%M:%SZ}"' in page
        assert "db-upgrade" not in page
        feed = feedparser.parse(await (await on.other.client.get("/feed.atom")).read())
        [planned] = [e for e in feed.entries if e.title.startswith("Planned maintenance")]
        assert planned.title == "Planned maintenance: Online payments"
        assert "We are moving the payment database" in planned.content[0].value
        data = await (await on.other.client.get("/status.json")).json()
        assert [(w["titles"], w["active"]) for w in data["maintenance"]] == [
            (["Online payments"], False)
        ]
        await on.at(START + 60)
        page = await (await on.leader.client.get("/")).text()
        assert "Under way now, until" in page
        feed = feedparser.parse(await (await on.leader.client.get("/feed.atom")).read())
        assert [e.title for e in feed.entries] == ["Maintenance under way: Online payments"]
        await on.at(END + 60)
        page = await (await on.leader.client.get("/")).text()
        assert "Planned maintenance" not in page
        assert (await (await on.leader.client.get("/status.json")).json())["maintenance"] == []
