"""Proof under faults: killed at any moment, mail server down, store refusing writes, flapping.

The subprocess tests run the real `monitor run` against real servers on loopback (``Target``s
playing payment, login and crm, a ``MailCatcher``) and recognise each moment by what those
servers and the monitor's log and API show, never by sleeping.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import fcntl
import os
import sqlite3
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from clock import FakeClock
from killable import Killable, LogLine, until
from process import REPO, free_port, run_cli
from running import sending_to, start_replica
from targets import Mode, Target
from world import ALICE, BOB, DANA, decided, world, write_config

from monitor.app import App
from monitor.config import load_config
from monitor.delivery.channels import EmailChannel
from monitor.delivery.sender import Channels, Delivery
from monitor.demo.mailcatcher import CaughtMessage, MailCatcher
from monitor.incidents.correlation import Incident, Member
from monitor.model import Health, ProbeResult, SystemState, Transition
from monitor.store import SENT, SQLiteStore, StoreUnavailable

TOKEN = "fault-test-token"
SYSTEMS = ("payment", "login", "crm")
AFFECTED = ("payment", "login")
PEOPLE = 100

MONITOR_YAML = """\
org: {name: Example Ltd, support_email: help@example.com}
notify_after: %(notify_after)s
correlation_window: 5m
customer_messages: %(mode)s
"""

CHECK = """\
name: %(name)s
title: %(title)s
every: 500ms
timeout: 400ms
fail_after: 2
recover_after: 1
workaround: Try again later.
probe: {http: {url: "%(url)s", expect: {status: [200]}}}
"""

TITLES = {"payment": "Online payments", "login": "Signing in", "crm": "Your order history"}


def subscriptions(index: int) -> tuple[str, ...]:
    """Person ``index`` follows payment, login, both, or only crm (unaffected), in turn."""
    return (("payment",), ("login",), ("payment", "login"), ("crm",))[index % 4]


# the stage: three systems on loopback, people, a mail catcher, a monitor to kill ------------


@dataclass
class Outage:
    """The payment+login outage on loopback, with a monitor that can be killed and restarted."""

    tmp: Path
    catcher: MailCatcher
    targets: dict[str, Target]
    monitor: Killable
    people: dict[str, tuple[str, ...]]  # id -> subscribed systems
    db: Path

    @property
    def affected(self) -> set[str]:
        return {p for p, systems in self.people.items() if set(systems) & set(AFFECTED)}

    def mail(self, kind: str) -> list[CaughtMessage]:
        return [m for m in self.catcher.messages if kind_of(m) == kind]

    def people_with(self, kind: str) -> set[str]:
        return {person_of(m) for m in self.mail(kind)}

    async def fail(self) -> None:
        for name in AFFECTED:
            await self.targets[name].set_mode(Mode.ERROR)

    async def recover(self) -> None:
        for name in AFFECTED:
            await self.targets[name].set_mode(Mode.HEALTHY)

    def kill_on_probe(self, moment: str, system: str) -> None:
        """Kill the monitor while its next probe of ``system`` is in flight."""
        target = self.targets[system]

        def arrived(_request: str) -> None:
            target.requests = []  # once
            self.monitor.kill(moment)

        target.requests = Tripwire(arrived)

    def kill_on_mail(self, moment: str, kind: str, count: int) -> None:
        """Kill the monitor as the ``count``-th ``kind`` message is being accepted: after the
        server has it, before the monitor hears "250 OK" (so it cannot have marked it sent)."""

        def arrived(message: CaughtMessage) -> None:
            if len(self.mail(kind)) >= count:
                self.catcher.on_message = None
                self.monitor.kill(moment)

        self.catcher.on_message = arrived

    def kill_on_log(self, moment: str, matches: Callable[[LogLine], bool]) -> None:
        self.monitor.kill_on_log(moment, matches)

    async def until(self, what: str, check: Callable[[], Any], every: float = 0.05) -> Any:
        """Wait for ``check`` (see ``killable.until``); a failure shows the monitor's log."""

        def checked() -> Any:
            process = self.monitor.process
            if process is not None and process.returncode not in (None, -9):
                raise AssertionError(f"the monitor died: {self.monitor.tail()}")
            return check()

        return await until(
            what, checked, every=every, explain=lambda: "log tail:\n" + self.monitor.tail()
        )

    async def kill_when(self, moment: str, check: Callable[[], Any]) -> None:
        """Kill the monitor as soon as ``check`` holds (polled every 10 ms); wait till it died."""
        await self.until(moment, check, every=0.01)
        self.monitor.kill(moment)
        await self.monitor.killed(moment)

    def saved(self, current: str) -> bool:
        """Whether a transition to ``current`` (from UP or DOWN) is in the store, read beside
        the running monitor. It is applied to the incidents at the next tick, up to a second
        later: polled every 10 ms, a kill mostly lands in between (``Tally.resumed`` says)."""
        with contextlib.closing(sqlite3.connect(f"file:{self.db}?mode=ro", uri=True)) as db:
            found = db.execute(
                "SELECT 1 FROM transitions WHERE current = ? AND previous != 'UNKNOWN' LIMIT 1",
                (current,),
            ).fetchall()
        return bool(found)

    async def restart_until_killed(self, moment: str) -> None:
        await self.monitor.start()
        await self.monitor.killed(moment)

    async def systems(self, state: str, names: tuple[str, ...] = SYSTEMS) -> bool:
        found = await self.monitor.get("/api/v1/systems")
        if found is None:
            return False
        states = {s["name"]: s["state"] for s in found["systems"]}
        return all(states.get(n) == state for n in names)

    async def store_warning(self) -> tuple[int, str] | None:
        """/readyz's answer while it warns that the store refuses writes, else None."""
        status, body = await self.monitor.readyz()
        return (status, body) if "not writable" in body else None

    async def ready(self) -> bool:
        """Ready with no warning about the store."""
        status, body = await self.monitor.readyz()
        return status == 200 and "not writable" not in body

    async def incidents(self) -> list[dict[str, Any]]:
        found = await self.monitor.get("/api/v1/incidents")
        return [] if found is None else list(found["incidents"])

    async def all_told(self) -> bool:
        """Every affected person has both messages, and the API says nothing is pending."""
        if not self.affected <= self.people_with("acknowledge") & self.people_with("resolved"):
            return False
        incidents = await self.incidents()
        return bool(incidents) and all(
            i["status"] == "resolved" and i["counts"]["pending"] == 0 for i in incidents
        )


class Tripwire(list[str]):
    """A ``Target.requests`` list that calls back on every request the target receives."""

    def __init__(self, arrived: Callable[[str], None]) -> None:
        super().__init__()
        self.arrived = arrived

    def append(self, request: str, /) -> None:
        super().append(request)
        self.arrived(request)


def message_id(message: CaughtMessage) -> str:
    return str(message.message["Message-ID"])


def kind_of(message: CaughtMessage) -> str:
    """``acknowledge``, ``update-1``, ``resolved``: from ``<incident-1.KIND.PERSON@domain>``."""
    return message_id(message).split(".")[1]


def person_of(message: CaughtMessage) -> str:
    return message_id(message).split(".", 2)[2].rsplit("@", 1)[0]


def write_checks(
    directory: Path, urls: dict[str, str], mode: str = "auto", notify_after: str = "1s"
) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "monitor.yaml").write_text(
        MONITOR_YAML % {"mode": mode, "notify_after": notify_after}
    )
    for name, url in urls.items():
        (directory / f"{name}.yaml").write_text(
            CHECK % {"name": name, "title": TITLES[name], "url": url}
        )
    return directory


@asynccontextmanager
async def outage(
    tmp: Path, people: int = PEOPLE, mode: str = "auto", notify_after: str = "1s"
) -> AsyncIterator[Outage]:
    """Everything healthy, ``people`` imported with ``monitor users import``, the monitor not
    started yet; on exit, the monitor is stopped."""
    subscribed = {f"p{i:03d}": subscriptions(i) for i in range(people)}
    csv = tmp / "people.csv"
    csv.write_text(
        "id,name,email,phone,systems\n"
        + "".join(
            f"{pid},Person {pid},{pid}@example.com,,{';'.join(systems)}\n"
            for pid, systems in subscribed.items()
        )
    )
    db = tmp / "monitor.db"
    code, _, err = await run_cli("users", "import", str(csv), "--db", str(db))
    assert code == 0, err
    async with (
        MailCatcher() as catcher,
        Target() as payment,
        Target() as login,
        Target() as crm,
    ):
        targets = {"payment": payment, "login": login, "crm": crm}
        port = free_port()
        checks = write_checks(
            tmp / "checks",
            {name: t.url_for("/healthz") for name, t in targets.items()},
            mode,
            notify_after,
        )
        env = {
            "MONITOR_CONFIG": str(checks),
            "MONITOR_MESSAGES": str(REPO / "messages"),
            "MONITOR_DB": str(db),
            "MONITOR_LISTEN": f"127.0.0.1:{port}",
            "MONITOR_SMTP_URL": catcher.url,
            "MONITOR_SMTP_FROM": "status@example.com",
            "MONITOR_API_TOKEN": TOKEN,
        }
        monitor = Killable(env, f"http://127.0.0.1:{port}", TOKEN)
        try:
            yield Outage(tmp, catcher, targets, monitor, subscribed, db)
        finally:
            await monitor.stop()


@dataclass
class Tally:
    """What the people received, checked against the delivery contract."""

    deliveries: int = 0
    repeats: int = 0  # the same Message-ID delivered again (allowed after a kill)
    updates: int = 0
    resumed: int = 0  # starts that applied a transition the previous process had cut off
    kills: list[str] = field(default_factory=list)


async def check_contract(stage: Outage) -> Tally:
    """Every affected person: one acknowledgement then one resolved message (distinct
    Message-IDs, acknowledgement first); nobody else a thing; one incident, resolved, with no
    message pending; nothing marked sent that the mail server did not receive."""
    ids_of: dict[str, list[str]] = defaultdict(list)
    for message in stage.catcher.messages:
        assert message.rcpt_tos == (f"{person_of(message)}@example.com",), message.rcpt_tos
        ids_of[person_of(message)].append(message_id(message))
    assert set(ids_of) == stage.affected, set(ids_of) ^ stage.affected
    for person, ids in ids_of.items():
        distinct = list(dict.fromkeys(ids))
        kinds = [i.split(".")[1] for i in distinct]
        assert kinds.count("acknowledge") == 1, (person, ids)
        assert kinds.count("resolved") == 1, (person, ids)
        assert kinds[0] == "acknowledge", (person, ids)
        assert kinds[-1] == "resolved", (person, ids)
        last_ack = max(n for n, i in enumerate(ids) if ".acknowledge." in i)
        assert last_ack < ids.index(distinct[-1]), (person, ids)  # no copy after the resolved
        # An update is legitimate (someone following both systems hears when the second one
        # joins), but at most one: there were only two systems.
        assert len(kinds) <= 3, (person, ids)
    delivered = Counter(message_id(m) for m in stage.catcher.messages)
    store = SQLiteStore(stage.db)
    try:
        incidents = await store.incidents()
        assert len(incidents) == 1, incidents
        (incident,) = incidents
        assert incident.resolved_at is not None
        assert set(incident.systems) == set(AFFECTED)
        assert await store.pending_count() == 0
        items = await store.outbox_items(incident.id)
        sent = {f"<{i.key}@example.com>" for i in items if i.status == SENT}
        assert sent == set(delivered), sent ^ set(delivered)
        assert all(i.status == SENT for i in items), [i for i in items if i.status != SENT]
    finally:
        await store.close()
    return Tally(
        deliveries=sum(delivered.values()),
        repeats=sum(n - 1 for n in delivered.values()),
        updates=sum(1 for i in delivered if ".update-" in i),
        resumed=len(stage.monitor.logged("resuming transitions cut off by a restart")),
        kills=list(stage.monitor.kills),
    )


async def finish(stage: Outage) -> Tally:
    """Start the monitor once more, let it tell everyone, stop it, and check the contract."""
    await stage.monitor.start()
    await stage.until("everyone told and nothing pending", stage.all_told)
    (incident,) = await stage.incidents()
    detail = await stage.monitor.get(f"/api/v1/incidents/{incident['id']}")
    assert detail["status"] == "resolved"
    assert detail["counts"]["pending"] == 0
    assert detail["counts"]["acknowledged"] == len(stage.affected)
    assert detail["counts"]["resolved"] == len(stage.affected)
    await stage.monitor.stop()
    tally = await check_contract(stage)
    print(f"\n{len(tally.kills)} kills: {tally}")
    return tally


def is_event(name: str) -> Callable[[LogLine], bool]:
    return lambda line: line.get("event") == name


# 1. crash anywhere --------------------------------------------------------------------------


@pytest.mark.timeout(300)
async def test_killed_at_each_moment_of_an_auto_outage_everyone_is_told_once(
    tmp_path: Path,
) -> None:
    """SIGKILLed while probing, at the DOWN transition, at the incident's opening, twice during
    the acknowledgements, at the UP transition and during the resolved messages: each affected
    person still gets one acknowledgement and one resolved message, nobody else anything."""
    async with outage(tmp_path) as stage:
        await stage.monitor.start()
        await stage.until("all systems UP", lambda: stage.systems("UP"))

        stage.kill_on_probe("probing: payment's first failing probe in flight", "payment")
        await stage.fail()
        await stage.monitor.killed("probing: payment's first failing probe in flight")

        await stage.monitor.start()
        await stage.kill_when("DOWN transition just saved", lambda: stage.saved("DOWN"))

        # Seen through the API rather than the "incident opened" log line: had the previous kill
        # come after the incident was opened, that line would never come again.
        await stage.monitor.start()
        await stage.kill_when("incident open, acknowledgements due", stage.incidents)

        stage.kill_on_mail("first acknowledgement being accepted", "acknowledge", 1)
        await stage.restart_until_killed("first acknowledgement being accepted")

        stage.kill_on_mail("acknowledgements 40% out", "acknowledge", 30)
        await stage.restart_until_killed("acknowledgements 40% out")

        await stage.monitor.start()
        await stage.until(
            "everyone acknowledged", lambda: stage.affected <= stage.people_with("acknowledge")
        )
        await stage.recover()
        await stage.kill_when("UP transition just saved", lambda: stage.saved("UP"))

        stage.kill_on_mail("first resolved message being accepted", "resolved", 1)
        await stage.restart_until_killed("first resolved message being accepted")

        tally = await finish(stage)
        assert len(tally.kills) == 7
        assert tally.repeats <= 16 * len(tally.kills)


@pytest.mark.timeout(300)
async def test_killed_during_the_hold_and_after_the_release_everyone_is_told_once(
    tmp_path: Path,
) -> None:
    """With customer_messages: confirm, SIGKILLed while probing, at the incident's opening,
    during the hold, just after on-call's release, twice during the acknowledgements, as the
    incident resolves and amid the resolved messages: the contract still holds."""
    async with outage(tmp_path, mode="confirm") as stage:
        await stage.monitor.start()
        await stage.until("all systems UP", lambda: stage.systems("UP"))

        stage.kill_on_probe("probing: login's first failing probe in flight", "login")
        await stage.fail()
        await stage.monitor.killed("probing: login's first failing probe in flight")

        stage.kill_on_log("incident opened, held", is_event("incident opened"))
        await stage.restart_until_killed("incident opened, held")

        await stage.monitor.start()

        async def held_with_both() -> list[dict[str, Any]]:
            return [
                i
                for i in await stage.incidents()
                if i["held"] and {s["name"] for s in i["systems"]} == set(AFFECTED)
            ]

        (incident,) = await stage.until("the incident held, with both systems", held_with_both)
        stage.monitor.kill("during the hold")
        await stage.monitor.killed("during the hold")
        assert stage.catcher.messages == []

        await stage.monitor.start()
        await stage.until("ready", lambda: stage.monitor.get("/api/v1/systems"))
        status, body = await stage.monitor.post(f"/api/v1/incidents/{incident['id']}/release")
        assert status == 200, body
        stage.monitor.kill("just released, before the fan-out")
        await stage.monitor.killed("just released, before the fan-out")

        stage.kill_on_mail("acknowledgements 25% out", "acknowledge", 20)
        await stage.restart_until_killed("acknowledgements 25% out")

        stage.kill_on_mail("acknowledgements 75% out", "acknowledge", 56)
        await stage.restart_until_killed("acknowledgements 75% out")

        await stage.monitor.start()
        await stage.until(
            "everyone acknowledged", lambda: stage.affected <= stage.people_with("acknowledge")
        )
        stage.kill_on_log("incident resolved, nobody told yet", is_event("incident resolved"))
        await stage.recover()
        await stage.monitor.killed("incident resolved, nobody told yet")

        stage.kill_on_mail("resolved messages half out", "resolved", 38)
        await stage.restart_until_killed("resolved messages half out")

        tally = await finish(stage)
        assert len(tally.kills) == 8
        assert tally.updates == 0  # both systems were down before anyone was told
        assert tally.repeats <= 16 * len(tally.kills)


@pytest.mark.timeout(300)
async def test_killed_as_decisions_are_written_and_during_recovery_everyone_is_told_once(
    tmp_path: Path,
) -> None:
    """With notify_after 0, SIGKILLed as the acknowledgements are decided, near the end of
    their fan-out, while the first passing probe is in flight, and twice amid the resolved
    messages: the contract still holds."""
    async with outage(tmp_path, notify_after="0s") as stage:
        await stage.monitor.start()
        await stage.until("all systems UP", lambda: stage.systems("UP"))

        stage.kill_on_log("acknowledgements decided, few sent", is_event("messages decided"))
        await stage.fail()
        await stage.monitor.killed("acknowledgements decided, few sent")

        stage.kill_on_mail("acknowledgements 90% out", "acknowledge", 68)
        await stage.restart_until_killed("acknowledgements 90% out")

        await stage.monitor.start()
        await stage.until(
            "everyone acknowledged", lambda: stage.affected <= stage.people_with("acknowledge")
        )
        stage.kill_on_probe("probing: payment's first passing probe in flight", "payment")
        await stage.recover()
        await stage.monitor.killed("probing: payment's first passing probe in flight")

        stage.kill_on_mail("resolved messages 10% out", "resolved", 8)
        await stage.restart_until_killed("resolved messages 10% out")

        stage.kill_on_mail("resolved messages 80% out", "resolved", 60)
        await stage.restart_until_killed("resolved messages 80% out")

        tally = await finish(stage)
        assert len(tally.kills) == 5
        assert tally.repeats <= 16 * len(tally.kills)


# 2. mail server down ------------------------------------------------------------------------


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample in a Prometheus text exposition (0 when absent)."""
    for line in text.splitlines():
        head, _, value = line.rpartition(" ")
        if head.split("{")[0] == name and all(f'{k}="{v}"' in head for k, v in labels.items()):
            return float(value)
    return 0.0


@pytest.mark.timeout(300)
async def test_mail_server_down_for_the_whole_outage_everything_arrives_once_in_order(
    tmp_path: Path,
) -> None:
    """The mail server is down from before the outage until after it has resolved: once it is
    back, each affected person gets the acknowledgement and then the resolved message, each
    exactly once, and nothing is left pending."""
    async with outage(tmp_path, people=20, notify_after="0s") as stage:
        await stage.monitor.start()
        await stage.until("all systems UP", lambda: stage.systems("UP"))
        await stage.catcher.stop()
        await stage.fail()

        async def retried() -> bool:
            text = await stage.monitor.text("/metrics")
            tries = metric(text, "monitor_messages_total", kind="acknowledge", outcome="retry")
            return tries >= len(stage.affected)

        await stage.until("every acknowledgement tried and failed", retried)
        await stage.recover()

        async def resolved_and_waiting() -> bool:
            incidents = await stage.incidents()
            return (
                bool(incidents)
                and incidents[0]["status"] == "resolved"
                and incidents[0]["counts"]["pending"] == 2 * len(stage.affected)
            )

        await stage.until("resolved, every message waiting", resolved_and_waiting)
        assert stage.catcher.messages == []
        await stage.catcher.start()
        await stage.until("everyone told and nothing pending", stage.all_told)
        await stage.monitor.stop()
        tally = await check_contract(stage)
        assert tally.repeats == 0
        assert tally.deliveries == 2 * len(stage.affected)


# 3. store trouble ---------------------------------------------------------------------------

FS_IOC_GETFLAGS, FS_IOC_SETFLAGS, FS_IMMUTABLE_FL = 0x80086601, 0x40086602, 0x00000010


def set_immutable(path: Path, on: bool) -> None:
    """``chattr +i`` / ``-i``: even root cannot write an immutable file (needs root)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        flags = array.array("i", [0])
        fcntl.ioctl(fd, FS_IOC_GETFLAGS, flags, True)
        flags[0] = flags[0] | FS_IMMUTABLE_FL if on else flags[0] & ~FS_IMMUTABLE_FL
        fcntl.ioctl(fd, FS_IOC_SETFLAGS, flags)
    finally:
        os.close(fd)


def can_make_immutable(directory: Path) -> bool:
    scratch = directory / "immutable-probe"
    scratch.write_text("x")
    try:
        set_immutable(scratch, True)
    except OSError:
        return False
    else:
        set_immutable(scratch, False)
        return True
    finally:
        scratch.unlink()


@contextlib.contextmanager
def read_only(*files: Path) -> Iterator[Callable[[bool], None]]:
    """A switch making ``files`` immutable (True) or writable again (False); writable on exit."""

    def switch(on: bool) -> None:
        for path in files:
            set_immutable(path, on)

    try:
        yield switch
    finally:
        switch(False)


@pytest.mark.timeout(300)
async def test_database_turned_read_only_mid_fan_out_probing_goes_on_and_it_recovers_by_itself(
    tmp_path: Path,
) -> None:
    """The database file turns read-only (immutable) while acknowledgements go out: /readyz stays
    200 (the pod keeps serving) with a warning saying why, /metrics says the store is down,
    probing goes on in memory (login still goes DOWN, /metrics still answers), nothing is sent
    twice or marked sent unsent; once writable again the warning goes, the DOWN transition is
    saved, and everyone gets their messages once."""
    if not can_make_immutable(tmp_path):
        pytest.skip("making a file immutable needs root and a file system that supports it")
    async with outage(tmp_path, people=40, notify_after="0s") as stage:
        await stage.monitor.start()
        await stage.until("all systems UP", lambda: stage.systems("UP"))
        db, wal = stage.db, stage.db.with_name(stage.db.name + "-wal")
        with read_only(db, wal) as make_read_only:

            def arrived(message: CaughtMessage) -> None:
                if len(stage.mail("acknowledge")) >= 5:
                    stage.catcher.on_message = None
                    make_read_only(True)

            stage.catcher.on_message = arrived
            await stage.targets["payment"].set_mode(Mode.ERROR)
            status, why = await stage.until("store warning", stage.store_warning)
            assert status == 200, why
            assert why.startswith("ready\n"), why
            assert "warning: database" in why, why
            assert metric(await stage.monitor.text("/metrics"), "monitor_store_up") == 0.0

            await stage.targets["login"].set_mode(Mode.ERROR)
            await stage.until("login DOWN, in memory", lambda: stage.systems("DOWN", ("login",)))
            metrics = await stage.monitor.text("/metrics")
            assert metric(metrics, "monitor_system_up", system="login") == 0.0
            # Each of these is a round in which delivery would have resent what it could not
            # mark sent.
            await stage.until(
                "delivery waited for the store three times",
                lambda: len(stage.monitor.logged("delivery waits for the store")) >= 3,
            )
            delivered = Counter(message_id(m) for m in stage.catcher.messages)
            assert max(delivered.values()) == 1, delivered.most_common(3)
            assert await stage.store_warning() is not None
            make_read_only(False)

        await stage.until("ready again", lambda: stage.ready())
        await stage.until(
            "login joined the incident",
            lambda: stage.affected <= stage.people_with("acknowledge"),
        )
        await stage.recover()
        await stage.until("everyone told and nothing pending", stage.all_told)
        await stage.monitor.stop()
        tally = await check_contract(stage)
        assert tally.repeats == 0
        store = SQLiteStore(stage.db)
        try:
            assert [t.current.value for t in await store.transitions("login")][-2:] == [
                "DOWN",
                "UP",
            ]
        finally:
            await store.close()


@asynccontextmanager
async def app_on_a_fake_clock(
    tmp_path: Path, catcher: MailCatcher, clock: FakeClock | None = None
) -> AsyncIterator[tuple[App, TestClient[web.Request, web.Application], FakeClock]]:
    """A real App (store, notifier, delivery to ``catcher``) whose state moves only by the
    results a test feeds in, with an HTTP client on its web application."""
    checks = tmp_path / "checks"
    write_config(checks)
    clock = clock or FakeClock()
    async with AsyncExitStack() as stack:
        # Its own tick loop runs beside the test's ticks, each second as in production.
        started = await start_replica(
            stack, checks, tmp_path / "monitor.db", clock, sending_to(catcher), tick_every=1.0
        )
        yield started.app, started.client, clock


async def test_store_refusing_writes_keeps_probing_in_memory_and_recovers_by_itself(
    tmp_path: Path,
) -> None:
    """(In-process, no root needed.) While the database refuses writes, /readyz stays 200 with a
    warning giving the reason, /api/v1/status and /metrics say the store is not writable,
    payment still goes DOWN in memory and on /metrics, and nothing is decided or sent; once it
    takes writes again, the DOWN transition is saved with its time, the incident opens
    and everyone gets one acknowledgement, later one resolved message."""
    async with MailCatcher() as catcher, app_on_a_fake_clock(tmp_path, catcher) as running:
        app, client, clock = running
        await app.store.upsert_people([ALICE, DANA])
        assert isinstance(app.store, SQLiteStore)
        app.store.db.execute("PRAGMA query_only=1")
        ready = await client.get("/readyz")
        assert ready.status == 200
        assert "readonly" in await ready.text()
        status = await (await client.get("/api/v1/status")).json()
        assert status["store"]["writable"] is False
        assert "readonly" in status["store"]["error"]
        metrics = await (await client.get("/metrics")).text()
        assert metric(metrics, "monitor_store_up") == 0.0

        for _ in range(3):
            app.monitor.observe(ProbeResult("payment", False, "status 503", clock.now(), 0.01))
            clock.advance(15)
        down_at = clock.now() - 15
        clock.advance(60)  # past notify_after
        await app.notifier.tick()
        await app.monitor.flush()
        assert app.monitor.states["payment"].health is Health.DOWN
        metrics = await (await client.get("/metrics")).text()
        assert metric(metrics, "monitor_system_up", system="payment") == 0.0
        systems = await (await client.get("/api/v1/systems")).json()
        assert {s["name"]: s["state"] for s in systems["systems"]}["payment"] == "DOWN"
        assert await app.store.transitions("payment") == []
        assert await app.store.incidents() == []
        assert await app.store.pending_count() == 0
        assert catcher.messages == []

        app.store.db.execute("PRAGMA query_only=0")
        await app.monitor.flush()  # what the flush loop does every second
        assert "readonly" not in await (await client.get("/readyz")).text()
        assert [(t.current, t.at) for t in await app.store.transitions("payment")] == [
            (Health.DOWN, down_at)
        ]
        await app.notifier.tick()
        (incident,) = await app.store.incidents()
        assert incident.opened_at == down_at
        async with asyncio.timeout(30):
            await catcher.wait_for_messages(2)
        for _ in range(2):
            app.monitor.observe(ProbeResult("payment", True, "status 200", clock.now(), 0.01))
            clock.advance(15)
        await app.monitor.flush()  # the notifier reads transitions from the store
        await app.notifier.tick()
        async with asyncio.timeout(30):
            await catcher.wait_for_messages(4)
        ids = sorted(message_id(m) for m in catcher.messages)
        assert ids == sorted(
            f"<incident-{incident.id}.{kind}.{person}@example.com>"
            for kind in ("acknowledge", "resolved")
            for person in ("alice", "dana")
        )


async def test_sends_the_store_cannot_mark_sent_are_kept_not_sent_again(tmp_path: Path) -> None:
    """The store starts refusing writes as the first message is accepted: the sends under way
    finish and their outcomes are kept in memory, nothing more (and nothing again) goes out
    while the store refuses, and once it takes writes each message is marked sent, once."""
    clock = FakeClock()
    store = SQLiteStore(tmp_path / "monitor.db")
    people = [f"p{i:02d}" for i in range(40)]
    await decided(store, clock, people)

    def refuse_writes(_message: CaughtMessage) -> None:
        catcher.on_message = None
        store.db.execute("PRAGMA query_only=1")

    async with MailCatcher(on_message=refuse_writes) as catcher:
        email = EmailChannel.from_url(catcher.url, "status@example.com")
        delivery = Delivery(store, Channels(email=email, message_domain="example.com"), clock)
        try:
            await delivery.run_once()
            went_out = len(catcher.messages)
            assert 1 <= went_out < len(people)
            assert await store.pending_count() == len(people)  # nothing could be marked
            for _ in range(3):
                with pytest.raises(StoreUnavailable):
                    await delivery.run_once()
            assert len(catcher.messages) == went_out

            store.db.execute("PRAGMA query_only=0")
            while await delivery.run_once():
                pass
        finally:
            await email.close()
    assert Counter(message_id(m) for m in catcher.messages) == Counter(
        f"<incident-1.acknowledge.{person}@example.com>" for person in people
    )
    assert await store.pending_count() == 0
    assert await store.outbox_counts(1) == {"acknowledge": {SENT: len(people)}}
    await store.close()


async def test_a_transition_saved_just_before_a_crash_still_reaches_its_incident(
    tmp_path: Path,
) -> None:
    """A crash can fall between saving a transition and applying it to the incidents: on the
    next start a saved DOWN opens the incident at its original time (Alice is told), and a
    saved UP resolves the incident that still counted payment down (she hears so)."""
    clock = FakeClock()
    down_at = clock.now() - 120
    store = SQLiteStore(tmp_path / "monitor.db")
    await store.upsert_people([ALICE])
    await store.save_transition(
        Transition("payment", down_at, Health.UP, Health.DOWN, "status 503", 3),
        SystemState("payment", Health.DOWN, down_at, 3, 0, "status 503", down_at),
    )
    await store.close()
    async with MailCatcher() as catcher:
        async with app_on_a_fake_clock(tmp_path, catcher, clock) as (app, _client, _clock):
            await app.notifier.tick()
            (incident,) = await app.store.incidents()
            assert (incident.opened_at, incident.systems) == (down_at, ("payment",))
            async with asyncio.timeout(30):
                await catcher.wait_for_messages(1)
            up_at = clock.advance(60)
            await app.store.save_transition(
                Transition("payment", up_at, Health.DOWN, Health.UP, "status 200", 2),
                SystemState("payment", Health.UP, up_at, 0, 2, "status 200", up_at),
            )
        async with app_on_a_fake_clock(tmp_path, catcher, clock) as (app, _client, _clock):
            await app.notifier.tick()
            (incident,) = await app.store.incidents()
            assert incident.resolved_at == up_at
            async with asyncio.timeout(30):
                await catcher.wait_for_messages(2)
    assert [kind_of(m) for m in catcher.messages] == ["acknowledge", "resolved"]


async def test_a_saved_state_older_than_its_incident_is_not_taken_for_a_missed_recovery(
    tmp_path: Path,
) -> None:
    """The store refused payment's DOWN transition, took the incident, and the process died:
    the saved state (UP, from before) is older than the incident, so the next start keeps the
    incident open instead of resolving it, and nobody is told it is fixed."""
    clock = FakeClock()
    up_since, down_at = clock.now() - 3600, clock.now() - 120
    store = SQLiteStore(tmp_path / "monitor.db")
    await store.upsert_people([ALICE])
    await store.save_states(
        [SystemState("payment", Health.UP, up_since, 0, 5, "status 200", up_since)]
    )
    await store.save_incident(
        Incident(id=1, opened_at=down_at, members=(Member("payment", down_at),), cause="payment")
    )
    await store.close()
    async with (
        MailCatcher() as catcher,
        app_on_a_fake_clock(tmp_path, catcher, clock) as (app, _client, _clock),
    ):
        await app.notifier.tick()
        (incident,) = await app.store.incidents()
        assert incident.is_open
        assert set(await app.store.outbox_counts(incident.id)) == {"acknowledge"}


# 5. flapping --------------------------------------------------------------------------------


async def test_a_system_alternating_every_probe_for_ten_minutes_tells_each_person_once_each(
    tmp_path: Path,
) -> None:
    """With fail_after 1 and recover_after 1, payment failing every other probe for ten
    simulated minutes flaps DOWN and UP twenty times: one incident, and Alice and Dana each get
    one acknowledgement and one resolved message; Bob (login only) nothing."""
    async with world(tmp_path) as w:
        checks = w.tmp / "checks"
        for name in SYSTEMS:
            path = checks / f"{name}.yaml"
            path.write_text(path.read_text() + "fail_after: 1\nrecover_after: 1\n")
        w.config = load_config(checks, {})
        await w.restart()
        await w.people(ALICE, BOB, DANA)
        start = w.clock.now()
        ok = False
        while w.clock.now() - start < 600:
            await w.probe_round({"payment": ok, "login": True})
            ok = not ok
        await w.recover(["payment"])
        await w.wait(3600)
        downs = [t for t in await w.store.transitions("payment") if t.current is Health.DOWN]
        assert len(downs) == 20
        (incident,) = await w.incidents()
        assert incident.resolved_at is not None
        for person in (ALICE, DANA):
            ids = [message_id(m) for m in w.mail_to(person.email or "")]
            assert ids == [
                f"<incident-{incident.id}.acknowledge.{person.id}@example.com>",
                f"<incident-{incident.id}.resolved.{person.id}@example.com>",
            ]
        assert w.mail_to(BOB.email or "") == []
