"""What the messages say, read as the customer: what the team is doing (when and how on-call
was alerted, or on-call's own words), goodwill after a long outage (once per person, only to
those it has lasted that long for), and no form letters (two people's texts differ beyond the
name). Real App, real SMTP (aiosmtpd), a real apprise endpoint, real SQLite (and PostgreSQL for
the store's part), on a fake clock."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import apprise
import pytest
from clock import FakeClock
from fake_twilio import WebhookReceiver
from world import MESSAGES, write_config

from monitor.app import App, Options, systems_info
from monitor.config import ConfigError, load_config
from monitor.demo.mailcatcher import CaughtMessage, MailCatcher
from monitor.model import Attempt, IncidentView, MessageKind, Person, Reason, Recipient, SystemInfo
from monitor.notify.composer import Composer, Response
from monitor.notify.handling import split_note
from monitor.notify.oncall import route_names
from monitor.store import Store

HOUR = 3600.0
DAY = 86400.0
TOKEN = "t0ken-for-content"
EXPLANATION = "A card processor update sent every payment to a server that had been switched off."

ALICE = Person("alice", "Alice Martin", "alice@example.com", None, None, ("payment",))
BEN = Person("ben", "Ben Lee", "ben@example.com", None, None, ("payment",))
ERIKA = Person(
    "erika", "Erika Muster", "erika@example.com", None, None, ("payment",), "Europe/Berlin", "de"
)
JONAS = Person(
    "jonas", "Jonas Weber", "jonas@example.com", None, None, ("payment",), "Europe/Berlin", "de"
)
CHARLIE = Person("charlie", "Charlie Day", "charlie@example.com", None, None, ("crm",))
BOB = Person("bob", "Bob Stone", "bob@example.com", None, None, ("login",))


# the store: both backends ----------------------------------------------------------------------


@pytest.fixture
def store(each_store: Store) -> Store:
    return each_store


async def test_goodwill_is_recorded_once_per_person_and_incident(store: Store) -> None:
    """The first message offered goodwill keeps it: a later offer to the same person names
    the first message's key, another person's is their own."""
    first = await store.offer_goodwill(1, {"alice": "incident-1.update-2.alice"})
    again = await store.offer_goodwill(
        1, {"alice": "incident-1.update-3.alice", "bob": "incident-1.update-3.bob"}
    )
    assert first == {"alice": "incident-1.update-2.alice"}
    assert again == {"alice": "incident-1.update-2.alice", "bob": "incident-1.update-3.bob"}
    assert await store.offer_goodwill(2, {"alice": "incident-2.update-1.alice"}) == {
        "alice": "incident-2.update-1.alice"
    }


async def test_the_first_alert_of_an_incident_is_kept(store: Store) -> None:
    """When and how on-call was alerted is the first alert's, for every reader."""
    assert await store.alert(7) is None
    await store.record_alert(7, 1000.0, ["Slack", "email"])
    await store.record_alert(7, 2000.0, ["webhook"])
    alert = await store.alert(7)
    assert alert is not None
    assert (alert.at, alert.routes) == (1000.0, ("Slack", "email"))


# the parts: routes and notes ------------------------------------------------------------------


def test_routes_are_named_by_their_service_never_by_their_url() -> None:
    """Slack and mailto URLs are "Slack" and "email", once each, with no token in sight."""
    notifier = apprise.Apprise()
    for url in ("slack://T1A2B3/B4C5D6/sEcReTtOkEn", "mailto://u:pw@example.com", "slack://a/b/c"):
        assert notifier.add(url)
    assert route_names(notifier) == ("Slack", "email")


def test_a_notes_doing_line_is_what_the_team_is_doing() -> None:
    """A note's "Doing:" line starts what the team is doing; a note without one is all news."""
    assert split_note("The update failed.\ndoing: Rolling it back.") == (
        "The update failed.",
        "Rolling it back.",
    )
    assert split_note("The update failed; doing nothing is not an option.") == (
        "The update failed; doing nothing is not an option.",
        "",
    )


def test_routes_are_worded_in_the_persons_language(tmp_path: Path) -> None:
    """ "Slack and email" in English, "Slack und E-Mail" in German, at the person's clock."""
    composer = Composer(
        MESSAGES, write_config(tmp_path).settings.org, {}, default_timezone="Europe/Berlin"
    )
    payment = SystemInfo("payment", "Online payments")
    incident = IncidentView("1", 1_800_000_000.0, None, payment, (payment,), "", "open")
    response = Response(1_800_000_000.0 + 120, ("Slack", "email"))
    texts = {}
    for language in ("en", "de"):
        person = Person("p", "Pat Doe", "p@example.com", language=language)
        recipient = Recipient(person, (payment,), (), 1_800_000_000.0)
        texts[language] = composer.render(
            MessageKind.ACKNOWLEDGE,
            Reason.FIRST,
            recipient,
            incident,
            1_800_000_300.0,
            response=response,
        ).text
    assert "alerted at 9:02 AM today by Slack and email" in texts["en"]
    assert "heute um 09:02 Uhr per Slack und E-Mail alarmiert" in texts["de"]


# the monitor: a real App -------------------------------------------------------------------------


@dataclass
class Stage:
    """The monitor on a fake clock with a mail catcher and the team's apprise endpoint."""

    clock: FakeClock
    catcher: MailCatcher
    team: WebhookReceiver
    app: App
    checks: Path
    db: Path
    stack: AsyncExitStack

    async def tick(self) -> None:
        # The heartbeat the app beats every 2 s of real time, at the fake clock's moment: its
        # hold on the outbox is renewed, so delivery sends at once rather than at the next beat.
        await self.app.membership.beat()
        await self.app.monitor.flush()
        await self.app.notifier.tick()

    async def results(self, system: str, ok: bool, rounds: int) -> None:
        from monitor.model import ProbeResult

        for _ in range(rounds):
            reason = "status 200" if ok else "status 503"
            self.app.monitor.observe(ProbeResult(system, ok, reason, self.clock.now(), 0.01))
            await self.tick()
            self.clock.advance(15.0)

    async def sent(self, count: int) -> None:
        """Wait until ``count`` mails have arrived in all."""
        self.app.delivery.wake()
        async with asyncio.timeout(20):
            await self.catcher.wait_for_messages(count)

    async def restart(self) -> None:
        """Stop the monitor and start a new one on the same database, as after a crash."""
        await self.app.stop()
        self.app = await _start(self.checks, self.db, self.catcher, self.clock)

    def mail(self, kind: str, person: str | None = None) -> list[CaughtMessage]:
        return [
            m
            for m in self.catcher.messages
            if f".{kind}" in m.message["Message-ID"]
            and (person is None or f".{person}@" in m.message["Message-ID"])
        ]

    async def incident_id(self) -> int:
        return (await self.app.store.latest_incidents(1))[0].id


async def _start(checks: Path, db: Path, catcher: MailCatcher, clock: FakeClock) -> App:
    app = App(
        Options(config=checks, messages=MESSAGES, db=db, listen=":0"),
        clock=clock,
        environ={
            "MONITOR_API_TOKEN": TOKEN,
            "MONITOR_SMTP_URL": catcher.url,
            "MONITOR_SMTP_FROM": "status@example.com",
            "MONITOR_REPLICA": "a",
        },
        serve_http=False,
        watch_files=False,
        tick_every=3600.0,  # the tests tick by hand
    )
    await app.start()
    return app


@asynccontextmanager
async def stage(
    tmp_path: Path,
    *people: Person,
    oncall: bool = True,
    settings: str = "",
    login_depends_on_crm: bool = False,
) -> AsyncIterator[Stage]:
    async with AsyncExitStack() as stack:
        catcher = await stack.enter_async_context(MailCatcher())
        team = await stack.enter_async_context(WebhookReceiver())
        checks = tmp_path / "checks"
        write_config(checks, login_depends_on_crm=login_depends_on_crm)
        with (checks / "monitor.yaml").open("a") as yaml:
            if oncall:
                yaml.write(f'oncall: ["{team.url("/team").replace("http://", "json://")}"]\n')
            yaml.write(settings)
        clock = FakeClock()
        db = tmp_path / "monitor.db"
        app = await _start(checks, db, catcher, clock)
        await app.store.upsert_people(people)
        on_stage = Stage(clock, catcher, team, app, checks, db, stack)
        stack.push_async_callback(lambda: on_stage.app.stop())  # the one running at the end
        yield on_stage


def _clock(at: float, zone: str, language: str) -> str:
    moment = datetime.fromtimestamp(at, ZoneInfo(zone))
    if language == "de":
        return f"{moment:%H:%M} Uhr"
    return f"{moment:%-I:%M %p}"


# what we are doing -----------------------------------------------------------------------------


async def test_the_acknowledgement_says_when_and_how_the_team_was_alerted(tmp_path: Path) -> None:
    """With an on-call route, each person reads the real moment on-call's notice went out, at
    their own clock and in their language, and the route; nobody reads a slogan."""
    async with stage(tmp_path, ALICE, ERIKA) as s:
        await s.results("payment", False, 3)
        s.clock.advance(60.0)
        await s.tick()
        await s.sent(2)
        alert = await s.app.store.alert(await s.incident_id())
        assert alert is not None
        assert alert.routes == ("webhook",)
        opened = (await s.app.store.latest_incidents(1))[0].opened_at
        assert opened <= alert.at < opened + 60
        english = s.mail("acknowledge", "alice")[0].text
        german = s.mail("acknowledge", "erika")[0].text
    assert (
        f"Our on-call engineer was alerted at {_clock(alert.at, 'UTC', 'en')} UTC today by "
        "webhook and is working on the problem with Online payments now." in english
    )
    assert (
        f"Unser Bereitschaftsteam wurde heute um {_clock(alert.at, 'Europe/Berlin', 'de')} per "
        "Webhook alarmiert" in german
    )
    assert "on it now" not in english
    assert "arbeitet bereits daran" not in german


async def test_without_an_on_call_route_no_alert_is_claimed(tmp_path: Path) -> None:
    """No on-call route configured: the message says we are looking into it, and nothing of an
    alert."""
    async with stage(tmp_path, ALICE, ERIKA, oncall=False) as s:
        await s.results("payment", False, 3)
        s.clock.advance(60.0)
        await s.tick()
        await s.sent(2)
        assert await s.app.store.alert(await s.incident_id()) is None
        english = s.mail("acknowledge", "alice")[0].text
        german = s.mail("acknowledge", "erika")[0].text
    assert "We're looking into the problem with Online payments now." in english
    assert "Wir sehen uns die Störung bei Online payments jetzt genau an." in german
    assert "alert" not in english.lower()
    assert "alarmiert" not in german


async def test_a_notes_doing_replaces_the_default(tmp_path: Path) -> None:
    """On-call's note with a "Doing:" line: the update says what we know and what the team is
    doing in on-call's words, instead of when the team was alerted."""
    async with stage(tmp_path, ALICE) as s:
        await s.results("payment", False, 3)
        s.clock.advance(60.0)
        await s.tick()
        await s.sent(1)
        await s.app.notifier.add_note(
            await s.incident_id(),
            "The card processor's update did not apply.\nDoing: we are rolling it back.",
            send=True,
        )
        await s.tick()
        await s.sent(2)
        text = s.mail("update", "alice")[0].text
    assert "From our team: The card processor's update did not apply." in text
    assert "What we're doing: we are rolling it back." in text
    assert "alerted" not in text
    assert "Doing:" not in text


# goodwill --------------------------------------------------------------------------------------

GOODWILL = (
    "goodwill:\n"
    "  default: Your next month is on us.\n"
    "  login: We have added 500 bonus points to your account.\n"
    "goodwill_after: 24h\n"
)


def _offered(s: Stage, person: str) -> list[CaughtMessage]:
    marks = ("Your next month is on us.", "500 bonus points")
    return [m for m in s.mail("update", person) if any(mark in m.text for mark in marks)]


async def test_goodwill_is_offered_once_only_to_those_it_has_lasted_that_long_for(
    tmp_path: Path,
) -> None:
    """The update at goodwill_after offers goodwill to those affected that long, not to a
    later joiner, who gets their system's goodwill in a later update once it has lasted that
    long for them; nobody gets it twice, across a restart and further updates."""
    async with stage(tmp_path, CHARLIE, BOB, settings=GOODWILL, login_depends_on_crm=True) as s:
        await s.results("crm", False, 3)
        opened = (await s.app.store.latest_incidents(1))[0].opened_at
        s.clock.advance(60.0)
        await s.tick()
        await s.sent(1)  # Charlie is acknowledged
        # Two hours in, on-call sends a note: not long enough for goodwill.
        s.clock.time = opened + 2 * HOUR
        await s.app.notifier.add_note(await s.incident_id(), "We found it.", send=True)
        await s.tick()
        await s.sent(2)
        # Six hours in, login (which depends on crm) fails too: Bob is affected from now.
        s.clock.time = opened + 6 * HOUR
        await s.results("login", False, 3)
        await s.tick()
        await s.sent(3)
        assert [_offered(s, p) for p in ("charlie", "bob")] == [[], []]
        # A day after it opened: an update comes now, not at the update_every rhythm.
        s.clock.time = opened + DAY
        await s.tick()
        await s.sent(5)
        charlie = _offered(s, "charlie")
        assert len(charlie) == 1
        assert "Your next month is on us." in charlie[0].text
        assert _offered(s, "bob") == []
        assert len(s.mail("update", "bob")) == 1
        # No second update where the rhythm from the acknowledgement would have put one.
        s.clock.time = opened + DAY + 5 * 60
        await s.tick()
        # A restart, then the next periodic update: Bob's day has come, Charlie's is past.
        await s.restart()
        s.clock.time = opened + 2 * DAY
        await s.tick()
        await s.sent(7)
        bob = _offered(s, "bob")
        assert len(bob) == 1
        assert "500 bonus points" in bob[0].text
        assert len(_offered(s, "charlie")) == 1
        # Another note: goodwill is never offered again.
        await s.app.notifier.add_note(await s.incident_id(), "Nearly there.", send=True)
        await s.tick()
        await s.sent(9)
        assert (len(_offered(s, "charlie")), len(_offered(s, "bob"))) == (1, 1)
        assert len(s.catcher.messages) == 9


async def test_goodwill_is_offered_in_each_persons_language(tmp_path: Path) -> None:
    """A German reader is offered the German text (de/payment's before de's), an English reader
    the text for every language, each inside their own language's update."""
    settings = (
        "goodwill:\n"
        "  default: Your next month is on us.\n"
        "  de: Ihr nächster Monat geht auf uns.\n"
        "  de/payment: Wir schreiben Ihnen 500 Bonuspunkte gut.\n"
        "goodwill_after: 1h\n"
    )
    async with stage(tmp_path, ALICE, ERIKA, settings=settings) as s:
        await s.results("payment", False, 3)
        s.clock.advance(60.0)
        await s.tick()
        await s.sent(2)
        s.clock.advance(2 * HOUR)
        await s.app.notifier.add_note(await s.incident_id(), "We found it.", send=True)
        await s.tick()
        await s.sent(4)
        (alice,) = s.mail("update", "alice")
        (erika,) = s.mail("update", "erika")
        assert "Your next month is on us." in alice.text
        assert "Wir schreiben Ihnen 500 Bonuspunkte gut." in erika.text
        assert "wiedergutmachen" in erika.text  # the German update's own words around it
        assert "on us" not in erika.text
        assert "Monat" not in erika.text


def test_goodwill_in_a_language_without_templates_is_a_problem(tmp_path: Path) -> None:
    """A text for a language no messages/<language>/ folder writes in would never be read:
    monitor validate names it, as it names a misspelt system under a language."""
    write_config(tmp_path / "checks")
    with (tmp_path / "checks" / "monitor.yaml").open("a") as yaml:
        yaml.write("goodwill: {default: A month free., fr: Un mois offert., de/paymnet: Gratis.}\n")
    config = load_config(tmp_path / "checks", {})
    problems = Composer.from_settings(MESSAGES, config.settings, systems_info(config)).validate()
    assert [(p.field, p.message) for p in problems] == [
        ("goodwill.de/paymnet", "no system is named 'paymnet' (did you mean 'payment'?)"),
        (
            "goodwill.fr",
            "there is no messages/fr/ folder, so no message is written in that language: "
            "add its templates or leave this text out",
        ),
    ]


# no form letters -------------------------------------------------------------------------------


def _without_names(text: str, *people: Person) -> str:
    for person in people:
        text = text.replace(person.name, "NAME").replace(person.first_name, "NAME")
    return re.sub(r"\s+", " ", text)


async def test_two_people_told_the_same_get_different_texts_in_every_kind_and_language(
    tmp_path: Path,
) -> None:
    """Two people with the same system but different attempts read texts that differ beyond
    their names, in the acknowledgement, the update, the resolved message and the explanation,
    in English and in German."""
    async with stage(tmp_path, ALICE, BEN, ERIKA, JONAS) as s:
        await s.results("payment", False, 3)
        tries = {
            ALICE: "pay for the course",
            BEN: "renew your subscription",
            ERIKA: "den Kurs bezahlen",
            JONAS: "das Abo verlängern",
        }
        for person, action in tries.items():
            attempt = Attempt("payment", person.id, action, s.clock.now())
            await s.app.notifier.report_attempt(attempt, person)
            s.clock.advance(7 * 60)
        await s.tick()
        await s.sent(4)
        incident = await s.incident_id()
        await s.app.notifier.add_note(incident, "We found the cause.", send=True)
        await s.tick()
        await s.sent(8)
        await s.results("payment", True, 2)
        await s.tick()
        await s.sent(12)
        s.clock.advance(DAY)
        await s.app.notifier.explain(incident, EXPLANATION)
        await s.tick()
        await s.sent(16)
        for kind in ("acknowledge", "update", "resolved", "explanation"):
            for one, other in ((ALICE, BEN), (ERIKA, JONAS)):
                texts = [
                    _without_names(s.mail(kind, p.id)[0].text, ALICE, BEN, ERIKA, JONAS)
                    for p in (one, other)
                ]
                assert texts[0] != texts[1], (kind, one.id)


def test_goodwill_for_a_system_no_check_declares_is_a_problem(tmp_path: Path) -> None:
    """A misspelt system under goodwill is named, with the one meant, by monitor validate's
    check of the templates; an empty goodwill text is refused with its field."""
    config = write_config(tmp_path / "checks")
    with (tmp_path / "checks" / "monitor.yaml").open("a") as yaml:
        yaml.write("goodwill: {default: A month free., paymnet: 20% off.}\n")
    config = load_config(tmp_path / "checks", {})
    problems = Composer.from_settings(MESSAGES, config.settings, systems_info(config)).validate()
    assert [(p.field, p.message) for p in problems] == [
        ("goodwill.paymnet", "no system is named 'paymnet' (did you mean 'payment'?)")
    ]
    (tmp_path / "checks" / "monitor.yaml").write_text("goodwill: {payment: '  '}\n")
    with pytest.raises(ConfigError) as refused:
        load_config(tmp_path / "checks", {})
    assert "goodwill" in str(refused.value)
    assert "empty" in str(refused.value)
