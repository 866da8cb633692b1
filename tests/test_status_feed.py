"""What other sites read of the status page, from a real running App: the Atom feed (read back
with feedparser, as a feed reader would) and the JSON for embedding."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import feedparser
from test_api import TOKEN, Running, running
from test_statuspage import assert_nothing_private, outage_with_people

HOST = "status.example.com"


async def read(w: Running, path: str, host: str = HOST) -> tuple[Any, dict[str, str]]:
    response = await w.client.get(path, headers={"Host": host})
    assert response.status == 200, await response.text()
    return await response.read(), dict(response.headers)


async def test_the_feed_has_an_entry_an_incident_newest_first(tmp_path: Path) -> None:
    """The Atom feed parses cleanly: the organisation's title, a link to the page, and an
    entry per incident, the newest change first: the open payment incident with its note, the
    resolved crm one; each links to its page and says its timeline."""
    async with running(tmp_path) as w:
        crm = await outage_with_people(w)
        body, headers = await read(w, "/feed.atom")
    feed = feedparser.parse(body)
    assert feed.bozo == 0, feed.get("bozo_exception")
    assert feed.version == "atom10"
    assert headers["Content-Type"] == "application/atom+xml; charset=utf-8"
    assert feed.feed.title == "Example Ltd status"
    assert feed.feed.link == f"http://{HOST}/"
    assert [(e.title, e.link) for e in feed.entries] == [
        ("Problem: Online payments", f"http://{HOST}/incidents/{crm + 1}"),
        ("Resolved: Your order history", f"http://{HOST}/incidents/{crm}"),
    ]
    payment, resolved = feed.entries
    assert payment.content[0].type == "text/plain"
    assert payment.content[0].value.splitlines() == [
        "15 Jan 2027, 09:03 UTC: Online payments stopped working",
        "15 Jan 2027, 09:04 UTC: Update: Card payments fail; our provider is fixing it. Pay by "
        "phone meanwhile.",
    ]
    assert time.strftime("%Y-%m-%dT%H:%M:%SZ", payment.updated_parsed) == "2027-01-15T09:04:30Z"
    assert time.strftime("%Y-%m-%dT%H:%M:%SZ", resolved.published_parsed) == (
        "2027-01-15T08:01:00Z"
    )
    assert resolved.content[0].value.splitlines()[1:] == [
        "15 Jan 2027, 08:02 UTC: Your order history is working again",
        "15 Jan 2027, 08:02 UTC: Resolved",
    ]
    assert feed.feed.updated_parsed == payment.updated_parsed


async def test_feed_entries_keep_their_ids_whatever_address_it_is_read_at(
    tmp_path: Path,
) -> None:
    """Read at two addresses (two replicas, a proxy), the feed links to where it was read
    but each entry keeps one id, made from the organisation's domain and the incident."""
    async with running(tmp_path) as w:
        await outage_with_people(w)
        here, _ = await read(w, "/feed.atom")
        there, _ = await read(w, "/feed.atom", "replica-b.internal:9108")
    first, second = feedparser.parse(here), feedparser.parse(there)
    assert [e.id for e in first.entries] == [e.id for e in second.entries]
    assert all(e.id.startswith("urn:uuid:") for e in first.entries)
    assert first.feed.id == second.feed.id
    assert second.entries[0].link.startswith("http://replica-b.internal:9108/incidents/")


async def test_a_note_with_control_characters_leaves_the_feed_readable(tmp_path: Path) -> None:
    """A note pasted from a terminal, with characters XML cannot carry, reaches the feed
    without them (the feed still parses) and the JSON as written."""
    async with running(tmp_path) as w:
        incident = await w.outage("payment")
        note = {"text": "Card payments \x1b[31mfail\x1b[0m.\x0b Pay by phone."}
        assert (await w.post(f"/api/v1/incidents/{incident}/note", note)).status == 200
        body, _ = await read(w, "/feed.atom")
        data, _ = await read(w, "/status.json")
    feed = feedparser.parse(body)
    assert feed.bozo == 0, feed.get("bozo_exception")
    said = feed.entries[0].content[0].value
    assert said.endswith("Update: Card payments [31mfail[0m. Pay by phone.")
    assert json.loads(data)["open_incidents"][0]["note"] == note["text"]


async def test_the_json_gives_each_service_and_the_incidents_for_embedding(
    tmp_path: Path,
) -> None:
    """/status.json: the banner's state, every service by title with its state and uptime
    over the history, the open incident with its note and link, the recently resolved one."""
    async with running(tmp_path) as w:
        crm = await outage_with_people(w)
        body, headers = await read(w, "/status.json")
    data = json.loads(body)
    assert headers["Content-Type"] == "application/json; charset=utf-8"
    assert data["org"] == "Example Ltd"
    assert data["page"] == f"http://{HOST}/"
    assert data["state"] == "down"
    assert data["headline"] == "Some of our services are not working"
    assert data["history_days"] == 90
    assert [(s["title"], s["state"]) for s in data["systems"]] == [
        ("Online payments", "down"),
        ("Signing in to your account", "up"),
        ("Your order history", "up"),
    ]
    assert data["systems"][1]["uptime"] == 1.0
    assert data["systems"][1]["uptime_since"] == "2027-01-15T08:00:15Z"
    assert [(i["id"], i["titles"], i["resolved_at"]) for i in data["open_incidents"]] == [
        (crm + 1, ["Online payments"], None)
    ]
    assert data["open_incidents"][0]["url"] == f"http://{HOST}/incidents/{crm + 1}"
    assert data["open_incidents"][0]["note"].startswith("Card payments fail")
    assert [i["id"] for i in data["recent_incidents"]] == [crm]


async def test_the_feed_and_the_json_may_be_read_by_any_site_and_hold_nothing_private(
    tmp_path: Path,
) -> None:
    """Both answer any origin (CORS), may be kept a minute, and, with people subscribed, told
    and reporting attempts and an incident held, carry no person, contact, count of people,
    probe URL, failure reason or system name."""
    async with running(tmp_path) as w:
        crm = await outage_with_people(w)
        await w.post(f"/api/v1/incidents/{crm + 1}/hold")
        answers = [await read(w, path, "127.0.0.1:9108") for path in ("/feed.atom", "/status.json")]
    for body, headers in answers:
        assert headers["Access-Control-Allow-Origin"] == "*"
        assert headers["Cache-Control"] == "public, max-age=60"
        assert_nothing_private(body.decode().replace("127.0.0.1:9108", "status-host"))


async def test_with_a_public_url_the_feed_and_the_json_link_there_whatever_the_host_says(
    tmp_path: Path,
) -> None:
    """Once monitor.yaml names the page's public address, the feed's and the JSON's links lead
    there, not to whatever Host header a client sent."""
    async with running(tmp_path) as w:
        await outage_with_people(w)
        with (w.checks / "monitor.yaml").open("a") as settings:
            settings.write("public_url: https://status.example.com/\n")
        reloaded = await w.client.post("/-/reload", headers={"Authorization": f"Bearer {TOKEN}"})
        assert reloaded.status == 200, await reloaded.text()
        body, _ = await read(w, "/feed.atom", "evil.example.net")
        data, _ = await read(w, "/status.json", "evil.example.net")
    feed = feedparser.parse(body)
    assert feed.entries[0].link.startswith("https://status.example.com/incidents/")
    assert "evil.example.net" not in body.decode()
    assert json.loads(data)["page"] == "https://status.example.com/"
