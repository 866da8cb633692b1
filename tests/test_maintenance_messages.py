"""The message checklist (tests/test_message_checklist.py) for planned work, in English and
German: the notice says what the work is, when at the person's clock and in their language,
that their systems may not work then, what they can do meanwhile and whom to contact; the
note after says it is done; the word that it is cancelled says which work, when, that it will
not happen as announced, that there is nothing to do and that a new time would be told ahead;
all greet by name, name systems by title, fit a one-line subject of at most 100 characters,
and an SMS of at most 320 GSM characters even with long values."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from test_message_checklist import (
    LONG_ORG,
    LONG_WORDS,
    MAX_SUBJECT,
    ORGS,
    VOICES,
    WORDS,
    Words,
    composer,
    outside_gsm,
    says,
)

from monitor.config import Org
from monitor.maintenance import NoticeKind, Occurrence, Window
from monitor.model import Person, Recipient, RenderedMessage, SystemInfo
from monitor.notify.composer import MAX_SMS

LANGUAGES = ("en", "de")
UTC = ZoneInfo("UTC")
# The work on Sunday night 2025-03-09, 01:00 to 03:00 UTC; told on Saturday at noon UTC, over
# at 03:10 UTC, or cancelled on Saturday at 19:00 UTC.
START = datetime(2025, 3, 9, 1, 0, tzinfo=UTC).timestamp()
END = START + 2 * 3600
NOW = {
    NoticeKind.NOTICE: START - 13 * 3600,
    NoticeKind.OVER: END + 600,
    NoticeKind.CANCELLED: START - 6 * 3600,
}
NOTE = {
    "en": "We are moving our payment database to a faster server.",
    "de": "Wir ziehen unsere Zahlungsdatenbank auf einen schnelleren Server um.",
}
# When each language's reader, at their own clock, reads the work is (WORDS' zones: London is
# UTC in March, Berlin UTC+1): "tomorrow" from Saturday noon.
WHEN = {
    "en": "tomorrow from 1:00 AM to 3:00 AM",
    "de": "morgen von 02:00 Uhr bis 04:00 Uhr",
}
DONE = {"en": r"\b(is done|is over|finished)\b", "de": r"\b(abgeschlossen|vorbei|beendet)\b"}
MAY_NOT_WORK = {"en": r"may not work|won't work|unavailable", "de": r"nicht nutzen|nicht gehen"}
NOTHING_TO_DO = {"en": r"don't need to do anything", "de": r"müssen nichts tun"}
NOTHING_TO_DO_SMS = {"en": r"nothing for you to do", "de": r"müssen nichts tun"}
CALLED_OFF = {"en": r"won't happen as announced", "de": r"finden nicht wie angekündigt statt"}
TOLD_AHEAD = {"en": r"tell you ahead", "de": r"vorher Bescheid|melden wir uns vorher"}


@dataclass(frozen=True)
class Case:
    language: str
    kind: NoticeKind
    named: bool
    systems: tuple[SystemInfo, ...]
    contact: bool
    words: Words
    message: RenderedMessage

    def __str__(self) -> str:
        who = self.words.name if self.named else "subscriber"
        return (
            f"{self.language} {self.kind.value} to {who} about "
            f"{' and '.join(s.title for s in self.systems)}"
            f"{', org contact' if self.contact else ', no org contact'}"
        )


def render(
    language: str,
    words: Words,
    org: Org,
    kind: NoticeKind,
    *,
    named: bool,
    systems: tuple[SystemInfo, ...],
) -> RenderedMessage:
    names = tuple(info.name for info in systems)
    person = (
        Person(
            "u-1042", words.name, "alice@example.com", None, None, names, words.timezone, language
        )
        if named
        else Person("u-2208", "", "orders@northwind.example", None, None, names, None, language)
    )
    # Cancelled, the window is gone: its note with it.
    note = "" if kind is NoticeKind.CANCELLED else NOTE[language]
    window = Window("db-move", names, note, "UTC", "test", start=START, end=END)
    occurrence = Occurrence(window, START, END)
    recipient = Recipient(person, systems, (), START)
    return composer(org).render_planned(kind, recipient, occurrence, NOW[kind])


def cases_for(language: str, words: Words, orgs: dict[bool, Org]) -> Iterator[Case]:
    for kind in NoticeKind:
        for named in (True, False):
            for systems in ((words.payment,), (words.login,), (words.payment, words.login)):
                for contact, org in orgs.items():
                    message = render(language, words, org, kind, named=named, systems=systems)
                    yield Case(language, kind, named, systems, contact, words, message)


@functools.cache
def realistic(language: str) -> tuple[Case, ...]:
    return tuple(cases_for(language, WORDS[language], ORGS))


@functools.cache
def long_values(language: str) -> tuple[Case, ...]:
    return tuple(cases_for(language, LONG_WORDS[language], {True: LONG_ORG}))


def complaints(cases: tuple[Case, ...], check: object) -> list[str]:
    assert callable(check)
    return [f"{case}: {said}" for case in cases if (said := check(case))]


by_language = pytest.mark.parametrize("language", LANGUAGES)


@by_language
def test_the_notice_says_what_when_at_their_clock_that_it_may_not_work_and_what_to_do(
    language: str,
) -> None:
    """The notice carries on-call's note, when the work is at the named person's clock (the
    nameless subscriber's in UTC, saying so), that their systems may not work then, each one's
    workaround (or that they need not do anything), and that we will write when it is done."""
    voice = VOICES[language]

    def check(case: Case) -> str | None:
        if case.kind is not NoticeKind.NOTICE:
            return None
        text = " ".join(case.message.text.split())
        if NOTE[language].rstrip(".") not in text:
            return "the note (what the work is) is not in the text"
        when = WHEN[language] if case.named else None
        if when is not None and when not in text:
            return f"the text does not say {when!r}"
        if not case.named and "UTC" not in text:
            return "a time without the person's zone does not name UTC"
        if not says(MAY_NOT_WORK[language], text):
            return "the text does not say their systems may not work"
        for system in case.systems:
            if system.workaround and system.workaround.rstrip(".") not in text:
                return f"the text does not offer {system.title}'s workaround"
        if not any(s.workaround for s in case.systems) and not says(NOTHING_TO_DO[language], text):
            return "the text says neither a workaround nor that nothing needs doing"
        if not says(voice.next_word, text) or not says(voice.next_word, case.message.sms):
            return "it does not say we will write when it is done"
        return None

    found = complaints(realistic(language), check)
    assert not found, "\n".join(found[:20])


@by_language
def test_the_note_after_says_it_is_done_and_their_systems_work(language: str) -> None:
    """Once over, the note says the work is done, in the text and the SMS, naming their
    systems."""

    def check(case: Case) -> str | None:
        if case.kind is not NoticeKind.OVER:
            return None
        text = " ".join(case.message.text.split())
        if not says(DONE[language], text) or not says(DONE[language], case.message.sms):
            return "it does not say the work is done"
        untold = [s.title for s in case.systems if s.title not in text]
        return f"the text does not name {untold}" if untold else None

    found = complaints(realistic(language), check)
    assert not found, "\n".join(found[:20])


@by_language
def test_the_cancellation_says_which_work_when_that_it_is_off_and_nothing_is_to_do(
    language: str,
) -> None:
    """The word that it is cancelled names their systems and when the work was to be (at the
    named person's clock), says it will not happen as announced, that they need do nothing,
    and that a new time would be told ahead; the SMS says it is off and nothing is to do."""

    def check(case: Case) -> str | None:
        if case.kind is not NoticeKind.CANCELLED:
            return None
        text = " ".join(case.message.text.split())
        untold = [s.title for s in case.systems if s.title not in text]
        if untold:
            return f"the text does not name {untold}"
        if case.named and WHEN[language] not in text:
            return f"the text does not say {WHEN[language]!r}"
        if not says(CALLED_OFF[language], text) or not says(CALLED_OFF[language], case.message.sms):
            return "it does not say the work will not happen as announced"
        if not says(NOTHING_TO_DO[language], text):
            return "the text does not say there is nothing to do"
        if not says(NOTHING_TO_DO_SMS[language], case.message.sms):
            return "the sms does not say there is nothing to do"
        if not says(TOLD_AHEAD[language], text):
            return "the text does not say a new time would be told ahead"
        return None

    found = complaints(realistic(language), check)
    assert not found, "\n".join(found[:20])


@by_language
def test_each_greets_by_name_shows_titles_and_offers_the_contact_only_when_there_is_one(
    language: str,
) -> None:
    """A named person is greeted by name; no part shows a system's internal name; the org's
    contact is offered when it has one, and no contact is invented when it has none."""
    voice = VOICES[language]

    def check(case: Case) -> str | None:
        text = case.message.text
        if case.named and case.words.name.split()[0] not in text:
            return "the text does not greet them by name"
        for part in ("subject", "text", "html", "sms"):
            shown = getattr(case.message, part) or ""
            if any(s.name in shown for s in case.systems):
                return f"the {part} shows an internal name"
        if case.contact and "help@example.com" not in text:
            return "it gives no way to reach us"
        if not case.contact and says(voice.reach_us, text):
            return "it offers a way to reach us, though the org has none"
        return None

    found = complaints(realistic(language), check)
    assert not found, "\n".join(found[:20])


@by_language
def test_subject_sms_and_html_fit_even_with_long_values(language: str) -> None:
    """One-line subjects of at most 100 characters; SMS whole in 320 characters of the GSM
    alphabet; html in the message's language; nothing unrendered or form-letter."""
    voice = VOICES[language]
    leaks = ("{{", "}}", "{%", "%}", "[]", "()", "Undefined")

    def check(case: Case) -> str | None:
        subject, sms = case.message.subject, case.message.sms
        if "\n" in subject or not subject or len(subject) > MAX_SUBJECT:
            return f"the subject does not fit: {subject!r}"
        if len(sms) > MAX_SMS or sms.endswith("..."):
            return f"the sms is cut: {sms!r}"
        if outside_gsm(sms):
            return f"the sms has {outside_gsm(sms)}, outside the GSM alphabet"
        found = re.search(r'<html\b[^>]*\blang="([^"]*)"', case.message.html or "")
        if found is None or found.group(1) != language:
            return "the html part does not say its language"
        for part in ("subject", "text", "sms"):
            shown = getattr(case.message, part)
            if any(leak in shown for leak in leaks) or re.search(r"\bNone\b", shown):
                return f"the {part} shows template syntax or None"
            if says(voice.form_letter, shown):
                return f"the {part} reads like a form letter"
        return None

    found = complaints((*realistic(language), *long_values(language)), check)
    assert not found, "\n".join(found[:20])
