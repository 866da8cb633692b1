"""The public status page's HTML: the front page (each system's state, its history as a bar a
day and its uptime; open and recent incidents), a page per incident with its public timeline,
and the past incidents a page at a time. Server-rendered, readable on a phone.

The pages get only what ``monitor.web.public`` gathered (what customers may see) and escape
every value. Times are written in UTC; one small script of our own (``local_times.js``, inline,
allowed by its hash and nothing else: ``script_hash``) says them again in the reader's zone.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from pathlib import Path

# The status page is HTML for browsers, not a customer message, so it gets its own small
# autoescaping environment here instead of going through the composer's sandbox (only this, the
# composer and the demo's messages page import jinja2: a contract in pyproject.toml says so).
import jinja2
from markupsafe import Markup

from monitor.web.public import HistoryPage, IncidentPage, Overview

TEMPLATES = Path(__file__).parent / "templates"
SCRIPT = "local_times.js"


def days_text(count: int) -> str:
    """``90 days``; ``day`` for one ("the last day")."""
    return "day" if count == 1 else f"{count} days"


class StatusPage:
    """Renders the public pages from ``monitor.web.public``'s facts."""

    def __init__(self, templates: Path = TEMPLATES) -> None:
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(templates),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters["days"] = days_text
        script = (templates / SCRIPT).read_text("utf-8")
        # Inline, so the page needs no second request; the policy names it by its hash, so a
        # value that slipped past escaping still could not run.
        self.script = Markup(script)  # our own file, never customer data
        digest = hashlib.sha256(script.encode()).digest()
        self.script_hash = f"sha256-{base64.b64encode(digest).decode()}"

    def _render(self, name: str, org: str, **values: object) -> str:
        return self.env.get_template(name).render(org=org, script=self.script, **values)

    def front(self, overview: Overview, subscribe: Sequence[str] = ()) -> str:
        """The front page; with ``subscribe`` (the services' titles), the form to subscribe."""
        return self._render("status.html", overview.org, o=overview, subscribe=subscribe)

    def page(self, name: str, org: str, **values: object) -> str:
        """One of the other pages of the site (``subscription.html``), in the same look."""
        return self._render(name, org, **values)

    def incident(self, page: IncidentPage) -> str:
        return self._render("incident.html", page.org, incident=page.incident, events=page.events)

    def history(self, page: HistoryPage) -> str:
        return self._render("history.html", page.org, page=page)

    def missing(self, org: str, message: str) -> str:
        """A page for what is not there (or a query the pages cannot use), saying so."""
        return self._render("missing.html", org, message=message)
