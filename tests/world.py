"""A whole monitor minus the network probes, on a fake clock: the scenario tests' stage.

Results are fed as if probes had run; incidents, decisions and the outbox are the real ones,
on a real SQLite file, and email goes to a real SMTP server on loopback.
"""

from __future__ import annotations

import random
import textwrap
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
from clock import FakeClock

from monitor.app import systems_info
from monitor.config import Config, load_config
from monitor.delivery.channels import EmailChannel, SmsChannel
from monitor.delivery.sender import Channels, Delivery
from monitor.demo.mailcatcher import CaughtMessage, MailCatcher
from monitor.incidents.correlation import Correlator, Incident
from monitor.model import Address, Attempt, Person, ProbeResult
from monitor.notify.composer import Composer
from monitor.notify.notifier import Notifier
from monitor.probing.runtime import Monitor
from monitor.store import OutboxItem, SQLiteStore

REPO = Path(__file__).resolve().parent.parent
MESSAGES = REPO / "messages"

SETTINGS = """\
org: {name: Example Ltd, support_phone: 0800 123 456, support_email: help@example.com}
correlation_window: 5m
notify_after: 60s
update_every: 24h
attempt_lookback: 2h
customer_messages: %(mode)s
max_messages_per_person_per_day: %(limit)d
"""

SYSTEMS = {
    "payment": """\
        name: payment
        title: Online payments
        every: 15s
        depends_on: %(payment_deps)s
        workaround: Pay by phone on 0800 123 456 and we will process it by hand.
        probe: {http: {url: "http://127.0.0.1:9/healthz"}}
        """,
    "login": """\
        name: login
        title: Signing in to your account
        every: 15s
        depends_on: %(login_deps)s
        workaround: Your account and your data are safe.
        probe: {http: {url: "http://127.0.0.1:9/login"}}
        """,
    "crm": """\
        name: crm
        title: Your order history
        every: 15s
        workaround: Your orders are safe.
        probe: {tcp: {host: 127.0.0.1, port: 9}}
        """,
}

ALICE = Person("alice", "Alice Martin", "alice@example.com", "+447700900001", None, ("payment",))
BOB = Person("bob", "Bob Stone", "bob@example.com", None, None, ("login",))
CHARLIE = Person("charlie", "Charlie Day", "charlie@example.com", None, None, ("crm",))
DANA = Person("dana", "Dana Ruiz", "dana@example.com", None, None, ("payment", "login"))


def write_config(
    directory: Path,
    *,
    mode: str = "auto",
    limit: int = 6,
    login_depends_on_crm: bool = False,
) -> Config:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "monitor.yaml").write_text(SETTINGS % {"mode": mode, "limit": limit})
    deps = {"payment_deps": "[]", "login_deps": "[crm]" if login_depends_on_crm else "[]"}
    for name, text in SYSTEMS.items():
        (directory / f"{name}.yaml").write_text(textwrap.dedent(text) % deps)
    return load_config(directory, {})


class World:
    def __init__(
        self,
        tmp: Path,
        catcher: MailCatcher,
        session: aiohttp.ClientSession,
        sms: SmsChannel | None,
        **config_options: object,
    ) -> None:
        self.tmp = tmp
        self.catcher = catcher
        self.clock = FakeClock()
        self.config = write_config(tmp / "checks", **config_options)  # type: ignore[arg-type]
        self.session = session
        self.sms = sms
        self.db = tmp / "monitor.db"
        self.email = EmailChannel.from_url(catcher.url, "status@example.com", pool_size=2)

    async def build(self) -> None:
        """(Re)build every part over the same database, as a restarted process would."""
        self.store = SQLiteStore(self.db)
        settings = self.config.settings
        info = systems_info(self.config)
        self.monitor = Monitor(self.config, self.store, self.clock)
        await self.monitor.restore()
        self.notifier = Notifier(
            store=self.store,
            composer=Composer.from_settings(MESSAGES, settings, info),
            settings=settings,
            systems=info,
            correlator=Correlator(
                {n: s.depends_on for n, s in self.config.systems.items()},
                settings.correlation_window,
            ),
            clock=self.clock,
        )
        self.delivery = Delivery(
            self.store,
            Channels(email=self.email, sms=self.sms, message_domain="example.com"),
            self.clock,
            rng=random.Random(7),
        )

    async def restart(self) -> None:
        await self.store.close()
        await self.build()

    async def people(self, *people: Person) -> None:
        await self.store.upsert_people(people)

    def result(self, system: str, ok: bool) -> None:
        reason = "status 200 in 12ms" if ok else "status 503, expected 200"
        self.monitor.observe(ProbeResult(system, ok, reason, self.clock.now(), 0.012))

    async def probe_round(self, results: dict[str, bool], seconds: float = 15.0) -> None:
        """Every system in ``results`` probed once; the clock then moves one interval on."""
        for system, ok in results.items():
            self.result(system, ok)
        await self.settle()
        self.clock.advance(seconds)

    async def fail(self, systems: Iterable[str], rounds: int = 3) -> None:
        for _ in range(rounds):
            await self.probe_round(dict.fromkeys(systems, False))

    async def recover(self, systems: Iterable[str], rounds: int = 2) -> None:
        for _ in range(rounds):
            await self.probe_round(dict.fromkeys(systems, True))

    async def wait(self, seconds: float, step: float = 15.0) -> None:
        """Let time pass with the monitor ticking along (no results)."""
        end = self.clock.now() + seconds
        while self.clock.now() < end:
            self.clock.advance(min(step, end - self.clock.now()))
            await self.settle()

    async def settle(self) -> None:
        """Do all the work due now: the monitor's transitions saved (the notifier reads them
        from the store), correlation, decisions, every send that can go."""
        await self.monitor.flush()
        await self.notifier.tick()
        for _ in range(1000):
            if not await self.delivery.run_once():
                return
        raise AssertionError("delivery did not settle")

    async def report(self, person: Person, system: str, action: str, ago: float = 0.0) -> None:
        await self.notifier.report_attempt(
            Attempt(system, person.id, action, self.clock.now() - ago), person
        )

    async def incidents(self) -> list[Incident]:
        return await self.store.incidents()

    def mail_to(self, address: str) -> list[CaughtMessage]:
        return [m for m in self.catcher.messages if address in m.rcpt_tos]

    async def close(self) -> None:
        await self.email.close()
        await self.store.close()


@asynccontextmanager
async def world(
    tmp: Path, sms: SmsChannel | None = None, **config_options: object
) -> AsyncIterator[World]:
    async with MailCatcher() as catcher, aiohttp.ClientSession() as session:
        the_world = World(tmp, catcher, session, sms, **config_options)
        await the_world.build()
        try:
            yield the_world
        finally:
            await the_world.close()


async def decided(store: SQLiteStore, clock: FakeClock, people: list[str]) -> None:
    """Incident 1's acknowledgement to each of ``people``, decided and due now."""
    await store.decide(
        [
            OutboxItem(
                key=f"incident-1.acknowledge.{person}",
                incident_id=1,
                person_id=person,
                kind="acknowledge",
                reason="first",
                created_at=clock.now(),
                subject="Sorry: payments are failing",
                text="We are on it.",
                html=None,
                sms="We are on it.",
                channels=(Address("email", f"{person}@example.com"),),
                next_try_at=clock.now(),
            )
            for person in people
        ],
        {},
        1,
    )
