"""A report as Markdown, for a postmortem document: headings, the systems and the messages as
tables, the timeline as a list, times in one named zone.

Everything that comes from people or systems (titles, ids, notes, the explanation, errors) is
escaped, so it reads as written, both here and in the HTML made from this text: an error such
as ``550 <bob@example.com>`` is not a link, a note's ``*`` is not emphasis, a ``|`` does not end
a table's cell.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from monitor.reporting.figures import Report
from monitor.text import one_line

# Inline: what CommonMark (and GFM's tables, strikethrough) would read as markup anywhere in a
# line. At a line's start: what would start a heading, list, or a setext underline.
_INLINE = re.compile(r"([\\`*_\[\]<>|~&])")
_LINE_MARK = re.compile(r"^([#+=-])")
_LINE_NUMBER = re.compile(r"^(\d+)([.)])")


def escaped(text: str) -> str:
    """``text`` as Markdown that reads as ``text``, on one line."""
    return _INLINE.sub(r"\\\1", one_line(text))


def quoted(text: str) -> str:
    """``text``, of any number of lines, as a block quote that reads as ``text``."""
    lines = []
    for line in text.strip().splitlines():
        # Leading spaces would make a code block; the words are what matters.
        line = _INLINE.sub(r"\\\1", line.strip())
        line = _LINE_NUMBER.sub(r"\1\\\2", _LINE_MARK.sub(r"\\\1", line))
        lines.append(f"> {line}".rstrip())
    return "\n".join(lines)


def when(ts: float, zone: ZoneInfo) -> str:
    """``2027-01-15 08:00:30 UTC``: the moment in ``zone``, with its abbreviation."""
    return datetime.fromtimestamp(ts, zone).strftime("%Y-%m-%d %H:%M:%S %Z")


def exact_duration(seconds: float) -> str:
    """To the second: ``1 minute 15 seconds``, ``2 hours 5 seconds``, ``0 seconds``."""
    left = max(0, round(seconds))
    parts = []
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)):
        count, left = divmod(left, size)
        if count:
            parts.append(f"{count} {unit}" + ("" if count == 1 else "s"))
    return " ".join(parts) or "0 seconds"


def title_of(report: Report) -> str:
    """The report's title, as plain text."""
    return f"Incident {report.incident_id}: {report.cause_title}"


def report_markdown(report: Report, zone: ZoneInfo) -> str:
    """The whole report, times in ``zone``."""
    sections = [
        _heading(report, zone),
        _summary(report, zone),
        _systems(report, zone),
        _messages(report),
        _acknowledging(report, zone),
        _unreachable(report),
        _notes(report, zone),
        _explanation(report, zone),
        _timeline(report, zone),
    ]
    return "\n\n".join(s for s in sections if s) + "\n"


def _table(header: Sequence[str], align: str, rows: Sequence[Sequence[str]]) -> str:
    """A GFM table; ``align`` has an ``l`` or ``r`` per column."""
    rule = ["---:" if a == "r" else "---" for a in align]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in [header, rule, *rows])


def _count(number: int, thing: str, things: str = "") -> str:
    return f"{number:,} {thing if number == 1 else things or thing + 's'}"


def _heading(report: Report, zone: ZoneInfo) -> str:
    started = when(report.opened_at, zone)
    if report.resolved_at is not None:
        span = (
            f"Resolved: from {started} to {when(report.resolved_at, zone)}, "
            f"{exact_duration(report.duration)}."
        )
    else:
        span = f"Open: since {started}, {exact_duration(report.duration)} so far."
    return (
        f"# Incident {report.incident_id}: {escaped(report.cause_title)}\n\n"
        f"Post-incident report. {span}\n"
        f"Made {when(report.made_at, zone)}; every time is in {escaped(zone.key)}."
    )


def _summary(report: Report, zone: ZoneInfo) -> str:
    names = ", ".join(escaped(s.name) for s in report.systems[:10])
    more = len(report.systems) - 10
    names += f" and {more:,} more" if more > 0 else ""
    timing = report.acknowledging
    if timing.first is not None and timing.last is not None:
        acknowledged = (
            f"the first {exact_duration(timing.first)} after the first failure, the last "
            f"after {exact_duration(timing.last)}"
        )
    else:
        acknowledged = "nobody was acknowledged"
    lines = [
        f"- **Likely cause:** {escaped(report.cause_title)} ({escaped(report.cause)})",
        f"- **Systems down:** {len(report.systems):,}: {names}",
        f"- **People affected:** {_affected(report)}",
        f"- **People told:** {_count(report.acknowledged, 'person', 'people')} acknowledged; "
        f"{_count(report.undeliverable_people, 'person', 'people')} could not be told",
        f"- **Acknowledgements:** {acknowledged}",
        f"- **On-call alerted:** {_alerted(report, zone)}",
        f"- **The promise:** {_promise(report, zone)}",
    ]
    return "## Summary\n\n" + "\n".join(lines)


def _affected(report: Report) -> str:
    counted = "when the fix was told" if report.affected_counted == "at the fix" else "now"
    said = (
        f"{report.affected:,} (subscribers of these systems and people who reported a failed "
        f"attempt, counted {counted} as the notifier counts them)"
    )
    gone = report.affected_unsubscribed
    if gone:
        said += f"; {_count(gone, 'person', 'people')} of them had unsubscribed"
    return said


def _alerted(report: Report, zone: ZoneInfo) -> str:
    if report.alert is None:
        return "no record of an alert (no `oncall:` route, or not yet)"
    routes = ", ".join(escaped(r) for r in report.alert.routes)
    return when(report.alert.at, zone) + (f" by {routes}" if routes else "")


def _promise(report: Report, zone: ZoneInfo) -> str:
    given = report.explanation
    if report.promise == "kept" and given.kept_at is not None:
        sent = next((k for k in report.messages if k.kind == "explanation"), None)
        figures = (
            f" ({sum(sent.sent.values()):,} sent, {sent.pending:,} pending, "
            f"{sent.undeliverable:,} undeliverable)"
            if sent is not None
            else ""
        )
        return (
            f"kept {when(given.kept_at, zone)}: everyone told was given an explanation "
            f"message{figures}"
        )
    if report.promise == "open" and given.promised_at is not None:
        owed = exact_duration(report.made_at - given.promised_at)
        return (
            f"open: an explanation has been owed since {when(given.promised_at, zone)} "
            f"({owed}), when the resolved messages promised it"
        )
    if report.promise == "explained before the fix" and given.told_at is not None:
        return (
            "explained before the fix: the resolved messages carried the explanation, so "
            "nothing was promised"
        )
    if report.status == "open":
        return "none yet: the incident is open"
    return "none: nobody was told, so nothing was promised"


def _systems(report: Report, zone: ZoneInfo) -> str:
    rows = [
        [
            escaped(s.name) + (" (likely cause)" if s.cause else ""),
            escaped(s.title),
            when(s.down_at, zone),
            when(s.up_at, zone) if s.up_at is not None else "still down",
            exact_duration(s.down_for) + ("" if s.up_at is not None else " so far"),
        ]
        for s in report.systems
    ]
    return "## Systems\n\n" + _table(["system", "title", "down", "up", "down for"], "lllll", rows)


def _messages(report: Report) -> str:
    if not report.messages:
        return "## Messages\n\nNo customer message was decided."
    channels = list(report.channels)
    header = ["kind", *(f"sent by {c}" for c in channels), "pending", "undeliverable", "all"]
    rows = [
        [
            k.kind,
            *(f"{k.sent.get(c, 0):,}" for c in channels),
            f"{k.pending:,}",
            f"{k.undeliverable:,}",
            f"{k.total:,}",
        ]
        for k in report.messages
    ]
    return (
        "## Messages\n\n"
        + _table(header, "l" + "r" * (len(header) - 1), rows)
        + "\n\nA message is counted under the channel that delivered it (after a failed one, "
        "the next of the person's channels is tried). One withheld because its person had "
        "had `max_messages_per_person_per_day` is not kept: each fan-out's count is on the "
        'timeline ("over the daily limit").'
    )


def _acknowledging(report: Report, zone: ZoneInfo) -> str:
    first = report.first_failure
    if first.before_opening:
        why = (
            f"when {escaped(first.system)} was found DOWN, "
            f"{exact_duration(report.opened_at - first.at)} before the incident opened: its "
            "failure reached the incident after the one that opened it"
        )
    else:
        why = (
            f"when {escaped(first.system)} was found DOWN (after its `fail_after` failed "
            "probes), which opened the incident"
        )
    said = (
        f"## Time to acknowledge\n\nCounted from the first failure, {when(first.at, zone)}: {why}."
    )
    timing = report.acknowledging
    if timing.people == 0:
        return said + "\n\nNobody was acknowledged."
    figures: list[tuple[str, float | None]] = [
        ("first acknowledgement", timing.first),
        ("p50", timing.p50),
        ("p99", timing.p99),
        ("last acknowledgement", timing.last),
    ]
    rows = [[name, exact_duration(value or 0.0), f"{value or 0.0:,.0f}"] for name, value in figures]
    return (
        said
        + "\n\n"
        + _table(["", "after the first failure", "seconds"], "lrr", rows)
        + f"\n\nAcross the {_count(timing.people, 'person', 'people')} acknowledged; p50 and "
        "p99 by the nearest rank: half of them, and 99 in 100, had been acknowledged by then."
    )


def _unreachable(report: Report) -> str:
    if not report.undeliverable_people:
        return ""
    listed = len(report.unreachable)
    said = (
        f"## Could not be told\n\n{_count(report.undeliverable_people, 'person', 'people')} "
        "could not be reached by any of their channels"
    )
    if listed < report.undeliverable_people:
        said += f" (the first {listed:,} by id below)"
    rows = [[escaped(u.person), ", ".join(u.kinds), escaped(u.error)] for u in report.unreachable]
    return said + ":\n\n" + _table(["person", "messages", "last error"], "lll", rows)


def _notes(report: Report, zone: ZoneInfo) -> str:
    if not report.notes:
        return ""
    notes = "\n\n".join(f"{when(n.at, zone)}:\n\n{quoted(n.text)}" for n in report.notes)
    return "## On-call's notes\n\n" + notes


def _explanation(report: Report, zone: ZoneInfo) -> str:
    given = report.explanation
    said = f"## Explanation and the promise\n\n**The promise:** {_promise(report, zone)}."
    if given.promised_at is not None and given.reminded_at is not None:
        said += f" On-call was last reminded {when(given.reminded_at, zone)}."
    if not given.text:
        return said + "\n\nNo explanation has been given."
    explained = when(given.explained_at, zone) if given.explained_at is not None else "(unknown)"
    told = (
        f"; it went to customers from {when(given.told_at, zone)}"
        if given.told_at is not None
        else "; it has not gone to customers yet"
    )
    return said + f"\n\nGiven {explained}{told}:\n\n{quoted(given.text)}"


def _timeline(report: Report, zone: ZoneInfo) -> str:
    def entries() -> Iterator[str]:
        for e in report.timeline:
            yield f"- {when(e.at, zone)}: {escaped(e.kind)}: {escaped(e.text)}"

    return "## Timeline\n\n" + "\n".join(entries())
