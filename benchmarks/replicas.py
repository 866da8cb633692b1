"""Several replicas on one PostgreSQL (issue #16): probing and sending shared, one killed.

    python benchmarks/replicas.py                 # 1, 2, 3 replicas; 10,000 checks, 100,000 people
    python benchmarks/replicas.py --people 30000  # a shorter fan-out
    python benchmarks/replicas.py --replicas 1,3 --checks 2000 --people 5000 --window 10  # quick
    python benchmarks/replicas.py --mail-delay 0.01  # a mail server taking 10 ms a message

Everything talks to 127.0.0.1 only, each part a process of its own:

- one throwaway PostgreSQL cluster for the whole run (``tests/postgres.py``, PostgreSQL's durable
  defaults), with a new database for each replica count, so every count starts alike;
- ``replicas_target.py`` answers every check (``/bench-NNNNN``, and ``/payment``, which is made
  to fail for the fan-out) and notes when a killed replica's checks are probed again;
- for each count, ``smtp_sink.py --ids FILE`` accepts every message and appends its Message-ID
  to FILE, which this script follows (who got what, any Message-ID twice);
- the replicas: real ``monitor run`` processes named r1..rN (``MONITOR_REPLICA``), each on its
  own port, with the same check files, ``MONITOR_DB`` and ``MONITOR_SMTP_URL``. The checks are
  ``probes.py``'s (``--checks`` HTTP checks every ``--every`` s, fresh connections) plus
  ``payment`` (every 2 s, ``fail_after: 2``); ``notify_after: 2s``; ``replicas: {heartbeat: 2s,
  takeover: 10s}`` (the default takeover is 30 s: shortened so a run is shorter, ``--takeover``).

For each replica count N (``--replicas 1,2,3``): the people (all following payment) are imported
with ``monitor users import``; the N replicas start at once; the run waits until each one's
``/api/v1/replicas`` lists exactly the N of them, each holding its rendezvous share of the checks,
and one leading; then until the first two rounds of probes are over (every system's first result
and UNKNOWN -> UP).

- Probing: over ``--window`` seconds, each replica's CPU (``/proc/PID/stat``), the probes it ran
  (``monitor_probes_total`` on its /metrics), the checks it holds (``monitor_checks_owned``) and
  its p99 probe lateness (``monitor_probe_lateness_seconds``, interpolated in its buckets as
  ``histogram_quantile`` does).
- Fan-out: payment fails at the target; from the first acknowledgement the sink accepts to the
  last: total messages a second; each replica's CPU over that stretch, less what it used a second
  in the probing window (probing goes on meanwhile), over the messages it sent
  (``monitor_messages_total{outcome="sent"}``); duplicates (Message-IDs the sink saw twice).
- Takeover (with the largest N, if it is 2 or more): the leading replica (``--kill follower``: one
  that does not lead) is killed with SIGKILL; the time from the kill to the last of its checks
  (read from ``check_owners``) being probed again by another replica, at the target; also when
  another replica was listed as leading.

The machine's cores are shared by every replica, PostgreSQL, the sink and the target: the report
says how many there are and what each part used.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import json
import math
import os
import platform
import re
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

import aiohttp

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "tests"))

from fanout import backend_name, person  # noqa: E402
from postgres import DURABLE_SETTINGS, Cluster, start_cluster  # noqa: E402
from probes import Target, write_checks  # noqa: E402
from process import free_port, monitor_env  # noqa: E402
from soak import Lateness, Scrape, Sink, machine_busy, parse_metrics, proc_cpu, say  # noqa: E402

from monitor.replicas.membership import SHARD_UNITS  # noqa: E402
from monitor.replicas.sharing import owner  # noqa: E402

T = TypeVar("T")
TICK = os.sysconf("SC_CLK_TCK")
SYSTEM = "payment"  # the system that fails for the fan-out
SETTINGS = """\
org: {name: Example Ltd, support_phone: 0800 123 456, support_email: help@example.com}
correlation_window: 5m
notify_after: 2s
update_every: 24h
max_messages_per_person_per_day: 20
http: {max_connections: 200, reuse_connections: false}
replicas: {heartbeat: %(heartbeat)gs, takeover: %(takeover)gs}
"""
PAYMENT = """\
name: payment
title: Online payments
every: 2s
timeout: 1s
fail_after: 2
workaround: Pay by phone on 0800 123 456 and we will process it by hand.
probe: {http: {url: "%(url)s/payment"}}
"""
# A probe the killed replica sent just before its SIGKILL can still reach the target a few
# milliseconds after it: requests this soon after the kill are not another replica's.
IN_FLIGHT = 0.1
READY_S = 300.0  # 10,000 check files to load, three replicas at once on 2 cores
SETTLE_S = 180.0
STOP_S = 60.0
IMPORT_S = 1800.0
SENT = "monitor_messages_total{outcome=sent}"  # as soak.parse_metrics sums it
_GAUGE = re.compile(
    r"^(monitor_checks_owned|monitor_replica_leading|monitor_replicas_live|"
    r"monitor_outbox_pending) (\S+)$",
    re.MULTILINE,
)


class Failure(Exception):
    """The run cannot go on: the message says what did not happen, with the replicas' logs."""


# --- the parts -----------------------------------------------------------------------------------


def start_target() -> Target:
    """``replicas_target.py`` in a process of its own (probes.py's ``Target``)."""
    try:
        return Target("replicas_target.py")
    except RuntimeError as exc:
        raise Failure(str(exc)) from None


@dataclass
class Replica:
    """One ``monitor run``, its log drained to a file."""

    name: str
    port: int
    log: Path
    process: asyncio.subprocess.Process | None = None
    killed: bool = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.returncode is None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    async def start(self, env: dict[str, str]) -> None:
        with self.log.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "monitor.cli",
                "run",
                env=monitor_env(env),
                stdout=asyncio.subprocess.DEVNULL,
                stderr=log,
                cwd=REPO,
            )

    def kill(self) -> float:
        """SIGKILL, no goodbye; when (``time.time()``)."""
        assert self.process is not None
        self.killed = True
        self.process.kill()
        return time.time()

    async def stop(self) -> None:
        """SIGTERM, as an orchestrator stops it; SIGKILL if it has not gone in ``STOP_S``."""
        if self.process is None:
            return
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.process.wait(), STOP_S)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()

    def tail(self, lines: int = 8) -> str:
        try:
            text = self.log.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            text = []
        code = "running" if self.alive else f"exit {self.process and self.process.returncode}"
        return f"{self.name} ({code}):\n  " + "\n  ".join(text)


@dataclass(frozen=True)
class Cpu:
    """CPU seconds used so far by each part, and the machine's busy seconds, at ``at``."""

    at: float
    replicas: dict[str, float]
    postgres: float
    sink: float
    target: float
    machine: float


def cores(first: Cpu, last: Cpu) -> dict[str, float]:
    """Cores each part used on average between two readings; ``others`` is the rest."""
    seconds = last.at - first.at
    if seconds <= 0:
        return {}
    used = {
        "replicas": sum(last.replicas[n] - first.replicas[n] for n in last.replicas) / seconds,
        "postgres": (last.postgres - first.postgres) / seconds,
        "sink": (last.sink - first.sink) / seconds,
        "target": (last.target - first.target) / seconds,
    }
    used["others"] = max(0.0, (last.machine - first.machine) / seconds - sum(used.values()))
    return used


def postgres_cpu(postmaster: int) -> float:
    """CPU seconds of the cluster: the postmaster with the children it has reaped (connections
    that ended, autovacuum workers) and the children running now."""
    total = 0.0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry.name}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        if int(entry.name) == postmaster:
            total += sum(int(f) for f in stat[11:15]) / TICK  # utime stime cutime cstime
        elif int(stat[1]) == postmaster:
            total += (int(stat[11]) + int(stat[12])) / TICK
    return total


@dataclass
class Metrics:
    """One replica's /metrics: the sums ``soak.parse_metrics`` reads, and its replica gauges."""

    scrape: Scrape
    started: float
    gauges: dict[str, float]

    @property
    def middle(self) -> float:
        """About when the page was made (between asking and the last byte)."""
        return (self.started + self.scrape.at) / 2

    def value(self, name: str) -> float:
        return self.scrape.values.get(name, 0.0)


# --- one replica count ---------------------------------------------------------------------------


@dataclass
class ReplicaRow:
    """One replica's figures in one run."""

    name: str
    leads: bool
    checks: int
    shards: int
    probes_per_s: float
    probe_cores: float  # its CPU a second in the probing window
    p99_ms: float
    sent: int
    fanout_cpu_s: float  # its CPU over the fan-out, probing and all

    @property
    def ms_per_probe(self) -> float:
        return self.probe_cores / self.probes_per_s * 1000 if self.probes_per_s else math.nan


@dataclass
class TakeoverFigures:
    replicas: int
    victim: str
    victim_led: bool
    checks: int  # the checks it held when killed
    bound_s: float  # takeover + one interval
    last_s: float  # from the kill to the last of its checks probed by another
    median_s: float
    lead_s: float | None  # from the kill to another replica listed as leading
    gone_s: float | None  # from the kill to it no longer listed as live


@dataclass
class Run:
    """One replica count's figures."""

    replicas: int
    import_s: float
    ready_s: float
    settle_s: float
    rows: list[ReplicaRow]
    probe_window_s: float
    probe_cores: dict[str, float]
    first_ack_s: float  # from the failure to the first acknowledgement at the sink
    fanout_s: float  # from the first acknowledgement to the last
    messages: int  # acknowledgements the sink accepted in that stretch
    accepted: int  # messages the sink accepted in the whole run
    distinct: int  # distinct Message-IDs among them
    duplicates: int  # Message-IDs accepted again, in the whole run
    fanout_duplicates: int  # of those, by the fan-out's end (before any kill)
    fanout_cores: dict[str, float]
    takeover: TakeoverFigures | None = None
    repeated: tuple[str, ...] = ()  # the first Message-IDs accepted twice

    @property
    def rate(self) -> float:
        return self.messages / self.fanout_s if self.fanout_s else math.nan

    @property
    def probes_per_s(self) -> float:
        return sum(r.probes_per_s for r in self.rows)

    def ms_per_probe(self) -> float:
        """All replicas' CPU over all their probes."""
        cpu = sum(r.probe_cores for r in self.rows)
        return cpu / self.probes_per_s * 1000 if self.probes_per_s else math.nan

    def net_cpu_s(self, row: ReplicaRow) -> float:
        """What a replica's fan-out cost it: its CPU over the fan-out, less what it used in
        the same time at the probing window's rate (probing, heartbeats, reading the others'
        states), which go on meanwhile."""
        return row.fanout_cpu_s - row.probe_cores * self.fanout_s

    def ms_per_message(self, net: bool = True) -> float:
        """All replicas' fan-out CPU over all messages (the leader decides them all, each
        replica sends its shards': only the sum compares with one replica's)."""
        cpu = sum(self.net_cpu_s(r) if net else r.fanout_cpu_s for r in self.rows)
        return cpu / self.messages * 1000 if self.messages else math.nan


# --- the whole run -------------------------------------------------------------------------------


@dataclass
class World:
    args: argparse.Namespace
    work: Path
    cluster: Cluster
    postmaster: int
    target: Target
    http: aiohttp.ClientSession
    systems: list[str]  # every check's name

    async def fail(self, paths: Iterable[str]) -> None:
        body = "\n".join(paths)
        async with self.http.put(f"{self.target.url}/-/fail", data=body) as response:
            response.raise_for_status()

    async def watch(self, paths: Iterable[str], after: float) -> None:
        asked = {"paths": sorted(paths), "after": after}
        async with self.http.put(f"{self.target.url}/-/watch", json=asked) as response:
            response.raise_for_status()

    async def firsts(self) -> dict[str, float]:
        found = await get_json(self.http, f"{self.target.url}/-/firsts")
        return {str(path): float(at) for path, at in (found or {}).items()}

    def read_cpu(self, fleet: Fleet, sink: Sink) -> Cpu:
        return Cpu(
            at=time.time(),
            replicas={r.name: proc_cpu(r.pid) for r in fleet.replicas if r.alive},
            postgres=postgres_cpu(self.postmaster),
            sink=proc_cpu(sink.process.pid),
            target=proc_cpu(self.target.process.pid),
            machine=machine_busy(),
        )

    def held_by(self, database: str, replica: str) -> set[str]:
        """The checks (not outbox shards) ``check_owners`` names ``replica`` the holder of."""
        rows = self.cluster.sql(
            "SELECT system FROM check_owners "
            f"WHERE replica = '{replica}' AND system NOT LIKE 'outbox:%'",
            database=database,
        )
        return set(rows.split())


@dataclass
class Fleet:
    """The N replicas of one run."""

    world: World
    replicas: list[Replica]

    @classmethod
    def of(cls, world: World, count: int, logs: Path) -> Fleet:
        names = [f"r{i}" for i in range(1, count + 1)]
        return cls(world, [Replica(n, free_port(), logs / f"{n}.log") for n in names])

    def named(self, name: str) -> Replica:
        return next(r for r in self.replicas if r.name == name)

    @property
    def alive(self) -> list[Replica]:
        return [r for r in self.replicas if r.alive]

    def check_alive(self) -> None:
        """Fail at once if a replica we did not kill has exited."""
        dead = [r for r in self.replicas if r.process is not None and not r.alive and not r.killed]
        if dead:
            raise Failure("a replica exited by itself:\n" + self.tails())

    def tails(self) -> str:
        return "\n".join(r.tail() for r in self.replicas)

    async def until(
        self, what: str, check: Callable[[], Awaitable[T | None]], deadline: float, every: float
    ) -> T:
        """Poll ``check`` until it returns something truthy, and return that; fail after
        ``deadline`` seconds naming ``what``, or as soon as a replica dies by itself."""
        end = time.monotonic() + deadline
        while True:
            self.check_alive()
            value = await check()
            if value:
                return value
            if time.monotonic() > end:
                raise Failure(f"{what}: not so after {deadline:.0f} s\n{self.tails()}")
            await asyncio.sleep(every)

    async def view(self, replica: Replica) -> dict[str, dict[str, Any]] | None:
        """``replica``'s GET /api/v1/replicas, each live replica by name (None: no answer)."""
        found = await get_json(self.world.http, f"{replica.url}/api/v1/replicas")
        return None if found is None else {r["name"]: r for r in found["replicas"]}

    async def metrics(self) -> dict[str, Metrics]:
        """Every live replica's /metrics, asked at once."""
        alive = self.alive
        pages = await asyncio.gather(*(scrape(self.world.http, r.url) for r in alive))
        return {r.name: page for r, page in zip(alive, pages, strict=True)}

    async def stop(self) -> None:
        await asyncio.gather(*(r.stop() for r in self.replicas))


async def get_json(http: aiohttp.ClientSession, url: str) -> Any:
    """A JSON document, or None while nothing answers (a replica starting, or killed)."""
    try:
        async with http.get(url, timeout=aiohttp.ClientTimeout(total=30)) as response:
            return await response.json() if response.status == 200 else None
    except (aiohttp.ClientError, TimeoutError, ValueError):
        return None


async def is_ready(http: aiohttp.ClientSession, url: str) -> bool:
    """Whether ``/readyz`` says 200 (the replica loaded its checks and reached the store)."""
    try:
        async with http.get(f"{url}/readyz", timeout=aiohttp.ClientTimeout(total=30)) as response:
            return response.status == 200
    except (aiohttp.ClientError, TimeoutError):
        return False


async def scrape(http: aiohttp.ClientSession, url: str) -> Metrics:
    started = time.time()
    begun = time.perf_counter()
    async with http.get(f"{url}/metrics", timeout=aiohttp.ClientTimeout(total=120)) as response:
        response.raise_for_status()
        text = await response.text()
    page = parse_metrics(text, time.time(), time.perf_counter() - begun)
    gauges = {name: float(value) for name, value in _GAUGE.findall(text)}
    return Metrics(page, started, gauges)


def write_world(work: Path, target: str, args: argparse.Namespace) -> list[str]:
    """The check files and the people's CSV; every check's name."""
    checks = work / "checks"
    write_checks(checks, target, args.checks, args.every, min(5.0, args.every), reuse=False)
    (checks / "monitor.yaml").write_text(
        SETTINGS % {"heartbeat": args.heartbeat, "takeover": args.takeover}
    )
    (checks / "payment.yaml").write_text(PAYMENT % {"url": target})
    with (work / "people.csv").open("w", newline="", encoding="utf-8") as out:
        rows = csv.writer(out)
        rows.writerow(["id", "name", "email", "phone", "systems"])
        for i in range(args.people):
            somebody = person(i)
            rows.writerow([somebody.id, somebody.name, somebody.email, "", SYSTEM])
    return [f"bench-{n:05d}" for n in range(args.checks)] + [SYSTEM]


async def import_people(world: World, env: dict[str, str]) -> float:
    """``monitor users import people.csv`` into the run's database; seconds it took."""
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "monitor.cli",
        "users",
        "import",
        str(world.work / "people.csv"),
        env=monitor_env(env),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=REPO,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), IMPORT_S)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise Failure(f"monitor users import took more than {IMPORT_S:.0f} s") from None
    if process.returncode != 0:
        raise Failure(f"monitor users import failed ({process.returncode}): {err.decode()[-2000:]}")
    say(out.decode().strip().splitlines()[-1] if out.strip() else "people imported")
    return time.perf_counter() - started


def acknowledged(sink: Sink) -> int:
    return sum(kinds["acknowledge"] for kinds in sink.by_incident.values())


async def one_count(world: World, count: int) -> Run:
    """Start ``count`` replicas on a new database; probe, fan out, and (``takeover``) kill one."""
    args = world.args
    database = world.cluster.create_database(f"replicas{count}")
    here = world.work / f"{count}-replicas"
    shutil.rmtree(here, ignore_errors=True)  # a --keep directory used before: a new sink file
    here.mkdir(parents=True)
    env = {
        "MONITOR_CONFIG": str(world.work / "checks"),
        "MONITOR_MESSAGES": str(REPO / "messages"),
        "MONITOR_DB": world.cluster.url(database),
        "MONITOR_SMTP_FROM": "status@example.com",
    }
    try:
        await world.fail([])
        say(f"{count} replica(s): importing {args.people:,} people")
        imported = await import_people(world, env)
        sink = Sink(here, args.mail_delay)
        await sink.start()
        env["MONITOR_SMTP_URL"] = f"smtp://127.0.0.1:{sink.port}?starttls=never"
        fleet = Fleet.of(world, count, here)
        try:
            run = await measure(world, fleet, sink, env, database, imported)
        finally:
            await fleet.stop()
            counts = await sink.stop()
        run.accepted = int(counts["messages"])
        run.distinct = len(sink.seen)
        run.duplicates = len(sink.duplicates)
        run.repeated = tuple(sink.duplicates[:8])
        return run
    finally:
        world.cluster.drop_database(database)


async def measure(
    world: World, fleet: Fleet, sink: Sink, env: dict[str, str], database: str, imported: float
) -> Run:
    """One replica count's phases, one after the other, on replicas not yet started."""
    ready, settle = await start_settled(world, fleet, env)
    rows, cpu_first, cpu_last, last = await probing(world, fleet, sink)
    sent_before = {n: m.value(SENT) for n, m in last.items()}
    first_ack, cpu_start, cpu_end = await fan_out(world, fleet, sink)
    pages = await fleet.until(
        "every message marked sent",
        lambda: marked(fleet, sum(sent_before.values()) + world.args.people),
        120,
        1.0,
    )
    sink.follow()
    fanout_duplicates = len(sink.duplicates)
    for row in rows:
        row.sent = round(pages[row.name].value(SENT) - sent_before[row.name])
        row.fanout_cpu_s = cpu_end.replicas[row.name] - cpu_start.replicas[row.name]
    count = len(fleet.replicas)
    run = Run(
        replicas=count,
        import_s=imported,
        ready_s=ready,
        settle_s=settle,
        rows=rows,
        probe_window_s=cpu_last.at - cpu_first.at,
        probe_cores=cores(cpu_first, cpu_last),
        first_ack_s=first_ack,
        fanout_s=cpu_end.at - cpu_start.at,
        messages=world.args.people,
        accepted=0,
        distinct=0,
        duplicates=0,
        fanout_duplicates=fanout_duplicates,
        fanout_cores=cores(cpu_start, cpu_end),
    )
    if count >= 2 and count == max(world.args.replicas):
        run.takeover = await takeover(world, fleet, database)
    return run


async def start_settled(world: World, fleet: Fleet, env: dict[str, str]) -> tuple[float, float]:
    """Start every replica at once; wait until each is ready, then until they settled on
    their shares, then until the first two rounds of probes are over. Seconds to ready and
    from ready to settled."""
    names = [r.name for r in fleet.replicas]
    started = time.monotonic()
    for replica in fleet.replicas:
        listen = f"127.0.0.1:{replica.port}"
        await replica.start({**env, "MONITOR_REPLICA": replica.name, "MONITOR_LISTEN": listen})

    async def all_ready() -> bool:
        answers = await asyncio.gather(*(is_ready(world.http, r.url) for r in fleet.replicas))
        return all(answers)

    await fleet.until("every replica ready", all_ready, READY_S, 1.0)
    ready = time.monotonic() - started
    say(f"{len(names)} replica(s) ready after {ready:.1f} s")

    # Settled: each one lists exactly these replicas, each holding its rendezvous share (until
    # then one may still hold checks it is handing over), all 64 outbox shards held, one leading.
    owners = Counter(owner(s, names) for s in world.systems)
    share = {name: owners[name] for name in names}

    async def settled() -> bool:
        for replica in fleet.replicas:
            seen = await fleet.view(replica)
            if seen is None or {n: r["checks"] for n, r in seen.items()} != share:
                return False
            if sum(r["outbox_shards"] for r in seen.values()) != len(SHARD_UNITS):
                return False
            if sum(bool(r["leads"]) for r in seen.values()) != 1:
                return False
        return True

    await fleet.until("the replicas settled on their shares", settled, SETTLE_S, 0.5)
    settle = time.monotonic() - started - ready
    say(f"settled: {', '.join(f'{n} {c:,} checks' for n, c in share.items())}")

    # Past the first two rounds: every system's first result, then UNKNOWN -> UP.
    async def warmed() -> bool:
        pages = await fleet.metrics()
        probes = sum(p.value("monitor_probes_total") for p in pages.values())
        return probes >= 2 * len(world.systems)

    await fleet.until("two rounds of probes", warmed, 5 * world.args.every + 120, 5.0)
    return ready, settle


async def probing(
    world: World, fleet: Fleet, sink: Sink
) -> tuple[list[ReplicaRow], Cpu, Cpu, dict[str, Metrics]]:
    """A window of ``--window`` seconds between two scrapes of every replica, the CPU read just
    inside them: each replica's figures, the CPU at both ends and the last scrapes."""
    say(f"probing window ({world.args.window:g} s)")
    first = await fleet.metrics()
    cpu_first = world.read_cpu(fleet, sink)
    await asyncio.sleep(world.args.window)  # the measured window itself, not a wait for something
    cpu_last = world.read_cpu(fleet, sink)
    last = await fleet.metrics()
    listed = await fleet.view(fleet.replicas[0]) or {}
    seconds = cpu_last.at - cpu_first.at
    rows: list[ReplicaRow] = []
    for replica in fleet.replicas:
        a, b = first[replica.name], last[replica.name]
        probes = b.value("monitor_probes_total") - a.value("monitor_probes_total")
        used = cpu_last.replicas[replica.name] - cpu_first.replicas[replica.name]
        rows.append(
            ReplicaRow(
                name=replica.name,
                leads=bool(b.gauges.get("monitor_replica_leading", 0.0)),
                checks=int(b.gauges.get("monitor_checks_owned", 0.0)),
                shards=int(listed.get(replica.name, {}).get("outbox_shards", 0)),
                probes_per_s=probes / (b.middle - a.middle),
                probe_cores=used / seconds,
                p99_ms=Lateness.between(a.scrape, b.scrape).quantile(0.99)[0] * 1000,
                sent=0,
                fanout_cpu_s=0.0,
            )
        )
    return rows, cpu_first, cpu_last, last


async def fan_out(world: World, fleet: Fleet, sink: Sink) -> tuple[float, Cpu, Cpu]:
    """Make payment fail and follow the sink until every person is acknowledged: seconds from
    the failure to the first acknowledgement, and the CPU when the first and the last came."""
    people = world.args.people
    say(f"{SYSTEM} fails: fan-out to {people:,} people")
    failed_at = time.time()
    await world.fail([f"/{SYSTEM}"])
    end = time.monotonic() + 300 + people / 50
    cpu_start: Cpu | None = None
    while True:  # polled often: the stretch's edges are read as they are seen
        fleet.check_alive()
        sink.follow()
        told = acknowledged(sink)
        if told and cpu_start is None:
            cpu_start = world.read_cpu(fleet, sink)
            say(f"first acknowledgement {cpu_start.at - failed_at:.1f} s after the failure")
        if told >= people:
            break
        if time.monotonic() > end:
            raise Failure(f"{told:,} of {people:,} acknowledged in time\n{fleet.tails()}")
        await asyncio.sleep(0.1)
    cpu_end = world.read_cpu(fleet, sink)
    assert cpu_start is not None
    say(f"all acknowledged: {people / (cpu_end.at - cpu_start.at):,.0f} msg/s")
    return cpu_start.at - failed_at, cpu_start, cpu_end


async def marked(fleet: Fleet, total: float) -> dict[str, Metrics] | None:
    """Every replica's /metrics once their sent messages add up to ``total`` (the sink has a
    message a moment before its sender counts it)."""
    pages = await fleet.metrics()
    return pages if sum(p.value(SENT) for p in pages.values()) >= total else None


async def takeover(world: World, fleet: Fleet, database: str) -> TakeoverFigures:
    """Kill one replica with SIGKILL; how long until another probed each check it held."""
    args = world.args

    async def leading() -> str | None:
        seen = await fleet.view(fleet.replicas[0])
        return next((name for name, r in (seen or {}).items() if r["leads"]), None)

    leader = await fleet.until("a replica listed as leading", leading, 60, 0.5)
    followers = [r.name for r in fleet.replicas if r.name != leader]
    victim = fleet.named(leader if args.kill == "leader" else followers[-1])
    held = world.held_by(database, victim.name)
    survivor = next(r for r in fleet.replicas if r is not victim)
    led = victim.name == leader
    say(
        f"killing {victim.name} (SIGKILL{', leading' if led else ''}), holding {len(held):,} checks"
    )
    killed_at = victim.kill()
    # Nobody may take its checks before ``takeover - heartbeat`` has passed: watching them from
    # just after the kill misses no probe of another replica.
    await world.watch((f"/{s}" for s in held), killed_at + IN_FLIGHT)
    assert victim.process is not None
    await victim.process.wait()
    lead_s: float | None = None
    gone_s: float | None = None
    bound = args.takeover + args.every

    async def probed_again() -> dict[str, float] | None:
        nonlocal lead_s, gone_s
        now = time.time()
        listed = await fleet.view(survivor)
        if listed is not None:
            if gone_s is None and victim.name not in listed:
                gone_s = now - killed_at
            others_lead = any(r["leads"] for n, r in listed.items() if n != victim.name)
            if led and lead_s is None and others_lead:
                lead_s = now - killed_at
        firsts = await world.firsts()
        lead_settled = lead_s is not None or not led
        return firsts if len(firsts) >= len(held) and lead_settled else None

    firsts = await fleet.until(
        f"{victim.name}'s checks probed again", probed_again, 3 * bound + 60, 0.25
    )
    after = sorted(at - killed_at for at in firsts.values())
    return TakeoverFigures(
        replicas=len(fleet.replicas),
        victim=victim.name,
        victim_led=led,
        checks=len(held),
        bound_s=bound,
        last_s=after[-1] if after else math.nan,
        median_s=statistics.median(after) if after else math.nan,
        lead_s=lead_s,
        gone_s=gone_s,
    )


async def run_all(args: argparse.Namespace, work: Path) -> tuple[str, list[Run]]:
    with contextlib.ExitStack() as stack:
        cluster = stack.enter_context(start_cluster(DURABLE_SETTINGS))
        backend = backend_name(cluster)
        postmaster = int((cluster.data / "postmaster.pid").read_text().split()[0])
        target = start_target()
        stack.callback(target.close)
        systems = write_world(work, target.url, args)
        say(f"{backend}; target {target.url}; {len(systems):,} checks written")
        runs: list[Run] = []
        async with aiohttp.ClientSession() as http:
            world = World(args, work, cluster, postmaster, target, http, systems)
            for count in args.replicas:
                runs.append(await one_count(world, count))
        return backend, runs


# --- the report ----------------------------------------------------------------------------------


def _met(met: bool) -> str:
    return "met" if met else "MISSED"


def _load(used: dict[str, float]) -> str:
    parts = ("replicas", "postgres", "sink", "target", "others")
    return " / ".join(f"{used.get(part, math.nan):.2f}" for part in parts)


def report(args: argparse.Namespace, backend: str, runs: Sequence[Run]) -> None:
    print(
        f"replicas on one database: {args.checks:,} checks every {args.every:g} s "
        f"({args.checks / args.every:,.0f} probes/s) + {SYSTEM} every 2 s; a fan-out to "
        f"{args.people:,} people; replicas.heartbeat {args.heartbeat:g} s, replicas.takeover "
        f"{args.takeover:g} s (the default is 30 s); the mail server takes "
        f"{args.mail_delay * 1000:g} ms a message"
    )
    print(
        f"store {backend}; machine: {os.cpu_count()} cores ({platform.machine()}), Python "
        f"{platform.python_version()}: every replica, PostgreSQL, the SMTP sink and the target "
        f"share those {os.cpu_count()} cores"
    )
    print(
        f"\n{'replicas':>8} {'fan-out':>8} {'msg/s':>7} {'CPU ms/msg':>10} {'(gross)':>8} "
        f"{'probes/s':>8} {'CPU ms/probe':>12} {'p99 late':>8} {'dup':>4}  "
        f"cores in the fan-out: replicas / postgres / sink / target / others"
    )
    for run in runs:
        print(
            f"{run.replicas:>8} {run.fanout_s:>7.1f}s {run.rate:>7,.0f} "
            f"{run.ms_per_message():>10.2f} {run.ms_per_message(net=False):>8.2f} "
            f"{run.probes_per_s:>8,.0f} {run.ms_per_probe():>12.3f} "
            f"{max(r.p99_ms for r in run.rows):>6.1f}ms {run.fanout_duplicates:>4}  "
            f"{_load(run.fanout_cores)}"
        )
    print(
        "  fan-out: from the first acknowledgement the sink accepted to the last;\n"
        "  dup: Message-IDs it accepted twice by then;\n"
        "  CPU ms/msg: all replicas' CPU over the fan-out, less each one's CPU a second in the\n"
        "  probing window times its length (gross: not less), over the messages;\n"
        "  CPU ms/probe: all replicas' CPU in the probing window over their probes;\n"
        "  p99 late: the latest replica's"
    )
    print(
        f"\n{'replicas':>8} {'replica':>7} {'leads':>5} {'checks':>7} {'shards':>6} "
        f"{'probes/s':>8} {'CPU ms/probe':>12} {'p99 late':>8} {'sent':>8} {'CPU ms/msg':>10} "
        f"{'(gross)':>8}"
    )
    for run in runs:
        for row in run.rows:
            net = run.net_cpu_s(row) / row.sent * 1000 if row.sent else math.nan
            gross = row.fanout_cpu_s / row.sent * 1000 if row.sent else math.nan
            print(
                f"{run.replicas:>8} {row.name:>7} {'yes' if row.leads else '':>5} "
                f"{row.checks:>7,} {row.shards:>6} {row.probes_per_s:>8,.0f} "
                f"{row.ms_per_probe:>12.3f} {row.p99_ms:>6.1f}ms {row.sent:>8,} {net:>10.2f} "
                f"{gross:>8.2f}"
            )
    print(
        "  a replica's CPU ms/msg is its fan-out CPU over the messages it sent; the leader's "
        "includes deciding (rendering) every message"
    )
    print("\nrun details:")
    for run in runs:
        print(
            f"  {run.replicas} replica(s): import {run.import_s:.0f} s, answering after "
            f"{run.ready_s:.0f} s, settled {run.settle_s:.0f} s later; first acknowledgement "
            f"{run.first_ack_s:.1f} s after the failure; the sink accepted {run.accepted:,} "
            f"messages, {run.distinct:,} distinct Message-IDs, {run.duplicates} twice; probing "
            f"window {run.probe_window_s:.0f} s, cores: {_load(run.probe_cores)}"
        )
        if run.repeated:
            print(f"    accepted twice, e.g.: {', '.join(run.repeated)}")
    taken = next((run.takeover for run in runs if run.takeover), None)
    if taken:
        how = "while leading" if taken.victim_led else "not leading"
        lead = "" if taken.lead_s is None else f"a new leader listed after {taken.lead_s:.1f} s, "
        gone = "-" if taken.gone_s is None else f"{taken.gone_s:.1f} s"
        print(
            f"\ntakeover ({taken.replicas} replicas): {taken.victim} killed with SIGKILL {how}, "
            f"holding {taken.checks:,} checks; each probed again by another replica within "
            f"{taken.last_s:.1f} s of the kill (median {taken.median_s:.1f} s); {lead}"
            f"{taken.victim} no longer listed as live after {gone}"
        )

    print("\ntargets:")
    one = next((run for run in runs if run.replicas == 1), None)
    most = max(runs, key=lambda run: run.replicas)
    if one is not None and most is not one:
        ratio = most.rate / one.rate
        print(
            f"  {most.replicas}-replica fan-out rate >= the 1-replica rate: {most.rate:,.0f} vs "
            f"{one.rate:,.0f} msg/s ({ratio:.2f}x): {_met(ratio >= 1)}"
        )
        cpu = most.ms_per_message() / one.ms_per_message()
        print(
            f"  CPU per message with {most.replicas} replicas within 1.2x of one replica's: "
            f"{most.ms_per_message():.2f} vs {one.ms_per_message():.2f} ms ({cpu:.2f}x): "
            f"{_met(cpu <= 1.2)}"
        )
    if taken:
        print(
            f"  takeover within replicas.takeover + one interval ({args.takeover:g} + "
            f"{args.every:g} s): {taken.last_s:.1f} s: {_met(taken.last_s <= taken.bound_s)}"
        )
    exact = all(run.fanout_duplicates == 0 and run.distinct == args.people for run in runs)
    each = ", ".join(f"{r.fanout_duplicates} ({r.distinct:,} distinct)" for r in runs)
    print(
        f"  no duplicates in a fan-out without a kill, one acknowledgement each: {each}: "
        f"{_met(exact)}"
    )


def replica_counts(text: str) -> list[int]:
    try:
        counts = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of numbers: {text!r}") from None
    if not counts or counts[0] < 1 or counts[-1] > 9:
        raise argparse.ArgumentTypeError(f"replica counts from 1 to 9, e.g. 1,2,3: {text!r}")
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add = parser.add_argument
    add("--people", type=int, default=100_000, help="people told in the fan-out")
    add("--checks", type=int, default=10_000, help="HTTP checks besides payment")
    add("--every", type=float, default=10.0, help="the checks' interval, seconds (default 10)")
    add("--replicas", type=replica_counts, default=[1, 2, 3],
        help="replica counts to run, one after the other (default 1,2,3)")  # fmt: skip
    add("--window", type=float, default=30.0, help="probing window, seconds (default 30)")
    add("--heartbeat", type=float, default=2.0, help="replicas.heartbeat, seconds (default 2)")
    add("--takeover", type=float, default=10.0, help="replicas.takeover, seconds (default 10)")
    add("--kill", choices=["leader", "follower"], default="leader",
        help="which replica the takeover kills (default the leader)")  # fmt: skip
    add("--mail-delay", type=float, default=0.0,
        help="seconds the SMTP sink holds each reply, as a real mail server's round trip takes "
        "(default 0: the fan-out is then bound by this machine's cores)")  # fmt: skip
    add("--keep", type=Path, help="work here (logs, check files) and keep it")
    add("--json", action="store_true", help="print the figures as JSON too")
    args = parser.parse_args()
    if args.mail_delay < 0:
        parser.error("--mail-delay cannot be negative")
    if args.people < 1 or args.checks < 1 or args.every <= 0 or args.window <= 0:
        parser.error("--people, --checks, --every and --window must be positive")
    if args.takeover < 3 * args.heartbeat:
        parser.error("--takeover must be at least 3 heartbeats, as the monitor requires")
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
    work = args.keep or Path(tempfile.mkdtemp(prefix="monitor-replicas-"))
    try:
        backend, runs = asyncio.run(run_all(args, work))
    except Failure as failure:
        raise SystemExit(f"replicas benchmark failed: {failure}") from None
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    report(args, backend, runs)
    if args.json:
        print(json.dumps([{**asdict(run), "rate": run.rate} for run in runs]))


if __name__ == "__main__":
    main()
