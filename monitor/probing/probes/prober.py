"""The prober: one system's check, bounded by its timeout, always ending in a ProbeResult."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Coroutine, Iterator
from time import perf_counter
from typing import Any

import aiohttp

from monitor.config import Probe, SystemConfig
from monitor.model import Clock, ProbeResult
from monitor.probing.probes.http import probe_http
from monitor.probing.probes.reasons import explain, timed_out
from monitor.probing.probes.steps import Journey
from monitor.probing.probes.tcp import probe_tcp


class _Watch:
    """One probe's deadline, for ``_Deadlines``."""

    __slots__ = ("cancelling", "deadline", "done", "expired", "task", "timeout")

    def __init__(self, task: asyncio.Task[Any], timeout: float, deadline: float) -> None:
        self.task: asyncio.Task[Any] | None = task
        self.timeout = timeout
        self.deadline = deadline
        self.cancelling = task.cancelling()
        self.done = False
        self.expired = False


class _Deadlines:
    """Cancels each probe that reaches its timeout, with a timer per timeout value rather than
    one per probe.

    Probes with the same timeout that start in order reach it in that order, so each timeout
    value keeps its probes in a queue and one timer, armed for the oldest probe still running:
    a probe that ends only marks its entry, and the entries at the head that have ended are
    dropped as the queue moves on. ``asyncio.timeout`` per probe (a timer made and cancelled
    each time, and its bookkeeping) was several percent of the monitor's CPU at the ceiling.
    Cancelling and telling it apart from any other cancellation is done as ``asyncio.timeout``
    does it, so a probe still ends by its deadline and lets other cancellations through.
    """

    def __init__(self) -> None:
        self._queues: dict[float, deque[_Watch]] = {}
        self._timers: dict[float, asyncio.TimerHandle] = {}

    def start(self, timeout: float) -> _Watch:
        """Watch the current task: it is cancelled ``timeout`` seconds from now."""
        loop = asyncio.get_running_loop()
        task = asyncio.current_task(loop)
        if task is None:
            raise RuntimeError("a probe must run inside a task")
        watch = _Watch(task, timeout, loop.time() + timeout)
        queue = self._queues.get(timeout)
        if queue is None:
            queue = self._queues[timeout] = deque()
        queue.append(watch)
        if timeout not in self._timers:
            self._arm(timeout, watch.deadline, loop)
        return watch

    def finish(self, watch: _Watch) -> bool:
        """Stop watching; True when the probe ran out of time and the cancellation it got was
        only that (so it is a timeout, not a cancellation to pass on)."""
        watch.done = True
        task, watch.task = watch.task, None
        queue = self._queues[watch.timeout]
        while queue and queue[0].done:
            queue.popleft()
        return watch.expired and task is not None and task.uncancel() <= watch.cancelling

    def _expire(self, timeout: float, loop: asyncio.AbstractEventLoop) -> None:
        queue = self._queues[timeout]
        now = loop.time()
        while queue:
            watch = queue[0]
            if not watch.done:
                if watch.deadline > now:  # the oldest still running: its time comes later
                    self._arm(timeout, watch.deadline, loop)
                    return
                watch.expired = True
                if watch.task is not None:
                    watch.task.cancel()
            queue.popleft()
        del self._timers[timeout]

    def _arm(self, timeout: float, when: float, loop: asyncio.AbstractEventLoop) -> None:
        self._timers[timeout] = loop.call_at(when, self._expire, timeout, loop)


class Prober:
    """Runs probes on one shared session (see ``make_session``); safe to use concurrently.

    At most as many HTTP and steps probes run at once as the session's connector allows
    connections; the others wait for a turn before their timeout starts. Without this they
    would queue inside the connector with their timeout running, so a monitor asked for more
    than it can do would time out healthy systems and call them DOWN (and spend what it has on
    probes that then fail), instead of probing each system a little late.

    A caller that never runs more probes at once than the connector has connections, as the
    app's scheduler with its pool of that many workers, passes ``take_turns=False``: the turns
    would only cost it time per probe.
    """

    def __init__(
        self, session: aiohttp.ClientSession, clock: Clock, *, take_turns: bool = True
    ) -> None:
        self._session = session
        self._clock = clock
        limit = session.connector.limit if session.connector is not None else 0
        self._turns = asyncio.Semaphore(limit) if limit and take_turns else None
        self._deadlines = _Deadlines()

    def probe(self, system: SystemConfig) -> Coroutine[Any, Any, ProbeResult]:
        """Check ``system`` once. Never raises (but lets cancellation through) and returns
        within ``system.timeout`` of starting; a steps probe's timeout covers the whole journey.

        An HTTP or steps probe may first wait for a free connection (see the class); its
        ``started_at`` is when it got one, so ``started_at`` minus the time of the call is how
        long it waited. ``started_at`` comes from the clock; ``duration`` is real elapsed time.
        """
        # Not a coroutine itself: a layer of coroutine per probe is time at every resumption.
        if self._turns is None or system.probe.tcp is not None:
            return self._probe(system)
        return self._probe_in_turn(system, self._turns)

    async def _probe_in_turn(self, system: SystemConfig, turns: asyncio.Semaphore) -> ProbeResult:
        async with turns:
            return await self._probe(system)

    async def _probe(self, system: SystemConfig) -> ProbeResult:
        started_at = self._clock.now()
        started = perf_counter()
        probe = system.probe
        journey: Journey | None = None
        watch = self._deadlines.start(system.timeout)
        try:
            if probe.http is not None:
                ok, reason = await probe_http(self._session, probe.http, started_at)
            elif probe.tcp is not None:
                ok, reason = await probe_tcp(probe.tcp)
            else:
                journey = Journey(self._session, probe.steps or (), started_at)
                ok, reason = await journey.run()
        except asyncio.CancelledError:
            if not self._deadlines.finish(watch):
                raise
            ok, reason = False, timed_out(system.timeout)
        except Exception as exc:
            self._deadlines.finish(watch)
            secrets = list(_secrets(probe))
            if journey is not None and journey.token:
                secrets.append(journey.token)
            ok, reason = False, explain(exc, secrets)
        else:
            self._deadlines.finish(watch)
        if not ok and journey is not None and journey.current:
            reason = f"{journey.current}: {reason}"
        return ProbeResult(system.name, ok, reason, started_at, perf_counter() - started)


def _secrets(probe: Probe) -> Iterator[str]:
    """Everything a request sends that might be secret: header values and bodies."""
    requests: list[Any] = [probe.http] if probe.http is not None else list(probe.steps or ())
    for request in requests:
        yield from request.headers.values()
        if request.body:
            yield request.body
        yield from _strings(getattr(request, "json_body", None))
        yield from (getattr(request, "form", None) or {}).values()


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
