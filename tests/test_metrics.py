"""What Prometheus reads of the probes: durations by bucket, passes and failures per system."""

from __future__ import annotations

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from monitor.metrics import Metrics
from monitor.model import ProbeResult


def _samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(metrics.registry).decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _probe(system: str, ok: bool, duration: float) -> ProbeResult:
    return ProbeResult(system, ok, "status 200" if ok else "status 503", 0.0, duration)


def test_probe_durations_are_cumulative_buckets_with_sum_and_count_per_system() -> None:
    metrics = Metrics()
    for duration, ok in ((0.004, True), (0.01, True), (0.3, False), (45.0, False)):
        metrics.record_probe(_probe("payment", ok, duration), 0.0)
    metrics.record_probe(_probe("login", True, 0.02), 0.0)

    got = _samples(metrics)
    bucket = "monitor_probe_duration_seconds_bucket"

    def payment(le: str) -> float:
        return got[(bucket, (("le", le), ("system", "payment")))]

    # A probe of exactly 0.01 s counts in le="0.01": Prometheus buckets are "less or equal".
    assert [payment(le) for le in ("0.005", "0.01", "0.25", "0.5", "30.0", "+Inf")] == [
        1,
        2,
        2,
        3,
        3,
        4,
    ]
    assert got[("monitor_probe_duration_seconds_count", (("system", "payment"),))] == 4
    assert got[("monitor_probe_duration_seconds_sum", (("system", "payment"),))] == 45.314
    assert got[("monitor_probes_total", (("result", "success"), ("system", "payment")))] == 2
    assert got[("monitor_probes_total", (("result", "failure"), ("system", "payment")))] == 2
    assert got[("monitor_probes_total", (("result", "success"), ("system", "login")))] == 1
    assert got[("monitor_probes_total", (("result", "failure"), ("system", "login")))] == 0
    assert got[("monitor_probe_lateness_seconds_count", ())] == 5


def test_a_removed_system_leaves_no_series_behind() -> None:
    metrics = Metrics()
    metrics.record_probe(_probe("payment", True, 0.01), 0.0)
    metrics.record_probe(_probe("crm", False, 0.01), 0.0)

    metrics.forget_system("crm")

    systems = {dict(labels).get("system") for _, labels in _samples(metrics)}
    assert "crm" not in systems
    assert "payment" in systems
