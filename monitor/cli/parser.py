"""The ``monitor`` command's parser: every subcommand, option and argument, each with its help
(tests/test_cli.py fails on one without; tests/test_docs.py on one docs/cli.md does not name)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

from monitor.locales import check_timezone
from monitor.maintenance import NoticeKind
from monitor.model import MessageKind
from monitor.notify.composer import SubscriptionKind

DISTRIBUTION = "customer-uptime-monitor"
INCIDENT_COMMANDS = ("show", "note", "hold", "release", "explain")


def show_by_default(argv: Sequence[str]) -> list[str]:
    """``monitor incident 3`` means ``monitor incident show 3``: argparse has no default
    subcommand, so ``show`` is put in when an id or an option follows ``incident``."""
    args = list(argv)
    if len(args) < 2 or args[0] != "incident" or args[1] in ("-h", "--help"):
        return args
    if args[1][:1].isdigit() or args[1].startswith("-"):
        args.insert(1, "show")
    return args


def _version() -> str:
    try:
        return f"monitor {metadata.version(DISTRIBUTION)}"
    except metadata.PackageNotFoundError:
        return "monitor (version unknown: the package is not installed)"


def _incident_id(text: str) -> int:
    # Length first: int() of thousands of digits is refused by Python itself.
    if not (text.isascii() and text.isdigit() and len(text) <= 20 and int(text) > 0):
        raise argparse.ArgumentTypeError(f"{text!r} is not an incident id (a whole number from 1)")
    return int(text)


def _limit(text: str) -> int:
    if not (text.isascii() and text.isdigit() and 1 <= int(text) <= 500):
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number from 1 to 500")
    return int(text)


def _remote_parser(*, output: bool = True) -> argparse.ArgumentParser:
    """The options of every command that talks to a running monitor (``output``: and -o)."""
    remote = argparse.ArgumentParser(add_help=False)
    remote.add_argument(
        "--url",
        help="the running monitor's address (MONITOR_URL; default http://127.0.0.1 and the "
        "port of MONITOR_LISTEN, 9108)",
    )
    if not output:
        return remote
    remote.add_argument(
        "-o",
        "--output",
        choices=["text", "json"],
        default="text",
        help="text for people (default), json (the API's answer) for scripts",
    )
    return remote


def _add_incident_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    remote = _remote_parser()
    token = "needs MONITOR_API_TOKEN"
    incidents = sub.add_parser(
        "incidents", parents=[remote], help="list a running monitor's incidents, newest first"
    )
    incidents.add_argument(
        "--status", choices=["open", "resolved"], help="only open or only resolved incidents"
    )
    incidents.add_argument(
        "--limit", type=_limit, default=50, help="show at most this many (1-500, default 50)"
    )
    incident = sub.add_parser(
        "incident",
        help="one incident of a running monitor: show it, note, hold, release, explain",
    )
    actions = incident.add_subparsers(dest="incident_command", required=True, metavar="COMMAND")
    what = {
        "show": "systems, cause, note, hold, messages and timeline (`monitor incident ID` too)",
        "note": f"set the public note shown on the status page ({token})",
        "hold": f"keep customer messages back until released ({token})",
        "release": f"let customer messages go out ({token})",
        "explain": "publish what happened and what changes so it does not happen again: "
        f"everyone told gets it once ({token})",
    }
    for name in INCIDENT_COMMANDS:
        action = actions.add_parser(name, parents=[remote], help=what[name])
        action.add_argument("id", type=_incident_id, metavar="ID", help="the incident's id")
        if name == "note":
            action.add_argument(
                "text", metavar="TEXT", help="the note, as customers will read it (quote it)"
            )
            action.add_argument(
                "--send", action="store_true", help="also send it as an update to everyone told"
            )
        if name == "explain":
            action.add_argument(
                "file",
                metavar="FILE",
                help="the explanation as customers will read it, a UTF-8 text file (- reads "
                "standard input)",
            )


def _timezone(text: str) -> str:
    try:
        return check_timezone(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_report_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    report = sub.add_parser(
        "report",
        parents=[_remote_parser(output=False)],
        help="an incident's post-incident report from a running monitor: timeline, systems, "
        "people told by kind and channel, time to acknowledge, the promise",
    )
    report.add_argument("id", type=_incident_id, metavar="ID", help="the incident's id")
    report.add_argument(
        "--format",
        choices=["markdown", "html", "json"],
        default="markdown",
        help="markdown for a postmortem document (default), html (a standalone page), or "
        "json (the API's answer)",
    )
    report.add_argument(
        "--timezone",
        type=_timezone,
        help="the IANA zone of the report's times, like Europe/Berlin (default: the monitor's "
        "default_timezone)",
    )


def _add_maintenance_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    maintenance = sub.add_parser(
        "maintenance",
        help="a running monitor's maintenance windows: list them, plan work, remove it",
    )
    actions = maintenance.add_subparsers(
        dest="maintenance_command", required=True, metavar="COMMAND"
    )
    actions.add_parser(
        "list",
        parents=[_remote_parser()],
        help="every window, the files' and those added here, with the next occurrence",
    )
    add = actions.add_parser(
        "add",
        parents=[_remote_parser()],
        help="plan work on some systems: their subscribers are told before and after, and "
        "failures inside it reach no customer unless they outlast it (needs MONITOR_API_TOKEN)",
    )
    add.add_argument(
        "--systems",
        required=True,
        help="the systems the work is on, comma-separated: payment,login",
    )
    add.add_argument(
        "--start",
        required=True,
        help="when it starts: a date and time (2026-12-13 02:00, or with an offset), or with "
        "--every a time of day (02:00)",
    )
    add.add_argument("--end", required=True, help="when it ends, written as --start is")
    add.add_argument(
        "--note", required=True, help="what the work is, as customers will read it (quote it)"
    )
    add.add_argument(
        "--every",
        help="the days it recurs on: day, a day of the week, or several comma-separated "
        "(saturday,sunday); default: once",
    )
    add.add_argument(
        "--timezone",
        type=_timezone,
        help="the IANA zone of --start and --end, like Europe/Berlin (default: the monitor's "
        "default_timezone)",
    )
    add.add_argument(
        "--notify-before",
        help="how long before it its customers are told, like 2d (default: the monitor's "
        "notify_before; 0s: not told)",
    )
    add.add_argument(
        "--grace",
        help="how long after it a failure inside it may last before customers are told, like "
        "30m (default: the monitor's maintenance_grace)",
    )
    remove = actions.add_parser(
        "remove",
        parents=[_remote_parser()],
        help="remove a window added through the API (needs MONITOR_API_TOKEN)",
    )
    remove.add_argument("id", metavar="ID", help="the window's id, as `maintenance list` shows it")


def _add_database_commands(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], db_only: argparse.ArgumentParser
) -> None:
    database = sub.add_parser("db", help="the database's schema: its version, and upgrading it")
    actions = database.add_subparsers(dest="db_command", required=True, metavar="COMMAND")
    actions.add_parser(
        "status",
        parents=[db_only],
        help="the backend, the database, its schema version and the migrations pending "
        "(exit 0 up to date, 1 pending, 2 unusable)",
    )
    actions.add_parser(
        "upgrade",
        parents=[db_only],
        help="apply the pending migrations now and say what was done (`monitor run` does on start)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The ``monitor`` command's parser: every subcommand, option and argument, with its help."""
    parser = argparse.ArgumentParser(
        prog="monitor", description="An uptime monitor that tells the affected customers itself."
    )
    parser.add_argument("--version", action="version", version=_version())
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", help="check files directory (MONITOR_CONFIG, default checks/)")
    common.add_argument(
        "--messages", help="message templates directory (MONITOR_MESSAGES, default messages/)"
    )
    sub = parser.add_subparsers(dest="command")
    # Only the commands that open the database take --db: elsewhere it would do nothing.
    db_only = argparse.ArgumentParser(add_help=False)
    db_only.add_argument(
        "--db",
        help="SQLite database file, or postgresql:// URL (MONITOR_DB, default monitor.db)",
    )
    with_db = argparse.ArgumentParser(add_help=False, parents=[common, db_only])
    run = sub.add_parser("run", parents=[with_db], help="probe, decide, tell")
    run.add_argument("--listen", help="HTTP address (MONITOR_LISTEN, default 0.0.0.0:9108)")
    run.add_argument(
        "--no-upgrade",
        action="store_true",
        help="refuse to start on a database whose schema is behind this monitor's, instead of "
        "upgrading it on start (then run `monitor db upgrade`)",
    )
    run.add_argument(
        "--log-level",
        default=os.environ.get("MONITOR_LOG_LEVEL", "INFO"),
        help="DEBUG, INFO, WARNING or ERROR (MONITOR_LOG_LEVEL, default INFO)",
    )
    sub.add_parser("validate", parents=[common], help="check files and templates")
    users = sub.add_parser("users", help="manage subscribers")
    users_sub = users.add_subparsers(dest="users_command", required=True)
    imp = users_sub.add_parser("import", parents=[with_db], help="upsert people from a CSV file")
    imp.add_argument(
        "file",
        type=Path,
        help="CSV with columns id,name,email,phone,systems (systems ;-separated), and webhook",
    )
    imp.add_argument(
        "--skip-invalid",
        action="store_true",
        help="import the valid rows and list the others (default: import nothing if any is bad)",
    )
    preview = sub.add_parser("preview", parents=[common], help="render a message with sample data")
    preview.add_argument("system", help="the system the message is about, as its check names it")
    preview.add_argument(
        "--kind",
        choices=[k.value for k in (*MessageKind, *NoticeKind, *SubscriptionKind)],
        default="acknowledge",
        help="which message (default acknowledge)",
    )
    preview.add_argument(
        "--channel", choices=["email", "sms"], default="email", help="as sent by (default email)"
    )
    preview.add_argument(
        "--language",
        help="as a person of this language reads it, like de or en-US (default: default_language)",
    )
    send = sub.add_parser(
        "send-test", parents=[common], help="send a sample acknowledgement through MONITOR_SMTP_URL"
    )
    send.add_argument("--to", required=True, help="email address")
    send.add_argument(
        "--system", help="the system the sample is about (default: the first check file's)"
    )
    check = sub.add_parser("check", help="run one system's probe now and say how it went")
    check.add_argument("system", help="the system to probe, as its check names it")
    check.add_argument("--config", help="check files directory (MONITOR_CONFIG, default checks/)")
    _add_database_commands(sub, db_only)
    _add_incident_commands(sub)
    _add_maintenance_commands(sub)
    _add_report_command(sub)
    demo = sub.add_parser(
        "demo",
        help="a scripted outage with simulated systems, end to end; then serves its pages"
        " until Ctrl-C",
    )
    demo.add_argument(
        "--listen",
        default="127.0.0.1:9108",
        help="address of the status page and the messages page (default 127.0.0.1:9108)",
    )
    demo.add_argument(
        "--speed",
        type=float,
        default=1.0,
        help="run the script this much faster, 0.1 to 50 (default 1)",
    )
    demo.add_argument(
        "--exit",
        action="store_true",
        help="end after the script instead of serving the pages until Ctrl-C (for scripts)",
    )
    simulate = sub.add_parser(
        "simulate",
        help="serve the demo's simulated payment, login and CRM systems, with a control to "
        "break and mend them, until Ctrl-C",
    )
    simulate.add_argument(
        "--listen",
        default="127.0.0.1:8080",
        help="the control's address; the systems take its next three ports (default "
        "127.0.0.1:8080: payment 8081, login 8082, crm 8083; port 0: free ports)",
    )
    return parser
