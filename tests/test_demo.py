"""``monitor demo`` and ``monitor send-test`` as a user runs them: real processes, real SMTP."""

from __future__ import annotations

import asyncio
import re
import shutil
import signal
import socket
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import aiohttp
import pytest
from process import REPO, monitor_env, run_cli

from monitor.app import Options
from monitor.demo.history import DAYS
from monitor.demo.mailcatcher import MailCatcher
from monitor.demo.pages import MESSAGES_PATH
from monitor.demo.script import ACTION, ALICE, LEAVER, PEOPLE, PLANNED, VISITOR, change_line
from monitor.demo.sendtest import send_test
from monitor.incidents.correlation import Change, Correlator
from monitor.model import Health, Transition
from monitor.web.server import PAGE_HEADERS

SPEED = "10"
DEMO_PEOPLE = {p.email: p.name for p in (*PEOPLE, ALICE)}
JONAS = "jonas.weber@example.com"  # the demo's person in New York who reads German
TOM = next(p.email for p in PEOPLE if p.id == LEAVER)  # unsubscribes before the explanation
# Subscribers of the system with planned work: each gets its notice too.
PLANNED_FOR = {p.email for p in PEOPLE if PLANNED in p.systems and p.email}
MAIL_TO = re.compile(r"^\[ *[\d.]+s\] Mail to (?P<name>.+) <(?P<email>[^>]+)>$")
URLS = re.compile(r"^Status page: (?P<status>\S+)  Messages: (?P<messages>\S+)  \(")
SERVING = "Still serving until Ctrl-C"
HOSTILE_ORG = "Shop<script>alert(1)</script> & Co"
HOSTILE_HTML = '<script>document.title = "ran"</script><img src="x" onerror="alert(2)">'


def mails(out: str) -> list[tuple[str, str]]:
    """(recipient, subject) of every message the demo printed, in order."""
    lines = out.splitlines()
    found = []
    for line, following in zip(lines, [*lines[1:], ""], strict=True):
        match = MAIL_TO.match(line)
        if match:
            assert following.strip().startswith("Subject: "), following
            found.append((match["email"], following.strip().removeprefix("Subject: ")))
    return found


@asynccontextmanager
async def demo_process(
    *args: str, env: dict[str, str] | None = None
) -> AsyncIterator[asyncio.subprocess.Process]:
    """``monitor demo ARGS`` running in the repository; killed at the end if still running."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "monitor.cli",
        "demo",
        *args,
        env=monitor_env(env or {}),
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def read_until(
    process: asyncio.subprocess.Process, done: Callable[[str], bool], seen: list[str]
) -> str:
    """Read the demo's output into ``seen`` until a line satisfies ``done``; return that line.
    Fails if the process ends first, or after 90 seconds."""
    assert process.stdout is not None
    async with asyncio.timeout(90):
        while True:
            line = (await process.stdout.readline()).decode()
            assert line, "the demo ended early:\n" + "".join(seen)
            seen.append(line)
            if done(line):
                return line.rstrip("\n")


@dataclass
class ShownOnPage:
    """One message as the messages page shows it, from the parsed HTML."""

    title: str = ""
    meta: str = ""
    text: str = ""
    sms: str = ""
    srcdoc: str | None = None
    sandbox: str | None = None


class MessagesPageParser(HTMLParser):
    """The messages page's elements as a browser's parser sees them (attributes and text
    unescaped)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.messages: list[ShownOnPage] = []
        self.reading: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        given = dict(attrs)
        kind = given.get("class")
        if tag == "article":
            self.messages.append(ShownOnPage())
        elif tag == "iframe":
            self.messages[-1].srcdoc = given.get("srcdoc")
            self.messages[-1].sandbox = given.get("sandbox", "absent") or ""
        elif (tag, kind) in (("h2", None), ("div", "meta"), ("pre", "text"), ("p", "sms")):
            self.reading = {"h2": "title", "div": "meta", "pre": "text", "p": "sms"}[tag]

    def handle_endtag(self, tag: str) -> None:
        if tag in ("h2", "div", "pre", "p"):
            self.reading = None

    def handle_data(self, data: str) -> None:
        if self.reading is not None:
            shown = self.messages[-1]
            setattr(shown, self.reading, getattr(shown, self.reading) + data)


async def test_demo_scripts_an_outage_from_failure_to_the_resolved_messages() -> None:
    """With --exit the demo shows both systems DOWN as one incident, on-call alerted by email,
    one acknowledgement saying so, an update at goodwill_after and one with on-call's note
    (goodwill offered to each person once, in one of them), one resolved message and one
    explanation per affected person, a summary, and exits 0; every "still down" line names
    what is still down."""
    code, out, err = await run_cli("demo", "--exit", "--speed", SPEED, "--listen", "127.0.0.1:0")
    assert code == 0, out + err
    assert "shortened intervals" in out
    urls = next(URLS.match(line) for line in out.splitlines() if line.startswith("Status page:"))
    assert urls is not None
    assert urls["messages"] == urls["status"].rstrip("/") + MESSAGES_PATH
    assert re.search(r"^\[ *[\d.]+s\] payment +DOWN +status 503", out, re.M), out
    assert re.search(r"^\[ *[\d.]+s\] login +DOWN +step 1 \(sign in\): status 502", out, re.M)
    assert len(re.findall(r"\] Incident \d+ opened", out)) == 1, out
    assert "Systems: payment, login" in out or "Systems: login, payment" in out
    for still in re.findall(r"still down: ([^\n]*)", out):
        assert re.fullmatch(r"\w+(, \w+)*\.", still), out
    sent = mails(out)
    acknowledged = {to for to, subject in sent if subject.startswith(("Sorry", "Entschuldigung"))}
    updated = {to for to, subject in sent if subject.startswith(("Update on", "Neuigkeiten"))}
    still = {to for to, subject in sent if subject.startswith(("Still working", "Wir arbeiten"))}
    resolved = {to for to, subject in sent if subject.startswith(("It's fixed", "Behoben"))}
    explained = {to for to, subject in sent if subject.startswith(("Why", "Warum"))}
    assert acknowledged == still == updated == resolved == set(DEMO_PEOPLE)
    assert explained == set(DEMO_PEOPLE) - {TOM}  # he unsubscribed in one click before it
    planned = [to for to, subject in sent if subject.startswith(("Planned work", "Geplante"))]
    assert sorted(planned) == sorted(PLANNED_FOR)
    assert len(sent) == 5 * len(DEMO_PEOPLE) + len(PLANNED_FOR) - 1
    # A visitor subscribed through the status page and confirmed by the mail's link.
    assert f"Mail to {VISITOR}\n" in out
    assert "Subject: Please confirm your subscription to Example Ltd status updates" in out
    assert f"{VISITOR} confirms by the mail's link: now a subscriber (sub-" in out
    assert (
        f"Unsubscribed in one click: Tom Becker; subscribed through the status page: {VISITOR}."
        in out
    )
    # Jonas reads German and lives in New York: every subject of his is German.
    jonas = [subject for to, subject in sent if to == JONAS]
    assert [s.split()[0] for s in jonas] == [
        "Geplante",
        "Entschuldigung:",
        "Wir",
        "Neuigkeiten",
        "Behoben:",
        "Warum",
    ]
    assert "Subscribers:" in out
    assert "Jonas Weber (login; de, America/New_York)" in out
    assert (ALICE.email, f"Sorry — you couldn't {ACTION}, and we're on it") in sent
    assert (ALICE.email, "Update on the problem with Online payments") in sent
    assert (ALICE.email, f"It's fixed: you can {ACTION} again") in sent
    assert "did not apply properly" in out.split("Update on the problem with Online payments")[1]
    n = len(DEMO_PEOPLE)
    assert (
        f"People acknowledged: {n}; sent updates: {2 * n} (goodwill offered in {n});"
        f" told it is resolved: {n}; sent the explanation: {n - 1}; undeliverable: 0." in out
    )
    # And the visitor, who subscribed after the notice went: told of it then.
    assert f"Planned-work notices sent: {len(PLANNED_FOR) + 1};" in out
    # On-call heard of the opening by email, and the customers read when and how.
    assert re.search(r"On-call alerted by email \(oncall@example\.com\): Incident \d+ opened", out)
    assert "was alerted at" in out
    assert "by email" in out
    # And the visitor's two: the confirmation, then the notice of the work already announced.
    assert f"Messages caught by the mail catcher: {len(sent) + 2} " in out
    assert "monitor run" in out
    assert SERVING not in out
    assert "Traceback" not in err


async def test_demo_in_an_empty_directory_uses_the_shipped_checks_and_messages(
    tmp_path: Path,
) -> None:
    """Run where there is no checks/ or messages/, the demo uses the copies in the package."""
    code, out, err = await run_cli(
        "demo", "--exit", "--speed", SPEED, "--listen", "127.0.0.1:0", cwd=tmp_path
    )
    assert code == 0, out + err
    assert "Checks:      the shipped checks" in out
    assert "Messages:    the shipped messages" in out


async def test_demo_on_a_taken_port_serves_on_a_free_one_and_sigterm_ends_it_cleanly() -> None:
    """With --listen on a busy port the demo says so and the monitor answers at the URL it
    prints; SIGTERM in the middle of the script ends it with exit 0 and no traceback."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        async with demo_process("--speed", SPEED, "--listen", f"127.0.0.1:{taken}") as process:
            seen: list[str] = []
            line = await read_until(process, lambda line: line.startswith("Status page:"), seen)
            url = line.split()[2]
            async with aiohttp.ClientSession() as session, session.get(url + "healthz") as r:
                assert r.status == 200
            process.send_signal(signal.SIGTERM)
            rest, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    assert f"Port {taken} is taken" in "".join(seen)
    assert f":{taken}/" not in url
    assert "Demo stopped." in rest.decode()
    assert "Summary" not in rest.decode()
    assert "Traceback" not in err.decode()


async def test_demo_serves_every_caught_message_escaped_until_ctrl_c(tmp_path: Path) -> None:
    """After the script the demo keeps serving: the messages page shows every caught message
    with its HTML part in a sandboxed frame, its text part and its SMS, with the org name and
    recipients escaped and no script of a message's on the page itself; SIGINT ends it, 0."""
    checks, messages = tmp_path / "checks", tmp_path / "messages"
    shutil.copytree(REPO / "checks", checks)
    shutil.copytree(REPO / "messages", messages)
    settings = checks / "monitor.yaml"
    settings.write_text(settings.read_text().replace("name: Example Ltd", f'name: "{HOSTILE_ORG}"'))
    body = "{{ self.text()|paragraphs|contact_links(org)|manage_link(manage_url) }}"
    for base in (messages / "_base.j2", messages / "de" / "_base.j2"):  # every language's
        assert body in base.read_text()
        base.write_text(base.read_text().replace(body, f"{HOSTILE_HTML}\n{body}"))
    env = {"MONITOR_CONFIG": str(checks), "MONITOR_MESSAGES": str(messages)}
    async with demo_process("--speed", SPEED, "--listen", "127.0.0.1:0", env=env) as process:
        seen: list[str] = []
        line = await read_until(process, lambda line: line.startswith("Status page:"), seen)
        urls = URLS.match(line)
        assert urls is not None, line
        assert line.endswith("(served until Ctrl-C)")
        await read_until(process, lambda line: line.startswith(SERVING), seen)
        async with aiohttp.ClientSession() as session:
            async with session.get(urls["messages"]) as response:
                assert response.status == 200
                policy = response.headers["Content-Security-Policy"]
                page = await response.text()
            async with session.get(urls["status"]) as response:
                assert response.status == 200
                status = await response.text()
            async with session.get(urls["status"] + "history") as response:
                past = await response.text()
            async with session.get(urls["status"] + "incidents/2") as response:
                explained = await response.text()
        process.send_signal(signal.SIGINT)
        rest, err = await asyncio.wait_for(process.communicate(), 60)
    out = "".join(seen) + rest.decode()
    assert process.returncode == 0, out + err.decode()
    assert "Demo stopped." in rest.decode()
    assert "Traceback" not in err.decode()
    assert "Checks:      MONITOR_CONFIG" in out
    assert "Messages:    MONITOR_MESSAGES" in out

    # The status page has a past: the made-up month's bars with their incidents, the history,
    # the planned work; and the demo's own outage (incident 3) beside them.
    assert f"History:     {DAYS} days made up before the demo (incidents 1, 2)" in out
    assert status.count('<li class="full" tabindex="0"') >= DAYS - 2
    assert 'href="/incidents/1"' in status
    assert 'href="/incidents/2"' in status
    assert "Planned maintenance" in status
    assert [f'href="/incidents/{n}"' in past for n in (1, 2, 3)] == [True, True, True]
    assert "Our card processor" in explained

    assert policy == PAGE_HEADERS["Content-Security-Policy"]
    parsed = MessagesPageParser()
    parsed.feed(page)
    assert "script" not in parsed.tags
    assert "img" not in parsed.tags
    sent = mails(out)
    # The visitor's confirmation mail is on the page too, written from messages/subscribe.j2:
    # an html part with the link, and no SMS (the visitor is nobody's person yet).
    [confirmation, notice] = [shown for shown in parsed.messages if VISITOR in shown.meta]
    assert confirmation.srcdoc is not None
    assert "/subscribe/confirm/" in confirmation.text
    assert "/subscribe/confirm/" in confirmation.srcdoc
    assert confirmation.sms == ""
    assert "planned work" in notice.text  # subscribed after it was announced: told then
    told = [shown for shown in parsed.messages if VISITOR not in shown.meta]
    assert len(told) == len(sent) == 5 * len(DEMO_PEOPLE) + len(PLANNED_FOR) - 1
    for (email, subject), shown in zip(sent, told, strict=True):
        assert shown.title.split(". ", 1)[1] == subject
        assert f"{DEMO_PEOPLE[email]} <{email}>" in shown.meta
        assert f"&lt;{email}&gt;" in page
        assert shown.sandbox == ""
        assert shown.srcdoc is not None
        assert HOSTILE_HTML in shown.srcdoc
        assert DEMO_PEOPLE[email].split()[0] in shown.text
        assert HOSTILE_ORG in shown.text
        assert shown.sms.startswith(f"{HOSTILE_ORG}: ")
        assert len(shown.sms) <= 320
    kinds = [shown.meta.split()[-1] for shown in told]
    assert sorted(set(kinds)) == [
        "acknowledge",
        "explanation",
        "maintenance",
        "resolved",
        "update",
    ]
    assert kinds.count("update") == 2 * len(DEMO_PEOPLE)
    # The second update carries on-call's note: what went wrong, and what they are doing.
    noted = [
        shown.sms
        for shown, kind in zip(told, kinds, strict=True)
        if kind == "update" and "did not apply properly" in shown.text
    ]
    assert len(noted) == len(DEMO_PEOPLE)
    assert all("rolling it back" in sms or "did not apply" in sms for sms in noted), noted
    assert "Shop&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co" in page


def test_a_recovery_line_names_what_was_still_down_then_even_when_the_rest_followed() -> None:
    """Payment and login recovering in one correlation pass arrive as "payment recovered" with
    an incident where both are back; the line still says login was down at that moment."""
    correlator = Correlator({}, window=30.0)

    def moves(*steps: tuple[str, float, Health]) -> list[Transition]:
        return [
            Transition(name, at, Health.DOWN if to is Health.UP else Health.UP, to, "", 1)
            for name, at, to in steps
        ]

    opened = correlator.fold(
        moves(("payment", 10.0, Health.DOWN), ("login", 11.0, Health.DOWN)), [], lambda: 7
    )
    recovered = correlator.fold(
        moves(("payment", 40.0, Health.UP), ("login", 41.0, Health.UP)),
        opened.incidents,
        lambda: 8,
    )
    [incident] = recovered.incidents
    assert [step.change for step in recovered.steps] == [Change.RECOVERED, Change.RESOLVED]
    assert change_line(incident, Change.RECOVERED, ["payment"]) == (
        "Incident 7: payment is back; still down: login."
    )
    assert change_line(incident, Change.RESOLVED, ["login"]) == (
        "Incident 7 resolved: every check passes again. It lasted 31 seconds."
    )


def test_a_recovery_at_the_same_moment_as_the_last_one_does_not_name_an_empty_list() -> None:
    """When the rest came back at the very same moment, the recovery line names nobody as
    still down (the "resolved" line follows), never "still down: ."."""
    correlator = Correlator({}, window=30.0)
    down = [Transition(n, 1.0, Health.UP, Health.DOWN, "", 1) for n in ("payment", "login")]
    up = [Transition(n, 5.0, Health.DOWN, Health.UP, "", 1) for n in ("payment", "login")]
    incident = correlator.fold(down, [], lambda: 3).incidents[0]
    incident = correlator.fold(up, [incident], lambda: 4).incidents[0]
    assert change_line(incident, Change.RECOVERED, ["payment"]) == "Incident 3: payment is back."


async def test_demo_refuses_a_speed_out_of_range() -> None:
    """--speed 0 is refused with a message naming the allowed range."""
    code, _, err = await run_cli("demo", "--speed", "0")
    assert code == 2
    assert "--speed must be between" in err


async def test_send_test_delivers_one_sample_acknowledgement_with_a_message_id() -> None:
    """send-test sends the first system's sample acknowledgement through MONITOR_SMTP_URL,
    with a Message-ID in the org's domain, and prints what it sent."""
    async with MailCatcher() as catcher:
        code, out, err = await run_cli(
            "send-test",
            "--to",
            "owner@example.org",
            env={"MONITOR_SMTP_URL": catcher.url, "MONITOR_SMTP_FROM": "status@example.com"},
        )
    assert code == 0, err
    [caught] = catcher.messages
    assert caught.rcpt_tos == ("owner@example.org",)
    assert caught.mail_from == "status@example.com"
    assert re.fullmatch(
        r"<send-test\.acknowledge\.[0-9a-f]+@example\.com>", caught.message["Message-ID"]
    )
    assert caught.message["Subject"] == (  # crm is the first system; its sample fits it
        "[test] Sorry — you couldn't use your customer account and order history, and we're on it"
    )
    assert "Alice, I'm sorry" in caught.text
    assert caught.message["Message-ID"] in out
    assert caught.message["Subject"] in out


async def test_send_test_reports_a_refusal_without_showing_the_password(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A refused recipient exits 1 with the server's answer; the SMTP password is never printed."""
    password = "s3cret-pa55word"
    async with MailCatcher(credentials=("mailer", password)) as catcher:
        catcher.reject.add("nobody@example.org")
        options = Options(config=REPO / "checks", messages=REPO / "messages")
        env = {"MONITOR_SMTP_URL": catcher.url}
        code = await send_test(options, env, "nobody@example.org")
    out, err = capsys.readouterr()
    assert code == 1
    assert catcher.messages == []
    assert "550 5.1.1 no such user" in err
    assert password not in out + err


async def test_send_test_without_smtp_url_says_it_is_unset() -> None:
    """With MONITOR_SMTP_URL unset, send-test exits 1 and says which variable to set."""
    code, out, err = await run_cli("send-test", "--to", "owner@example.org")
    assert code == 1
    assert "MONITOR_SMTP_URL is not set" in err
    assert out == ""
