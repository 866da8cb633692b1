"""When each system is probed: APScheduler 3.x, one interval job per system.

Each system gets a stable offset within its interval (from a hash of its name), so a thousand
checks on the same interval spread out instead of firing in the same millisecond, and keep the
same slots across restarts. Each run records how late it started against its due time.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from monitor.model import Clock

# All offsets are measured from this fixed instant, so due times are the same in every process.
_EPOCH = 1_700_000_000.0


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


class ProbeScheduler:
    """Runs ``run(name, lateness)`` for each system on its interval.

    A slow run never delays another system: each run is its own task, and a system whose
    previous run is still going skips a slot rather than piling up.
    """

    def __init__(self, clock: Clock, run: Callable[[str, float], Awaitable[None]]) -> None:
        self.clock = clock
        self.run = run
        self.scheduler = AsyncIOScheduler(
            job_defaults={"coalesce": True, "max_instances": 1}, timezone=UTC
        )
        self.intervals: dict[str, float] = {}

    def schedule(self, name: str, every: float) -> None:
        """Add the system, or move it to a new interval."""
        offset = stable_offset(name, every)
        first = next_due(self.clock.now(), every, offset)
        trigger = IntervalTrigger(
            seconds=every, start_date=datetime.fromtimestamp(first, UTC), timezone=UTC
        )
        self.scheduler.add_job(
            self._run,
            trigger,
            args=(name, every, offset),
            id=name,
            name=name,
            replace_existing=True,
            misfire_grace_time=max(1, int(every)),
        )
        self.intervals[name] = every

    def remove(self, name: str) -> None:
        if self.intervals.pop(name, None) is not None:
            self.scheduler.remove_job(name)

    async def _run(self, name: str, every: float, offset: float) -> None:
        now = self.clock.now()
        late = now - due_time(now, every, offset)
        if (
            late > every / 2
        ):  # started a hair before its slot: that is early, not a whole interval late
            late -= every
        lateness = max(0.0, late)
        await self.run(name, lateness)

    def start(self) -> None:
        self.scheduler.start()

    @property
    def running(self) -> bool:
        return bool(self.scheduler.running)

    def shutdown(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
