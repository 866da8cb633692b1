"""The post-incident report: its figures from hand-made records (a pure function), its words in
Markdown and HTML, and the report of a scripted incident (a real App on a fake clock, real SMTP
through aiosmtpd, real SMS through a loopback Twilio, a real SQLite file) through the API as
JSON and through `monitor report` as Markdown, every figure exactly as scripted."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from clock import FakeClock
from fake_twilio import FakeTwilio, WebhookReceiver
from test_store_contract import backend, database, open_incident, resolved_incident, store
from world import MESSAGES, write_config

from monitor.app import App, Options
from monitor.cli import main
from monitor.demo.mailcatcher import MailCatcher
from monitor.incidents.correlation import Incident, Member
from monitor.model import Address, Attempt, Explanation, Person, ProbeResult
from monitor.reporting import build_report, report_html, report_markdown
from monitor.reporting.figures import Report, nearest_rank
from monitor.store import SENT, UNDELIVERABLE, OutboxItem, Store
from monitor.store.types import AffectedCount, Alert, MessageTally, TimelineEntry

__all__ = ["backend", "database", "store"]  # the contract suite's fixtures, used here

T = 1_800_000_000.0  # the fake clock's start: 2027-01-15 08:00:00 UTC
UTC = ZoneInfo("UTC")
TOKEN = "report-t0ken-5e1d"
NOTE = "The card processor rejects every payment.\nDoing: we are switching to the backup one."
EXPLANATION = (
    "A certificate on the card processor's side expired. We now watch its expiry date and "
    "renew a month ahead."
)


# the figures, from hand-made records -----------------------------------------------------------


def records(**changes: Any) -> Report:
    """A report of incident 7: payment (the cause) down 08:00:30-08:20:30, login down from
    08:01:00 and still down at 08:30:00; three acknowledgements, one person unreachable."""
    incident = Incident(
        7,
        T + 30,
        (Member("payment", T + 30, T + 1230), Member("login", T + 60)),
        "payment",
        notified_at=T + 90,
    )
    arguments: dict[str, Any] = {
        "titles": {"payment": "Online payments", "login": "Signing in"},
        "timeline": [
            TimelineEntry(T + 30, "opened", "Online payments: status 503"),
            TimelineEntry(T + 60, "joined", "Signing in: status 500"),
            TimelineEntry(T + 300, "note", "Rolling back | *now* (sent)"),
        ],
        "explanation": None,
        "alert": Alert(T + 30, ("Slack", "email")),
        "tally": MessageTally(
            {
                ("acknowledge", SENT, "email"): 2,
                ("acknowledge", SENT, "sms"): 1,
                ("acknowledge", UNDELIVERABLE, ""): 1,
                ("update", SENT, "email"): 2,
                ("update", "pending", ""): 1,
            },
            undeliverable_people=1,
            acknowledged_at=(T + 90, T + 95, T + 200),
        ),
        "undeliverable": [
            ("erin", "acknowledge", "550 5.1.1 <erin@example.com> no such user"),
            ("erin", "update", "550 5.1.1 <erin@example.com> no such user (again)"),
        ],
        "affected": AffectedCount(5, 1),
        "affected_at_fix": False,
        "now": T + 1800,
    }
    return build_report(incident, **(arguments | changes))


def test_the_figures_are_durations_counts_and_times_to_acknowledge_from_the_records() -> None:
    """Each system's time down (to now while down), messages by kind and channel, who could
    not be told, and the acknowledgements' first, p50, p99 and last from the first failure."""
    report = records()
    assert [(s.name, s.down_for, s.cause) for s in report.systems] == [
        ("payment", 1200.0, True),
        ("login", 1740.0, False),
    ]
    assert (report.status, report.duration, report.cause_title) == (
        "open",
        1770.0,
        "Online payments",
    )
    assert (report.affected, report.acknowledged, report.undeliverable_people) == (5, 3, 1)
    assert (report.affected_unsubscribed, report.affected_counted) == (1, "now")
    assert [(k.kind, dict(k.sent), k.pending, k.undeliverable) for k in report.messages] == [
        ("acknowledge", {"email": 2, "sms": 1}, 0, 1),
        ("update", {"email": 2}, 1, 0),
    ]
    assert report.channels == ("email", "sms")
    timing = report.acknowledging
    assert (timing.people, timing.first, timing.p50, timing.p99, timing.last) == (
        3,
        60.0,
        65.0,
        170.0,
        170.0,
    )
    assert [(u.person, u.kinds, u.error) for u in report.unreachable] == [
        ("erin", ("acknowledge", "update"), "550 5.1.1 <erin@example.com> no such user (again)")
    ]
    assert [e.kind for e in report.timeline] == ["opened", "alerted", "joined", "note"]
    assert report.timeline[1].text == "on-call alerted by Slack, email"
    assert [n.text for n in report.notes] == ["Rolling back | *now* (sent)"]
    assert report.promise == "none"


@pytest.mark.parametrize(
    ("members", "cause", "expected"),
    [
        # payment opened it and is its cause
        (
            (Member("payment", T + 30), Member("login", T + 60)),
            "payment",
            (T + 30, "payment", False),
        ),
        # login opened it; crm, which login depends on, failed after and is the likely cause
        ((Member("login", T + 30), Member("crm", T + 45)), "crm", (T + 30, "login", False)),
        # login failed first, but its failure reached the incident after payment's opened it
        ((Member("payment", T + 30), Member("login", T + 20)), "payment", (T + 20, "login", True)),
    ],
)
def test_the_first_failure_is_the_first_system_found_down_even_when_it_came_in_late(
    members: tuple[Member, ...], cause: str, expected: tuple[float, str, bool]
) -> None:
    """The time to acknowledge counts from the first system found DOWN: the one that opened
    the incident (whatever the likely cause), or one whose earlier failure reached it late."""
    report = build_report(
        Incident(3, T + 30, members, cause),
        titles={},
        timeline=[],
        explanation=None,
        alert=None,
        tally=MessageTally({}, 0, (T + 80,)),
        undeliverable=[],
        affected=AffectedCount(1, 0),
        affected_at_fix=False,
        now=T + 600,
    )
    first = report.first_failure
    assert (first.at, first.system, first.before_opening) == expected
    assert report.acknowledging.first == T + 80 - expected[0]


def test_percentiles_are_by_the_nearest_rank() -> None:
    """p50 of 1..100 is 50 and p99 is 99; of one value, that value; of 1..3, 2 and 3."""
    hundred = [float(n) for n in range(1, 101)]
    assert (nearest_rank(hundred, 50), nearest_rank(hundred, 99)) == (50.0, 99.0)
    assert (nearest_rank([7.0], 50), nearest_rank([7.0], 99)) == (7.0, 7.0)
    assert (nearest_rank([1.0, 2.0, 3.0], 50), nearest_rank([1.0, 2.0, 3.0], 99)) == (2.0, 3.0)


@pytest.mark.parametrize(
    ("explanation", "promise"),
    [
        (Explanation(7, "why", explained_at=T, told_at=T + 10), "explained before the fix"),
        (Explanation(7, "", promised_at=T + 10), "open"),
        (Explanation(7, "why", T + 20, T + 30, promised_at=T + 10), "open"),
        (Explanation(7, "why", T + 20, T + 30, promised_at=T + 10, kept_at=T + 31), "kept"),
        (Explanation(7, "why", explained_at=T), "none"),
        (None, "none"),
    ],
)
def test_the_promise_is_kept_open_explained_before_the_fix_or_none(
    explanation: Explanation | None, promise: str
) -> None:
    """The promise's state follows the explanation record: carried by the resolved messages,
    owed, kept, or none made."""
    assert records(explanation=explanation).promise == promise


def test_the_markdown_escapes_what_people_and_systems_wrote_and_the_html_takes_no_markup() -> None:
    """Titles, notes and errors read as written in the Markdown (no table cell broken, no
    emphasis, no link) and arrive as text in the HTML page, which has its title."""
    report = records(titles={"payment": "<script>alert(1)</script>", "login": "Signing | in"})
    text = report_markdown(report, UTC)
    assert text.startswith("# Incident 7: \\<script\\>alert(1)\\</script\\>\n")
    login = "| login | Signing \\| in | 2027-01-15 08:01:00 UTC | still down | 29 minutes so far |"
    assert login in text
    assert "> Rolling back \\| \\*now\\* (sent)" in text
    assert "| erin | acknowledge, update | 550 5.1.1 \\<erin@example.com\\> no such user" in text
    page = report_html(report, UTC)
    assert "<script>" not in page
    title = "Incident 7: &lt;script&gt;alert(1)&lt;/script&gt;: post-incident report"
    assert f"<title>{title}</title>" in page
    assert "<td>Signing | in</td>" in page
    assert "&lt;erin@example.com&gt;" in page
    assert "<a " not in page


def test_the_words_give_times_in_the_zone_asked_for() -> None:
    """In Europe/Berlin the incident opened at 09:00:30 CET, and the page says which zone."""
    text = report_markdown(records(), ZoneInfo("Europe/Berlin"))
    assert "Open: since 2027-01-15 09:00:30 CET, 29 minutes 30 seconds so far." in text
    assert "every time is in Europe/Berlin." in text
    assert "- 2027-01-15 09:00:30 CET: alerted: on-call alerted by Slack, email" in text


# a scripted incident, end to end --------------------------------------------------------------

ALICE = Person("alice", "Alice Martin", "alice@example.com", "+447700900001", None, ("payment",))
DANA = Person("dana", "Dana Ruiz", "dana@example.com", None, None, ("payment", "login"))
ERIN = Person("erin", "Erin Cole", "erin@example.com", None, None, ("payment",))
BOB = Person("bob", "Bob Stone", "bob@example.com", None, None, ("login",))


@dataclass
class Stage:
    """A started App serving its API at ``url``, on a fake clock, with what delivery settled."""

    app: App
    url: str
    clock: FakeClock
    settled: list[OutboxItem]
    changed: asyncio.Event

    async def tick(self) -> None:
        """A notifier tick after the probes' flush, and the heartbeat the app beats every 2 s
        of real time, at the fake clock's moment: its outbox shards stay held, so delivery
        sends at once rather than at the next real beat."""
        await self.app.membership.beat()
        await self.app.monitor.flush()
        await self.app.notifier.tick()

    async def probe(self, system: str, ok: bool) -> None:
        """One probe result now, and the notifier's tick after it."""
        reason = "status 200" if ok else "status 503, expected 200"
        self.app.monitor.observe(ProbeResult(system, ok, reason, self.clock.now(), 0.01))
        await self.tick()

    async def settle(self, count: int) -> None:
        """Wait until delivery has settled ``count`` messages in all, at this moment: the
        clock stands still meanwhile, so each was sent at the moment the script says."""
        self.app.delivery.wake()
        async with asyncio.timeout(10):
            while len(self.settled) < count:
                self.changed.clear()
                await self.changed.wait()
        assert len(self.settled) == count, [(i.key, i.status) for i in self.settled]

    async def post(self, path: str, body: object) -> None:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with (
            aiohttp.ClientSession() as session,
            session.post(self.url + path, json=body, headers=headers) as response,
        ):
            assert response.status in (200, 202), await response.text()

    async def get(self, path: str, token: str | None = None) -> tuple[int, str, str]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with (
            aiohttp.ClientSession() as session,
            session.get(self.url + path, headers=headers) as response,
        ):
            return response.status, response.content_type, await response.text()


@asynccontextmanager
async def stage(tmp_path: Path) -> AsyncIterator[Stage]:
    async with AsyncExitStack() as stack:
        catcher = await stack.enter_async_context(MailCatcher())
        catcher.reject = {"alice@example.com", "erin@example.com"}
        twilio = await stack.enter_async_context(FakeTwilio())
        team = await stack.enter_async_context(WebhookReceiver())
        checks = tmp_path / "checks"
        write_config(checks)
        with (checks / "monitor.yaml").open("a") as settings:
            settings.write(f'oncall: ["{team.url("/team").replace("http://", "json://")}"]\n')
        clock = FakeClock()
        app = App(
            Options(config=checks, messages=MESSAGES, db=tmp_path / "monitor.db", listen=":0"),
            clock=clock,
            environ={
                "MONITOR_API_TOKEN": TOKEN,
                "MONITOR_SMTP_URL": catcher.url,
                "MONITOR_SMTP_FROM": "status@example.com",
                "MONITOR_TWILIO_ACCOUNT_SID": twilio.account_sid,
                "MONITOR_TWILIO_AUTH_TOKEN": twilio.auth_token,
                "MONITOR_TWILIO_FROM": "+15550002222",
                "MONITOR_TWILIO_BASE_URL": twilio.base_url,
            },
            tick_every=3600.0,  # the script ticks; the clock is in 2027, so no probe runs
            watch_files=False,
        )
        await app.start()
        stack.push_async_callback(app.stop)
        assert app.runner is not None
        host, port = app.runner.addresses[0][:2]
        await app.store.upsert_people([ALICE, DANA, ERIN, BOB])
        settled: list[OutboxItem] = []
        changed = asyncio.Event()

        def outcome(item: OutboxItem, result: str, _channel: Address | None) -> None:
            if result in ("sent", "undeliverable"):
                settled.append(item)
                changed.set()

        app.delivery.on_outcome.append(outcome)
        yield Stage(app, f"http://{host}:{port}", clock, settled, changed)


async def scripted_incident(on: Stage) -> int:
    """Payment fails at 08:00:00 and is DOWN at 08:00:30 (the third failure); at 08:01:45
    (notify_after passed) Alice (by SMS: her mailbox refuses mail), Dana and Erin (whose
    mailbox refuses mail, and who has no phone) are acknowledged. On-call's note goes out at
    08:02:00. Login is DOWN at 08:02:30, so Bob is acknowledged and Dana updated. Both recover
    at 08:10:00-08:10:15; the resolved message promises an explanation, which on-call posts at
    08:15:00 and everyone told is sent. Returns the incident's id."""
    for _ in range(3):
        await on.probe("payment", False)
        on.clock.advance(15)
    on.clock.advance(60)  # 08:01:45
    await on.tick()
    await on.settle(3)  # alice (sms), dana, erin (undeliverable)
    on.clock.advance(15)  # 08:02:00
    number = (await on.app.store.latest_incidents(1))[0].id
    await on.post(f"/api/v1/incidents/{number}/note", {"text": NOTE, "send": True})
    await on.tick()
    await on.settle(6)  # the note to alice, dana, erin
    for failures in (1, 2, 3):  # login: 08:02:00, 08:02:15, DOWN at 08:02:30
        await on.probe("login", False)
        if failures < 3:
            on.clock.advance(15)
    await on.tick()
    await on.settle(8)  # bob acknowledged, dana updated, at 08:02:30
    on.clock.time = T + 600  # 08:10:00
    for system in ("payment", "login"):
        await on.probe(system, True)
    on.clock.advance(15)  # 08:10:15: the second pass resolves it
    for system in ("payment", "login"):
        await on.probe(system, True)
    await on.settle(12)  # resolved to alice, dana, erin, bob
    return number


async def explained(on: Stage, number: int) -> None:
    """On-call posts the explanation at 08:15:00; it goes to everyone told."""
    on.clock.time = T + 900
    await on.post(f"/api/v1/incidents/{number}/explanation", {"text": EXPLANATION})
    await on.tick()
    await on.settle(16)


async def test_the_report_of_a_scripted_incident_has_its_figures_exactly(tmp_path: Path) -> None:
    """GET /api/v1/incidents/ID/report answers the scripted incident's durations, people,
    messages by kind and channel, time to acknowledge, who could not be told and why, the
    note, the explanation and the promise, with or without the token (a read route)."""
    async with stage(tmp_path) as on:
        number = await scripted_incident(on)
        status, _, body = await on.get(f"/api/v1/incidents/{number}/report")
        assert status == 200, body
        assert json.loads(body)["promise"] == "open"
        await explained(on, number)
        on.clock.time = T + 3600
        status, media, body = await on.get(f"/api/v1/incidents/{number}/report")
        with_token = await on.get(f"/api/v1/incidents/{number}/report", TOKEN)
    assert (status, media) == (200, "application/json")
    assert with_token == (status, media, body)
    report = json.loads(body)
    assert (report["id"], report["status"], report["duration"]) == (number, "resolved", 585.0)
    assert (report["opened_at"], report["resolved_at"], report["made_at"]) == (
        "2027-01-15T08:00:30Z",
        "2027-01-15T08:10:15Z",
        "2027-01-15T09:00:00Z",
    )
    assert report["cause"] == {"name": "payment", "title": "Online payments"}
    assert [
        (s["name"], s["down_at"], s["up_at"], s["down_for"], s["cause"]) for s in report["systems"]
    ] == [
        ("payment", "2027-01-15T08:00:30Z", "2027-01-15T08:10:15Z", 585.0, True),
        ("login", "2027-01-15T08:02:30Z", "2027-01-15T08:10:15Z", 465.0, False),
    ]
    assert report["people"] == {
        "affected": 4,
        "affected_unsubscribed": 0,
        "affected_counted": "at the fix",
        "acknowledged": 3,
        "undeliverable": 1,
    }
    assert report["messages"] == [
        {"kind": "acknowledge", "sent": {"email": 2, "sms": 1}, "pending": 0, "undeliverable": 1},
        {"kind": "update", "sent": {"email": 2, "sms": 1}, "pending": 0, "undeliverable": 1},
        {"kind": "resolved", "sent": {"email": 2, "sms": 1}, "pending": 0, "undeliverable": 1},
        {"kind": "explanation", "sent": {"email": 2, "sms": 1}, "pending": 0, "undeliverable": 1},
    ]
    assert report["acknowledgements"] == {
        "first_failure": {
            "at": "2027-01-15T08:00:30Z",
            "system": "payment",
            "before_opening": False,
        },
        "people": 3,
        "first": 75.0,
        "p50": 75.0,
        "p99": 120.0,
        "last": 120.0,
    }
    assert [(u["person"], u["kinds"]) for u in report["undeliverable"]] == [
        ("erin", ["acknowledge", "update", "resolved", "explanation"])
    ]
    assert "550" in report["undeliverable"][0]["error"]
    assert report["oncall_alert"] == {"at": "2027-01-15T08:00:30Z", "routes": ["webhook"]}
    assert report["notes"] == [
        {"at": "2027-01-15T08:02:00Z", "kind": "note", "text": NOTE + " (sent)"}
    ]
    assert report["promise"] == "kept"
    given = report["explanation"]
    assert (given["text"], given["promised_at"], given["kept_at"]) == (
        EXPLANATION,
        "2027-01-15T08:10:15Z",
        "2027-01-15T08:15:00Z",
    )
    kinds = [e["kind"] for e in report["timeline"]]
    assert kinds[:3] == ["opened", "alerted", "messages"]
    assert {"note", "joined", "recovered", "resolved", "explanation"} <= set(kinds)


async def test_people_affected_are_counted_as_the_fix_was_told_with_the_unsubscribed_apart(
    tmp_path: Path,
) -> None:
    """Frank, who unsubscribed, fails to pay during the outage: he is one of the people
    affected, counted apart as unsubscribed (and told nothing); the figure is counted now while
    the incident is open, and kept as it was at the fix, whoever subscribes after."""
    async with stage(tmp_path) as on:
        frank = Person("frank", "Frank Hill", "frank@example.com", None, None, ("payment",))
        await on.app.store.upsert_people([frank])
        await on.app.store.unsubscribe("frank", "frank@example.com", on.clock.now())
        for _ in range(3):
            await on.probe("payment", False)
            on.clock.advance(15)
        attempt = {
            "system": "payment",
            "user": {"id": "frank", "email": "frank@example.com"},
            "action": "pay an invoice",
        }
        await on.post("/api/v1/attempts", attempt)
        number = (await on.app.store.latest_incidents(1))[0].id
        _, _, body = await on.get(f"/api/v1/incidents/{number}/report")
        while_open = json.loads(body)["people"]
        on.clock.advance(60)
        await on.tick()
        await on.settle(3)  # alice, dana, erin: not frank
        on.clock.advance(60)
        for _ in range(2):
            await on.probe("payment", True)
            on.clock.advance(15)
        await on.settle(6)
        late = Person("gina", "Gina Park", "gina@example.com", None, None, ("payment",))
        await on.app.store.upsert_people([late])
        _, _, body = await on.get(f"/api/v1/incidents/{number}/report")
        _, _, markdown = await on.get(f"/api/v1/incidents/{number}/report?format=markdown")
    fixed = json.loads(body)["people"]
    assert (while_open["affected"], while_open["affected_unsubscribed"]) == (4, 1)
    assert while_open["affected_counted"] == "now"
    assert (fixed["affected"], fixed["affected_unsubscribed"]) == (4, 1)
    assert fixed["affected_counted"] == "at the fix"
    assert "frank" not in {item.person_id for item in on.settled}
    assert (
        "**People affected:** 4 (subscribers of these systems and people who reported a failed "
        "attempt, counted when the fix was told as the notifier counts them); 1 person of them "
        "had unsubscribed"
    ) in markdown


async def test_the_count_kept_at_the_fix_is_read_back_and_saving_the_incident_keeps_it(
    store: Store,
) -> None:
    """What ``record_audience`` keeps is what ``audience`` reads, on every backend; a later
    save of the incident (its messages decided) leaves it; an incident never counted has none."""
    await store.save_incident(resolved_incident(1, 1000.0))
    await store.save_incident(open_incident(2, 900.0))
    await store.record_audience(1, AffectedCount(12, 2))
    await store.save_incident(resolved_incident(1, 1000.0, told_at=1010.0))
    assert await store.audience(1) == AffectedCount(12, 2)
    assert await store.audience(2) is None
    assert await store.audience(3) is None


async def test_unsubscribed_attempters_counts_who_cancelled_among_those_who_tried(
    store: Store,
) -> None:
    """Of the people who reported an attempt on the systems within the window, each once,
    those who unsubscribed; attempts outside the window or on other systems do not count."""
    anna = Person("anna", "Anna", "anna@example.com", systems=("payment",))
    ben = Person("ben", "Ben", "ben@example.com")
    cleo = Person("cleo", "Cleo", "cleo@example.com")
    for attempt, person in (
        (Attempt("payment", "anna", "pay", 500.0), anna),
        (Attempt("payment", "anna", "pay again", 510.0), anna),
        (Attempt("payment", "ben", "pay", 520.0), ben),
        (Attempt("crm", "cleo", "save", 520.0), cleo),
        (Attempt("payment", "cleo", "pay", 100.0), cleo),
    ):
        await store.add_attempt(attempt, person)
    for person in (anna, cleo):
        await store.unsubscribe(person.id, person.email, 550.0)
    assert await store.unsubscribed_attempters(["payment"], 400.0, 600.0) == 1
    assert await store.unsubscribed_attempters(["payment", "crm"], 400.0, 600.0) == 2
    assert await store.audience_count(["payment", "crm"], 400.0, 600.0) == 3


@dataclass
class Terminal:
    """Runs ``monitor ARGS`` as on-call types it (``main``, in a worker thread, since it runs
    an event loop of its own), with only the environment given."""

    capsys: pytest.CaptureFixture[str]
    monkeypatch: pytest.MonkeyPatch

    async def run(self, *args: str) -> tuple[int, str, str]:
        with self.monkeypatch.context() as patch:
            for name in list(os.environ):
                if name.startswith("MONITOR_"):
                    patch.delenv(name)
            try:
                code = await asyncio.to_thread(main, list(args))
            except SystemExit as exited:  # argparse refusing the command line
                code = int(exited.code or 0)
        out, err = self.capsys.readouterr()
        return code, out, err


async def test_monitor_report_prints_the_scripted_incident_as_markdown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`monitor report ID` prints the Markdown report: summary, systems, the messages by kind
    and channel, the time to acknowledge, who could not be told, the note, the explanation and
    the timeline, at the monitor's zone or --timezone's; --format html is the page; an
    unknown incident is the API's 404 and exit 1."""
    terminal = Terminal(capsys, monkeypatch)
    async with stage(tmp_path) as on:
        number = await scripted_incident(on)
        await explained(on, number)
        on.clock.time = T + 3600
        code, out, err = await terminal.run("report", str(number), "--url", on.url)
        _, berlin, _ = await terminal.run(
            "report", str(number), "--url", on.url, "--timezone", "Europe/Berlin"
        )
        _, page, _ = await terminal.run("report", str(number), "--url", on.url, "--format", "html")
        _, as_json, _ = await terminal.run(
            "report", str(number), "--url", on.url, "--format", "json"
        )
        status, _, body = await on.get(f"/api/v1/incidents/{number}/report")
        missing = await terminal.run("report", "99", "--url", on.url)
        zone = await terminal.run("report", "1", "--url", on.url, "--timezone", "Europe/Berln")
    assert code == 0, err
    assert out.startswith(
        f"# Incident {number}: Online payments\n\n"
        "Post-incident report. Resolved: from 2027-01-15 08:00:30 UTC to 2027-01-15 08:10:15 "
        "UTC, 9 minutes 45 seconds.\nMade 2027-01-15 09:00:00 UTC; every time is in UTC.\n\n"
        "## Summary\n\n"
        "- **Likely cause:** Online payments (payment)\n"
        "- **Systems down:** 2: payment, login\n"
    )
    assert "- **People told:** 3 people acknowledged; 1 person could not be told\n" in out
    assert (
        "- **Acknowledgements:** the first 1 minute 15 seconds after the first failure, the "
        "last after 2 minutes\n"
    ) in out
    assert "- **On-call alerted:** 2027-01-15 08:00:30 UTC by webhook\n" in out
    assert (
        "- **The promise:** kept 2027-01-15 08:15:00 UTC: everyone told was given an "
        "explanation message (3 sent, 0 pending, 1 undeliverable)\n"
    ) in out
    assert (
        "| kind | sent by email | sent by sms | pending | undeliverable | all |\n"
        "| --- | ---: | ---: | ---: | ---: | ---: |\n"
        "| acknowledge | 2 | 1 | 0 | 1 | 4 |\n"
        "| update | 2 | 1 | 0 | 1 | 4 |\n"
        "| resolved | 2 | 1 | 0 | 1 | 4 |\n"
        "| explanation | 2 | 1 | 0 | 1 | 4 |\n"
    ) in out
    assert (
        "| first acknowledgement | 1 minute 15 seconds | 75 |\n"
        "| p50 | 1 minute 15 seconds | 75 |\n"
        "| p99 | 2 minutes | 120 |\n"
        "| last acknowledgement | 2 minutes | 120 |\n"
    ) in out
    assert "| erin | acknowledge, update, resolved, explanation | email: SMTP 127.0.0.1:" in out
    assert ": recipient erin@example.com refused: 550 5.1.1 no such user |\n" in out
    assert (
        "2027-01-15 08:02:00 UTC:\n\n> The card processor rejects every payment.\n"
        "> Doing: we are switching to the backup one. (sent)\n"
    ) in out
    assert f"> {EXPLANATION}\n" in out
    assert "- 2027-01-15 08:00:30 UTC: opened: Online payments: status 503" in out
    assert "- 2027-01-15 09:00:30 CET: opened: Online payments" in berlin
    assert page.startswith("<!DOCTYPE html>")
    assert f"<title>Incident {number}: Online payments: post-incident report</title>" in page
    assert "<td>acknowledge</td>" in page
    assert status == 200
    assert json.loads(as_json) == json.loads(body)
    assert missing == (1, "", "monitor report: no incident 99\n")
    assert zone[0] == 2
    assert "no time zone is named 'Europe/Berln' (did you mean 'Europe/Berlin'?)" in zone[2]


async def test_the_report_route_refuses_a_format_or_zone_it_does_not_know(tmp_path: Path) -> None:
    """?format= other than json, markdown or html, and a zone zoneinfo does not know, are 400
    naming the parameter; an unknown incident is 404."""
    async with stage(tmp_path) as on:
        await on.probe("payment", False)
        for _ in range(2):
            on.clock.advance(15)
            await on.probe("payment", False)
        number = (await on.app.store.latest_incidents(1))[0].id
        form = await on.get(f"/api/v1/incidents/{number}/report?format=pdf")
        zone = await on.get(f"/api/v1/incidents/{number}/report?timezone=Mars/Olympus")
        missing = await on.get("/api/v1/incidents/99/report")
        page = await on.get(f"/api/v1/incidents/{number}/report?format=markdown")
    assert (form[0], json.loads(form[2])["field"]) == (400, "format")
    assert (zone[0], json.loads(zone[2])["field"]) == (400, "timezone")
    assert "no time zone is named 'Mars/Olympus'" in json.loads(zone[2])["error"]
    assert (missing[0], json.loads(missing[2])["error"]) == (404, "no incident 99")
    assert (page[0], page[1]) == (200, "text/markdown")
    assert "Nobody was acknowledged." in page[2]


def test_an_open_promise_says_since_when_and_when_on_call_was_last_reminded() -> None:
    """An explanation owed is open since the resolved messages promised it, for as long as it
    has been owed, with on-call's last reminder."""
    owed = Explanation(7, "", promised_at=T + 10, reminded_at=T + 1700)
    text = report_markdown(records(explanation=owed), UTC)
    assert (
        "**The promise:** open: an explanation has been owed since 2027-01-15 08:00:10 UTC "
        "(29 minutes 50 seconds), when the resolved messages promised it. On-call was last "
        "reminded 2027-01-15 08:28:20 UTC.\n\nNo explanation has been given."
    ) in text
