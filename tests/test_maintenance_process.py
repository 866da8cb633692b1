"""Planned work told exactly once by the real `monitor run`, killed -9 at the moments that
matter: a maintenance window written to ``checks/maintenance/`` while it runs, its notice due at
once (the work starts a few seconds later, ``notify_before: 1h``), a few hundred subscribers of
the system, some reading German. On SQLite one process is killed as the first notice reaches
the mail catcher (the fan-out's deciding under way), again halfway through the notices' sending,
and as the first note that the work is over arrives, and started again each time; on
PostgreSQL the leader of two replicas is killed at the first notice and at the first note, the
other one taking over. Every moment is a message reaching the catcher, never a sleep; the
window runs on real time (the process reads no other clock), so each wait for it is a bounded
poll of what the catcher or the database shows.
"""

from __future__ import annotations

import csv
import sqlite3
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from killable import Killable, until
from postgres import Database
from process import REPO, free_port, run_cli
from replicas_harness import DELIVERY_CONCURRENCY, Fleet, fleet
from targets import Target
from test_faults import kind_of, message_id, person_of
from test_process import write_checks

from monitor.demo.mailcatcher import CaughtMessage, MailCatcher

PEOPLE = 300
GERMAN = {f"p{i:03d}" for i in range(0, PEOPLE, 3)}  # every third person reads German
# The work starts this long after its file is written: the reload (500 ms debounce) and the
# leader's next tick (every second) come well before, so its notice is due and decided then.
LEAD_IN = 4.0
# How long the work lasts: a fan-out a kill cut off is finished only while it is under way, so
# this leaves a restart (or a takeover) several seconds of slack on a loaded machine.
LASTS = 9.0
SUBJECTS = {  # the subject's first words, by language: the notice, and the note once it is over
    ("en", "notice"): "Planned work on Online payments",
    ("de", "notice"): "Geplante Arbeiten an Online payments",
    ("en", "over"): "Planned work done: Online payments works as usual again",
    ("de", "over"): "Arbeiten abgeschlossen: Online payments geht wieder wie gewohnt",
}

WINDOW = """\
name: db-move
systems: [payment]
start: %s
end: %s
timezone: Europe/Berlin
note: We are moving the payment database to a faster server.
notify_before: 1h
"""


def write_people(path: Path, people: Iterable[str]) -> Path:
    """A people file for ``monitor users import``: each a subscriber of payment, every third
    reading German."""
    with path.open("w", newline="") as file:
        rows = csv.writer(file)
        rows.writerow(["id", "name", "email", "phone", "systems", "language"])
        for person in people:
            language = "de" if person in GERMAN else ""
            rows.writerow(
                [person, f"Person {person}", f"{person}@example.com", "", "payment", language]
            )
    return path


def write_window(checks: Path) -> tuple[float, float]:
    """Plan the work in ``checks/maintenance/db-move.yaml``, starting ``LEAD_IN`` from now and
    lasting ``LASTS``; its start and end (seconds since the epoch)."""
    start = time.time() + LEAD_IN
    end = start + LASTS
    folder = checks / "maintenance"
    folder.mkdir(exist_ok=True)
    written = folder / "db-move.yaml.tmp"
    written.write_text(WINDOW % (_iso(start), _iso(end)))
    written.rename(folder / "db-move.yaml")  # whole, so a reload never reads half of it
    return start, end


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="seconds")


@dataclass
class Tally:
    """What the catcher received of the planned work, by person."""

    messages: int
    repeats: int  # a Message-ID accepted again: only one the mail server had when a kill came


def tally(messages: list[CaughtMessage], people: set[str], kills_at: list[int]) -> Tally:
    """Each person: exactly one notice and then one note that it is over (one distinct
    Message-ID each, addressed to them alone, worded in their language); nobody else anything.
    A Message-ID may arrive again only if it first arrived before a kill (the mail server had
    it, the killed process had not marked it sent), at most ``DELIVERY_CONCURRENCY`` a kill."""
    ids: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    first_seen: dict[str, int] = {}
    for n, message in enumerate(messages):
        person, kind = person_of(message), kind_of(message)
        assert message.rcpt_tos == (f"{person}@example.com",), message.rcpt_tos
        assert message_id(message).startswith("<maintenance-db-move-"), message_id(message)
        language = "de" if person in GERMAN else "en"
        assert message.subject.startswith(SUBJECTS[language, kind]), (person, message.subject)
        assert f'<html lang="{language}">' in (message.html or ""), (person, kind)
        ids[person][kind].add(message_id(message))
        first_seen.setdefault(f"{person} {kind}", n)
    assert set(ids) == people, sorted(set(ids) ^ people)[:10]
    counts = {p: {k: len(v) for k, v in kinds.items()} for p, kinds in ids.items()}
    wrong = {p: c for p, c in counts.items() if c != {"notice": 1, "over": 1}}
    assert not wrong, list(wrong.items())[:10]
    late = [p for p in people if first_seen[f"{p} over"] < first_seen[f"{p} notice"]]
    assert not late, f"told it is over before the notice: {late[:5]}"
    arrivals = Counter(message_id(m) for m in messages)
    repeated = {key: n - 1 for key, n in arrivals.items() if n > 1}
    for key in repeated:
        first = next(n for n, m in enumerate(messages) if message_id(m) == key)
        assert any(first < killed_at for killed_at in kills_at), f"{key} repeated with no kill"
    assert sum(repeated.values()) <= DELIVERY_CONCURRENCY * len(kills_at), repeated
    return Tally(len(messages), sum(repeated.values()))


def kill_on_mail(catcher: MailCatcher, kind: str, count: int, kill: Callable[[], None]) -> None:
    """``kill()`` as the catcher accepts the ``count``-th message of ``kind`` (``notice`` or
    ``over``) from now on: the mail server has it, the sender has not heard "250 OK"."""
    seen = 0

    def arrived(message: CaughtMessage) -> None:
        nonlocal seen
        seen += kind_of(message) == kind
        if seen >= count:
            catcher.on_message = None
            kill()

    catcher.on_message = arrived


def people_with(catcher: MailCatcher, kind: str) -> set[str]:
    return {person_of(m) for m in catcher.messages if kind_of(m) == kind}


# SQLite: one process, killed and started again ----------------------------------------------


def sqlite_counts(db: Path) -> dict[str, int]:
    """What the database holds of the planned work: notices and notes decided, and sent."""
    with closing(sqlite3.connect(db)) as conn:
        rows = conn.execute(
            "SELECT kind, status, count(*) FROM outbox GROUP BY kind, status"
        ).fetchall()
    counts: dict[str, int] = Counter()
    for kind, status, n in rows:
        counts[f"{kind} decided"] += n
        counts[f"{kind} {status}"] += n
    return dict(counts)


def sqlite_notice(db: Path) -> tuple[float | None, float | None]:
    """The occurrence's record: when it was announced (every notice decided) and told over."""
    with closing(sqlite3.connect(db)) as conn:
        row = conn.execute("SELECT announced_at, over_at FROM maintenance_notices").fetchone()
    return (None, None) if row is None else (row[0], row[1])


async def test_planned_work_killed_mid_fan_out_tells_each_subscriber_once_in_their_language(
    tmp_path: Path,
) -> None:
    """`monitor run` on SQLite, killed -9 as the first notice of planned work arrives (its
    deciding under way), again halfway through the notices' sending, and as the first note
    that the work is over arrives, started again each time: every subscriber gets exactly one
    notice and, once the work is over, exactly one note saying so, each in their language (a
    Message-ID repeated only for what the mail server had when a kill came), and nothing is
    left pending."""
    people = {f"p{i:03d}" for i in range(PEOPLE)}
    db = tmp_path / "monitor.db"
    code, _, err = await run_cli(
        "users",
        "import",
        str(write_people(tmp_path / "people.csv", sorted(people))),
        "--db",
        str(db),
    )
    assert code == 0, err
    async with MailCatcher() as catcher, Target() as target:
        checks = write_checks(tmp_path / "checks", target.url_for("/healthz"))
        port = free_port()
        env = {
            "MONITOR_CONFIG": str(checks),
            "MONITOR_MESSAGES": str(REPO / "messages"),
            "MONITOR_DB": str(db),
            "MONITOR_LISTEN": f"127.0.0.1:{port}",
            "MONITOR_SMTP_URL": catcher.url,
            "MONITOR_SMTP_FROM": "status@example.com",
        }
        monitor = Killable(env, f"http://127.0.0.1:{port}")
        kills_at: list[int] = []

        async def killed_and_restarted(moment: str) -> dict[str, int]:
            await monitor.killed(moment)
            kills_at.append(len(catcher.messages))
            counts = sqlite_counts(db)
            await monitor.start()
            return counts

        await monitor.start()
        try:
            await until("the monitor ready", ready(monitor), explain=monitor.tail)
            # (a) As the first notice arrives: the fan-out has decided a batch or a few.
            kill_on_mail(catcher, "notice", 1, lambda: monitor.kill("(a) the first notice"))
            start, end = write_window(checks)
            await until(
                "the planned work loaded",
                lambda: monitor.kills or lists_the_window(monitor),
                deadline=LEAD_IN,
                explain=monitor.tail,
            )
            at_first = await killed_and_restarted("(a) the first notice")

            # (b) Halfway through the notices, the server a little slow (sends overlap).
            catcher.delay = 0.005
            kill_on_mail(
                catcher,
                "notice",
                PEOPLE // 2 - len(people_with(catcher, "notice")),
                lambda: monitor.kill("(b) half the notices out"),
            )
            at_half = await killed_and_restarted("(b) half the notices out")
            catcher.delay = 0.0
            await until(
                "every subscriber's notice sent",
                lambda: (
                    people_with(catcher, "notice") == people
                    and sqlite_counts(db).get("maintenance pending", 0) == 0
                ),
                explain=monitor.tail,
            )
            assert sqlite_notice(db)[0] is not None  # announced: every notice decided

            # (c) As the first note that the work is over arrives, once it is over.
            kill_on_mail(catcher, "over", 1, lambda: monitor.kill("(c) the first note"))
            await monitor.killed("(c) the first note", deadline=end - time.time() + 60)
            kills_at.append(len(catcher.messages))
            at_over = sqlite_counts(db)
            await monitor.start()
            await until(
                "everyone told it is over",
                lambda: (
                    people_with(catcher, "over") == people
                    and sqlite_counts(db).get("maintenance-over pending", 0) == 0
                ),
                explain=monitor.tail,
            )
            assert all(sqlite_notice(db))  # announced, and told over
        finally:
            await monitor.stop()
    assert monitor.process is not None
    assert monitor.process.returncode == 0, monitor.tail()
    assert monitor.kills == [
        "(a) the first notice",
        "(b) half the notices out",
        "(c) the first note",
    ]
    counts = sqlite_counts(db)
    assert counts == {
        "maintenance decided": PEOPLE,
        "maintenance sent": PEOPLE,
        "maintenance-over decided": PEOPLE,
        "maintenance-over sent": PEOPLE,
    }
    result = tally(catcher.messages, people, kills_at)
    print(
        f"\nkilled after {kills_at} messages; decided then {at_first}, {at_half}, {at_over}; "
        f"{result.messages} messages, {result.repeats} repeated Message-IDs; "
        f"work from {_iso(start)} to {_iso(end)}"
    )


async def lists_the_window(monitor: Killable) -> bool:
    """The running monitor has the planned work: its reload took the new file (a reload that
    refuses it, a template being broken, say, shows in the log this fails with)."""
    found = await monitor.get("/api/v1/maintenance")
    return found is not None and any(w["id"] == "db-move" for w in found["windows"])


def ready(monitor: Killable) -> Callable[[], object]:
    async def check() -> bool:
        status, body = await monitor.readyz()
        return status == 200 and body.startswith("ready")

    return check


# PostgreSQL: two replicas, the leader killed and the other taking over ----------------------


async def postgres_counts(database: Database) -> dict[str, int]:
    """As ``sqlite_counts``, from the shared database."""
    async with await psycopg.AsyncConnection.connect(database.url) as conn:
        cursor = await conn.execute("SELECT kind, status, count(*) FROM outbox GROUP BY 1, 2")
        rows = await cursor.fetchall()
    counts: dict[str, int] = Counter()
    for kind, status, n in rows:
        counts[f"{kind} decided"] += n
        counts[f"{kind} {status}"] += n
    return dict(counts)


async def all_sent(stage: Fleet, kind: str) -> bool:
    """Everyone has a message of ``kind`` (``notice``, ``over``) and none is pending."""
    if stage.people_with(kind) != stage.people:
        return False
    pending = "maintenance pending" if kind == "notice" else "maintenance-over pending"
    return (await postgres_counts(stage.database)).get(pending, 0) == 0


async def test_replicas_whose_leader_is_killed_mid_maintenance_fan_out_tell_each_one_once(
    tmp_path: Path, pg_database: Database
) -> None:
    """Two replicas on PostgreSQL: the leader is killed -9 as the first notice of planned work
    arrives (its deciding under way), the other takes over the lead and finishes the fan-out;
    the killed one is started again, and the new leader is killed as the first note that the
    work is over arrives, the first finishing that: every subscriber gets exactly one notice
    and one note, in their language, and nothing is left pending."""
    people = {f"p{i:03d}" for i in range(PEOPLE)}
    code, _, err = await run_cli(
        "users",
        "import",
        str(write_people(tmp_path / "people.csv", sorted(people))),
        "--db",
        pg_database.url,
    )
    assert code == 0, err
    async with fleet(tmp_path, pg_database) as stage:
        stage.people = people
        await stage.start("a")
        await stage.until("a leads", lambda: stage.leader() is stage.replicas["a"])
        await stage.start("b")
        await stage.until("two replicas share the checks", lambda: stage.settled({"a", "b"}))
        kills_at: list[int] = []

        stage.kill_leader_on_mail("(a) the first notice", "notice", 1)
        start, end = write_window(stage.config)
        leader = stage.replicas["a"]
        await until(
            "the planned work loaded",
            lambda: leader.kills or lists_the_window(leader),
            deadline=LEAD_IN,
            explain=leader.tail,
        )
        first, _ = await stage.killed("(a) the first notice")
        kills_at.append(len(stage.catcher.messages))
        at_first = await postgres_counts(pg_database)
        lead_waits = [await stage.lead_taken_over(first)]
        await stage.until("every subscriber's notice sent", lambda: all_sent(stage, "notice"))
        await stage.start(first.name)  # as an orchestrator restarts it
        await stage.until("two replicas again", lambda: stage.settled({"a", "b"}))

        stage.kill_leader_on_mail("(b) the first note", "over", 1)
        second, _ = await stage.killed("(b) the first note")
        kills_at.append(len(stage.catcher.messages))
        at_over = await postgres_counts(pg_database)
        lead_waits.append(await stage.lead_taken_over(second))
        await stage.until("everyone told it is over", lambda: all_sent(stage, "over"))
        codes = await stage.stop()
    assert (first.name, second.name) == ("a", "b")
    assert codes == {"a": 0, "b": -9}
    assert await postgres_counts(pg_database) == {
        "maintenance decided": PEOPLE,
        "maintenance sent": PEOPLE,
        "maintenance-over decided": PEOPLE,
        "maintenance-over sent": PEOPLE,
    }
    async with await psycopg.AsyncConnection.connect(pg_database.url) as conn:
        cursor = await conn.execute(
            "SELECT announced_at IS NOT NULL, over_at IS NOT NULL FROM maintenance_notices"
        )
        assert await cursor.fetchall() == [(True, True)]  # one occurrence, announced, told over
    result = tally(stage.catcher.messages, people, kills_at)
    print(
        f"\nkilled after {kills_at} messages; decided then {at_first}, {at_over}; lead taken "
        f"after {lead_waits} s; {result.messages} messages, {result.repeats} repeated "
        f"Message-IDs; work from {_iso(start)} to {_iso(end)}"
    )
