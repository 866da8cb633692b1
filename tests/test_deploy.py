"""The ways to run several replicas: deploy/docker-compose.yml (with its check files and people),
deploy/kubernetes-deployment.yaml, and ``monitor simulate``, which the compose setup and the
README's three local replicas probe."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
import yaml
from process import REPO, monitor_env, run_cli

from monitor.app import App
from monitor.config import load_config
from monitor.demo.simulated import DEFAULT_PROBE_PASSWORD
from monitor.demo.simulator import Simulator

DEPLOY = REPO / "deploy"
COMPOSE = DEPLOY / "docker-compose.yml"
COMPOSE_CHECKS = DEPLOY / "compose" / "checks"
KUBERNETES = DEPLOY / "kubernetes-deployment.yaml"
SECRET_KEY = re.compile(r"PASSWORD|TOKEN|SECRET", re.IGNORECASE)
REQUIRED_VARIABLE = re.compile(r"^\$\{(?P<name>[A-Z_]+):\?[^}]+\}$")


def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return document


def services() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose()["services"]
    return found


def replicas() -> dict[str, dict[str, Any]]:
    """The compose services that run ``monitor run`` as a replica."""
    return {
        name: service
        for name, service in services().items()
        if "MONITOR_REPLICA" in service.get("environment", {})
    }


def environments() -> Iterator[tuple[str, str, str]]:
    """(service, variable, value) of every environment variable the compose file sets."""
    for name, service in services().items():
        for variable, value in service.get("environment", {}).items():
            yield name, variable, str(value)


def kubernetes(kind: str) -> dict[str, Any]:
    documents = list(yaml.safe_load_all(KUBERNETES.read_text()))
    found: dict[str, Any] = next(d for d in documents if d["kind"] == kind)
    return found


# docker-compose.yml -------------------------------------------------------------------------


def test_compose_runs_three_replicas_on_postgresql_with_mailpit_and_the_systems() -> None:
    """The compose file has PostgreSQL, three replicas of the repository's image (each its own
    MONITOR_REPLICA and published port, all the same MONITOR_DB and mail catcher), mailpit, and
    the simulated systems served by `monitor simulate`."""
    every = services()
    assert every["postgres"]["image"].startswith("postgres:")
    assert every["mailpit"]["image"].startswith("axllent/mailpit:")
    assert every["systems"]["command"] == ["simulate", "--listen", "0.0.0.0:8080"]
    found = replicas()
    assert len(found) == 3
    names = {s["environment"]["MONITOR_REPLICA"] for s in found.values()}
    assert len(names) == 3
    databases = {s["environment"]["MONITOR_DB"] for s in found.values()}
    assert len(databases) == 1
    assert urlsplit(databases.pop()).hostname == "postgres"
    assert {urlsplit(s["environment"]["MONITOR_SMTP_URL"]).hostname for s in found.values()} == {
        "mailpit"
    }
    published = [port.rsplit(":", 2)[1] for s in found.values() for port in s["ports"]]
    assert sorted(published) == ["9108", "9109", "9110"]
    for service in (*found.values(), every["systems"], every["people"]):
        assert service["build"]["context"] == ".."
        assert (DEPLOY / service["build"]["context"] / service["build"]["dockerfile"]).is_file()


def test_compose_replicas_start_after_the_people_are_imported_and_hand_over_on_stop() -> None:
    """People are imported by a one-shot `monitor users import` before any replica starts;
    each replica is healthy by /readyz and has time to hand its checks over on SIGTERM."""
    every = services()
    people = every["people"]
    assert people["command"][:2] == ["users", "import"]
    csv = people["command"][2]
    mounted = {m.split(":")[1]: m.split(":")[0] for m in people["volumes"]}
    assert (DEPLOY / mounted[csv]).is_file()
    assert (
        people["environment"]["MONITOR_DB"]
        == next(iter(replicas().values()))["environment"]["MONITOR_DB"]
    )
    for service in replicas().values():
        assert service["depends_on"]["people"]["condition"] == "service_completed_successfully"
        assert "/readyz" in " ".join(service["healthcheck"]["test"])
        grace = int(service["stop_grace_period"].removesuffix("s"))
        assert grace > App.stop_grace


def test_compose_file_holds_no_secret_only_required_variables() -> None:
    """Every password or token in the compose file is `${NAME:?...}` (compose refuses to start
    without it, saying what to set), and no URL in it carries a password."""
    secrets = [(s, k, v) for s, k, v in environments() if SECRET_KEY.search(k)]
    assert {k for _, k, _ in secrets} >= {"PGPASSWORD", "POSTGRES_PASSWORD", "MONITOR_API_TOKEN"}
    for service, variable, value in secrets:
        assert REQUIRED_VARIABLE.match(value), f"{service}: {variable} is a literal"
    for service, variable, value in environments():
        if "://" in value:
            assert urlsplit(value).password is None, f"{service}: {variable} holds a password"


def test_compose_check_files_pass_validate() -> None:
    """`monitor validate` (the real command) finds the compose setup's check files and the
    shipped templates good."""
    done = subprocess.run(
        [sys.executable, "-m", "monitor.cli", "validate", "--config", str(COMPOSE_CHECKS)],
        cwd=REPO,
        env=monitor_env({}),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert (done.returncode, done.stdout.strip(), done.stderr) == (0, "3 systems, 0 problems", "")


def test_compose_check_files_probe_the_simulated_systems_service() -> None:
    """Loaded as the replicas load them, the check files probe the `systems` service on the
    ports `monitor simulate --listen 0.0.0.0:8080` gives payment, login and crm."""
    command = services()["systems"]["command"]
    host, port = command[command.index("--listen") + 1].rsplit(":", 1)
    simulator = Simulator(host, int(port), DEFAULT_PROBE_PASSWORD)
    systems = load_config(COMPOSE_CHECKS, {}).systems
    payment, login, crm = (systems[n].probe for n in ("payment", "login", "crm"))
    assert payment.http is not None
    assert login.steps is not None
    assert crm.tcp is not None
    assert payment.http.url == f"http://systems:{simulator.systems.payment.port}/healthz"
    assert login.steps[0].url == f"http://systems:{simulator.systems.login.port}/login"
    assert (crm.tcp.host, crm.tcp.port) == ("systems", simulator.systems.crm.port)


async def test_compose_people_import_into_the_compose_checks_systems(tmp_path: Path) -> None:
    """The people the compose setup imports are all valid for its check files."""
    code, out, err = await run_cli(
        "users",
        "import",
        "--config",
        str(COMPOSE_CHECKS),
        "--db",
        str(tmp_path / "monitor.db"),
        str(DEPLOY / "compose" / "people.csv"),
    )
    assert (code, err) == (0, "")
    assert out.startswith("6 people imported")


def _docker_compose() -> str:
    """Why `docker compose` cannot be used here ("" when it can)."""
    try:
        done = subprocess.run(
            ["docker", "compose", "version"], capture_output=True, text=True, timeout=30
        )
    except FileNotFoundError:
        return "docker is not installed"
    if done.returncode != 0:
        return "docker is installed without its compose plugin"
    return ""


@pytest.mark.skipif(bool(_docker_compose()), reason=_docker_compose() or "")
def test_docker_compose_accepts_the_file_and_refuses_it_without_the_password() -> None:
    """`docker compose config` accepts the file with PGPASSWORD and MONITOR_API_TOKEN set, and
    without PGPASSWORD refuses it, naming the variable."""
    command = ["docker", "compose", "-f", str(COMPOSE), "config", "--quiet"]
    env = {k: v for k, v in os.environ.items() if k not in ("PGPASSWORD", "MONITOR_API_TOKEN")}
    given = {**env, "PGPASSWORD": "example-password", "MONITOR_API_TOKEN": "example-token"}
    done = subprocess.run(command, env=given, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    env["MONITOR_API_TOKEN"] = "example-token"
    refused = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0
    assert "PGPASSWORD" in refused.stderr


# kubernetes-deployment.yaml -----------------------------------------------------------------


def test_kubernetes_deployment_runs_three_replicas_named_after_their_pods() -> None:
    """The Deployment runs 3 replicas, each naming itself by its pod's name, with MONITOR_DB
    from a Secret and the checks and templates from ConfigMaps; the Prometheus annotations are
    on the pods."""
    deployment = kubernetes("Deployment")
    assert deployment["spec"]["replicas"] == 3
    pod = deployment["spec"]["template"]
    assert pod["metadata"]["annotations"]["prometheus.io/port"] == "9108"
    (container,) = pod["spec"]["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert env["MONITOR_REPLICA"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert "secretKeyRef" in env["MONITOR_DB"]["valueFrom"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert mounts == {"checks": "/etc/monitor/checks", "messages": "/etc/monitor/messages"}
    assert all("configMap" in volumes[name] for name in mounts)


def test_kubernetes_deployment_probes_health_and_readiness_and_waits_for_the_hand_over() -> None:
    """Startup and liveness ask /healthz, readiness /readyz (pods of their own, not sidecars),
    and a stopping pod has longer than the sends under way take to hand its checks over."""
    pod = kubernetes("Deployment")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert pod["terminationGracePeriodSeconds"] > App.stop_grace


def test_kubernetes_service_and_disruption_budget_select_the_deployments_pods() -> None:
    """The Service and the PodDisruptionBudget select the Deployment's pods, and node drains
    take one replica at a time."""
    labels = kubernetes("Deployment")["spec"]["template"]["metadata"]["labels"]
    assert kubernetes("Service")["spec"]["selector"] == labels
    budget = kubernetes("PodDisruptionBudget")["spec"]
    assert budget["selector"]["matchLabels"] == labels
    assert budget["maxUnavailable"] == 1


async def test_kubernetes_check_files_pass_validate(tmp_path: Path) -> None:
    """The Deployment's check files, as the ConfigMap mounts them, pass `monitor validate`."""
    for name, text in kubernetes("ConfigMap")["data"].items():
        (tmp_path / name).write_text(text)
    code, out, err = await run_cli(
        "validate",
        "--config",
        str(tmp_path),
        env={"ONCALL_SLACK_URL": "slack://T000/B000/XXXX"},
    )
    assert (code, out.strip(), err) == (0, "1 system, 0 problems", "")


# monitor simulate ---------------------------------------------------------------------------


@dataclass
class Simulated:
    """A running `monitor simulate`, and where it said each part listens."""

    process: asyncio.subprocess.Process
    payment: str
    login: str
    crm: tuple[str, int]
    control: str


@asynccontextmanager
async def simulate(env: dict[str, str]) -> AsyncIterator[Simulated]:
    """`monitor simulate --listen 127.0.0.1:0`, until its lines say where everything is."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "monitor.cli",
        "simulate",
        "--listen",
        "127.0.0.1:0",
        env=monitor_env(env),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=REPO,
    )
    assert process.stdout is not None
    try:
        said: dict[str, str] = {}
        while "control" not in said:
            line = (await asyncio.wait_for(process.stdout.readline(), 60)).decode()
            assert line, "monitor simulate ended before saying where it listens"
            name, _, rest = line.partition(" ")
            said[name] = rest.strip().split(" ")[-1 if name == "crm" else 0]
        host, port = said["crm"].rsplit(":", 1)
        yield Simulated(
            process,
            payment=said["payment"],
            login=said["login"].removesuffix(","),
            crm=(host, int(port)),
            control=said["control"].removesuffix(":").rstrip("/"),
        )
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def _get(session: aiohttp.ClientSession, url: str) -> tuple[int, str]:
    async with session.get(url) as response:
        return response.status, await response.text()


async def _post(session: aiohttp.ClientSession, url: str) -> tuple[int, str]:
    async with session.post(url) as response:
        return response.status, await response.text()


async def _crm_greets(host: str, port: int) -> bool:
    try:
        reader, writer = await asyncio.open_connection(host, port)
    except ConnectionRefusedError:
        return False
    greeting = await reader.readline()
    writer.close()
    await writer.wait_closed()
    return greeting == b"CRM ready\r\n"


async def test_simulate_serves_the_systems_and_its_control_breaks_and_mends_them() -> None:
    """`monitor simulate` serves payment, login (signing in with LOGIN_PROBE_PASSWORD) and crm;
    POST /-/fail/NAME makes one fail as the demo's does, /-/recover/NAME mends it, GET / says
    which fail, and SIGTERM ends it with exit 0."""
    async with simulate({"LOGIN_PROBE_PASSWORD": "s3cret-probe"}) as sim:
        async with aiohttp.ClientSession() as session:
            assert await _get(session, sim.payment) == (200, '{"status": "up", "db": "ok"}')
            body = {"username": "monitor", "password": "s3cret-probe"}
            async with session.post(sim.login, json=body) as response:
                token = (await response.json())["token"]
            account = sim.login.replace("/login", "/account")
            async with session.get(account, headers={"Authorization": f"Bearer {token}"}) as r:
                assert (r.status, await r.text()) == (200, "Welcome back, monitor")
            assert await _crm_greets(*sim.crm)

            said = await _post(session, f"{sim.control}/-/fail/payment")
            assert said == (200, "payment is failing: /healthz answers 503\n")
            status, text = await _get(session, sim.payment)
            assert (status, "card processor not responding" in text) == (503, True)
            assert await _post(session, f"{sim.control}/-/fail/crm") == (
                200,
                "crm is failing: connections are refused\n",
            )
            assert not await _crm_greets(*sim.crm)
            assert await _get(session, f"{sim.control}/") == (
                200,
                "payment is failing: /healthz answers 503\nlogin works\n"
                "crm is failing: connections are refused\n",
            )

            assert await _post(session, f"{sim.control}/-/recover/payment") == (
                200,
                "payment works\n",
            )
            assert (await _get(session, sim.payment))[0] == 200
            await _post(session, f"{sim.control}/-/recover/crm")
            assert await _crm_greets(*sim.crm)
        sim.process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(sim.process.wait(), 60) == 0
        assert sim.process.stdout is not None
        rest = (await sim.process.stdout.read()).decode()
        assert "s3cret-probe" not in rest
        assert rest.splitlines() == [
            "payment is failing: /healthz answers 503",
            "crm is failing: connections are refused",
            "payment works",
            "crm works",
        ]


async def test_simulate_control_names_the_system_it_does_not_know() -> None:
    """Breaking a system the simulator does not have answers 404 with "did you mean"."""
    async with simulate({}) as sim, aiohttp.ClientSession() as session:
        assert await _post(session, f"{sim.control}/-/fail/paymnet") == (
            404,
            "no system is named 'paymnet' (did you mean 'payment'?)\n",
        )


async def test_shipped_checks_pass_and_fail_with_the_simulated_systems() -> None:
    """`monitor check payment` with the shipped check passes against `monitor simulate`, and
    fails with the simulated outage once the control breaks payment."""
    async with simulate({}) as sim, aiohttp.ClientSession() as session:
        env = {"PAYMENT_URL": sim.payment.removesuffix("/healthz")}
        code, out, _ = await run_cli("check", "payment", env=env)
        assert (code, out.startswith("payment passed")) == (0, True), out
        await _post(session, f"{sim.control}/-/fail/payment")
        code, out, _ = await run_cli("check", "payment", env=env)
        assert (code, out.startswith("payment failed"), "503" in out) == (1, True, True), out


def test_simulate_listens_where_the_shipped_checks_look_by_default() -> None:
    """With the default --listen (127.0.0.1:8080), payment, login and crm take the addresses
    the shipped check files fall back to when their variables are unset."""
    simulator = Simulator("127.0.0.1", 8080, DEFAULT_PROBE_PASSWORD)
    systems = load_config(REPO / "checks", {}).systems
    payment, login, crm = (systems[n].probe for n in ("payment", "login", "crm"))
    assert payment.http is not None
    assert login.steps is not None
    assert crm.tcp is not None
    assert payment.http.url == f"{simulator.systems.payment.url}/healthz"
    assert login.steps[0].url == f"{simulator.systems.login.url}/login"
    assert login.steps[0].json_body == {
        "username": "monitor",
        "password": DEFAULT_PROBE_PASSWORD,
    }
    assert (crm.tcp.host, crm.tcp.port) == ("127.0.0.1", simulator.systems.crm.port)


async def test_simulate_refuses_an_address_it_cannot_use() -> None:
    """A --listen that is not HOST:PORT, or leaves no room for the three systems' ports, is
    refused in one line (exit 2)."""
    for listen in ("8080", "127.0.0.1:65534"):
        code, out, err = await run_cli("simulate", "--listen", listen)
        assert (code, out) == (2, "")
        assert err.startswith("simulate: --listen must be HOST:PORT with a port from 0 to 65532")
