"""Each person's time and language: their zone and language tag, checked on the way in and kept
by both stores; their messages in their language's templates (falling back to the default
language's), every time and duration worded in that language at their clock, across DST."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from process import run_cli
from test_store_contract import backend, database, store  # noqa: F401  (fixtures: both backends)
from world import ALICE, SETTINGS, world

from monitor.config import ConfigError, Org, load_config
from monitor.model import (
    Attempt,
    IncidentView,
    MessageKind,
    Person,
    Reason,
    Recipient,
    SystemInfo,
)
from monitor.notify.composer import Composer, IncidentFacts
from monitor.people.csv_file import read_people
from monitor.store import Store

REPO = Path(__file__).resolve().parent.parent
MESSAGES = REPO / "messages"
ORG = Org(name="Example Ltd", support_phone="0800 123 456", support_email="help@example.com")
PAYMENT = SystemInfo("payment", "Online payments", "Pay by phone on 0800 123 456.")
LOGIN = SystemInfo("login", "Signing in", "")
SYSTEMS = {"payment": PAYMENT, "login": LOGIN}
HANNA = Person(
    "hanna",
    "Hanna Schmidt",
    "hanna@example.com",
    None,
    None,
    ("payment",),
    timezone="America/New_York",
    language="de",
)


def at(text: str) -> float:
    """A UTC moment, ``2026-03-08 06:30``."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def message(
    composer: Composer,
    person: Person,
    *,
    kind: MessageKind = MessageKind.ACKNOWLEDGE,
    started: float,
    now: float,
    system: SystemInfo = PAYMENT,
) -> tuple[str, str]:
    """The template ``composer`` picks for ``person`` and the text it renders."""
    tried = Attempt(system.name, person.id, "pay for the course", started + 60)
    recipient = Recipient(person, (system,), (tried,), started)
    resolved = now if kind is MessageKind.RESOLVED else None
    incident = IncidentView("7", started, resolved, system, (system,), "", "open")
    reason = Reason.RESOLVED if kind is MessageKind.RESOLVED else Reason.FIRST
    rendered = composer.render(kind, reason, recipient, incident, now)
    return composer.template_for(kind, recipient, incident), rendered.text


def started_at(composer: Composer, person: Person, started: float, now: float) -> str:
    """How ``person``'s message words the moment the incident started."""
    recipient = Recipient(person, (PAYMENT,), (), started)
    incident = IncidentView("7", started, None, PAYMENT, (PAYMENT,), "", "open")
    facts = composer.context(MessageKind.UPDATE, Reason.PERIODIC, recipient, incident, now)
    assert isinstance(facts["incident"], IncidentFacts)
    return facts["incident"].started_at


# the message ------------------------------------------------------------------------------


async def test_a_person_in_new_york_reading_german_is_told_in_german_at_new_york_time(
    tmp_path: Path,
) -> None:
    """Through the real store, notifier and SMTP: Hanna (New York, de) gets the German
    acknowledgement with New York's clock and html lang="de"; Alice, with neither, gets the
    English one at UTC, saying so."""
    async with world(tmp_path) as w:
        await w.people(ALICE, HANNA)
        await w.fail(["payment"])
        await w.wait(120)
        incident = (await w.incidents())[0]
        [hanna] = w.mail_to("hanna@example.com")
        new_york = datetime.fromtimestamp(incident.opened_at, ZoneInfo("America/New_York"))
        assert hanna.message["Subject"] == (
            "Entschuldigung: Online payments ist gestört – wir kümmern uns darum"
        )
        assert hanna.text.startswith("Guten Tag Hanna Schmidt,\n\nes tut mir leid: Wir haben ")
        assert f"Wir haben heute um {new_york:%H:%M} Uhr eine Störung" in hanna.text
        assert "spätestens in 24 Stunden" in hanna.text
        assert "UTC" not in hanna.text
        assert hanna.html is not None
        assert '<html lang="de">' in hanna.html
        [alice] = w.mail_to("alice@example.com")
        utc = datetime.fromtimestamp(incident.opened_at, UTC)
        assert f"stopped working at {utc:%-I:%M %p} UTC today" in alice.text


def test_a_missing_german_template_for_one_system_falls_back_to_the_default_language(
    tmp_path: Path,
) -> None:
    """With an English payment template and no German one, Hanna's payment message is the
    English override with English times (never mixed); her login message stays German."""
    messages = tmp_path / "messages"
    shutil.copytree(MESSAGES, messages)
    (messages / "payment").mkdir()
    (messages / "payment" / "acknowledge.j2").write_text(
        '{% extends "acknowledge.j2" %}{% block subject %}Payments are down{% endblock %}'
    )
    composer = Composer(messages, ORG, SYSTEMS)
    started, now = at("2027-01-15 14:00"), at("2027-01-15 14:05")
    name, text = message(composer, HANNA, started=started, now=now)
    assert name == "payment/acknowledge.j2"
    assert "stopped working at 9:00 AM today" in text
    name, text = message(composer, HANNA, started=started, now=now, system=LOGIN)
    assert name == "de/acknowledge.j2"
    assert "Wir haben heute um 09:00 Uhr eine Störung bei Signing in festgestellt." in text


def test_a_language_without_templates_gets_the_default_language_throughout() -> None:
    """A French reader, with no French templates, gets English, times in English too (at their
    own clock); an en-GB reader of the English templates gets Britain's 24-hour clock."""
    composer = Composer(MESSAGES, ORG, SYSTEMS)
    started, now = at("2027-01-15 14:00"), at("2027-01-15 14:05")
    french = Person("f", "Fleur", "f@example.com", timezone="Europe/Paris", language="fr")
    name, text = message(composer, french, started=started, now=now)
    assert name == "acknowledge.j2"
    assert "stopped working at 3:00 PM today" in text
    british = Person("g", "Grace", "g@example.com", timezone="Europe/London", language="en-GB")
    assert started_at(composer, british, started, now) == "14:00 today"


def test_durations_are_in_the_language_of_the_message() -> None:
    """How long it lasted, by Babel's plural rules: "1 Stunde und 20 Minuten" in German, as
    "1 hour 20 minutes" reads in English."""
    composer = Composer(MESSAGES, ORG, SYSTEMS)
    started = at("2027-01-15 14:00")
    now = started + 80 * 60
    _, german = message(composer, HANNA, kind=MessageKind.RESOLVED, started=started, now=now)
    assert (
        "Bei Ihnen hat sie 1 Stunde und 20 Minuten gedauert: Sie begann heute um 09:00 Uhr und "
        "endete heute um 10:20 Uhr." in german
    )
    _, english = message(composer, ALICE, kind=MessageKind.RESOLVED, started=started, now=now)
    assert (
        "It was down for you for 1 hour 20 minutes, from 2:00 PM UTC today until 3:20 PM UTC "
        "today." in english
    )


# DST ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "language", "moment", "now", "said"),
    [
        # New York springs forward at 2:00 on Sunday 8 March 2026 (07:00 UTC).
        ("America/New_York", "en", "2026-03-08 06:30", "2026-03-08 12:00", "1:30 AM today"),
        ("America/New_York", "en", "2026-03-08 07:30", "2026-03-08 12:00", "3:30 AM today"),
        ("America/New_York", "de", "2026-03-08 06:30", "2026-03-08 12:00", "heute um 01:30 Uhr"),
        ("America/New_York", "de", "2026-03-08 07:30", "2026-03-08 12:00", "heute um 03:30 Uhr"),
        # Berlin at 2:00 on Sunday 29 March 2026 (01:00 UTC).
        ("Europe/Berlin", "de", "2026-03-29 00:30", "2026-03-29 12:00", "heute um 01:30 Uhr"),
        ("Europe/Berlin", "de", "2026-03-29 01:30", "2026-03-29 12:00", "heute um 03:30 Uhr"),
        # 21:00 UTC is 23:00 in Berlin, and half an hour later it is the next day there.
        ("Europe/Berlin", "de", "2026-03-29 21:00", "2026-03-29 22:30", "gestern um 23:00 Uhr"),
        (
            "Europe/Berlin",
            "de",
            "2026-03-27 09:00",
            "2026-03-29 22:30",
            "am Freitag, 27. März um 10:00 Uhr",
        ),
    ],
)
def test_times_either_side_of_a_dst_change_are_worded_at_the_local_clock(
    zone: str, language: str, moment: str, now: str, said: str
) -> None:
    """A moment just before and just after the March change reads at that day's local clock,
    and "today" and "yesterday" are the person's days, not UTC's."""
    composer = Composer(MESSAGES, ORG, SYSTEMS)
    person = Person("p", "Pat", "p@example.com", timezone=zone, language=language)
    assert started_at(composer, person, at(moment), at(now)) == said


# the settings -------------------------------------------------------------------------------


def test_default_timezone_and_language_are_used_for_people_without_their_own(
    tmp_path: Path,
) -> None:
    """monitor.yaml's default_timezone and default_language word the message of a person who
    has neither (the zone not named: the operator chose it); a person's own win."""
    checks = tmp_path / "checks"
    checks.mkdir()
    settings = SETTINGS % {"mode": "auto", "limit": 6}
    (checks / "monitor.yaml").write_text(
        settings + "default_timezone: Europe/Berlin\ndefault_language: de\n"
    )
    config = load_config(checks, {})
    assert (config.settings.default_timezone, config.settings.default_language) == (
        "Europe/Berlin",
        "de",
    )
    composer = Composer.from_settings(MESSAGES, config.settings, SYSTEMS)
    started, now = at("2027-01-15 14:00"), at("2027-01-15 14:05")
    nobody = Person("n", "Nora", "n@example.com")
    name, text = message(composer, nobody, started=started, now=now)
    assert name == "de/acknowledge.j2"
    assert "Wir haben heute um 15:00 Uhr eine Störung" in text
    assert started_at(composer, HANNA, started, now) == "heute um 09:00 Uhr"


def test_an_unknown_default_timezone_or_language_is_refused_with_its_field(
    tmp_path: Path,
) -> None:
    """A zone or language the monitor cannot use is refused at load, naming the field and the
    line, with the close one when there is one."""
    checks = tmp_path / "checks"
    checks.mkdir()
    (checks / "monitor.yaml").write_text(
        "default_timezone: Europe/Berln\ndefault_language: de_DE\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_config(checks, {})
    found = {(p.line, p.field, p.message) for p in caught.value.problems}
    assert found == {
        (
            1,
            "default_timezone",
            "no time zone is named 'Europe/Berln' (did you mean 'Europe/Berlin'?): write an "
            "IANA name like America/New_York",
        ),
        (
            2,
            "default_language",
            "'de_DE' is not a language tag (did you mean 'de-DE'?): write one like de, en-US "
            "or pt-BR",
        ),
    }


# people in --------------------------------------------------------------------------------


def test_the_csv_import_reads_timezone_and_language_and_refuses_unknown_ones_by_line(
    tmp_path: Path,
) -> None:
    """The timezone and language columns are read (a tag written back in its usual form); an
    unknown zone or tag is a problem naming the file, line and column."""
    people = tmp_path / "people.csv"
    people.write_text(
        "id,name,email,phone,systems,timezone,language\n"
        "u1,Hanna,h@example.com,,payment,America/New_York,de\n"
        "u2,Ida,i@example.com,,payment,,en-us\n"
        "u3,Jo,j@example.com,,payment,Mars/Olympus,de\n"
        "u4,Kai,k@example.com,,payment,Europe/Berlin,klingon\n"
    )
    found = read_people(people, ["payment"])
    assert [(p.id, p.timezone, p.language) for p in found.people] == [
        ("u1", "America/New_York", "de"),
        ("u2", None, "en-US"),
    ]
    assert [(p.file, p.line, p.field) for p in found.problems] == [
        (str(people), 4, "timezone"),
        (str(people), 5, "language"),
    ]
    assert found.problems[0].message.startswith("no time zone is named 'Mars/Olympus'")
    assert found.problems[1].message.startswith("no language is named 'klingon'")


async def test_users_import_with_an_unknown_timezone_imports_nothing(tmp_path: Path) -> None:
    """``monitor users import`` refuses the file whole, naming the line of the bad zone."""
    people = tmp_path / "people.csv"
    people.write_text(
        "id,name,email,phone,systems,timezone\n"
        "u1,Hanna,h@example.com,,payment,America/New_York\n"
        "u2,Jo,j@example.com,,payment,Europe/Berln\n"
    )
    db = tmp_path / "monitor.db"
    code, out, err = await run_cli("users", "import", str(people), "--db", str(db))
    assert (code, out) == (1, "")
    assert err.splitlines()[0] == (
        f"{people}:3: timezone: no time zone is named 'Europe/Berln' (did you mean "
        "'Europe/Berlin'?): write an IANA name like America/New_York"
    )
    assert "nothing imported" in err.splitlines()[-1]


async def test_both_stores_keep_a_persons_timezone_and_language(
    store: Store,  # noqa: F811
) -> None:
    """What is saved is read back, by id and by subscription; an attempt fills in a zone and
    language the person did not have, and never replaces theirs."""
    plain = Person("p", "Pat", "p@example.com", systems=("payment",))
    await store.upsert_people([HANNA, plain])
    assert await store.person("hanna") == HANNA
    pages = [page async for page in store.subscriber_pages(["payment"])]
    assert [p for page in pages for p in page] == [HANNA, plain]
    berlin = Person("p", "", None, timezone="Europe/Berlin", language="de")
    await store.add_attempt(Attempt("payment", "p", "pay", 1.0), berlin)
    paris = Person("hanna", "", None, timezone="Europe/Paris", language="fr")
    await store.add_attempt(Attempt("payment", "hanna", "pay", 2.0), paris)
    assert await store.person("p") == Person(
        "p", "Pat", "p@example.com", None, None, ("payment",), "Europe/Berlin", "de"
    )
    assert await store.person("hanna") == HANNA


# the templates ------------------------------------------------------------------------------


async def test_validate_reports_a_broken_german_template_and_a_folder_of_no_language(
    tmp_path: Path,
) -> None:
    """``monitor validate`` renders the German templates too, naming the broken one's path,
    line and block, and a folder that is neither a system nor a language tag."""
    messages = tmp_path / "messages"
    shutil.copytree(MESSAGES, messages)
    update = messages / "de" / "update.j2"
    broken = update.read_text().replace("{{ incident.duration }}", "{{ incident.lasted }}")
    update.write_text(broken)
    (messages / "deutsch").mkdir()
    (messages / "deutsch" / "acknowledge.j2").write_text('{% extends "de/acknowledge.j2" %}')
    code, _, err = await run_cli("validate", "--messages", str(messages))
    assert code == 1
    lines = err.splitlines()
    assert any(
        line.startswith(f"{update}:60: sms: undefined: incident has no 'lasted'") for line in lines
    ), lines
    folder = messages / "deutsch" / "acknowledge.j2"
    assert any(
        line.startswith(f"{folder}: no system is named 'deutsch'")
        and "nor is it a language tag" in line
        for line in lines
    ), lines


def test_the_shipped_german_templates_pass_validate_and_fit_an_sms() -> None:
    """The shipped texts in both languages render for every sample without a problem (each sms
    within 320 characters)."""
    composer = Composer(MESSAGES, ORG, SYSTEMS)
    assert composer.validate() == []
