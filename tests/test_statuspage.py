"""The public status page of a real running App: what customers see, and what they never see."""

from __future__ import annotations

import html as markup
import re
from pathlib import Path

import pytest
from test_api import FAILURE, Running, running

from monitor.web.statuspage import duration_text, uptime_text

PEOPLE = [
    {
        "id": "alice",
        "name": "Alice Martin",
        "email": "alice@example.com",
        "phone": "+447700900001",
        "systems": ["payment", "login"],
    },
    {"id": "bob", "name": "Bob Stone", "email": "bob@example.com", "systems": ["crm"]},
]
EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")
DAY = 86400.0
HOUR = 3600.0


async def page(w: Running) -> str:
    response = await w.client.get("/")
    assert response.status == 200
    assert response.content_type == "text/html"
    return await response.text()


def service_lines(html: str) -> dict[str, str]:
    """Each service's line as a reader sees it (tags gone, spaces collapsed), by title."""
    items = re.findall(
        r'<li class="system">\s*<span class="title">(.*?)</span>(.*?)</li>', html, re.S
    )
    return {
        markup.unescape(title): " ".join(markup.unescape(re.sub(r"<[^>]+>", " ", rest)).split())
        for title, rest in items
    }


async def payment_becomes(w: Running, up: bool, at: float) -> None:
    """Payment's state is decided UP or DOWN at ``at``: the deciding results come a second
    apart (``recover_after`` 2, ``fail_after`` 3), the last of them at ``at``."""
    rounds = 2 if up else 3
    w.clock.advance(at - (rounds - 1) - w.clock.now())
    for i in range(rounds):
        w.clock.advance(1 if i else 0)
        w.result("payment", up)
    await w.tick()


async def outage_with_people(w: Running) -> int:
    """Alice and Bob subscribed and told; payment down, with a note; crm's outage resolved."""
    assert (await w.post("/api/v1/users", PEOPLE)).status == 200
    await w.results("login", True, 2)
    crm = await w.outage("crm")
    await w.results("crm", True, 2)
    w.clock.advance(3600)
    payment = await w.outage("payment")
    note = "Card payments fail; our provider is fixing it. Pay by phone meanwhile."
    await w.post(f"/api/v1/incidents/{payment}/note", {"text": note})
    body = {"system": "payment", "user": {"id": "carol", "name": "Carol Vance"}, "action": "pay"}
    await w.post("/api/v1/attempts", body)
    await w.tick()
    assert await w.app.store.outbox_items(payment)
    return crm


async def test_the_page_shows_each_systems_title_state_and_uptime(tmp_path: Path) -> None:
    """Every system appears by its title with its state in words and its recent uptime."""
    async with running(tmp_path) as w:
        await w.results("login", True, 2)
        await w.outage("payment")
        html = await page(w)
    for title in ("Online payments", "Signing in to your account", "Your order history"):
        assert title in html
    assert re.search(r"Online payments</span>\s*<span class=\"state down\">Not working", html)
    assert re.search(r"Signing in to your account</span>\s*<span class=\"state up\">Working", html)
    assert re.search(r"Your order history</span>\s*<span class=\"state unknown\">", html)
    assert service_lines(html)["Signing in to your account"] == "Working Working 100% since 15 Jan"
    assert "Some of our services are not working" in html
    assert "Example Ltd" in html


async def test_the_page_shows_open_incidents_with_their_note_and_recent_resolved_ones(
    tmp_path: Path,
) -> None:
    """The open payment incident shows its public note; the resolved crm one its duration."""
    async with running(tmp_path) as w:
        await outage_with_people(w)
        html = await page(w)
    current, _, resolved = html.partition("Resolved in the last 7 days")
    assert "Online payments" in current.split("Current problems")[1]
    assert "our provider is fixing it" in current
    assert "Your order history" in resolved
    assert "From <time" in resolved
    assert duration_text(15 + 60 + 30) in resolved


async def test_the_page_shows_nothing_private(tmp_path: Path) -> None:
    """With people subscribed, told and reporting attempts, the page has no email address,
    no person's name or phone, no count of people, no probe URL and no failure reason."""
    async with running(tmp_path) as w:
        await outage_with_people(w)
        html = await page(w)
    assert EMAIL.search(html) is None
    for private in ("Alice", "Martin", "Bob", "Carol", "+447700900001", "7700"):
        assert private not in html
    assert "127.0.0.1" not in html
    assert "http://" not in html.replace("http://www.w3.org", "")
    assert "healthz" not in html
    assert FAILURE not in html
    assert "503" not in html
    assert "db-password-expired" not in html
    assert re.search(r"\b\d+ (people|person|customers?|users?)\b", html) is None
    assert "crm" not in html  # system names stay internal: customers read titles


async def test_markup_in_a_title_or_a_note_is_escaped(tmp_path: Path) -> None:
    """A system title and an incident note containing <script> appear as text, not markup."""
    async with running(tmp_path) as w:
        path = w.checks / "payment.yaml"
        path.write_text(
            path.read_text().replace(
                "title: Online payments", "title: \"<script>alert('title')</script> & pay\""
            )
        )
        assert (await w.post("/-/reload")).status == 200
        incident = await w.outage("payment")
        note = '<script>alert("note")</script><img src=x onerror=alert(1)>'
        assert (await w.post(f"/api/v1/incidents/{incident}/note", {"text": note})).status == 200
        response = await w.client.get("/")
        html = await response.text()
    assert "<script" not in html
    assert "<img" not in html
    assert "&lt;script&gt;alert(&#39;title&#39;)&lt;/script&gt; &amp; pay" in html
    assert "&lt;script&gt;alert(&#34;note&#34;)&lt;/script&gt;" in html
    assert "script-src" not in response.headers["Content-Security-Policy"]
    assert response.headers["Content-Security-Policy"].startswith("default-src 'none'")


async def test_the_page_is_made_for_phones_and_needs_no_script(tmp_path: Path) -> None:
    """The page declares a viewport, UTF-8 and a language, and carries no script at all."""
    async with running(tmp_path) as w:
        html = await page(w)
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
    assert '<meta charset="utf-8">' in html
    assert '<html lang="en">' in html
    assert "<script" not in html
    assert "We are checking our services" in html  # nothing decided yet


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (30, "less than a minute"),
        (60, "1 min"),
        (2 * 3600 + 5 * 60 + 59, "2 h 5 min"),
        (3 * 86400 + 4 * 3600 + 7 * 60, "3 d 4 h"),
        (86400, "1 d"),
    ],
)
def test_durations_read_as_days_hours_and_minutes(seconds: float, text: str) -> None:
    """Durations show the two largest units, rounded down to the minute."""
    assert duration_text(seconds) == text


@pytest.mark.parametrize(
    ("ratio", "text"),
    [(None, ""), (1.0, "100%"), (0.99999, "99.99%"), (0.5, "50.00%")],
)
def test_uptime_is_rounded_down_so_a_failure_never_shows_as_100_percent(
    ratio: float | None, text: str
) -> None:
    """An uptime of 99.999% shows as 99.99%, never as 100%."""
    assert uptime_text(ratio) == text


# uptime over the time watched ------------------------------------------------------------------


async def test_after_30_seconds_the_uptime_is_over_those_30_seconds_not_a_week(
    tmp_path: Path,
) -> None:
    """Payment DOWN for 20 s then UP for 10 s reads "Working 33.33% since 15 Jan", never "of
    the last 7 days"; a system not yet decided shows no figure at all."""
    async with running(tmp_path) as w:
        start = w.clock.now() + 10  # 2027-01-15 08:00:10 UTC
        await payment_becomes(w, False, start)
        await payment_becomes(w, True, start + 20)
        w.clock.advance(start + 30 - w.clock.now())
        html = await page(w)
    lines = service_lines(html)
    assert lines["Online payments"] == "Working Working 33.33% since 15 Jan"
    assert '<time datetime="2027-01-15T08:00:10Z">15 Jan</time>' in html
    assert lines["Your order history"] == "Being checked No uptime figures yet"
    assert "of the last 7 days" not in html


async def test_after_3_days_the_uptime_is_since_the_first_check(tmp_path: Path) -> None:
    """Payment UP for 71 hours then DOWN for one, watched 3 days: "98.61% since 15 Jan"."""
    async with running(tmp_path) as w:
        start = w.clock.now() + 10
        await payment_becomes(w, True, start)
        await payment_becomes(w, False, start + 71 * HOUR)
        w.clock.advance(start + 72 * HOUR - w.clock.now())
        html = await page(w)
    assert service_lines(html)["Online payments"] == "Not working Working 98.61% since 15 Jan"


async def test_after_8_days_the_uptime_is_of_the_last_7_days(tmp_path: Path) -> None:
    """Payment watched 8 days, with one hour DOWN four days ago: the figure covers exactly
    the last 7 days (167 of 168 hours UP) and says so."""
    async with running(tmp_path) as w:
        start = w.clock.now() + 10
        await payment_becomes(w, True, start)
        await payment_becomes(w, False, start + 4 * DAY)
        await payment_becomes(w, True, start + 4 * DAY + HOUR)
        w.clock.advance(start + 8 * DAY - w.clock.now())
        html = await page(w)
    assert service_lines(html)["Online payments"] == "Working Working 99.40% of the last 7 days"


async def test_a_system_watched_exactly_7_days_reads_of_the_last_7_days(tmp_path: Path) -> None:
    """Seven days to the second after its first decision, a system's figure is the week's."""
    async with running(tmp_path) as w:
        start = w.clock.now() + 10
        await payment_becomes(w, True, start)
        w.clock.advance(start + 7 * DAY - 1 - w.clock.now())
        day_before = service_lines(await page(w))["Online payments"]
        w.clock.advance(1)
        html = await page(w)
    assert day_before == "Working Working 100% since 15 Jan"
    assert service_lines(html)["Online payments"] == "Working Working 100% of the last 7 days"


async def test_after_a_prune_the_uptime_still_covers_the_last_7_days(tmp_path: Path) -> None:
    """Payment DOWN an hour every day for 10 days and login UP since the start: after
    retention prunes the older state changes, the page reads as before, "of the last 7 days",
    not "since" the oldest change it kept."""
    async with running(tmp_path) as w:
        start = w.clock.now() + 10
        await payment_becomes(w, True, start)
        w.result("login", True)
        w.result("login", True)
        for day in range(10):
            await payment_becomes(w, False, start + day * DAY + 12 * HOUR)
            await payment_becomes(w, True, start + day * DAY + 13 * HOUR)
        w.clock.advance(start + 10 * DAY - w.clock.now())
        before = service_lines(await page(w))
        kept_before = len(await w.app.store.transitions("payment"))
        assert await w.app.monitor.prune() > 0
        assert len(await w.app.store.transitions("payment")) < kept_before
        after = service_lines(await page(w))
    assert after == before
    assert after["Online payments"] == "Working Working 95.83% of the last 7 days"  # 161 of 168 h
    assert after["Signing in to your account"] == "Working Working 100% of the last 7 days"
