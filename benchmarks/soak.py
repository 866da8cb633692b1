"""The monitor run as a user runs it, for a long time or through a slow mail server.

    python benchmarks/soak.py                          # soak: 10,000 checks, 100,000 people, 30 min
    python benchmarks/soak.py --minutes 3 --people 5000          # a quick look
    python benchmarks/soak.py --scenario slow-mail     # probing while mail takes 2 s a message

Everything talks to 127.0.0.1 only, each part a process of its own:

- ``target.py`` answers every check (``/bench-NNNNN``); ``PUT /-/fail`` makes chosen paths
  answer 503, which is how outages are scripted.
- ``smtp_sink.py --ids FILE`` accepts every message (``--delay 2`` for slow-mail) and appends its
  Message-ID to FILE, which this script follows: who got what, per incident, and whether any
  Message-ID came twice.
- ``monitor run``, configured only through ``MONITOR_*`` variables as a sidecar is, with the
  checks written by ``probes.write_checks`` and the people imported by ``monitor users import``
  from a CSV, in a temp dir.

Soak (``--scenario soak``): three outages, each of three systems that every person subscribes
to one of, so each outage tells everyone: an acknowledgement to all, then (once all of those
are in and the systems heal) a resolved to all. The monitor's RSS, open file descriptors
(by kind), CPU and database size (db + -wal + -shm) are read from /proc and the file system
every ``--sample-every`` seconds, the rows in ``results`` and ``outbox`` every 30 s, and
/metrics at each phase boundary. Warm-up ends when the first outage's fan-out (resolved
messages included) is complete; growth is measured from the first sample after that.
Retention is set small (``--max-age``, ``--keep-results``) so that its bound shows within the run.
Every sample is also written to ``samples.json`` in the work dir (``--keep DIR`` keeps it).

Slow mail (``--scenario slow-mail``): 10,000 checks every 10 s (1,000 probes/s), 10,000
people, the sink holding each reply 2 s. Probe lateness comes from the monitor's own
``monitor_probe_lateness_seconds`` histogram on /metrics, scraped at the edges of two windows of
the same length: a quiet one, and one from the outage's start through its fan-out (the decisions
for every person, then sends trickling out at the sink's pace).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import math
import os
import platform
import re
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "tests"))

from fanout import person  # noqa: E402
from probes import Target, write_checks  # noqa: E402
from process import free_port, run_cli, start_monitor, wait_http  # noqa: E402

GROUP = 3  # systems failing together in one outage
SAMPLE_ROWS_EVERY = 30.0
TICK = os.sysconf("SC_CLK_TCK")


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


# --- the world -------------------------------------------------------------------------------


def settings_yaml(max_age: str, keep_results: int) -> str:
    return (
        "org: {name: Example Ltd, support_phone: 0800 123 456, support_email: help@example.com}\n"
        "correlation_window: 30s\n"
        "notify_after: 10s\n"
        "update_every: 24h\n"
        "attempt_lookback: 2h\n"
        "customer_messages: auto\n"
        "max_messages_per_person_per_day: 20\n"
        "retention:\n"
        f"  max_age: {max_age}\n"
        f"  max_results_per_system: {keep_results}\n"
        "http:\n"
        "  max_connections: 200\n"
        "  reuse_connections: false\n"
    )


def outage_groups(outages: int) -> list[list[str]]:
    """The systems of each outage: the first ``GROUP * outages`` checks."""
    return [[f"bench-{k * GROUP + j:05d}" for j in range(GROUP)] for k in range(outages)]


def write_people(path: Path, n: int, groups: list[list[str]]) -> None:
    """Person i subscribes to system ``i % GROUP`` of every outage's group."""
    with path.open("w", encoding="utf-8") as out:
        out.write("id,name,email,phone,systems\n")
        for i in range(n):
            somebody = person(i)
            systems = ";".join(group[i % GROUP] for group in groups)
            out.write(f'{somebody.id},"{somebody.name}",{somebody.email},,{systems}\n')


# --- the parts, each a process ------------------------------------------------------------------


class Sink:
    """``smtp_sink.py`` with a Message-ID file, followed as it grows."""

    def __init__(self, work: Path, delay: float) -> None:
        self.ids_path = work / "message-ids"
        self.delay = delay
        self.seen: set[str] = set()
        self.duplicates: list[str] = []
        self.by_incident: dict[int, Counter[str]] = {}
        self.unparsed = 0
        self._offset = 0

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            str(HERE / "smtp_sink.py"),
            "--delay",
            f"{self.delay:g}",
            "--ids",
            str(self.ids_path),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        assert self.process.stdout is not None
        line = (await asyncio.wait_for(self.process.stdout.readline(), 30)).decode().split()
        if line[:1] != ["ready"]:
            raise RuntimeError(f"the SMTP sink did not start: {line}")
        self.port = int(line[1])

    def follow(self) -> None:
        """Read the Message-IDs accepted since the last call."""
        if not self.ids_path.exists():
            return
        with self.ids_path.open("rb") as handle:
            handle.seek(self._offset)
            chunk = handle.read()
        end = chunk.rfind(b"\n") + 1  # a line still being written waits for the next call
        self._offset += end
        for raw in chunk[:end].decode(errors="replace").splitlines():
            if raw in self.seen:
                self.duplicates.append(raw)
                continue
            self.seen.add(raw)
            found = re.fullmatch(r"incident-(\d+)\.([a-z]+)\.([^@]+)@.+", raw)
            if not found:
                self.unparsed += 1
                continue
            self.by_incident.setdefault(int(found[1]), Counter())[found[2]] += 1

    def count(self, incidents: Iterable[int], kind: str) -> int:
        return sum(self.by_incident.get(i, Counter())[kind] for i in incidents)

    async def stop(self) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.close()
        out, _ = await asyncio.wait_for(self.process.communicate(), 60)
        self.follow()
        counts: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
        return counts


class Monitor:
    """``monitor run`` as a sidecar runs it; its stderr (JSON logs) drained to a file."""

    def __init__(self, work: Path, sink_port: int) -> None:
        self.work = work
        self.db = work / "monitor.db"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            "MONITOR_CONFIG": str(work / "checks"),
            "MONITOR_MESSAGES": str(REPO / "messages"),
            "MONITOR_DB": str(self.db),
            "MONITOR_LISTEN": f"127.0.0.1:{self.port}",
            "MONITOR_SMTP_URL": f"smtp://127.0.0.1:{sink_port}?starttls=never",
            "MONITOR_SMTP_FROM": "status@example.com",
        }
        self.levels: Counter[str] = Counter()
        self.errors: list[str] = []

    async def import_people(self, csv: Path) -> str:
        code, out, err = await run_cli("users", "import", str(csv), env=self.env)
        if code != 0:
            raise RuntimeError(f"monitor users import failed: {err}")
        return out.strip()

    async def start(self) -> None:
        self.process = await start_monitor(self.env)
        self.pid = self.process.pid
        self._drain = asyncio.create_task(self._drain_logs())
        ready = asyncio.create_task(wait_http(f"{self.url}/readyz", "ready", deadline=300))
        exited = asyncio.create_task(self.process.wait())
        await asyncio.wait({ready, exited}, return_when=asyncio.FIRST_COMPLETED)
        if not ready.done():
            ready.cancel()
            await self._drain
            tail = (self.work / "monitor.log").read_text(errors="replace").splitlines()[-3:]
            raise RuntimeError(
                f"the monitor exited ({self.process.returncode}) before it was ready; "
                + "\n".join(["last lines of its log:", *tail])
            )
        exited.cancel()
        ready.result()

    async def _drain_logs(self) -> None:
        assert self.process.stderr is not None
        with (self.work / "monitor.log").open("wb") as log:
            async for line in self.process.stderr:
                log.write(line)
                try:
                    level = str(json.loads(line).get("level", "?"))
                except ValueError:
                    level = "text"
                self.levels[level] += 1
                if level.lower() in ("error", "critical", "text") and len(self.errors) < 5:
                    self.errors.append(line.decode(errors="replace")[:400])

    async def stop(self) -> int:
        if self.process.returncode is None:
            self.process.terminate()
        try:
            await asyncio.wait_for(self.process.wait(), 90)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
        await self._drain
        return self.process.returncode or 0


# --- what is measured ---------------------------------------------------------------------------


def proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) of ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def machine_busy() -> float:
    fields = [int(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return (sum(fields) - fields[3] - fields[4]) / TICK  # all but idle and iowait


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return math.nan


def open_fds(pid: int) -> Counter[str]:
    """Open file descriptors by kind: socket, pipe, anon_inode, db (the database's files), file."""
    kinds: Counter[str] = Counter()
    directory = f"/proc/{pid}/fd"
    for fd in os.listdir(directory):
        try:
            target = os.readlink(f"{directory}/{fd}")
        except OSError:  # closed meanwhile
            continue
        kind = target.split(":", 1)[0] if ":" in target and not target.startswith("/") else ""
        if not kind:
            kind = "db" if ".db" in target else "file"
        kinds[kind] += 1
    return kinds


def db_bytes(db: Path) -> dict[str, int]:
    sizes = {}
    for suffix in ("", "-wal", "-shm"):
        path = Path(f"{db}{suffix}")
        sizes[suffix or "db"] = path.stat().st_size if path.exists() else 0
    return sizes


def table_rows(db: Path, tables: Iterable[str]) -> dict[str, int]:
    """Row counts, read from a second (read-only) connection as any reader may in WAL mode."""
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)) as c:
            return {t: int(c.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]) for t in tables}
    except sqlite3.Error:
        return {}


def table_bytes(db: Path) -> dict[str, int]:
    """Bytes per table with its indexes (dbstat), when this SQLite has it."""
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as c:
            rows = c.execute(
                "SELECT coalesce(m.tbl_name, s.name), SUM(s.pgsize) FROM dbstat s "
                "LEFT JOIN sqlite_master m ON m.name = s.name GROUP BY 1 ORDER BY 2 DESC"
            ).fetchall()
    except sqlite3.Error:
        return {}
    return {str(name): int(size) for name, size in rows}


@dataclass
class Sample:
    at: float
    phase: str
    rss_mb: float
    fds: Counter[str]
    db: dict[str, int]
    rows: dict[str, int]
    received: int

    @property
    def fd_total(self) -> int:
        return sum(self.fds.values())

    @property
    def db_mb(self) -> float:
        return sum(self.db.values()) / 1e6


@dataclass
class Scrape:
    """What this benchmark reads from /metrics: summed series, and the lateness buckets."""

    at: float
    seconds: float
    size: int
    values: dict[str, float]
    lateness: list[tuple[float, float]]  # (le, cumulative count)


_WANTED = re.compile(
    r"^(monitor_probes_total|monitor_messages_total|monitor_outbox_pending|"
    r"monitor_incidents_open|monitor_probe_lateness_seconds_(?:bucket|count|sum))"
    r"(\{[^}]*\})? (\S+)$"
)


def parse_metrics(text: str, at: float, seconds: float) -> Scrape:
    values: dict[str, float] = {}
    lateness: list[tuple[float, float]] = []
    for line in text.splitlines():
        found = _WANTED.match(line)
        if not found:
            continue
        name, labels, value = found[1], found[2] or "", float(found[3])
        if name == "monitor_probe_lateness_seconds_bucket":
            le = re.search(r'le="([^"]+)"', labels)
            lateness.append((float(le[1]) if le else math.inf, value))
            continue
        values[name] = values.get(name, 0.0) + value
        for key in ("result", "kind", "outcome"):
            label = re.search(rf'{key}="([^"]+)"', labels)
            if label:
                series = f"{name}{{{key}={label[1]}}}"
                values[series] = values.get(series, 0.0) + value
    return Scrape(at, seconds, len(text), values, sorted(lateness))


async def scrape(session: aiohttp.ClientSession, url: str) -> Scrape:
    started = time.perf_counter()
    async with session.get(f"{url}/metrics", timeout=aiohttp.ClientTimeout(total=120)) as resp:
        text = await resp.text()
    return parse_metrics(text, time.time(), time.perf_counter() - started)


@dataclass
class Lateness:
    """Probe lateness between two scrapes, from the histogram's buckets."""

    probes: float
    seconds: float
    buckets: list[tuple[float, float]]  # (le, cumulative count) over the window

    @classmethod
    def between(cls, first: Scrape, last: Scrape) -> Lateness:
        before = dict(first.lateness)
        buckets = [(le, count - before.get(le, 0.0)) for le, count in last.lateness]
        probes = buckets[-1][1] if buckets else 0.0
        return cls(probes, last.at - first.at, buckets)

    def quantile(self, q: float) -> tuple[float, float, float]:
        """(estimate, bucket low, bucket high) in seconds, interpolated as histogram_quantile."""
        rank = q * self.probes
        low, below = 0.0, 0.0
        for le, count in self.buckets:
            if count >= rank:
                if math.isinf(le):
                    return low, low, le
                share = (rank - below) / (count - below) if count > below else 1.0
                return low + (le - low) * share, low, le
            low, below = le, count
        return math.nan, math.nan, math.nan

    def share_within(self, seconds: float) -> float:
        for le, count in self.buckets:
            if math.isclose(le, seconds):
                return count / self.probes if self.probes else math.nan
        return math.nan

    def over(self, seconds: float) -> float:
        within = next((c for le, c in self.buckets if math.isclose(le, seconds)), math.nan)
        return self.probes - within

    def describe(self) -> str:
        p50, p99 = self.quantile(0.50), self.quantile(0.99)
        return (
            f"{self.probes:,.0f} probes ({self.probes / max(self.seconds, 1e-9):,.0f}/s); "
            f"p50 ~{p50[0] * 1000:.1f} ms (bucket {_ms(p50[1])}-{_ms(p50[2])}), "
            f"p99 ~{p99[0] * 1000:.1f} ms (bucket {_ms(p99[1])}-{_ms(p99[2])}); "
            f"{self.share_within(0.05):.2%} within 50 ms, {self.over(0.1):,.0f} over 100 ms, "
            f"{self.over(1.0):,.0f} over 1 s"
        )

    def met(self) -> bool:
        return self.share_within(0.05) >= 0.99


def _ms(seconds: float) -> str:
    return "inf" if math.isinf(seconds) else f"{seconds * 1000:g}ms"


class Load:
    """CPU used by the monitor, the target, the sink, this script and everything else."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.marks: list[tuple[float, float, dict[str, float]]] = []

    def mark(self) -> None:
        own = {name: proc_cpu(pid) for name, pid in self.pids.items()}
        self.marks.append((time.time(), machine_busy(), own))

    def between(self, start: float, end: float) -> dict[str, float]:
        """Cores used on average between the marks nearest ``start`` and ``end``."""
        first = min(self.marks, key=lambda m: abs(m[0] - start))
        last = min(self.marks, key=lambda m: abs(m[0] - end))
        seconds = last[0] - first[0]
        if seconds <= 0:
            return {}
        cores = {name: (last[2][name] - first[2][name]) / seconds for name in self.pids}
        cores["others"] = max(0.0, (last[1] - first[1]) / seconds - sum(cores.values()))
        return cores


def describe_load(cores: dict[str, float]) -> str:
    return ", ".join(f"{name} {value:.2f}" for name, value in cores.items())


# --- a run -------------------------------------------------------------------------------------


@dataclass
class Run:
    """The parts of one run and what was seen: samples, scrapes, phase times."""

    args: argparse.Namespace
    work: Path
    sink: Sink
    monitor: Monitor
    target: Target
    session: aiohttp.ClientSession
    load: Load
    phase: str = "start"
    samples: list[Sample] = field(default_factory=list)
    scrapes: dict[str, Scrape] = field(default_factory=dict)
    events: dict[str, float] = field(default_factory=dict)

    def note(self, name: str) -> None:
        self.events[name] = time.time()
        self.phase = name
        say(name)

    async def fail(self, systems: Iterable[str]) -> None:
        body = "\n".join(f"/{name}" for name in systems)
        async with self.session.put(f"{self.target.url}/-/fail", data=body) as resp:
            resp.raise_for_status()

    async def scrape(self, label: str) -> Scrape:
        result = await scrape(self.session, self.monitor.url)
        self.scrapes[label] = result
        return result

    async def sample_forever(self) -> None:
        rows: dict[str, int] = {}
        rows_at = 0.0
        while True:
            now = time.time()
            self.sink.follow()
            self.load.mark()
            if now - rows_at >= SAMPLE_ROWS_EVERY:
                rows, rows_at = table_rows(self.monitor.db, ("results", "outbox")), now
            with contextlib.suppress(OSError):
                self.samples.append(
                    Sample(
                        now,
                        self.phase,
                        rss_mb(self.monitor.pid),
                        open_fds(self.monitor.pid),
                        db_bytes(self.monitor.db),
                        rows,
                        len(self.sink.seen),
                    )
                )
            await asyncio.sleep(self.args.sample_every)

    async def until(self, done: Callable[[], bool], limit: float, what: str) -> bool:
        """Wait (following the sink) until ``done()``; False after ``limit`` seconds."""
        end = time.time() + limit
        while time.time() < end:
            self.sink.follow()
            if done():
                return True
            if self.monitor.process.returncode is not None:
                raise RuntimeError(f"the monitor exited ({self.monitor.process.returncode})")
            await asyncio.sleep(1.0)
        say(f"gave up waiting for {what} after {limit:.0f} s")
        return False

    def new_incidents(self, known: set[int]) -> set[int]:
        return set(self.sink.by_incident) - known


async def with_world(
    args: argparse.Namespace, body: Callable[[Run], Awaitable[None]]
) -> dict[str, Any]:
    """Build the checks and people, start target, sink and monitor; run ``body``; stop all."""
    keep = args.keep
    with contextlib.ExitStack() as stack:
        if keep:
            work = Path(keep)
            os.makedirs(work, exist_ok=True)
        else:
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="monitor-soak-")))
        target = Target()
        stack.callback(target.close)
        groups = outage_groups(args.outages)
        write_checks(work / "checks", target.url, args.checks, args.every, 5.0, reuse=False)
        (work / "checks" / "monitor.yaml").write_text(
            settings_yaml(args.max_age, args.keep_results)
        )
        write_people(work / "people.csv", args.people, groups)
        sink = Sink(work, args.mail_delay)
        await sink.start()
        monitor = Monitor(work, sink.port)
        say(await monitor.import_people(work / "people.csv"))
        started = time.time()
        await monitor.start()
        say(f"monitor ready after {time.time() - started:.1f} s (pid {monitor.pid})")
        pids = {"monitor": monitor.pid, "target": target.process.pid, "sink": sink.process.pid}
        pids["this script"] = os.getpid()
        async with aiohttp.ClientSession() as session:
            run = Run(args, work, sink, monitor, target, session, Load(pids))
            run.note("ready")
            sampler = asyncio.create_task(run.sample_forever())
            try:
                await body(run)
                run.note("end")
                await run.scrape("end")
            finally:
                sampler.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sampler
                code = await monitor.stop()
                counts = await sink.stop()
                # Written before the ExitStack removes a temporary work dir.
                (work / "samples.json").write_text(
                    json.dumps([{**vars(x), "fds": dict(x.fds)} for x in run.samples])
                )
        return {
            "run": run,
            "exit_code": code,
            "sink": counts,
            "tables": table_bytes(monitor.db),
            "rows": table_rows(
                monitor.db, ("results", "outbox", "told", "timeline", "transitions", "incidents")
            ),
        }


# --- soak ---------------------------------------------------------------------------------------


@dataclass
class Outage:
    systems: list[str]
    incidents: set[int] = field(default_factory=set)
    times: dict[str, float] = field(default_factory=dict)


async def soak_body(run: Run, outages: list[Outage]) -> None:
    args = run.args
    began = time.time()
    duration = args.minutes * 60
    people = args.people
    # Every system's first results and UNKNOWN -> UP, then a quiet baseline.
    await asyncio.sleep(2 * args.every + 5)
    await run.scrape("baseline")
    known: set[int] = set()
    for k, outage in enumerate(outages):
        nominal = began + duration * (0.05 + 0.3 * k)
        await asyncio.sleep(max(0.0, nominal - time.time()))
        run.note(f"outage {k + 1}: {', '.join(outage.systems)} fail")
        outage.times["fail"] = time.time()
        await run.fail(outage.systems)

        def acknowledged(o: Outage = outage, before: set[int] = known) -> bool:
            o.incidents = run.new_incidents(before)
            got = run.sink.count(o.incidents, "acknowledge")
            if got and "first" not in o.times:
                o.times["first"] = time.time()
            return bool(got >= people)

        await run.until(acknowledged, args.fanout_limit, f"outage {k + 1}'s acknowledgements")
        outage.times["acknowledged"] = time.time()
        run.note(f"outage {k + 1}: acknowledgements in (incidents {sorted(outage.incidents)})")
        await run.scrape(f"outage {k + 1} acknowledged")
        await run.fail([])
        outage.times["heal"] = time.time()

        def resolved(o: Outage = outage) -> bool:
            return run.sink.count(o.incidents, "resolved") >= run.sink.count(
                o.incidents, "acknowledge"
            )

        await run.until(resolved, args.fanout_limit, f"outage {k + 1}'s resolved messages")
        outage.times["resolved"] = time.time()
        known |= outage.incidents
        run.note(f"outage {k + 1}: resolved messages in")
        await run.scrape(f"outage {k + 1} resolved")
    rest = began + duration - time.time()
    if rest > 0:
        run.note(f"steady until the end ({rest / 60:.1f} min)")
        await asyncio.sleep(rest)
    else:
        say(f"the outages took {-rest / 60:.1f} min longer than --minutes")


def soak_report(args: argparse.Namespace, world: dict[str, Any], outages: list[Outage]) -> bool:
    run: Run = world["run"]
    samples = run.samples
    header(args, f"soak: {args.checks:,} checks every {args.every:g}s, {args.people:,} people")
    begin, end = run.events["ready"], run.events["end"]
    print(
        f"ran {(end - begin) / 60:.1f} min after the monitor was ready; "
        f"load (cores): {describe_load(run.load.between(begin, end))}"
    )

    print("\noutages (times from the failure):")
    print(
        f"  {'#':>2} {'incidents':>10} {'first ack':>9} {'all acks':>9} {'all resolved':>12} "
        f"{'acks':>8} {'resolved':>8} {'per person':>10} {'msg/s':>6} {'others':>6}"
    )
    sink = run.sink
    exact = True
    for k, o in enumerate(outages, 1):
        t = o.times
        acks = sink.count(o.incidents, "acknowledge")
        resolved = sink.count(o.incidents, "resolved")
        other = sum(
            n for i in o.incidents for kind, n in sink.by_incident.get(i, Counter()).items()
            if kind not in ("acknowledge", "resolved")
        )  # fmt: skip
        per_person = (acks + resolved + other) / args.people
        exact &= acks == resolved == args.people and other == 0
        sending = (t.get("resolved", end) - t["fail"]) - (t["heal"] - t["acknowledged"])
        start = t.get("first", t["fail"])
        cores = run.load.between(start, t.get("resolved", end))
        print(
            f"  {k:>2} {','.join(map(str, sorted(o.incidents))):>10} "
            f"{_since(t, 'first'):>9} {_since(t, 'acknowledged'):>9} {_since(t, 'resolved'):>12} "
            f"{acks:>8,} {resolved:>8,} {per_person:>10.2f} "
            f"{(acks + resolved) / max(sending, 1e-9):>6.0f} {cores.get('others', math.nan):>6.2f}"
        )
    unrelated = len(sink.seen) - sum(
        sum(sink.by_incident.get(i, Counter()).values()) for o in outages for i in o.incidents
    )
    distinct = not sink.duplicates and sink.unparsed == 0
    print(
        f"  the sink accepted {world['sink']['messages']:,} messages, {len(sink.seen):,} distinct "
        f"Message-IDs; {len(sink.duplicates):,} repeated, {sink.unparsed} without one, "
        f"{unrelated:,} from no scripted outage"
    )
    if sink.duplicates:
        print(f"  repeated, e.g.: {sink.duplicates[:3]}")

    # Warm-up ends with the first outage's last resolved message.
    warm_at = outages[0].times.get("resolved", end)
    after = [s for s in samples if s.at >= warm_at] or samples[-1:]
    warm, last = after[0], samples[-1]
    peak = max(after, key=lambda s: s.rss_mb)
    growth_max = (peak.rss_mb - warm.rss_mb) / warm.rss_mb
    growth_end = (last.rss_mb - warm.rss_mb) / warm.rss_mb
    print(
        f"\nRSS: {samples[0].rss_mb:.0f} MB when ready, peak "
        f"{max(s.rss_mb for s in samples):.0f} MB overall; after warm-up (the first outage's "
        "fan-out done, "
        f"{(warm.at - begin) / 60:.1f} min in) {warm.rss_mb:.0f} MB, then max {peak.rss_mb:.0f} MB "
        f"({growth_max:+.1%}) and {last.rss_mb:.0f} MB at the end ({growth_end:+.1%})"
    )
    tail = [s for s in samples if s.at >= end - 60] or samples[-1:]
    head = [s for s in after if s.at < warm.at + 60]
    fd_first, fd_last = samples[0].fd_total, last.fd_total
    fd_growth = max(s.fd_total for s in tail) - max(s.fd_total for s in head)
    steady_kinds = {k for s in samples for k in s.fds} - {"socket"}
    print(
        f"open fds: first {fd_first}, last {fd_last}, max {max(s.fd_total for s in samples)}; "
        f"max in the last minute minus max in the minute after warm-up: {fd_growth:+d}"
    )
    for kind in sorted({k for s in samples for k in s.fds}):
        values = [s.fds.get(kind, 0) for s in samples]
        print(f"  {kind:<10} first {values[0]:>4} last {values[-1]:>4} max {max(values):>4}")
    fd_files_grew = any(last.fds.get(k, 0) > warm.fds.get(k, 0) for k in steady_kinds)

    print("\ndatabase (db + -wal + -shm) over time:")
    print(
        f"  {'min':>5} {'phase':<44} {'db':>7} {'wal':>7} {'shm':>5} {'results':>9} {'outbox':>8} "
        f"{'RSS':>6} {'fds':>4}"
    )
    shown = _spread(samples, 16)
    for s in shown:
        print(
            f"  {(s.at - begin) / 60:5.1f} {s.phase[:44]:<44} {s.db['db'] / 1e6:6.1f}M "
            f"{s.db['-wal'] / 1e6:6.1f}M {s.db['-shm'] / 1e6:4.1f}M "
            f"{s.rows.get('results', 0):>9,} {s.rows.get('outbox', 0):>8,} "
            f"{s.rss_mb:5.0f}M {s.fd_total:>4}"
        )
    # A prune pass starts 60 s after the last one ended and takes a while itself (one small
    # delete per system): allow two minutes of results on top of what retention keeps.
    bound = args.checks * (
        min(args.keep_results, parse_duration(args.max_age) / args.every) + 120 / args.every
    )
    results_max = max((s.rows.get("results", 0) for s in after), default=0)
    print(
        f"  retention: max_age {args.max_age}, max_results_per_system {args.keep_results}, pruned "
        f"every 60 s: results may hold {bound:,.0f} rows (keep, or max_age of probes, + two "
        f"minutes'); held at most {results_max:,} after warm-up"
    )
    print(f"  at the end, rows: {world['rows']}")
    if world["tables"]:
        print(
            "  at the end, MB by table (with its indexes): "
            + ", ".join(f"{t} {b / 1e6:.1f}" for t, b in list(world["tables"].items())[:8])
        )
    db_warm, db_end = warm.db_mb, last.db_mb
    # Incidents, with every message and who was told what, are kept at least a day (the daily
    # per-person limit counts them; tests/test_retention.py prunes them a day on), so within
    # the soak each outage adds its messages for good. Bounded then means: results within
    # retention's bound, no growth between outages, and each outage adding about the same.
    # The sink has every message a little before the monitor has marked the last ones sent.
    settled = 30.0
    added = [
        _size_at(samples, o.times["resolved"] + settled) - _size_before(samples, o.times["fail"])
        for o in outages
        if "resolved" in o.times
    ]
    # Between outages: until the next one's failure, or the end of the run.
    stops = [*(o.times.get("fail", end) for o in outages[1:]), end]
    quiet_growth = [
        _growth_within(samples, o.times["resolved"] + settled, stop)
        for o, stop in zip(outages, stops, strict=True)
        if "resolved" in o.times
    ]
    print(
        f"  size after warm-up {db_warm:.1f} MB, at the end {db_end:.1f} MB; each outage added "
        f"{', '.join(f'{mb:+.1f} MB' for mb in added)} (its messages, kept a day); growth "
        f"between outages {', '.join(f'{g:+.1%}' for g in quiet_growth)}"
    )

    print("\nprobe lateness (monitor_probe_lateness_seconds between scrapes):")
    names = list(run.scrapes)
    for first, second in itertools.pairwise(names):
        window = Lateness.between(run.scrapes[first], run.scrapes[second])
        print(f"  {first} -> {second}: {window.describe()}")
    end_scrape = run.scrapes.get("end")
    if end_scrape:
        print(
            f"  /metrics at the end: {end_scrape.size / 1e6:.1f} MB in {end_scrape.seconds:.2f} s; "
            f"outbox pending {end_scrape.values.get('monitor_outbox_pending', math.nan):.0f}; "
            f"probes failed {end_scrape.values.get('monitor_probes_total{result=failure}', 0):,.0f}"
        )
    print(f"monitor log lines by level: {dict(run.monitor.levels)}; exit code {world['exit_code']}")
    for line in run.monitor.errors:
        print(f"  {line.strip()}")

    rss_ok = growth_max < 0.10
    fd_ok = fd_growth <= 10 and not fd_files_grew
    alike = bool(added) and min(added) > 0 and max(added) <= 1.25 * min(added)
    db_ok = results_max <= bound and alike and all(g < 0.10 for g in quiet_growth)
    verdicts = [
        (f"RSS growth after warm-up < 10%: max {growth_max:+.1%}, end {growth_end:+.1%}", rss_ok),
        (f"no fd growth: {fd_growth:+d} (all kinds), files and pipes "
         f"{'grew' if fd_files_grew else 'flat'}", fd_ok),
        (f"DB bounded by retention: results <= {bound:,.0f} rows ({results_max:,}); each "
         f"outage adds alike (largest <= 1.25x smallest); < 10% growth between outages", db_ok),
        ("2 messages per person per outage, Message-IDs distinct", exact and distinct),
    ]  # fmt: skip
    print("\nverdicts:")
    for text, met in verdicts:
        print(f"  {text}: {'met' if met else 'MISSED'}")
    return all(met for _, met in verdicts)


def _size_at(samples: list[Sample], at: float) -> float:
    """The database size in the first sample at or after ``at`` (else the last one)."""
    return next((s.db_mb for s in samples if s.at >= at), samples[-1].db_mb)


def _size_before(samples: list[Sample], at: float) -> float:
    """The database size in the last sample before ``at`` (else the first one)."""
    return next((s.db_mb for s in reversed(samples) if s.at < at), samples[0].db_mb)


def _growth_within(samples: list[Sample], start: float, end: float) -> float:
    """How much larger the database got within [start, end] than at its start."""
    inside = [s.db_mb for s in samples if start <= s.at <= end]
    return max(inside) / inside[0] - 1 if inside else 0.0


def _since(times: dict[str, float], name: str) -> str:
    return f"{times[name] - times['fail']:.0f}s" if name in times else "-"


def _spread(samples: list[Sample], n: int) -> list[Sample]:
    """About ``n`` samples spread over the run, plus the first of each phase and the last."""
    step = max(1, len(samples) // n)
    chosen = {id(s): s for s in samples[::step]}
    previous = ""
    for s in samples:
        if s.phase != previous:
            chosen[id(s)] = s
            previous = s.phase
    chosen[id(samples[-1])] = samples[-1]
    return sorted(chosen.values(), key=lambda s: s.at)


def parse_duration(text: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
    found = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)", text.strip())
    if not found:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r}")
    return float(found[1]) * units[found[2]]


# --- slow mail ----------------------------------------------------------------------------------


async def slow_mail_body(run: Run, outage: Outage) -> None:
    args = run.args
    # Past the first two rounds (first results, then 10,000 UNKNOWN -> UP), as probes.py does.
    await asyncio.sleep(2 * args.every + 5)
    run.note("quiet window")
    await run.scrape("quiet start")
    await asyncio.sleep(args.window)
    await run.scrape("quiet end")
    run.note("outage: fan-out window")
    await run.scrape("fan-out start")
    outage.times["fail"] = time.time()
    await run.fail(outage.systems)

    def started() -> bool:
        outage.incidents = run.new_incidents(set())
        return run.sink.count(outage.incidents, "acknowledge") > 0

    await run.until(started, args.fanout_limit, "the first acknowledgement")
    outage.times["first"] = time.time()
    rest = outage.times["fail"] + args.window - time.time()
    await asyncio.sleep(max(rest, 0.0))
    await run.scrape("fan-out end")
    outage.times["end"] = time.time()
    await run.fail([])


def slow_mail_report(args: argparse.Namespace, world: dict[str, Any], outage: Outage) -> bool:
    run: Run = world["run"]
    s = run.scrapes
    header(
        args,
        f"slow mail: {args.checks:,} checks every {args.every:g}s, {args.people:,} people, "
        f"the mail server {args.mail_delay:g} s per message",
    )
    quiet = Lateness.between(s["quiet start"], s["quiet end"])
    busy = Lateness.between(s["fan-out start"], s["fan-out end"])
    t = outage.times
    decided = s["fan-out end"].values
    sent = decided.get("monitor_messages_total{outcome=sent}", 0.0)
    pending = decided.get("monitor_outbox_pending", math.nan)
    quiet_load = run.load.between(s["quiet start"].at, s["quiet end"].at)
    busy_load = run.load.between(t["first"], s["fan-out end"].at)
    print(f"quiet window  ({quiet.seconds:.0f} s): {quiet.describe()}")
    print(f"  load (cores): {describe_load(quiet_load)}")
    print(
        f"fan-out window ({busy.seconds:.0f} s from the failure; first acknowledgement "
        f"{t['first'] - t['fail']:.0f} s in): {busy.describe()}"
    )
    print(f"  load (cores): {describe_load(busy_load)}")
    print(
        f"  at its end: {sent:,.0f} sent, {pending:,.0f} decided and waiting in the outbox; the "
        f"sink had accepted {run.sink.count(outage.incidents, 'acknowledge'):,} acknowledgements"
        f" (incidents {sorted(outage.incidents)})"
    )
    print(
        "  /metrics scrapes took "
        + ", ".join(f"{v.seconds:.2f} s" for v in s.values())
        + f" ({s['end'].size / 1e6:.1f} MB each)"
    )
    print(f"monitor log lines by level: {dict(run.monitor.levels)}; exit code {world['exit_code']}")
    for line in run.monitor.errors:
        print(f"  {line.strip()}")
    p99 = busy.quantile(0.99)
    met = busy.met() and pending > 0
    print(
        f"\nverdict: p99 probe lateness during the fan-out < 50 ms: {busy.share_within(0.05):.2%} "
        f"within 50 ms, p99 ~{p99[0] * 1000:.1f} ms: {'met' if busy.met() else 'MISSED'}"
        + ("" if pending > 0 else " (but the fan-out was over before the window ended)")
    )
    return met


# --- main ---------------------------------------------------------------------------------------


def header(args: argparse.Namespace, what: str) -> None:
    print(
        f"\n{what}\nmachine: {os.cpu_count()} cores ({platform.machine()}), Python "
        f"{platform.python_version()}, aiohttp {aiohttp.__version__}, "
        f"{platform.system()} {platform.release()}, {time.strftime('%Y-%m-%d %H:%M')}"
    )


async def main_async(args: argparse.Namespace) -> bool:
    groups = outage_groups(args.outages)
    outages = [Outage(systems) for systems in groups]
    if args.scenario == "soak":
        world = await with_world(args, lambda run: soak_body(run, outages))
        return soak_report(args, world, outages)
    world = await with_world(args, lambda run: slow_mail_body(run, outages[0]))
    return slow_mail_report(args, world, outages[0])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add = parser.add_argument
    add("--scenario", choices=["soak", "slow-mail"], default="soak")
    add("--minutes", type=float, default=30.0, help="soak: how long (default 30)")
    add("--checks", type=int, default=10_000)
    add("--every", type=float, default=10.0, help="every check's interval in s (default 10)")
    add("--people", type=int, help="default: 100,000 (soak), 10,000 (slow-mail)")
    add("--outages", type=int, help="soak: default 3")
    add("--max-age", default="5m", help="retention.max_age (default 5m)")
    add("--keep-results", type=int, default=20, help="retention.max_results_per_system (20)")
    add("--mail-delay", type=float, help="seconds the sink holds each reply (slow-mail: 2)")
    add("--window", type=float, default=90.0, help="slow-mail: seconds per window (default 90)")
    add("--fanout-limit", type=float, default=1800.0, help="longest wait for a fan-out, s")
    add("--sample-every", type=float, default=5.0, help="seconds between /proc samples")
    add("--keep", help="build the world in this directory and keep it")
    args = parser.parse_args()
    slow = args.scenario == "slow-mail"
    args.people = args.people or (10_000 if slow else 100_000)
    args.outages = 1 if slow else (args.outages or 3)
    args.mail_delay = args.mail_delay if args.mail_delay is not None else (2.0 if slow else 0.0)
    parse_duration(args.max_age)
    ok = asyncio.run(main_async(args))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
