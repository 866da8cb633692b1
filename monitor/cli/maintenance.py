"""``monitor maintenance list|add|remove``: on-call plans work on a running monitor through its
HTTP API (``/api/v1/maintenance``) and reads the answer as text or JSON."""

from __future__ import annotations

import argparse
import json

from monitor.app import Options
from monitor.cli.client import MonitorClient, ask_monitor
from monitor.durations import short_duration
from monitor.web.maintenance import MaintenanceList, MaintenanceOut


def on_maintenance(args: argparse.Namespace, options: Options, env: dict[str, str]) -> int:
    """Ask the running monitor and print its answer; 1 when it refused (a bad window, no such
    id, the token), 2 when it cannot be reached."""
    command = f"maintenance {args.maintenance_command}"
    return ask_monitor(args.url, env, command, lambda client: _ask(client, args))


async def _ask(client: MonitorClient, args: argparse.Namespace) -> str:
    json_out = args.output == "json"
    if args.maintenance_command == "list":
        found = await client.maintenance()
        return _json(found.model_dump(mode="json")) if json_out else windows_table(found)
    if args.maintenance_command == "add":
        made = await client.add_maintenance(window_body(args))
        if json_out:
            return _json(made.model_dump(mode="json"))
        return f"maintenance window {made.id} added: {_when(made)}; {', '.join(made.systems)}"
    removed = await client.remove_maintenance(args.id)
    if json_out:
        return _json(removed.model_dump(mode="json"))
    return f"maintenance window {removed.window.id} removed"


def window_body(args: argparse.Namespace) -> dict[str, object]:
    """The body of ``POST /api/v1/maintenance`` the options of ``add`` write."""
    body: dict[str, object] = {
        "systems": [name.strip() for name in args.systems.split(",") if name.strip()],
        "start": args.start,
        "end": args.end,
        "note": args.note,
    }
    if args.every:
        body["every"] = [day.strip() for day in args.every.split(",") if day.strip()]
    if args.timezone:
        body["timezone"] = args.timezone
    if args.notify_before:
        body["notify_before"] = args.notify_before
    if args.grace:
        body["grace"] = args.grace
    return body


def windows_table(found: MaintenanceList) -> str:
    """One line a window: id, systems, when it is, its next occurrence (UTC), its grace (its
    own, else the monitor's), where it is written; or that there is none. A window the monitor
    cannot use says so in NEXT, and why below the table."""
    if not found.windows:
        return "no maintenance windows"
    rows = [("ID", "SYSTEMS", "WHEN", "NEXT (UTC)", "GRACE", "SOURCE")]
    rows += [
        (
            w.id,
            ", ".join(w.systems),
            _when(w),
            _next(w),
            _duration(found.grace if w.grace is None else w.grace),
            w.source,
        )
        for w in found.windows
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in rows
    ]
    lines += [
        f"window {w.id} cannot be used: {w.unusable} (`monitor maintenance remove {w.id}` "
        "removes it)"
        for w in found.windows
        if w.unusable
    ]
    return "\n".join(line.rstrip() for line in lines)


def _when(window: MaintenanceOut) -> str:
    if window.every:
        days = "day" if len(window.every) == 7 else ", ".join(window.every)
        return f"every {days} {window.start}-{window.end} {window.timezone}"
    return f"{window.start} - {window.end}"


def _next(window: MaintenanceOut) -> str:
    if window.unusable:
        return "unusable (see below)"
    if window.next is None:
        return "past"
    said = f"{window.next.start:%Y-%m-%d %H:%M} - {window.next.end:%H:%M}"
    return f"{said} (under way)" if window.active else said


def _duration(seconds: float) -> str:
    """As a file would write it: ``1h``, ``15m``, ``90m``, ``0s``."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return short_duration(seconds)


def _json(data: object) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False)
