"""``monitor demo`` and ``monitor send-test`` as a user runs them: real processes, real SMTP."""

from __future__ import annotations

import asyncio
import re
import socket
import sys
from pathlib import Path

import aiohttp
import pytest
from process import REPO, monitor_env, run_cli

from monitor.app import Options
from monitor.demo import ACTION, ALICE, PEOPLE
from monitor.mailcatcher import MailCatcher
from monitor.sendtest import send_test

SPEED = "10"
DEMO_PEOPLE = {p.email: p.name for p in (*PEOPLE, ALICE)}
MAIL_TO = re.compile(r"^\[ *[\d.]+s\] Mail to (?P<name>.+) <(?P<email>[^>]+)>$")


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


async def test_demo_scripts_an_outage_from_failure_to_the_resolved_messages() -> None:
    """The demo shows both systems DOWN as one incident, one acknowledgement and one resolved
    message per affected person, a summary, and exits 0."""
    code, out, err = await run_cli("demo", "--speed", SPEED, "--listen", "127.0.0.1:0")
    assert code == 0, out + err
    assert "shortened intervals" in out
    assert re.search(r"^\[ *[\d.]+s\] payment +DOWN +status 503", out, re.M), out
    assert re.search(r"^\[ *[\d.]+s\] login +DOWN +step 1 \(sign in\): status 502", out, re.M)
    assert len(re.findall(r"Incident \d+ opened", out)) == 1, out
    assert "Systems: payment, login" in out or "Systems: login, payment" in out
    sent = mails(out)
    acknowledged = {to for to, subject in sent if subject.startswith("Sorry")}
    resolved = {to for to, subject in sent if subject.startswith("It's fixed")}
    assert acknowledged == resolved == set(DEMO_PEOPLE)
    assert len(sent) == 2 * len(DEMO_PEOPLE)
    assert (ALICE.email, f"Sorry — you couldn't {ACTION}, and we're on it") in sent
    assert (ALICE.email, f"It's fixed: you can {ACTION} again") in sent
    assert (
        f"People acknowledged: {len(DEMO_PEOPLE)}; told it is resolved: {len(DEMO_PEOPLE)}" in out
    )
    assert f"Messages caught by the mail catcher: {len(sent)}." in out
    assert "monitor run" in out


async def test_demo_in_an_empty_directory_uses_the_shipped_checks_and_messages(
    tmp_path: Path,
) -> None:
    """Run where there is no checks/ or messages/, the demo uses the copies in the package."""
    code, out, err = await run_cli(
        "demo", "--speed", SPEED, "--listen", "127.0.0.1:0", cwd=tmp_path
    )
    assert code == 0, out + err
    assert "Checks:      the shipped checks" in out
    assert "Messages:    the shipped messages" in out


async def test_demo_serves_the_status_page_on_a_free_port_when_the_asked_one_is_taken() -> None:
    """With --listen on a busy port the demo says so, and the monitor answers at the URL it
    prints while the demo runs."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "monitor.cli",
            "demo",
            "--speed",
            SPEED,
            "--listen",
            f"127.0.0.1:{taken}",
            env=monitor_env({}),
            cwd=REPO,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        assert process.stdout is not None
        seen: list[str] = []
        try:
            async with asyncio.timeout(120):
                while not seen or not seen[-1].startswith("Status page:"):
                    line = await process.stdout.readline()
                    assert line, "".join(seen)
                    seen.append(line.decode())
                url = seen[-1].split()[2]
                async with aiohttp.ClientSession() as session, session.get(url + "healthz") as r:
                    assert r.status == 200
                rest, err = await process.communicate()
            assert "Summary" in rest.decode()
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
    assert process.returncode == 0, err.decode()
    assert f"Port {taken} is taken" in "".join(seen)
    assert f":{taken}/" not in url


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
    assert caught.message["Subject"].startswith(
        "[test] Sorry — you couldn't buy the LinkedIn course"
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
