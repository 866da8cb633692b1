"""The message-quality checklist of VOICE.md as tests over every shipped template, in English and
German: each kind, rendered for realistic people (someone who tried something and a nameless
subscriber; one system or two; with and without workarounds, on-call's note and the org's
contact), says what a customer must read, and its SMS fits in 320 characters of the GSM
alphabet even with long values; the README's table of SMS lengths is what the templates render.

The phrases are matched by tolerant patterns, per language: the checklist asks that a thing is
said, not in which words."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import get_args

import pytest

from monitor.app import systems_info
from monitor.config import Org, load_config
from monitor.model import (
    Attempt,
    IncidentView,
    MessageKind,
    Person,
    Reason,
    Recipient,
    RenderedMessage,
    SystemInfo,
)
from monitor.notify.composer import MAX_SMS, REASONS, Composer, SamplePerson, sample_context

REPO = Path(__file__).resolve().parent.parent
MESSAGES = REPO / "messages"
LANGUAGES = ("en", "de")
FOLDER = {"en": "", "de": "de/"}
MAX_SUBJECT = 100

# SMS ---------------------------------------------------------------------------------------

# GSM 03.38's default alphabet (128 characters, ESC among them) and its extension table, whose
# characters are sent as ESC and the character: two septets each.
GSM_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENSION = "\f^{}\\[~]|€"


def sms_segments(text: str) -> tuple[str, int]:
    """The encoding ``text`` is sent in and how many SMS it takes: GSM-7 when every character is
    in GSM 03.38 (160 septets in one SMS, else 153 a part; an extension character takes two
    septets, never split across parts), else UCS-2 (70 UTF-16 units in one, else 67 a part; a
    surrogate pair never split)."""
    if all(char in GSM_BASIC or char in GSM_EXTENSION for char in text):
        units = [2 if char in GSM_EXTENSION else 1 for char in text]
        encoding, single, part = "GSM-7", 160, 153
    else:
        units = [len(char.encode("utf-16-le")) // 2 for char in text]
        encoding, single, part = "UCS-2", 70, 67
    if sum(units) <= single:
        return encoding, 1
    parts, used = 1, 0
    for size in units:
        if used + size > part:
            parts, used = parts + 1, 0
        used += size
    return encoding, parts


def outside_gsm(text: str) -> list[str]:
    return sorted({char for char in text if char not in GSM_BASIC and char not in GSM_EXTENSION})


# What each language says for each item of the checklist ------------------------------------


@dataclass(frozen=True)
class Voice:
    """How a language says each item of the checklist, as patterns (case-insensitive)."""

    sorry: str
    doing: str  # what the team is doing about it
    explain_later: tuple[str, str]  # both in one sentence: we will tell you why once we know
    hand_back: str  # the promise handed back: "call us if you'd like to know"
    next_word: str  # when they will hear from us next
    form_letter: str  # what no one writes to a person
    reach_us: str  # pointing to the org's contact


VOICES = {
    "en": Voice(
        sorry=r"\bsorry\b",
        doing=(
            r"\b(what we're doing|alerted|paged|notified|on it|investigating|fixing|"
            r"looking into|rolling (it )?back|restoring|repairing|"
            r"(is|are|am|'re|'m) (still |now |already )?working on)\b"
        ),
        explain_later=(
            r"\b(I'll|I will|we'll|we will)\b",
            r"\b(once|when|as soon as) we know\b|\bwe know why\b",
        ),
        hand_back=r"if you('d| would) like to know|call us to (find out|know)",
        next_word=r"\b(write again|let you know|hear from (us|me)|be in touch|update you)\b",
        form_letter=r"valued customer|inconvenience|dear customer",
        reach_us=r"if you need us|if you have any questions|call us|email us",
    ),
    "de": Voice(
        sorry=r"tut (mir|uns)( noch einmal)? leid|entschuldigung|entschuldigen",
        doing=(
            r"\b(was wir (gerade )?tun|alarmiert|benachrichtigt|verständigt|"
            r"arbeite[nt]?\b[^.]*\bdaran|kümmer\w* (uns|sich)|beheben|untersuch\w*|"
            r"sehen uns|schauen uns)\b"
        ),
        explain_later=(
            r"\b(ich|wir)\b",
            r"\b(sobald|wenn) wir (es|mehr|den grund) wissen\b|warum,? schreiben wir",
        ),
        hand_back=r"wenn sie (es )?wissen (möchten|wollen)|rufen sie (uns )?an, (um|wenn)",
        next_word=r"melde mich|melden uns|schreibe ihnen wieder|von (uns|mir) hören",
        form_letter=r"geehrte[r]? kund|unannehmlichkeiten",
        reach_us=r"falls sie uns|erreichen uns|schreiben sie uns|wenn sie fragen haben",
    ),
}
NEXT_UPDATE = {"en": "within 24 hours", "de": "in 24 Stunden"}  # update_every: 24h


def says(pattern: str, text: str) -> bool:
    return re.search(pattern, text, re.IGNORECASE) is not None


def sentences(text: str) -> list[str]:
    return re.split(r"(?<=[.!?])\s+|\n+", text)


def promises_to_explain(voice: Voice, text: str) -> bool:
    first, second = voice.explain_later
    return any(says(first, one) and says(second, one) for one in sentences(text))


def without_stop(text: str) -> str:
    """A sentence as a template may print it (``|sentence`` ends it with a full stop)."""
    return text.rstrip(".")


# Realistic people, systems and incidents ---------------------------------------------------

ORGS = {
    True: Org(name="Example Ltd", support_phone="0800 123 456", support_email="help@example.com"),
    False: Org(name="Example Ltd"),
}
START = datetime(2025, 3, 4, 14, 3, tzinfo=UTC).timestamp()  # a Tuesday afternoon
NOW = {
    Reason.FIRST: START + 4 * 60,
    Reason.GREW: START + 27 * 60,
    Reason.NOTE: START + 37 * 60,
    Reason.PERIODIC: START + 86400 + 7 * 60,
    Reason.RESOLVED: START + 82 * 60,
    Reason.EXPLANATION: START + 2 * 86400 + 3 * 3600,
}
RESOLVED_AT = START + 82 * 60


@dataclass(frozen=True)
class Words:
    """What one language's customers and on-call write: the org's system titles and
    workarounds, what a person tried, a name, on-call's note (a cause, not what they do) and
    explanation."""

    payment: SystemInfo
    login: SystemInfo
    action: str
    name: str
    timezone: str
    note: str
    explanation: str


# Internal names no customer should read ("pay-svc"): a message says titles.
WORDS = {
    "en": Words(
        payment=SystemInfo(
            "pay-svc",
            "Online payments",
            "Pay by phone on 0800 123 456 and we will process it by hand.",
        ),
        login=SystemInfo("auth-svc", "Signing in to your account", ""),
        action="pay for the Python course",
        name="Alice Martin",
        timezone="Europe/London",
        note="The card processor rejected every payment after an update this afternoon.",
        explanation=(
            "An update to our card processor sent every payment to a server that had been "
            "switched off. We now try each update on a copy first."
        ),
    ),
    "de": Words(
        payment=SystemInfo(
            "pay-svc",
            "Online-Zahlung",
            "Zahlen Sie telefonisch unter 0800 123 456, wir buchen die Zahlung dann von Hand.",
        ),
        login=SystemInfo("auth-svc", "Anmeldung in Ihrem Konto", ""),
        action="den Python-Kurs bezahlen",
        name="Hanna Schmidt",
        timezone="Europe/Berlin",
        note="Nach einem Update heute Nachmittag hat der Kartenanbieter jede Zahlung abgelehnt.",
        explanation=(
            "Ein Update unseres Kartenanbieters hat jede Zahlung an einen abgeschalteten Server "
            "geschickt. Wir testen jedes Update jetzt zuerst an einer Kopie."
        ),
    ),
}
# Long but plausible: a 40-character org name, two long system titles, a long explanation and
# a note of two clauses (the rest as usual); what an SMS must still carry whole.
LONG_ORG = Org(
    name="Northwind Outdoor Equipment & Travel Ltd",
    support_phone="+44 20 7946 0958",
    support_email="customer.support@northwind-outdoor.example",
)
LONG_WORDS = {
    "en": Words(
        payment=SystemInfo(
            "pay-svc",
            "Online card payments and bank transfers",
            "Pay by phone on 0800 123 456 and we will process it by hand.",
        ),
        login=SystemInfo("auth-svc", "Signing in to your learner account", ""),
        action="pay for the Data Science course",
        name="Alexandra Fitzgerald",
        timezone="America/Los_Angeles",
        note=(
            "The update we installed this afternoon broke card payments; we are rolling it "
            "back and expect them to work within the hour."
        ),
        explanation=(
            "An update to our card processor on Tuesday sent every payment to a server that "
            "had been switched off the week before. We now try each update on a copy of the "
            "payment system first, and an alarm tells us within a minute when payments stop "
            "going through, so that we can act before customers are affected."
        ),
    ),
    "de": Words(
        payment=SystemInfo(
            "pay-svc",
            "Online-Zahlung per Kreditkarte und Überweisung",
            "Zahlen Sie telefonisch unter 0800 123 456, wir buchen die Zahlung dann von Hand.",
        ),
        login=SystemInfo("auth-svc", "Anmeldung in Ihrem Kundenkonto", ""),
        action="den Data-Science-Kurs bezahlen",
        name="Katharina Müller-Weber",
        timezone="Europe/Vienna",
        note=(
            "Das Update von heute Nachmittag hat die Kartenzahlung gestört; wir nehmen es "
            "zurück, in einer Stunde sollte sie wieder gehen."
        ),
        explanation=(
            "Ein Update unseres Kartenanbieters am Dienstag hat jede Zahlung an einen Server "
            "geschickt, der schon eine Woche abgeschaltet war. Wir testen jedes Update jetzt "
            "zuerst an einer Kopie des Zahlungssystems, und ein Alarm meldet uns binnen einer "
            "Minute, wenn keine Zahlungen mehr durchgehen."
        ),
    ),
}

# Each kind for each reason it is sent, and the resolved message with and without on-call's
# explanation given before the fix.
MESSAGES_SENT: tuple[tuple[MessageKind, Reason, bool], ...] = (
    (MessageKind.ACKNOWLEDGE, Reason.FIRST, False),
    (MessageKind.UPDATE, Reason.GREW, False),
    (MessageKind.UPDATE, Reason.NOTE, False),
    (MessageKind.UPDATE, Reason.PERIODIC, False),
    (MessageKind.RESOLVED, Reason.RESOLVED, False),
    (MessageKind.RESOLVED, Reason.RESOLVED, True),
    (MessageKind.EXPLANATION, Reason.EXPLANATION, True),
)


@dataclass(frozen=True)
class Case:
    """One message as a person gets it."""

    language: str
    kind: MessageKind
    reason: Reason
    named: bool  # the named person who tried something; else a nameless subscriber
    systems: tuple[SystemInfo, ...]
    contact: bool
    note: str
    explanation: str
    words: Words
    message: RenderedMessage

    def __str__(self) -> str:
        who = f"{self.words.name} (tried {self.words.action!r})" if self.named else "subscriber"
        return (
            f"{FOLDER[self.language]}{self.kind.value}.j2 ({self.reason.value}) to {who} "
            f"about {' and '.join(s.title for s in self.systems)}"
            f"{', with a note' if self.note else ''}"
            f"{', explained' if self.explanation else ''}"
            f"{', org contact' if self.contact else ', no org contact'}"
        )


@functools.cache
def composer(org: Org) -> Composer:
    systems = {
        info.name: info
        for words in (*WORDS.values(), *LONG_WORDS.values())
        for info in (words.payment, words.login)
    }
    return Composer(MESSAGES, org, systems)


def render(
    language: str,
    words: Words,
    org: Org,
    kind: MessageKind,
    reason: Reason,
    *,
    named: bool,
    systems: tuple[SystemInfo, ...],
    note: str,
    explanation: str,
) -> RenderedMessage:
    if named:
        person = Person(
            id="u-1042",
            name=words.name,
            email="alice@example.com",
            phone="+44 7700 900123",
            timezone=words.timezone,
            language=language,
        )
        tried = Attempt(systems[0].name, person.id, words.action, START + 120)
        recipient = Recipient(person, systems, (tried,), START + 60)
    else:
        person = Person(
            id="u-2208",
            email="orders@northwind.example",
            systems=tuple(info.name for info in systems),
            language=language,
        )
        recipient = Recipient(person, systems, (), START)
    resolved = kind in (MessageKind.RESOLVED, MessageKind.EXPLANATION)
    incident = IncidentView(
        id="42",
        started_at=START,
        resolved_at=RESOLVED_AT if resolved else None,
        cause=systems[0],
        systems=systems,
        note=note,
        status="resolved" if resolved else "open",
        explanation=explanation,
    )
    return composer(org).render(kind, reason, recipient, incident, NOW[reason])


def cases_for(language: str, words: Words, orgs: dict[bool, Org]) -> Iterator[Case]:
    one_with_workaround = (words.payment,)
    one_without = (words.login,)
    both = (words.payment, words.login)
    for kind, reason, explained in MESSAGES_SENT:
        for named in (True, False):
            for systems in (one_with_workaround, one_without, both):
                if reason is Reason.GREW and len(systems) == 1:
                    continue  # it grew: more than one of theirs is affected now
                for contact, org in orgs.items():
                    notes = (words.note,) if reason is Reason.NOTE else ("", words.note)
                    for note in notes:
                        explanation = words.explanation if explained else ""
                        message = render(
                            language,
                            words,
                            org,
                            kind,
                            reason,
                            named=named,
                            systems=systems,
                            note=note,
                            explanation=explanation,
                        )
                        yield Case(
                            language,
                            kind,
                            reason,
                            named,
                            systems,
                            contact,
                            note,
                            explanation,
                            words,
                            message,
                        )


@functools.cache
def realistic(language: str) -> tuple[Case, ...]:
    return tuple(cases_for(language, WORDS[language], ORGS))


@functools.cache
def long_values(language: str) -> tuple[Case, ...]:
    return tuple(cases_for(language, LONG_WORDS[language], {True: LONG_ORG}))


def failures(cases: tuple[Case, ...], check: Callable[[Case], str | None]) -> list[str]:
    """``check``'s complaint about each case it has one for, each naming the case."""
    found = []
    for case in cases:
        complaint = check(case)
        if complaint:
            found.append(f"{case}: {complaint}")
    return found


def report(found: list[str]) -> str:
    return f"{len(found)} messages fail:\n" + "\n".join(found[:25])


by_language = pytest.mark.parametrize("language", LANGUAGES)

# The checklist -----------------------------------------------------------------------------


@by_language
def test_acknowledge_resolved_and_explanation_say_sorry_in_the_text_and_the_sms(
    language: str,
) -> None:
    """The first word, the fix and the explanation each say sorry plainly, in the email and in
    the SMS someone reached only by phone gets."""
    voice = VOICES[language]
    apologising = (MessageKind.ACKNOWLEDGE, MessageKind.RESOLVED, MessageKind.EXPLANATION)

    def check(case: Case) -> str | None:
        if case.kind not in apologising:
            return None
        missing = [
            part for part in ("text", "sms") if not says(voice.sorry, getattr(case.message, part))
        ]
        return f"no apology in the {' or '.join(missing)}" if missing else None

    found = failures(realistic(language), check)
    assert not found, report(found)


@by_language
def test_every_message_says_what_is_wrong_in_the_persons_terms(language: str) -> None:
    """Every message names what the person tried (or, for a subscriber, each of their systems
    by its title) and greets a named person by name; no part shows a system's internal name."""

    def check(case: Case) -> str | None:
        message = case.message
        if case.named and case.words.action not in message.text:
            return f"the text does not say what they tried ({case.words.action!r})"
        if case.named and case.words.name.split()[0] not in message.text:
            return "the text does not greet them by name"
        if not case.named:
            untold = [s.title for s in case.systems if s.title not in message.text]
            if untold:
                return f"the text does not name {untold}"
        for part in ("subject", "text", "html", "sms"):
            shown = getattr(message, part) or ""
            leaked = [s.name for s in case.systems if s.name in shown]
            if leaked:
                return f"the {part} shows internal names {leaked}"
        return None

    found = failures(realistic(language), check)
    assert not found, report(found)


@by_language
def test_every_message_says_why_or_promises_to_explain_and_never_hands_it_back(
    language: str,
) -> None:
    """On-call's note (acknowledge, update) or explanation (resolved, explanation) is in the
    text; without it the text promises to tell them why once we know, and a resolved message
    never hands the question back to the customer."""
    voice = VOICES[language]

    def check(case: Case) -> str | None:
        text = case.message.text
        if case.kind is MessageKind.EXPLANATION or case.explanation:
            if without_stop(case.explanation) not in text:
                return "the explanation is not in the text"
        elif case.kind in (MessageKind.ACKNOWLEDGE, MessageKind.UPDATE) and case.note:
            if without_stop(case.note) not in text:
                return "on-call's note is not in the text"
        elif not promises_to_explain(voice, text):
            return "no why, and no promise to explain once we know"
        if case.kind is MessageKind.RESOLVED and says(voice.hand_back, text):
            return "it hands the promise back to the customer"
        if (
            case.kind is MessageKind.RESOLVED
            and not case.explanation
            and not promises_to_explain(voice, case.message.sms)
        ):
            return "the sms does not promise to explain"
        return None

    found = failures(realistic(language), check)
    assert not found, report(found)


@by_language
def test_acknowledge_and_update_say_what_we_are_doing(language: str) -> None:
    """The first word and every update say what the team is doing about it, whether or not
    on-call's note says why."""
    voice = VOICES[language]

    def check(case: Case) -> str | None:
        if case.kind not in (MessageKind.ACKNOWLEDGE, MessageKind.UPDATE):
            return None
        if not any(says(voice.doing, one) for one in sentences(case.message.text)):
            return "the text does not say what we are doing"
        return None

    found = failures(realistic(language), check)
    assert not found, report(found)


@by_language
def test_acknowledge_and_update_offer_each_systems_workaround(language: str) -> None:
    """While it lasts, the text offers the workaround of each affected system that has one, and
    the first SMS offers it when one system with a workaround is affected."""

    def check(case: Case) -> str | None:
        if case.kind not in (MessageKind.ACKNOWLEDGE, MessageKind.UPDATE):
            return None
        for system in case.systems:
            if system.workaround and without_stop(system.workaround) not in case.message.text:
                return f"the text does not offer {system.title}'s workaround"
        only = case.systems[0] if len(case.systems) == 1 else None
        if (
            case.kind is MessageKind.ACKNOWLEDGE
            and only is not None
            and only.workaround
            and without_stop(only.workaround) not in case.message.sms
        ):
            return "the sms does not offer the workaround"
        return None

    found = failures(realistic(language), check)
    assert not found, report(found)


@by_language
def test_acknowledge_and_update_say_when_they_will_hear_from_us_next(language: str) -> None:
    """While it lasts, the text promises to write again when it is fixed and by ``next_update``
    at the latest, and the SMS that it will let them know."""
    voice = VOICES[language]

    def check(case: Case) -> str | None:
        if case.kind not in (MessageKind.ACKNOWLEDGE, MessageKind.UPDATE):
            return None
        text, sms = case.message.text, case.message.sms
        if not says(voice.next_word, text) or NEXT_UPDATE[language] not in text:
            return f"the text does not say we will write again ({NEXT_UPDATE[language]!r})"
        if not says(voice.next_word, sms):
            return "the sms does not say we will let them know"
        return None

    found = failures(realistic(language), check)
    assert not found, report(found)


@by_language
def test_the_org_contact_is_offered_only_when_the_org_has_one(language: str) -> None:
    """With a support phone and email configured, every message but a resolved one that
    explains itself says how to reach us; without them, none points to a contact it lacks."""
    voice = VOICES[language]

    def check(case: Case) -> str | None:
        text = case.message.text
        if not case.contact:
            if says(voice.reach_us, text):
                return "it offers a way to reach us, though the org has none"
            return None
        wanted = not (case.kind is MessageKind.RESOLVED and case.explanation)
        if wanted and "help@example.com" not in text:
            return "it gives no way to reach us"
        return None

    found = failures(realistic(language), check)
    assert not found, report(found)


@by_language
def test_nothing_unrendered_empty_or_form_letter_reaches_the_customer(language: str) -> None:
    """No part shows template syntax, a Python ``None`` or empty list, or a form-letter phrase
    ("valued customer", "any inconvenience")."""
    voice = VOICES[language]
    leaks = ("{{", "}}", "{%", "%}", "{#", "#}", "[]", "()", "''", "Undefined")

    def check(case: Case) -> str | None:
        for part in ("subject", "text", "html", "sms"):
            shown = getattr(case.message, part) or ""
            found = [leak for leak in leaks if leak in shown]
            if found or re.search(r"\bNone\b", shown):
                return f"the {part} shows {found or ['None']}"
            if says(voice.form_letter, shown):
                return f"the {part} reads like a form letter"
        return None

    found = failures((*realistic(language), *long_values(language)), check)
    assert not found, report(found)


@by_language
def test_the_html_part_says_the_language_of_the_text(language: str) -> None:
    """Every message has an html part whose ``<html lang>`` is its language (screen readers and
    mail apps read it so)."""

    def check(case: Case) -> str | None:
        html = case.message.html or ""
        found = re.search(r'<html\b[^>]*\blang="([^"]*)"', html)
        if found is None:
            return "the html part has no <html lang>"
        if found.group(1) != language:
            return f'the html part says lang="{found.group(1)}"'
        return None

    found = failures(realistic(language), check)
    assert not found, report(found)


@by_language
def test_the_subject_is_one_line_of_at_most_100_characters(language: str) -> None:
    """Every subject is one line of at most 100 characters, so a mail app shows it whole, even
    with two long system titles."""

    def check(case: Case) -> str | None:
        subject = case.message.subject
        if "\n" in subject or not subject.strip():
            return f"the subject is not one line: {subject!r}"
        if len(subject) > MAX_SUBJECT:
            return f"the subject is {len(subject)} characters: {subject!r}"
        return None

    found = failures((*realistic(language), *long_values(language)), check)
    assert not found, report(found)


@by_language
def test_every_sms_fits_in_320_gsm_characters_even_with_long_values(language: str) -> None:
    """With a 40-character org name, long titles, name, action, note and explanation, each SMS
    is written whole (not cut with "…") in at most 320 characters, all of them in the GSM
    alphabet, so it is sent as at most three 7-bit SMS and never as UCS-2."""

    def check(case: Case) -> str | None:
        sms = case.message.sms
        if len(sms) > MAX_SMS or sms.endswith("…"):
            return f"the sms is cut at {MAX_SMS} characters: {sms!r}"
        odd = outside_gsm(sms)
        if odd:
            return f"the sms has {odd}, outside the GSM alphabet (sent as UCS-2): {sms!r}"
        return None

    found = failures((*realistic(language), *long_values(language)), check)
    assert not found, report(found)


# SMS segments ------------------------------------------------------------------------------


def test_the_gsm_alphabet_has_its_128_characters_and_10_extensions() -> None:
    """The alphabet the segment count uses is GSM 03.38's: 128 distinct basic characters and
    the 10 of the extension table."""
    assert len(set(GSM_BASIC)) == len(GSM_BASIC) == 128
    assert len(set(GSM_EXTENSION)) == len(GSM_EXTENSION) == 10
    assert not set(GSM_BASIC) & set(GSM_EXTENSION)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ("GSM-7", 1)),
        ("a" * 160, ("GSM-7", 1)),
        ("a" * 161, ("GSM-7", 2)),
        ("ä" * 306, ("GSM-7", 2)),
        ("a" * 307, ("GSM-7", 3)),
        ("€" * 80, ("GSM-7", 1)),  # an extension character takes two septets
        ("€" * 81, ("GSM-7", 2)),
        ("a" * 152 + "€" + "a" * 152, ("GSM-7", 3)),  # ESC and € are never split
        ("„" + "a" * 69, ("UCS-2", 1)),
        ("a" * 70 + "–", ("UCS-2", 2)),
        ("a" * 133 + "…", ("UCS-2", 2)),
        ("a" * 134 + "…", ("UCS-2", 3)),
        ("😀" * 35, ("UCS-2", 1)),  # two UTF-16 units each
        ("a" * 66 + "😀" + "a" * 66, ("UCS-2", 3)),  # a surrogate pair is never split
    ],
)
def test_sms_segments_are_counted_by_gsm_03_38(text: str, expected: tuple[str, int]) -> None:
    """A text in the GSM alphabet takes 160 septets in one SMS, else 153 a part (an extension
    character two); any other character makes it UCS-2, 70 units in one SMS, else 67 a part."""
    assert sms_segments(text) == expected


# The README's table ------------------------------------------------------------------------

README = REPO / "README.md"
KINDS_IN_README = tuple(MessageKind)


def span(values: list[int], unit: str = "") -> str:
    low, high = min(values), max(values)
    return f"{low}{unit}" if low == high else f"{low}–{high}{unit}"


def segments_said(texts: list[str]) -> str:
    counted = [sms_segments(text) for text in texts]
    encodings = sorted({encoding for encoding, _ in counted})
    said = span([parts for _, parts in counted])
    return said if encodings == ["GSM-7"] else f"{said} ({', '.join(encodings)})"


def sample_sms(language: str, kind: MessageKind) -> list[str]:
    """Each SMS of ``kind`` that ``monitor validate`` renders with the shipped checks/ (each
    system as the cause and affected, every reason, Alice Martin and a nameless subscriber)."""
    config = load_config(REPO / "checks", {})
    systems = systems_info(config)
    composer = Composer.from_settings(MESSAGES, config.settings, systems)
    texts = []
    for system in sorted(systems):
        for reason in REASONS[kind]:
            for person in get_args(SamplePerson):
                for as_cause in (True, False):
                    sample = sample_context(
                        systems,
                        system,
                        kind,
                        reason,
                        as_cause=as_cause,
                        person=person,
                        language=None if language == "en" else language,
                    )
                    message = composer.render(
                        sample.kind, sample.reason, sample.recipient, sample.incident, sample.now
                    )
                    texts.append(message.sms)
    return texts


def sms_table() -> str:
    """The README's table: each default's SMS length and segments, with the sample data and at
    the longest with long values."""
    rows = [
        "| template | sample data: characters | SMS | long values: characters | SMS |",
        "| --- | --- | --- | --- | --- |",
    ]
    for language in LANGUAGES:
        for kind in KINDS_IN_README:
            sample = sample_sms(language, kind)
            long = [case.message.sms for case in long_values(language) if case.kind is kind]
            worst = max(long, key=lambda sms: (sms_segments(sms)[1], len(sms)))
            cut = ", cut" if any(sms.endswith("…") for sms in long) else ""
            rows.append(
                f"| `{FOLDER[language]}{kind.value}.j2` | {span([len(s) for s in sample])} "
                f"| {segments_said(sample)} | {max(len(s) for s in long)}{cut} "
                f"| {segments_said([worst])} |"
            )
    return "\n".join(rows)


def test_the_readme_table_of_sms_lengths_is_what_the_templates_render() -> None:
    """The README's table of each default's SMS length and segments, in both languages, is what
    the shipped templates render now (with the sample data, and with long values)."""
    table = sms_table()
    assert table in README.read_text(encoding="utf-8"), (
        "README.md's SMS table is stale; it should read:\n" + table
    )
