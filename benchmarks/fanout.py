"""Fan-out throughput and memory: one incident to 100,000 people, against a bare aiosmtplib loop.

    python benchmarks/fanout.py                        # 100,000 people, 8 SMTP connections
    python benchmarks/fanout.py --people 5000          # a quick check
    python benchmarks/fanout.py --sequential           # decide everything, then send
    python benchmarks/fanout.py --db postgresql        # the store in a throwaway PostgreSQL
    python benchmarks/fanout.py --dkim rsa             # each message DKIM-signed (or ed25519)

Everything runs on 127.0.0.1, each part in a process of its own, one after the other:

- ``smtp_sink.py``: a minimal aiosmtpd server that says 250 to every message and keeps none.
  It counts what it accepted, so the run checks that every message arrived.
- ``bare`` (the ceiling): a plain aiosmtplib loop, one sender per connection, sending as many
  messages as the monitor does, each the size of the monitor's (rendered by the real composer,
  built as the email channel builds it) with its own ``To`` and a Message-ID in the monitor's
  style (``<incident-1.acknowledge.u000042@example.com>``). Half of them go before the
  monitor's run and half after, so a machine getting busier or quieter weighs on both alike.
- ``monitor`` (measured): the people, subscribers of ``payment``, are imported beforehand with
  ``store.upsert_people`` into a SQLite file in a temp dir (``--db postgresql``: into a database
  of a throwaway local cluster, ``tests/postgres.py``, with PostgreSQL's durable defaults). The
  process opens it with the real store (``SQLiteStore``; ``PostgresStore`` by ``open_store``),
  makes ``payment`` DOWN through ``Monitor.observe``, moves its clock past ``notify_after`` and
  runs the fan-out as the app does: ``Notifier.tick`` decides (who is
  affected, each message rendered by the real ``Composer`` from the repo's ``messages/`` and
  committed to the outbox) while ``Delivery.run``, woken by each decided batch, sends through
  the real ``EmailChannel`` with a pool of ``--connections``. The *decide* phase ends when the
  last decision is committed, the *send* phase when the last message is accepted; with
  ``--sequential`` the two run one after the other, each alone. Logs go to /dev/null as JSON
  and every outcome is counted in ``Metrics``, as in the app. Peak RSS is ``VmHWM``; CPU
  seconds are the monitor process's own (a PostgreSQL server's are not in them).

``--dkim rsa|ed25519`` signs each of the monitor's messages with a new RSA-2048 or Ed25519 key
(the ceiling's carry one signature, made once, so the sizes match): what signing costs.

``--role bare|monitor`` runs one measurement against ``--port`` and prints JSON (handy under a
profiler; ``monitor`` needs ``--dir`` prepared by a run with ``--keep DIR``, and changes it;
with ``--db postgresql`` it needs the prepared database's URL in ``BENCH_PG_URL`` too).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import inspect
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import aiosmtplib

from monitor.app import systems_info
from monitor.cli import run_on_fastest_loop
from monitor.config import Config, load_config
from monitor.delivery.channels import EmailChannel
from monitor.delivery.channels.dkim_signing import DkimSigner, parse_key
from monitor.delivery.channels.email import AUTO_SUBMITTED, Letterhead, unsubscribe_headers
from monitor.delivery.sender import Channels, Delivery
from monitor.incidents.correlation import Correlator
from monitor.logs import configure
from monitor.metrics import Metrics
from monitor.model import (
    Address,
    Clock,
    Health,
    IncidentView,
    MessageKind,
    Person,
    ProbeResult,
    Reason,
    Recipient,
    SystemClock,
)
from monitor.notify.composer import Composer
from monitor.notify.notifier import Notifier, outbox_key
from monitor.probing.runtime import Monitor
from monitor.store import OutboxItem, SQLiteStore, Store
from monitor.store.location import postgres_location
from monitor.store.opening import open_store
from monitor.subscriptions.tokens import LinkState

# tests/postgres.py, the throwaway cluster the tests use, serves --db postgresql.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from postgres import DURABLE_SETTINGS, Cluster, start_cluster

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
MESSAGES = REPO / "messages"
SENDER = "status@example.com"
# The monitor's SMTP pool when MONITOR_SMTP_URL does not say ?pool=N.
DEFAULT_POOL: int = inspect.signature(EmailChannel.from_url).parameters["pool_size"].default
CHILD_TIMEOUT = 900.0  # seconds; a run that takes longer is broken, not slow
BACKENDS = ("sqlite", "postgresql")
# The database's URL (with its password) reaches a child by environment, never by argv.
URL_VARIABLE = "BENCH_PG_URL"

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


async def world_store(directory: Path, url: str | None) -> Store:
    """The store the world lives in: ``monitor.db`` in ``directory``, or the PostgreSQL
    database at ``url``, opened as the app opens it."""
    if url is None:
        return SQLiteStore(directory / "monitor.db")
    return await open_store(postgres_location(url))


def url_given(db: str) -> str | None:
    """A child's database URL: none for SQLite, else what the parent put in ``BENCH_PG_URL``."""
    if db == "sqlite":
        return None
    url = os.environ.get(URL_VARIABLE)
    if not url:
        raise SystemExit(f"--db {db} needs the database's URL in {URL_VARIABLE}")
    return url


def backend_name(cluster: Cluster) -> str:
    """``PostgreSQL 15.18 (durable defaults)``, as the header line names the store."""
    version = cluster.sql("SHOW server_version").split()[0]  # "15.18 (Debian 15.18-0+deb12u1)"
    return f"PostgreSQL {version} (durable defaults)"


def links_for(clock: Clock) -> LinkState:
    """The signed links the app puts in each message once public_url and MONITOR_LINK_SECRET
    are set: each person's manage link in the text and html, and List-Unsubscribe."""
    links = LinkState({"MONITOR_LINK_SECRET": "bench-link-secret-" * 3}, clock)
    links.configure("https://status.example.com")
    return links


def composer_for(config: Config, links: LinkState) -> Composer:
    settings = config.settings
    return Composer(
        MESSAGES,
        settings.org,
        systems_info(config),
        update_every=settings.update_every,
        manage_link=links.manage_link(),
    )


# --- the ceiling: a bare aiosmtplib loop -------------------------------------------------------


def write_dkim_key(path: Path, algorithm: str) -> None:
    """A new private key for ``--dkim``, as an operator makes one with openssl."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    key = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if algorithm == "rsa"
        else ed25519.Ed25519PrivateKey.generate()
    )
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def letterhead_for(config: Config, directory: Path, dkim: bool) -> Letterhead:
    """The org's name and support address, as the app's; signed with ``--dkim``'s key."""
    org = config.settings.org
    signer = None
    if dkim:
        key = parse_key((directory / "dkim.pem").read_text())
        signer = DkimSigner(key, "bench", org.message_domain)
    return Letterhead(org.name, org.support_email, signer)


def sample_message(config: Config, head: Letterhead) -> tuple[bytes, bytes, bytes]:
    """One acknowledgement as the monitor would send it, as bytes, and the To and Message-ID
    values in it (to be replaced per message); signed once with ``head``'s signer."""
    links = links_for(SystemClock())
    composer = composer_for(config, links)
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
    message["From"] = f"{head.name} <{SENDER}>"
    message["To"] = to
    message["Subject"] = rendered.subject
    message["Date"] = format_datetime(datetime.fromtimestamp(now, UTC))
    message["Message-ID"] = f"<{message_id}>"
    if head.reply_to:
        message["Reply-To"] = head.reply_to
    message["Auto-Submitted"] = AUTO_SUBMITTED
    assert links.links is not None
    url = links.links.manage_url(somebody.id)
    for name, value in unsubscribe_headers(url):
        message[name] = value
    message.set_content(rendered.text, charset="utf-8", cte="quoted-printable")
    if rendered.html is not None:
        message.add_alternative(
            rendered.html, subtype="html", charset="utf-8", cte="quoted-printable"
        )
    data = message.as_bytes()
    if head.signer is not None:
        fields = ["From", "To", "Subject", "Date", "Message-ID", "Reply-To", "Auto-Submitted"]
        fields += [name for name, _ in unsubscribe_headers(url)]
        mime = ["MIME-Version", "Content-Type", "Content-Transfer-Encoding"]
        data = head.signer.sign(data, fields + mime)  # as the channel signs each
    return data, to.encode(), message_id.encode()


async def run_bare(
    port: int, first: int, n: int, connections: int, directory: Path, dkim: bool
) -> dict[str, Any]:
    """Send ``n`` messages, to people ``first`` on, one sender per connection."""
    config = load_config(directory / "checks", {})
    data, to, message_id = sample_message(config, letterhead_for(config, directory, dkim))
    head, _, tail = data.partition(b"To: " + to + b"\r\n")
    middle, _, tail = tail.partition(b"Message-ID: <" + message_id + b">\r\n")
    domain = message_id.partition(b"@")[2]
    clients = [
        aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False, timeout=30)
        for _ in range(connections)
    ]
    next_i = first
    sent = 0
    sizes = 0

    async def sender(client: aiosmtplib.SMTP) -> None:
        nonlocal next_i, sent, sizes
        await client.connect()
        while next_i < first + n:
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
    port: int,
    directory: Path,
    connections: int,
    concurrency: int,
    overlap: bool = True,
    profile: Path | None = None,
    url: str | None = None,
    dkim: bool = False,
) -> dict[str, Any]:
    config = load_config(directory / "checks", {})
    settings = config.settings
    clock = OffsetClock()
    store = await world_store(directory, url)
    info = systems_info(config)
    metrics = Metrics()
    monitor = Monitor(config, store, clock)
    links = links_for(clock)
    await monitor.restore()
    notifier = Notifier(
        store=store,
        composer=composer_for(config, links),
        settings=settings,
        systems=info,
        correlator=Correlator(
            {n: s.depends_on for n, s in config.systems.items()}, settings.correlation_window
        ),
        clock=clock,
    )
    email = EmailChannel.from_url(
        f"smtp://127.0.0.1:{port}?starttls=never",
        SENDER,
        pool_size=connections,
        clock=clock,
        letterhead=letterhead_for(config, directory, dkim),
    )
    delivery = Delivery(
        store,
        Channels(email=email, message_domain=settings.org.message_domain),
        clock,
        concurrency=concurrency,
    )
    # Wired as monitor.app.App wires them (the notifier reads the transitions from the store).
    notifier.on_decided.append(lambda _items: delivery.wake())
    email.list_unsubscribe = links.list_unsubscribe  # List-Unsubscribe, as the app's

    def count(item: OutboxItem, outcome: str, address: Address | None) -> None:
        channel = address.kind if address is not None else "none"
        metrics.messages.labels(channel=channel, kind=item.kind, outcome=outcome).inc()

    delivery.on_outcome.append(count)

    for _ in range(config.systems["payment"].fail_after):
        monitor.observe(
            ProbeResult("payment", False, "status 503, expected 200", clock.now(), 0.01)
        )
    assert monitor.states["payment"].health is Health.DOWN
    await monitor.flush()  # the transition saved, as the app does at the loop's next turn
    await notifier.tick()  # the incident opens; nobody is told before notify_after
    assert await store.pending_count() == 0
    clock.advance(settings.notify_after + 1)
    rss_before = memory_mb("VmRSS")
    profiler = cProfile.Profile() if profile else None
    if profiler:
        profiler.enable()
    if overlap:
        phases = await overlapped(notifier, delivery, store)
    else:
        phases = await one_after_the_other(notifier, delivery, store)
    if profiler and profile:
        profiler.disable()
        profiler.dump_stats(profile)
    await email.close()
    counts = await store.outbox_counts()
    left = await store.pending_count()
    await store.close()
    sent = counts.get("acknowledge", {}).get("sent", 0)
    return {
        "role": "monitor",
        "mode": "overlap" if overlap else "sequential",
        **phases,
        "messages": sent,
        "per_s": sent / phases["seconds"],
        "pending_after": left,
        "outbox": counts,
        "rss_before_mb": rss_before,
        "peak_rss_mb": memory_mb("VmHWM"),
    }


async def one_after_the_other(
    notifier: Notifier, delivery: Delivery, store: Store
) -> dict[str, Any]:
    """Decide everything, then send everything: each phase's cost on its own."""
    with Stopwatch() as decide:
        await notifier.tick()
    decided = await store.pending_count()
    with Stopwatch() as send:
        rounds = 0
        while await delivery.run_once():
            rounds += 1
            if rounds > decided + 10:  # every round sends at least one: this cannot be
                raise RuntimeError("delivery did not settle")
    return {
        "decided": decided,
        "decide_s": decide.wall,
        "decide_cpu_s": decide.cpu,
        "sent_while_deciding": 0,
        "send_s": send.wall,
        "send_cpu_s": send.cpu,
        "seconds": decide.wall + send.wall,
        "cpu_s": decide.cpu + send.cpu,
    }


async def overlapped(notifier: Notifier, delivery: Delivery, store: Store) -> dict[str, Any]:
    """As the app runs it: ``Delivery.run`` sends while the notifier is still deciding (each
    decided batch wakes it). The decide phase ends when the last decision is committed, the
    send phase when the last message is out."""
    finished = 0
    total: int | None = None
    done = asyncio.Event()

    def settle(_item: OutboxItem, outcome: str, _channel: Address | None) -> None:
        nonlocal finished
        if outcome in ("sent", "undeliverable"):
            finished += 1
            if total is not None and finished >= total:
                done.set()

    delivery.on_outcome.append(settle)
    stopping = False
    with Stopwatch() as whole:
        sender = asyncio.create_task(delivery.run(idle=0.1, stopping=lambda: stopping))
        with Stopwatch() as decide:
            await notifier.tick()
        sent_while_deciding = finished
        total = sum(
            n for by_status in (await store.outbox_counts()).values() for n in by_status.values()
        )
        if finished >= total:
            done.set()
        with Stopwatch() as rest:
            await asyncio.wait_for(done.wait(), CHILD_TIMEOUT)
        stopping = True
        delivery.wake()
        await sender
    return {
        "decided": total,
        "decide_s": decide.wall,
        "decide_cpu_s": decide.cpu,
        "sent_while_deciding": sent_while_deciding,
        "send_s": rest.wall,
        "send_cpu_s": rest.cpu,
        "seconds": whole.wall,
        "cpu_s": whole.cpu,
    }


# --- the whole run -----------------------------------------------------------------------------


def child(
    role: str,
    args: argparse.Namespace,
    port: int,
    directory: Path,
    first: int = 0,
    n: int = 0,
    url: str | None = None,
) -> dict[str, Any]:
    """Run one measurement in a process of its own; its figures."""
    command = [
        sys.executable,
        __file__,
        "--role",
        role,
        "--port",
        str(port),
        "--dir",
        str(directory),
        "--first",
        str(first),
        "--people",
        str(n or args.people),
        "--connections",
        str(args.connections),
        "--concurrency",
        str(args.concurrency),
        "--loop",
        args.loop,
        "--db",
        args.db,
    ]
    if role == "monitor" and args.profile:
        command += ["--profile", str(args.profile.resolve())]
    if role == "monitor" and args.sequential:
        command.append("--sequential")
    if args.dkim:
        command += ["--dkim", args.dkim]
    env = {**os.environ, URL_VARIABLE: url} if url else None
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=CHILD_TIMEOUT, check=False, env=env
    )
    if done.returncode != 0:
        raise SystemExit(f"{role} failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def combined(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """The two halves of the ceiling as one run."""
    messages = before["messages"] + after["messages"]
    seconds = before["seconds"] + after["seconds"]
    return {
        "role": "bare",
        "messages": messages,
        "seconds": seconds,
        "per_s": messages / seconds,
        "cpu_s": before["cpu_s"] + after["cpu_s"],
        "mean_bytes": (
            before["mean_bytes"] * before["messages"] + after["mean_bytes"] * after["messages"]
        )
        / max(1, messages),
        "halves_per_s": [before["per_s"], after["per_s"]],
        "peak_rss_mb": max(before["peak_rss_mb"], after["peak_rss_mb"]),
    }


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


async def prepare(directory: Path, n: int, url: str | None = None) -> float:
    write_checks(directory / "checks")
    store = await world_store(directory, url)
    started = time.perf_counter()
    await store.upsert_people(people(n))
    await store.close()
    return time.perf_counter() - started


def report(
    args: argparse.Namespace,
    bare: dict[str, Any],
    mon: dict[str, Any],
    sink: dict[str, int],
    backend: str = "SQLite",
) -> None:
    ratio = mon["per_s"] / bare["per_s"]
    n = args.people
    signed = {"rsa": ", DKIM-signed (RSA-2048)", "ed25519": ", DKIM-signed (Ed25519)"}
    print(
        f"fan-out of {n:,} acknowledgements, store {backend}, {args.connections} SMTP "
        f"connections (delivery concurrency {args.concurrency}), {os.cpu_count()} cores, Python "
        f"{sys.version.split()[0]}{signed.get(args.dkim or '', '')}"
    )
    early = mon["sent_while_deciding"]
    if mon["mode"] == "overlap":
        rows = [
            (f"decide, outbox filled ({early:,} sent by then)", mon["decided"], "decide"),
            ("send, the rest after that", mon["messages"] - early, "send"),
            ("whole fan-out (both at once, as in the app)", mon["messages"], ""),
        ]
    else:
        rows = [
            ("decide alone (render + outbox)", mon["decided"], "decide"),
            ("send alone (outbox -> SMTP)", mon["messages"], "send"),
            ("whole fan-out (decide, then send)", mon["messages"], ""),
        ]
    print(f"{'':54} {'messages':>9} {'seconds':>8} {'msg/s':>8} {'CPU s':>7}")
    for label, count, phase in rows:
        seconds = mon[f"{phase}_s" if phase else "seconds"]
        cpu = mon[f"{phase}_cpu_s" if phase else "cpu_s"]
        rate = count / seconds
        print(f"{'monitor: ' + label:54} {count:>9,} {seconds:>8.1f} {rate:>8,.0f} {cpu:>7.1f}")
    halves = " / ".join(f"{rate:,.0f}" for rate in bare.get("halves_per_s", []))
    label = f"bare aiosmtplib loop, the ceiling ({halves})"
    print(
        f"{label:54} {bare['messages']:>9,} {bare['seconds']:>8.1f} {bare['per_s']:>8,.0f} "
        f"{bare['cpu_s']:>7.1f}"
    )
    monitor_bytes = sink["bytes"] - bare["mean_bytes"] * bare["messages"]
    print(
        f"mean message: monitor {monitor_bytes / max(1, mon['messages']):,.0f} B, bare "
        f"{bare['mean_bytes']:,.0f} B; the sink accepted {sink['messages']:,} (expected "
        f"{bare['messages'] + mon['messages']:,}) using {sink.get('cpu_s', 0):.0f} s of CPU"
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
    parser.add_argument(
        "--connections",
        type=int,
        default=DEFAULT_POOL,
        help=f"SMTP connections, for the monitor's pool and the bare loop (default {DEFAULT_POOL}, "
        "the pool MONITOR_SMTP_URL gets without ?pool=)",
    )
    parser.add_argument(
        "--concurrency", type=int, default=Delivery.concurrency, help="delivery's bound"
    )
    parser.add_argument(
        "--loop",
        choices=["uvloop", "asyncio"],
        default="uvloop",
        help="event loop of both sides (default uvloop, as `monitor run` uses)",
    )
    parser.add_argument(
        "--db",
        choices=BACKENDS,
        default="sqlite",
        help="the monitor's store: a SQLite file (default) or a throwaway local PostgreSQL cluster",
    )
    parser.add_argument("--keep", type=Path, help="build the world here and keep it")
    parser.add_argument("--role", choices=["bare", "monitor"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--first", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--dir", type=Path)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON too")
    parser.add_argument("--profile", type=Path, help="cProfile the monitor's fan-out into FILE")
    parser.add_argument(
        "--sequential",
        action="store_true",
        help="decide everything, then send (each phase alone) instead of both at once",
    )
    parser.add_argument(
        "--dkim",
        choices=["rsa", "ed25519"],
        help="DKIM-sign each of the monitor's messages with a new key of this kind",
    )
    args = parser.parse_args()

    if args.role == "bare":
        out = run_on_fastest_loop(
            run_bare(
                args.port, args.first, args.people, args.connections, args.dir, bool(args.dkim)
            ),
            allow_uvloop=args.loop == "uvloop",
        )
        print(json.dumps(out))
        return
    if args.role == "monitor":
        # The app's JSON logs, written where they cost what they cost but are not kept.
        configure("INFO", stream=open(os.devnull, "w"), environ={})  # noqa: SIM115 (lives as long as we do)
        out = run_on_fastest_loop(
            run_monitor(
                args.port,
                args.dir,
                args.connections,
                args.concurrency,
                not args.sequential,
                args.profile,
                url_given(args.db),
                bool(args.dkim),
            ),
            allow_uvloop=args.loop == "uvloop",
        )
        print(json.dumps(out))
        return

    if args.db == "postgresql" and args.keep:
        parser.error("--keep keeps a SQLite world; the PostgreSQL cluster goes with the run")
    directory = args.keep or Path(tempfile.mkdtemp(prefix="fanout-"))
    try:
        with contextlib.ExitStack() as stack:
            url, backend = None, "SQLite"
            if args.db == "postgresql":
                cluster = stack.enter_context(start_cluster(DURABLE_SETTINGS))
                url, backend = cluster.url(), backend_name(cluster)
            imported = asyncio.run(prepare(directory, args.people, url))
            if args.dkim:
                write_dkim_key(directory / "dkim.pem", args.dkim)
            print(f"imported {args.people:,} people in {imported:.1f}s", file=sys.stderr)
            with Sink() as sink:
                # The ceiling's messages go half before the monitor's run and half after, so a
                # machine that gets busier or quieter meanwhile weighs on both alike.
                half = args.people // 2
                before = child("bare", args, sink.port, directory, 0, half)
                print(f"ceiling, first half: {before['per_s']:,.0f} messages/s", file=sys.stderr)
                mon = child("monitor", args, sink.port, directory, url=url)
                print(f"monitor: {mon['per_s']:,.0f} messages/s", file=sys.stderr)
                after = child("bare", args, sink.port, directory, half, args.people - half)
                print(f"ceiling, second half: {after['per_s']:,.0f} messages/s", file=sys.stderr)
                accepted = sink.counts()
            bare = combined(before, after)
    finally:
        if args.keep is None:
            shutil.rmtree(directory, ignore_errors=True)
    report(args, bare, mon, accepted, backend)
    if args.json:
        print(json.dumps({"bare": bare, "monitor": mon, "sink": accepted}))


if __name__ == "__main__":
    main()
