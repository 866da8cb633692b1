"""The web answers from the ``Services`` it is given, with no ``App`` behind it: a real store,
configuration, notifier and metrics, and plain values for the monitor's own health."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from clock import FakeClock
from world import MESSAGES, write_config

from monitor.app import notifier_for
from monitor.config import Config, Problem
from monitor.metrics import Metrics
from monitor.model import Health, SystemState
from monitor.store import SQLiteStore
from monitor.web.server import build_web_app
from monitor.web.services import LastReload, ReplicaView, Services

TOKEN = "t0ken-for-tests"


@dataclass
class Running:
    """What the services read: a configuration that can be swapped, live states, health."""

    config: Config
    states: dict[str, SystemState] = field(default_factory=dict)
    not_ready: str | None = None
    warnings: list[str] = field(default_factory=list)
    refusal: list[Problem] = field(default_factory=list)
    reloads: int = 0

    def reload(self) -> Sequence[Problem]:
        self.reloads += 1
        return self.refusal

    def current_warnings(self, store: str | None) -> Sequence[str]:
        return self.warnings

    async def store_problem(self) -> str | None:
        return None

    async def store_up(self) -> bool:
        return True


@asynccontextmanager
async def served(
    tmp_path: Path, token: str = TOKEN
) -> AsyncIterator[tuple[Running, TestClient[web.Request, web.Application]]]:
    clock = FakeClock()
    monitor = Running(write_config(tmp_path / "checks"))
    store = SQLiteStore(tmp_path / "monitor.db")
    metrics = Metrics()
    metrics.observe_present(
        lambda: monitor.states, store.open_incident_count, store.pending_count, monitor.store_up
    )
    services = Services(
        clock=clock,
        store=store,
        incidents=notifier_for(monitor.config, MESSAGES, store, clock),
        config=lambda: monitor.config,
        states=lambda: monitor.states,
        reload=monitor.reload,
        ready=lambda: monitor.not_ready,
        warnings=monitor.current_warnings,
        store_problem=monitor.store_problem,
        last_reload=lambda: LastReload(clock.now() - 60, None, ()),
        channels=lambda: ["email"],
        metrics_page=metrics.page,
        replicas=lambda: replica_view(store, clock),
        api_token=token,
    )
    client = TestClient(TestServer(build_web_app(services)))
    await client.start_server()
    try:
        yield monitor, client
    finally:
        await client.close()
        await store.close()


async def replica_view(store: SQLiteStore, clock: FakeClock) -> ReplicaView:
    return ReplicaView("web-a", 30.0, await store.replica_overview(clock.now() - 28.0))


async def test_replicas_lists_the_live_ones_with_their_checks_and_the_leader(
    tmp_path: Path,
) -> None:
    """GET /api/v1/replicas lists each live replica with how many checks it probes, which one
    leads and which one answered; one not heard from for the takeover time is left out."""
    async with served(tmp_path) as (_monitor, client):
        store = SQLiteStore(tmp_path / "monitor.db")
        now = FakeClock().now()
        for name, checks in (("web-a", ["payment"]), ("web-b", ["login", "crm"])):
            await store.beat(name, now - 100, now - 1, name, checks)
            await store.take_checks(name, checks, now - 1, now - 29)
        await store.beat("gone", now - 100, now - 40, "gone", [])
        await store.lead("web-b", now - 1, now + 27)
        await store.close()
        response = await client.get("/api/v1/replicas")
        assert response.status == 200
        body = await response.json()
        assert body["takeover_seconds"] == 30.0
        assert [(r["name"], r["checks"], r["leads"], r["this_one"]) for r in body["replicas"]] == [
            ("web-a", 1, False, True),
            ("web-b", 2, True, False),
        ]


async def test_systems_show_the_live_states_and_titles_the_services_give(tmp_path: Path) -> None:
    """/api/v1/systems lists the configured systems with the state the services report."""
    async with served(tmp_path) as (monitor, client):
        monitor.states["payment"] = SystemState(
            "payment", Health.DOWN, since=1_800_000_000.0, last_reason="status 503"
        )
        answer = await (await client.get("/api/v1/systems")).json()
    payment = next(s for s in answer["systems"] if s["name"] == "payment")
    assert payment["title"] == "Online payments"
    assert payment["state"] == "DOWN"
    assert payment["last_reason"] == "status 503"
    assert {s["state"] for s in answer["systems"] if s["name"] != "payment"} == {"UNKNOWN"}


async def test_a_new_configuration_is_served_at_the_next_request(tmp_path: Path) -> None:
    """The configuration is read from the services at each request, so a reload shows at once."""
    async with served(tmp_path) as (monitor, client):
        before = await (await client.get("/api/v1/systems")).json()
        payment = monitor.config.systems["payment"].model_copy(update={"title": "Card payments"})
        monitor.config = replace(monitor.config, systems={"payment": payment})
        after = await (await client.get("/api/v1/systems")).json()
    assert [s["name"] for s in before["systems"]] == ["crm", "login", "payment"]
    assert [(s["name"], s["title"]) for s in after["systems"]] == [("payment", "Card payments")]


async def test_readyz_says_what_the_services_say(tmp_path: Path) -> None:
    """/readyz is 200 with each warning on its own line, and 503 with the reason when not ready."""
    async with served(tmp_path) as (monitor, client):
        monitor.warnings = ["the mail server is slow"]
        ready = await client.get("/readyz")
        ready_text = await ready.text()
        monitor.not_ready = "the scheduler is not running (starting or stopping)"
        starting = await client.get("/readyz")
        starting_text = await starting.text()
    assert (ready.status, ready_text) == (200, "ready\nwarning: the mail server is slow\n")
    assert starting.status == 503
    assert starting_text == "not ready: the scheduler is not running (starting or stopping)\n"


async def test_a_reload_through_the_api_answers_with_the_problems_it_returns(
    tmp_path: Path,
) -> None:
    """POST /-/reload runs the services' reload and lists the problems it refused with."""
    async with served(tmp_path) as (monitor, client):
        monitor.refusal = [Problem("checks/payment.yaml", 4, "every", "not a duration: '5x'")]
        headers = {"Authorization": f"Bearer {TOKEN}"}
        response = await client.post("/-/reload", headers=headers)
        answer = await response.json()
    assert response.status == 422
    assert monitor.reloads == 1
    assert answer["problems"] == [
        {
            "file": "checks/payment.yaml",
            "line": 4,
            "field": "every",
            "message": "not a duration: '5x'",
        }
    ]


async def test_write_routes_are_refused_when_the_services_have_no_token(tmp_path: Path) -> None:
    """With an empty api_token a write route answers 403 naming the variable, and runs nothing."""
    async with served(tmp_path, token="") as (monitor, client):
        response = await client.post("/-/reload", headers={"Authorization": "Bearer anything"})
        answer = await response.json()
    assert response.status == 403
    assert "MONITOR_API_TOKEN is not set" in answer["error"]
    assert monitor.reloads == 0


async def test_metrics_are_the_page_the_services_write(tmp_path: Path) -> None:
    """/metrics serves the metrics page writer's output, states included."""
    async with served(tmp_path) as (monitor, client):
        monitor.states["login"] = SystemState("login", Health.UP, since=1_800_000_000.0)
        page = await (await client.get("/metrics")).text()
    assert 'monitor_system_up{system="login"} 1.0' in page
