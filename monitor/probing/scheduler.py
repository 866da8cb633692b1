"""When each system is probed: APScheduler 3.x interval jobs, one per 10 ms slot of an interval.

Each system gets a stable offset within its interval (from a hash of its name), so a thousand
checks on the same interval spread out instead of firing in the same millisecond, and keep the
same slots across restarts. Offsets are rounded down to ``SLOT`` (10 ms) and the systems that
share an interval and a slot share one APScheduler job, which starts each one's run as a task of
its own: with 10,000 systems APScheduler's own work per probe was a fifth of the monitor's CPU.
Each run records how late it started against its due time.

While a scheduler runs, CPython's cyclic garbage collector is set up not to stall probes (see
``_CalmCollector``): with thousands of systems its default full collections pause the event loop
for hundreds of milliseconds, and every probe due meanwhile starts that late.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import math
import zlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from apscheduler.executors.asyncio import AsyncIOExecutor
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from monitor.model import Clock

log = logging.getLogger("monitor.scheduler")

# All offsets are measured from this fixed instant, so due times are the same in every process.
_EPOCH = 1_700_000_000.0
SLOT = 0.01  # seconds; systems on one interval whose offsets fall in one slot share a job

_Slot = tuple[float, int]  # (interval, slot number within it)


class _CalmCollector:
    """Keeps the cyclic collector from scanning what lives as long as the process.

    By default CPython runs a full collection whenever a quarter again as many objects have
    survived as were there at the last one; with 10,000 systems (configs, jobs, metric series)
    that is a scan of several hundred thousand objects, about half a second every few seconds
    at 1,000 probes/s. So, while any scheduler runs: what exists at start (configuration, jobs,
    state) is frozen out of collections, and young collections run less often, so a probe's
    short-lived objects die by reference count before a collection can promote them. Garbage
    is still collected; the previous settings come back when the last scheduler stops.
    """

    # Objects allocated between young collections (CPython's default: 700). Fresh connections
    # leave reference cycles behind, and a young collection's pause grows with what it frees:
    # 50,000 meant 200-300 ms pauses with a fresh connection per probe, 10,000 means 15-30 ms.
    YOUNG = 10_000
    running = 0
    previous: tuple[int, int, int] | None = None

    @classmethod
    def enter(cls) -> None:
        cls.running += 1
        if cls.running > 1:
            return
        cls.previous = gc.get_threshold()
        young, middle, old = cls.previous
        gc.set_threshold(max(young, cls.YOUNG), middle, old)
        gc.freeze()

    @classmethod
    def leave(cls) -> None:
        cls.running -= 1
        if cls.running > 0 or cls.previous is None:
            return
        gc.unfreeze()
        gc.set_threshold(*cls.previous)
        cls.previous = None


def stable_offset(name: str, every: float) -> float:
    """A per-system offset within ``[0, every)`` that does not change between runs."""
    return (zlib.crc32(name.encode()) / 2**32) * every


def due_time(now: float, every: float, offset: float) -> float:
    """The latest slot at or before ``now`` for a job on ``every`` shifted by ``offset``."""
    slots = math.floor((now - _EPOCH - offset) / every)
    return _EPOCH + offset + slots * every


def next_due(now: float, every: float, offset: float) -> float:
    """The first slot strictly after ``now``."""
    return due_time(now, every, offset) + every


def lateness(now: float, every: float, offset: float) -> float:
    """How long after its latest due time a run starting at ``now`` is (never negative)."""
    late = now - due_time(now, every, offset)
    if late > every / 2:  # started a hair before its slot: that is early, not a whole interval late
        late -= every
    return max(0.0, late)


class _LetFinishExecutor(AsyncIOExecutor):  # type: ignore[misc]  # APScheduler is untyped
    """At shutdown, lets slot jobs already handed to the loop run instead of cancelling them.

    APScheduler logs each cancelled job as a failure, a traceback each: a dozen on every SIGTERM
    under load. A slot job that runs after shutdown starts nothing (see ``_fire``).
    """

    def shutdown(self, wait: bool = True) -> None:
        pass


class ProbeScheduler:
    """Runs ``run(name, lateness)`` for each system on its interval, ``concurrency`` at a time.

    Due runs queue for one of ``concurrency`` workers (set it to the connection limit: a probe
    holds a connection, or a turn at one, while it runs), and a system whose previous run is
    still going or waiting skips a slot rather than piling up (``skipped`` counts those). A slow
    run holds up no other system while a worker is free, and none for longer than its timeout.
    Workers rather than a task per run: creating, starting and parking a task per probe was
    ~7% of the CPU at thousands of probes a second.
    """

    def __init__(
        self, clock: Clock, run: Callable[[str, float], Awaitable[None]], concurrency: int = 200
    ) -> None:
        self.clock = clock
        self.run = run
        self.concurrency = concurrency
        self.scheduler = AsyncIOScheduler(
            executors={"default": _LetFinishExecutor()},
            job_defaults={"coalesce": True, "max_instances": 1},
            timezone=UTC,
        )
        self.intervals: dict[str, float] = {}
        self.skipped = 0
        self._members: dict[_Slot, set[str]] = {}
        self._slot_of: dict[str, _Slot] = {}
        self._busy: set[str] = set()  # systems whose run is waiting or still going
        self._due: asyncio.Queue[tuple[str, float, float]] = asyncio.Queue()
        self._workers: list[asyncio.Task[None]] = []
        self._calm = False

    def schedule(self, name: str, every: float) -> None:
        """Add the system, or move it to a new interval."""
        slot = (every, int(stable_offset(name, every) // SLOT))
        if self._slot_of.get(name) == slot:
            return
        self.remove(name)
        members = self._members.get(slot)
        if members is None:
            members = self._members[slot] = set()
            offset = slot[1] * SLOT
            first = next_due(self.clock.now(), every, offset)
            trigger = IntervalTrigger(
                seconds=every, start_date=datetime.fromtimestamp(first, UTC), timezone=UTC
            )
            self.scheduler.add_job(
                self._fire,
                trigger,
                args=(slot,),
                id=_job_id(slot),
                name=_job_id(slot),
                replace_existing=True,
                misfire_grace_time=max(1, int(every)),
            )
        members.add(name)
        self._slot_of[name] = slot
        self.intervals[name] = every

    def remove(self, name: str) -> None:
        slot = self._slot_of.pop(name, None)
        if slot is None:
            return
        del self.intervals[name]
        members = self._members[slot]
        members.discard(name)
        if not members:
            del self._members[slot]
            self.scheduler.remove_job(_job_id(slot))

    async def _fire(self, slot: _Slot) -> None:
        """The job of one slot: start the run of each of its systems not still running."""
        if not self.scheduler.running:
            return  # handed to the loop just before shutdown
        every, number = slot
        offset = number * SLOT
        for name in self._members.get(slot, ()):
            if name in self._busy:
                self.skipped += 1
                continue
            self._busy.add(name)
            self._due.put_nowait((name, every, offset))

    async def _work(self) -> None:
        due = self._due
        while True:
            # At the ceiling the queue is never empty: take without a coroutine per probe.
            name, every, offset = due.get_nowait() if not due.empty() else await due.get()
            try:
                # Late by the time it starts: any wait for a worker counts.
                await self.run(name, lateness(self.clock.now(), every, offset))
            except asyncio.CancelledError:
                if self.scheduler.running:
                    raise
                return  # cut short by shutdown(): not an error worth a traceback per system
            except Exception:
                log.exception("probe run failed for %s", name)
            finally:
                self._busy.discard(name)

    def start(self) -> None:
        """Start scheduling; call it inside the running event loop."""
        self.scheduler.start()
        self._workers = [
            asyncio.create_task(self._work(), name="probe worker") for _ in range(self.concurrency)
        ]
        if not self._calm:
            _CalmCollector.enter()
            self._calm = True

    @property
    def running(self) -> bool:
        return bool(self.scheduler.running)

    def shutdown(self) -> None:
        """Stop scheduling and cancel the probes still running; they record nothing."""
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        for task in self._workers:
            task.cancel()
        self._workers = []
        if self._calm:
            _CalmCollector.leave()
            self._calm = False


def _job_id(slot: _Slot) -> str:
    return f"every {slot[0]:g}s, slot {slot[1]}"
