"""The customer messages, read the way the customer reads them: the shipped templates in
messages/, and hostile templates and customer data in temporary copies."""

from __future__ import annotations

import re
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from markupsafe import escape

from monitor.config import Org, Problem
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
from monitor.notify.composer import (
    MAX_SMS,
    REASONS,
    Composer,
    IncidentFacts,
    SamplePerson,
    TemplateError,
    human_join,
    paragraphs,
    sample_action,
    sample_context,
    sentence,
)

MESSAGES = Path(__file__).resolve().parent.parent / "messages"
ORG = Org(name="Example Ltd", support_phone="0800 123 456", support_email="help@example.com")
SYSTEMS = {
    "payment": SystemInfo(
        "payment", "Online payments", "Pay by phone on 0800 123 456 and we will process it by hand."
    ),
    "login": SystemInfo(
        "login", "Signing in to your account", "Your account and your data are safe."
    ),
    "crm": SystemInfo("crm", "Your order history"),  # no workaround
}
START = datetime(2025, 3, 4, 14, 0, tzinfo=UTC).timestamp()
MINUTE = 60.0
LONG_NOTE = (
    "The card processor's update did not apply; we rolled it back and now check every update "
    "before it goes live."
)


def incident(
    cause: str = "payment",
    systems: tuple[str, ...] = ("payment",),
    note: str = "",
    resolved_at: float | None = None,
) -> IncidentView:
    return IncidentView(
        id="7",
        started_at=START,
        resolved_at=resolved_at,
        cause=SYSTEMS[cause],
        systems=tuple(SYSTEMS[name] for name in systems),
        note=note,
        status="open" if resolved_at is None else "resolved",
    )


def recipient(
    name: str = "Alice Martin",
    action: str | None = "buy the LinkedIn course",
    systems: tuple[str, ...] = ("payment",),
) -> Recipient:
    person = Person(id="u1", name=name, email="alice@example.com", phone="+447700900123")
    attempts = () if action is None else (Attempt(systems[0], "u1", action, START + MINUTE),)
    return Recipient(person, tuple(SYSTEMS[s] for s in systems), attempts, START + MINUTE)


def render(
    composer: Composer,
    kind: MessageKind = MessageKind.ACKNOWLEDGE,
    reason: Reason = Reason.FIRST,
    who: Recipient | None = None,
    about: IncidentView | None = None,
    now: float = START + 5 * MINUTE,
) -> RenderedMessage:
    return composer.render(kind, reason, who or recipient(), about or incident(), now)


def resolved_at(minutes: float) -> IncidentView:
    return incident(note=LONG_NOTE, resolved_at=START + minutes * MINUTE)


@pytest.fixture(scope="module")
def composer() -> Composer:
    return Composer(MESSAGES, ORG, SYSTEMS)


@pytest.fixture
def messages(tmp_path: Path) -> Path:
    """A copy of the shipped templates to add overrides or hostile templates to."""
    copy = tmp_path / "messages"
    shutil.copytree(MESSAGES, copy)
    return copy


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def problems_in(messages: Path) -> list[Problem]:
    return Composer(messages, ORG, SYSTEMS).validate()


# The acknowledgement.


def test_acknowledgement_says_sorry_by_name_for_what_they_tried(composer: Composer) -> None:
    """The acknowledgement opens with the first name, a plain sorry and the failed action."""
    message = render(composer)
    assert message.text.startswith(
        "Alice, I'm sorry — you couldn't buy the LinkedIn course at 2:01 PM UTC today."
    )
    assert "buy the LinkedIn course" in message.subject
    assert message.text.count("sorry") == 1
    assert message.text.rstrip().endswith("Example Ltd")


def test_acknowledgement_names_each_affected_system_with_its_workaround(
    composer: Composer,
) -> None:
    """Each of the person's affected systems appears by title, with its workaround."""
    who = recipient(systems=("payment", "login"))
    message = render(composer, who=who, about=incident(systems=("payment", "login")))
    for system in (SYSTEMS["payment"], SYSTEMS["login"]):
        assert system.title in message.text
        assert system.workaround in message.text
        # In the html, the support phone in a workaround is a tel: link.
        assert system.workaround in re.sub(r"<[^>]+>", "", message.html or "")


def test_acknowledgement_explains_why_only_when_on_call_has_said(composer: Composer) -> None:
    """Without a note the message says we are finding out; with one it gives the note."""
    unknown = render(composer)
    assert "We don't know why yet" in unknown.text
    known = render(composer, about=incident(note="The card processor is down"))
    assert "The card processor is down." in known.text
    assert "We don't know why yet" not in known.text


def test_acknowledgement_says_when_they_will_hear_next(composer: Composer) -> None:
    """The next update is promised within the configured interval."""
    assert "within 24 hours" in render(composer).text
    hourly = Composer(MESSAGES, ORG, SYSTEMS, update_every=2 * 3600)
    assert "within 2 hours" in render(hourly).text


def test_person_without_a_name_is_greeted_plainly(composer: Composer) -> None:
    """Someone we have no name for is greeted with "Hello,", in email and sms."""
    message = render(composer, who=recipient(name=""))
    assert message.text.startswith("Hello, I'm sorry")
    assert "Hello, sorry" in message.sms


def test_subscriber_without_attempts_is_told_what_stopped(composer: Composer) -> None:
    """A subscriber who tried nothing is told which system stopped, not what they "couldn't" do."""
    message = render(composer, who=recipient(action=None))
    assert message.text.startswith("Alice, I'm sorry — Online payments stopped working at 2:01 PM")
    assert "couldn't" not in message.text
    assert "Online payments" in message.subject


def test_system_without_workaround_tells_them_nothing_is_needed(composer: Composer) -> None:
    """When no affected system has a workaround, the message says there is nothing to do."""
    message = render(composer, who=recipient(systems=("crm",)), about=incident("crm", ("crm",)))
    assert "You don't need to do anything" in message.text
    assert "In the meantime" not in message.text


def test_several_systems_list_only_the_workarounds_there_are(composer: Composer) -> None:
    """Affected by payment, login and crm (no workaround), the message lists what to do for
    payment and login, by title, and says nothing of crm there."""
    message = render(
        composer,
        who=recipient(systems=("payment", "crm", "login")),
        about=incident("payment", ("payment", "crm", "login")),
    )
    assert (
        "In the meantime:\n"
        "- Online payments: Pay by phone on 0800 123 456 and we will process it by hand.\n"
        "- Signing in to your account: Your account and your data are safe.\n"
    ) in message.text
    assert "- Your order history" not in message.text


def test_an_org_without_contact_details_offers_none() -> None:
    """Without a support phone or email, no message offers a way to reach us."""
    quiet = Composer(MESSAGES, Org(name="Example Ltd"), SYSTEMS)
    for kind, about in (
        (MessageKind.ACKNOWLEDGE, incident()),
        (MessageKind.RESOLVED, incident(resolved_at=START + 600)),
    ):
        text = render(quiet, kind, REASONS[kind][0], about=about).text
        assert "call" not in text
        assert "email" not in text
        assert text.endswith("Example Ltd")


# Updates and the follow-up.


def test_each_update_reason_says_something_different(composer: Composer) -> None:
    """Grew says it spread, note gives the note, periodic says it is still being worked on."""
    kind = MessageKind.UPDATE
    later = START + 26 * 3600
    grew = render(composer, kind, Reason.GREW, recipient(systems=("payment", "login")))
    note = render(composer, kind, Reason.NOTE, about=incident(note="Rolling back now"))
    periodic = render(composer, kind, Reason.PERIODIC, now=later)
    assert "has spread" in grew.text
    assert "Signing in to your account" in grew.text
    assert "Rolling back now." in note.text
    assert "still haven't fixed" in periodic.text
    assert "it has been down for you for 1 day 1 hour now" in periodic.text
    assert len({grew.subject, note.subject, periodic.subject}) == 3


def test_resolved_says_fixed_how_long_for_them_and_what_happened(composer: Composer) -> None:
    """The follow-up says it is fixed, to try again, how long it lasted for them, and the note."""
    message = render(
        composer, MessageKind.RESOLVED, Reason.RESOLVED, about=resolved_at(81), now=START + 81 * 60
    )
    assert message.text.startswith("Alice, it's fixed: you can buy the LinkedIn course again.")
    assert "please try once more" in message.text
    assert "1 hour 20 minutes" in message.text  # from her attempt, a minute after the start
    assert LONG_NOTE in message.text
    assert "sorry again" in message.text.lower()
    assert "thank you" in message.text
    assert "1 hour 20 minutes" in message.sms


def test_resolved_without_a_note_is_honest(composer: Composer) -> None:
    """Without a note the follow-up says we are still finding out why, and how to ask."""
    about = incident(resolved_at=START + 10 * MINUTE)
    message = render(composer, MessageKind.RESOLVED, Reason.RESOLVED, about=about)
    assert "still working out exactly why" in message.text
    assert "help@example.com" in message.text


@pytest.mark.parametrize("person", ["alice", "subscriber"])
@pytest.mark.parametrize(
    ("kind", "reason"), [(kind, reason) for kind, reasons in REASONS.items() for reason in reasons]
)
def test_no_message_reads_like_a_form_letter(
    composer: Composer, kind: MessageKind, reason: Reason, person: SamplePerson
) -> None:
    """No message uses form-letter phrases or leaks placeholders, and each is signed."""
    sample = sample_context(SYSTEMS, "payment", kind, reason, person=person)
    message = composer.render(
        sample.kind, sample.reason, sample.recipient, sample.incident, sample.now
    )
    for part in (message.subject, message.text, message.sms):
        lowered = part.lower()
        for phrase in ("valued customer", "dear ", "inconvenience", "none", "{{", "{%", "  "):
            assert phrase not in lowered
    assert "Example Ltd" in message.text
    assert message.sms.startswith("Example Ltd: ")


# SMS.


def test_sms_fits_in_320_characters_for_long_names_and_many_systems() -> None:
    """However long the name, the actions and the systems, an sms is at most 320 characters."""
    many = {
        f"system-{i}": SystemInfo(
            f"system-{i}", f"A rather long system title number {i}", "x " * 80
        )
        for i in range(12)
    }
    composer = Composer(MESSAGES, ORG, many)
    person = Person(id="u1", name="Wolfeschlegelsteinhausenbergerdorff " * 20)
    attempts = tuple(Attempt(n, "u1", f"do thing {n} " * 10, START) for n in many)
    who = Recipient(person, tuple(many.values()), attempts, START)
    about = IncidentView(
        "7", START, START + 3600, many["system-0"], tuple(many.values()), "n " * 500, "resolved"
    )
    for kind, reasons in REASONS.items():
        for reason in reasons:
            sms = composer.render(kind, reason, who, about, START + 3600).sms
            assert len(sms) <= MAX_SMS
            # The explanation's names no system when several are affected: it fits whole.
            assert sms.endswith("...") or kind is MessageKind.EXPLANATION
            assert "\n" not in sms


def test_sms_is_derived_from_subject_and_first_sentence_without_an_sms_block(
    tmp_path: Path,
) -> None:
    """A template without an sms block still gives an sms: the subject and first sentence."""
    write(
        tmp_path / "acknowledge.j2",
        "{% block subject %}Payments are down{% endblock %}\n"
        "{% block text %}Sorry, {{ user.first_name }}. We are on it.{% endblock %}",
    )
    message = render(Composer(tmp_path, ORG, SYSTEMS))
    assert message.sms == "Example Ltd: Payments are down. Sorry, Alice."
    assert message.html is None


# Which template.


def test_the_cause_override_wins_over_an_affected_system_override(messages: Path) -> None:
    """When the cause and the person's system both have an override, the cause's is used."""
    write(
        messages / "crm" / "acknowledge.j2",
        '{% extends "acknowledge.j2" %}\n{% block subject %}Order history is down{% endblock %}',
    )
    write(
        messages / "payment" / "acknowledge.j2",
        '{% extends "acknowledge.j2" %}\n{% block subject %}Payments are down{% endblock %}',
    )
    composer = Composer(messages, ORG, SYSTEMS)
    about = incident(cause="crm", systems=("crm", "payment"))
    assert (
        composer.template_for(MessageKind.ACKNOWLEDGE, recipient(), about) == "crm/acknowledge.j2"
    )
    assert render(composer, about=about).subject == "Order history is down"


def test_an_affected_system_override_is_used_when_the_cause_has_none(messages: Path) -> None:
    """Without a cause override, the override of the person's systems (by name) is used."""
    write(messages / "payment" / "update.j2", "{% block subject %}p{% endblock %}")
    write(messages / "login" / "update.j2", "{% block subject %}l{% endblock %}")
    composer = Composer(messages, ORG, SYSTEMS)
    who = recipient(systems=("payment", "login"))
    about = incident(cause="crm", systems=("crm", "payment", "login"))
    assert composer.template_for(MessageKind.UPDATE, who, about) == "login/update.j2"
    assert composer.template_for(MessageKind.ACKNOWLEDGE, who, about) == "acknowledge.j2"


def test_an_override_can_extend_the_default_and_replace_one_block(messages: Path) -> None:
    """An override that replaces the subject keeps the default text, sms and html."""
    write(
        messages / "payment" / "acknowledge.j2",
        '{% extends "acknowledge.j2" %}\n'
        "{% block subject %}Card payments: {{ super() }}{% endblock %}",
    )
    message = render(Composer(messages, ORG, SYSTEMS))
    assert message.subject == (
        "Card payments: Sorry — you couldn't buy the LinkedIn course, and we're on it"
    )
    assert message.text.startswith("Alice, I'm sorry")
    assert message.html is not None
    assert "<p>Alice, I&#39;m sorry" in message.html  # as a mail client shows it: "I'm"
    assert message.sms.startswith("Example Ltd: Alice, sorry")


def test_an_override_can_import_a_shared_part_at_its_top(messages: Path) -> None:
    """Top-level imports and sets of an override are visible in its blocks."""
    write(messages / "_brand.j2", "{% macro tag() %}[Example]{% endmacro %}")
    write(
        messages / "payment" / "resolved.j2",
        '{% extends "resolved.j2" %}\n{% import "_brand.j2" as brand %}\n{% set word = "Fixed" %}\n'
        "{% block subject %}{{ brand.tag() }} {{ word }}{% endblock %}",
    )
    composer = Composer(messages, ORG, SYSTEMS)
    assert composer.validate() == []
    message = render(composer, MessageKind.RESOLVED, Reason.RESOLVED, about=resolved_at(30))
    assert message.subject == "[Example] Fixed"


def test_templates_are_read_once_when_the_composer_is_built(messages: Path) -> None:
    """Editing a template does not change a composer already built; a new one sees the edit."""
    composer = Composer(messages, ORG, SYSTEMS)
    before = render(composer).subject
    write(
        messages / "acknowledge.j2",
        "{% block subject %}new{% endblock %}{% block text %}new{% endblock %}",
    )
    assert render(composer).subject == before
    assert render(Composer(messages, ORG, SYSTEMS)).subject == "new"


# Hostile customer data.


def test_customer_data_is_never_rendered_as_a_template(composer: Composer) -> None:
    """A name or action that looks like template code is printed as it is."""
    who = recipient(name="{{ 7*7 }} {% raw %}", action="pay {{ org.__class__ }}")
    message = render(composer, who=who)
    assert message.text.startswith("{{, I'm sorry")  # the first name is the first word
    assert "pay {{ org.__class__ }}" in message.subject
    assert "49" not in message.text


def test_html_escapes_customer_data_and_text_keeps_it(composer: Composer) -> None:
    """Markup in a name or action is escaped in html and left literal in the text."""
    who = recipient(name="<script>alert(1)</script>", action="buy <b>this</b> & that")
    message = render(composer, who=who)
    assert message.html is not None
    assert "<script>" not in message.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in message.html
    assert "buy &lt;b&gt;this&lt;/b&gt; &amp; that" in message.html
    assert "<script>alert(1)</script>" in message.text


def test_subject_cannot_carry_injected_headers(composer: Composer) -> None:
    """CR, LF and other line breaks in customer data never reach the subject or the sms."""
    who = recipient(name="Alice\r\nBcc: x@evil", action="buy\r\nBcc: x@evil\u2028X-Evil: 1")
    message = render(composer, who=who)
    for line in (message.subject, message.sms):
        assert not any(c in line for c in "\r\n\u2028\u2029\x85")
    assert "buy Bcc: x@evil X-Evil: 1" in message.subject


def test_ten_kilobytes_of_unicode_render_literally(composer: Composer) -> None:
    """A 10 kB name of mixed scripts and emoji renders whole in the text, cut in the sms."""
    name = "Zoë 王秀英 Ολυμπία 👩🏽‍💻 " * 400
    message = render(composer, who=recipient(name=name, action="ουρά 🛒"))
    assert len(name.encode()) > 10_000
    assert "Zoë, I'm sorry — you couldn't ουρά 🛒 at 2:01 PM UTC today." in message.text
    assert len(message.sms) <= MAX_SMS


@settings(max_examples=150, deadline=None)
@given(name=st.text(max_size=300), action=st.text(max_size=300))
def test_any_name_and_action_render_with_a_one_line_subject(
    composer: Composer, name: str, action: str
) -> None:
    """Whatever a name or action holds, every kind renders, the subject is one line, the sms
    fits."""
    who = recipient(name=name, action=action)
    for kind, reasons in REASONS.items():
        about = resolved_at(30) if kind is MessageKind.RESOLVED else incident()
        message = render(composer, kind, reasons[0], who, about)
        assert message.subject
        assert message.subject == " ".join(message.subject.split())
        assert len(message.sms) <= MAX_SMS


# validate().


def test_the_shipped_templates_validate_cleanly(composer: Composer) -> None:
    """The default templates render for every system, kind, reason and sample person."""
    assert composer.validate() == []


def test_validate_reports_an_undefined_variable_with_file_and_line(messages: Path) -> None:
    """A misspelt name is reported with its file, line and block, and what can be used."""
    write(
        messages / "payment" / "acknowledge.j2",
        '{% extends "acknowledge.j2" %}\n'
        "{% block subject %}\nHi {{ usr.first_name }}\n{% endblock %}",
    )
    [problem] = problems_in(messages)
    assert problem.file == str(messages / "payment" / "acknowledge.j2")
    assert (problem.line, problem.field) == (3, "subject")
    assert "'usr' is undefined" in problem.message
    assert "user" in problem.message


def test_validate_reports_a_missing_field_of_user(messages: Path) -> None:
    """An unknown field of user is reported with the fields user has."""
    write(
        messages / "update.j2",
        "{% block subject %}x{% endblock %}\n{% block text %}{{ user.nickname }}{% endblock %}",
    )
    [problem] = problems_in(messages)
    assert (problem.file, problem.line, problem.field) == (str(messages / "update.j2"), 2, "text")
    assert "user has no 'nickname'" in problem.message
    assert "first_name" in problem.message


def test_validate_names_every_undefined_name_of_a_template(messages: Path) -> None:
    """Every unknown name and field is reported with its line and block, not only the first
    one a render stops at, and also those in branches no sample data takes."""
    path = write(
        messages / "payment" / "acknowledge.j2",
        '{% extends "acknowledge.j2" %}\n'
        "{% block subject %}\n"
        "Hi {{ usr.first_name }}, {{ nickname }}\n"
        "{% endblock %}\n"
        "{% block sms %}\n"
        "{{ user.nick }} {{ incident.cause.titel }}\n"
        "{% if reason == 'never' %}{{ greeting }}{% endif %}\n"
        "{% endblock %}\n",
    )
    can_use = (
        "(a message can use user, incident, org, kind, reason, next_update, language, "
        "manage_url, unsubscribe_url)"
    )
    has = "(it has id, name, first_name, email, phone, attempts, actions, systems, workarounds,"
    assert [(p.file, p.line, p.field, p.message) for p in problems_in(messages)] == [
        (str(path), 3, "subject", f"undefined: 'usr' is undefined {can_use}"),
        (str(path), 3, "subject", f"undefined: 'nickname' is undefined {can_use}"),
        (
            str(path),
            6,
            "sms",
            f"undefined: user has no 'nick' {has} affected_since, affected_for, goodwill)",
        ),
        (
            str(path),
            6,
            "sms",
            "undefined: a system has no 'titel' (it has name, title, workaround)",
        ),
        (str(path), 7, "sms", f"undefined: 'greeting' is undefined {can_use}"),
    ]


def test_validate_accepts_names_a_template_asks_about_or_defaults(messages: Path) -> None:
    """``is defined`` and ``|default`` are how a template allows a missing name: not problems,
    nor are names it sets, loops over or imports."""
    write(
        messages / "payment" / "update.j2",
        '{% extends "update.j2" %}\n'
        "{% block subject %}\n"
        "{% if nickname is defined %}{{ nickname }}{% endif %}{{ user.nick|default('Hi') }}\n"
        "{% set who = user.first_name %}{% for s in user.systems %}{{ s.title }}{% endfor %}\n"
        "{{ who }} {{ loop_free|d('') }} {{ self.text() }}\n"
        "{% endblock %}\n",
    )
    assert problems_in(messages) == []


def test_validate_reports_a_syntax_error_with_file_and_line(messages: Path) -> None:
    """A syntax error is reported once, with its file and line."""
    write(messages / "resolved.j2", "{% block subject %}\nFixed {% if %}\n{% endblock %}")
    [problem] = problems_in(messages)
    assert (problem.file, problem.line) == (str(messages / "resolved.j2"), 2)
    assert problem.message.startswith("syntax error")


@pytest.mark.parametrize(
    "escape",
    ["{{ ''.__class__.__mro__ }}", "{{ user.__class__ }}", "{{ org.__init__.__globals__ }}"],
)
def test_validate_reports_a_sandbox_escape_as_a_security_error(messages: Path, escape: str) -> None:
    """A template reaching for Python internals is refused by the sandbox, and says so."""
    write(
        messages / "payment" / "update.j2",
        f'{{% extends "update.j2" %}}\n{{% block text %}}\n{escape}\n{{% endblock %}}',
    )
    problems = problems_in(messages)
    assert problems
    for problem in problems:
        assert problem.file == str(messages / "payment" / "update.j2")
        assert problem.line == 3
        assert "sandbox (security)" in problem.message


def test_validate_refuses_a_string_big_enough_to_exhaust_memory(messages: Path) -> None:
    """Multiplying a string past 100,000 characters is a sandbox error, not an outage."""
    write(
        messages / "acknowledge.j2",
        "{% block subject %}{{ 'x' * 10**9 }}{% endblock %}\n{% block text %}t{% endblock %}",
    )
    [problem] = problems_in(messages)
    assert (problem.line, problem.field) == (1, "subject")
    assert "sandbox (security)" in problem.message


def test_validate_reports_an_sms_longer_than_320_characters(messages: Path) -> None:
    """An sms block over 320 characters with sample data is reported at its block."""
    write(
        messages / "login" / "resolved.j2",
        '{% extends "resolved.j2" %}\n\n'
        "{% block sms %}{{ user.name }} {{ 'is fixed, hooray. ' * 20 }}{% endblock %}",
    )
    [problem] = problems_in(messages)
    assert (problem.file, problem.line, problem.field) == (
        str(messages / "login" / "resolved.j2"),
        3,
        "sms",
    )
    assert "320" in problem.message


def test_validate_reports_a_missing_subject_or_text_block(messages: Path) -> None:
    """A template without a subject or a text block is reported, naming the block."""
    write(messages / "update.j2", "{% block subject %}Update{% endblock %}")
    write(messages / "crm" / "resolved.j2", "{% block text %}Fixed{% endblock %}")
    found = {(p.file, p.field) for p in problems_in(messages)}
    assert found == {
        (str(messages / "update.j2"), "text"),
        (str(messages / "crm" / "resolved.j2"), "subject"),
    }


def test_validate_reports_files_that_would_never_be_used(messages: Path) -> None:
    """A misspelt system folder or kind file is reported, and a missing default too."""
    write(messages / "paymnet" / "update.j2", "{% block subject %}x{% endblock %}")
    write(messages / "acknowledgement.j2", "{% block subject %}x{% endblock %}")
    (messages / "resolved.j2").unlink()
    messages_of = {p.file: p.message for p in problems_in(messages)}
    assert "no system is named 'paymnet'" in messages_of[str(messages / "paymnet" / "update.j2")]
    assert "not a message kind" in messages_of[str(messages / "acknowledgement.j2")]
    assert "missing" in messages_of[str(messages / "resolved.j2")]


def test_an_error_in_a_shared_part_names_that_file(messages: Path) -> None:
    """An error inside _base.j2 is reported in _base.j2, not in the template that used it."""
    base = (messages / "_base.j2").read_text(encoding="utf-8")
    write(messages / "_base.j2", base.replace("In the meantime:", "{{ meantime }}", 1))
    problems = problems_in(messages)
    assert problems
    assert {p.file for p in problems} == {str(messages / "_base.j2")}
    assert all("'meantime' is undefined" in p.message for p in problems)


def test_render_raises_a_template_error_naming_file_line_and_block(messages: Path) -> None:
    """A template that fails at render time raises TemplateError with where it failed."""
    write(
        messages / "acknowledge.j2",
        "{% block subject %}ok{% endblock %}\n"
        "{% block text %}\n{{ incident.nope }}\n{% endblock %}",
    )
    with pytest.raises(TemplateError) as caught:
        render(Composer(messages, ORG, SYSTEMS))
    assert caught.value.problem() == Problem(
        str(messages / "acknowledge.j2"),
        3,
        "text",
        caught.value.message,
    )
    assert "incident has no 'nope'" in str(caught.value)


def test_render_refuses_an_empty_subject(messages: Path) -> None:
    """A subject that renders empty is an error, not an email without a subject."""
    write(
        messages / "acknowledge.j2",
        "{% block subject %} \n {% endblock %}{% block text %}t{% endblock %}",
    )
    with pytest.raises(TemplateError, match="subject: it is empty"):
        render(Composer(messages, ORG, SYSTEMS))


# Sample data and helpers.


def test_sample_context_is_alice_trying_what_the_system_is_for() -> None:
    """The sample person is Alice Martin, who could not do what the system is for: sign in on
    login, pay on payment, and use any other system by its title (not a payment on a CRM)."""
    sample = sample_context(SYSTEMS, "login", MessageKind.RESOLVED)
    assert sample.recipient.person.name == "Alice Martin"
    actions = {
        name: [a.action for a in sample_context(SYSTEMS, name).recipient.attempts]
        for name in SYSTEMS
    }
    assert actions == {
        "login": ["sign in"],
        "payment": ["make a payment"],
        "crm": ["use your order history"],
    }
    assert sample_action(SystemInfo("crm", "CRM records")) == "use CRM records"
    assert sample.incident.cause == SYSTEMS["login"]
    assert sample.incident.resolved_at == sample.now
    affected = sample_context(SYSTEMS, "login", as_cause=False, person="subscriber")
    assert affected.incident.cause != SYSTEMS["login"]
    assert affected.recipient.person.name == ""
    assert SYSTEMS["login"] in affected.recipient.affected


def test_times_are_said_relative_to_now(composer: Composer) -> None:
    """Times read "today", "yesterday", or give the day and date; with no zone of the person's
    own, the default zone (UTC) is named."""

    def started_at(now: float) -> str:
        context = composer.context(
            MessageKind.UPDATE, Reason.PERIODIC, recipient(), incident(), now
        )
        facts = context["incident"]
        assert isinstance(facts, IncidentFacts)
        return facts.started_at

    assert started_at(START + 5 * MINUTE) == "2:00 PM UTC today"
    assert started_at(START + 26 * 3600) == "2:00 PM UTC yesterday"
    assert started_at(START + 5 * 86400) == "2:00 PM UTC on Tuesday, March 4"


@pytest.mark.parametrize(
    ("items", "joined"),
    [
        ([], ""),
        (["a"], "a"),
        (["a", "b"], "a and b"),
        (["a", "b", "c"], "a, b and c"),
        (["Account and orders", "Payments"], "Account and orders, and Payments"),
    ],
)
def test_human_join_reads_like_a_sentence(items: list[str], joined: str) -> None:
    """Lists join the way a person writes them."""
    assert human_join(items) == joined


def test_sentence_ends_with_a_full_stop_once() -> None:
    """A note gets a full stop only when it has none."""
    assert sentence(" rolling back ") == "rolling back."
    assert sentence("Done!") == "Done!"
    assert sentence("(we said so.)") == "(we said so.)"


def test_paragraphs_turn_text_into_simple_html() -> None:
    """Blank lines make paragraphs, "- " lines make a list, and text is escaped."""
    html = paragraphs("Hi <you>,\nline two\n\nMeanwhile:\n- a & b\n- c")
    assert html == (
        "<p>Hi &lt;you&gt;,<br>\nline two</p>\n<p>Meanwhile:</p>\n"
        "<ul><li>a &amp; b</li><li>c</li></ul>"
    )


def test_the_html_part_is_the_text_part_with_its_literals_escaped_too(messages: Path) -> None:
    """An override's text written for plain-text mail ("<https://...>", "R&D") reads the same
    in the html part: escaped there, never a stray tag, and the text part is left as it is."""
    write(
        messages / "payment" / "acknowledge.j2",
        '{% extends "acknowledge.j2" %}\n'
        "{% block text %}Hi {{ user.first_name }}, R&D is on it: <https://status.example.com>"
        "{% endblock %}",
    )
    message = render(Composer(messages, ORG, SYSTEMS))
    assert message.text == "Hi Alice, R&D is on it: <https://status.example.com>"
    assert message.html is not None
    assert "<p>Hi Alice, R&amp;D is on it: &lt;https://status.example.com&gt;</p>" in message.html


@pytest.mark.parametrize("kind", list(MessageKind))
def test_an_html_block_written_another_way_renders_the_same_html(
    messages: Path, kind: MessageKind
) -> None:
    """_base.j2's html block is the text as paragraphs in a fixed frame; the same block written
    another way (here with an empty expression after it) gives the very same html, for each
    kind of message, for a customer whose name and action carry markup."""
    base = messages / "_base.j2"
    base.write_text(
        base.read_text().replace(
            "{{ self.text()|paragraphs|contact_links(org) }}",
            '{{ self.text()|paragraphs|contact_links(org) }}{{ "" }}',
        )
    )
    who = recipient(name="<b>Bo</b> & Co", action="pay <i>now</i>", systems=("payment", "login"))
    about = incident("payment", ("payment", "login"), note=LONG_NOTE, resolved_at=None)
    reason = REASONS[kind][0]
    shipped = render(Composer(MESSAGES, ORG, SYSTEMS), kind, reason, who, about)
    rewritten = render(Composer(messages, ORG, SYSTEMS), kind, reason, who, about)
    assert rewritten.html == shipped.html
    assert shipped.html is not None
    assert "&lt;b&gt;Bo&lt;/b&gt;" in shipped.html
    assert shipped.html.startswith('<!DOCTYPE html>\n<html lang="en">\n<head>')
    assert f"<title>{escape(shipped.subject)}</title>" in shipped.html
    assert '<a href="tel:0800123456">0800 123 456</a>' in shipped.html
    assert shipped.html.endswith("</p>\n</body>\n</html>")
