"""Prometheus metrics, named as DESIGN.md says, on a registry the caller owns.

Labels stay bounded by the number of systems: no per-person label anywhere. Values that describe
the present (is a system up, how many incidents are open, how much is waiting in the outbox) are
read at scrape time from the functions given, so they can never drift from the truth.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

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


class Metrics:
    """Every metric the monitor exposes; ``registry`` is what /metrics serves."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.probe_duration = Histogram(
            "monitor_probe_duration_seconds",
            "How long each probe took.",
            ["system"],
            buckets=_DURATION_BUCKETS,
            registry=r,
        )
        self.probes = Counter(
            "monitor_probes", "Probes run, by result.", ["system", "result"], registry=r
        )
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
        self.probe_duration.labels(system=result.system).observe(result.duration)
        self.probes.labels(system=result.system, result="success" if result.ok else "failure").inc()
        self.lateness.observe(lateness)

    def forget_system(self, system: str) -> None:
        """Drop a removed system's series so they do not linger forever."""
        for metric, extra in ((self.probe_duration, ()), (self.probes, ("success", "failure"))):
            try:
                if extra:
                    for result in extra:
                        metric.remove(system, result)
                else:
                    metric.remove(system)
            except KeyError:
                pass
