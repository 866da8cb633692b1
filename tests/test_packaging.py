"""The container image's recipe: lint-clean, and its install steps give a working monitor."""

from __future__ import annotations

import asyncio
import shutil
import sys
from pathlib import Path

import pytest
import yaml
from process import REPO


async def run(*command: str, cwd: Path = REPO, env: dict[str, str] | None = None) -> str:
    process = await asyncio.create_subprocess_exec(
        *command,
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(process.communicate(), 240)
    text = out.decode(errors="replace")
    assert process.returncode == 0, f"{' '.join(command)} failed:\n{text[-4000:]}"
    return text


async def test_dockerfile_passes_hadolint() -> None:
    """hadolint finds nothing to say about the Dockerfile."""
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    await run(hadolint, "Dockerfile")


def test_image_runs_as_non_root_with_health_check_and_config_mounts() -> None:
    """The image drops root, exposes 9108, checks /healthz and reads config from /etc/monitor."""
    text = (REPO / "Dockerfile").read_text()
    assert "USER 10001" in text
    assert "EXPOSE 9108" in text
    assert "HEALTHCHECK" in text
    assert "/healthz" in text
    assert "MONITOR_CONFIG=/etc/monitor/checks" in text
    assert "MONITOR_MESSAGES=/etc/monitor/messages" in text


async def test_the_wheel_installs_into_a_fresh_venv_and_validates(tmp_path: Path) -> None:
    """As the image does: build the wheel, install it into a new venv, and `monitor validate`
    the shipped checks from a config directory like the mounted /etc/monitor one."""
    await run(
        sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path / "w"), "."
    )
    wheel = next((tmp_path / "w").glob("*.whl"))
    venv = tmp_path / "venv"
    await run(sys.executable, "-m", "venv", str(venv))
    await run(str(venv / "bin" / "pip"), "install", "-q", str(wheel))
    etc = tmp_path / "etc" / "monitor"
    shutil.copytree(REPO / "checks", etc / "checks")
    shutil.copytree(REPO / "messages", etc / "messages")
    env = {
        "PATH": f"{venv / 'bin'}:/usr/bin:/bin",
        "MONITOR_CONFIG": str(etc / "checks"),
        "MONITOR_MESSAGES": str(etc / "messages"),
    }
    out = await run(str(venv / "bin" / "monitor"), "validate", cwd=tmp_path, env=env)
    assert out.strip() == "3 systems, 0 problems"
    shipped = await run(
        str(venv / "bin" / "python"),
        "-c",
        "import importlib.resources as r; d = r.files('monitor') / 'demo' / 'defaults';"
        "print(sorted(p.name for p in (d / 'checks').iterdir()));"
        "print(sorted(p.name for p in (d / 'messages').iterdir()))",
        cwd=tmp_path,
        env=env,
    )
    assert "payment.yaml" in shipped
    assert "acknowledge.j2" in shipped


def test_kubernetes_example_runs_the_monitor_as_a_scraped_sidecar() -> None:
    """The example pod has the monitor container beside the app, config from ConfigMaps, and
    Prometheus scrape annotations on port 9108."""
    documents = list(yaml.safe_load_all((REPO / "deploy" / "kubernetes-pod.yaml").read_text()))
    pod = next(d for d in documents if d["kind"] == "Pod")
    assert pod["metadata"]["annotations"]["prometheus.io/port"] == "9108"
    names = [c["name"] for c in pod["spec"]["containers"]]
    assert names == ["shop", "monitor"]
    mounts = {m["mountPath"] for m in pod["spec"]["containers"][1]["volumeMounts"]}
    assert {"/etc/monitor/checks", "/etc/monitor/messages"} <= mounts


def test_the_monitors_own_trouble_never_takes_the_example_pod_out_of_service() -> None:
    """The monitor container has no readiness probe (a not-ready sidecar would remove the shop's
    pod from its Service); its liveness probe is /healthz, which a bad config never fails."""
    documents = list(yaml.safe_load_all((REPO / "deploy" / "kubernetes-pod.yaml").read_text()))
    pod = next(d for d in documents if d["kind"] == "Pod")
    monitor = next(c for c in pod["spec"]["containers"] if c["name"] == "monitor")
    assert "readinessProbe" not in monitor
    assert monitor["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert monitor["startupProbe"]["httpGet"]["path"] == "/healthz"


@pytest.mark.skipif(
    not shutil.which("promtool"), reason="promtool (Debian package prometheus) is not installed"
)
async def test_example_prometheus_config_is_valid() -> None:
    """promtool accepts the example scrape configuration."""
    await run("promtool", "check", "config", "deploy/prometheus.yml")
