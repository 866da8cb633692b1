"""The real `monitor` command on PostgreSQL: `users import`, `db status` and `monitor run` with
``MONITOR_DB=postgresql://monitor:PASSWORD@...`` through a payment outage, and the URL's
password nowhere the database is shown (output, log, /metrics, /readyz, /api/v1/status)."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
from postgres import Database
from process import REPO, free_port, run_cli, start_monitor, stop, wait_http
from targets import Mode, Target
from test_process import write_checks

from monitor.demo.mailcatcher import MailCatcher
from monitor.store.migrations import migrations

PEOPLE = 20
KNOWN = len(migrations("postgres"))


def secrets_of(pg_database: Database) -> list[str]:
    password = pg_database.cluster.password
    return [password, quote(password, safe="")]  # as given, and as its URL spells it


def assert_no_password(pg_database: Database, *texts: str) -> None:
    for text in texts:
        assert not any(secret in text for secret in secrets_of(pg_database)), text[:2000]


async def test_monitor_run_on_postgresql_tells_everyone_once_and_never_shows_the_password(
    pg_database: Database, tmp_path: Path
) -> None:
    """People imported into PostgreSQL, then `monitor run` on it through a payment outage:
    each person gets one acknowledgement and one resolved message. `users import`, `db
    status`, the `started` log line, /metrics, /readyz and /api/v1/status name the database
    without its password, also while the server is stopped (a warning naming host:port/db,
    `monitor_store_up` 0), and the monitor carries on when it is back."""
    cluster, url = pg_database.cluster, pg_database.url
    where = f"127.0.0.1:{cluster.port}/{pg_database.name}"
    shown = f"postgresql://monitor@{where}"
    csv = tmp_path / "people.csv"
    csv.write_text(
        "id,name,email,phone,systems\n"
        + "".join(f"p{i},Person {i},p{i}@example.com,,payment\n" for i in range(PEOPLE))
    )
    code, out, err = await run_cli("users", "import", str(csv), env={"MONITOR_DB": url})
    assert (code, out, err) == (0, f"{PEOPLE} people imported into {shown}\n", "")
    code, out, err = await run_cli("db", "status", "--db", url)
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        "backend: postgresql",
        f"database: {where}",
        f"schema: {KNOWN}; this monitor knows up to {KNOWN}",
        "pending: none",
    ]

    async with MailCatcher() as catcher, Target() as target:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = {
            "MONITOR_CONFIG": str(write_checks(tmp_path / "checks", target.url_for("/healthz"))),
            "MONITOR_MESSAGES": str(REPO / "messages"),
            "MONITOR_DB": url,
            "MONITOR_LISTEN": f"127.0.0.1:{port}",
            "MONITOR_SMTP_URL": catcher.url,
            "MONITOR_SMTP_FROM": "status@example.com",
        }
        process = await start_monitor(env)
        try:
            await wait_http(f"{base}/metrics", 'monitor_system_up{system="payment"} 1.0')
            await target.set_mode(Mode.ERROR)
            await catcher.wait_for_messages(PEOPLE)
            await target.set_mode(Mode.HEALTHY)
            await catcher.wait_for_messages(2 * PEOPLE)
            await wait_http(f"{base}/metrics", "monitor_outbox_pending 0.0")
            assert_no_password(
                pg_database,
                await wait_http(f"{base}/metrics", "monitor_store_up 1.0"),
                await wait_http(f"{base}/readyz", "ready"),
                await wait_http(f"{base}/api/v1/status", '"writable": true'),
            )

            cluster.stop("fast")
            readyz = await wait_http(f"{base}/readyz", f"the PostgreSQL database {where}")
            status = await wait_http(f"{base}/api/v1/status", '"writable": false')
            metrics = await wait_http(f"{base}/metrics", "monitor_store_up 0.0")
            assert readyz.startswith("ready\n")
            assert f"the PostgreSQL database {where} cannot be reached" in status
            assert_no_password(pg_database, readyz, status, metrics)
            cluster.start()
            await wait_http(f"{base}/metrics", "monitor_store_up 1.0")
        finally:
            log = await stop(process)
    assert process.returncode == 0, log[-3000:]
    assert_no_password(pg_database, log)
    started = [json.loads(line) for line in log.splitlines() if '"event": "started"' in line]
    assert [line["db"] for line in started] == [shown]

    kinds_by_person: dict[str, list[str]] = defaultdict(list)
    for message in catcher.messages:
        kind = str(message.message["Message-ID"]).split(".")[1]
        for rcpt in message.rcpt_tos:
            kinds_by_person[rcpt].append(kind)
    assert len(kinds_by_person) == PEOPLE
    assert all(kinds == ["acknowledge", "resolved"] for kinds in kinds_by_person.values())
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*), count(resolved_at) FROM incidents").fetchone() == (
            1,
            1,
        )
        assert conn.execute("SELECT status, count(*) FROM outbox GROUP BY status").fetchall() == [
            ("sent", 2 * PEOPLE)
        ]


@pytest.mark.parametrize("command", [["run"], ["db", "upgrade"], ["db", "status"]])
async def test_a_database_that_cannot_be_reached_stops_the_command_without_the_password(
    pg_database: Database, tmp_path: Path, command: list[str]
) -> None:
    """A wrong password: `run`, `db upgrade` and `db status` exit 2 in one line naming the
    database and the server's reason, never either password."""
    wrong = pg_database.url.replace(pg_database.cluster.password, "not-the-password")
    env = {
        "MONITOR_DB": wrong,
        "MONITOR_CONFIG": str(REPO / "checks"),
        "MONITOR_LISTEN": f"127.0.0.1:{free_port()}",
    }
    code, out, err = await run_cli(*command, env=env)
    where = f"127.0.0.1:{pg_database.cluster.port}/{pg_database.name}"
    assert (code, out) == (2, "")
    assert err == (
        f"postgresql://monitor@{where}: the PostgreSQL database {where} refuses the connection "
        '(password authentication failed for user "monitor")\n'
    )
    assert_no_password(pg_database, err)
    assert "not-the-password" not in err
