"""What other sites and feed readers take from the status page: an Atom feed of incidents
(feedgen), and the page's facts as JSON for embedding. Both are made of ``monitor.web.public``'s
facts only, so nothing private can reach them.

The feed is a list of ``FeedEntry``: incidents now; planned and active maintenance windows
join it as entries of their own (``atom`` takes any entries, newest first by ``updated``).
Links are absolute, made from the address the feed or JSON was asked at (``base``), since
both are read away from the page.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from feedgen.feed import FeedGenerator

from monitor.web.public import IncidentPage, Overview, PlannedWork, PublicIncident, PublicSystem

FEED_PATH = "/feed.atom"
JSON_PATH = "/status.json"
_SAID = {"note": "Update: ", "explanation": "What happened, and what we are changing: "}


@dataclass(frozen=True, slots=True)
class FeedEntry:
    """One entry of the feed: ``key`` names it for good (its Atom id is made from it and the
    organisation's domain, the same on every replica), ``text`` is its plain-text body."""

    key: str
    title: str
    link: str
    published: float
    updated: float
    text: str


# What XML 1.0 cannot carry (most control characters): a note pasted from a terminal may hold
# one, and the page shows it, so the feed leaves it out rather than fail.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def _xml(text: str) -> str:
    return _NOT_XML.sub("", text)


def _id(domain: str, key: str) -> str:
    return uuid.uuid5(uuid.NAMESPACE_URL, f"https://{domain}/status/{key}").urn


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def incident_entries(pages: Sequence[IncidentPage], base: str) -> list[FeedEntry]:
    """An entry an incident, its timeline as its text: updated at its latest line."""
    entries = []
    for page in pages:
        incident, events = page.incident, page.events
        state = "Problem" if incident.open else "Resolved"
        lines = [f"{event.at.text}: {_SAID.get(event.kind, '')}{event.text}" for event in events]
        latest = max([incident.started.ts, *(e.at.ts for e in events)])
        entries.append(
            FeedEntry(
                key=f"incidents/{incident.id}",
                title=f"{state}: {incident.title_text}",
                link=f"{base}/incidents/{incident.id}",
                published=incident.started.ts,
                updated=latest,
                text="\n".join(lines),
            )
        )
    return entries


def maintenance_entries(planned: Sequence[PlannedWork], base: str) -> list[FeedEntry]:
    """An entry for each maintenance window's occurrence under way or planned (within two weeks),
    dated at its start: the feed keeps no record of when it was first listed."""
    return [
        FeedEntry(
            key=f"maintenance/{work.key}",
            title=f"{'Maintenance under way' if work.active else 'Planned maintenance'}: "
            f"{work.title_text}",
            link=f"{base}/",
            published=work.start.ts,
            updated=work.start.ts,
            text=f"From {work.start.text} to {work.end.text}."
            + (f"\n{work.note}" if work.note else ""),
        )
        for work in planned
    ]


def atom(org: str, domain: str, base: str, entries: Sequence[FeedEntry], now: float) -> bytes:
    """The Atom document of ``entries`` (newest first by ``updated``); updated with its newest
    entry, or ``now`` when it has none."""
    feed = FeedGenerator()
    feed.id(_id(domain, "feed"))
    feed.title(_xml(f"{org} status"))
    feed.author({"name": _xml(org)})
    feed.link(href=f"{base}/", rel="alternate", type="text/html")
    feed.link(href=f"{base}{FEED_PATH}", rel="self", type="application/atom+xml")
    ordered = sorted(entries, key=lambda e: (-e.updated, e.key))
    feed.updated(_utc(ordered[0].updated if ordered else now))
    for entry in ordered:
        item = feed.add_entry(order="append")
        item.id(_id(domain, entry.key))
        item.title(_xml(entry.title))
        item.link(href=entry.link, rel="alternate", type="text/html")
        item.published(_utc(entry.published))
        item.updated(_utc(entry.updated))
        item.content(_xml(entry.text), type="text")
    document: bytes = feed.atom_str(pretty=True)
    return document


def _incident_json(incident: PublicIncident, base: str) -> dict[str, Any]:
    return {
        "id": incident.id,
        "url": f"{base}/incidents/{incident.id}",
        "titles": list(incident.titles),
        "started_at": incident.started.iso,
        "resolved_at": incident.ended.iso if incident.ended is not None else None,
        "note": incident.note,
        "explanation": incident.explanation,
    }


def _system_json(system: PublicSystem) -> dict[str, Any]:
    return {
        "title": system.title,
        "state": system.state,
        "uptime": system.ratio,
        "uptime_since": system.since_iso or None,
    }


def status_json(overview: Overview, base: str) -> dict[str, Any]:
    """The front page as data: every system (by title) with its state and its uptime over the
    history, the open incidents and those resolved in the last days."""
    return {
        "org": overview.org,
        "page": f"{base}/",
        "updated_at": overview.updated.iso,
        "state": overview.state,
        "headline": overview.headline,
        "history_days": overview.history_days,
        "systems": [_system_json(s) for s in overview.systems],
        "open_incidents": [_incident_json(i, base) for i in overview.open_incidents],
        "recent_incidents": [_incident_json(i, base) for i in overview.resolved_incidents],
        "maintenance": [_maintenance_json(w) for w in overview.planned],
    }


def _maintenance_json(work: PlannedWork) -> dict[str, Any]:
    return {
        "titles": list(work.titles),
        "starts_at": work.start.iso,
        "ends_at": work.end.iso,
        "active": work.active,
        "note": work.note,
    }
