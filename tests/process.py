"""Running the real ``monitor`` command as a subprocess, as a user or an orchestrator would."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from collections.abc import Mapping
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def monitor_env(extra: Mapping[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")}
    env.update(extra)
    return env


async def run_cli(
    *args: str, env: Mapping[str, str] | None = None, cwd: Path = REPO
) -> tuple[int, str, str]:
    """Run ``monitor ARGS`` in ``cwd`` to completion; return (exit code, stdout, stderr)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "monitor.cli",
        *args,
        env=monitor_env(env or {}),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=cwd,
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def start_monitor(env: Mapping[str, str]) -> asyncio.subprocess.Process:
    """``monitor run`` configured only through the environment, as a sidecar is."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "monitor.cli",
        "run",
        env=monitor_env(env),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        cwd=REPO,
    )


async def wait_http(url: str, expect: str, deadline: float = 60.0) -> str:
    """GET ``url`` until its body contains ``expect``; fail after ``deadline`` seconds.

    The process under test runs on real time, so this polls — with a generous deadline, so a
    slow machine only makes the test slower, never red.
    """
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    last = ""
    async with aiohttp.ClientSession() as session:
        while loop.time() < end:
            try:
                async with session.get(url) as response:
                    last = await response.text()
                    if expect in last:
                        return last
            except aiohttp.ClientError as exc:
                last = repr(exc)
            await asyncio.sleep(0.2)
    raise AssertionError(f"{url} never showed {expect!r}; last answer: {last[:2000]}")


async def stop(process: asyncio.subprocess.Process, kill: bool = False) -> str:
    if process.returncode is None:
        if kill:
            process.kill()
        else:
            process.terminate()
    stderr = await asyncio.wait_for(process.stderr.read(), 60) if process.stderr else b""
    await asyncio.wait_for(process.wait(), 60)
    return stderr.decode(errors="replace")
