"""The confirmation of a subscription as a message template (messages/subscribe.j2 and
messages/de/subscribe.j2), read the way the visitor reads it: in their language, who asked,
which services, the link and how long it works, what to do if it was not them; an email with
an html part and no sms, no manage link. `monitor validate` checks these templates like the
others, and `monitor preview --kind subscribe` shows one."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from process import run_cli

from monitor.config import Org, Problem
from monitor.model import SystemInfo
from monitor.notify.composer import Composer, TemplateError

REPO = Path(__file__).resolve().parent.parent
MESSAGES = REPO / "messages"
ORG = Org(name="Example Ltd", support_phone="0800 123 456", support_email="help@example.com")
SYSTEMS = {
    "payment": SystemInfo("payment", "Online payments", "Pay by phone on 0800 123 456."),
    "login": SystemInfo("login", "Signing in to your account"),
}
URL = "https://status.example.com/subscribe/confirm/eyJlIjoibmV3In0.Z9cT1A.c2lnbmVk"
HOURS_48 = 48 * 3600.0
# What each language says: who asked, to ignore it if it was not them, and nothing more then.
SAYS = {
    "en": (
        "Someone, hopefully you, asked us to write by email when there's a problem with "
        "Online payments and Signing in to your account at Example Ltd",
        "open this link within 48 hours:",
        "If it wasn't you, just ignore this mail: you won't hear from us again.",
    ),
    "de": (
        "jemand, hoffentlich Sie, möchte per E-Mail von uns erfahren, wenn es bei Example Ltd "
        "eine Störung bei Online payments und Signing in to your account gibt",
        "er gilt 48 Stunden lang:",
        "Waren Sie das nicht, ignorieren Sie diese E-Mail einfach: Sie hören dann nicht wieder "
        "von uns.",
    ),
}


@pytest.fixture(scope="module")
def composer() -> Composer:
    return Composer(MESSAGES, ORG, SYSTEMS)


@pytest.fixture
def messages(tmp_path: Path) -> Path:
    """A copy of the shipped templates to break."""
    copy = tmp_path / "messages"
    shutil.copytree(MESSAGES, copy)
    return copy


def problems_in(messages: Path) -> list[Problem]:
    return Composer(messages, ORG, SYSTEMS).validate()


@pytest.mark.parametrize("language", ["en", "de"])
def test_the_confirmation_says_who_asked_for_what_the_link_how_long_and_what_if_not_them(
    composer: Composer, language: str
) -> None:
    """In each language: someone asked about these services (by title) at the org, the link
    and how long it works, that ignoring it means nothing more comes, whom to ask; an html
    part in that language with the link as a link and the contacts linked; no sms, no manage
    link."""
    mail = composer.render_confirmation(["payment", "login"], URL, HOURS_48, language)
    text = " ".join(mail.text.split())

    for said in SAYS[language]:
        assert said in text
    assert f"\n{URL}\n" in mail.text
    assert "0800 123 456" in text
    assert mail.text.endswith("Example Ltd")
    assert mail.sms == ""
    html = mail.html or ""
    assert f'<html lang="{language}">' in html
    assert f"<title>{mail.subject}</title>" in html
    assert f'<a href="{URL}">{URL}</a>' in html
    assert '<a href="tel:0800123456">0800 123 456</a>' in html
    assert '<a href="mailto:help@example.com">help@example.com</a>' in html
    assert "unsubscribe" not in (mail.text + html).lower()


@pytest.mark.parametrize(
    ("within", "english", "german"),
    [
        (3600.0, "within 1 hour:", "er gilt 1 Stunde lang:"),
        (90 * 60.0, "within 90 minutes:", "er gilt 90 Minuten lang:"),
        (3 * 86400.0, "within 3 days:", "er gilt 3 Tage lang:"),
    ],
)
def test_how_long_the_link_works_is_said_in_the_templates_language(
    composer: Composer, within: float, english: str, german: str
) -> None:
    """subscriptions.confirm_within is worded in one unit, in each template's language."""
    assert english in composer.render_confirmation(["payment"], URL, within, None).text
    assert german in composer.render_confirmation(["payment"], URL, within, "de").text


def test_an_org_without_contact_details_offers_none() -> None:
    """Without a support phone or email, neither language offers a way to ask."""
    plain = Composer(MESSAGES, Org(name="Example Ltd"), SYSTEMS)
    english = plain.render_confirmation(["payment"], URL, HOURS_48, None).text
    german = plain.render_confirmation(["payment"], URL, HOURS_48, "de").text
    assert "you won't hear from us again.\n\nExample Ltd" in english
    assert "nicht wieder von uns.\n\nViele Grüße" in german


@pytest.mark.parametrize(
    ("accepted", "language"),
    [
        (["fr", "de-CH", "en"], "de-CH"),  # the first there are templates for, as asked
        (["en-GB", "de"], "en-GB"),  # the top level is the default language's
        (["fr", "es"], None),  # none: the default language, as for a person without one
        (["not a tag", "x-klingon", "DE"], "de"),  # passed over; written as usual
        ([], None),
    ],
)
def test_the_visitors_language_is_the_first_of_theirs_there_are_templates_for(
    composer: Composer, accepted: list[str], language: str | None
) -> None:
    """A browser's languages are matched as a person's language is: its own folder, its
    language's, or the default language's templates; else none (default_language)."""
    assert composer.language_for(accepted) == language


def test_with_german_as_the_default_language_an_english_visitor_reads_german() -> None:
    """With default_language de and no English folder, the top level is German: a visitor
    asking for English gets it in German, as de."""
    german = Composer(MESSAGES, ORG, SYSTEMS, default_language="de")
    assert german.language_for(["en-US", "de-AT"]) == "de-AT"
    assert german.language_for(["en-US"]) is None


def test_validate_names_what_a_confirmation_template_must_not_do(messages: Path) -> None:
    """A confirmation without the confirm link, with an sms block, or of a system's own (for
    one request of several systems) is named with its file, line and block."""
    (messages / "subscribe.j2").write_text(
        '{% extends "_base.j2" %}\n'
        "{% block subject %}Please confirm{% endblock %}\n"
        "{% block text %}Hello, please confirm.{% endblock %}\n"
        "{% block sms %}Confirm: {{ subscription.confirm_url }}{% endblock %}\n",
        encoding="utf-8",
    )
    own = messages / "payment" / "subscribe.j2"
    own.parent.mkdir()
    own.write_text('{% extends "subscribe.j2" %}\n', encoding="utf-8")

    found = {(p.file, p.line, p.field, p.message.split(":")[0]) for p in problems_in(messages)}
    assert found == {
        (
            str(messages / "subscribe.j2"),
            3,
            "text",
            "the text does not show subscription.confirm_url, so nobody could confirm",
        ),
        (
            str(messages / "subscribe.j2"),
            4,
            "sms",
            "never sent",
        ),
        (str(own), None, "", "never used"),
    }


def test_a_confirmation_template_without_its_link_is_refused_at_render(messages: Path) -> None:
    """A template the monitor started with that does not show the link raises, naming where:
    a mail nobody could confirm from is never sent."""
    template = messages / "de" / "subscribe.j2"
    source = template.read_text(encoding="utf-8")
    template.write_text(source.replace("{{ subscription.confirm_url }}", "(Link)"), "utf-8")
    with pytest.raises(TemplateError, match=r"de/subscribe.j2:\d+: text: the text does not show"):
        Composer(messages, ORG, SYSTEMS).render_confirmation(["payment"], URL, HOURS_48, "de")


async def test_monitor_validate_names_a_broken_confirmation_and_a_missing_default(
    messages: Path,
) -> None:
    """A German subscribe.j2 using a name a confirmation does not have is named by file, line
    and block, saying what it can use; without subscribe.j2 at the top, the missing default."""
    (messages / "subscribe.j2").unlink()
    german = messages / "de" / "subscribe.j2"
    source = german.read_text(encoding="utf-8")
    german.write_text(source.replace("Guten Tag,", "Guten Tag {{ user.name }},", 1), "utf-8")
    line = source.splitlines().index("Guten Tag,") + 1

    code, out, err = await run_cli("validate", "--messages", str(messages))

    assert (code, out) == (1, "")
    assert err.splitlines() == [
        f"{german}:{line}: text: undefined: 'user' is undefined (a message can use "
        "subscription, org, kind, language, manage_url, unsubscribe_url)",
        f"{messages / 'subscribe.j2'}: missing: every kind needs a default",
        "2 problems",
    ]


async def test_preview_shows_the_confirmation_in_a_language_and_refuses_an_sms() -> None:
    """`monitor preview payment --kind subscribe --language de` prints the German mail about
    payment and another service, with a sample link; `--channel sms` says there is none."""
    code, out, err = await run_cli("preview", "payment", "--kind", "subscribe", "--language", "de")
    assert (code, err) == (0, "")
    assert out.startswith(
        "Subject: Bitte bestätigen Sie Ihr Abonnement der Statusmeldungen von Example Ltd\n\n"
        "Guten Tag,\n"
    )
    assert "/subscribe/confirm/" in out
    assert "er gilt 48 Stunden lang:" in out

    code, out, err = await run_cli("preview", "payment", "--kind", "subscribe", "--channel", "sms")
    assert (code, out) == (1, "")
    assert err == "--kind subscribe goes by email only: there is no sms\n"
