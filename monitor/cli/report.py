"""``monitor report ID``: an incident's post-incident report, asked of the running monitor.

The monitor makes the report (``GET /api/v1/incidents/ID/report``), in every format, so its
figures are made in one place and its times are in the monitor's ``default_timezone`` unless
``--timezone`` says otherwise; this prints what it answers.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from monitor.app import Options
from monitor.cli.client import ClientError, MonitorClient, monitor_url
from monitor.web.plumbing import TOKEN_VARIABLE


def on_report(args: argparse.Namespace, options: Options, env: dict[str, str]) -> int:
    """Print the report; 1 when the monitor refused (no such incident), 2 when it cannot be
    reached."""
    try:
        url = monitor_url(args.url, env)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2

    async def ask() -> str:
        async with MonitorClient(url, env.get(TOKEN_VARIABLE)) as client:
            return await client.report(args.id, args.format, args.timezone)

    try:
        text = asyncio.run(ask())
    except ClientError as exc:
        print(f"monitor report: {exc}", file=sys.stderr)
        return exc.exit_code
    print(text, end="" if text.endswith("\n") else "\n")
    return 0
