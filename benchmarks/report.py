"""The post-incident report of a 100,000-person incident: how long it takes to make, and how
long it holds the event loop at a stretch (the replica is probing meanwhile).

    python benchmarks/report.py                          # SQLite and PostgreSQL, 100,000 people
    python benchmarks/report.py --db sqlite --people 20000

The incident: payment down 20 minutes, every person acknowledged and told it is resolved (one
in a hundred undeliverable, one in ten by SMS), 200,000 messages settled in the outbox, on a
SQLite file in a temp dir or a throwaway local PostgreSQL (tests/postgres.py, durable
defaults). The report is made as ``GET /api/v1/incidents/ID/report`` makes it
(``monitor.web.reports.incident_report``), then worded as Markdown and HTML; the old way
(``outbox_items``, every message read into Python) is timed beside it. While each runs, a task
that asks to wake every millisecond records how late it woke at worst (what a probe due then
would have waited for the event loop), and the CPU the loop spent meanwhile (the same figure
without other processes' turns on a busy machine).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import TypeVar
from zoneinfo import ZoneInfo

from monitor.config import Config, load_config
from monitor.incidents.audience import attempts_window
from monitor.incidents.correlation import Incident, Member
from monitor.model import Address, Person
from monitor.reporting import report_html, report_markdown
from monitor.store import SENT, UNDELIVERABLE, OutboxItem, SQLiteStore, Store
from monitor.store.location import postgres_location
from monitor.store.opening import open_store
from monitor.web.reports import incident_report
from monitor.web.services import LastReload, ReplicaView, Services

# tests/postgres.py, the throwaway cluster the tests use, serves the PostgreSQL run.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from postgres import DURABLE_SETTINGS, start_cluster

T = 1_800_000_000.0
PAYMENT = """\
name: payment
title: Online payments
every: 15s
probe: {http: {url: "http://127.0.0.1:9/healthz"}}
"""
BATCH = 5000
R = TypeVar("R")


class Clock:
    def now(self) -> float:
        return T + 7200


def person(i: int) -> Person:
    return Person(f"u{i:06d}", f"Person {i}", f"p{i}@example.com", None, None, ("payment",))


def messages(n: int, kind: str, at: float) -> Iterator[OutboxItem]:
    """One settled message of ``kind`` a person: sent over the next minutes (SMS for one in
    ten), undeliverable for one in a hundred."""
    for i in range(n):
        to = Address("sms", f"+4477009{i:05d}") if i % 10 == 3 else Address("email", f"p{i}@x")
        lost = i % 100 == 7
        yield OutboxItem(
            key=f"incident-1.{kind}.u{i:06d}",
            incident_id=1,
            person_id=f"u{i:06d}",
            kind=kind,
            reason="first",
            created_at=at,
            subject="",
            text="",
            html=None,
            sms="",
            channels=(to,),
            status=UNDELIVERABLE if lost else SENT,
            tries=1,
            last_error="550 5.1.1 no such user" if lost else "",
            sent_at=None if lost else at + i * 0.002,
            sent_via=None if lost else to,
        )


async def fill(store: Store, n: int) -> Incident:
    incident = Incident(
        1,
        T + 30,
        (Member("payment", T + 30, T + 1230),),
        "payment",
        resolved_at=T + 1230,
        notified_at=T + 90,
        resolution_told_at=T + 1230,
    )
    await store.save_incident(incident)
    people = [person(i) for i in range(n)]
    for start in range(0, n, BATCH):
        await store.upsert_people(people[start : start + BATCH])
    for kind, at in (("acknowledge", T + 90), ("resolved", T + 1230)):
        items = list(messages(n, kind, at))
        for start in range(0, n, BATCH):
            await store.decide(items[start : start + BATCH], {}, 1)
    await store.add_timeline(1, T + 30, "opened", "Online payments: status 503")
    await store.add_timeline(1, T + 1230, "resolved", "Online payments: status 200")
    await store.settle_for_resolution(1, T + 1230)
    return incident


def services(store: Store, config: Config) -> Services:
    async def nothing() -> None:
        return None

    async def no_page() -> bytes:
        return b""

    async def replicas() -> ReplicaView:
        return ReplicaView("bench", 30.0, [])

    return Services(
        clock=Clock(),
        store=store,
        incidents=None,  # type: ignore[arg-type]  # the report changes nothing
        config=lambda: config,
        states=dict,
        reload=list,
        ready=lambda: None,
        store_problem=nothing,
        warnings=lambda _: [],
        last_reload=lambda: LastReload(T, None, []),
        channels=list,
        metrics_page=no_page,
        replicas=replicas,
        api_token="",
    )


async def held(work: Callable[[], Awaitable[R]]) -> tuple[R, float, float, float]:
    """``work``'s result, its seconds, the worst lateness of a 1 ms timer meanwhile, and the
    CPU the event loop's thread spent in that worst wait: on a busy machine the lateness grows
    with other processes' turns, the CPU does not."""
    late = cpu = 0.0
    done = False

    async def watch() -> None:
        nonlocal late, cpu
        while not done:
            wall, used = time.perf_counter(), time.thread_time()
            await asyncio.sleep(0.001)
            now = time.perf_counter() - wall - 0.001
            if now > late:
                late, cpu = now, time.thread_time() - used

    watcher = asyncio.create_task(watch())
    await asyncio.sleep(0)
    started = time.perf_counter()
    result = await work()
    took = time.perf_counter() - started
    done = True
    await watcher
    return result, took, late, cpu


async def measure(store: Store, config: Config, n: int, name: str) -> None:
    started = time.perf_counter()
    incident = await fill(store, n)
    print(f"{name}: {2 * n:,} messages written in {time.perf_counter() - started:.1f} s")
    for run in (1, 2):
        report, took, late, cpu = await held(
            lambda: incident_report(services(store, config), incident)
        )
        print(
            f"  report, run {run}: {took * 1000:,.0f} ms, {_late(late, cpu)} "
            f"({report.acknowledged:,} acknowledged, p50 {report.acknowledging.p50:.1f} s)"
        )
    window = attempts_window(incident, config.settings.attempt_lookback)
    reads: list[tuple[str, Callable[[], Awaitable[object]]]] = [
        ("message_tally", lambda: store.message_tally(1)),
        ("audience_count", lambda: store.audience_count(incident.systems, window, T + 1230)),
        ("timeline", lambda: store.timeline(1)),
        ("undeliverable", lambda: store.undeliverable(1, 100)),
    ]
    for read, work in reads:
        _, took, late, cpu = await held(work)
        print(f"    {read}: {took * 1000:,.1f} ms, {_late(late, cpu)}")
    for words in (report_markdown, report_html):
        started = time.perf_counter()
        words(report, ZoneInfo("UTC"))
        print(f"  {words.__name__}: {(time.perf_counter() - started) * 1000:.1f} ms")
    items, took, late, cpu = await held(lambda: store.outbox_items(1))
    said = f"{took * 1000:,.0f} ms, {_late(late, cpu)} ({len(items):,} items)"
    print(f"  outbox_items instead: {said}")


def _late(late: float, cpu: float) -> str:
    return f"a timer up to {late * 1000:,.1f} ms late ({cpu * 1000:,.1f} ms of the loop's CPU)"


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        checks = Path(tmp) / "checks"
        checks.mkdir()
        (checks / "payment.yaml").write_text(PAYMENT)
        config = load_config(checks, {})
        if args.db in ("sqlite", "both"):
            store: Store = SQLiteStore(Path(tmp) / "monitor.db")
            try:
                await measure(store, config, args.people, "SQLite")
            finally:
                await store.close()
        if args.db in ("postgresql", "both"):
            cluster = stack.enter_context(start_cluster(DURABLE_SETTINGS))
            store = await open_store(postgres_location(cluster.url()))
            try:
                await measure(store, config, args.people, "PostgreSQL")
            finally:
                await store.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--people", type=int, default=100_000)
    asyncio.run(main(parser.parse_args()))
