"""Probe throughput, lateness and memory: the monitor against a bare aiohttp loop.

    python benchmarks/probes.py                      # every scenario, both modes, a table
    python benchmarks/probes.py --mode fresh --scenario 1000/s --duration 20

Each measurement is one process of its own, run one after the other against one local target
(``benchmarks/target.py``, a separate process on the other core), all on 127.0.0.1:

- ``bare``: a plain aiohttp loop doing the same GETs with the same connection policy (connector
  limit, keep-alive or a fresh connection each time) as fast as it can with bounded
  concurrency. This is the ceiling.
- ``monitor``: N HTTP checks loaded from a generated check directory by the real
  ``load_config`` and run by the real ``ProbeScheduler`` + ``Monitor`` + ``Prober`` on
  ``make_session``, with a real ``SQLiteStore`` in a temp dir (flushed every second, as ``App``
  does), ``Metrics`` recording every probe and the monitor's JSON logs written (to /dev/null).
  Lateness is what the scheduler hands each probe; peak RSS is the process's ``ru_maxrss``.

Scenarios:

- ``ceiling``: the monitor is asked for ``--load`` times the ceiling's rate (checks every 2 s),
  so it runs as fast as it can; the ratio of the two rates is the figure of merit.
- ``1000/s``: 10,000 checks every 10 s; lateness p50/p99 and peak RSS.

``--role bare|monitor`` runs one measurement on its own against ``--url`` and prints it as
JSON (handy under a profiler).
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
import subprocess
import sys
import tempfile
import time
from array import array
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from monitor.config import load_config
from monitor.logs import configure
from monitor.metrics import Metrics
from monitor.model import SystemClock
from monitor.probes import Prober, make_session
from monitor.runtime import Monitor
from monitor.scheduler import ProbeScheduler
from monitor.store import SQLiteStore

HERE = Path(__file__).resolve().parent
MAX_CONNECTIONS = 200  # the monitor's default (checks/monitor.yaml: http.max_connections)


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


@dataclass
class Window:
    """Counts what finishes between ``start`` and ``end`` (wall-clock seconds)."""

    start: float
    end: float
    done: int = 0
    ok: int = 0
    lateness: array[float] = field(default_factory=lambda: array("d"))
    reasons: Counter[str] = field(default_factory=Counter)
    cpu_at_start: float = 0.0
    cpu_at_end: float = 0.0

    def inside(self, now: float) -> bool:
        return self.start <= now < self.end

    def count(self, ok: bool, lateness: float | None = None, reason: str = "") -> None:
        if not self.inside(time.time()):
            return
        self.done += 1
        self.ok += ok
        if not ok:
            self.reasons[reason] += 1
        if lateness is not None:
            self.lateness.append(lateness)

    async def run_until_end(self) -> None:
        """Sleep through the window, sampling CPU time at both ends."""
        await asyncio.sleep(max(0.0, self.start - time.time()))
        self.cpu_at_start = cpu_seconds()
        await asyncio.sleep(max(0.0, self.end - time.time()))
        self.cpu_at_end = cpu_seconds()

    def figures(self) -> dict[str, Any]:
        seconds = self.end - self.start
        return {
            "seconds": seconds,
            "probes_per_s": self.ok / seconds,
            "failed_per_s": (self.done - self.ok) / seconds,
            "lateness_p50": percentile(self.lateness, 50),
            "lateness_p99": percentile(self.lateness, 99),
            "lateness_max": max(self.lateness, default=0.0),
            "cpu": (self.cpu_at_end - self.cpu_at_start) / seconds,
            "peak_rss_mb": peak_rss_mb(),
            "failures": dict(self.reasons.most_common(3)),
        }


# --- the ceiling: a bare aiohttp loop ----------------------------------------------------------


async def run_bare(
    url: str, reuse: bool, concurrency: int, warmup: float, duration: float
) -> dict[str, Any]:
    now = time.time()
    window = Window(now + warmup, now + warmup + duration)
    connector = aiohttp.TCPConnector(limit=MAX_CONNECTIONS, limit_per_host=0, force_close=not reuse)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker(n: int) -> None:
            target = f"{url}/bare-{n}"
            while time.time() < window.end:
                try:
                    async with session.get(target) as resp:
                        await resp.read()
                        window.count(resp.status == 200, reason=f"status {resp.status}")
                except (aiohttp.ClientError, OSError) as exc:
                    window.count(False, reason=type(exc).__name__)

        workers = [asyncio.create_task(worker(n)) for n in range(concurrency)]
        await window.run_until_end()
        await asyncio.gather(*workers)
    return {"role": "bare", "concurrency": concurrency, **window.figures()}


# --- the monitor --------------------------------------------------------------------------------


def write_checks(directory: Path, url: str, checks: int, every: float, timeout: float, reuse: bool) -> None:
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
            "probe:\n"
            "  http:\n"
            f"    url: {url}/{name}\n"
        )


class GcPauses:
    """Times the collector's pauses: a full collection over many objects stalls every probe."""

    def __init__(self) -> None:
        self.started = 0.0
        self.pauses: dict[int, list[float]] = {0: [], 1: [], 2: []}
        self.full: list[tuple[float, float, int]] = []  # (when, seconds, objects collected)
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self.started = time.perf_counter()
        else:
            pause = time.perf_counter() - self.started
            self.pauses[info["generation"]].append(pause)
            if info["generation"] == 2:
                self.full.append((time.time(), pause, info["collected"]))

    def figures(self, window: Window) -> dict[str, Any]:
        full = [(when, pause) for when, pause, _ in self.full if window.inside(when)]
        return {
            "gc_full": len(full),
            "gc_full_max_ms": max((pause for _, pause in full), default=0.0) * 1000,
            "gc_full_at": [(round(when - window.start, 1), round(pause * 1000)) for when, pause in full],
        }


class _Skips(logging.Handler):
    """Counts the runs APScheduler skipped (missed, or the previous run still going)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.skipped = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.skipped += 1


async def run_monitor(
    url: str,
    reuse: bool,
    checks: int,
    every: float,
    timeout: float,
    warmup: float,
    duration: float,
    work: Path,
) -> dict[str, Any]:
    write_checks(work / "checks", url, checks, every, timeout, reuse)
    loading = time.perf_counter()
    config = load_config(work / "checks", {})
    load_seconds = time.perf_counter() - loading
    configure("INFO", stream=open(os.devnull, "w"), environ={})  # noqa: SIM115 (lives as long as we do)
    skips = _Skips()
    apscheduler_log = logging.getLogger("apscheduler")
    apscheduler_log.addHandler(skips)
    apscheduler_log.propagate = False

    pauses = GcPauses()
    clock = SystemClock()
    store = SQLiteStore(work / "monitor.db")
    metrics = Metrics()
    session = make_session(config.settings.http)
    monitor = Monitor(config, store, clock, Prober(session, clock))
    monitor.on_result.append(metrics.record_probe)
    now = time.time()
    window = Window(now + warmup, now + warmup + duration)
    monitor.on_result.append(lambda result, lateness: window.count(result.ok, lateness, result.reason))

    async def probe(name: str, lateness: float) -> None:
        await monitor.probe(name, lateness)

    scheduler = ProbeScheduler(clock, probe)
    for name, system in config.systems.items():
        scheduler.schedule(name, system.every)
    scheduler.start()

    async def flush() -> None:
        while True:
            await asyncio.sleep(1.0)
            monitor.flush()

    flusher = asyncio.create_task(flush())
    await window.run_until_end()
    skipped = skips.skipped
    scheduler.shutdown()
    flusher.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await flusher
    # Let in-flight probes end (each is bounded by its timeout) before closing their session.
    await asyncio.sleep(0)
    running = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    await asyncio.wait(running, timeout=timeout + 1) if running else None
    await session.close()
    monitor.flush()
    store.close()
    asked = checks / every
    return {
        "role": "monitor",
        "checks": checks,
        "every": every,
        "asked_per_s": asked,
        "skipped_runs": skipped,
        "load_seconds": load_seconds,
        **window.figures(),
        **pauses.figures(window),
    }


# --- orchestration ------------------------------------------------------------------------------


class Target:
    """The target server in its own process."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(HERE / "target.py"), "--until-stdin-closes"],
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

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()  # the target stops when its stdin closes
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def measure(target: Target, role_args: list[str], limit: float) -> dict[str, Any]:
    """Run one measurement in a child process; add the target's CPU share meanwhile."""
    before = target.cpu_seconds()
    done = subprocess.run(
        [sys.executable, __file__, "--url", target.url, *role_args],
        capture_output=True,
        text=True,
        timeout=limit,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(role_args)} failed:\n{done.stderr[-3000:]}")
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    # Over the whole child run, not just its window: a slight underestimate of the share.
    figures["target_cpu_seconds"] = target.cpu_seconds() - before
    return figures


def row(scenario: str, mode: str, mon: dict[str, Any], ceiling: float | None) -> dict[str, Any]:
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
        "p50_ms": mon["lateness_p50"] * 1000,
        "p99_ms": mon["lateness_p99"] * 1000,
        "rss_mb": mon["peak_rss_mb"],
        "cpu": mon["cpu"],
        "skipped": mon["skipped_runs"],
    }


def print_table(rows: list[dict[str, Any]]) -> None:
    print(
        f"machine: {os.cpu_count()} cores, {platform.processor() or platform.machine()}, "
        f"Python {platform.python_version()}, aiohttp {aiohttp.__version__}, "
        f"{platform.system()} {platform.release()}"
    )
    header = (
        f"{'scenario':<8} {'mode':<6} {'checks':>6} {'every':>5} {'asked/s':>8} "
        f"{'monitor/s':>9} {'ceiling/s':>9} {'ratio':>5} {'late p50':>8} {'late p99':>8} "
        f"{'peak RSS':>8} {'CPU':>5} {'failed/s':>8} {'skipped':>7}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        ceiling = f"{r['ceiling']:9.0f}" if r["ceiling"] else f"{'':>9}"
        ratio = f"{r['ratio']:5.2f}" if r["ratio"] is not None else f"{'':>5}"
        print(
            f"{r['scenario']:<8} {r['mode']:<6} {r['checks']:>6} {r['every']:>4g}s "
            f"{r['asked']:8.0f} {r['monitor']:9.0f} {ceiling} {ratio} "
            f"{r['p50_ms']:6.1f}ms {r['p99_ms']:6.1f}ms {r['rss_mb']:6.0f}MB {r['cpu']:5.0%} "
            f"{r['failed']:8.1f} {r['skipped']:7}"
        )


def verdicts(rows: list[dict[str, Any]]) -> None:
    print("\ntargets:")
    for r in rows:
        where = f"{r['scenario']} {r['mode']}"
        if r["scenario"] == "ceiling":
            print(f"  ratio >= 0.7 at the ceiling ({where}): {r['ratio']:.2f} {_ok(r['ratio'] >= 0.7)}")
        else:
            print(f"  p99 lateness < 50 ms at {r['asked']:.0f}/s ({where}): {r['p99_ms']:.1f} ms {_ok(r['p99_ms'] < 50)}")
            print(f"  peak RSS <= 120 MB with {r['checks']} checks ({where}): {r['rss_mb']:.0f} MB {_ok(r['rss_mb'] <= 120)}")


def _ok(met: bool) -> str:
    return "met" if met else "MISSED"


def orchestrate(args: argparse.Namespace) -> None:
    target = Target()
    rows: list[dict[str, Any]] = []
    common = ["--warmup", f"{args.warmup:g}", "--duration", f"{args.duration:g}"]
    limit = args.warmup + args.duration + 120
    try:
        for mode in args.mode:
            if "ceiling" in args.scenario:
                bare = measure(
                    target,
                    ["--role", "bare", "--mode", mode, "--concurrency", str(args.concurrency), *common],
                    limit,
                )
                ceiling = bare["probes_per_s"]
                checks = math.ceil(ceiling * args.load * args.every)
                print(
                    f"[{mode}] ceiling {ceiling:.0f}/s (CPU {bare['cpu']:.0%}, target "
                    f"{bare['target_cpu_seconds'] / (args.warmup + args.duration):.0%}); asking the "
                    f"monitor for {checks} checks every {args.every:g}s",
                    file=sys.stderr,
                    flush=True,
                )
                mon = measure(
                    target,
                    ["--role", "monitor", "--mode", mode, "--checks", str(checks),
                     "--every", f"{args.every:g}", "--timeout", f"{args.every:g}", *common],
                    limit,
                )
                rows.append(row("ceiling", mode, mon, ceiling))
            if "1000/s" in args.scenario:
                mon = measure(
                    target,
                    ["--role", "monitor", "--mode", mode, "--checks", str(args.checks),
                     "--every", "10", "--timeout", "5", *common],
                    limit,
                )
                rows.append(row("1000/s", mode, mon, None))
            print(f"[{mode}] done", file=sys.stderr, flush=True)
    finally:
        target.close()
    print_table(rows)
    verdicts(rows)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mode", action="append", choices=["reuse", "fresh"],
                        help="connection policy; repeat for both (default: both)")
    parser.add_argument("--scenario", action="append", choices=["ceiling", "1000/s"],
                        help="repeat for several (default: all)")
    parser.add_argument("--duration", type=float, default=20.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds before measuring")
    parser.add_argument("--checks", type=int, default=10_000, help="checks in the 1000/s scenario")
    parser.add_argument("--every", type=float, default=2.0, help="interval in the ceiling scenario")
    parser.add_argument("--load", type=float, default=1.1,
                        help="ceiling scenario: ask the monitor for this times the ceiling rate")
    parser.add_argument("--concurrency", type=int, default=64, help="bare loop's workers")
    parser.add_argument("--role", choices=["bare", "monitor"], help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--timeout", type=float, default=5.0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.role is None:
        args.mode = args.mode or ["reuse", "fresh"]
        args.scenario = args.scenario or ["ceiling", "1000/s"]
        orchestrate(args)
        return
    reuse = (args.mode or ["reuse"])[0] == "reuse"
    if args.role == "bare":
        figures = asyncio.run(run_bare(args.url, reuse, args.concurrency, args.warmup, args.duration))
    else:
        with tempfile.TemporaryDirectory(prefix="monitor-bench-") as work:
            figures = asyncio.run(
                run_monitor(args.url, reuse, args.checks, args.every, args.timeout,
                            args.warmup, args.duration, Path(work))
            )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
