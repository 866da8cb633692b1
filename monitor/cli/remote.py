"""``monitor incidents`` and ``monitor incident ...``: on-call drives a running monitor through
its HTTP API (``client``) and reads the answer as text (``terminal``) or JSON."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from monitor.app import Options
from monitor.cli.client import MonitorClient, ask_monitor, monitor_url
from monitor.cli.terminal import (
    explained,
    held,
    incident_text,
    incidents_table,
    noted,
    released,
)


def on_monitor(args: argparse.Namespace, options: Options, env: dict[str, str]) -> int:
    """``monitor incidents`` and ``monitor incident ...``: ask the running monitor's API and
    print its answer; 1 when it refused or has no such incident, 2 when it cannot be reached."""
    if getattr(args, "incident_command", None) == "explain":
        try:
            monitor_url(args.url, env)  # a URL it cannot use is said before reading the file
        except ValueError as exc:
            print(exc, file=sys.stderr)
            return 2
        try:
            args.text = _read_text(args.file)
        except ValueError as exc:
            print(f"monitor incident explain: {exc}", file=sys.stderr)
            return 2
    return ask_monitor(args.url, env, args.command, lambda client: _ask(client, args))


async def _ask(client: MonitorClient, args: argparse.Namespace) -> str:
    if args.command == "incidents":
        found = await client.incidents(args.status, args.limit)
        if args.output == "json":
            return _json(found.model_dump(mode="json"))
        if not found.incidents:
            return f"no {args.status} incidents" if args.status else "no incidents"
        return incidents_table(found.incidents)
    number, command = args.id, args.incident_command
    if command == "note":
        incident = await client.note(number, args.text, args.send)
        said = noted(incident, args.send)
    elif command == "explain":
        incident = await client.explain(number, args.text)
        said = explained(incident)
    elif command == "hold":
        incident = await client.hold(number)
        said = held(incident)
    elif command == "release":
        incident = await client.release(number)
        said = released(incident)
    else:
        incident = await client.incident(number)
        said = incident_text(incident)
    return _json(incident.model_dump(mode="json")) if args.output == "json" else said


def _read_text(file: str) -> str:
    """The text of ``file`` (``-``: standard input), or ValueError naming it and why not."""
    where = "standard input" if file == "-" else file
    try:
        raw = sys.stdin.buffer.read() if file == "-" else Path(file).read_bytes()
        text = raw.decode("utf-8")
    except OSError as exc:
        raise ValueError(f"cannot read {where}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"{where} is not UTF-8 text (byte {exc.start + 1})") from None
    if not text.strip():
        raise ValueError(
            f"{where} is empty: write what happened, and what changes so it does not happen again"
        )
    return text


def _json(data: object) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False)
