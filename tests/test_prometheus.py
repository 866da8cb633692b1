"""A real Prometheus server scrapes the monitor, and its metrics can be queried."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from urllib.parse import quote

import pytest
from process import REPO, free_port, start_monitor, stop, wait_http
from targets import Target
from test_process import write_checks

PROMETHEUS = shutil.which("prometheus")
pytestmark = pytest.mark.skipif(
    PROMETHEUS is None, reason="Debian's prometheus is not installed (.ci/run installs it)"
)


async def test_prometheus_scrapes_the_monitor_and_answers_for_system_up(tmp_path: Path) -> None:
    """Prometheus scraping the monitor every second can answer `monitor_system_up` with the
    payment system's state, and reports the target healthy."""
    assert PROMETHEUS is not None
    async with Target() as target:
        monitor_port, prom_port = free_port(), free_port()
        monitor = await start_monitor(
            {
                "MONITOR_CONFIG": str(
                    write_checks(tmp_path / "checks", target.url_for("/healthz"))
                ),
                "MONITOR_MESSAGES": str(REPO / "messages"),
                "MONITOR_DB": str(tmp_path / "monitor.db"),
                "MONITOR_LISTEN": f"127.0.0.1:{monitor_port}",
            }
        )
        config = tmp_path / "prometheus.yml"
        config.write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            "scrape_configs:\n"
            "  - job_name: monitor\n"
            f"    static_configs: [{{targets: ['127.0.0.1:{monitor_port}']}}]\n"
        )
        prometheus = await asyncio.create_subprocess_exec(
            PROMETHEUS,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{prom_port}",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            base = f"http://127.0.0.1:{prom_port}/api/v1"
            query = quote('monitor_system_up{system="payment"}')
            answer = await wait_http(f"{base}/query?query={query}", '"value"', deadline=90)
            result = json.loads(answer)["data"]["result"]
            assert result[0]["metric"]["system"] == "payment"
            assert result[0]["value"][1] == "1"
            targets = json.loads(await wait_http(f"{base}/targets", '"health":"up"'))
            assert targets["data"]["activeTargets"][0]["lastError"] == ""
        finally:
            await stop(prometheus)
            await stop(monitor)
