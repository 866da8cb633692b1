"""Probe throughput, lateness and memory: the monitor against a bare aiohttp loop.

    python benchmarks/probes.py                    # both scenarios, both modes, a table (~5 min)
    python benchmarks/probes.py --mode fresh --scenario 1000/s --duration 10
    python benchmarks/probes.py --db postgresql    # the store in a throwaway PostgreSQL

Each measurement is a process of its own, run one after the other against one local target
(``benchmarks/target.py``, a separate process, so it does not take the measured process's CPU),
all on 127.0.0.1:

- ``bare``: a plain aiohttp loop doing the same GETs with the same connection policy (connector
  limit, keep-alive or a fresh connection each time) as fast as it can with ``--concurrency``
  workers. This is the ceiling.
- ``monitor``: the whole monitor as ``monitor run`` builds it (``App``, less its HTTP server)
  with N HTTP checks in a generated check directory: real config loading, ``ProbeScheduler``,
  ``Monitor``, ``Prober``, ``SQLiteStore`` in a temp dir (``--db postgresql``: a fresh database
  of a throwaway local cluster, ``tests/postgres.py``, with PostgreSQL's durable defaults, one
  cluster for the run and a new database for each measurement), ``Metrics``, notifier, JSON
  logs (to /dev/null). Lateness is what the scheduler hands each probe (plus any wait for a free
  connection); peak RSS is the process's ``ru_maxrss``.

Scenarios:

- ``ceiling``: the monitor is asked for ``--load`` times the rate the bare loop just reached
  (checks every 2 s, ``fail_after`` out of reach so that the notifier stays out of it); the
  ratio of the two rates is the figure of merit.
- ``1000/s``: 10,000 checks every 10 s, measured once the first two rounds (every system's
  first result and its UNKNOWN -> UP) are over; lateness p50/p99 and peak RSS.

This machine is shared: the table says how many cores other processes used meanwhile, and
"per CPU-s" compares the two sides by probes per second of their own CPU, which such load
disturbs less than probes per second of wall time. With ``--db postgresql`` the server's
processes count among those others.

``--role bare|monitor --url URL ...`` runs one measurement alone and prints it as JSON (handy
under a profiler: ``py-spy record -- python benchmarks/probes.py --role monitor ...``; with
``--db postgresql`` it takes an empty database's URL from ``BENCH_PG_URL``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import logging
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from array import array
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp

from monitor.app import App, Options
from monitor.cli import run_on_fastest_loop
from monitor.logs import configure
from monitor.model import Health, Transition

# tests/postgres.py, the throwaway cluster the tests use, serves --db postgresql.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from postgres import DURABLE_SETTINGS, Cluster, start_cluster

HERE = Path(__file__).resolve().parent
MESSAGES = HERE.parent / "messages"  # the shipped templates: the app needs them to start
MAX_CONNECTIONS = 200  # the monitor's default (checks/monitor.yaml: http.max_connections)
Row = dict[str, Any]
BACKENDS = ("sqlite", "postgresql")
# The database's URL (with its password) reaches a child by environment, never by argv.
URL_VARIABLE = "BENCH_PG_URL"

# --- measuring ---------------------------------------------------------------------------------


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kilobytes


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank ``q`` percentile of ``values`` (0 when empty)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


class Recorder:
    """When each probe finished, whether it passed and how late it started; the process's CPU
    time at the edges of the stretches to report."""

    def __init__(self) -> None:
        self.finished: array[float] = array("d")
        self.passed: array[int] = array("b")
        self.late: array[float] = array("d")
        self.failures: list[tuple[float, str]] = []
        self.cpu_at: dict[float, float] = {}

    def count(self, ok: bool, lateness: float = 0.0, reason: str = "") -> None:
        now = time.time()
        self.finished.append(now)
        self.passed.append(ok)
        self.late.append(lateness)
        if not ok:
            self.failures.append((now, reason))

    async def sample_cpu_until(self, edges: Sequence[float]) -> None:
        """Note the CPU time used so far at each of ``edges`` (wall-clock times)."""
        for edge in sorted(edges):
            await asyncio.sleep(max(0.0, edge - time.time()))
            self.cpu_at[edge] = cpu_seconds()

    def stretch(self, start: float, end: float) -> dict[str, Any]:
        inside = [i for i, t in enumerate(self.finished) if start <= t < end]
        seconds = end - start
        passed = sum(self.passed[i] for i in inside)
        late = [self.late[i] for i in inside]
        reasons = Counter(r for t, r in self.failures if start <= t < end)
        return {
            "start": start,
            "end": end,
            "probes_per_s": passed / seconds,
            "failed_per_s": (len(inside) - passed) / seconds,
            "lateness_p50": percentile(late, 50),
            "lateness_p99": percentile(late, 99),
            "lateness_max": max(late, default=0.0),
            "cpu": (self.cpu_at[end] - self.cpu_at[start]) / seconds,
            "failures": dict(reasons.most_common(3)),
        }


class GcPauses:
    """Times the cyclic collector's pauses: each one stalls every probe due meanwhile."""

    def __init__(self) -> None:
        self.started = 0.0
        self.pauses: list[tuple[float, int, float]] = []  # (when, generation, seconds)
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self.started = time.perf_counter()
        else:
            pause = time.perf_counter() - self.started
            self.pauses.append((time.time(), info["generation"], pause))

    def stretch(self, start: float, end: float) -> dict[str, Any]:
        inside = [(g, p) for t, g, p in self.pauses if start <= t < end]
        full = [p for g, p in inside if g == 2]
        young = [p for g, p in inside if g < 2]
        return {
            "gc_full": len(full),
            "gc_full_max_ms": max(full, default=0.0) * 1000,
            "gc_young_max_ms": max(young, default=0.0) * 1000,
            # The collector's share of the window: what a collection costs adds up per probe.
            "gc_share": sum(p for _, p in inside) / (end - start),
            "gc_young": len(young),
        }


# --- the ceiling: a bare aiohttp loop ----------------------------------------------------------


async def run_bare(
    url: str, reuse: bool, concurrency: int, warmup: float, duration: float
) -> dict[str, Any]:
    recorder = Recorder()
    now = time.time()
    start, end = now + warmup, now + warmup + duration
    connector = aiohttp.TCPConnector(limit=MAX_CONNECTIONS, limit_per_host=0, force_close=not reuse)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker(n: int) -> None:
            target = f"{url}/bare-{n}"
            while time.time() < end:
                try:
                    async with session.get(target) as resp:
                        await resp.read()
                        recorder.count(resp.status == 200, reason=f"status {resp.status}")
                except (aiohttp.ClientError, OSError) as exc:
                    recorder.count(False, reason=type(exc).__name__)

        workers = [asyncio.create_task(worker(n)) for n in range(concurrency)]
        await recorder.sample_cpu_until([start, end])
        await asyncio.gather(*workers)
    return {"role": "bare", **recorder.stretch(start, end), "peak_rss_mb": peak_rss_mb()}


# --- the monitor --------------------------------------------------------------------------------


def write_checks(
    directory: Path,
    url: str,
    checks: int,
    every: float,
    timeout: float,
    reuse: bool,
    fail_after: int = 3,
) -> None:
    """A check directory as a user would write it: monitor.yaml and one file per system."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "monitor.yaml").write_text(
        "http:\n"
        f"  max_connections: {MAX_CONNECTIONS}\n"
        f"  reuse_connections: {'true' if reuse else 'false'}\n"
    )
    for n in range(checks):
        name = f"bench-{n:05d}"
        (directory / f"{name}.yaml").write_text(
            f"name: {name}\n"
            f"title: Benchmark system {n}\n"
            f"every: {every:g}s\n"
            f"timeout: {timeout:g}s\n"
            f"fail_after: {fail_after}\n"
            "probe:\n"
            "  http:\n"
            f"    url: {url}/{name}\n"
        )


class _Warnings(logging.Handler):
    """Counts APScheduler's warnings (runs it missed) instead of printing them."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


async def _all_decided(app: App, limit: float) -> None:
    """Return once every system is UP or DOWN, or after ``limit`` seconds."""
    undecided = {n for n, s in app.monitor.states.items() if s.health is Health.UNKNOWN}
    decided = asyncio.Event()

    def note(transition: Transition) -> None:
        undecided.discard(transition.system)
        if not undecided:
            decided.set()

    app.monitor.on_transition.append(note)
    if not undecided:
        decided.set()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(decided.wait(), limit)


async def run_monitor(
    url: str,
    reuse: bool,
    checks: int,
    every: float,
    limit: float,
    fail_after: int,
    warmup: float,
    duration: float,
    work: Path,
    settled: bool = False,
    db_url: str | None = None,
) -> dict[str, Any]:
    write_checks(work / "checks", url, checks, every, limit, reuse, fail_after)
    with open(os.devnull, "w") as devnull:  # noqa: ASYNC230 (before the loop has work)
        configure("INFO", stream=devnull, environ={})
        missed = _Warnings()
        logging.getLogger("apscheduler").addHandler(missed)
        logging.getLogger("apscheduler").propagate = False
        pauses = GcPauses()
        recorder = Recorder()

        options = Options(
            config=work / "checks",
            messages=MESSAGES,
            db=db_url or work / "monitor.db",
            listen="127.0.0.1:0",
        )
        app = App(options, environ={}, serve_http=False)
        starting = time.perf_counter()
        await app.start()
        start_seconds = time.perf_counter() - starting
        app.monitor.on_result.append(
            lambda result, lateness: recorder.count(result.ok, lateness, result.reason)
        )
        if settled:
            # Asked for more than it can do, the monitor takes longer than two intervals to
            # probe every system twice, and until then thousands of UNKNOWN -> UP transitions
            # are written and logged: a start-up cost, not the steady rate the window measures.
            await _all_decided(app, limit=300)
        settled_seconds = time.perf_counter() - starting
        began = time.time()
        start, end = began + warmup, began + warmup + duration
        edges = [start, end] + ([began + 1] if warmup > 2 else [])
        await recorder.sample_cpu_until(edges)
        skipped = getattr(app.scheduler, "skipped", 0) + missed.count  # older schedulers: none
        await app.stop()
    figures = {
        "role": "monitor",
        "checks": checks,
        "every": every,
        "asked_per_s": checks / every,
        "skipped_runs": skipped,
        "start_seconds": start_seconds,
        "settled_seconds": settled_seconds,
        **recorder.stretch(start, end),
        **pauses.stretch(start, end),
        "peak_rss_mb": peak_rss_mb(),
    }
    if warmup > 2:  # the rounds before the window, skipping the first second
        figures["startup"] = recorder.stretch(began + 1, start)
    return figures


# --- orchestration ------------------------------------------------------------------------------


class Machine:
    """Samples the machine's busy CPU and the target's CPU while a measurement runs."""

    def __init__(self, target_pid: int) -> None:
        self.target_pid = target_pid
        self.samples: list[tuple[float, float, float]] = []  # (when, busy s, target s)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)

    def _read(self) -> tuple[float, float, float]:
        tick = os.sysconf("SC_CLK_TCK")
        fields = [int(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
        busy = (sum(fields) - fields[3] - fields[4]) / tick  # all but idle and iowait
        stat = Path(f"/proc/{self.target_pid}/stat").read_text().rsplit(")", 1)[1].split()
        return time.time(), busy, (int(stat[11]) + int(stat[12])) / tick

    def _sample(self) -> None:
        while not self.stop.is_set():
            self.samples.append(self._read())
            self.stop.wait(0.25)

    def __enter__(self) -> Machine:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()

    def between(self, start: float, end: float) -> tuple[float, float]:
        """(all busy cores, the target's cores) on average from ``start`` to ``end``."""
        inside = [s for s in self.samples if start <= s[0] <= end]
        if len(inside) < 2:
            return math.nan, math.nan
        (t0, busy0, target0), (t1, busy1, target1) = inside[0], inside[-1]
        return (busy1 - busy0) / (t1 - t0), (target1 - target0) / (t1 - t0)


class Target:
    """The target server in its own process (``script``: target.py, or one serving as it
    does)."""

    def __init__(self, script: str = "target.py") -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(HERE / script), "--until-stdin-closes"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline().split()
        if len(line) != 2 or line[0] != "PORT":
            self.close()
            raise RuntimeError(f"target did not start: {line}")
        self.url = f"http://127.0.0.1:{line[1]}"

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()  # the target stops when its stdin closes
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def measure(
    target: Target, role_args: list[str], limit: float, db_url: str | None = None
) -> dict[str, Any]:
    """Run one measurement in a child process; add what the target and others used meanwhile."""
    env = {**os.environ, URL_VARIABLE: db_url} if db_url else None
    with Machine(target.process.pid) as machine:
        done = subprocess.run(
            [sys.executable, __file__, "--url", target.url, *role_args],
            capture_output=True,
            text=True,
            timeout=limit,
            check=False,
            env=env,
        )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(role_args)} failed:\n{done.stderr[-3000:]}")
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    busy, target_cpu = machine.between(figures["start"], figures["end"])
    figures["target_cpu"] = target_cpu
    figures["others_cpu"] = max(0.0, busy - target_cpu - figures["cpu"])
    return figures


def _row(scenario: str, mode: str, mon: dict[str, Any], bare: dict[str, Any] | None) -> Row:
    ceiling = bare["probes_per_s"] if bare else None
    per_cpu = mon["probes_per_s"] / mon["cpu"] if mon["cpu"] else math.nan
    bare_per_cpu = bare["probes_per_s"] / bare["cpu"] if bare and bare["cpu"] else None
    return {
        "scenario": scenario,
        "mode": mode,
        "checks": mon["checks"],
        "every": mon["every"],
        "asked": mon["asked_per_s"],
        "monitor": mon["probes_per_s"],
        "failed": mon["failed_per_s"],
        "ceiling": ceiling,
        "ratio": mon["probes_per_s"] / ceiling if ceiling else None,
        "per_cpu": per_cpu,
        "bare_per_cpu": bare_per_cpu,
        "cpu_ratio": per_cpu / bare_per_cpu if bare_per_cpu else None,
        "p50_ms": mon["lateness_p50"] * 1000,
        "p99_ms": mon["lateness_p99"] * 1000,
        "rss_mb": mon["peak_rss_mb"],
        "cpu": mon["cpu"],
        "target_cpu": mon["target_cpu"],
        "others": max(mon["others_cpu"], bare["others_cpu"] if bare else 0.0),
        "skipped": mon["skipped_runs"],
        "monitor_figures": mon,
        "bare_figures": bare,
    }


def _maybe(value: float | None, spec: str, width: int) -> str:
    return f"{value:{spec}}".rjust(width) if value is not None else "-".rjust(width)


def print_table(rows: list[Row], backend: str = "SQLite") -> None:
    print(
        f"machine: {os.cpu_count()} cores ({platform.machine()}), Python "
        f"{platform.python_version()}, aiohttp {aiohttp.__version__}, "
        f"{platform.system()} {platform.release()}; store {backend}"
    )
    header = (
        f"{'scenario':<8} {'mode':<6} {'checks':>6} {'every':>5} {'asked/s':>7} {'monitor/s':>9} "
        f"{'ceiling/s':>9} {'ratio':>5} {'per CPU-s':>15} {'ratio':>5} {'late p50':>8} "
        f"{'late p99':>8} {'peak RSS':>8} {'CPU':>4} {'target':>6} {'others':>6} {'failed/s':>8}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        per_cpu = f"{r['per_cpu']:.0f}" + (
            f"/{r['bare_per_cpu']:.0f}" if r["bare_per_cpu"] is not None else ""
        )
        print(
            f"{r['scenario']:<8} {r['mode']:<6} {r['checks']:>6} {r['every']:>4g}s "
            f"{r['asked']:7.0f} {r['monitor']:9.0f} {_maybe(r['ceiling'], '.0f', 9)} "
            f"{_maybe(r['ratio'], '.2f', 5)} {per_cpu:>15} {_maybe(r['cpu_ratio'], '.2f', 5)} "
            f"{r['p50_ms']:6.1f}ms {r['p99_ms']:6.1f}ms {r['rss_mb']:6.0f}MB {r['cpu']:4.0%} "
            f"{r['target_cpu']:6.0%} {r['others']:6.2f} {r['failed']:8.1f}"
        )
    print(
        "per CPU-s: probes per second of the measured process's own CPU, monitor/bare; "
        "CPU, target: share of one core; others: cores used by other processes meanwhile"
    )


def verdicts(rows: list[Row]) -> None:
    print("\ntargets:")
    ratios: dict[str, list[float]] = {}
    for r in rows:
        if r["ratio"] is not None:
            ratios.setdefault(r["mode"], []).append(r["ratio"])
    for mode, found in ratios.items():
        median = statistics.median(found)
        each = ", ".join(f"{ratio:.2f}" for ratio in found)
        print(
            f"  ratio >= 0.7 at the ceiling [ceiling, {mode}]: {median:.2f}"
            f"{f' (median of {each})' if len(found) > 1 else ''} {_met(median >= 0.7)}"
        )
    for r in rows:
        where = f"[{r['scenario']}, {r['mode']}]"
        if r["ratio"] is not None:
            continue
        else:
            print(
                f"  p99 lateness < 50 ms at {r['monitor']:.0f} probes/s {where}: "
                f"{r['p99_ms']:.1f} ms {_met(r['p99_ms'] < 50)}"
            )
            print(
                f"  peak RSS <= 120 MB with {r['checks']} checks {where}: "
                f"{r['rss_mb']:.0f} MB {_met(r['rss_mb'] <= 120)}"
            )
        startup = r["monitor_figures"].get("startup") if r["ratio"] is None else None
        if startup:
            print(
                f"    (the first rounds, before that: p99 lateness "
                f"{startup['lateness_p99'] * 1000:.1f} ms at {startup['probes_per_s']:.0f}/s)"
            )


def _met(met: bool) -> str:
    return "met" if met else "MISSED"


def backend_name(cluster: Cluster) -> str:
    """``PostgreSQL 15.18 (durable defaults)``, as the header line names the store."""
    version = cluster.sql("SHOW server_version").split()[0]  # "15.18 (Debian 15.18-0+deb12u1)"
    return f"PostgreSQL {version} (durable defaults)"


def orchestrate(args: argparse.Namespace) -> None:
    cluster = start_cluster(DURABLE_SETTINGS) if args.db == "postgresql" else None
    try:
        backend = backend_name(cluster) if cluster is not None else "SQLite"
        target = Target()
    except BaseException:
        if cluster is not None:
            cluster.destroy()
        raise
    rows: list[Row] = []
    window = ["--duration", f"{args.duration:g}", "--loop", args.loop, "--db", args.db]

    def run(role_args: list[str], warmup: float) -> dict[str, Any]:
        limit = warmup + args.duration + 180
        role_args = [*role_args, *window, "--warmup", f"{warmup:g}"]
        if cluster is None or role_args[:2] != ["--role", "monitor"]:
            return measure(target, role_args, limit)
        # Each measurement starts from an empty database, as each SQLite one from a new file.
        database = cluster.create_database("probes")
        try:
            return measure(target, role_args, limit, cluster.url(database))
        finally:
            cluster.drop_database(database)

    try:
        for mode in args.mode:
            # Each pair is the bare loop, then the monitor right after it: on a shared machine
            # the load changes between pairs, so the verdict takes the median pair's ratio.
            for _ in range(args.repeat if "ceiling" in args.scenario else 0):
                bare = run(
                    ["--role", "bare", "--mode", mode, "--concurrency", str(args.concurrency)],
                    args.warmup,
                )
                ceiling = bare["probes_per_s"]
                checks = math.ceil(ceiling * args.load * args.every)
                _say(f"[{mode}] bare loop: {ceiling:.0f}/s; the monitor gets {checks} checks")
                mon = run(
                    ["--role", "monitor", "--mode", mode, "--checks", str(checks),
                     "--every", f"{args.every:g}", "--timeout", f"{args.every:g}",
                     "--fail-after", "1000000", "--settled"],
                    args.warmup,
                )  # fmt: skip
                rows.append(_row("ceiling", mode, mon, bare))
            if "1000/s" in args.scenario:
                # Past the first two rounds: first results, then everything goes UNKNOWN -> UP.
                mon = run(
                    ["--role", "monitor", "--mode", mode, "--checks", str(args.checks),
                     "--every", "10", "--timeout", "5"],
                    21.0,
                )  # fmt: skip
                rows.append(_row("1000/s", mode, mon, None))
            _say(f"[{mode}] done")
    finally:
        target.close()
        if cluster is not None:
            cluster.destroy()
    print_table(rows, backend)
    verdicts(rows)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add = parser.add_argument
    add("--mode", action="append", choices=["reuse", "fresh"],
        help="connection policy; repeat for both (default: both)")  # fmt: skip
    add("--scenario", action="append", choices=["ceiling", "1000/s"],
        help="repeat for several (default: both)")  # fmt: skip
    add("--duration", type=float, default=20.0, help="measured seconds per run (default 20)")
    add("--warmup", type=float, default=3.0, help="seconds before measuring (ceiling scenario)")
    add("--checks", type=int, default=10_000, help="checks in the 1000/s scenario")
    add("--every", type=float, default=2.0, help="interval in the ceiling scenario (default 2)")
    add("--load", type=float, default=1.1,
        help="ceiling scenario: ask the monitor for this times the bare loop's rate")  # fmt: skip
    add("--concurrency", type=int, default=64, help="bare loop's workers (default 64)")
    add("--repeat", type=int, default=3,
        help="ceiling: bare+monitor pairs per mode; the median counts")  # fmt: skip
    add("--json", help="also write every figure to this file")
    add("--loop", choices=["uvloop", "asyncio"], default="uvloop",
        help="event loop of both sides (default uvloop, as `monitor run` uses)")  # fmt: skip
    add("--db", choices=BACKENDS, default="sqlite",
        help="the monitor's store: a SQLite file (default) or a throwaway PostgreSQL")  # fmt: skip
    add("--role", choices=["bare", "monitor"], help="run one measurement (needs --url)")
    add("--url", help="the target, for --role")
    add("--timeout", type=float, default=5.0, help="--role monitor: each check's timeout")
    add("--fail-after", type=int, default=3, help="--role monitor: each check's fail_after")
    add("--settled", action="store_true",
        help="--role monitor: start the warm-up once every system is UP or DOWN")  # fmt: skip
    args = parser.parse_args(argv)
    if args.role is None:
        args.mode = args.mode or ["reuse", "fresh"]
        args.scenario = args.scenario or ["ceiling", "1000/s"]
        orchestrate(args)
        return
    if not args.url:
        parser.error("--role needs --url")
    reuse = (args.mode or ["reuse"])[0] == "reuse"
    if args.role == "bare":
        figures = run_on_fastest_loop(
            run_bare(args.url, reuse, args.concurrency, args.warmup, args.duration),
            allow_uvloop=args.loop == "uvloop",
        )
    else:
        db_url = os.environ.get(URL_VARIABLE) if args.db == "postgresql" else None
        if args.db == "postgresql" and not db_url:
            parser.error(f"--db postgresql with --role needs an empty database in {URL_VARIABLE}")
        with tempfile.TemporaryDirectory(prefix="monitor-bench-") as work:
            figures = run_on_fastest_loop(
                run_monitor(
                    args.url, reuse, args.checks, args.every, args.timeout, args.fail_after,
                    args.warmup, args.duration, Path(work), args.settled, db_url,
                ),
                allow_uvloop=args.loop == "uvloop",
            )  # fmt: skip
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
