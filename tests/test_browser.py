"""The status page in a real headless Chromium, at a phone's width."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest
from test_api import running

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it where it can)"
)


async def chromium(*args: str, profile: Path) -> bytes:
    assert CHROMIUM is not None
    process = await asyncio.create_subprocess_exec(
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    out, _ = await asyncio.wait_for(process.communicate(), 90)
    assert process.returncode == 0
    return out


async def test_a_phone_sized_browser_renders_the_page_with_states_and_no_private_data(
    tmp_path: Path,
) -> None:
    """Chromium at 390 px wide renders the page: titles and states are in the DOM, no script
    ran, nothing private is there, and a screenshot is taken."""
    async with running(tmp_path) as w:
        await w.results("login", True, 2)
        await w.outage("payment")
        url = str(w.client.make_url("/"))
        dom = (
            await chromium("--window-size=390,844", "--dump-dom", url, profile=tmp_path / "a")
        ).decode()
        shot = tmp_path / "status.png"
        await chromium("--window-size=390,844", f"--screenshot={shot}", url, profile=tmp_path / "b")
    assert "Online payments" in dom
    assert "Not working" in dom
    assert "Signing in to your account" in dom
    assert 'name="viewport"' in dom
    assert "503" not in dom
    assert "127.0.0.1" not in dom
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 5000
