"""Several `monitor run` replicas on one PostgreSQL database, as the process tests drive them.

A ``Fleet`` is the stage: payment, login and crm played by ``Target`` servers (each request
stamped with the time it arrived), one ``MailCatcher``, the check files every replica reads, and
the replicas, each a ``Replica`` (a ``Killable`` that knows its name, when it was killed and
whether its log says it leads). Every moment is recognised by what the outside world sees (a log
line, a message reaching the catcher, an HTTP answer), never by sleeping::

    async with fleet(tmp_path, pg_database, people=2000) as stage:
        await stage.start("b")
        ...
        stage.kill_leader_on_mail("(b) acknowledgements a third out", "acknowledge", 667)
        victim, held = await stage.killed("(b) acknowledgements a third out")
        takeover = await stage.taken_over(victim, held)  # asserts the bound
"""

from __future__ import annotations

import functools
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import psycopg
from killable import Killable, LogLine, until
from postgres import Database
from process import REPO, free_port
from targets import Mode, Target
from test_faults import kind_of, message_id, person_of
from test_postgres_faults import import_people

from monitor.demo.mailcatcher import CaughtMessage, MailCatcher
from monitor.replicas.sharing import assign

TOKEN = "replicas-test-token"
SYSTEMS = ("payment", "login", "crm")
TITLES = {"payment": "Online payments", "login": "Signing in", "crm": "Your order history"}
EVERY = 0.3  # each check's interval, in seconds
HEARTBEAT = 0.2
TAKEOVER = 2.0
# A probe the killed process sent just before its SIGKILL can still reach its target a few
# milliseconds after it: requests this soon after a kill are not another replica's.
IN_FLIGHT = 0.1
# What a loaded 2-core machine (three monitors, the database server, this test) adds to the
# takeover bound (``takeover`` + one interval): a late heartbeat, a late probe.
SLACK = 1.0
DELIVERY_CONCURRENCY = 16  # what one replica may have handed to the mail server unmarked

MONITOR_YAML = """\
org: {name: Example Ltd, support_email: help@example.com}
notify_after: %(notify_after)s
correlation_window: 5m
replicas: {heartbeat: %(heartbeat)dms, takeover: %(takeover)dms}
"""

CHECK = """\
name: %(name)s
title: %(title)s
every: %(every)dms
timeout: %(timeout)dms
fail_after: 2
recover_after: 1
workaround: Try again later.
probe: {http: {url: "%(url)s", expect: {status: [200]}}}
"""


class Stamped(list[str]):
    """A ``Target.requests`` list that also keeps when each request arrived (monotonic)."""

    def __init__(self) -> None:
        super().__init__()
        self.times: list[float] = []

    def append(self, request: str, /) -> None:
        super().append(request)
        self.times.append(time.monotonic())

    def first_after(self, moment: float) -> float | None:
        return next((t for t in self.times if t > moment), None)


class Replica(Killable):
    """One replica's ``monitor run``, killed and restarted under the same name."""

    def __init__(self, name: str, env: Mapping[str, str], base_url: str) -> None:
        super().__init__(env, base_url, TOKEN)
        self.name = name
        self.killed_at = 0.0  # time.monotonic() of the last kill
        self.killed_wall = 0.0  # and time.time(), to compare with the log's "ts"
        self.armed_for: str | None = None  # the moment ``kill_on_log`` waits for
        self._began = 0  # where this incarnation's log starts in ``lines``

    async def start(self) -> None:
        self._began = len(self.lines)
        await super().start()

    def kill(self, moment: str) -> None:
        if self.alive:
            self.killed_at, self.killed_wall = time.monotonic(), time.time()
        super().kill(moment)

    def kill_on_log(self, moment: str, matches: Callable[[LogLine], bool]) -> None:
        self.armed_for = moment
        super().kill_on_log(moment, matches)

    def disarm(self) -> None:
        """Kill at no log line after all."""
        super().kill_on_log("never", lambda _line: False)
        self.armed_for = None

    def lead_line(self) -> LogLine | None:
        """This incarnation's log line saying it leads, if that is the last word on it."""
        for line in reversed(self.lines[self._began :]):
            if line.get("event") == "leading":
                return line
            if line.get("event") == "no longer leading":
                return None
        return None

    def logged_since_start(self, event: str) -> list[LogLine]:
        return [line for line in self.lines[self._began :] if line.get("event") == event]


def write_checks(directory: Path, urls: Mapping[str, str], notify_after: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "monitor.yaml").write_text(
        MONITOR_YAML
        % {"notify_after": notify_after, "heartbeat": HEARTBEAT * 1000, "takeover": TAKEOVER * 1000}
    )
    for name, url in urls.items():
        timing = {"every": EVERY * 1000, "timeout": EVERY * 1000 - 50}
        (directory / f"{name}.yaml").write_text(
            CHECK % {"name": name, "title": TITLES[name], "url": url, **timing}
        )
    return directory


def is_transition(system: str, current: str) -> Callable[[LogLine], bool]:
    return lambda line: (
        line.get("event") == "transition"
        and line.get("system") == system
        and line.get("current") == current
    )


def is_event(name: str) -> Callable[[LogLine], bool]:
    return lambda line: line.get("event") == name


class Caught(NamedTuple):
    """One message the catcher accepted: its Message-ID, whom it is for, and its kind."""

    id: str
    person: str
    kind: str
    recipients: tuple[str, ...]

    @classmethod
    def of(cls, message: CaughtMessage) -> Caught:
        return cls(message_id(message), person_of(message), kind_of(message), message.rcpt_tos)


@dataclass
class Takeover:
    """How long a killed replica's checks waited for another replica, by check (seconds from
    the kill to the first probe of it that another replica made)."""

    replica: str
    probed_after: dict[str, float]


@dataclass
class Tally:
    """What the people received, checked against the delivery contract."""

    messages: int
    repeats: int  # a Message-ID delivered again (allowed only for what a dead sender had in flight)


@dataclass
class Fleet:
    tmp: Path
    database: Database
    catcher: MailCatcher
    targets: dict[str, Target]
    config: Path
    people: set[str]
    replicas: dict[str, Replica] = field(default_factory=dict)
    takeovers: list[Takeover] = field(default_factory=list)
    # The catcher's messages parsed so far (a header takes ~20 us to read: polled every 50 ms,
    # 4,000 messages read again each time would starve the catcher of CPU), and who got what.
    _caught: list[Caught] = field(default_factory=list)
    _told: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))

    # the replicas ------------------------------------------------------------------------

    def add(self, name: str, db_url: str | None = None) -> Replica:
        """A replica called ``name`` (not started), on the database directly or at ``db_url``."""
        port = free_port()
        env = {
            "MONITOR_CONFIG": str(self.config),
            "MONITOR_MESSAGES": str(REPO / "messages"),
            "MONITOR_DB": db_url or self.database.url,
            "MONITOR_LISTEN": f"127.0.0.1:{port}",
            "MONITOR_SMTP_URL": self.catcher.url,
            "MONITOR_SMTP_FROM": "status@example.com",
            "MONITOR_API_TOKEN": TOKEN,
            "MONITOR_REPLICA": name,
        }
        replica = self.replicas[name] = Replica(name, env, f"http://127.0.0.1:{port}")
        return replica

    async def start(self, *names: str) -> None:
        """Start these replicas (added first if new) and wait until each answers /readyz."""
        for name in names:
            replica = self.replicas.get(name) or self.add(name)
            await replica.start()
        for name in names:
            ready = functools.partial(_ready, self.replicas[name])
            await self.until(f"replica {name} ready", ready)

    @property
    def alive(self) -> list[Replica]:
        return [r for r in self.replicas.values() if r.alive]

    def leader(self) -> Replica | None:
        """The live replica whose log said last that it leads (a lapsed lead is said at the
        next heartbeat, so two may say so for a moment: the later one leads)."""
        leading = [(line["ts"], r.name) for r in self.alive if (line := r.lead_line())]
        return self.replicas[max(leading)[1]] if leading else None

    async def view(self, replica: Replica | None = None) -> dict[str, dict[str, Any]] | None:
        """GET /api/v1/replicas of ``replica`` (else of any live one): each live replica by
        name, with its ``checks`` and ``leads``; None while it does not answer."""
        asked = replica or next(iter(self.alive), None)
        found = None if asked is None else await asked.get("/api/v1/replicas")
        return None if found is None else {r["name"]: r for r in found["replicas"]}

    async def settled(self, names: set[str]) -> bool:
        """The replicas ``names`` each list exactly themselves as live, each holding its share
        of the checks (rendezvous hashing's: until then one may still hold checks it will hand
        over), and exactly one of them leading."""
        owners = assign(dict.fromkeys(names, SYSTEMS)).values()
        share = {name: list(owners).count(name) for name in names}
        for name in names:
            seen = await self.view(self.replicas[name])
            if seen is None or {n: r["checks"] for n, r in seen.items()} != share:
                return False
            if sum(r["leads"] for r in seen.values()) != 1:
                return False
        return True

    async def held_by(self, name: str) -> set[str]:
        """The checks the database names ``name`` the holder of (a dead replica keeps them
        until another takes them over, at least ``takeover - heartbeat`` after its death)."""
        async with await psycopg.AsyncConnection.connect(self.database.url) as conn:
            cursor = await conn.execute(
                "SELECT system FROM check_owners WHERE replica = %s "
                "AND system NOT LIKE 'outbox:%%'",
                (name,),
            )
            return {str(row[0]) for row in await cursor.fetchall()}

    # killing -----------------------------------------------------------------------------

    def kill_on_log(self, moment: str, matches: Callable[[LogLine], bool], *names: str) -> None:
        """Kill whichever of these replicas first logs a line that ``matches``; the others are
        disarmed as soon as ``killed(moment)`` sees it."""
        for name in names:
            self.replicas[name].kill_on_log(moment, matches)

    def kill_leader_on_mail(self, moment: str, kind: str, count: int) -> None:
        """Kill the leading replica as the catcher accepts the ``count``-th ``kind`` message:
        the server has it, the sender has not heard "250 OK" (so it cannot have marked it
        sent)."""
        seen = sum(1 for m in self.caught() if m.kind == kind)

        def arrived(message: CaughtMessage) -> None:
            nonlocal seen
            seen += kind_of(message) == kind
            leader = self.leader()
            if seen >= count and leader is not None:
                self.catcher.on_message = None
                leader.kill(moment)

        self.catcher.on_message = arrived

    async def killed(self, moment: str) -> tuple[Replica, set[str]]:
        """Wait until a replica was killed at ``moment``; that replica and the checks it held
        (read at once, before anyone can have taken them over)."""
        victim: Replica = await self.until(
            f"a replica killed at {moment!r}",
            lambda: next((r for r in self.replicas.values() if r.kills[-1:] == [moment]), None),
            every=0.01,
        )
        await victim.killed(moment)
        for other in self.replicas.values():
            if other.armed_for == moment:
                other.disarm()
        return victim, await self.held_by(victim.name)

    async def taken_over(self, victim: Replica, held: set[str]) -> Takeover:
        """Wait until the live replicas hold every check again without ``victim`` (on
        /api/v1/replicas) and another replica probed each check it held; how long after the
        kill each was probed again."""

        async def without_victim() -> bool:
            seen = await self.view()
            return (
                seen is not None
                and victim.name not in seen
                and sum(r["checks"] for r in seen.values()) == len(SYSTEMS)
            )

        await self.until(f"{victim.name}'s checks taken over", without_victim)
        probed_after: dict[str, float] = {}
        for system in sorted(held):
            first: float = await self.until(
                f"{system} probed after {victim.name} was killed",
                functools.partial(self._stamps(system).first_after, victim.killed_at + IN_FLIGHT),
            )
            probed_after[system] = round(first - victim.killed_at, 2)
        takeover = Takeover(victim.name, probed_after)
        self.takeovers.append(takeover)
        bound = TAKEOVER + EVERY + SLACK
        assert all(s <= bound for s in probed_after.values()), (takeover, bound)
        return takeover

    async def lead_taken_over(self, victim: Replica) -> float:
        """Wait until another replica leads; seconds from ``victim``'s kill to its log line."""

        def new_leader() -> LogLine | None:
            leader = self.leader()
            return None if leader is None else leader.lead_line()

        line: LogLine = await self.until(f"a leader after {victim.name}", new_leader)
        return round(max(0.0, float(line["ts"]) - victim.killed_wall), 2)

    # the outside world -------------------------------------------------------------------

    def _stamps(self, system: str) -> Stamped:
        stamps = self.targets[system].requests
        assert isinstance(stamps, Stamped)
        return stamps

    async def fail(self, system: str) -> None:
        await self.targets[system].set_mode(Mode.ERROR)

    async def recover(self, system: str) -> None:
        await self.targets[system].set_mode(Mode.HEALTHY)

    def caught(self) -> list[Caught]:
        """Every message the catcher accepted, in order, each parsed once."""
        for message in self.catcher.messages[len(self._caught) :]:
            caught = Caught.of(message)
            self._caught.append(caught)
            self._told[caught.kind].add(caught.person)
        return self._caught

    def people_with(self, kind: str) -> set[str]:
        self.caught()  # reads the messages that came since
        return self._told[kind]

    async def incidents(self) -> list[dict[str, Any]]:
        for replica in self.alive:
            found = await replica.get("/api/v1/incidents")
            if found is not None:
                return list(found["incidents"])
        return []

    async def all_told(self, kind: str) -> bool:
        """Every person has a ``kind`` message, and the API says nothing is pending."""
        if self.people_with(kind) != self.people:
            return False
        incidents = await self.incidents()
        return bool(incidents) and all(i["counts"]["pending"] == 0 for i in incidents)

    async def until(self, what: str, check: Callable[[], Any], every: float = 0.1) -> Any:
        """``killable.until``, failing at once (with its log) if a replica died by itself."""

        def checked() -> Any:
            for replica in self.replicas.values():
                process = replica.process
                if process is not None and process.returncode not in (None, -9):
                    raise AssertionError(f"replica {replica.name} died: {replica.tail()}")
            return check()

        def explain() -> str:
            return "\n".join(f"{r.name}: {r.tail(15)}" for r in self.replicas.values())

        return await until(what, checked, every=every, explain=explain)

    def tally(self) -> Tally:
        """Each person: exactly one acknowledgement and one resolved message (one distinct
        Message-ID each, addressed to them, the acknowledgement first); nobody else anything.
        A Message-ID may arrive twice (the in-flight rule), never a second one of a kind."""
        ids: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
        for message in self.caught():
            assert message.recipients == (f"{message.person}@example.com",), message
            ids[message.person][message.kind].append(message.id)
        assert set(ids) == self.people, sorted(set(ids) ^ self.people)[:10]
        for person, kinds in ids.items():
            distinct = {kind: sorted(set(each)) for kind, each in kinds.items()}
            assert {k: len(v) for k, v in distinct.items()} == {"acknowledge": 1, "resolved": 1}, (
                person,
                distinct,
            )
        order = [f"{m.person} {m.kind}" for m in self.caught()]
        first = {entry: n for n, entry in reversed(list(enumerate(order)))}
        late = [p for p in self.people if first[f"{p} resolved"] < first[f"{p} acknowledge"]]
        assert not late, f"resolved before acknowledged: {late[:5]}"
        delivered = Counter(m.id for m in self.caught())
        return Tally(sum(delivered.values()), sum(n - 1 for n in delivered.values()))

    async def stop(self) -> dict[str, int | None]:
        """SIGTERM every live replica (as an orchestrator stops them); each one's exit code."""
        for replica in self.alive:
            await replica.stop()
        return {
            r.name: None if r.process is None else r.process.returncode
            for r in self.replicas.values()
        }


async def _ready(replica: Replica) -> bool:
    status, body = await replica.readyz()
    return status == 200 and body.startswith("ready")


@asynccontextmanager
async def fleet(
    tmp: Path, database: Database, people: int = 0, notify_after: str = "3s"
) -> AsyncIterator[Fleet]:
    """The stage, every system healthy, ``people`` (all following payment) imported with
    ``monitor users import``; no replica started yet. On exit every replica is stopped."""
    subscribed = {f"p{i:04d}": ("payment",) for i in range(people)}
    if subscribed:
        await import_people(tmp, database, subscribed)
    async with AsyncExitStack() as stack:
        catcher = await stack.enter_async_context(MailCatcher())
        targets = {name: await stack.enter_async_context(Target()) for name in SYSTEMS}
        for target in targets.values():
            target.requests = Stamped()
        config = write_checks(
            tmp / "checks", {n: t.url_for("/healthz") for n, t in targets.items()}, notify_after
        )
        stage = Fleet(tmp, database, catcher, targets, config, set(subscribed))
        try:
            yield stage
        finally:
            for replica in stage.replicas.values():
                await replica.stop()
