"""The status page in a real headless Chromium, at a phone's width."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import struct
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from test_api import Running, running
from test_statuspage import DAY, HOUR, MIDNIGHT, payment_becomes

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it where it can)"
)
PHONE = "--window-size=390,844"
# Headless Chromium makes no window narrower than 500 px, so the phone is a frame 390 px wide
# in a page of the test's own, showing a copy of the page (its policy would refuse both the
# frame and the measuring script). When the copy has loaded, the frame's last day of the first
# service is focused, as a keyboard or a tap does, and what the browser then shows and how
# wide the page is are written down.
HARNESS = """<!doctype html>
<html><body style="margin:0">
<iframe id="phone" src="/page" width="390" height="844" style="border:0"></iframe>
<pre id="measured"></pre>
<script>
document.getElementById("phone").addEventListener("load", function () {
  var page = this.contentDocument;
  var days = page.querySelectorAll(".bars [aria-label]");
  var last = days.length > 89 ? days[89] : null;
  if (last) { last.focus(); }
  document.getElementById("measured").textContent = JSON.stringify({
    scroll: page.documentElement.scrollWidth,
    client: page.documentElement.clientWidth,
    focused: last !== null && page.activeElement === last,
    tip: last ? this.contentWindow.getComputedStyle(last, "::after").content : ""
  });
});
</script>
</body></html>"""


async def chromium(*args: str, profile: Path, env: Mapping[str, str] | None = None) -> bytes:
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
        env={**os.environ, **(env or {})},
    )
    out, _ = await asyncio.wait_for(process.communicate(), 90)
    assert process.returncode == 0
    return out


async def months_of_history(w: Running) -> int:
    """Payment watched from 15 Jan, down 10 minutes on 17 Jan and 3 hours on 18 Jan, login
    since 15 Jan, read on 19 Jan at 06:00 UTC: bars of every colour. The second incident."""
    start = w.clock.now() + 10
    await payment_becomes(w, True, start)
    w.result("login", True)
    w.result("login", True)
    await payment_becomes(w, False, MIDNIGHT + 2 * DAY + 9 * HOUR)
    await payment_becomes(w, True, MIDNIGHT + 2 * DAY + 9 * HOUR + 600)
    await payment_becomes(w, False, MIDNIGHT + 3 * DAY + 9 * HOUR)
    await payment_becomes(w, True, MIDNIGHT + 3 * DAY + 12 * HOUR)
    w.clock.advance(MIDNIGHT + 4 * DAY + 6 * HOUR - w.clock.now())
    return (await w.app.store.latest_incidents(1))[0].id


@asynccontextmanager
async def in_a_phone(html: str) -> AsyncIterator[str]:
    """``html`` served in a frame 390 px wide (``HARNESS``), on a port of its own; its URL."""

    async def harness(request: web.Request) -> web.Response:
        return web.Response(text=HARNESS, content_type="text/html")

    async def page(request: web.Request) -> web.Response:
        return web.Response(text=html, content_type="text/html")

    app = web.Application()
    app.router.add_get("/", harness)
    app.router.add_get("/page", page)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}/"
    finally:
        await runner.cleanup()


async def measured(html: str, profile: Path, extra_style: str = "") -> dict[str, Any]:
    """What ``HARNESS`` found of ``html`` in a phone-sized frame."""
    copy = html.replace("</style>", f"{extra_style}</style>", 1)
    async with in_a_phone(copy) as url:
        dom = (await chromium(PHONE, "--dump-dom", url, profile=profile)).decode()
    found = dom.split('<pre id="measured">', 1)[1].split("</pre>", 1)[0]
    return dict(json.loads(found.replace("&quot;", '"').replace("&amp;", "&")))


def png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    return width, height


async def test_a_phone_sized_browser_renders_the_page_with_states_and_no_private_data(
    tmp_path: Path,
) -> None:
    """Chromium made as narrow as it goes renders the page: titles and states are in the DOM,
    the page's own script ran and nothing private is there; a screenshot is taken."""
    async with running(tmp_path) as w:
        await w.results("login", True, 2)
        await w.outage("payment")
        url = str(w.client.make_url("/"))
        dom = (await chromium(PHONE, "--dump-dom", url, profile=tmp_path / "a")).decode()
        shot = tmp_path / "status.png"
        await chromium(PHONE, f"--screenshot={shot}", url, profile=tmp_path / "b")
    assert "Online payments" in dom
    assert "Not working" in dom
    assert "Signing in to your account" in dom
    assert 'name="viewport"' in dom
    # The page's own script ran (its policy allows it): the times it said again locally keep
    # the UTC the server wrote as their title.
    assert re.search(r'<time class="moment" datetime="[^"]+" title="15 Jan 2027, [^"]+ UTC">', dom)
    assert "503" not in dom
    assert "127.0.0.1:9" not in dom
    assert png_size(shot.read_bytes())[1] == 844
    assert shot.stat().st_size > 5000


async def test_the_history_bars_fit_a_phone_and_say_each_days_figure_on_focus(
    tmp_path: Path,
) -> None:
    """In a frame 390 px wide the page with 90 bars a service is no wider than the frame, with
    the last day focused (as a keyboard or a tap does) and its words shown under the bars; with
    bars made too wide to fit, the same measurement sees the page overflow."""
    async with running(tmp_path) as w:
        await months_of_history(w)
        response = await w.client.get("/")
        html = await response.text()
        fits = await measured(html, tmp_path / "a")
        overflows = await measured(html, tmp_path / "b", ".bars > li { min-width: 6px; }")
    assert fits["focused"] is True
    assert fits["tip"] == '"Tue 19 Jan (today): 100%"'
    assert fits["client"] <= 390
    assert fits["scroll"] <= fits["client"], fits
    assert overflows["scroll"] > overflows["client"], overflows


async def test_the_history_bars_render_with_their_hover_text(tmp_path: Path) -> None:
    """In Chromium each service has 90 bars, each with the words hovering or focusing it
    shows: the day, its figure and its incidents; a day with an incident links to it."""
    async with running(tmp_path) as w:
        second = await months_of_history(w)
        url = str(w.client.make_url("/"))
        dom = (await chromium(PHONE, "--dump-dom", url, profile=tmp_path / "a")).decode()
    payment = dom.split('aria-label="Online payments: the last 90 days"', 1)[1].split("</ol>")[0]
    assert payment.count("<li ") == 90
    assert 'class="some"><a href="/incidents/' in payment
    assert 'aria-label="Sun 17 Jan: 99.30%, 1 incident"' in payment
    assert f'<a href="/incidents/{second}" aria-label="Mon 18 Jan: 87.50%, 1 incident">' in payment
    assert 'class="none" tabindex="0" aria-label="Thu 14 Jan: no data"' in payment
    assert 'class="full" tabindex="0" aria-label="Tue 19 Jan (today): 100%"' in payment


async def test_an_incidents_times_are_in_the_readers_time_zone(tmp_path: Path) -> None:
    """A reader in New York (the browser's TZ) reads the incident's times at their clock, with
    their zone named; the UTC time the server wrote stays as each time's title. The page's
    policy lets that one script run."""
    async with running(tmp_path) as w:
        incident = await w.outage("payment")
        url = str(w.client.make_url(f"/incidents/{incident}"))
        new_york = {"TZ": "America/New_York", "LANG": "en_US.UTF-8"}
        dom = (
            await chromium(PHONE, "--dump-dom", url, profile=tmp_path / "a", env=new_york)
        ).decode()
    timeline = dom.split('<ol class="timeline">', 1)[1].split("</ol>", 1)[0]
    said = timeline.replace("\u202f", " ").replace("\xa0", " ")
    assert 'datetime="2027-01-15T08:00:30Z" title="15 Jan 2027, 08:00 UTC">' in said
    assert "Jan 15, 2027, 03:00 AM EST</time>" in said
    assert "08:00 UTC</time>" not in said
