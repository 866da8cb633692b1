"""``monitor demo``: a scripted outage, end to end, with nothing to set up.
(Over 400 lines: it is one story, read top to bottom, and its helpers are only its own.)

It is a real run of the product, not a recording: simulated payment, login and CRM systems
(``monitor.demo.simulated``), a local mail catcher, and the real ``App`` with the shipped checks and
messages, on a temporary database. Payment and login fail together, the people affected are
told (and on-call is alerted, by mail to a second catcher), the outage lasts long enough for
them to be offered goodwill, on-call sends them a note, the systems recover, the same people hear
that it is fixed (and are promised an explanation), and on-call publishes the explanation, which
each of them gets.
Every transition, incident change and caught message is printed as it happens. Then it keeps
serving the status page and a page of every caught message (``monitor.demo.pages``) until
SIGINT or SIGTERM; ``exit_after`` ends it after the script instead.

Time is shortened so the demo takes about half a minute: the check files are copied with
``every`` and ``timeout`` scaled down, and ``monitor.yaml`` with a short ``notify_after`` and
``correlation_window``. ``speed`` shortens it further. Each step waits for what it needs to see
(a transition, a message) with a bound, never for a fixed time; only the pauses left for a
person to read are timed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import secrets
import signal
import socket
import sys
import tempfile
import textwrap
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
from aiohttp import web

from monitor.app import App, Options, systems_info
from monitor.config import Config, ConfigError, load_config
from monitor.demo.history import DAYS, write_past
from monitor.demo.mailcatcher import CaughtMessage, MailCatcher
from monitor.demo.pages import MESSAGES_PATH, ShownMessage, add_messages_page, shown_messages
from monitor.demo.simulated import SimulatedSystems
from monitor.durations import format_duration, short_duration
from monitor.incidents.correlation import Change, Incident
from monitor.logs import configure
from monitor.maintenance import NoticeKind
from monitor.model import Address, Attempt, Health, MessageKind, Person, Transition
from monitor.notify.composer import Composer
from monitor.store import PENDING, SENT, UNDELIVERABLE, OutboxItem, SQLiteStore
from monitor.text import one_line
from monitor.web.server import build_web_app

SIMULATED = ("payment", "login", "crm")
BROKEN = ("payment", "login")
DEFAULTS = Path(__file__).resolve().parent / "defaults"

PEOPLE = (
    Person("u-101", "Priya Shah", "priya.shah@example.com", systems=("payment",)),
    Person("u-102", "Tom Becker", "tom.becker@example.com", systems=("payment",)),
    Person("u-103", "Mei Lin", "mei.lin@example.com", systems=("login",)),
    # Reads German and lives in New York: his messages are in German, with New York times.
    Person(
        "u-104",
        "Jonas Weber",
        "jonas.weber@example.com",
        systems=("login",),
        timezone="America/New_York",
        language="de",
    ),
    Person("u-105", "Sara Costa", "sara.costa@example.com", systems=("payment", "login")),
)
# Subscribes through the status page's form after the outage, and confirms by the mail's link.
VISITOR = "lena.fischer@example.com"
# Unsubscribes with one click from his mail app once he hears it is fixed.
LEAVER = "u-102"
# Not a subscriber: the shop reports that she just failed to pay.
ALICE = Person("u-1042", "Alice Martin", "alice.martin@example.com")
ACTION = "buy the LinkedIn course"
BODY_LINES = 3  # of each caught message, printed under its subject
NOTE = (
    "The card processor's update did not apply properly.\n"
    "Doing: we are rolling it back and trying every kind of card before we switch it on again."
)
ONCALL = "oncall@example.com"
# Planned work on login tomorrow, announced at once (its own notify_before is two days).
PLANNED = "login"
PLANNED_NOTE = "We are moving the sign-in servers to a new data centre."
# What the demo offers once the outage has lasted goodwill_after, in each reader's language.
GOODWILL = {
    "default": "we have added a free month to your account",
    "de": "wir haben Ihrem Konto einen Gratismonat gutgeschrieben",
}
EXPLANATION = (
    "An update to our card processor's settings pointed payments and sign-ins at a server we "
    "had switched off the day before. We have put the settings back, and from now on every "
    "change to them is tried on a test copy first, with an alarm that tells us within a minute "
    "when payments stop going through."
)


@dataclass(frozen=True)
class Pace:
    """The demo's timings in seconds, shortened from the shipped ones (15-30s probes, 60s hold).

    Probing never gets faster than every 200ms, nor a probe's timeout shorter than 200ms, so
    a busy machine still answers in time.
    """

    every: float
    timeout: float
    notify_after: float
    correlation_window: float
    calm: float  # healthy, before the outage: time to open the status page
    hold: float  # after the acknowledgements, before the fix: time to look at the incident
    goodwill_after: float  # between the acknowledgements and on-call's note
    bound: float  # the longest any step may take before the demo says it is stuck
    tick: float

    @classmethod
    def at(cls, speed: float) -> Pace:
        every = max(1.0 / speed, 0.2)
        return cls(
            every=every,
            timeout=min(every, max(0.5 / speed, 0.2)),
            notify_after=max(5.0 / speed, 4 * every),
            correlation_window=max(30.0 / speed, 10 * every),
            calm=5.0 / speed,
            hold=15.0 / speed,
            goodwill_after=max(5.0 / speed, 4 * every) + 4.0 / speed,
            bound=max(60.0 / speed, 20.0),
            tick=min(0.5, every / 2),
        )


class DemoStuck(Exception):
    """Something the script waits for did not happen in time."""


class Unusable(Exception):
    """A config or messages directory the demo cannot run with; the message says why."""


@dataclass(frozen=True)
class Source:
    label: str  # how the user knows it: "./checks", "MONITOR_CONFIG", "the shipped checks"
    path: Path


async def run_demo(
    listen: str = "127.0.0.1:9108", speed: float = 1.0, exit_after: bool = False
) -> int:
    """Run the scripted outage, then serve its pages until SIGINT or SIGTERM (or, with
    ``exit_after``, end there). 0 when everything the script expects happened or the user
    stopped it, 1 if it got stuck (with the reason on stderr), 2 for bad arguments."""
    if not 0.1 <= speed <= 50:
        print(f"demo: --speed must be between 0.1 and 50, not {speed:g}", file=sys.stderr)
        return 2
    host, _, port_text = listen.rpartition(":")
    if not host or not port_text.isdigit() or int(port_text) > 65535:
        print(
            f"demo: --listen must be HOST:PORT, like 127.0.0.1:9108, not {listen!r}",
            file=sys.stderr,
        )
        return 2
    pace = Pace.at(speed)
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")}
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    handled = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        # Not on Windows' loop: there Ctrl-C stays a KeyboardInterrupt, which cli answers.
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
            handled.append(sig)
    try:
        with tempfile.TemporaryDirectory(prefix="monitor-demo-", ignore_cleanup_errors=True) as tmp:
            demo = _Demo(pace, Path(tmp), host, int(port_text), base_env, stop, exit_after)
            return await demo.run()
    finally:
        for sig in handled:
            loop.remove_signal_handler(sig)


class _Demo:
    def __init__(
        self,
        pace: Pace,
        tmp: Path,
        host: str,
        port: int,
        base_env: dict[str, str],
        stop: asyncio.Event,
        exit_after: bool,
    ) -> None:
        self.pace = pace
        self.tmp = tmp
        self.host = host
        self.port = port
        self.base_env = base_env
        self.stop = stop
        self.exit_after = exit_after
        self.loop = asyncio.get_running_loop()
        self.started = self.loop.time()
        self.changed = asyncio.Event()
        self.systems = SimulatedSystems()
        self.catcher = MailCatcher(on_message=self._caught)
        # On-call's alerts go to a catcher of their own: they are the team's, not customers'.
        self.oncall = MailCatcher(on_message=self._alerted)
        self.app: App | None = None
        self.runner: web.AppRunner | None = None
        self.status_url = ""
        self.messages_url = ""
        self.names = {p.email: p.name for p in (*PEOPLE, ALICE) if p.email}
        self.names_by_id = {p.id: p.name for p in (*PEOPLE, ALICE)}
        # Each decision as made, with its SMS: the outbox forgets a message's bodies once sent.
        self.decided: dict[str, OutboxItem] = {}
        self.done: set[str] = set()  # the keys of the messages sent or given up
        self.past: list[int] = []  # the made-up incidents of the status page's history
        self.link_secret = secrets.token_urlsafe(32)  # signs the links in messages (this run's)
        self.unsubscribed: list[str] = []
        self.subscribed: list[str] = []

    # the script ---------------------------------------------------------------------------

    async def run(self) -> int:
        try:
            await self.systems.start()
            await self.catcher.start()
            await self.oncall.start()
            try:
                app = await self._start_app()
            except Unusable as exc:
                print(f"demo: {exc}", file=sys.stderr)
                return 1
            script = asyncio.create_task(self._script(app), name="demo script")
            stopped = asyncio.create_task(self.stop.wait(), name="demo stop")
            await asyncio.wait((script, stopped), return_when=asyncio.FIRST_COMPLETED)
            if not script.done():
                script.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await script
                self._line("\nDemo stopped.")
                return 0
            stopped.cancel()
            try:
                script.result()
            except DemoStuck as exc:
                print(
                    f"\ndemo: stopped, because {exc} (within {self.pace.bound:g}s)."
                    " Warnings above, if any, say why.",
                    file=sys.stderr,
                    flush=True,
                )
                return 1
            if self.exit_after:
                return 0
            self._line(
                f"Still serving until Ctrl-C: the status page at {self.status_url}"
                f" and every message caught at {self.messages_url}"
            )
            await self.stop.wait()
            self._line("\nDemo stopped.")
            return 0
        finally:
            if self.runner is not None:
                await self.runner.cleanup()
            if self.app is not None:
                await self.app.stop()
            await self.catcher.stop()
            await self.oncall.stop()
            await self.systems.stop()

    async def _script(self, app: App) -> None:
        pace = self.pace
        states = app.monitor.states

        async def all_up() -> bool:
            return all(states[n].health is Health.UP for n in SIMULATED)

        async def broken_down() -> bool:
            return all(states[n].health is Health.DOWN for n in BROKEN)

        planned = {p.id for p in PEOPLE if PLANNED in p.systems}

        async def planned_told() -> bool:
            return self._notices_sent() >= planned

        self._say(
            f"Planned work on {PLANNED} tomorrow 02:00-03:00 UTC (monitor.yaml's maintenance:, with"
            " notify_before 48h): its subscribers get a notice now, in their language and time,"
            " and the status page lists it."
        )
        await self._until("the planned-work notices did not all go out", planned_told)
        await self._until("the simulated systems did not all come UP", all_up)
        self._say(
            f"All systems are UP. In {short_duration(pace.calm)} payment and login fail together."
        )
        await asyncio.sleep(pace.calm)  # a pause for the reader, not a wait for the monitor

        self._say("Breaking payment (/healthz answers 503) and login (/login answers 502).")
        self.systems.payment.fail()
        self.systems.login.fail()
        await app.notifier.report_attempt(
            Attempt("payment", ALICE.id, ACTION, app.clock.now()), ALICE
        )
        self._say(
            f"{ALICE.name} could not {ACTION}; the shop reports it to the monitor"
            " (what POST /api/v1/attempts does)."
        )
        await self._until("payment and login did not both go DOWN", broken_down)
        audience = {p.id for p in PEOPLE if set(p.systems) & set(BROKEN)} | {ALICE.id}
        self._say(
            f"Customers are told once the incident has lasted {short_duration(pace.notify_after)}"
            " (notify_after), so blips never reach them."
        )

        async def acknowledged_all() -> bool:
            return await self._told(app, MessageKind.ACKNOWLEDGE) >= audience

        await self._until("the affected people were not all acknowledged", acknowledged_all)
        incident = await self._incident(app)
        acknowledged = await self._told(app, MessageKind.ACKNOWLEDGE)
        self._say(
            f"{len(audience)} people acknowledged, one message each, saying when on-call was"
            f" alerted and how. See incident {incident.id} on the status page, and the messages"
            " on the messages page."
        )

        async def goodwill_round_told() -> bool:
            return await self._updates_done(app) >= len(acknowledged)

        await self._until("the update at goodwill_after did not go out", goodwill_round_told)
        self._say(
            f"The outage has lasted {short_duration(pace.goodwill_after)} (goodwill_after;"
            " shipped: 24h): an update goes to everyone told, offering goodwill to those it has"
            f" lasted that long for: {self._offered(incident.id)}. Anyone it reached later is"
            " offered it in their next update, once."
        )
        await asyncio.sleep(pace.hold / 2)  # a pause for the reader

        async def goodwill_due_to_all() -> bool:
            # So the note's update offers it to everyone not offered it yet, however late the
            # last system was seen down on a busy machine.
            members = (await self._incident(app)).members
            return app.clock.now() >= max(m.down_at for m in members) + pace.goodwill_after

        await self._until("goodwill_after did not pass for everyone", goodwill_due_to_all)
        await app.notifier.add_note(incident.id, NOTE, send=True)
        self._say(
            f"On-call adds a note and sends it to everyone told (POST /api/v1/incidents/"
            f'{incident.id}/note with "send": true): "{one_line(NOTE)}"'
        )

        async def note_told() -> bool:
            return await self._updates_done(app) >= 2 * len(acknowledged)

        await self._until("the note did not reach everyone acknowledged", note_told)
        self._say(f"Goodwill offered so far: {self._offered(incident.id)}.")
        await asyncio.sleep(pace.hold / 2)  # a pause for the reader

        self._say("Fixing payment and login.")
        self.systems.payment.recover()
        self.systems.login.recover()

        async def resolved_told() -> bool:
            return (await self._incident(app)).resolved_at is not None and (
                await self._told(app, MessageKind.RESOLVED) >= acknowledged
            )

        await self._until("the resolved messages did not all go out", resolved_told)
        await asyncio.sleep(pace.hold / 2)  # a pause for the reader

        leaver = next(p for p in PEOPLE if p.id == LEAVER)
        await self._unsubscribe_in_one_click(leaver)
        acknowledged.discard(LEAVER)

        await app.notifier.explain(incident.id, EXPLANATION)
        self._say(
            "The resolved messages promised an explanation. On-call publishes it (monitor "
            f'incident explain {incident.id} FILE): "{EXPLANATION}"'
        )

        async def explanation_told() -> bool:
            return await self._told(app, MessageKind.EXPLANATION) >= acknowledged

        await self._until("the explanation did not reach everyone told", explanation_told)
        await asyncio.sleep(pace.hold / 4)  # a pause for the reader
        await self._subscribe_through_the_page(app)
        await self._summary(app)

    async def _unsubscribe_in_one_click(self, person: Person) -> None:
        """What a mail app does with the List-Unsubscribe-Post header (RFC 8058): one POST."""
        mine = [m for m in self.catcher.messages if person.email in m.rcpt_tos]
        link = str(mine[-1].message["List-Unsubscribe"]).strip("<>")
        async with aiohttp.ClientSession() as session:
            answer = await session.post(link, data={"List-Unsubscribe": "One-Click"})
            answer.release()
        if answer.status != 200:
            raise DemoStuck(f"the one-click unsubscribe answered {answer.status}")
        self.unsubscribed.append(person.name)
        self._say(
            f"{person.name} unsubscribes in one click from his mail app (RFC 8058: one POST to"
            " the List-Unsubscribe link his messages carry): he hears nothing further."
        )

    async def _subscribe_through_the_page(self, app: App) -> None:
        """A visitor fills in the status page's form, gets the mail, and confirms by its link."""
        titles = [app.config.systems[name].title for name in BROKEN]
        form = [("email", VISITOR), *(("system", title) for title in titles)]
        async with aiohttp.ClientSession() as session:
            answer = await session.post(self.status_url + "subscribe", data=form)
            answer.release()
            self._say(
                f"A visitor subscribes on the status page ({VISITOR}, to {' and '.join(titles)}):"
                " the page says to check the inbox, and a confirmation mail goes out."
            )

            async def confirmation_caught() -> bool:
                return any(VISITOR in m.rcpt_tos for m in self.catcher.messages)

            await self._until("the confirmation mail did not arrive", confirmation_caught)
            mail = next(m for m in self.catcher.messages if VISITOR in m.rcpt_tos)
            found = re.search(re.escape(self.status_url) + r"subscribe/confirm/\S+", mail.text)
            if found is None:
                raise DemoStuck("the confirmation mail has no confirm link")
            # The link opens a page with a button (a mail scanner following it confirms
            # nothing); the button posts back to it.
            answer = await session.post(found.group())
            answer.release()
        people = await app.store.people_with_email(VISITOR)
        if answer.status != 200 or not people or not people[0].systems:
            raise DemoStuck("the confirm link did not make a subscriber")
        self.subscribed.append(VISITOR)
        visitor = people[0].id

        async def told_of_the_work() -> bool:
            return visitor in self._notices_sent()

        # Subscribed after the notice of the planned work on login went: told of it at once.
        await self._until("the visitor was not told of the planned work", told_of_the_work)
        self._say(
            f"{VISITOR} confirms by the mail's link: now a subscriber ({visitor}), told at once"
            " of the planned work already announced, and of the next outage of those services,"
            " with a link to leave in every message."
        )

    # starting -------------------------------------------------------------------------------

    async def _start_app(self) -> App:
        environ = {
            **self.base_env,
            **self.systems.environ(),
            "MONITOR_SMTP_URL": self.catcher.url,
            "MONITOR_LINK_SECRET": self.link_secret,
        }
        port = self.port
        if port and not _can_listen(self.host, port):
            self._line(f"Port {port} is taken, so the status page uses a free port instead.")
            port = 0
        if not port:  # known before the config is written: the links in messages lead there
            port = _free_port(self.host)
        self.status_url = f"http://{self.host}:{port}/"
        config_dir, config_label, config = self._prepare_config(
            environ, self._oncall_url(), self.status_url
        )
        messages_dir, messages_label = self._pick_messages(config)
        options = Options(
            config=config_dir,
            messages=messages_dir,
            db=self.tmp / "monitor.db",
            listen=f"{self.host}:{port}",
        )
        past = SQLiteStore(options.db)
        try:
            self.past = await write_past(past, list(config.systems), time.time())
        finally:
            await past.close()
        configure("WARNING", environ=environ)
        # The demo serves the monitor's web app itself, to add its messages page to it: that
        # page is for the demo only, never part of what `monitor run` serves.
        app = App(
            options,
            environ=environ,
            tick_every=self.pace.tick,
            watch_files=False,
            serve_http=False,
        )
        await app.start()
        self.app = app
        await app.store.upsert_people(PEOPLE)
        app.monitor.on_transition.append(self._transition)
        app.notifier.on_incident.append(self._incident_changed)
        app.notifier.on_decided.append(self._decided)
        app.delivery.on_outcome.append(self._outcome)
        web_app = build_web_app(app.web_services)
        add_messages_page(web_app, self._shown)
        self.runner = web.AppRunner(web_app, access_log=None)
        await self.runner.setup()
        try:
            await web.TCPSite(self.runner, self.host.strip("[]"), port).start()
        except OSError as exc:
            raise Unusable(f"cannot serve the status page on {options.listen}: {exc}") from None
        port = self.runner.addresses[0][1]
        self.status_url = f"http://{self.host}:{port}/"
        self.messages_url = f"http://{self.host}:{port}{MESSAGES_PATH}"
        self._intro(config_label, messages_label)
        return app

    def _oncall_url(self) -> str:
        """apprise's URL for mail to on-call through the second catcher (plain SMTP, as the
        catcher speaks)."""
        where = self.oncall.url.removeprefix("smtp://")
        return f"mailto://{where}?from=monitor@example.com&to={ONCALL}&mode=insecure"

    def _prepare_config(
        self, environ: Mapping[str, str], oncall_url: str, public_url: str
    ) -> tuple[Path, str, Config]:
        """A shortened copy of the checks to use, and where they came from."""
        first = _given_or_local("MONITOR_CONFIG", "checks")
        shipped = Source("the shipped checks", DEFAULTS / "checks")
        target = self.tmp / "checks"
        for source in (first, shipped):
            if source is None:
                continue
            try:
                config = shorten_checks(
                    source.path,
                    target,
                    self.pace,
                    environ,
                    self.systems,
                    oncall_url,
                    time.time(),
                    public_url,
                )
            except Unusable as exc:
                if source is not shipped:
                    self._line(
                        f"The demo cannot use {source.label} ({exc}); it uses {shipped.label}."
                    )
                    continue
                raise Unusable(f"the shipped checks are missing or broken: {exc}") from None
            return target, f"{source.label} ({source.path.absolute()})", config
        raise AssertionError("unreachable")

    def _pick_messages(self, config: Config) -> tuple[Path, str]:
        first = _given_or_local("MONITOR_MESSAGES", "messages")
        shipped = Source("the shipped messages", DEFAULTS / "messages")
        for source in (first, shipped):
            if source is None:
                continue
            problems = _template_problems(source.path, config)
            if problems is None:
                return source.path, f"{source.label} ({source.path.absolute()})"
            if source is not shipped:
                self._line(
                    f"The demo cannot use {source.label} ({problems}); it uses {shipped.label}."
                )
                continue
            raise Unusable(f"the shipped messages are missing or broken: {problems}")
        raise AssertionError("unreachable")

    def _intro(self, checks: str, messages: str) -> None:
        pace = self.pace
        self._line(
            "monitor demo: the real monitor against simulated systems, with a scripted outage."
        )
        self._line(
            f"It runs with shortened intervals: probes every {short_duration(pace.every)}"
            f" (shipped: 15s to 30s), customers told after {short_duration(pace.notify_after)}"
            " (shipped: 60s)."
        )
        self._line(f"Checks:      {checks}, shortened into {self.tmp / 'checks'}")
        self._line(f"Messages:    {messages}")
        for n, line in enumerate(self.systems.describe()):
            self._line(f"{'Simulated:' if n == 0 else '':<12} {line}")
        self._line(
            f"Mail:        a local mail catcher at {self.catcher.url}; nothing leaves this machine"
        )
        people = ", ".join(f"{p.name} ({', '.join(p.systems)}{_locale(p)})" for p in PEOPLE)
        self._line(f"Subscribers: {people}")
        served = "served while the demo runs" if self.exit_after else "served until Ctrl-C"
        self._line(f"Status page: {self.status_url}  Messages: {self.messages_url}  ({served})")
        self._line(
            f"History:     {DAYS} days made up before the demo (incidents"
            f" {', '.join(map(str, self.past))}), so the status page's bars, incident pages and"
            " /history have a past; everything from now on is real."
        )
        self._line("")

    # watching -------------------------------------------------------------------------------

    def _poke(self) -> None:
        self.changed.set()

    async def _until(self, failure: str, done: Callable[[], Awaitable[bool]]) -> None:
        """Return once ``done()``; checked on every change the monitor reports, and a few times
        a second for what it does not report. Raise DemoStuck after ``pace.bound`` seconds."""
        deadline = self.loop.time() + self.pace.bound
        while not await done():
            left = deadline - self.loop.time()
            if left <= 0:
                raise DemoStuck(failure)
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), min(left, 0.25))

    async def _incident(self, app: App) -> Incident:
        for incident in reversed(await app.store.incidents()):
            if set(BROKEN) & set(incident.systems):
                return incident
        raise DemoStuck("no incident was opened")

    def _decided(self, items: list[OutboxItem]) -> None:
        self.decided.update((item.key, item) for item in items)
        self._poke()

    def _shown(self) -> list[ShownMessage]:
        """The caught messages for the messages page, each with the SMS of its decision (made
        before the message was sent, so every message caught has one)."""
        return shown_messages(list(self.catcher.messages), self.decided, self.names)

    def _notices_sent(self) -> set[str]:
        """People whose planned-work notice is done with (sent or given up)."""
        return {
            item.person_id
            for key, item in self.decided.items()
            if item.kind == NoticeKind.NOTICE.value and key in self.done
        }

    def _offered(self, incident_id: int) -> str:
        """Who has been offered goodwill for the incident ("nobody yet" when nobody has)."""
        names = [
            self.names_by_id[item.person_id]
            for item in self.decided.values()
            if item.incident_id == incident_id and _offers_goodwill(item)
        ]
        return ", ".join(names) or "nobody yet"

    async def _updates_done(self, app: App) -> int:
        """How many updates about the outage are done with (sent or given up)."""
        incident = await self._incident(app)
        items = await app.store.outbox_items(incident.id)
        return sum(1 for i in items if i.kind == MessageKind.UPDATE.value and i.status != PENDING)

    async def _told(self, app: App, kind: MessageKind) -> set[str]:
        """People whose message of ``kind`` about the outage is done with (sent or given up)."""
        try:
            incident = await self._incident(app)
        except DemoStuck:
            return set()
        return {
            item.person_id
            for item in await app.store.outbox_items(incident.id)
            if item.kind == kind.value and item.status != PENDING
        }

    # printing -------------------------------------------------------------------------------

    def _line(self, text: str) -> None:
        print(text, flush=True)

    def _say(self, text: str) -> None:
        print(f"[{self.loop.time() - self.started:5.1f}s] {text}", flush=True)

    def _transition(self, t: Transition) -> None:
        self._say(f"{t.system:<8} {t.current.value:<5} {t.reason}")
        self._poke()

    async def _incident_changed(
        self, incident: Incident, change: Change, changed: Sequence[str]
    ) -> None:
        self._say(change_line(incident, change, changed))
        self._poke()

    def _caught(self, caught: CaughtMessage) -> None:
        to = ", ".join(caught.rcpt_tos)
        name = self.names.get(to)
        self._say(f"Mail to {name} <{to}>" if name else f"Mail to {to}")
        self._line(f"{'':9}Subject: {caught.subject}")
        for line in _first_lines(caught.text, BODY_LINES, 88):
            self._line(f"{'':9}| {line}")
        self._poke()

    def _alerted(self, caught: CaughtMessage) -> None:
        self._say(f"On-call alerted by email ({ONCALL}): {caught.subject}")
        self._poke()

    def _outcome(self, item: OutboxItem, outcome: str, _channel: Address | None) -> None:
        if outcome != "retry":
            self.done.add(item.key)
        if outcome not in ("sent", "retry"):
            self._say(f"Message {item.key}: {outcome} ({item.last_error})")
        self._poke()

    async def _summary(self, app: App) -> None:
        incident = await self._incident(app)
        items = await app.store.outbox_items(incident.id)

        def count(kind: MessageKind, status: str) -> int:
            return sum(1 for i in items if i.kind == kind.value and i.status == status)

        lasted = format_duration((incident.resolved_at or app.clock.now()) - incident.opened_at)
        undeliverable = sum(1 for i in items if i.status == UNDELIVERABLE)
        offered = sum(
            1 for i in self.decided.values() if i.incident_id == incident.id and _offers_goodwill(i)
        )
        total = format_duration(self.loop.time() - self.started)
        started = datetime.fromtimestamp(incident.opened_at).strftime("%H:%M:%S")
        self._line("")
        self._line("Summary")
        self._line(
            f"  Incident {incident.id}: {', '.join(incident.systems)} (likely cause:"
            f" {incident.cause}), from {started}, lasted {lasted}."
        )
        self._line(
            f"  People acknowledged: {count(MessageKind.ACKNOWLEDGE, SENT)};"
            f" sent updates: {count(MessageKind.UPDATE, SENT)} (goodwill offered in {offered});"
            f" told it is resolved: {count(MessageKind.RESOLVED, SENT)};"
            f" sent the explanation: {count(MessageKind.EXPLANATION, SENT)};"
            f" undeliverable: {undeliverable}."
        )
        self._line(
            f"  Planned-work notices sent: {len(self._notices_sent())};"
            f" on-call alerts caught: {len(self.oncall.messages)}."
        )
        self._line(
            f"  Unsubscribed in one click: {', '.join(self.unsubscribed) or 'nobody'};"
            f" subscribed through the status page: {', '.join(self.subscribed) or 'nobody'}."
        )
        self._line(
            f"  Messages caught by the mail catcher: {len(self.catcher.messages)}"
            f" (each with its text, HTML and SMS: {self.messages_url})."
        )
        self._line(f"  The demo took {total}.")
        self._line("")
        self._line(
            "To watch your own systems: copy checks/ and messages/, point them at your services,"
        )
        self._line(
            "set MONITOR_SMTP_URL, check with `monitor validate`, then `monitor run`"
            " (README.md explains each step)."
        )


def change_line(incident: Incident, change: Change, changed: Sequence[str]) -> str:
    """What one change did to ``incident``, as of the moment it happened.

    The notifier tells its listeners once a correlation pass, with each incident as the whole
    pass left it: when payment and login recover in the same pass, "payment recovered" comes
    with an incident in which login is back too (which once printed "payment is back; still
    down: ."). So a line reads its moment from the members' own times, never from how the
    pass ended.
    """
    system = ", ".join(changed)
    systems = ", ".join(incident.systems)
    head = f"Incident {incident.id}"
    if change is Change.OPENED:
        # At its opening an incident is its first system, which is also its likely cause; what
        # joined in the same pass (and may have become the cause) has its own "joined" line.
        return f"{head} opened: {system} is down. Likely cause: {system}."
    if change is Change.JOINED:
        return f"{head}: {system} joined. Systems: {systems}; likely cause: {incident.cause}."
    if change is Change.RECOVERED:
        back = [m.up_at for m in incident.members if m.name in changed and m.up_at is not None]
        moment = max(back, default=float("inf"))
        still = [
            m.name
            for m in incident.members
            if m.name not in changed and (m.up_at is None or m.up_at > moment)
        ]
        if not still:  # the rest came back at the same moment: the "resolved" line follows
            return f"{head}: {system} is back."
        return f"{head}: {system} is back; still down: {', '.join(still)}."
    if change is Change.RESOLVED:
        ends = [m.up_at for m in incident.members if m.up_at is not None]
        lasted = format_duration(max(ends) - incident.opened_at) if ends else ""
        return f"{head} resolved: every check passes again." + (
            f" It lasted {lasted}." if lasted else ""
        )
    return f"{head} {change.value}: {system}. Systems: {systems}."


def shorten_checks(
    source: Path,
    target: Path,
    pace: Pace,
    environ: Mapping[str, str],
    systems: SimulatedSystems,
    oncall_url: str,
    now: float,
    public_url: str,
) -> Config:
    """Copy the payment, login and crm checks from ``source`` to ``target`` with ``every`` and
    ``timeout`` shortened, and write a ``monitor.yaml`` keeping only the ``org`` (on-call
    alerted at ``oncall_url``, the demo's goodwill offered early, planned work the day after
    ``now`` announced at once, the links in messages leading to ``public_url``); return the
    copy as loaded.
    Raise Unusable when ``source`` cannot drive the simulated systems."""
    try:
        config = load_config(source, environ)
    except ConfigError as exc:
        more = f" (and {len(exc.problems) - 1} more)" if len(exc.problems) > 1 else ""
        raise Unusable(f"{exc.problems[0]}{more}") from None
    missing = [name for name in SIMULATED if name not in config.systems]
    if missing:
        raise Unusable(f"it has no check named {' or '.join(missing)}")
    wrong = _not_simulated(config, systems)
    if wrong:
        raise Unusable(wrong)
    for name in SIMULATED:
        outside = set(config.systems[name].depends_on) - set(SIMULATED)
        if outside:
            raise Unusable(f"{name} depends on {', '.join(sorted(outside))}, which the demo lacks")
    target.mkdir(parents=True, exist_ok=True)
    for name in SIMULATED:
        path = Path(config.files[name])
        (target / path.name).write_text(
            _shortened(path.read_text(encoding="utf-8"), pace), encoding="utf-8"
        )
    org = config.settings.org.model_dump(exclude_none=True)
    (target / "monitor.yaml").write_text(
        "# monitor demo: the org from the checks directory, every interval shortened.\n"
        f"org: {json.dumps(org, ensure_ascii=False)}\n"
        f"correlation_window: {_duration(pace.correlation_window)}\n"
        f"notify_after: {_duration(pace.notify_after)}\n"
        "update_every: 24h\n"
        "attempt_lookback: 2h\n"
        "customer_messages: auto\n"
        f"oncall: [{json.dumps(oncall_url)}]\n"
        f"goodwill: {json.dumps(GOODWILL, ensure_ascii=False)}\n"
        f"goodwill_after: {_duration(pace.goodwill_after)}\n"
        f"maintenance: [{json.dumps(_planned_window(now))}]\n"
        f"public_url: {json.dumps(public_url)}\n",
        encoding="utf-8",
    )
    try:
        return load_config(target, environ)
    except ConfigError as exc:
        raise Unusable(f"its shortened copy is refused: {exc.problems[0]}") from None


_TIMED = re.compile(r"^(every|timeout)[ \t]*:.*(?:\n|$)", re.MULTILINE)


def _shortened(text: str, pace: Pace) -> str:
    kept = _TIMED.sub("", text).rstrip("\n")
    return (
        f"{kept}\n# monitor demo: shortened intervals\n"
        f"every: {_duration(pace.every)}\ntimeout: {_duration(pace.timeout)}\n"
    )


def _not_simulated(config: Config, systems: SimulatedSystems) -> str:
    """Why the checks would not probe the simulated systems ("" when they would)."""
    payment = config.systems["payment"].probe
    login = config.systems["login"].probe
    crm = config.systems["crm"].probe
    if payment.http is None or not payment.http.url.startswith(systems.payment.url + "/"):
        return "its payment check does not probe ${PAYMENT_URL}"
    if login.steps is None or not login.steps[0].url.startswith(systems.login.url + "/"):
        return "its login check does not start at ${LOGIN_URL}"
    if crm.tcp is None or (crm.tcp.host, crm.tcp.port) != (systems.crm.host, systems.crm.port):
        return "its crm check does not probe ${CRM_HOST}:${CRM_PORT}"
    return ""


def _template_problems(messages: Path, config: Config) -> str | None:
    if not (messages / "acknowledge.j2").is_file():
        return "no acknowledge.j2 there"
    settings = config.settings
    composer = Composer.from_settings(messages, settings, systems_info(config))
    problems = composer.validate()
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        return f"{problems[0]}{more}"
    return None


def _can_listen(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            # As aiohttp does: a port left in TIME_WAIT by an earlier run is free to use.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host.strip("[]"), port))
    except OSError:
        return False
    return True


def _free_port(host: str) -> int:
    """A port free now on ``host`` (the system's pick)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host.strip("[]"), 0))
        port: int = sock.getsockname()[1]
    return port


def _duration(seconds: float) -> str:
    """A duration as check files write it."""
    if seconds >= 1 and seconds == int(seconds):
        return f"{int(seconds)}s"
    return f"{round(seconds * 1000)}ms"


def _first_lines(text: str, count: int, width: int) -> list[str]:
    """The first ``count`` lines of ``text`` wrapped at ``width``, "…" ending a cut one."""
    lines = [
        wrapped
        for paragraph in text.splitlines()
        if paragraph.strip()
        for wrapped in textwrap.wrap(paragraph.strip(), width)
    ]
    shown = lines[:count]
    if len(lines) > count and shown:
        shown[-1] += " …"
    return shown


def _given_or_local(variable: str, local: str) -> Source | None:
    """The directory the environment names, else ``./local`` if there is one."""
    given = os.environ.get(variable)
    if given:
        return Source(variable, Path(given))
    return Source(f"./{local}", Path(local)) if Path(local).is_dir() else None


def _planned_window(now: float) -> dict[str, object]:
    """The demo's planned work: tomorrow 02:00-03:00 UTC, announced at once."""
    tomorrow = datetime.fromtimestamp(now, UTC).date() + timedelta(days=1)
    return {
        "name": "sign-in-move",
        "systems": [PLANNED],
        "start": f"{tomorrow} 02:00",
        "end": f"{tomorrow} 03:00",
        "timezone": "UTC",
        "notify_before": "48h",
        "note": PLANNED_NOTE,
    }


def _offers_goodwill(item: OutboxItem) -> bool:
    return any(text in item.text for text in GOODWILL.values())


def _locale(person: Person) -> str:
    """``; de, America/New_York`` for a person with a language or zone of their own."""
    own = [value for value in (person.language, person.timezone) if value]
    return f"; {', '.join(own)}" if own else ""
