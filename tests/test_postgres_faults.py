"""The faults that matter on PostgreSQL, with the real `monitor run` on a real server: killed
in the middle of a fan-out, and the database server stopped in the middle of an outage. Each
moment is recognised by what the mail catcher, the monitor's log and its HTTP answers show,
never by sleeping; the server is the throwaway cluster of ``tests/postgres.py``."""

from __future__ import annotations

import asyncio
import csv
import json
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from killable import Killable, until
from postgres import Database
from process import REPO, free_port, run_cli, start_monitor, stop
from targets import Mode, Target
from test_faults import AFFECTED, TOKEN, kind_of, message_id, metric, person_of, subscriptions
from test_faults import write_checks as write_outage_checks
from test_process import write_checks as write_payment_check

from monitor.demo.mailcatcher import CaughtMessage, MailCatcher
from monitor.store import SENT, Store

# An orchestrator's readiness probe gives up after a second or so (Kubernetes: timeoutSeconds,
# default 1): an answer that waits on a dead database server is as bad as a 503. Generous here,
# for a shared machine in the middle of a fan-out.
ANSWER_S = 5.0
STORE_WARNING = "probing goes on in memory"  # the end of /readyz's warning about the store


async def open_store(database: Database) -> Store:
    from monitor.store.postgres import open_postgres

    return await open_postgres(database.url, upgrade=True)


async def import_people(
    tmp: Path, database: Database, people: Mapping[str, tuple[str, ...]]
) -> None:
    """``monitor users import`` of ``people`` (id -> systems) into the database by its URL."""
    path = tmp / "people.csv"
    with path.open("w", newline="") as file:
        rows = csv.writer(file)
        rows.writerow(["id", "name", "email", "phone", "systems"])
        for person, systems in people.items():
            rows.writerow(
                [person, f"Person {person}", f"{person}@example.com", "", ";".join(systems)]
            )
    code, out, err = await run_cli("users", "import", str(path), "--db", database.url)
    assert code == 0, err
    assert_no_password(database, out + err)


def assert_no_password(database: Database, text: str) -> None:
    password = database.cluster.password
    assert password not in text, "the database password was shown"


def recipients(catcher: MailCatcher) -> dict[str, list[str]]:
    """Each recipient's Message-IDs, in the order they arrived."""
    ids: dict[str, list[str]] = defaultdict(list)
    for message in catcher.messages:
        for rcpt in message.rcpt_tos:
            ids[rcpt].append(message_id(message))
    return ids


# 1. killed mid fan-out ------------------------------------------------------------------------


@pytest.mark.timeout(300)
async def test_killed_mid_fan_out_on_postgresql_every_person_gets_exactly_one_acknowledgement(
    tmp_path: Path, pg_database: Database
) -> None:
    """On PostgreSQL, SIGKILL while 2,000 acknowledgements are going out; after a restart
    every person has exactly one acknowledgement (one distinct Message-ID), nothing is left
    pending, and neither run ever logged the database's password."""
    people = 2000
    await import_people(tmp_path, pg_database, {f"p{i}": ("payment",) for i in range(people)})
    async with MailCatcher() as catcher, Target() as target:
        await target.set_mode(Mode.ERROR)
        catcher.delay = 0.002  # a realistic, slightly slow mail server: the fan-out takes a while
        env = {
            "MONITOR_CONFIG": str(
                write_payment_check(tmp_path / "checks", target.url_for("/healthz"))
            ),
            "MONITOR_MESSAGES": str(REPO / "messages"),
            "MONITOR_DB": pg_database.url,
            "MONITOR_LISTEN": f"127.0.0.1:{free_port()}",
            "MONITOR_SMTP_URL": catcher.url,
            "MONITOR_SMTP_FROM": "status@example.com",
        }
        first = await start_monitor(env)
        try:
            async with asyncio.timeout(90):
                await catcher.wait_for_messages(300)
        finally:
            log = await stop(first, kill=True)
        assert first.returncode == -9, log
        killed_at = len(catcher.messages)
        assert killed_at < people, "the fan-out finished before the kill; nothing was tested"

        second = await start_monitor(env)
        try:
            async with asyncio.timeout(120):
                while len(recipients(catcher)) < people:
                    await catcher.wait_for_messages(len(catcher.messages) + 1)
        finally:
            log += await stop(second)
        assert second.returncode == 0, log

    ids_by_person = recipients(catcher)
    assert len(ids_by_person) == people
    repeated = {p: ids for p, ids in ids_by_person.items() if len(set(ids)) != 1}
    assert not repeated, list(repeated.items())[:5]
    assert_no_password(pg_database, log)
    store = await open_store(pg_database)
    try:
        assert await store.pending_count() == 0
        assert await store.outbox_counts() == {"acknowledge": {SENT: people}}
    finally:
        await store.close()


# 2. the database server stopped mid outage ----------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """One HTTP answer of the monitor, and how long it took."""

    status: int
    body: str
    seconds: float

    def __str__(self) -> str:
        return f"{self.status} after {self.seconds:.1f}s: {self.body[:500]!r}"


async def answer(base: str, path: str) -> Answer:
    """GET ``path``; status 0 while nothing answers within ``ANSWER_S`` (an orchestrator's
    probe would have given up)."""
    started = time.monotonic()
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=ANSWER_S)) as session,
            session.get(base + path) as response,
        ):
            body = await response.text()
            return Answer(response.status, body, time.monotonic() - started)
    except (aiohttp.ClientError, TimeoutError) as exc:
        return Answer(0, repr(exc), time.monotonic() - started)


@pytest.mark.timeout(300)
async def test_database_server_stopped_mid_fan_out_the_monitor_carries_on_and_tells_everyone_once(
    tmp_path: Path, pg_database: Database
) -> None:
    """The PostgreSQL server stops (as in a crash) while acknowledgements go out, and stays
    down while login fails too: the monitor does not crash, /readyz stays 200 (promptly) with a
    warning, /metrics says the store is down (monitor_store_up 0) and login DOWN from memory,
    nothing is sent twice, no answer or log line shows the password; once the server is back
    the warning goes, login joins the incident, and everyone affected gets one acknowledgement
    and one resolved message, with nothing left pending."""
    cluster = pg_database.cluster
    people = {f"p{i:03d}": subscriptions(i) for i in range(40)}
    affected = {p for p, systems in people.items() if set(systems) & set(AFFECTED)}
    await import_people(tmp_path, pg_database, people)
    async with (
        MailCatcher() as catcher,
        Target() as payment,
        Target() as login,
        Target() as crm,
    ):
        targets = {"payment": payment, "login": login, "crm": crm}
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        checks = write_outage_checks(
            tmp_path / "checks",
            {name: t.url_for("/healthz") for name, t in targets.items()},
            notify_after="0s",
        )
        env = {
            "MONITOR_CONFIG": str(checks),
            "MONITOR_MESSAGES": str(REPO / "messages"),
            "MONITOR_DB": pg_database.url,
            "MONITOR_LISTEN": f"127.0.0.1:{port}",
            "MONITOR_SMTP_URL": catcher.url,
            "MONITOR_SMTP_FROM": "status@example.com",
            "MONITOR_API_TOKEN": TOKEN,
        }
        monitor = Killable(env, base, TOKEN)

        def told(kind: str) -> set[str]:
            return {person_of(m) for m in catcher.messages if kind_of(m) == kind}

        seen: dict[str, Answer] = {}  # the last answer of each path, for a failure to show

        async def get(path: str) -> Answer:
            seen[path] = await answer(base, path)
            return seen[path]

        async def alive_until(what: str, check: Callable[[], Any]) -> Any:
            """Wait for ``check``, failing at once should the monitor die."""

            def checked() -> Any:
                assert monitor.alive, f"the monitor died: {monitor.tail()}"
                return check()

            def explain() -> str:
                answers = "\n".join(f"{path}: {got}" for path, got in seen.items())
                return f"last answers:\n{answers}\nlog tail:\n{monitor.tail(15)}"

            return await until(what, checked, explain=explain)

        async def states(names: tuple[str, ...], state: str) -> bool:
            found = await monitor.get("/api/v1/systems")
            return found is not None and all(
                {s["name"]: s["state"] for s in found["systems"]}.get(n) == state for n in names
            )

        async def warned() -> Answer | None:
            ready = await get("/readyz")
            return ready if STORE_WARNING in ready.body else None

        try:
            await monitor.start()
            await alive_until("all systems UP", lambda: states(("payment", "login", "crm"), "UP"))

            def arrived(_message: CaughtMessage) -> None:
                if len(told("acknowledge")) >= 5:
                    catcher.on_message = None
                    cluster.stop("immediate")  # before this message's "250 OK" is sent

            catcher.on_message = arrived
            await payment.set_mode(Mode.ERROR)
            ready = await alive_until("/readyz warns about the store", warned)
            assert not cluster.running
            assert ready.status == 200, ready
            assert ready.body.startswith("ready\n"), ready
            assert "warning: " in ready.body, ready

            await login.set_mode(Mode.ERROR)

            async def login_down_in_memory() -> Answer | None:
                page = await get("/metrics")
                down = metric(page.body, "monitor_system_up", system="login") == 0.0
                return (
                    page
                    if page.status == 200 and "monitor_system_up" in page.body and down
                    else None
                )

            metrics = await alive_until("login DOWN on /metrics, from memory", login_down_in_memory)
            assert metric(metrics.body, "monitor_store_up") == 0.0, metrics
            assert metric(metrics.body, "monitor_system_up", system="payment") == 0.0, metrics
            # Each of these is a round in which delivery would have resent what it could not
            # mark sent.
            await alive_until(
                "delivery waited for the store three times",
                lambda: len(monitor.logged("delivery waits for the store")) >= 3,
            )
            delivered = Counter(message_id(m) for m in catcher.messages)
            assert max(delivered.values()) == 1, delivered.most_common(3)
            ready = await get("/readyz")
            assert ready.status == 200, ready
            assert STORE_WARNING in ready.body, ready
            assert ready.seconds < ANSWER_S, ready
            status = await get("/api/v1/status")
            assert status.status == 200, status
            store_status = json.loads(status.body)["store"]
            assert store_status["writable"] is False, status
            assert store_status["error"], status
            assert store_status["error"] in ready.body, (status, ready)  # the same words
            for shown in (ready, metrics, status):
                assert_no_password(pg_database, shown.body)
            assert monitor.alive, monitor.tail()

            cluster.start()

            async def ready_again() -> bool:
                ready = await get("/readyz")
                return ready.status == 200 and STORE_WARNING not in ready.body

            await alive_until("ready, with no warning about the store", ready_again)
            page = await get("/metrics")
            assert metric(page.body, "monitor_store_up") == 1.0, page
            await alive_until("login joined the incident", lambda: affected <= told("acknowledge"))
            await payment.set_mode(Mode.HEALTHY)
            await login.set_mode(Mode.HEALTHY)

            async def all_told() -> bool:
                if not affected <= told("acknowledge") & told("resolved"):
                    return False
                found = await monitor.get("/api/v1/incidents")
                incidents = [] if found is None else found["incidents"]
                return bool(incidents) and all(
                    i["status"] == "resolved" and i["counts"]["pending"] == 0 for i in incidents
                )

            await alive_until("everyone told and nothing pending", all_told)
        finally:
            await monitor.stop()
        assert monitor.process is not None
        assert monitor.process.returncode == 0, monitor.tail()

    for line in monitor.lines:
        assert_no_password(pg_database, str(line))
    ids_of: dict[str, list[str]] = defaultdict(list)
    for message in catcher.messages:
        ids_of[person_of(message)].append(message_id(message))
    assert set(ids_of) == affected, set(ids_of) ^ affected
    for person, ids in ids_of.items():
        kinds = [i.split(".")[1] for i in ids]
        assert len(ids) == len(set(ids)), (person, ids)  # nothing twice
        assert kinds[0] == "acknowledge", (person, ids)
        assert kinds[-1] == "resolved", (person, ids)
        assert kinds.count("acknowledge") == kinds.count("resolved") == 1, (person, ids)
    store = await open_store(pg_database)
    try:
        (incident,) = await store.incidents()
        assert incident.resolved_at is not None
        assert set(incident.systems) == set(AFFECTED)
        assert await store.pending_count() == 0
        items = await store.outbox_items(incident.id)
        assert {f"<{i.key}@example.com>" for i in items if i.status == SENT} == {
            message_id(m) for m in catcher.messages
        }
        assert all(i.status == SENT for i in items), [i for i in items if i.status != SENT]
        assert [t.current.value for t in await store.transitions("login")][-2:] == ["DOWN", "UP"]
    finally:
        await store.close()
