"""What Prometheus reads: each system's latest probe duration, passes and failures, and the
present (up or down, incidents open, messages waiting) as the page is written."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from monitor.metrics import Metrics
from monitor.model import Health, ProbeResult, SystemState

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def _samples(metrics: Metrics) -> Samples:
    text = (await metrics.page()).decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _probe(system: str, ok: bool, duration: float) -> ProbeResult:
    return ProbeResult(system, ok, "status 200" if ok else "status 503", 0.0, duration)


async def test_each_system_shows_its_latest_probe_duration_and_counts_by_result() -> None:
    metrics = Metrics()
    for duration, ok in ((0.004, True), (0.01, True), (0.3, False), (2.5, False)):
        metrics.record_probe(_probe("payment", ok, duration), 0.0)
    metrics.record_probe(_probe("login", True, 0.02), 0.003)

    got = await _samples(metrics)

    assert got[("monitor_probe_duration_seconds", (("system", "payment"),))] == 2.5
    assert got[("monitor_probe_duration_seconds", (("system", "login"),))] == 0.02
    assert got[("monitor_probes_total", (("result", "success"), ("system", "payment")))] == 2
    assert got[("monitor_probes_total", (("result", "failure"), ("system", "payment")))] == 2
    assert got[("monitor_probes_total", (("result", "success"), ("system", "login")))] == 1
    assert got[("monitor_probes_total", (("result", "failure"), ("system", "login")))] == 0
    assert got[("monitor_probe_lateness_seconds_count", ())] == 5
    assert got[("monitor_probe_lateness_seconds_bucket", (("le", "0.0025"),))] == 4


async def test_a_removed_system_leaves_no_series_behind() -> None:
    metrics = Metrics()
    metrics.record_probe(_probe("payment", True, 0.01), 0.0)
    metrics.record_probe(_probe("crm", False, 0.01), 0.0)

    metrics.forget_system("crm")

    systems = {dict(labels).get("system") for _, labels in await _samples(metrics)}
    assert "crm" not in systems
    assert "payment" in systems


async def test_the_page_shows_the_present_as_it_is_when_asked() -> None:
    states = {
        "payment": SystemState("payment", Health.DOWN),
        "login": SystemState("login", Health.UP),
        "crm": SystemState("crm"),  # not probed yet: no series
    }
    waiting = [3]
    writable = [True]
    metrics = Metrics()

    async def open_incidents() -> int:
        return 1

    async def pending() -> int:
        return waiting[0]

    async def store_up() -> bool:
        return writable[0]

    metrics.observe_present(lambda: states, open_incidents, pending, store_up)

    first = await _samples(metrics)
    states["payment"] = SystemState("payment", Health.UP)
    waiting[0] = 0
    writable[0] = False
    second = await _samples(metrics)

    up = "monitor_system_up"
    assert first[(up, (("system", "payment"),))] == 0
    assert first[(up, (("system", "login"),))] == 1
    assert (up, (("system", "crm"),)) not in first
    assert first[("monitor_incidents_open", ())] == 1
    assert first[("monitor_outbox_pending", ())] == 3
    assert second[(up, (("system", "payment"),))] == 1
    assert second[("monitor_outbox_pending", ())] == 0
    assert first[("monitor_store_up", ())] == 1
    assert second[("monitor_store_up", ())] == 0
