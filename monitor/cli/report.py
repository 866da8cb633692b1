"""``monitor report ID``: an incident's post-incident report, asked of the running monitor.

The monitor makes the report (``GET /api/v1/incidents/ID/report``), in every format, so its
figures are made in one place and its times are in the monitor's ``default_timezone`` unless
``--timezone`` says otherwise; this prints what it answers.
"""

from __future__ import annotations

import argparse

from monitor.app import Options
from monitor.cli.client import MonitorClient, ask_monitor


def on_report(args: argparse.Namespace, options: Options, env: dict[str, str]) -> int:
    """Print the report; 1 when the monitor refused (no such incident), 2 when it cannot be
    reached."""

    async def ask(client: MonitorClient) -> str:
        # Printed with one line end after it, whether or not the text has its own.
        text = await client.report(args.id, args.format, args.timezone)
        return text.removesuffix("\n")

    return ask_monitor(args.url, env, "report", ask)
