"""Fan-out throughput and memory: one incident to 100,000 people, against a bare aiosmtplib loop.

    python benchmarks/fanout.py                        # 100,000 people, 4 SMTP connections
    python benchmarks/fanout.py --people 5000          # a quick check

Everything runs on 127.0.0.1, each part in a process of its own, one after the other:

- ``smtp_sink.py``: a minimal aiosmtpd server that says 250 to every message and keeps none.
  It counts what it accepted, so the run checks that every message arrived.
- ``bare`` (the ceiling): a plain aiosmtplib loop, one sender per connection, sending as many
  messages as the monitor will, each the size of the monitor's (rendered by the real composer,
  built the way the email channel builds it) with its own ``To`` and a Message-ID in the
  monitor's style (``<incident-1.acknowledge.u000042@example.com>``).
- ``monitor`` (measured): the people, subscribers of ``payment``, are imported beforehand with
  ``store.upsert_people`` into a SQLite file in a temp dir. The process opens it with the real
  ``SQLiteStore``, makes ``payment`` DOWN through ``Monitor.observe``, moves its clock past
  ``notify_after`` and times two phases: *decide* (``Notifier.tick``: who is affected, every
  message rendered with the real ``Composer`` and the repo's ``messages/``, committed to the
  outbox) and *send* (``Delivery.run_once`` until the outbox is empty, through the real
  ``EmailChannel`` with a pool of ``--connections``). Logs go to /dev/null as JSON and every
  outcome is counted in ``Metrics``, as the app does. Peak RSS is the process's ``VmHWM``.

``--role bare|monitor`` runs one measurement against ``--port`` and prints JSON (handy under a
profiler; ``monitor`` also needs ``--dir`` from a run with ``--keep``).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiosmtplib

from monitor.app import systems_info
from monitor.channels import EmailChannel
from monitor.composer import Composer
from monitor.config import Config, load_config
from monitor.delivery import Channels, Delivery
from monitor.incidents import Correlator
from monitor.logs import configure
from monitor.metrics import Metrics
from monitor.model import (
    Health,
    IncidentView,
    MessageKind,
    Person,
    ProbeResult,
    Reason,
    Recipient,
)
from monitor.notifier import Notifier, outbox_key
from monitor.runtime import Monitor
from monitor.store import OutboxItem, SQLiteStore

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
MESSAGES = REPO / "messages"
SENDER = "status@example.com"
CHILD_TIMEOUT = 900.0  # seconds; a run that takes longer is broken, not slow

SETTINGS = """\
org: {name: Example Ltd, support_phone: 0800 123 456, support_email: help@example.com}
correlation_window: 5m
notify_after: 60s
update_every: 24h
attempt_lookback: 2h
customer_messages: auto
max_messages_per_person_per_day: 6
"""
PAYMENT = """\
name: payment
title: Online payments
every: 15s
fail_after: 3
workaround: Pay by phone on 0800 123 456 and we will process it by hand.
probe: {http: {url: "http://127.0.0.1:9/healthz"}}
"""
FIRST = ["Alice", "Bob", "Chloé", "Dmitri", "Emeka", "Fatima", "Grace", "Hiro", "Inès", "Jon"]
LAST = ["Martin", "Stone", "Nakamura", "Okafor", "García", "Schmidt", "O'Neil", "Kowalski"]


# --- measuring ---------------------------------------------------------------------------------


def memory_mb(field: str) -> float:
    """``VmHWM`` (peak resident set) or ``VmRSS`` (now) of this process, in MB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Stopwatch:
    """Wall and CPU seconds between ``start`` and ``stop``."""

    def __init__(self) -> None:
        self.wall = self.cpu = 0.0

    def __enter__(self) -> Stopwatch:
        self._wall, self._cpu = time.perf_counter(), cpu_seconds()
        return self

    def __exit__(self, *_: object) -> None:
        self.wall = time.perf_counter() - self._wall
        self.cpu = cpu_seconds() - self._cpu


class OffsetClock:
    """Real time that can be moved forward, so ``notify_after`` passes without waiting."""

    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


# --- the world: config, people ----------------------------------------------------------------


def write_checks(directory: Path) -> Config:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "monitor.yaml").write_text(SETTINGS)
    (directory / "payment.yaml").write_text(PAYMENT)
    return load_config(directory, {})


def person(i: int) -> Person:
    """The i-th subscriber of payment; one in ten has no name (the template says "Hello")."""
    first, last = FIRST[i % len(FIRST)], LAST[i % len(LAST)]
    name = "" if i % 10 == 9 else f"{first} {last}"
    return Person(
        id=f"u{i:06d}",
        name=name,
        email=f"{first.lower()}.{i}@example.com".encode("ascii", "ignore").decode(),
        phone=None,
        webhook=None,
        systems=("payment",),
    )


def people(n: int) -> Iterator[Person]:
    return (person(i) for i in range(n))


def composer_for(config: Config) -> Composer:
    settings = config.settings
    return Composer(
        MESSAGES, settings.org, systems_info(config), update_every=settings.update_every
    )


# --- the ceiling: a bare aiosmtplib loop -------------------------------------------------------


def sample_message(config: Config) -> tuple[bytes, bytes, bytes]:
    """One acknowledgement as the monitor would send it, as bytes, and the To and Message-ID
    values in it (to be replaced per message)."""
    composer = composer_for(config)
    info = systems_info(config)["payment"]
    now = time.time()
    somebody = person(0)
    rendered = composer.render(
        MessageKind.ACKNOWLEDGE,
        Reason.FIRST,
        Recipient(somebody, (info,), (), now - 60),
        IncidentView("1", now - 60, None, info, (info,), "", "open"),
        now,
    )
    to = somebody.email or ""
    message_id = f"{outbox_key(1, 'acknowledge', somebody.id)}@{config.settings.org.message_domain}"
    # Built the way monitor.channels.email builds it.
    message = EmailMessage(policy=policy.SMTP)
    message["From"] = SENDER
    message["To"] = to
    message["Subject"] = rendered.subject
    message["Date"] = format_datetime(datetime.fromtimestamp(now, UTC))
    message["Message-ID"] = f"<{message_id}>"
    message.set_content(rendered.text, charset="utf-8", cte="quoted-printable")
    if rendered.html is not None:
        message.add_alternative(rendered.html, subtype="html", charset="utf-8", cte="quoted-printable")
    return message.as_bytes(), to.encode(), message_id.encode()


async def run_bare(port: int, n: int, connections: int, checks: Path) -> dict[str, Any]:
    data, to, message_id = sample_message(load_config(checks, {}))
    head, _, tail = data.partition(b"To: " + to + b"\r\n")
    middle, _, tail = tail.partition(b"Message-ID: <" + message_id + b">\r\n")
    domain = message_id.partition(b"@")[2]
    clients = [
        aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False, timeout=30)
        for _ in range(connections)
    ]
    next_i = 0
    sent = 0
    sizes = 0

    async def sender(client: aiosmtplib.SMTP) -> None:
        nonlocal next_i, sent, sizes
        await client.connect()
        while next_i < n:
            i, next_i = next_i, next_i + 1
            somebody = person(i)
            address = somebody.email or ""
            key = outbox_key(1, "acknowledge", somebody.id).encode()
            body = b"".join(
                (
                    head,
                    b"To: ",
                    address.encode(),
                    b"\r\n",
                    middle,
                    b"Message-ID: <",
                    key,
                    b"@",
                    domain,
                    b">\r\n",
                    tail,
                )
            )
            errors, _ = await client.sendmail(SENDER, [address], body)
            if not errors:
                sent += 1
                sizes += len(body)
        await client.quit()

    with Stopwatch() as watch:
        await asyncio.gather(*(sender(c) for c in clients))
    return {
        "role": "bare",
        "messages": sent,
        "seconds": watch.wall,
        "per_s": sent / watch.wall,
        "cpu_s": watch.cpu,
        "mean_bytes": sizes / max(1, sent),
        "peak_rss_mb": memory_mb("VmHWM"),
    }


# --- the monitor -------------------------------------------------------------------------------


async def run_monitor(
    port: int, directory: Path, connections: int, concurrency: int, profile: Path | None = None
) -> dict[str, Any]:
    configure("INFO", stream=open(os.devnull, "w"), environ={})  # noqa: SIM115 (lives as long as we do)
    config = load_config(directory / "checks", {})
    settings = config.settings
    clock = OffsetClock()
    store = SQLiteStore(directory / "monitor.db")
    info = systems_info(config)
    metrics = Metrics()
    monitor = Monitor(config, store, clock)
    notifier = Notifier(
        store=store,
        composer=composer_for(config),
        settings=settings,
        systems=info,
        correlator=Correlator(
            {n: s.depends_on for n, s in config.systems.items()}, settings.correlation_window
        ),
        clock=clock,
    )
    email = EmailChannel.from_url(
        f"smtp://127.0.0.1:{port}?starttls=never", SENDER, pool_size=connections, clock=clock
    )
    delivery = Delivery(
        store,
        Channels(email=email, message_domain=settings.org.message_domain),
        clock,
        concurrency=concurrency,
    )
    # Wired as monitor.app.App wires them.
    monitor.on_transition.append(notifier.on_transition)
    notifier.on_decided.append(lambda _items: delivery.wake())

    def count(item: OutboxItem, outcome: str) -> None:
        channel = (item.sent_via or (item.channels[0] if item.channels else "none:")).split(":")[0]
        metrics.messages.labels(channel=channel, kind=item.kind, outcome=outcome).inc()

    delivery.on_outcome.append(count)

    for _ in range(config.systems["payment"].fail_after):
        monitor.observe(ProbeResult("payment", False, "status 503, expected 200", clock.now(), 0.01))
    assert monitor.states["payment"].health is Health.DOWN
    await notifier.tick()  # the incident opens; nobody is told before notify_after
    assert store.pending_count() == 0
    clock.advance(settings.notify_after + 1)
    rss_before = memory_mb("VmRSS")
    profiler = cProfile.Profile() if profile else None
    if profiler:
        profiler.enable()

    with Stopwatch() as decide:
        await notifier.tick()
    decided = store.pending_count()
    with Stopwatch() as send:
        rounds = 0
        while await delivery.run_once():
            rounds += 1
            if rounds > decided + 10:  # every round sends at least one: this cannot be
                raise RuntimeError("delivery did not settle")
    if profiler:
        profiler.disable()
        profiler.dump_stats(profile)
    await email.close()
    counts = store.outbox_counts()
    left = store.pending_count()
    store.close()
    sent = counts.get("acknowledge", {}).get("sent", 0)
    whole = decide.wall + send.wall
    return {
        "role": "monitor",
        "decided": decided,
        "messages": sent,
        "pending_after": left,
        "outbox": counts,
        "decide_s": decide.wall,
        "decide_per_s": decided / decide.wall,
        "decide_cpu_s": decide.cpu,
        "send_s": send.wall,
        "send_per_s": sent / send.wall,
        "send_cpu_s": send.cpu,
        "seconds": whole,
        "per_s": sent / whole,
        "rss_before_mb": rss_before,
        "peak_rss_mb": memory_mb("VmHWM"),
    }


# --- the whole run -----------------------------------------------------------------------------


def child(role: str, args: argparse.Namespace, port: int, directory: Path) -> dict[str, Any]:
    command = [
        sys.executable,
        __file__,
        "--role",
        role,
        "--port",
        str(port),
        "--dir",
        str(directory),
        "--people",
        str(args.people),
        "--connections",
        str(args.connections),
        "--concurrency",
        str(args.concurrency),
    ]
    if role == "monitor" and args.profile:
        command += ["--profile", str(args.profile.resolve())]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=CHILD_TIMEOUT, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"{role} failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


class Sink:
    """benchmarks/smtp_sink.py in a process of its own."""

    def __enter__(self) -> Sink:
        self.process = subprocess.Popen(
            [sys.executable, str(HERE / "smtp_sink.py")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline().split()
        if line[:1] != ["ready"]:
            self.process.kill()
            raise SystemExit("the SMTP sink did not start")
        self.port = int(line[1])
        return self

    def counts(self) -> dict[str, int]:
        """Stop the sink; what it accepted."""
        out, _ = self.process.communicate(timeout=30)
        counts: dict[str, int] = json.loads(out.strip().splitlines()[-1])
        return counts

    def __exit__(self, *_: object) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def prepare(directory: Path, n: int) -> float:
    write_checks(directory / "checks")
    store = SQLiteStore(directory / "monitor.db")
    started = time.perf_counter()
    store.upsert_people(people(n))
    store.close()
    return time.perf_counter() - started


def report(args: argparse.Namespace, bare: dict[str, Any], mon: dict[str, Any], sink: dict[str, int]) -> None:
    ratio = mon["per_s"] / bare["per_s"]
    n = args.people
    print(
        f"fan-out of {n:,} acknowledgements, {args.connections} SMTP connections "
        f"(delivery concurrency {args.concurrency}), {os.cpu_count()} cores, Python "
        f"{sys.version.split()[0]}"
    )
    rows = [
        ("monitor: decide (render + outbox)", mon["decided"], mon["decide_s"], mon["decide_cpu_s"]),
        ("monitor: send (outbox -> SMTP)", mon["messages"], mon["send_s"], mon["send_cpu_s"]),
        (
            "monitor: whole fan-out",
            mon["messages"],
            mon["seconds"],
            mon["decide_cpu_s"] + mon["send_cpu_s"],
        ),
        ("bare aiosmtplib loop (ceiling)", bare["messages"], bare["seconds"], bare["cpu_s"]),
    ]
    print(f"{'':36} {'messages':>9} {'seconds':>8} {'msg/s':>8} {'CPU s':>7}")
    for label, count, seconds, cpu in rows:
        print(f"{label:36} {count:>9,} {seconds:>8.1f} {count / seconds:>8,.0f} {cpu:>7.1f}")
    print(
        f"mean message size: monitor {(sink['bytes'] - bare['mean_bytes'] * bare['messages']) / max(1, mon['messages']):,.0f} B, "
        f"bare {bare['mean_bytes']:,.0f} B; the sink accepted {sink['messages']:,} "
        f"(expected {bare['messages'] + mon['messages']:,})"
    )
    targets = [
        (f"whole fan-out / ceiling = {ratio:.2f}", ratio >= 0.7, ">= 0.7"),
        (f"whole fan-out = {mon['per_s']:,.0f} messages/s", mon["per_s"] >= 1000, ">= 1,000"),
        (
            f"peak RSS of the monitor = {mon['peak_rss_mb']:.0f} MB "
            f"({mon['rss_before_mb']:.0f} MB before the fan-out)",
            mon["peak_rss_mb"] <= 200,
            "<= 200 MB",
        ),
    ]
    for text, met, goal in targets:
        print(f"{text:64} target {goal:9} {'met' if met else 'MISSED'}")
    if mon["pending_after"] or mon["messages"] != n:
        print(f"WARNING: {mon['messages']:,} sent of {n:,}; outbox: {mon['outbox']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--connections", type=int, default=4, help="SMTP connections (pool)")
    parser.add_argument(
        "--concurrency", type=int, default=Delivery.concurrency, help="delivery's bound"
    )
    parser.add_argument("--keep", type=Path, help="build the world here and keep it")
    parser.add_argument("--role", choices=["bare", "monitor"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int)
    parser.add_argument("--dir", type=Path)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON too")
    parser.add_argument("--profile", type=Path, help="cProfile the monitor's fan-out into FILE")
    args = parser.parse_args()

    if args.role == "bare":
        out = asyncio.run(run_bare(args.port, args.people, args.connections, args.dir / "checks"))
        print(json.dumps(out))
        return
    if args.role == "monitor":
        out = asyncio.run(
            run_monitor(args.port, args.dir, args.connections, args.concurrency, args.profile)
        )
        print(json.dumps(out))
        return

    directory = args.keep or Path(tempfile.mkdtemp(prefix="fanout-"))
    try:
        imported = prepare(directory, args.people)
        print(f"imported {args.people:,} people in {imported:.1f}s", file=sys.stderr)
        with Sink() as sink:
            bare = child("bare", args, sink.port, directory)
            print(f"bare: {bare['per_s']:,.0f} messages/s", file=sys.stderr)
            mon = child("monitor", args, sink.port, directory)
            accepted = sink.counts()
    finally:
        if args.keep is None:
            shutil.rmtree(directory, ignore_errors=True)
    report(args, bare, mon, accepted)
    if args.json:
        print(json.dumps({"bare": bare, "monitor": mon, "sink": accepted}))


if __name__ == "__main__":
    main()
