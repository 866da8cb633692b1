"""The public status page with 10,000 systems and 90 days of history: what each request costs.

    python benchmarks/statuspage.py                        # 10,000 systems, SQLite
    python benchmarks/statuspage.py --systems 1000         # a quick check
    python benchmarks/statuspage.py --db postgresql        # the store in a throwaway PostgreSQL

The store is filled with 90 days (and a day) of what a large monitor sees: every system
decided UP before the window; each system down about once in two months (one incident each,
a few minutes to an hour); one in a hundred flapping (a change every few hours all along);
and two mass outages taking every system down for 20 minutes, each one incident of all of
them. That is about 80,000 state changes and 5,000 incidents for 10,000 systems.

Then, on the real web application (``build_web_app``, over HTTP on loopback, gzip asked for as
a browser does), it times: the first front page after a start (the closed days worked out:
``DailyHistory``), the front page after that (only today read), the JSON of every system,
the first front page after midnight (one more closed day worked out), an incident's page,
the past incidents, the feed; and, for comparison, ``GET /api/v1/systems`` (its 7-day uptime
reads the state changes too, and they are now kept 91 days instead of 7), and the same on a
store holding only the last 7 days of them (what retention kept before). Each figure is the
median of ``--repeat`` requests, in milliseconds, with the size of the answer.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer

from monitor.config import Config, MonitorSettings, SystemConfig
from monitor.incidents.correlation import Incident, Member
from monitor.model import Health, Person, SystemState, Transition
from monitor.store import SQLiteStore, Store
from monitor.store.location import postgres_location
from monitor.store.opening import open_store
from monitor.web.server import build_web_app
from monitor.web.services import LastReload, ReplicaView, Services

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from postgres import start_cluster

DAY = 86400.0
NOW = 1_800_000_000.0 + 100 * DAY  # 2027-04-25 08:00 UTC
BATCH = 5000


class Clock:
    def __init__(self, now: float) -> None:
        self.time = now

    def now(self) -> float:
        return self.time


class NoActions:
    async def report_attempt(self, attempt: Any, person: Person) -> None: ...
    async def add_note(self, incident_id: int, text: str, send: bool) -> Incident:
        raise KeyError(incident_id)

    async def hold(self, incident_id: int) -> Incident:
        raise KeyError(incident_id)

    async def release(self, incident_id: int) -> Incident:
        raise KeyError(incident_id)

    async def explain(self, incident_id: int, text: str) -> Incident:
        raise KeyError(incident_id)


def names(count: int) -> list[str]:
    return [f"shop-{n:05d}" for n in range(count)]


def history(
    systems: Sequence[str], since: float, seed: int = 18
) -> tuple[list[Transition], list[Incident]]:
    """What ``since`` to ``NOW`` held: see the module's docstring."""
    rng = random.Random(seed)
    changes: list[Transition] = []
    incidents: list[Incident] = []

    def spell(system: str, down: float, up: float) -> None:
        changes.append(Transition(system, down, Health.UP, Health.DOWN, "status 503", 3))
        changes.append(Transition(system, up, Health.DOWN, Health.UP, "status 200", 2))

    for system in systems:
        changes.append(Transition(system, since - DAY, Health.DOWN, Health.UP, "status 200", 2))
    for system in systems:
        if rng.random() < 0.5:
            down = rng.uniform(since, NOW - 2 * 3600)
            up = down + rng.uniform(120, 3600)
            spell(system, down, up)
            incidents.append(Incident(0, down, (Member(system, down, up),), system, up))
    for system in systems[::100]:
        at = since
        while at < NOW - 3600:
            spell(system, at, at + 300)
            at += rng.uniform(3, 6) * 3600
    for mass in (since + 20 * DAY, since + 60 * DAY):
        members = tuple(Member(s, mass + i * 0.001, mass + 1200) for i, s in enumerate(systems))
        for s in systems:
            spell(s, mass, mass + 1200)
        incidents.append(Incident(0, mass, members, systems[0], mass + 1200))
    changes.sort(key=lambda t: t.at)
    incidents.sort(key=lambda i: i.opened_at)
    return changes, [
        Incident(n + 1, i.opened_at, i.members, i.cause, i.resolved_at)
        for n, i in enumerate(incidents)
    ]


def pruned(changes: Sequence[Transition], before: float) -> list[Transition]:
    """``changes`` as retention leaves them: those after ``before``, and each system's newest
    one before it."""
    newest: dict[str, Transition] = {}
    for change in changes:
        if change.at <= before:
            newest[change.system] = change
    return sorted([*newest.values(), *(c for c in changes if c.at > before)], key=lambda t: t.at)


async def fill(store: Store, changes: Sequence[Transition], incidents: Sequence[Incident]) -> None:
    for start in range(0, len(changes), BATCH):
        batch = changes[start : start + BATCH]
        await store.save_transitions(
            [(t, SystemState(t.system, t.current, since=t.at)) for t in batch]
        )
    for start in range(0, len(incidents), 200):
        await store.save_incidents(incidents[start : start + 200], [])


def services(store: Store, systems: Sequence[str], clock: Clock) -> Services:
    config = Config(
        settings=MonitorSettings.model_validate(
            {"org": {"name": "Example Ltd", "support_email": "help@example.com"}}
        ),
        systems={
            name: SystemConfig.model_validate(
                {
                    "name": name,
                    "title": f"Shop {name[5:]}",
                    "probe": {"tcp": {"host": "127.0.0.1", "port": 9}},
                }
            )
            for name in systems
        },
    )
    states = {name: SystemState(name, Health.UP, since=NOW - DAY) for name in systems}

    async def no_problem() -> str | None:
        return None

    async def page() -> bytes:
        return b""

    async def replicas() -> ReplicaView:
        return ReplicaView("bench", 30.0, [])

    return Services(
        clock=clock,
        store=store,
        incidents=NoActions(),
        config=lambda: config,
        states=lambda: states,
        reload=lambda: (),
        ready=lambda: None,
        store_problem=no_problem,
        warnings=lambda _: (),
        last_reload=lambda: LastReload(NOW, None, ()),
        channels=lambda: ["email"],
        metrics_page=page,
        replicas=replicas,
        api_token="",
    )


async def timed(session: aiohttp.ClientSession, url: str) -> tuple[float, int, int]:
    """Milliseconds, bytes on the wire, bytes unpacked."""
    started = time.perf_counter()
    async with session.get(url, headers={"Accept-Encoding": "gzip"}) as response:
        assert response.status == 200, (url, response.status)
        wire = int(response.headers.get("Content-Length", "0"))
        body = await response.read()
    return (time.perf_counter() - started) * 1000, wire, len(body)


async def run(store: Store, systems: Sequence[str], repeat: int, mass: int) -> dict[str, Any]:
    clock = Clock(NOW)
    server = TestServer(build_web_app(services(store, systems, clock)))
    await server.start_server()
    found: dict[str, Any] = {}
    try:
        async with aiohttp.ClientSession(str(server.make_url("/"))) as session:

            async def median(label: str, path: str) -> None:
                runs = [await timed(session, path) for _ in range(repeat)]
                found[label] = (
                    round(statistics.median(r[0] for r in runs), 1),
                    runs[0][1],
                    runs[0][2],
                )

            found["front page, first after a start"] = await timed(session, "/")
            await median("front page", "/")
            middle = max(1, len(systems) // 200)
            await median(f"front page, page {middle}", f"/?page={middle}")
            await median("status.json (every system)", "/status.json")
            clock.time += DAY
            found["front page, first after midnight"] = await timed(session, "/")
            await median("incident page (mass outage)", f"/incidents/{mass}")
            await median("past incidents", "/history")
            await median("feed.atom", "/feed.atom")
            await median("api/v1/systems (7-day uptime)", "/api/v1/systems")
    finally:
        await server.close()
    return found


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--systems", type=int, default=10_000)
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    systems = names(args.systems)
    with contextlib.ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        cluster = stack.enter_context(start_cluster()) if args.db == "postgresql" else None

        async def opened(name: str) -> Store:
            if cluster is None:
                return SQLiteStore(folder / f"{name}.db")
            return await open_store(postgres_location(cluster.url(cluster.create_database(name))))

        changes, incidents = history(systems, NOW - 90 * DAY)
        mass = max(incidents, key=lambda i: len(i.members)).id
        stores = {}
        for name, kept in (("history", changes), ("week", pruned(changes, NOW - 7 * DAY))):
            stores[name] = await opened(name)
            await fill(stores[name], kept, incidents)
            print(
                f"{name}: {len(systems):,} systems, {len(kept):,} state changes, "
                f"{len(incidents):,} incidents"
            )
        # What was generated goes before measuring: a heap of 150,000 objects more than the
        # monitor's own would lengthen every garbage collection during the requests.
        del changes, incidents, kept
        gc.collect()
        for name, store in stores.items():
            print(name)
            figures = await run(store, systems, args.repeat, mass)
            for label, (ms, wire, size) in figures.items():
                if name == "week" and not label.startswith("api/"):
                    continue
                sent, made = wire / 1024, size / 1024
                print(f"  {label:36} {ms:8.1f} ms  {sent:6.0f} KiB sent ({made:,.0f} KiB)")
            await store.close()


if __name__ == "__main__":
    asyncio.run(main())
