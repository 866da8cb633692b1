"""The public status page of a real running App: what customers see, and what they never see."""

from __future__ import annotations

import base64
import hashlib
import html as markup
import re
from pathlib import Path

import pytest
from test_api import FAILURE, Running, running
from test_web_services import served

from monitor.config import load_config
from monitor.web.public import duration_text, uptime_text

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
# The fake clock starts at 2027-01-15 08:00:00 UTC.
MIDNIGHT = 1_800_000_000.0 - 8 * HOUR


async def page(w: Running, path: str = "/") -> str:
    response = await w.client.get(path)
    assert response.status == 200, await response.text()
    assert response.content_type == "text/html"
    return await response.text()


def readable(fragment: str) -> str:
    """An HTML fragment as a reader sees it: tags gone, spaces collapsed."""
    return " ".join(markup.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def service_lines(html: str) -> dict[str, str]:
    """Each service's state and uptime line as a reader sees them, by title."""
    items = re.findall(
        r'<li class="system">\s*<span class="title">(.*?)</span>\s*'
        r'<span class="state \w+">(.*?)</span>.*?<span class="uptime">(.*?)</span>',
        html,
        re.S,
    )
    return {
        markup.unescape(title): f"{readable(state)} {readable(uptime)}"
        for title, state, uptime in items
    }


def bars(html: str) -> dict[str, list[tuple[str, str]]]:
    """Each service's bars, oldest first, as (colour, what hovering it says), by title."""
    found = {}
    for title, row in re.findall(
        r'<ol class="bars" aria-label="(.*?): the last \d+ days">(.*?)</ol>', html, re.S
    ):
        found[markup.unescape(title)] = [
            (level, markup.unescape(label))
            for level, label in re.findall(
                r'<li class="(\w+)"[^>]*?(?:><a [^>]*)? aria-label="([^"]*)"', row
            )
        ]
    return found


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


def assert_nothing_private(text: str) -> None:
    """No email address, person, phone, count of people, probe URL, failure reason or system
    name: what the page, the incident pages, the feed and the JSON must never carry."""
    assert EMAIL.search(text) is None
    for private in ("Alice", "Martin", "Bob", "Carol", "+447700900001", "7700"):
        assert private not in text
    assert "127.0.0.1:9" not in text
    assert "healthz" not in text
    assert FAILURE not in text
    assert "503" not in text
    assert "db-password-expired" not in text
    assert re.search(r"\b\d+ (people|person|customers?|users?)\b", text) is None
    assert "held" not in text
    for name in ("crm", '"payment', "/payment", '"login'):
        assert name not in text  # system names stay internal: customers read titles


async def test_the_page_shows_each_systems_title_state_and_uptime(tmp_path: Path) -> None:
    """Every system appears by its title with its state in words and its uptime so far."""
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
    """The open payment incident shows its public note; the resolved crm one its duration;
    each links to its own page."""
    async with running(tmp_path) as w:
        crm = await outage_with_people(w)
        html = await page(w)
    current, _, resolved = html.partition("Resolved in the last 7 days")
    assert "Online payments" in current.split("Current problems")[1]
    assert "our provider is fixing it" in current
    assert "Your order history" in resolved
    assert f'<a href="/incidents/{crm}">Your order history</a>' in resolved
    assert "From <time" in resolved
    assert duration_text(15 + 60 + 30) in resolved


async def test_the_page_shows_nothing_private(tmp_path: Path) -> None:
    """With people subscribed, told and reporting attempts, neither the page nor an
    incident's page nor the past incidents have an email address, a person's name or phone,
    a count of people, a probe URL, a failure reason or a system's name."""
    async with running(tmp_path) as w:
        crm = await outage_with_people(w)
        payment = crm + 1
        await w.post(f"/api/v1/incidents/{payment}/hold")
        texts = [await page(w, path) for path in ("/", f"/incidents/{payment}", "/history")]
        texts.append(await page(w, f"/incidents/{crm}"))
    for text in texts:
        assert_nothing_private(text)


async def test_markup_in_a_title_or_a_note_is_escaped(tmp_path: Path) -> None:
    """A system title and an incident note containing <script> appear as text, not markup,
    on the page and on the incident's page, whose policy runs no script but the page's own."""
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
        incident_html = await page(w, f"/incidents/{incident}")
    for text in (html, incident_html):
        assert "<script>alert" not in text
        assert "<img" not in text
        assert "&lt;script&gt;alert(&#39;title&#39;)&lt;/script&gt; &amp; pay" in text
        assert "&lt;script&gt;alert(&#34;note&#34;)&lt;/script&gt;" in text
    policy = response.headers["Content-Security-Policy"]
    assert policy.startswith("default-src 'none'")
    assert re.search(r"script-src 'sha256-[A-Za-z0-9+/=]+';", policy)


async def test_the_page_is_made_for_phones_and_runs_only_its_own_script(tmp_path: Path) -> None:
    """The page declares a viewport, UTF-8 and a language, links its Atom feed, and carries
    one script, inline, which its policy allows by its hash and nothing else (no inline
    handler, no other source)."""
    async with running(tmp_path) as w:
        response = await w.client.get("/")
        html = await response.text()
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
    assert '<meta charset="utf-8">' in html
    assert '<html lang="en">' in html
    assert '<link rel="alternate" type="application/atom+xml"' in html
    assert 'href="/feed.atom"' in html
    scripts = re.findall(r"<script>(.*?)</script>", html, re.S)
    assert len(scripts) == 1
    assert html.count("<script") == 1
    assert re.search(r"\son\w+=", html) is None
    digest = base64.b64encode(hashlib.sha256(scripts[0].encode()).digest()).decode()
    policy = response.headers["Content-Security-Policy"]
    assert re.findall(r"script-src [^;]*;", policy) == [f"script-src 'sha256-{digest}';"]
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


async def test_after_30_seconds_the_uptime_is_over_those_30_seconds_not_90_days(
    tmp_path: Path,
) -> None:
    """Payment DOWN for 20 s then UP for 10 s reads "Working 33.33% since 15 Jan", never "of
    the last 90 days"; a system not yet decided shows no figure at all."""
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
    assert "of the last 90 days" not in html


async def test_after_3_days_the_uptime_is_since_the_first_check(tmp_path: Path) -> None:
    """Payment UP for 71 hours then DOWN for one, watched 3 days: "98.61% since 15 Jan"."""
    async with running(tmp_path) as w:
        start = w.clock.now() + 10
        await payment_becomes(w, True, start)
        await payment_becomes(w, False, start + 71 * HOUR)
        w.clock.advance(start + 72 * HOUR - w.clock.now())
        html = await page(w)
    assert service_lines(html)["Online payments"] == "Not working Working 98.61% since 15 Jan"


async def test_the_figure_covers_the_90_days_the_bars_show_once_watched_longer(
    tmp_path: Path,
) -> None:
    """Payment first decided at 08:00:10 on 15 Jan: 89 days later its first bar is still 15
    Jan and the figure says "since 15 Jan"; a day later the bars start at the midnight of 16
    Jan, before it was first decided, and the figure is "of the last 90 days"."""
    async with running(tmp_path) as w:
        start = w.clock.now() + 10
        await payment_becomes(w, True, start)
        w.clock.advance(start + 89 * DAY - w.clock.now())
        day_before = await page(w)
        w.clock.advance(DAY)
        html = await page(w)
    assert service_lines(day_before)["Online payments"] == "Working Working 100% since 15 Jan"
    assert bars(day_before)["Online payments"][0] == ("full", "Fri 15 Jan: 100%")
    assert service_lines(html)["Online payments"] == "Working Working 100% of the last 90 days"
    assert bars(html)["Online payments"][0] == ("full", "Sat 16 Jan: 100%")


async def test_after_100_days_the_uptime_is_of_the_90_days_shown(tmp_path: Path) -> None:
    """Payment watched 100 days, with an hour DOWN 30 days ago and one 95 days ago: the
    figure counts only the one inside the bars' 90 days (from the midnight 89 days back)."""
    async with running(tmp_path) as w:
        start = w.clock.now() + 10
        await payment_becomes(w, True, start)
        for back in (95, 30):
            await payment_becomes(w, False, start + (100 - back) * DAY)
            await payment_becomes(w, True, start + (100 - back) * DAY + HOUR)
        w.clock.advance(start + 100 * DAY - w.clock.now())
        html = await page(w)
    now = start + 100 * DAY
    watched = now - (MIDNIGHT + 11 * DAY)  # since the midnight of 26 Jan
    assert service_lines(html)["Online payments"] == (
        f"Working Working {uptime_text(1 - HOUR / watched)} of the last 90 days"
    )


async def test_after_a_prune_the_history_reads_as_before(tmp_path: Path) -> None:
    """Payment DOWN an hour a day for its first ten days and on its 100th, and login UP since
    the start: after
    retention prunes the older state changes, the page reads as before, bars and figures,
    "of the last 90 days", not "since" the oldest change it kept."""
    async with running(tmp_path) as w:
        start = w.clock.now() + 10
        await payment_becomes(w, True, start)
        w.result("login", True)
        w.result("login", True)
        for day in [*range(10), 99]:  # the first ten days are pruned, and out of the window
            await payment_becomes(w, False, start + day * DAY + 4 * HOUR)
            await payment_becomes(w, True, start + day * DAY + 5 * HOUR)
        w.clock.advance(start + 100 * DAY - w.clock.now())
        before = await page(w)
        kept_before = len(await w.app.store.transitions("payment", limit=1000))
        assert await w.app.monitor.prune() > 0
        assert len(await w.app.store.transitions("payment", limit=1000)) < kept_before
        after = await page(w)
    assert bars(after) == bars(before)
    assert service_lines(after) == service_lines(before)
    assert service_lines(after)["Signing in to your account"] == (
        "Working Working 100% of the last 90 days"
    )
    assert bars(after)["Online payments"][-2] == ("down", "Sat 24 Apr: 95.83%, 1 incident")


# the history: a bar a day ---------------------------------------------------------------------


async def test_each_day_is_a_bar_coloured_by_its_uptime_with_its_figure_and_incidents(
    tmp_path: Path,
) -> None:
    """Payment decided UP on 15 Jan, DOWN 10 minutes on 17 Jan and 3 hours on 18 Jan, read on
    19 Jan: 90 bars, grey before 15 Jan, green on full days, amber for 10 minutes (99.30%),
    red for 3 hours (87.50%); days with an incident link to it; today's bar says so."""
    async with running(tmp_path) as w:
        start = w.clock.now() + 10
        await payment_becomes(w, True, start)
        await payment_becomes(w, False, MIDNIGHT + 2 * DAY + 9 * HOUR)
        await payment_becomes(w, True, MIDNIGHT + 2 * DAY + 9 * HOUR + 600)
        first = (await w.app.store.latest_incidents(1))[0].id
        await payment_becomes(w, False, MIDNIGHT + 3 * DAY + 9 * HOUR)
        await payment_becomes(w, True, MIDNIGHT + 3 * DAY + 12 * HOUR)
        second = (await w.app.store.latest_incidents(1))[0].id
        w.clock.advance(MIDNIGHT + 4 * DAY + 6 * HOUR - w.clock.now())
        html = await page(w)
    shown = bars(html)["Online payments"]
    assert len(shown) == 90
    assert {level for level, _ in shown[:85]} == {"none"}
    assert shown[84] == ("none", "Thu 14 Jan: no data")
    assert shown[85:] == [
        ("full", "Fri 15 Jan: 100%"),
        ("full", "Sat 16 Jan: 100%"),
        ("some", "Sun 17 Jan: 99.30%, 1 incident"),
        ("down", "Mon 18 Jan: 87.50%, 1 incident"),
        ("full", "Tue 19 Jan (today): 100%"),
    ]
    assert f'<a href="/incidents/{first}" aria-label="Sun 17 Jan: 99.30%, 1 incident">' in html
    assert f'<a href="/incidents/{second}" aria-label="Mon 18 Jan: 87.50%, 1 incident">' in html
    assert "A bar a day over the last 90 days (UTC)" in html
    assert '<span class="scale"><span>22 Oct</span><span>Today</span></span>' in html


async def test_days_are_the_default_timezones_and_the_history_setting_sets_how_many(
    tmp_path: Path,
) -> None:
    """With ``default_timezone: America/New_York`` and ``retention.history: 30d``, an outage
    from 03:00 to 07:00 UTC is two hours on each of two New York days, and there are 30 bars."""
    async with running(tmp_path) as w:
        with (w.checks / "monitor.yaml").open("a") as settings:
            settings.write("default_timezone: America/New_York\nretention: {history: 30d}\n")
        assert (await w.post("/-/reload")).status == 200
        start = w.clock.now() + 10
        await payment_becomes(w, True, start)
        await payment_becomes(w, False, MIDNIGHT + DAY + 3 * HOUR)
        await payment_becomes(w, True, MIDNIGHT + DAY + 7 * HOUR)
        w.clock.advance(MIDNIGHT + 3 * DAY - w.clock.now())
        html = await page(w)
    shown = bars(html)["Online payments"]
    assert len(shown) == 30
    watched = 21 * HOUR - 10  # on 15 Jan, from 03:00:10 New York time
    assert shown[-3:] == [
        ("down", f"Fri 15 Jan: {uptime_text(1 - 2 * HOUR / watched)}, 1 incident"),
        ("down", "Sat 16 Jan: 91.66%, 1 incident"),  # 2 of 24 hours DOWN
        ("full", "Sun 17 Jan (today): 100%"),
    ]
    assert "A bar a day over the last 30 days (America/New_York)" in html


async def test_many_services_are_shown_a_hundred_a_page(tmp_path: Path) -> None:
    """With 205 services the page shows the first hundred by title with their bars and links
    to the next hundred; page 3 has the last five (by title); page 4 does not exist, and a
    page that is not a number is refused, saying why."""
    async with served(tmp_path) as (monitor, client):
        checks = tmp_path / "checks"
        for n in range(202):
            (checks / f"shop-{n:03d}.yaml").write_text(
                f"name: shop-{n:03d}\ntitle: Shop {n:03d}\nevery: 15s\n"
                "probe: {tcp: {host: 127.0.0.1, port: 9}}\n"
            )
        monitor.config = load_config(checks, {})
        pages = []
        for path in ("/", "/?page=3", "/?page=4", "/?page=two"):
            response = await client.get(path)
            pages.append((response.status, await response.text()))
    (_, first), (_, third), missing, refused = pages
    assert len(bars(first)) == 100
    assert list(bars(first))[:2] == ["Online payments", "Shop 000"]
    assert "Services 1–100 of 205" in first
    assert '<a href="/?page=2" rel="next">More services</a>' in first
    assert list(bars(third)) == [
        "Shop 199",
        "Shop 200",
        "Shop 201",
        "Signing in to your account",
        "Your order history",
    ]
    assert '<a href="/?page=2" rel="prev">Previous services</a>' in third
    assert missing[0] == 404
    assert "There is no page 4 of services" in missing[1]
    assert refused[0] == 400
    assert "page must be a whole number from 1" in refused[1]


# a page per incident, and the past ones ------------------------------------------------------


async def test_an_incidents_page_shows_its_public_timeline(tmp_path: Path) -> None:
    """Payment's incident: it stopped working, on-call's two notes (the "(sent)" mark gone),
    the explanation, working again and resolved, in order, each time in UTC inside
    ``<time datetime>``; the page says how long it lasted."""
    async with running(tmp_path) as w:
        incident = await w.outage("payment")
        await w.post(f"/api/v1/incidents/{incident}/note", {"text": "Card payments fail."})
        w.clock.advance(600)
        note = {
            "text": "The provider is rolling back.\nDoing: we check every payment.",
            "send": True,
        }
        await w.post(f"/api/v1/incidents/{incident}/note", note)
        await w.results("payment", True, 2)
        await w.tick()
        w.clock.advance(3600)
        explained = {"text": "A certificate expired; we now renew them a month ahead."}
        assert (await w.post(f"/api/v1/incidents/{incident}/explanation", explained)).ok
        html = await page(w, f"/incidents/{incident}")
    timeline = html[html.index('<ol class="timeline">') : html.index("</ol>")]
    lines = [readable(item) for item in re.findall(r"<li .*?</li>", timeline, re.S)]
    assert lines == [
        "15 Jan 2027, 08:00 UTC Online payments stopped working",
        "15 Jan 2027, 08:01 UTC Update: Card payments fail.",
        "15 Jan 2027, 08:11 UTC Update: The provider is rolling back. Doing: we check every "
        "payment.",
        "15 Jan 2027, 08:12 UTC Online payments is working again",
        "15 Jan 2027, 08:12 UTC Resolved",
        "15 Jan 2027, 09:12 UTC What happened, and what we are changing: A certificate "
        "expired; we now renew them a month ahead.",
    ]
    assert '<time class="moment" datetime="2027-01-15T08:00:30Z">' in timeline
    assert "(sent)" not in html
    assert "<h1>Online payments</h1>" in html
    assert "Resolved" in html
    assert "What happened, and what we are changing</h2>" in html


async def test_an_incident_that_is_not_kept_has_no_page(tmp_path: Path) -> None:
    """An incident number never given, or not a number, answers 404 with a page saying so."""
    async with running(tmp_path) as w:
        for path in ("/incidents/7", "/incidents/seven", "/incidents/-1"):
            response = await w.client.get(path)
            assert response.status == 404
            assert "There is no such incident" in await response.text()


async def test_past_incidents_are_paged_newest_first(tmp_path: Path) -> None:
    """23 resolved incidents: the history shows the newest 20 and links to the older ones
    (``?before=``), whose page shows the last 3 and links back to the newest; an open one is
    not among them."""
    async with running(tmp_path) as w:
        ids = []
        for _ in range(23):
            ids.append(await w.outage("payment"))
            await w.results("payment", True, 2)
            w.clock.advance(3600)  # past the correlation window: the next is a new incident
        await w.outage("crm")
        newest = await page(w, "/history")
        older = await page(w, f"/history?before={ids[3]}")
        refused = await w.client.get("/history?before=x")
    listed = [int(n) for n in re.findall(r'<a href="/incidents/(\d+)">', newest)]
    assert listed == ids[::-1][:20]
    assert f'<a href="/history?before={ids[3]}" rel="next">Older incidents</a>' in newest
    assert [int(n) for n in re.findall(r'<a href="/incidents/(\d+)">', older)] == ids[2::-1]
    assert "Older incidents" not in older
    assert '<a href="/history">Newest incidents</a>' in older
    assert "Your order history" not in newest
    assert refused.status == 400


async def test_an_incident_stays_on_its_page_after_its_private_part_is_pruned(
    tmp_path: Path,
) -> None:
    """Past retention.max_age the incident's private timeline (probe reasons, holds) goes, but
    its page, notes and explanation stay for the status page's history; a day after the
    history, it is gone."""
    async with running(tmp_path) as w:
        incident = await w.outage("payment")
        await w.post(f"/api/v1/incidents/{incident}/hold")
        await w.post(f"/api/v1/incidents/{incident}/note", {"text": "Card payments fail."})
        await w.results("payment", True, 2)
        await w.tick()
        await w.post(f"/api/v1/incidents/{incident}/explanation", {"text": "A bad deploy."})
        await w.tick()
        w.clock.advance(8 * DAY)
        assert await w.app.monitor.prune() > 0
        kinds = [entry.kind for entry in await w.app.store.timeline(incident)]
        kept = await page(w, f"/incidents/{incident}")
        history = await page(w, "/history")
        w.clock.advance(83 * DAY)
        await w.app.monitor.prune()
        gone = await w.client.get(f"/incidents/{incident}")
    assert kinds == ["note", "explanation"]
    assert "Update: Card payments fail." in readable(kept)
    assert "Online payments stopped working" in readable(kept)
    assert "A bad deploy." in kept
    assert f'<a href="/incidents/{incident}">Online payments</a>' in history
    assert gone.status == 404
