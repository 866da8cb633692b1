"""The real process: `monitor run` probing real servers, restarted and killed like in production."""

from __future__ import annotations

import asyncio
import shutil
from collections import defaultdict
from pathlib import Path

import aiohttp
import pytest
from process import REPO, free_port, run_cli, start_monitor, stop, wait_http
from targets import Mode, Target

from monitor.demo.mailcatcher import MailCatcher
from monitor.store import SQLiteStore

SETTINGS = """\
org: {name: Example Ltd, support_email: help@example.com}
notify_after: %s
correlation_window: 5m
"""

PAYMENT = """\
name: payment
title: Online payments
every: 1s
timeout: 500ms
fail_after: %d
recover_after: 1
workaround: Pay by phone.
probe: {http: {url: "%s", expect: {status: [200], body_contains: ok}}}
"""


def write_checks(directory: Path, url: str, notify_after: str = "0s", fail_after: int = 2) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "monitor.yaml").write_text(SETTINGS % notify_after)
    (directory / "payment.yaml").write_text(PAYMENT % (fail_after, url))
    return directory


async def test_monitor_run_probes_a_real_system_and_reports_it_down_and_up(
    tmp_path: Path,
) -> None:
    """`monitor run`, configured by environment only, sees a healthy system UP, a failing one
    DOWN, and serves valid Prometheus metrics and readiness all along."""
    async with Target() as target:
        port = free_port()
        env = {
            "MONITOR_CONFIG": str(write_checks(tmp_path / "checks", target.url_for("/healthz"))),
            "MONITOR_MESSAGES": str(REPO / "messages"),
            "MONITOR_DB": str(tmp_path / "monitor.db"),
            "MONITOR_LISTEN": f"127.0.0.1:{port}",
        }
        process = await start_monitor(env)
        try:
            base = f"http://127.0.0.1:{port}"
            await wait_http(f"{base}/readyz", "ready")
            await wait_http(f"{base}/metrics", 'monitor_system_up{system="payment"} 1.0')
            await target.set_mode(Mode.ERROR)
            metrics = await wait_http(f"{base}/metrics", 'monitor_system_up{system="payment"} 0.0')
            assert 'monitor_probes_total{result="failure",system="payment"}' in metrics
            assert "monitor_probe_lateness_seconds_bucket" in metrics
            if shutil.which("promtool"):
                lint = await asyncio.create_subprocess_exec(
                    "promtool",
                    "check",
                    "metrics",
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.STDOUT,
                )
                said, _ = await lint.communicate(metrics.encode())
                assert lint.returncode == 0, said.decode()
        finally:
            log = await stop(process)
        assert '"event": "transition"' in log
        assert "status 500, expected 200" in log


@pytest.mark.parametrize("how", ["SIGKILL", "SIGTERM"])
async def test_stopped_mid_fan_out_every_person_still_gets_exactly_one_acknowledgement(
    tmp_path: Path, how: str
) -> None:
    """SIGKILL (or SIGTERM) while 2,000 acknowledgements are going out; after a restart every
    person has exactly one acknowledgement (one distinct Message-ID), and nothing is left
    pending. A SIGTERM lets sends under way finish, so nobody even gets a repeat."""
    people = 2000
    csv = tmp_path / "people.csv"
    csv.write_text(
        "id,name,email,phone,systems\n"
        + "".join(f"p{i},Person {i},p{i}@example.com,,payment\n" for i in range(people))
    )
    db = tmp_path / "monitor.db"
    code, _, err = await run_cli("users", "import", str(csv), "--db", str(db))
    assert code == 0, err
    async with MailCatcher() as catcher, Target() as target:
        await target.set_mode(Mode.ERROR)
        catcher.delay = 0.002  # a realistic, slightly slow mail server: the fan-out takes a while
        env = {
            "MONITOR_CONFIG": str(write_checks(tmp_path / "checks", target.url_for("/healthz"))),
            "MONITOR_MESSAGES": str(REPO / "messages"),
            "MONITOR_DB": str(db),
            "MONITOR_LISTEN": f"127.0.0.1:{free_port()}",
            "MONITOR_SMTP_URL": catcher.url,
            "MONITOR_SMTP_FROM": "status@example.com",
        }
        first = await start_monitor(env)
        try:
            async with asyncio.timeout(90):
                await catcher.wait_for_messages(300)
        finally:
            log = await stop(first, kill=how == "SIGKILL")
        assert first.returncode == (-9 if how == "SIGKILL" else 0), log
        killed_at = len(catcher.messages)
        assert killed_at < people, "the fan-out finished before the kill; nothing was tested"

        second = await start_monitor(env)
        try:
            await _wait_for_recipients(catcher, people, deadline=120)
        finally:
            await stop(second)

    ids_by_person: dict[str, set[str]] = defaultdict(set)
    for message in catcher.messages:
        for rcpt in message.rcpt_tos:
            ids_by_person[rcpt].add(str(message.message["Message-ID"]))
    assert len(ids_by_person) == people
    assert all(len(ids) == 1 for ids in ids_by_person.values())
    if how == "SIGTERM":
        assert len(catcher.messages) == people
    store = SQLiteStore(db)
    try:
        assert await store.pending_count() == 0
    finally:
        await store.close()


async def _wait_for_recipients(catcher: MailCatcher, count: int, deadline: float) -> None:
    try:
        async with asyncio.timeout(deadline):
            while len({r for m in catcher.messages for r in m.rcpt_tos}) < count:
                await catcher.wait_for_messages(len(catcher.messages) + 1)
    except TimeoutError:
        pytest.fail(f"only {len(catcher.messages)} messages arrived")


async def test_editing_check_files_reloads_or_refuses_without_stopping(tmp_path: Path) -> None:
    """A new check file is picked up while running; a broken one is refused with its file and
    line as a warning on /readyz, which stays 200 (a sidecar's typo must not take the shop's pod
    out of service), and on the failure metrics, and the running checks carry on; SIGHUP
    reloads. With no channel configured, the start says so in one warning line."""
    async with Target() as target:
        port = free_port()
        checks = write_checks(tmp_path / "checks", target.url_for("/healthz"))
        env = {
            "MONITOR_CONFIG": str(checks),
            "MONITOR_MESSAGES": str(REPO / "messages"),
            "MONITOR_DB": str(tmp_path / "monitor.db"),
            "MONITOR_LISTEN": f"127.0.0.1:{port}",
        }
        process = await start_monitor(env)
        base = f"http://127.0.0.1:{port}"
        try:
            await wait_http(f"{base}/metrics", 'monitor_system_up{system="payment"} 1.0')
            (checks / "login.yaml").write_text(
                (checks / "payment.yaml").read_text().replace("name: payment", "name: login")
            )
            await wait_http(f"{base}/metrics", 'monitor_system_up{system="login"} 1.0')
            (checks / "crm.yaml").write_text("name: crm\ntitle: CRM\nevery: often\n")
            readyz = await wait_http(f"{base}/readyz", "refused")
            assert f"{checks}/crm.yaml:3: every:" in readyz
            async with aiohttp.ClientSession() as session, session.get(f"{base}/readyz") as got:
                assert got.status == 200
                assert (await got.text()).startswith("ready\n")
            metrics = await wait_http(
                f"{base}/metrics", 'monitor_config_reloads_total{result="failure"} 1.0'
            )
            assert "monitor_config_last_reload_successful 0.0" in metrics
            assert 'monitor_system_up{system="login"} 1.0' in metrics
            (checks / "crm.yaml").unlink()
            (checks / "login.yaml").unlink()
            metrics = await wait_http(f"{base}/metrics", 'result="success"} 3.0')
            assert "monitor_config_last_reload_successful 1.0" in metrics
            assert "refused" not in await wait_http(f"{base}/readyz", "ready")
            assert 'system="login"' not in metrics.split("monitor_system_up")[1].split("# HELP")[0]
            assert process.pid
            process.send_signal(1)  # SIGHUP
            await wait_http(f"{base}/metrics", 'monitor_config_reloads_total{result="success"} 4.0')
        finally:
            log = await stop(process)
        assert log.count("no channel is configured, so customers cannot be told") == 1, log
