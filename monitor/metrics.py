"""Prometheus metrics, named as DESIGN.md says, on a registry the caller owns.

Labels stay bounded by the number of systems: no per-person label anywhere. Values that describe
the present (is a system up, how many incidents are open, how much is waiting in the outbox) are
read at scrape time from the functions given, so they can never drift from the truth.
The page is written in a worker thread (``Metrics.page``), not in the event loop that probes.
"""

from __future__ import annotations

import asyncio
import math
from bisect import bisect_left
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from itertools import accumulate

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from monitor.model import Health, ProbeResult, SystemState

_LATENESS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


@dataclass(frozen=True)
class _Snapshot:
    """What the present is, read in the event loop (the store is not to be used from another
    thread) for a page written in a worker thread."""

    states: dict[str, SystemState]
    open_incidents: int | None  # None: the store could not be read (the gauge is left out)
    outbox_pending: int | None
    store_up: bool
    open_promises: int | None = None


# Set by ``Metrics.page`` for the worker thread writing the page (asyncio.to_thread copies it).
_snapshot: ContextVar[_Snapshot | None] = ContextVar("metrics_snapshot", default=None)
# Each system a maintenance window is about, and whether it is in one now; read with the rest.
_maintenance: ContextVar[Mapping[str, bool] | None] = ContextVar("maintenance", default=None)


class _Present(Collector):
    def __init__(
        self,
        states: Callable[[], Mapping[str, SystemState]],
        open_incidents: Callable[[], Awaitable[int | None]],
        outbox_pending: Callable[[], Awaitable[int | None]],
        store_up: Callable[[], Awaitable[bool]],
        open_promises: Callable[[], Awaitable[int | None]],
    ) -> None:
        self.states = states
        self.open_incidents = open_incidents
        self.outbox_pending = outbox_pending
        self.store_up = store_up
        self.open_promises = open_promises

    async def snapshot(self) -> _Snapshot:
        return _Snapshot(
            dict(self.states()),
            await self.open_incidents(),
            await self.outbox_pending(),
            await self.store_up(),
            await self.open_promises(),
        )

    def collect(self) -> Iterator[Metric]:
        now = _snapshot.get()
        if now is None:  # the registry read by something other than ``Metrics.page``
            return
        up = GaugeMetricFamily(
            "monitor_system_up",
            "Whether the system passes its checks (1 UP, 0 DOWN); absent until first decided.",
            labels=["system"],
        )
        for name, state in sorted(now.states.items()):
            if state.health is not Health.UNKNOWN:
                up.add_metric([name], 1.0 if state.health is Health.UP else 0.0)
        yield up
        # Absent while the store cannot be read (a database server down): no figure rather
        # than a made-up one, and the page itself still answers, with monitor_store_up 0.
        if now.open_incidents is not None:
            yield GaugeMetricFamily(
                "monitor_incidents_open", "Incidents not yet resolved.", value=now.open_incidents
            )
        if now.outbox_pending is not None:
            yield GaugeMetricFamily(
                "monitor_outbox_pending",
                "Customer messages decided but not yet sent.",
                value=now.outbox_pending,
            )
        if now.open_promises is not None:
            yield GaugeMetricFamily(
                "monitor_promises_open",
                "Resolved incidents whose customers were promised an explanation not yet sent.",
                value=now.open_promises,
            )
        yield GaugeMetricFamily(
            "monitor_store_up",
            "Whether the store takes writes now (1) or not (0): while it does not, probing goes "
            "on in memory and what is decided waits for it.",
            value=1.0 if now.store_up else 0.0,
        )


async def _none_open() -> int:
    """Open promises where nothing keeps any (a registry without a store): none."""
    return 0


@dataclass(frozen=True)
class ReplicaFigures:
    """This replica among the others, as its last heartbeat left it (no store read)."""

    live: int  # replicas alive at the last heartbeat, this one included
    owned: int  # checks this replica probes
    leading: bool
    claimed: int  # messages this replica is sending and has not yet marked


class _Replica(Collector):
    def __init__(self, figures: Callable[[], ReplicaFigures]) -> None:
        self.figures = figures

    def collect(self) -> Iterator[Metric]:
        now = self.figures()
        yield GaugeMetricFamily(
            "monitor_replicas_live",
            "Replicas sharing the database alive at this replica's last heartbeat, itself "
            "included.",
            value=now.live,
        )
        yield GaugeMetricFamily(
            "monitor_checks_owned", "Checks this replica probes.", value=now.owned
        )
        yield GaugeMetricFamily(
            "monitor_replica_leading",
            "Whether this replica leads (1): it folds failures into incidents and decides who is "
            "told what.",
            value=1.0 if now.leading else 0.0,
        )
        yield GaugeMetricFamily(
            "monitor_outbox_claimed",
            "Customer messages this replica is sending now: taken from the outbox, their "
            "outcome not yet recorded.",
            value=now.claimed,
        )


class _Maintenance(Collector):
    """``monitor_maintenance_active{system}``: for each system a maintenance window is about,
    1 while it is in one, else 0 (an alert rule can then leave such failures to the window)."""

    def collect(self) -> Iterator[Metric]:
        now = _maintenance.get() or {}  # none read: no window, or no page being written
        family = GaugeMetricFamily(
            "monitor_maintenance_active",
            "Whether the system is in a maintenance window now (1) or not (0), for each system "
            "a window is about: customers are not told of its failures in one.",
            labels=["system"],
        )
        for system, active in sorted(now.items()):
            family.add_metric([system], 1.0 if active else 0.0)
        yield family


class _Tally:
    """One system's probes: how many passed and failed, and how long the latest one took."""

    __slots__ = ("failed", "latest", "passed")

    def __init__(self) -> None:
        self.passed = 0
        self.failed = 0
        self.latest = 0.0


class _Probes(Collector):
    """``monitor_probe_duration_seconds{system}`` and ``monitor_probes_total{system,result}``.

    The duration is a gauge, the latest probe's, as the blackbox exporter's
    ``probe_duration_seconds`` is: a histogram per system was 15 series a system, 150,000 with
    10,000 systems, which weighs on Prometheus and made the page 13 MB.
    Kept as plain numbers per system and turned into series at scrape time: prometheus_client's
    labelled metrics cost a labels() lookup and locked values per probe, about 7% of the CPU at
    a thousand probes a second.
    """

    def __init__(self) -> None:
        self.tallies: dict[str, _Tally] = {}

    def record(self, system: str, ok: bool, duration: float) -> None:
        tally = self.tallies.get(system)
        if tally is None:
            tally = self.tallies[system] = _Tally()
        if ok:
            tally.passed += 1
        else:
            tally.failed += 1
        tally.latest = duration

    def collect(self) -> Iterator[Metric]:
        durations = GaugeMetricFamily(
            "monitor_probe_duration_seconds",
            "How long the latest probe of the system took.",
            labels=["system"],
        )
        probes = CounterMetricFamily(
            "monitor_probes", "Probes run, by result.", labels=["system", "result"]
        )
        # sorted() copies the dict in one step, so the event loop adding a system meanwhile
        # (this runs in a worker thread) cannot change it under the loop below.
        for system, tally in sorted(self.tallies.items()):
            durations.add_metric([system], tally.latest)
            probes.add_metric([system, "success"], tally.passed)
            probes.add_metric([system, "failure"], tally.failed)
        yield durations
        yield probes


class _Lateness(Collector):
    """``monitor_probe_lateness_seconds``, the histogram of how late probes start, as plain
    counts: prometheus_client's ``Histogram.observe`` takes a lock per bucket and per sum, a
    few microseconds a probe at thousands of probes a second."""

    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.bounds = (*buckets, math.inf)
        self.labels = [repr(float(b)) for b in buckets] + ["+Inf"]  # as prometheus_client says
        self.counts = [0] * len(self.bounds)
        self.sum = 0.0

    def observe(self, lateness: float) -> None:
        self.counts[bisect_left(self.bounds, lateness)] += 1
        self.sum += lateness

    def collect(self) -> Iterator[Metric]:
        counts, total = list(self.counts), self.sum  # the loop may add one meanwhile
        family = HistogramMetricFamily(
            "monitor_probe_lateness_seconds", "How long after its due time each probe started."
        )
        family.add_metric(
            [],
            list(zip(self.labels, accumulate(counts), strict=True)),
            total,
        )
        yield family


class Metrics:
    """Every metric the monitor exposes; ``registry`` is what /metrics serves."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self._present: _Present | None = None
        self._maintenance: Callable[[], Awaitable[Mapping[str, bool]]] | None = None
        r = self.registry
        self.probes = _Probes()
        r.register(self.probes)
        self.lateness = _Lateness(_LATENESS_BUCKETS)
        r.register(self.lateness)
        r.register(_Maintenance())
        self.incidents = Counter("monitor_incidents", "Incidents opened.", registry=r)
        self.messages = Counter(
            "monitor_messages",
            "Customer message delivery outcomes, by channel and kind.",
            ["channel", "kind", "outcome"],
            registry=r,
        )
        self.config_reloads = Counter(
            "monitor_config_reloads", "Configuration reloads, by result.", ["result"], registry=r
        )
        self.subscriptions = Counter(
            "monitor_subscriptions",
            "Self-service subscription steps: requested (a confirmation mail decided), "
            "confirmed, unsubscribed.",
            ["event"],
            registry=r,
        )
        for step in ("requested", "confirmed", "unsubscribed"):
            self.subscriptions.labels(event=step)  # at 0 from the start
        self.config_last_success = Gauge(
            "monitor_config_last_reload_success_timestamp_seconds",
            "When the configuration was last loaded successfully.",
            registry=r,
        )
        self.config_last_reload_ok = Gauge(
            "monitor_config_last_reload_successful",
            "Whether the last configuration reload was accepted (1) or refused (0, the previous "
            "configuration keeps running).",
            registry=r,
        )
        for result in ("success", "failure"):
            self.config_reloads.labels(result=result)

    def observe_present(
        self,
        states: Callable[[], Mapping[str, SystemState]],
        open_incidents: Callable[[], Awaitable[int | None]],
        outbox_pending: Callable[[], Awaitable[int | None]],
        store_up: Callable[[], Awaitable[bool]],
        open_promises: Callable[[], Awaitable[int | None]] = _none_open,
    ) -> None:
        """Where the page reads the present: the live states, and the store's counts (None
        when it cannot be read: open incidents, messages pending, promises of an explanation
        open) and whether it takes writes, awaited in the event loop before each page is
        written."""
        self._present = _Present(states, open_incidents, outbox_pending, store_up, open_promises)
        self.registry.register(self._present)

    def observe_maintenance(self, active: Callable[[], Awaitable[Mapping[str, bool]]]) -> None:
        """Where the page reads which systems are in a maintenance window now, awaited in the
        event loop with the rest."""
        self._maintenance = active

    def observe_replica(self, figures: Callable[[], ReplicaFigures]) -> None:
        """Where the page reads this replica's place among the others."""
        self.registry.register(_Replica(figures))

    async def page(self) -> bytes:
        """The /metrics page, written in a worker thread: with 10,000 systems writing it takes
        a few hundred milliseconds, and in the event loop no probe could start meanwhile. What
        needs the store is read here first, in the loop."""
        present = await self._present.snapshot() if self._present is not None else None
        planned = await self._maintenance() if self._maintenance is not None else None
        token = _snapshot.set(present)
        planned_token = _maintenance.set(planned)
        try:
            return await asyncio.to_thread(generate_latest, self.registry)
        finally:
            _maintenance.reset(planned_token)
            _snapshot.reset(token)

    def record_probe(self, result: ProbeResult, lateness: float) -> None:
        self.probes.record(result.system, result.ok, result.duration)
        self.lateness.observe(lateness)

    def forget_system(self, system: str) -> None:
        """Drop a removed system's series so they do not linger forever."""
        self.probes.tallies.pop(system, None)
