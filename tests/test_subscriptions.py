"""Self-service subscriptions in the running monitor: a real App on SQLite (and PostgreSQL for
the one-click unsubscribe), a fake clock, real SMTP (aiosmtpd) and DKIM. Someone subscribes on
the status page, confirms from the mail and hears of the next incident; every message carries
their own manage link and RFC 8058's List-Unsubscribe headers, and one POST to that link stops
everything further; links not ours, of another kind or too old are refused; asking too often
sends nothing more and answers the same. The confirmation mail is the subscribe.j2 template's,
in the visitor's language (and their messages after it too), edited templates are used after a
reload, and one that fails sends nothing and logs where without saying for whom."""

from __future__ import annotations

import asyncio
import base64
import html
import logging
import re
import shutil
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, replace
from email import message_from_bytes, policy
from pathlib import Path
from urllib.parse import urlsplit

import dkim
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from clock import FakeClock
from postgres import Database
from running import TOKEN, sending_to, start_replica
from test_mail_hygiene import SELECTOR, Keys, ed25519_keys, letterhead, sent, signed_fields
from world import ALICE, BOB, DANA, MESSAGES, write_config

from monitor.app import App
from monitor.delivery.channels import Email
from monitor.delivery.channels.email import unsubscribe_headers
from monitor.demo.mailcatcher import CaughtMessage, MailCatcher
from monitor.model import Attempt, ProbeResult

SECRET = "a-link-secret-of-forty-characters-000000"
OLD_SECRET = "the-secret-before-it-was-rotated-1111111"
PUBLIC = "https://status.example.com"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@dataclass
class Stage:
    app: App
    client: TestClient[web.Request, web.Application]
    clock: FakeClock
    catcher: MailCatcher
    keys: Keys

    async def tick(self) -> None:
        await self.app.membership.beat()
        await self.app.monitor.flush()
        await self.app.notifier.tick()

    async def mail(self, count: int) -> list[CaughtMessage]:
        """Every mail caught, once there are ``count`` (the sender runs in the background)."""
        await self.app.membership.beat()  # the outbox's shards are this replica's
        self.app.delivery.wake()
        async with asyncio.timeout(20):
            return await self.catcher.wait_for_messages(count)

    async def rounds(self, system: str, ok: bool, count: int) -> None:
        for _ in range(count):
            reason = "status 200" if ok else "status 503"
            self.app.monitor.observe(ProbeResult(system, ok, reason, self.clock.now(), 0.01))
            await self.tick()
            self.clock.advance(15.0)

    async def post(self, path: str, body: str, language: str = "") -> tuple[int, str]:
        """POST the form ``body`` (``language``: the browser's Accept-Language)."""
        headers = {**FORM, "Accept-Language": language} if language else FORM
        response = await self.client.post(path, data=body.encode(), headers=headers)
        return response.status, html.unescape(await response.text())

    async def get(self, path: str) -> tuple[int, str]:
        response = await self.client.get(path)
        return response.status, html.unescape(await response.text())

    def to(self, address: str) -> list[CaughtMessage]:
        return [m for m in self.catcher.messages if address in m.rcpt_tos]


@asynccontextmanager
async def stage(
    tmp_path: Path,
    db: str | None = None,
    secret: str | None = SECRET,
    yaml: str = "",
    messages: Path = MESSAGES,
) -> AsyncIterator[Stage]:
    async with AsyncExitStack() as stack:
        catcher = await stack.enter_async_context(MailCatcher())
        keys = ed25519_keys()
        key = tmp_path / "dkim.pem"
        key.write_text(keys.pem)
        checks = tmp_path / "checks"
        write_config(checks)
        with (checks / "monitor.yaml").open("a") as settings:
            settings.write(
                f"public_url: {PUBLIC}\n"
                f"email: {{dkim: {{selector: {SELECTOR}, key_file: {key}}}}}\n{yaml}"
            )
        clock = FakeClock()
        environ = {"MONITOR_API_TOKEN": TOKEN, **sending_to(catcher)}
        if secret is not None:
            environ["MONITOR_LINK_SECRET"] = secret
        started = await start_replica(
            stack, checks, db or tmp_path / "monitor.db", clock, environ, messages=messages
        )
        await started.app.store.upsert_people([ALICE, BOB, DANA])
        yield Stage(started.app, started.client, clock, catcher, keys)


def path_of(url: str) -> str:
    assert url.startswith(PUBLIC + "/"), url
    return urlsplit(url).path


def link_in(text: str, kind: str) -> str:
    found = re.search(rf"{re.escape(PUBLIC)}/{kind}/\S+", text)
    assert found is not None, text
    return found.group()


def flat(text: str) -> str:
    return " ".join(text.split())


async def test_someone_subscribes_confirms_from_the_mail_and_hears_of_the_next_incident(
    tmp_path: Path,
) -> None:
    """The form's address and service get a confirmation mail (and nothing else until the
    link is followed: the link's page only shows a button); confirmed, they are a subscriber
    and the next outage of that service is acknowledged to them, with their own link."""
    async with stage(tmp_path) as on:
        status, page = await on.post("/subscribe", "email=new%40example.org&system=Online+payments")
        assert status == 200
        assert "Check your inbox" in page
        [confirmation] = await on.mail(1)
        assert (
            confirmation.subject == "Please confirm your subscription to Example Ltd status updates"
        )
        assert "Online payments" in confirmation.text
        assert "List-Unsubscribe" not in confirmation.message  # not subscribed (yet)
        link = path_of(link_in(confirmation.text, "subscribe/confirm"))
        assert await on.app.store.people_with_email("new@example.org") == []

        status, page = await on.get(link)  # a mail scanner fetching the link
        assert status == 200
        assert "Confirm my subscription" in page
        assert await on.app.store.people_with_email("new@example.org") == []
        status, page = await on.post(link, "")
        assert status == 200
        assert "You're subscribed" in page
        [person] = await on.app.store.people_with_email("new@example.org")
        assert person.id.startswith("sub-")
        assert person.systems == ("payment",)

        await on.rounds("payment", False, 8)
        # The acknowledgements: Alice, Dana and the new subscriber.
        [ack] = [m for m in await on.mail(4) if "new@example.org" in m.rcpt_tos][1:]
        assert "acknowledge" in ack.message["Message-ID"]
        manage = link_in(ack.text, "unsubscribe")
        assert ack.message["List-Unsubscribe"] == f"<{manage}>"
        metrics = await (await on.client.get("/metrics")).text()
        assert 'monitor_subscriptions_total{event="requested"} 1.0' in metrics
        assert 'monitor_subscriptions_total{event="confirmed"} 1.0' in metrics


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_one_click_unsubscribe_stops_every_further_message(
    tmp_path: Path, request: pytest.FixtureRequest, backend: str
) -> None:
    """Alice's acknowledgement carries List-Unsubscribe and List-Unsubscribe-Post (RFC 8058,
    signed by DKIM, no defect under the strict policy); the POST a mail client sends to it
    (``List-Unsubscribe=One-Click``, no cookie) answers 200 and she hears nothing further: not
    the fix, not the next incident, while Dana does."""
    db = None
    if backend == "postgresql":
        database = request.getfixturevalue("pg_database")
        assert isinstance(database, Database)
        db = database.url
    async with stage(tmp_path, db) as on:
        await on.rounds("payment", False, 8)
        [ack] = [m for m in await on.mail(2) if "alice@example.com" in m.rcpt_tos]
        parsed = message_from_bytes(ack.raw, policy=policy.strict)
        assert not parsed.defects
        assert all(not part.defects for part in parsed.walk())
        assert dkim.verify(ack.raw, dnsfunc=on.keys.dns)
        assert {"list-unsubscribe", "list-unsubscribe-post"} <= set(signed_fields(ack.raw))
        assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        url = parsed["List-Unsubscribe"].strip("<>")
        assert f"\r\nList-Unsubscribe: <{url}>\r\n".encode() in ack.raw  # one line, as given
        assert url == link_in(ack.text, "unsubscribe")
        assert f'href="{html.escape(url)}"' in (ack.html or "")  # the html shows it too, small

        status, page = await on.post(path_of(url), "List-Unsubscribe=One-Click")
        assert status == 200
        assert "You're unsubscribed" in page

        await on.rounds("payment", True, 3)
        told = {m.rcpt_tos[0] for m in await on.mail(3) if "resolved" in m.message["Message-ID"]}
        assert told == {"dana@example.com"}
        on.clock.advance(86400.0)
        await on.rounds("payment", False, 8)
        later = [m for m in await on.mail(4) if "incident-2" in m.message["Message-ID"]]
        assert {m.rcpt_tos[0] for m in later} == {"dana@example.com"}
        assert await on.app.store.unsubscribed_among(["alice"]) == {"alice"}


async def test_links_not_ours_of_another_kind_or_too_old_are_refused(tmp_path: Path) -> None:
    """An altered or forged manage link, a confirm link used to unsubscribe and the reverse
    get a plain page and change nothing; a confirm link older than confirm_within says to
    subscribe again; a link signed with a secret rotated out of first place still works."""
    async with stage(tmp_path, secret=f"{SECRET},{OLD_SECRET}") as on:
        links = on.app.links.links
        assert links is not None
        alice = path_of(links.manage_url("alice"))
        token = alice.rsplit("/", 1)[1]
        payload, signature = token.split(".")
        altered = f"/unsubscribe/{payload[:-2]}{'AB' if payload[-2:] != 'AB' else 'CD'}.{signature}"
        forged = "/unsubscribe/YWxpY2U.c2lnbmF0dXJl"
        confirm = path_of(links.confirm_url("alice@example.com", ["payment"]))
        for path in (altered, forged, "/unsubscribe/" + confirm.rsplit("/", 1)[1]):
            assert (await on.get(path))[0] == 404
            status, page = await on.post(path, "List-Unsubscribe=One-Click")
            assert status == 404
            assert "This link does not work" in page
            assert "Signature" not in page
            assert "signature" not in page
        status, page = await on.post("/subscribe/confirm/" + token, "")
        assert status == 400
        assert "This link does not work" in page
        assert await on.app.store.unsubscribed_among(["alice"]) == set()

        assert (await on.get(confirm))[0] == 200  # the button, while it works
        on.clock.advance(48 * 3600.0 + 1)
        status, page = await on.get(confirm)
        assert status == 400
        assert "Subscribe again" in page
        status, page = await on.post(confirm, "")
        assert status == 400
        assert "expired" in page
        assert "Subscribe again" in page

        from monitor.subscriptions.tokens import Links

        old = Links([OLD_SECRET], PUBLIC, on.clock).manage_url("alice")
        assert (await on.post(path_of(old), "List-Unsubscribe=One-Click"))[0] == 200
        assert await on.app.store.unsubscribed_among(["alice"]) == {"alice"}


async def test_asking_too_often_sends_no_more_mail_and_answers_the_same(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Three confirmation mails an address a day; the fourth request answers the same page
    and status, sends nothing, and the warning does not name the address."""
    async with stage(tmp_path) as on:
        answers = set()
        caplog.set_level(logging.WARNING, "monitor.subscriptions")
        for _ in range(4):
            answers.add(
                await on.post("/subscribe", "email=ALICE%40example.com&system=Online+payments")
            )
            on.clock.advance(60.0)
        assert len(answers) == 1
        assert next(iter(answers))[0] == 200
        assert len(await on.mail(3)) == 3
        while await on.app.delivery.run_once():
            pass
        await on.tick()
        assert len(on.catcher.messages) == 3
        warned = [r for r in caplog.records if "over the limit" in r.getMessage()]
        assert len(warned) == 1
        assert "alice" not in caplog.text.lower()


async def test_behind_a_proxy_each_visitor_is_counted_by_the_address_the_proxy_wrote(
    tmp_path: Path,
) -> None:
    """With client_address_header set, visitors behind one proxy are counted each by the last
    address of the header (what the proxy added; one a client wrote before it does not count),
    so the tenth visitor's mail still goes, and one visitor's eleventh request is limited."""
    yaml = "subscriptions: {client_address_header: X-Forwarded-For}\n"
    async with stage(tmp_path, yaml=yaml) as on:

        async def ask(n: int, forwarded: str) -> None:
            await on.client.post(
                "/subscribe",
                data=f"email=visitor{n}%40example.com&system=Online+payments".encode(),
                headers={**FORM, "X-Forwarded-For": forwarded},
            )

        for n in range(12):  # twelve visitors, each from their own address, one proxy
            await ask(n, f"198.51.100.7, 203.0.113.{n}")
        assert len(await on.mail(12)) == 12
        for n in range(12, 24):  # one visitor asking twelve times, pretending to be others
            await ask(n, f"192.0.2.{n}, 203.0.113.99")
        assert len(await on.mail(12 + 10)) == 12 + 10  # requests_per_ip_per_hour
        while await on.app.delivery.run_once():
            pass
        await on.tick()
        assert len(on.catcher.messages) == 12 + 10


async def test_a_bad_address_or_service_is_refused_by_what_is_wrong(tmp_path: Path) -> None:
    """An address that is not one, or a service not on the form, is refused (400) saying so;
    nothing is sent."""
    async with stage(tmp_path) as on:
        status, page = await on.post("/subscribe", "email=not-an-address&system=Online+payments")
        assert status == 400
        assert "not an email address" in page
        status, page = await on.post("/subscribe", "email=a%40example.com&system=payment")
        assert status == 400
        assert "Choose the services" in page
        while await on.app.delivery.run_once():
            pass
        assert on.catcher.messages == []


async def test_without_a_secret_messages_carry_no_links_and_the_status_says_why(
    tmp_path: Path,
) -> None:
    """No MONITOR_LINK_SECRET: /api/v1/status warns why (readiness unchanged), the status page
    offers no form, a subscribe POST finds nothing, and messages carry no link or header."""
    async with stage(tmp_path, secret=None) as on:
        status = await (await on.client.get("/api/v1/status")).json()
        assert any("MONITOR_LINK_SECRET is not set" in w for w in status["warnings"])
        assert (await on.client.get("/readyz")).status == 200
        assert 'action="/subscribe"' not in (await on.get("/"))[1]
        assert (await on.post("/subscribe", "email=a%40example.com"))[0] == 404
        await on.rounds("payment", False, 8)
        [ack] = [m for m in await on.mail(2) if "alice@example.com" in m.rcpt_tos]
        assert "List-Unsubscribe" not in ack.message
        assert "/unsubscribe/" not in ack.text
        assert SECRET not in (await (await on.client.get("/metrics")).text())


async def test_the_manage_page_never_unsubscribes_and_chooses_the_services(tmp_path: Path) -> None:
    """A GET of the link (a mail scanner) changes nothing and shows the button and the
    services by title, Dana's ticked; ticking one keeps only it; ticking none unsubscribes."""
    async with stage(tmp_path) as on:
        links = on.app.links.links
        assert links is not None
        dana = path_of(links.manage_url("dana"))
        status, page = await on.get(dana)
        assert status == 200
        assert "Unsubscribe from everything" in page
        assert 'value="Online payments" checked' in page
        assert 'value="Your order history">' in page
        assert "crm" not in page  # titles only, never the internal names
        assert await on.app.store.unsubscribed_among(["dana"]) == set()
        status, page = await on.post(dana + "/manage", "system=Online+payments")
        assert status == 200
        assert "Online payments" in page
        kept = await on.app.store.person("dana")
        assert kept is not None
        assert kept.systems == ("payment",)
        status, page = await on.post(dana + "/manage", "")
        assert status == 200
        assert "unsubscribed" in page
        assert await on.app.store.unsubscribed_among(["dana"]) == {"dana"}


@pytest.mark.parametrize("setting", ["nothing", "affected_only"])
async def test_someone_unsubscribed_an_app_reports_failing_is_told_only_with_affected_only(
    tmp_path: Path, setting: str
) -> None:
    """Alice and Dana unsubscribed; an app reports Alice failing to pay: with ``nothing`` she
    hears nothing (only Bob, reported too, does), with ``affected_only`` she is acknowledged;
    Dana, reported by no app, hears nothing either way."""
    async with stage(tmp_path, yaml=f"subscriptions: {{unsubscribed: {setting}}}\n") as on:
        for name in ("alice", "dana"):
            await on.app.store.unsubscribe(name, f"{name}@example.com", on.clock.now())
        for person in (ALICE, BOB):
            attempt = Attempt("payment", person.id, "pay", on.clock.now())
            await on.app.notifier.report_attempt(attempt, person)
        await on.rounds("payment", False, 8)
        expected = {"bob@example.com"} | ({"alice@example.com"} if setting != "nothing" else set())
        told = {m.rcpt_tos[0] for m in await on.mail(len(expected))}
        await on.tick()
        while await on.app.delivery.run_once():
            pass
        assert told == expected == {m.rcpt_tos[0] for m in on.catcher.messages}
        decided = {item.person_id for item in await on.app.store.outbox_items(1)}
        assert decided == {address.split("@")[0] for address in expected}


async def test_list_unsubscribe_is_written_on_one_line_as_given_on_both_paths(
    tmp_path: Path,
) -> None:
    """The link is longer than a folded line: to an ASCII address and to one that needs
    SMTPUTF8 alike, ``List-Unsubscribe`` is written whole on one line (never encoded, which
    mail clients would not read), and the DKIM signature over it verifies."""
    keys = ed25519_keys()
    url = f"{PUBLIC}/unsubscribe/{'x' * 90}.{'y' * 43}"
    emails = [
        Email(
            f"incident-1.acknowledge.u{n}@example.com",
            to,
            "Sorry",
            "Text.",
            None,
            (unsubscribe_headers(url)),
        )
        for n, to in enumerate(("alice@example.com", "jörg@example.com"))
    ]
    async with MailCatcher() as catcher:
        caught = await sent(catcher, emails, letterhead(keys))
    for message in caught:
        assert f"\r\nList-Unsubscribe: <{url}>\r\n".encode() in message.raw
        assert b"\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n" in message.raw
        assert dkim.verify(message.raw, dnsfunc=keys.dns)


# The confirmation mail: the subscribe.j2 templates -----------------------------------------

TWO_SERVICES = "email=new%40example.org&system=Online+payments&system=Signing+in+to+your+account"


def copy_of_messages(tmp_path: Path) -> Path:
    copy = tmp_path / "messages"
    shutil.copytree(MESSAGES, copy)
    return copy


async def test_the_confirmation_mail_is_its_template_with_a_text_and_an_html_part(
    tmp_path: Path,
) -> None:
    """The mail says who asked, the services by title, the link and how long it works, and
    that nothing more comes if it was not them; its html part has lang, a title, the link as
    a link and the support phone and email as tel: and mailto: links; neither part has a
    manage link (nobody is subscribed yet), and the page answered never shows the link."""
    async with stage(tmp_path) as on:
        status, page = await on.post("/subscribe", TWO_SERVICES)
        [mail] = await on.mail(1)

        assert mail.subject == "Please confirm your subscription to Example Ltd status updates"
        link = link_in(mail.text, "subscribe/confirm")
        assert flat(mail.text) == flat(
            "Hello, Someone, hopefully you, asked us to write by email when there's a problem "
            "with Signing in to your account and Online payments at Example Ltd, and again when "
            f"it's fixed. To confirm, open this link within 48 hours: {link} If it wasn't you, "
            "just ignore this mail: you won't hear from us again. If you have a question, call "
            "0800 123 456 or email help@example.com. Example Ltd"
        )
        assert mail.message.get_content_type() == "multipart/alternative"
        body = mail.html or ""
        assert '<html lang="en">' in body
        assert f"<title>{mail.subject}</title>" in body
        assert f'<a href="{link}">{link}</a>' in body
        assert '<a href="tel:0800123456">0800 123 456</a>' in body
        assert '<a href="mailto:help@example.com">help@example.com</a>' in body
        assert "/unsubscribe/" not in mail.text + body
        assert "List-Unsubscribe" not in mail.message
        assert (status, link in page, "subscribe/confirm" in page) == (200, False, False)


async def test_a_german_visitor_gets_the_german_mail_and_hears_in_german_once_subscribed(
    tmp_path: Path,
) -> None:
    """A browser asking for Austrian German, then German, then English gets the German mail
    ("48 Stunden", lang="de"); the subscriber the link makes reads German (de-AT), so the
    acknowledgement of the next outage is German too. A browser asking only for languages
    there are no templates for gets the default language's, and keeps no language of their own
    (so they follow a later change of default_language)."""
    async with stage(tmp_path) as on:
        await on.post("/subscribe", TWO_SERVICES, language="de-AT,de;q=0.9,en;q=0.8")
        await on.post(
            "/subscribe", "email=fr%40example.org&system=Online+payments", language="fr, es;q=0.5"
        )
        await on.mail(2)
        [german], [french] = on.to("new@example.org"), on.to("fr@example.org")

        assert german.subject == (
            "Bitte bestätigen Sie Ihr Abonnement der Statusmeldungen von Example Ltd"
        )
        assert "Signing in to your account und Online payments" in german.text
        assert "er gilt 48 Stunden lang:" in german.text
        assert "Sie hören dann nicht wieder von uns" in german.text
        assert '<html lang="de">' in (german.html or "")
        assert french.subject.startswith("Please confirm")

        link = path_of(link_in(german.text, "subscribe/confirm"))
        assert (await on.post(link, ""))[0] == 200
        [person] = await on.app.store.people_with_email("new@example.org")
        assert (person.language, person.systems) == ("de-AT", ("login", "payment"))
        assert (await on.post(path_of(link_in(french.text, "subscribe/confirm")), ""))[0] == 200
        [other] = await on.app.store.people_with_email("fr@example.org")
        assert other.language is None  # the default language's, as it is then
        await on.rounds("payment", False, 8)
        # The two confirmations, then the acknowledgements: Alice, Dana and both new subscribers.
        [ack] = [m for m in await on.mail(6) if m.rcpt_tos == ("new@example.org",)][1:]
        assert ack.subject.startswith("Entschuldigung: ")
        assert ack.text.startswith("Guten Tag,")
        assert "/unsubscribe/" in ack.text  # subscribed now: their own link


async def test_a_confirm_link_made_before_links_carried_a_language_still_subscribes(
    tmp_path: Path,
) -> None:
    """A link of the earlier form (the address and systems, no language) confirms, and its
    subscriber reads the default language (no language of their own)."""
    async with stage(tmp_path) as on:
        links = on.app.links.links
        assert links is not None
        old = path_of(links.confirm_url("old@example.org", ["payment"]))
        payload = old.rsplit("/", 1)[1].split(".")[0]
        said = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        assert said == b'{"e":"old@example.org","s":["payment"]}'  # the earlier form

        status, page = await on.post(old, "")
        assert (status, "You're subscribed" in page) == (200, True)
        [person] = await on.app.store.people_with_email("old@example.org")
        assert (person.language, person.systems) == (None, ("payment",))


async def test_someone_the_apps_know_keeps_their_own_language_when_they_confirm(
    tmp_path: Path,
) -> None:
    """Bob, whom the apps know with English, confirms from a German mail: he gets the
    service and keeps English."""
    async with stage(tmp_path) as on:
        await on.app.store.upsert_people([replace(BOB, language="en")])
        await on.post("/subscribe", "email=bob%40example.com&system=Online+payments", "de")
        [mail] = await on.mail(1)
        assert mail.subject.startswith("Bitte bestätigen")
        assert (await on.post(path_of(link_in(mail.text, "subscribe/confirm")), ""))[0] == 200
        bob = await on.app.store.person("bob")
        assert bob is not None
        assert (bob.language, bob.systems) == ("en", ("login", "payment"))


async def test_an_edited_subscribe_template_is_used_once_a_reload_accepts_it(
    tmp_path: Path,
) -> None:
    """on-call edits messages/subscribe.j2 while the monitor runs: the mail keeps the old
    words until a reload validates the new ones, then has the new subject and text."""
    messages = copy_of_messages(tmp_path)
    async with stage(tmp_path, messages=messages) as on:
        template = messages / "subscribe.j2"
        source = template.read_text(encoding="utf-8")
        edited = source.replace(
            "Please confirm your subscription to {{ org.name }} status updates",
            "One click to hear from {{ org.name }}",
        ).replace("Hello,\n", "Hello from the edited template,\n")
        assert edited != source
        template.write_text(edited, encoding="utf-8")

        await on.post("/subscribe", "email=a%40example.org&system=Online+payments")
        assert (await on.mail(1))[0].subject.startswith("Please confirm")
        assert on.app.reload() == []
        await on.post("/subscribe", "email=b%40example.org&system=Online+payments")
        await on.mail(2)
        [mail] = on.to("b@example.org")
        assert mail.subject == "One click to hear from Example Ltd"
        assert mail.text.startswith("Hello from the edited template,")
        assert link_in(mail.text, "subscribe/confirm")


BROKEN_CONFIRMATION = """{% extends "_base.j2" %}
{% block subject %}Please confirm{% endblock %}
{% block text %}
Hello,
{{ {}[subscription.confirm_url] }}
{% endblock %}
"""


async def test_a_confirmation_template_that_fails_sends_nothing_and_logs_where_not_whom(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A subscribe.j2 that fails when someone asks (the monitor started with it): the
    visitor gets the same page, nothing is sent or kept, the request is counted, and an
    ERROR names the template and line, with neither the address nor the link (the failure
    quoted the link: it is withheld)."""
    messages = copy_of_messages(tmp_path)
    (messages / "subscribe.j2").write_text(BROKEN_CONFIRMATION, encoding="utf-8")
    async with stage(tmp_path, messages=messages) as on:
        caplog.set_level(logging.INFO, "monitor.subscriptions")
        status, page = await on.post("/subscribe", "email=new%40example.org&system=Online+payments")

        assert (status, "Check your inbox" in page) == (200, True)
        [failed] = [r for r in caplog.records if r.levelno == logging.ERROR]
        problem = failed.__dict__["fields"]["problem"]
        assert problem.startswith(f"{messages / 'subscribe.j2'}:5: text: undefined: ")
        assert "[withheld]" in problem
        logged = caplog.text + problem
        assert "new@example.org" not in logged
        assert "subscribe/confirm" not in logged
        assert await on.app.store.outbox_items(0) == []
        while await on.app.delivery.run_once():
            pass
        assert on.catcher.messages == []
        metrics = await (await on.client.get("/metrics")).text()
        assert 'monitor_subscriptions_total{event="requested"} 1.0' in metrics
