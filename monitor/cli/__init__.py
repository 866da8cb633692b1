"""The ``monitor`` command: run, validate, users import, preview, send-test, demo, check, and
incidents / incident (show, note, hold, release) on a running monitor through its HTTP API.

Every option also reads its ``MONITOR_*`` environment variable, so a sidecar needs no flags.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import signal
import sys
from collections.abc import Coroutine, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

from monitor.app import App, Options, systems_info
from monitor.cli.client import ClientError, MonitorClient, monitor_url
from monitor.cli.terminal import held, incident_text, incidents_table, noted, released
from monitor.config import Config, ConfigError, MonitorSettings, Problem, load_config
from monitor.database import sqlite_file
from monitor.logs import configure
from monitor.model import MessageKind, SystemInfo
from monitor.notify.composer import Composer, TemplateError, sample_context
from monitor.people.csv_file import UnreadableFile, read_people
from monitor.people.rules import SYSTEM_NAME
from monitor.store import SQLiteStore, StoreUnavailable
from monitor.text import unknown_name
from monitor.web.api import TOKEN_VARIABLE

DISTRIBUTION = "customer-uptime-monitor"
INCIDENT_COMMANDS = ("show", "note", "hold", "release")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(_show_by_default(sys.argv[1:] if argv is None else argv))
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    env = dict(os.environ)
    options = Options.from_env(
        env,
        config=getattr(args, "config", None),
        messages=getattr(args, "messages", None),
        db=getattr(args, "db", None),
        listen=getattr(args, "listen", None),
    )
    if args.command in _OPENS_THE_STORE:
        given_as = "--db" if getattr(args, "db", None) else "MONITOR_DB"
        try:
            sqlite_file(getattr(args, "db", None) or env.get("MONITOR_DB") or str(options.db))
        except ValueError as exc:
            print(f"{given_as}: {exc}", file=sys.stderr)
            return 2
    handler = {
        "run": _run,
        "validate": _validate,
        "users": _users,
        "preview": _preview,
        "send-test": _send_test,
        "demo": _demo,
        "check": _check,
        "incidents": _on_monitor,
        "incident": _on_monitor,
    }[args.command]
    try:
        return handler(args, options, env)
    except KeyboardInterrupt:
        return 130


# The subcommands that open the database: a --db they cannot use is refused before anything.
_OPENS_THE_STORE = frozenset({"run", "users"})


def _show_by_default(argv: Sequence[str]) -> list[str]:
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


def _remote_parser() -> argparse.ArgumentParser:
    """The options of every command that talks to a running monitor."""
    remote = argparse.ArgumentParser(add_help=False)
    remote.add_argument(
        "--url",
        help="the running monitor's address (MONITOR_URL; default http://127.0.0.1 and the "
        "port of MONITOR_LISTEN, 9108)",
    )
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
        "incident", help="one incident of a running monitor: show it, note, hold, release"
    )
    actions = incident.add_subparsers(dest="incident_command", required=True, metavar="COMMAND")
    what = {
        "show": "systems, cause, note, hold, messages and timeline (`monitor incident ID` too)",
        "note": f"set the public note shown on the status page ({token})",
        "hold": f"keep customer messages back until released ({token})",
        "release": f"let customer messages go out ({token})",
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
    with_db = argparse.ArgumentParser(add_help=False, parents=[common])
    with_db.add_argument("--db", help="SQLite database file (MONITOR_DB, default monitor.db)")
    run = sub.add_parser("run", parents=[with_db], help="probe, decide, tell")
    run.add_argument("--listen", help="HTTP address (MONITOR_LISTEN, default 0.0.0.0:9108)")
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
        choices=[k.value for k in MessageKind],
        default="acknowledge",
        help="which message (default acknowledge)",
    )
    preview.add_argument(
        "--channel", choices=["email", "sms"], default="email", help="as sent by (default email)"
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
    _add_incident_commands(sub)
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
    return parser


def _report(problems: Sequence[Problem]) -> None:
    for problem in problems:
        print(problem, file=sys.stderr)
    print(f"{len(problems)} problem{'s' if len(problems) != 1 else ''}", file=sys.stderr)


T = TypeVar("T")


def _run(args: argparse.Namespace, options: Options, env: dict[str, str]) -> int:
    configure(args.log_level, environ=env)
    return run_on_fastest_loop(_serve(options, env))


def run_on_fastest_loop(main: Coroutine[Any, Any, T], *, allow_uvloop: bool = True) -> T:
    """Run ``main`` on uvloop where it is installed (it is a dependency on Linux and macOS),
    else on asyncio's own loop. A fresh connection per probe is mostly event-loop work (the
    connect, the transport, timers, tasks): uvloop does it with about a fifth less CPU per
    probe, measured in benchmarks/probes.py. ``allow_uvloop=False`` uses asyncio's loop."""
    if not allow_uvloop:
        return asyncio.run(main)
    try:
        import uvloop  # optional: there is no uvloop for Windows
    except ImportError:
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


async def _serve(options: Options, env: dict[str, str]) -> int:
    app = App(options, environ=env)
    try:
        await app.start()
    except ConfigError as exc:
        _report(exc.problems)
        return 2
    except StoreUnavailable as exc:
        print(f"{options.db}: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"cannot listen on {options.listen}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, app.reload)
    await stop.wait()
    await app.stop()
    return 0


def _validate(args: argparse.Namespace, options: Options, env: dict[str, str]) -> int:
    """Check files and templates together, every problem of both at once. With check files
    refused, the templates are rendered with the systems that loaded, and with those refused
    by name (so their own templates are checked too), and say so."""
    problems: list[Problem] = []
    note = ""
    try:
        config = load_config(options.config, env)
    except ConfigError as exc:
        problems.extend(exc.problems)
        config = exc.loaded or Config(MonitorSettings(), {})
        systems = systems_info(config)
        by_name = sorted(n for n in exc.refused if re.fullmatch(SYSTEM_NAME, n))
        systems.update({name: SystemInfo(name, name) for name in by_name})
        note = _templates_checked_with(len(config.systems), by_name)
    else:
        systems = systems_info(config)
    composer = Composer(
        options.messages, config.settings.org, systems, update_every=config.settings.update_every
    )
    problems.extend(composer.validate())
    if problems:
        for problem in problems:
            print(problem, file=sys.stderr)
        if note:
            print(note, file=sys.stderr)
        print(_count(len(problems), "problem"), file=sys.stderr)
        return 1
    print(f"{_count(len(config.systems), 'system')}, 0 problems")
    return 0


def _templates_checked_with(valid: int, by_name: Sequence[str]) -> str:
    if not valid and not by_name:
        return "(no check file loaded: the templates were checked with a sample system)"
    said = f"the {_count(valid, 'system')} whose check files are valid" if valid else ""
    if by_name:
        more = len(by_name) - 5
        names = ", ".join(by_name[:5]) + (f" and {more} more" if more > 0 else "")
        said += (" and, " if said else "") + f"by name only, {names}"
    return f"(the templates were checked with {said})"


def _users(args: argparse.Namespace, options: Options, env: dict[str, str]) -> int:
    try:
        systems = load_config(options.config, env).systems
    except ConfigError as exc:
        _report(exc.problems)
        print(
            f"nothing imported: people's systems are checked against the check files in "
            f"{options.config}, so those must be valid first",
            file=sys.stderr,
        )
        return 1
    try:
        found = read_people(args.file, systems)
    except UnreadableFile as exc:
        _report(exc.problems)
        print("nothing imported", file=sys.stderr)
        return 1
    for problem in found.problems:
        print(problem, file=sys.stderr)
    good = found.rows - found.bad_rows
    if found.problems and not args.skip_invalid:
        print(
            f"{_count(len(found.problems), 'problem')} in {_count(found.bad_rows, 'row')} of "
            f"{found.rows}: nothing imported (--skip-invalid imports the other {good})",
            file=sys.stderr,
        )
        return 1
    try:
        with contextlib.closing(SQLiteStore(options.db)) as store:
            count = store.upsert_people(found.people)
    except StoreUnavailable as exc:
        print(f"{options.db}: {exc}", file=sys.stderr)
        return 1
    skipped = f"; {_count(found.bad_rows, 'row')} skipped (listed above)" if found.bad_rows else ""
    print(f"{count} people imported into {options.db}{skipped}")
    return 0


def _count(number: int, thing: str) -> str:
    return f"{number} {thing}{'s' if number != 1 else ''}"


def _preview(args: argparse.Namespace, options: Options, env: dict[str, str]) -> int:
    try:
        config = load_config(options.config, env)
    except ConfigError as exc:
        _report(exc.problems)
        return 1
    if args.system not in config.systems:
        print(unknown_name("system", args.system, config.systems), file=sys.stderr)
        return 1
    info = systems_info(config)
    composer = Composer(
        options.messages, config.settings.org, info, update_every=config.settings.update_every
    )
    sample = sample_context(info, args.system, MessageKind(args.kind))
    try:
        message = composer.render(
            sample.kind, sample.reason, sample.recipient, sample.incident, sample.now
        )
    except TemplateError as exc:
        _report([exc.problem()])
        return 1
    if args.channel == "sms":
        print(message.sms)
    else:
        print(f"Subject: {message.subject}\n\n{message.text}")
    return 0


def _send_test(args: argparse.Namespace, options: Options, env: dict[str, str]) -> int:
    from monitor.demo.sendtest import send_test

    return asyncio.run(send_test(options, env, args.to, args.system))


def _check(args: argparse.Namespace, options: Options, env: dict[str, str]) -> int:
    from monitor.cli.checknow import check_now

    return run_on_fastest_loop(check_now(options, env, args.system))


def _on_monitor(args: argparse.Namespace, options: Options, env: dict[str, str]) -> int:
    """``monitor incidents`` and ``monitor incident ...``: ask the running monitor's API and
    print its answer; 1 when it refused or has no such incident, 2 when it cannot be reached."""
    try:
        url = monitor_url(args.url, env)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2

    async def ask() -> str:
        async with MonitorClient(url, env.get(TOKEN_VARIABLE)) as client:
            return await _ask(client, args)

    try:
        print(asyncio.run(ask()))
    except ClientError as exc:
        print(f"monitor {args.command}: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


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


def _json(data: object) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False)


def _demo(args: argparse.Namespace, options: Options, env: dict[str, str]) -> int:
    from monitor.demo.script import run_demo

    return run_on_fastest_loop(run_demo(listen=args.listen, speed=args.speed, exit_after=args.exit))


if __name__ == "__main__":
    sys.exit(main())
