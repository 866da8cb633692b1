"""The running monitor: every part built and wired in the order data flows through them.
(Over 400 lines: the whole wiring, reload and health in one place is what makes it readable.)

config -> store -> probes -> monitor (state) -> notifier (incidents, audience, composer) ->
outbox -> delivery (channels); metrics and the HTTP server observe all. The web gets only the
``monitor.web.services.Services`` built here, never the ``App``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import ssl
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import watchfiles
from aiohttp import web

from monitor.config import SETTINGS_FILE, Config, ConfigError, Problem, load_config
from monitor.delivery.channels import EmailChannel, SmsChannel, WebhookChannel
from monitor.delivery.channels.email import Letterhead
from monitor.delivery.channels.letterhead import letterhead_for, sender_from_env
from monitor.delivery.sender import Channels, Delivery
from monitor.incidents.correlation import Change, Correlator, Incident
from monitor.logs import event
from monitor.maintenance import (
    PublicWindow,
    Schedule,
    config_windows,
    public_windows,
    windows_digest,
)
from monitor.metrics import Metrics, ReplicaFigures
from monitor.model import Address, Clock, SystemClock, SystemInfo
from monitor.notify.composer import Composer
from monitor.notify.notifier import Notifier
from monitor.notify.oncall import Notice, OnCall, describe, reminder
from monitor.probing.probes import Prober, make_session
from monitor.probing.runtime import Monitor
from monitor.probing.scheduler import ProbeScheduler
from monitor.replicas.identity import ReplicaNameError, check_name_free, replica_name
from monitor.replicas.membership import SHARD_UNITS, Membership, Timing, split_units
from monitor.store import OutboxItem, Store, StoreUnavailable
from monitor.store.location import DatabaseLocation, database_location
from monitor.store.opening import open_store
from monitor.store.types import OUTBOX_SHARDS
from monitor.subscriptions.decisions import Desk
from monitor.subscriptions.tokens import LinkState
from monitor.web.plumbing import TOKEN_VARIABLE
from monitor.web.server import build_web_app
from monitor.web.services import LastReload, ReplicaView, Services

log = logging.getLogger("monitor.app")

NO_CHANNEL = (
    "no channel is configured, so customers cannot be told: set MONITOR_SMTP_URL (email), "
    "MONITOR_TWILIO_* (SMS) or MONITOR_WEBHOOK_SECRET (webhooks)"
)
NO_LINKS = (
    "customer messages carry no manage or unsubscribe link, and the status page offers no "
    "subscriptions: "
)
NAMED_PROBLEMS = 10  # problems listed in an on-call notice; the rest are counted


def refused_notice(problems: Sequence[Problem]) -> Notice:
    """On-call's notice of a refused reload: what is wrong, where, and that nothing stopped."""
    lines = [str(p) for p in problems[:NAMED_PROBLEMS]]
    if len(problems) > NAMED_PROBLEMS:
        lines.append(f"and {len(problems) - NAMED_PROBLEMS} more (GET /api/v1/status)")
    count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
    return Notice(
        f"Configuration refused: {count}",
        "\n".join(lines) + "\nThe previous configuration keeps running; fix the files to reload.",
        "warning",
    )


@dataclass(frozen=True)
class Options:
    """Where things are. Each has a ``MONITOR_*`` environment variable (see ``from_env``)."""

    config: Path = Path("checks")
    messages: Path = Path("messages")
    # A SQLite file, or a postgresql:// URL (kept as given: a Path would fold its "//").
    db: str | Path = "monitor.db"
    listen: str = "0.0.0.0:9108"

    @classmethod
    def from_env(cls, environ: Mapping[str, str], **given: str | None) -> Options:
        """Options from flags where given, else ``MONITOR_CONFIG`` etc., else the defaults."""
        defaults = cls()

        def pick(name: str, default: object) -> str:
            value = given.get(name) or environ.get(f"MONITOR_{name.upper()}")
            return value if value else str(default)

        return cls(
            config=Path(pick("config", defaults.config)),
            messages=Path(pick("messages", defaults.messages)),
            db=pick("db", defaults.db),
            listen=pick("listen", defaults.listen),
        )


def systems_info(config: Config) -> dict[str, SystemInfo]:
    return {
        name: SystemInfo(name=name, title=s.title, workaround=s.workaround)
        for name, s in config.systems.items()
    }


def channels_from_env(
    session: aiohttp.ClientSession,
    environ: Mapping[str, str],
    message_domain: str,
    letterhead: Letterhead | None = None,
) -> Channels:
    """The channels the environment configures (``MONITOR_SMTP_URL``, ``MONITOR_TWILIO_*``,
    ``MONITOR_WEBHOOK_SECRET``), the email channel's mail on ``letterhead`` (``letterhead``
    makes it from the settings). Raises ValueError naming a half-configured one."""
    email = None
    if environ.get("MONITOR_SMTP_URL"):
        sender = sender_from_env(environ, message_domain)
        email = EmailChannel.from_url(environ["MONITOR_SMTP_URL"], sender, letterhead=letterhead)
    secret = environ.get("MONITOR_WEBHOOK_SECRET")
    return Channels(
        email=email,
        sms=SmsChannel.from_env(session, environ),
        webhook=WebhookChannel(session, secret) if secret else None,
        message_domain=message_domain,
    )


def letterhead(
    config: Config, environ: Mapping[str, str], options: Options, sender: str | None = None
) -> Letterhead:
    """What customer mail carries besides its content, as monitor.yaml's ``org`` and ``email``
    and the environment say (for mail from ``sender``, by default ``MONITOR_SMTP_FROM``'s).
    Raises ConfigError naming each field that cannot be used (a DKIM key that cannot be read
    or parsed among them), without quoting the key."""
    settings = config.settings
    if sender is None:
        sender = sender_from_env(environ, settings.org.message_domain)
    where = str(options.config / SETTINGS_FILE)
    return letterhead_for(settings, environ, sender, where)


def _correlator(config: Config) -> Correlator:
    return Correlator(
        {n: s.depends_on for n, s in config.systems.items()}, config.settings.correlation_window
    )


def probing_runtime(
    config: Config, store: Store, clock: Clock, session: aiohttp.ClientSession
) -> Monitor:
    """Probes -> state -> store, for the systems ``config`` declares."""
    # The scheduler's pool is the limit on probes at once: as many as connections.
    return Monitor(config, store, clock, Prober(session, clock, take_turns=False))


def notifier_for(
    config: Config,
    messages: Path,
    store: Store,
    clock: Clock,
    manage_link: Callable[[str], str] | None = None,
) -> Notifier:
    """Incidents -> audience -> composer -> outbox, as ``config`` and the templates say
    (``manage_link``: each person's link to manage what they hear, None for none)."""
    settings = config.settings
    info = systems_info(config)
    return Notifier(
        store=store,
        composer=Composer.from_settings(messages, settings, info, manage_link),
        settings=settings,
        systems=info,
        correlator=_correlator(config),
        clock=clock,
        windows=config_windows(config),
    )


def _unless_unavailable(read: Callable[[], Awaitable[int]]) -> Callable[[], Awaitable[int | None]]:
    """``read``, giving None while the store cannot answer: /metrics leaves that figure out
    and still answers (a database server that is down is when it is needed most)."""

    async def reading() -> int | None:
        try:
            return await read()
        except StoreUnavailable:
            return None

    return reading


@dataclass(eq=False)
class App:
    """One monitor process: its parts, built by ``start`` in the order data flows through them
    (each from the ones before it), then wired together. ``start`` raises ConfigError when the
    configuration is refused."""

    options: Options
    clock: Clock = field(default_factory=SystemClock)
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    ssl_context: ssl.SSLContext | None = None
    tick_every: float = 1.0
    flush_every: float = 1.0
    prune_every: float = 60.0
    serve_http: bool = True
    watch_files: bool = True
    stop_grace: float = 10.0
    # Off (``monitor run --no-upgrade``): a database whose schema is behind is refused, not
    # upgraded on start.
    upgrade_schema: bool = True

    # The parts, in the order data flows through them; ``start`` builds them.
    config: Config = field(init=False, repr=False)  # the one running: a reload replaces it
    store: Store = field(init=False, repr=False)
    metrics: Metrics = field(init=False, repr=False)
    session: aiohttp.ClientSession = field(init=False, repr=False)  # the probes' and channels'
    monitor: Monitor = field(init=False, repr=False)  # probes -> state -> store
    notifier: Notifier = field(init=False, repr=False)  # incidents -> composer -> outbox
    delivery: Delivery = field(init=False, repr=False)  # outbox -> channels
    oncall: OnCall = field(init=False, repr=False)
    scheduler: ProbeScheduler = field(init=False, repr=False)
    membership: Membership = field(init=False, repr=False)  # this replica among the others
    web_services: Services = field(init=False, repr=False)  # all the web may use
    links: LinkState = field(init=False, repr=False)  # the signed links in customer messages
    subscriptions: Desk = field(init=False, repr=False)  # the status page's subscribe form
    runner: web.AppRunner | None = field(default=None, init=False, repr=False)  # serve_http
    tasks: list[asyncio.Task[None]] = field(default_factory=list, init=False, repr=False)
    _beats: set[asyncio.Task[None]] = field(default_factory=set, init=False, repr=False)
    shards: set[int] = field(default_factory=set, init=False)  # the outbox shards sent from here

    # How the running configuration came to be (see ``reload``).
    config_loaded_at: float = field(default=0.0, init=False)
    reload_refused_at: float | None = field(default=None, init=False)
    reload_problems: list[Problem] = field(default_factory=list, init=False)
    stopping: bool = field(default=False, init=False)

    @property
    def database(self) -> DatabaseLocation:
        """The database ``options.db`` names; ``str`` of it never shows a password."""
        return database_location(str(self.options.db))

    async def start(self) -> None:
        self.config = load_config(self.options.config, self.environ)
        self.config_loaded_at = self.clock.now()
        settings = self.config.settings
        # Refused before anything starts: no message may go out unsigned for want of a key.
        mail_letterhead = letterhead(self.config, self.environ, self.options)
        store = await open_store(self.database, upgrade=self.upgrade_schema)
        if store.schema.before != store.schema.after:
            event(log, "schema upgraded", change=str(store.schema))
        self.store = store
        self.metrics = Metrics()
        self.session = make_session(settings.http, self.ssl_context)
        self.monitor = probing_runtime(self.config, self.store, self.clock, self.session)
        await self.monitor.restore()
        self.monitor.owned = set()  # until the first heartbeat says which are this replica's
        self.links = LinkState(self.environ, self.clock)
        self.links.configure(settings.public_url)
        self.notifier = notifier_for(
            self.config, self.options.messages, self.store, self.clock, self.links.manage_link()
        )
        self.delivery = Delivery(
            self.store,
            channels_from_env(
                self.session, self.environ, settings.org.message_domain, mail_letterhead
            ),
            self.clock,
            # All of them (a replica alone): no filter, the outbox read as it always was.
            shards=lambda: None if len(self.shards) == OUTBOX_SHARDS else self.shards,
        )
        if self.delivery.channels.email is not None:
            self.delivery.channels.email.list_unsubscribe = self.links.list_unsubscribe
        if not self.delivery.channels.configured():
            event(log, NO_CHANNEL, logging.WARNING)
        if self.links.why_not:
            event(log, NO_LINKS + self.links.why_not, logging.WARNING)
        self.subscriptions = Desk(
            self.store,
            lambda: self.links.links,
            self.clock,
            lambda: self.config.settings,
            lambda: systems_info(self.config),
            # The notifier's composer: a reload that validates swaps in the new templates.
            writer=lambda: self.notifier.composer,
            wake=lambda: self.delivery.wake(),
            counted=lambda step: self.metrics.subscriptions.labels(event=step).inc(),
            # Planned work already announced is told to them now (any replica may: the
            # outbox's key keeps it once).
            subscribed=self.notifier.tell_subscriber,
        )
        self.oncall = OnCall(settings.oncall)
        self.scheduler = ProbeScheduler(self.clock, self._probe, settings.http.max_connections)
        try:
            self.membership = await self._join(
                settings.replicas.heartbeat, settings.replicas.takeover
            )
        except ReplicaNameError:
            await self.session.close()
            await self.store.close()
            raise
        self.monitor.holder = self.membership.name
        self.notifier.files_agree = self.membership.files_agree
        self.web_services = self._web_services()
        self._connect()
        # The first tick applies what a crash cut off before anything else.
        self.notifier.resume()

        if self.serve_http:
            # Bind first: a taken port fails the start before anything runs in the background.
            self.runner = web.AppRunner(build_web_app(self.web_services), access_log=None)
            await self.runner.setup()
            host, _, port = self.options.listen.rpartition(":")
            try:
                await web.TCPSite(self.runner, host or "0.0.0.0", int(port)).start()
            except OSError:
                await self.runner.cleanup()
                await self.session.close()
                await self.store.close()
                raise
        await self.membership.beat()  # this replica's share of the checks, scheduled
        self.scheduler.start()
        self.tasks = [
            asyncio.create_task(self._every(self.flush_every, self.monitor.flush), name="flush"),
            asyncio.create_task(self._prune_loop(), name="prune"),
            asyncio.create_task(self._heartbeat_loop(), name="heartbeat"),
            asyncio.create_task(self._tick_loop(), name="notifier"),
            asyncio.create_task(
                self.delivery.run(stopping=lambda: self.stopping, active=self.membership.holds),
                name="delivery",
            ),
            asyncio.create_task(self.oncall.run(), name="oncall"),
        ]
        if self.watch_files:
            self.tasks.append(asyncio.create_task(self._watch(), name="watch"))
        event(
            log,
            "started",
            systems=len(self.config.systems),
            listen=self.options.listen,
            db=str(self.database),  # a URL without its password
            replica=self.membership.name,
            probing=len(self.membership.held) - len(self.shards),
            outbox_shards=len(self.shards),
            leading=self.membership.leads(),
        )

    async def _join(self, heartbeat: float, takeover: float) -> Membership:
        """This replica among the others sharing the database: its name (refused if another
        live process has it) and its membership, not yet beating."""
        name = replica_name(self.environ)
        timing = Timing(heartbeat, takeover)
        host, pid = socket.gethostname(), os.getpid()
        await check_name_free(self.store, name, self.clock.now, asyncio.sleep, heartbeat, host, pid)
        membership = Membership(
            store=self.store,
            clock=self.clock,
            name=name,
            timing=timing,
            declared=lambda: [*self.config.systems, *SHARD_UNITS],
            windows=lambda: windows_digest(self.config),
            gained=self._take_up,
            losing=self._let_go,
            host=host,
            pid=pid,
        )
        membership.on_lead.append(self._lead_changed)
        return membership

    async def _take_up(self, units: set[str]) -> None:
        """Probe the checks of ``units`` from now on, carrying on from their saved state, and
        send from its outbox shards."""
        systems, shards = split_units(units)
        self.shards |= shards
        await self.monitor.take_up(systems)
        for name in systems:
            if name in self.config.systems:
                self.scheduler.schedule(name, self.config.systems[name].every)
        if shards:
            self.delivery.wake()

    async def _let_go(self, units: set[str]) -> None:
        """Stop probing the checks of ``units`` (their state saved for the next holder) and
        sending from its shards (the messages under way settled first)."""
        systems, shards = split_units(units)
        for name in systems if not self.stopping else ():  # stopping: the scheduler is down
            self.scheduler.remove(name)
        await self.monitor.let_go(systems)
        self.shards -= shards
        await self.delivery.let_go(shards)

    async def _lead_changed(self, leading: bool) -> None:
        """Leading: the notifier starts from the store as it is (what the last leader left
        half done, and every replica's transitions)."""
        if leading:
            self.notifier.resume()

    async def _replica_view(self) -> ReplicaView:
        timing = self.membership.timing
        live = await self.store.replica_overview(self.clock.now() - timing.dead_after)
        return ReplicaView(self.membership.name, timing.takeover, live)

    def _beat_soon(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop (a test reloading by hand): the next heartbeat does it
        task = loop.create_task(self.membership.beat(), name="beat")
        self._beats.add(task)
        task.add_done_callback(self._beats.discard)

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.membership.timing.heartbeat)
            try:
                await self.membership.beat()
                if self.membership.live > 1:
                    await self.monitor.refresh_others()
            except StoreUnavailable:
                pass  # said by the membership and the monitor; the next beat tries again
            except Exception:
                log.exception("heartbeat failed")

    def _connect(self) -> None:
        """Each part hears what the one before it decides; metrics and on-call hear it all.
        (The notifier reads the monitor's transitions from the store, where every process on
        the database saves its own.)"""
        self.monitor.on_result.append(self.metrics.record_probe)
        self.notifier.on_decided.append(lambda _items: self.delivery.wake())
        self.notifier.on_incident.append(self._count_incident)
        self.delivery.on_outcome.append(self._count_message)
        self.notifier.on_incident.append(self._tell_oncall)
        self.notifier.on_reminder.append(
            lambda incident, promise, now: self.oncall.tell(
                reminder(
                    incident, promise, now, {n: s.title for n, s in self.config.systems.items()}
                )
            )
        )
        self.metrics.observe_present(
            lambda: self.monitor.states,
            _unless_unavailable(self.store.open_incident_count),
            _unless_unavailable(self.store.pending_count),
            self._store_up,
            open_promises=_unless_unavailable(self._open_promise_count),
        )
        self.metrics.observe_maintenance(self._maintenance_active)
        self.metrics.observe_replica(
            lambda: ReplicaFigures(
                live=self.membership.live,
                owned=len(self.membership.held) - len(self.shards),
                leading=self.membership.leads(),
                claimed=self.delivery.claimed,
            )
        )
        self.metrics.config_reloads.labels(result="success").inc()
        self.metrics.config_last_success.set(self.clock.now())
        self.metrics.config_last_reload_ok.set(1)

    async def _open_promise_count(self) -> int:
        return len(await self.store.open_promises())

    async def _schedule(self) -> Schedule:
        """Every maintenance window there is now: the files' and the API's (the store's, so
        any replica says the same); the files' alone while the store cannot answer."""
        try:
            return await self.notifier.read_schedule()
        except StoreUnavailable:
            return Schedule(self.notifier.windows)

    async def _maintenance_active(self) -> dict[str, bool]:
        """``monitor_maintenance_active``: each system a window is about, in one now or not."""
        schedule = await self._schedule()
        active = schedule.active(self.clock.now())
        return {system: system in active for system in schedule.systems()}

    async def _planned_work(self) -> list[PublicWindow]:
        """Planned work under way and coming, as the status page may show it."""
        titles = {n: s.title for n, s in self.config.systems.items()}
        return public_windows(await self._schedule(), titles, self.clock.now())

    def _web_services(self) -> Services:
        """What the web may use of this process: reads, and the few operations on-call has."""
        return Services(
            clock=self.clock,
            store=self.store,
            incidents=self.notifier,
            config=lambda: self.config,
            states=lambda: self.monitor.states,
            reload=self.reload,
            ready=self.ready,
            warnings=self.warnings,
            store_problem=self.store_problem,
            last_reload=lambda: LastReload(
                self.config_loaded_at, self.reload_refused_at, self.reload_problems
            ),
            channels=lambda: self.delivery.channels.configured(),
            metrics_page=self.metrics.page,
            replicas=self._replica_view,
            api_token=self.environ.get(TOKEN_VARIABLE, ""),
            maintenance=self.notifier,
            planned_work=self._planned_work,
            subscriptions=lambda: self.subscriptions if self.links.links else None,
        )

    async def _prune_loop(self) -> None:
        while True:
            await asyncio.sleep(self.prune_every)
            try:
                await self._prune()
            except Exception:
                log.exception("pruning failed")

    async def _prune(self) -> None:
        # The leader alone prunes: every replica deleting the same rows is the same work done
        # N times over (10,000 checks' results cost each replica a sixth of its CPU).
        if not self.membership.leads():
            return
        await self.monitor.prune()
        settings = self.config.settings
        keep = max(settings.attempt_lookback, settings.retention.max_age)
        with contextlib.suppress(StoreUnavailable):
            await self.store.prune_attempts(self.clock.now() - keep)
            await self._prune_notices(max(settings.retention.max_age, 86400.0))
            # Confirmation mails sent or given up on: kept as long as incidents' messages.
            await self.store.prune_subscription_mails(self.clock.now() - settings.retention.max_age)

    async def _prune_notices(self, keep: float) -> None:
        """Planned work told as over more than ``keep`` ago goes, with its messages, a batch of
        rows at a time, yielding between them."""
        before = self.clock.now() - keep
        for notice in await self.store.prunable_maintenance_notices(before):
            deleted = 1
            while deleted:
                deleted = await self.store.prune_maintenance_notice(notice, before)
                await asyncio.sleep(0)

    async def _probe(self, name: str, lateness: float) -> None:
        await self.monitor.probe(name, lateness)

    async def _watch(self) -> None:
        """Reload when on-call edits a check file or a template."""
        paths = [p for p in (self.options.config, self.options.messages) if p.exists()]
        async for _changes in watchfiles.awatch(*paths, debounce=500, recursive=True):
            self.reload()

    async def _count_incident(
        self, incident: Incident, change: Change, systems: Sequence[str]
    ) -> None:
        if change is Change.OPENED:
            self.metrics.incidents.inc()

    async def _tell_oncall(
        self, incident: Incident, change: Change, systems: Sequence[str]
    ) -> None:
        if not self.oncall.urls:
            return
        opened = change is Change.OPENED
        notice = describe(
            incident,
            change,
            systems,
            {n: s.title for n, s in self.config.systems.items()},
            await self.notifier.audience_size(incident) if opened else None,
            self.config.settings.notify_after,
            incident.held,
            self.notifier.maintenance_of(incident),
            self.config.settings.maintenance_grace,
        )
        if notice is not None:
            self.oncall.tell(notice)
            if opened:  # customers' messages say when and how the team was alerted
                await self.notifier.record_alert(incident.id, self.oncall.routes)

    def _count_message(self, item: OutboxItem, outcome: str, address: Address | None) -> None:
        channel = address.kind if address is not None else "none"
        self.metrics.messages.labels(channel=channel, kind=item.kind, outcome=outcome).inc()
        if outcome == "undeliverable":
            self.oncall.delivery_failed(channel, item.last_error)

    async def _every(self, seconds: float, work: Callable[[], Awaitable[None]]) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                await work()
            except Exception:
                log.exception("periodic work failed")

    async def _tick_loop(self) -> None:
        while True:
            try:
                if self.membership.leads():
                    await self.notifier.tick()
            except StoreUnavailable as exc:
                event(log, "notifier waits for the store", logging.WARNING, error=str(exc))
            except Exception:
                log.exception("notifier tick failed")
            await asyncio.sleep(self.tick_every)

    def reload(self) -> list[Problem]:
        """Load the check files and templates again and apply them; on any problem change
        nothing and return the problems (also logged, counted, and shown on /readyz)."""
        try:
            config = load_config(self.options.config, self.environ)
            info = systems_info(config)
            self.links.configure(config.settings.public_url)
            composer = Composer.from_settings(
                self.options.messages, config.settings, info, self.links.manage_link()
            )
            problems = composer.validate()
            email = self.delivery.channels.email
            try:
                mail_letterhead = letterhead(
                    config, self.environ, self.options, email.sender if email else None
                )
            except ConfigError as exc:
                problems.extend(exc.problems)
        except ConfigError as exc:
            problems = exc.problems
        if problems:
            if [str(p) for p in problems] != [str(p) for p in self.reload_problems]:
                self.oncall.tell(refused_notice(problems))
            self.reload_problems = problems
            self.reload_refused_at = self.clock.now()
            self.metrics.config_reloads.labels(result="failure").inc()
            self.metrics.config_last_reload_ok.set(0)
            event(
                log,
                "reload refused; the running configuration stays",
                logging.ERROR,
                problems=[str(p) for p in problems],
            )
            return problems
        added, changed, removed = self.monitor.apply_config(config)
        for name in removed:
            self.scheduler.remove(name)
            self.metrics.forget_system(name)
        for name in changed & self.membership.held:
            self.scheduler.schedule(name, config.systems[name].every)
        # Added checks are taken, and removed ones handed over, by a heartbeat now (another
        # replica may be the one to probe them).
        self._beat_soon()
        self.config = config
        self.notifier.reconfigure(
            config.settings, info, composer, _correlator(config), config_windows(config)
        )
        if email is not None:
            email.letterhead = mail_letterhead
        if self.reload_problems:
            self.oncall.tell(
                Notice(
                    "Configuration reloaded: the earlier problems are fixed",
                    f"{len(config.systems)} systems; the new configuration runs.",
                    "success",
                )
            )
        self.reload_problems = []
        self.reload_refused_at = None
        self.config_loaded_at = self.clock.now()
        self.metrics.config_reloads.labels(result="success").inc()
        self.metrics.config_last_success.set(self.clock.now())
        self.metrics.config_last_reload_ok.set(1)
        event(
            log,
            "reloaded",
            added=sorted(added),
            changed=sorted(changed),
            removed=sorted(removed),
        )
        return []

    def ready(self) -> str | None:
        """None when the monitor can do its job, else why not.

        Only the monitor's own life decides this (started, and not yet stopping): a sidecar's
        readiness can take the whole pod out of its Service, so a refused reload (the last good
        configuration keeps running), a store refusing writes for a while (probing goes on in
        memory) or a mail server that is down (the outbox keeps every message) are ``warnings``
        instead, shown on /readyz, ``GET /api/v1/status``, /metrics, the log and to on-call.
        """
        if self.stopping or not self.scheduler.running:
            return "the scheduler is not running (starting or stopping)"
        return None

    async def store_problem(self) -> str | None:
        """None while the store takes writes, else what it says."""
        try:
            await self.store.check_writable()
        except StoreUnavailable as exc:
            return str(exc)
        return None

    async def _store_up(self) -> bool:
        return await self.store_problem() is None

    def warnings(self, store: str | None) -> list[str]:
        """What is wrong that does not stop the monitor doing its job, each on one line, given
        what ``store_problem`` said."""
        found = []
        if self.reload_problems:
            found.append(
                "the last reload was refused (the previous configuration is running): "
                + "; ".join(str(p) for p in self.reload_problems)
            )
        if store is not None:
            found.append(f"{store} (probing goes on in memory; decisions wait for the store)")
        if not self.delivery.channels.configured():
            found.append(NO_CHANNEL)
        if self.links.why_not:
            found.append(NO_LINKS + self.links.why_not)
        return found

    async def stop(self) -> None:
        """Stop probing, let in-flight sends finish (or stay in the outbox), write what is
        buffered, close everything."""
        self.scheduler.shutdown()
        self.stopping = True
        self.delivery.wake()
        delivery = [t for t in self.tasks if t.get_name() == "delivery"]
        # Sends already under way finish (or time out and stay pending in the outbox).
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*delivery), self.stop_grace)
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.runner is not None:
            await self.runner.cleanup()
        await self.monitor.flush()
        await self.membership.leave()  # the others take over at their next heartbeat
        await self.delivery.channels.close()
        await self.session.close()
        await self.store.close()
        event(log, "stopped")
