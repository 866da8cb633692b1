"""The prober: one system's check, bounded by its timeout, always ending in a ProbeResult."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from time import perf_counter
from typing import Any

import aiohttp

from monitor.config import Probe, SystemConfig
from monitor.model import Clock, ProbeResult
from monitor.probes.http import probe_http
from monitor.probes.reasons import explain, timed_out
from monitor.probes.steps import Journey
from monitor.probes.tcp import probe_tcp


class Prober:
    """Runs probes on one shared session (see ``make_session``); safe to use concurrently.

    At most as many HTTP and steps probes run at once as the session's connector allows
    connections; the others wait for a turn before their timeout starts. Without this they
    would queue inside the connector with their timeout running, so a monitor asked for more
    than it can do would time out healthy systems and call them DOWN (and spend what it has on
    probes that then fail), instead of probing each system a little late.
    """

    def __init__(self, session: aiohttp.ClientSession, clock: Clock) -> None:
        self._session = session
        self._clock = clock
        limit = session.connector.limit if session.connector is not None else 0
        self._turns = asyncio.Semaphore(limit) if limit else None

    async def probe(self, system: SystemConfig) -> ProbeResult:
        """Check ``system`` once. Never raises (but lets cancellation through) and returns
        within ``system.timeout`` of starting; a steps probe's timeout covers the whole journey.

        An HTTP or steps probe may first wait for a free connection (see the class); its
        ``started_at`` is when it got one, so ``started_at`` minus the time of the call is how
        long it waited. ``started_at`` comes from the clock; ``duration`` is real elapsed time.
        """
        if self._turns is None or system.probe.tcp is not None:
            return await self._probe(system)
        async with self._turns:
            return await self._probe(system)

    async def _probe(self, system: SystemConfig) -> ProbeResult:
        started_at = self._clock.now()
        started = perf_counter()
        probe = system.probe
        journey: Journey | None = None
        try:
            async with asyncio.timeout(system.timeout):
                if probe.http is not None:
                    ok, reason = await probe_http(self._session, probe.http, started_at)
                elif probe.tcp is not None:
                    ok, reason = await probe_tcp(probe.tcp)
                else:
                    journey = Journey(self._session, probe.steps or (), started_at)
                    ok, reason = await journey.run()
        except TimeoutError:
            ok, reason = False, timed_out(system.timeout)
        except Exception as exc:
            secrets = list(_secrets(probe))
            if journey is not None and journey.token:
                secrets.append(journey.token)
            ok, reason = False, explain(exc, secrets)
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
