"""The ``monitor`` command: run, validate, users import, preview, send-test, demo, simulate,
check, and incidents / incident (show, note, hold, release) and report on a running monitor
through its HTTP API.

Every option also reads its ``MONITOR_*`` environment variable, so a sidecar needs no flags.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import sys
from collections.abc import Coroutine, Sequence
from typing import Any, TypeVar

from monitor.app import App, Options, letterhead, systems_info
from monitor.cli.database import on_database
from monitor.cli.maintenance import on_maintenance
from monitor.cli.parser import build_parser, show_by_default
from monitor.cli.remote import on_monitor
from monitor.cli.report import on_report
from monitor.config import Config, ConfigError, MonitorSettings, Problem, load_config
from monitor.locales import check_language
from monitor.logs import configure
from monitor.maintenance import NoticeKind
from monitor.model import MessageKind, Person, RenderedMessage, SystemInfo
from monitor.notify.composer import (
    Composer,
    SubscriptionKind,
    TemplateError,
    sample_context,
    sample_subscription,
)
from monitor.notify.composer.samples import sample_planned
from monitor.people.csv_file import UnreadableFile, read_people
from monitor.people.rules import SYSTEM_NAME
from monitor.replicas.identity import ReplicaNameError
from monitor.store import StoreUnavailable
from monitor.store.location import DatabaseLocation, database_location
from monitor.store.migrations import SchemaMismatch
from monitor.store.opening import open_store
from monitor.text import unknown_name

# The subcommands that open the database: a --db they cannot use is refused before anything.
_OPENS_THE_STORE = frozenset({"run", "users", "db"})


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(show_by_default(sys.argv[1:] if argv is None else argv))
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
            database_location(str(options.db))
        except ValueError as exc:
            print(f"{given_as}: {exc}", file=sys.stderr)
            return 2
    handler = {
        "run": _run,
        "validate": _validate,
        "users": _users,
        "db": on_database,
        "preview": _preview,
        "send-test": _send_test,
        "demo": _demo,
        "simulate": _simulate,
        "check": _check,
        "incidents": on_monitor,
        "incident": on_monitor,
        "report": on_report,
        "maintenance": on_maintenance,
    }[args.command]
    try:
        return handler(args, options, env)
    except KeyboardInterrupt:
        return 130


def _report(problems: Sequence[Problem]) -> None:
    for problem in problems:
        print(problem, file=sys.stderr)
    print(f"{len(problems)} problem{'s' if len(problems) != 1 else ''}", file=sys.stderr)


T = TypeVar("T")


def _run(args: argparse.Namespace, options: Options, env: dict[str, str]) -> int:
    configure(args.log_level, environ=env)
    return run_on_fastest_loop(_serve(options, env, upgrade=not args.no_upgrade))


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


async def _serve(options: Options, env: dict[str, str], *, upgrade: bool = True) -> int:
    app = App(options, environ=env, upgrade_schema=upgrade)
    try:
        await app.start()
    except ConfigError as exc:
        _report(exc.problems)
        return 2
    except (StoreUnavailable, SchemaMismatch) as exc:
        print(f"{app.database}: {exc}", file=sys.stderr)
        return 2
    except ReplicaNameError as exc:
        print(exc, file=sys.stderr)
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
    composer = Composer.from_settings(options.messages, config.settings, systems)
    problems.extend(composer.validate())
    try:
        letterhead(config, env, options)  # the DKIM key, read and tried; the org on From
    except ConfigError as exc:
        problems.extend(exc.problems)
    if problems:
        for problem in problems:
            print(problem, file=sys.stderr)
        if note:
            print(note, file=sys.stderr)
        print(_count(len(problems), "problem"), file=sys.stderr)
        return 1
    read = [_count(len(config.systems), "system")]
    if config.maintenance:  # monitor.yaml's and checks/maintenance/'s; none: said as before
        read.append(_count(len(config.maintenance), "maintenance window"))
    print(f"{', '.join(read)}, 0 problems")
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
    database = database_location(str(options.db))  # checked by main: usable
    try:
        count = asyncio.run(_import_people(database, found.people))
    except StoreUnavailable as exc:
        print(f"{database}: {exc}", file=sys.stderr)
        return 1
    except SchemaMismatch as exc:
        print(f"{database}: {exc}", file=sys.stderr)
        return 2
    skipped = f"; {_count(found.bad_rows, 'row')} skipped (listed above)" if found.bad_rows else ""
    print(f"{count} people imported into {database}{skipped}")
    return 0


async def _import_people(database: DatabaseLocation, people: list[Person]) -> int:
    store = await open_store(database)
    try:
        return await store.upsert_people(people)
    finally:
        await store.close()


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
    try:
        language = check_language(args.language) if args.language else None
    except ValueError as exc:
        print(f"--language: {exc}", file=sys.stderr)
        return 1
    info = systems_info(config)
    composer = Composer.from_settings(options.messages, config.settings, info)
    if args.kind in set(SubscriptionKind) and args.channel == "sms":
        print(f"--kind {args.kind} goes by email only: there is no sms", file=sys.stderr)
        return 1
    try:
        if args.kind in set(SubscriptionKind):
            # A request for this system and another, as long as monitor.yaml lets links work.
            asked = sample_subscription(info, args.system)
            within = config.settings.subscriptions.confirm_within
            message = composer.render_confirmation(
                asked.systems, asked.confirm_url, within, language
            )
        elif args.kind in set(NoticeKind):
            planned = sample_planned(info, args.system, NoticeKind(args.kind), language=language)
            message = composer.render_planned(
                planned.kind, planned.recipient, planned.occurrence, planned.now
            )
        else:
            message = _rendered_sample(composer, info, args.system, args.kind, language)
    except TemplateError as exc:
        _report([exc.problem()])
        return 1
    if args.channel == "sms":
        print(message.sms)
    else:
        print(f"Subject: {message.subject}\n\n{message.text}")
    return 0


def _rendered_sample(
    composer: Composer,
    info: dict[str, SystemInfo],
    system: str,
    kind: str,
    language: str | None,
) -> RenderedMessage:
    """The sample message of ``kind`` about ``system`` (raises TemplateError)."""
    sample = sample_context(info, system, MessageKind(kind), language=language)
    return composer.render(
        sample.kind,
        sample.reason,
        sample.recipient,
        sample.incident,
        sample.now,
        response=sample.response,
        goodwill=bool(sample.goodwill),  # monitor.yaml's goodwill, when it has one
    )


def _send_test(args: argparse.Namespace, options: Options, env: dict[str, str]) -> int:
    from monitor.demo.sendtest import send_test

    return asyncio.run(send_test(options, env, args.to, args.system))


def _check(args: argparse.Namespace, options: Options, env: dict[str, str]) -> int:
    from monitor.cli.checknow import check_now

    return run_on_fastest_loop(check_now(options, env, args.system))


def _demo(args: argparse.Namespace, options: Options, env: dict[str, str]) -> int:
    from monitor.demo.script import run_demo

    return run_on_fastest_loop(run_demo(listen=args.listen, speed=args.speed, exit_after=args.exit))


def _simulate(args: argparse.Namespace, options: Options, env: dict[str, str]) -> int:
    from monitor.demo.simulator import serve_simulated

    return run_on_fastest_loop(serve_simulated(args.listen, env))


if __name__ == "__main__":
    sys.exit(main())
