"""The monitor side by side with Prometheus' blackbox exporter, probing the same local targets.

    python benchmarks/compare_blackbox.py [--targets 200] [--duration 20]

Both use a new connection per probe (the exporter always does; the monitor with
``reuse_connections: false``), against one target server in its own process
(``benchmarks/target.py``), on 127.0.0.1, one after the other:

- the exporter (Debian's ``prometheus-blackbox-exporter``; installed here with apt-get when run
  as root and missing, else the run says so and stops) is driven the way Prometheus drives it:
  ``GET /probe?module=http_2xx&target=...`` for each of the N targets in turn, by
  ``--concurrency`` concurrent scrapers, as fast as it answers. The scrapers' own CPU is not
  counted; the exporter's is, from /proc.
- the monitor runs as ``benchmarks/probes.py --role monitor`` builds it (the whole App less
  its HTTP server) with N checks, asked for ``--load`` times the exporter's rate.

Printed: probes/s for each, CPU seconds per 1,000 probes for each, and the ratio of probes/s.
Target: the monitor sustains at least 1.5x the exporter's probes/s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp
from probes import Target, measure

EXPORTER_NAMES = ("prometheus-blackbox-exporter", "blackbox_exporter")
MODULES = """\
modules:
  http_2xx:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
"""


def find_exporter() -> str | None:
    for name in EXPORTER_NAMES:
        found = shutil.which(name)
        if found:
            return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("installing Debian's prometheus-blackbox-exporter ...", file=sys.stderr)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends",
             "prometheus-blackbox-exporter"],
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
            capture_output=True,
            check=False,
        )  # fmt: skip
        return next((shutil.which(n) for n in EXPORTER_NAMES if shutil.which(n)), None)
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def process_cpu(pid: int) -> float:
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")


async def drive_exporter(
    exporter: str, urls: list[str], concurrency: int, warmup: float, duration: float, pid: int
) -> dict[str, Any]:
    """Scrape ``/probe`` for each target in turn, ``concurrency`` at a time, as fast as it goes."""
    counts = {"ok": 0, "failed": 0}
    cpu: dict[str, float] = {}
    loop = asyncio.get_running_loop()
    begin = loop.time()
    start, end = begin + warmup, begin + warmup + duration
    next_target = 0

    async def scraper(session: aiohttp.ClientSession) -> None:
        nonlocal next_target
        while loop.time() < end:
            target = urls[next_target % len(urls)]
            next_target += 1
            params = {"module": "http_2xx", "target": target}
            async with session.get(f"{exporter}/probe", params=params) as response:
                body = await response.text()
            if start <= loop.time() < end:
                counts["ok" if "probe_success 1" in body else "failed"] += 1

    async def mark_cpu() -> None:
        await asyncio.sleep(warmup)
        cpu["start"] = process_cpu(pid)
        await asyncio.sleep(duration)
        cpu["end"] = process_cpu(pid)

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(mark_cpu(), *(scraper(session) for _ in range(concurrency)))
    used = cpu["end"] - cpu["start"]
    per_s = counts["ok"] / duration
    return {
        "probes_per_s": per_s,
        "failed_per_s": counts["failed"] / duration,
        "cpu_cores": used / duration,
        "cpu_s_per_1000": used / max(1, counts["ok"]) * 1000,
    }


def run_exporter(binary: str, target: Target, args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="blackbox-") as work:
        config = Path(work) / "blackbox.yml"
        config.write_text(MODULES)
        port = free_port()
        process = subprocess.Popen(
            [binary, f"--config.file={config}", f"--web.listen-address=127.0.0.1:{port}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            _wait_until_up(url + "/metrics")
            urls = [f"{target.url}/healthz?n={i}" for i in range(args.targets)]
            return asyncio.run(
                drive_exporter(url, urls, args.concurrency, args.warmup, args.duration,
                               process.pid)
            )  # fmt: skip
        finally:
            process.terminate()
            process.wait(timeout=10)


def _wait_until_up(url: str, deadline: float = 30.0) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--targets", type=int, default=200, help="N targets (default 200)")
    parser.add_argument("--duration", type=float, default=20.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds before measuring")
    parser.add_argument("--concurrency", type=int, default=64, help="concurrent scrapers")
    parser.add_argument("--load", type=float, default=2.5,
                        help="ask the monitor for this times the exporter's rate")  # fmt: skip
    args = parser.parse_args()
    binary = find_exporter()
    if binary is None:
        print(
            "skipped: Prometheus' blackbox exporter is not installed and could not be installed "
            "(Debian package prometheus-blackbox-exporter; run as root or install it)."
        )
        return
    print(f"{os.cpu_count()} cores, Python {sys.version.split()[0]}, exporter {binary}")
    target = Target()
    try:
        exporter = run_exporter(binary, target, args)
        every = 2.0
        checks = max(args.targets, int(exporter["probes_per_s"] * args.load * every))
        monitor = measure(
            target,
            ["--role", "monitor", "--mode", "fresh", "--checks", str(checks), "--every",
             f"{every:g}", "--timeout", "2", "--fail-after", "1000000", "--settled", "--warmup",
             str(args.warmup), "--duration", str(args.duration)],
            limit=args.warmup + args.duration + 300,
        )  # fmt: skip
    finally:
        target.close()
    mon_cpu = monitor["cpu"] / max(1e-9, monitor["probes_per_s"]) * 1000
    ratio = monitor["probes_per_s"] / max(1e-9, exporter["probes_per_s"])
    print(f"{'':28} {'probes/s':>10} {'CPU s/1000 probes':>18}")
    print(f"{'blackbox exporter':28} {exporter['probes_per_s']:>10.0f} "
          f"{exporter['cpu_s_per_1000']:>18.2f}")  # fmt: skip
    print(f"{'monitor (asked ' + str(round(checks / every)) + '/s)':28} "
          f"{monitor['probes_per_s']:>10.0f} {mon_cpu:>18.2f}")  # fmt: skip
    verdict = "met" if ratio >= 1.5 else "NOT met"
    print(f"ratio monitor/exporter: {ratio:.2f} (target >= 1.5: {verdict})")


if __name__ == "__main__":
    main()
