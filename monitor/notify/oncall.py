"""Notices to the team (Slack, Teams, Telegram, email, ...) through apprise URLs from ``oncall:``.

On-call hears when an incident opens (cause, systems, how many people will be told and when, how
to hold), when it grows, when it resolves, when customer deliveries fail, and when an explanation
promised to customers is still owed. Notices go out
from a queue in the background: a slow chat service never holds up probing or customer mail.
Failed delivery failure notices are batched: one notice a minute at most, with the counts.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import apprise

from monitor.durations import format_duration
from monitor.incidents.correlation import Change, Incident
from monitor.logs import event
from monitor.maintenance import Occurrence, grace_of
from monitor.model import Explanation

log = logging.getLogger("monitor.oncall")


@dataclass(frozen=True, slots=True)
class Notice:
    title: str
    body: str
    level: str  # "info", "success", "warning", "failure"


NAMED = 10  # systems named in a notice; the rest are counted


def describe(
    incident: Incident,
    change: Change,
    systems: Sequence[str],
    titles: dict[str, str],
    audience: int | None,
    notify_after: float,
    held: bool,
    maintenance: Mapping[str, Occurrence] | None = None,
    grace: float = 0.0,
) -> Notice | None:
    """The notice for a change ``systems`` made to an incident together (thousands of systems
    failing at once are one notice), or None if the change is not worth a message.
    ``maintenance``: the systems of the incident that failed in a maintenance window, each
    with its occurrence (customers are not told of them for now; see
    ``monitor.maintenance.rules``), and the grace after which they are."""
    names = _named([titles.get(m.name, m.name) for m in incident.members])
    cause = titles.get(incident.cause, incident.cause)
    where = f"/api/v1/incidents/{incident.id}"
    planned = maintenance or {}
    down = [m.name for m in incident.members if m.down]
    quiet = bool(down) and all(name in planned for name in down)  # nobody is told for now
    if change is Change.OPENED:
        if quiet:
            return Notice(
                f"Incident {incident.id} opened: {cause} is down (in maintenance)",
                f"Systems: {names}. Likely cause: {cause}.\n"
                f"{_in_maintenance(planned, titles, grace)}",
                "warning",
            )
        if held:
            plan = f"Customer messages are held: release with POST {where}/release."
        else:
            plan = (
                f"{audience if audience is not None else 'The affected'} people will be told in "
                f"{format_duration(notify_after)} unless it recovers first; hold with "
                f"POST {where}/hold."
            )
        if planned:
            plan += f"\n{_in_maintenance(planned, titles, grace)}"
        return Notice(
            f"Incident {incident.id} opened: {cause} is down",
            f"Systems: {names}. Likely cause: {cause}.\n{plan}",
            "failure",
        )
    if change in (Change.JOINED, Change.REOPENED):
        one = len(systems) == 1
        who = titles.get(systems[0], systems[0]) if one else f"{len(systems):,} systems"
        verb = "joined" if change is Change.JOINED else "failed again and re-opened"
        marked = " (in maintenance)" if all(name in planned for name in systems) else ""
        said = f"\n{_in_maintenance(planned, titles, grace)}" if planned else ""
        return Notice(
            f"Incident {incident.id}: {who} {verb}{marked}",
            f"Systems now: {names}. Likely cause: {cause}.{said}",
            "warning",
        )
    if change is Change.RESOLVED and incident.resolved_at is not None:
        lasted = format_duration(incident.resolved_at - incident.opened_at)
        return Notice(
            f"Incident {incident.id} resolved after {lasted}",
            f"Every check passes again ({names}). People who were told get a follow-up now.",
            "success",
        )
    return None


def reminder(
    incident: Incident, promise: Explanation, now: float, titles: dict[str, str]
) -> Notice:
    """The reminder that the explanation the resolved messages promised is still owed."""
    cause = titles.get(incident.cause, incident.cause)
    made = promise.promised_at if promise.promised_at is not None else now
    return Notice(
        f"Incident {incident.id}: the explanation promised {format_duration(now - made)} ago "
        "is still owed",
        f"When {cause} was fixed, everyone told was promised an explanation: what happened, "
        "and what changes so it does not happen again. Write it and publish it with "
        f"`monitor incident explain {incident.id} FILE` (or POST "
        f"/api/v1/incidents/{incident.id}/explanation): each of them gets it once. "
        "Until then this reminder comes daily.",
        "warning",
    )


def _in_maintenance(
    planned: Mapping[str, Occurrence], titles: Mapping[str, str], grace: float
) -> str:
    """Which systems failed in a maintenance window, until when, and what customers hear
    (``grace``: the setting's; a window with its own says it)."""
    by_window: dict[tuple[str, float, float], list[str]] = {}
    for name, occurrence in planned.items():
        key = (occurrence.window.ref, occurrence.end, grace_of(occurrence, grace))
        by_window.setdefault(key, []).append(name)
    graces = {own for _, _, own in by_window}
    same = len(graces) == 1
    parts = [
        f"{_named([titles.get(n, n) for n in names])} (window {ref}, until "
        f"{datetime.fromtimestamp(end, UTC):%Y-%m-%d %H:%M} UTC"
        f"{'' if same else f', grace {format_duration(own)}'})"
        for (ref, end, own), names in by_window.items()
    ]
    after = f"{format_duration(next(iter(graces)))} after the window" if same else "past its grace"
    return (
        f"In maintenance: {'; '.join(parts)}. Their customers are not told of it; if it is "
        f"still down {after}, they are told as usual."
    )


def _named(titles: Sequence[str]) -> str:
    if len(titles) <= NAMED:
        return ", ".join(titles)
    return f"{', '.join(titles[:NAMED])} and {len(titles) - NAMED:,} more"


# Apprise's names of services that are a kind of route rather than a brand: the word a
# customer's message uses for them (worded in their language by the composer).
_GENERIC_ROUTES = {"E-Mail": "email", "JSON": "webhook", "XML": "webhook", "Form": "webhook"}


def route_names(notifier: apprise.Apprise) -> tuple[str, ...]:
    """The services on-call is alerted by, once each in the order configured: "Slack",
    "email", "Telegram" (never a URL: they hold tokens)."""
    names = (str(getattr(server, "service_name", "") or "") for server in notifier)
    return tuple(dict.fromkeys(_GENERIC_ROUTES.get(name, name) for name in names if name))


class OnCall:
    """Sends notices to the ``oncall`` apprise URLs, one at a time, in the background.
    ``routes`` names their services, for customers' messages ("alerted by Slack and email")."""

    def __init__(self, urls: Sequence[str], batch_every: float = 60.0) -> None:
        self.urls = list(urls)
        self.batch_every = batch_every
        self.notifier = apprise.Apprise()
        for url in self.urls:
            if not self.notifier.add(url):
                # The scheme only: the rest of an apprise URL holds its tokens and passwords.
                event(
                    log,
                    "on-call URL refused by apprise",
                    logging.ERROR,
                    scheme=url.split("://", 1)[0] if "://" in url else "(no scheme)",
                )
        self.routes = route_names(self.notifier)
        self.queue: asyncio.Queue[Notice] = asyncio.Queue(maxsize=1000)
        self.failures: Counter[str] = Counter()
        self.sent = 0

    def tell(self, notice: Notice) -> None:
        if not self.urls:
            return
        try:
            self.queue.put_nowait(notice)
        except asyncio.QueueFull:
            event(log, "on-call notice dropped: queue full", logging.ERROR, title=notice.title)

    def delivery_failed(self, channel: str, error: str) -> None:
        """Count a customer message that could not be delivered; reported in batches."""
        self.failures[f"{channel}: {error.split(':', 1)[-1].strip()[:120]}"] += 1

    async def run(self) -> None:
        """Send queued notices, and every ``batch_every`` seconds the delivery failures."""
        flush = asyncio.create_task(self._report_failures())
        try:
            while True:
                notice = await self.queue.get()
                try:
                    await self._send(notice)
                finally:
                    self.queue.task_done()
        finally:
            flush.cancel()

    async def _report_failures(self) -> None:
        while True:
            await asyncio.sleep(self.batch_every)
            if self.failures:
                total = sum(self.failures.values())
                lines = "\n".join(f"{n} x {what}" for what, n in self.failures.most_common(10))
                self.failures.clear()
                self.tell(
                    Notice(
                        f"{total} customer message(s) could not be delivered",
                        lines + "\nSee /api/v1/incidents for who is affected.",
                        "warning",
                    )
                )

    async def _send(self, notice: Notice) -> None:
        ok = await self.notifier.async_notify(
            title=notice.title, body=notice.body, notify_type=notice.level
        )
        if ok:
            self.sent += 1
        else:
            event(log, "on-call notice failed", logging.ERROR, title=notice.title)
