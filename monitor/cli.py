"""The ``monitor`` command: run, validate, users import, preview, send-test, demo.

Every option also reads its ``MONITOR_*`` environment variable, so a sidecar needs no flags.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import os
import signal
import sys
from collections.abc import Coroutine, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from monitor.app import App, Options, systems_info
from monitor.composer import Composer, TemplateError, sample_context
from monitor.config import ConfigError, Problem, load_config
from monitor.logs import configure
from monitor.model import MessageKind, Person
from monitor.store import SQLiteStore, StoreUnavailable


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
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
    handler = {
        "run": _run,
        "validate": _validate,
        "users": _users,
        "preview": _preview,
        "send-test": _send_test,
        "demo": _demo,
    }[args.command]
    try:
        return handler(args, options, env)
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="monitor", description="An uptime monitor that tells the affected customers itself."
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", help="check files directory (MONITOR_CONFIG, default checks/)")
    common.add_argument(
        "--messages", help="message templates directory (MONITOR_MESSAGES, default messages/)"
    )
    common.add_argument("--db", help="SQLite database file (MONITOR_DB, default monitor.db)")
    sub = parser.add_subparsers(dest="command")
    run = sub.add_parser("run", parents=[common], help="probe, decide, tell")
    run.add_argument("--listen", help="HTTP address (MONITOR_LISTEN, default 0.0.0.0:9108)")
    run.add_argument("--log-level", default=os.environ.get("MONITOR_LOG_LEVEL", "INFO"))
    sub.add_parser("validate", parents=[common], help="check files and templates")
    users = sub.add_parser("users", parents=[common], help="manage subscribers")
    users_sub = users.add_subparsers(dest="users_command", required=True)
    imp = users_sub.add_parser("import", parents=[common], help="upsert people from a CSV file")
    imp.add_argument("file", type=Path, help="CSV with columns id,name,email,phone,systems")
    preview = sub.add_parser("preview", parents=[common], help="render a message with sample data")
    preview.add_argument("system")
    preview.add_argument("--kind", choices=[k.value for k in MessageKind], default="acknowledge")
    preview.add_argument("--channel", choices=["email", "sms"], default="email")
    send = sub.add_parser("send-test", parents=[common], help="send a sample message")
    send.add_argument("--to", required=True, help="email address")
    demo = sub.add_parser("demo", help="a scripted outage with simulated systems, end to end")
    demo.add_argument("--listen", default="127.0.0.1:9108", help="status page address")
    demo.add_argument("--speed", type=float, default=1.0, help="run the script this much faster")
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
    try:
        config = load_config(options.config, env)
    except ConfigError as exc:
        _report(exc.problems)
        return 1
    composer = Composer(
        options.messages,
        config.settings.org,
        systems_info(config),
        update_every=config.settings.update_every,
    )
    problems = composer.validate()
    if problems:
        _report(problems)
        return 1
    count = len(config.systems)
    print(f"{count} system{'s' if count != 1 else ''}, 0 problems")
    return 0


def read_people(path: Path) -> Iterator[Person]:
    """People from a CSV with columns id,name,email,phone,systems (systems ``;``-separated).

    Raises ValueError naming the file, line and column of the first bad row.
    """
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        missing = {"id", "name", "email", "phone", "systems"} - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path}:1: missing column(s): {', '.join(sorted(missing))}")
        for row in reader:
            line = reader.line_num
            person_id = (row.get("id") or "").strip()
            if not person_id:
                raise ValueError(f"{path}:{line}: id: empty")
            email = (row.get("email") or "").strip() or None
            if email and ("@" not in email or any(c in email for c in "\r\n ,;<>")):
                raise ValueError(f"{path}:{line}: email: {email!r} is not an email address")
            yield Person(
                id=person_id,
                name=(row.get("name") or "").strip(),
                email=email,
                phone=(row.get("phone") or "").strip() or None,
                webhook=(row.get("webhook") or "").strip() or None,
                systems=tuple(
                    s.strip() for s in (row.get("systems") or "").split(";") if s.strip()
                ),
            )


def _users(args: argparse.Namespace, options: Options, env: dict[str, str]) -> int:
    try:
        people = list(read_people(args.file))
    except (OSError, ValueError) as exc:
        print(exc, file=sys.stderr)
        return 1
    with contextlib.closing(SQLiteStore(options.db)) as store:
        count = store.upsert_people(people)
    print(f"{count} people imported into {options.db}")
    return 0


def _preview(args: argparse.Namespace, options: Options, env: dict[str, str]) -> int:
    try:
        config = load_config(options.config, env)
    except ConfigError as exc:
        _report(exc.problems)
        return 1
    if args.system not in config.systems:
        print(f"no system is named {args.system!r}", file=sys.stderr)
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
    from monitor.sendtest import send_test

    return asyncio.run(send_test(options, env, args.to))


def _demo(args: argparse.Namespace, options: Options, env: dict[str, str]) -> int:
    from monitor.demo import run_demo

    return run_on_fastest_loop(run_demo(listen=args.listen, speed=args.speed))


if __name__ == "__main__":
    sys.exit(main())
