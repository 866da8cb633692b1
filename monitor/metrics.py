"""Prometheus metrics, named as DESIGN.md says, on a registry the caller owns.

Labels stay bounded by the number of systems: no per-person label anywhere. Values that describe
the present (is a system up, how many incidents are open, how much is waiting in the outbox) are
read at scrape time from the functions given, so they can never drift from the truth.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterator, Mapping
from itertools import accumulate

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from monitor.model import Health, ProbeResult, SystemState

_LATENESS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
_DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class _Present(Collector):
    def __init__(
        self,
        states: Callable[[], Mapping[str, SystemState]],
        open_incidents: Callable[[], int],
        outbox_pending: Callable[[], int],
    ) -> None:
        self.states = states
        self.open_incidents = open_incidents
        self.outbox_pending = outbox_pending

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "monitor_system_up",
            "Whether the system passes its checks (1 UP, 0 DOWN); absent until first decided.",
            labels=["system"],
        )
        for name, state in sorted(self.states().items()):
            if state.health is not Health.UNKNOWN:
                up.add_metric([name], 1.0 if state.health is Health.UP else 0.0)
        yield up
        yield GaugeMetricFamily(
            "monitor_incidents_open", "Incidents not yet resolved.", value=self.open_incidents()
        )
        yield GaugeMetricFamily(
            "monitor_outbox_pending",
            "Customer messages decided but not yet sent.",
            value=self.outbox_pending(),
        )


class _Tally:
    """One system's probes: how many passed and failed, and their durations by bucket."""

    __slots__ = ("buckets", "failed", "passed", "seconds")

    def __init__(self) -> None:
        self.passed = 0
        self.failed = 0
        self.buckets = [0] * (len(_DURATION_BUCKETS) + 1)  # per bucket, not cumulative; +Inf
        self.seconds = 0.0


class _Probes(Collector):
    """``monitor_probe_duration_seconds{system}`` and ``monitor_probes_total{system,result}``.

    Kept as plain counts per system and turned into series at scrape time: a prometheus_client
    labelled Histogram and Counter cost a labels() lookup and a dozen locked values per series,
    about 7% of the monitor's CPU at a thousand probes a second and 2.8 KB per system.
    """

    def __init__(self) -> None:
        self.tallies: dict[str, _Tally] = {}
        self._bounds = [*map(floatToGoString, _DURATION_BUCKETS), "+Inf"]

    def record(self, system: str, ok: bool, duration: float) -> None:
        tally = self.tallies.get(system)
        if tally is None:
            tally = self.tallies[system] = _Tally()
        if ok:
            tally.passed += 1
        else:
            tally.failed += 1
        tally.buckets[bisect_left(_DURATION_BUCKETS, duration)] += 1
        tally.seconds += duration

    def collect(self) -> Iterator[Metric]:
        durations = HistogramMetricFamily(
            "monitor_probe_duration_seconds", "How long each probe took.", labels=["system"]
        )
        probes = CounterMetricFamily(
            "monitor_probes", "Probes run, by result.", labels=["system", "result"]
        )
        for system, tally in sorted(self.tallies.items()):
            cumulative = accumulate(tally.buckets)
            durations.add_metric(
                [system], list(zip(self._bounds, cumulative, strict=True)), tally.seconds
            )
            probes.add_metric([system, "success"], tally.passed)
            probes.add_metric([system, "failure"], tally.failed)
        yield durations
        yield probes


class Metrics:
    """Every metric the monitor exposes; ``registry`` is what /metrics serves."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.probes = _Probes()
        r.register(self.probes)
        self.lateness = Histogram(
            "monitor_probe_lateness_seconds",
            "How long after its due time each probe started.",
            buckets=_LATENESS_BUCKETS,
            registry=r,
        )
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
        self.config_last_success = Gauge(
            "monitor_config_last_reload_success_timestamp_seconds",
            "When the configuration was last loaded successfully.",
            registry=r,
        )
        for result in ("success", "failure"):
            self.config_reloads.labels(result=result)

    def observe_present(
        self,
        states: Callable[[], Mapping[str, SystemState]],
        open_incidents: Callable[[], int],
        outbox_pending: Callable[[], int],
    ) -> None:
        self.registry.register(_Present(states, open_incidents, outbox_pending))

    def record_probe(self, result: ProbeResult, lateness: float) -> None:
        self.probes.record(result.system, result.ok, result.duration)
        self.lateness.observe(lateness)

    def forget_system(self, system: str) -> None:
        """Drop a removed system's series so they do not linger forever."""
        self.probes.tallies.pop(system, None)
