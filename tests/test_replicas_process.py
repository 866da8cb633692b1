"""Several replicas on one PostgreSQL (issue #16), as real `monitor run` processes on a real
server: kill -9 at each moment that matters, two replicas starting together on an empty
database, a replica cut off from the database, and two processes claiming one name. Every
moment is recognised by a log line, a message reaching the mail catcher or an HTTP answer,
never by sleeping; the stage is tests/replicas_harness.py (check files: probes every 300 ms,
``replicas: {heartbeat: 200ms, takeover: 2s}``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from postgres import Database
from process import free_port, run_cli
from replicas_harness import (
    DELIVERY_CONCURRENCY,
    SYSTEMS,
    fleet,
    is_event,
    is_transition,
)
from tcp_proxy import TcpProxy
from test_faults import metric

from monitor.store.migrations import migrations

PEOPLE = 2000


@pytest.mark.timeout(300)
async def test_three_replicas_each_killed_at_a_moment_that_matters_tell_everyone_exactly_once(
    tmp_path: Path, pg_database: Database
) -> None:
    """Three replicas, 2,000 people, payment down then up; kill -9 (a) the replica probing
    payment as it sees it DOWN, before the hold ends, (d) the leader as it opens the incident,
    (b) the leader a third of the way through the acknowledgements and (c) a third of the way
    through the resolved messages: each dead replica's checks are probed by another within
    the takeover time plus an interval, and each person gets one acknowledgement and one
    resolved message (a Message-ID repeated at most for what a killed sender had in flight),
    from one incident. Each killed replica is restarted under its name (as an orchestrator
    restarts a container) once its checks are taken over, except the last."""
    async with fleet(tmp_path, pg_database, PEOPLE, notify_after="3s") as stage:
        # b starts alone, so it leads; a and c join (a probes payment, b login and crm).
        await stage.start("b")
        await stage.until("b leads", lambda: stage.leader() is stage.replicas["b"])
        await stage.start("a", "c")
        await stage.until("three replicas share the checks", lambda: stage.settled({"a", "b", "c"}))
        assert stage.leader() is stage.replicas["b"]

        # (a) only payment's holder logs its transitions; (d) only the leader opens incidents.
        stage.kill_on_log(
            "(a) payment's DOWN transition", is_transition("payment", "DOWN"), "a", "c"
        )
        stage.kill_on_log("(d) the leader opening the incident", is_event("incident opened"), "b")
        await stage.fail("payment")
        prober, prober_held = await stage.killed("(a) payment's DOWN transition")
        leader, leader_held = await stage.killed("(d) the leader opening the incident")
        assert (prober.name, leader.name) == ("a", "b")
        assert stage.catcher.messages == []  # the hold has not ended: nobody was told yet
        stage.kill_leader_on_mail("(b) acknowledgements a third out", "acknowledge", PEOPLE // 3)
        await stage.taken_over(prober, prober_held)
        await stage.taken_over(leader, leader_held)
        lead_waits = [await stage.lead_taken_over(leader)]
        await stage.start(prober.name, leader.name)

        sender, sender_held = await stage.killed("(b) acknowledgements a third out")
        await stage.taken_over(sender, sender_held)
        lead_waits.append(await stage.lead_taken_over(sender))
        await stage.start(sender.name)
        await stage.until("everyone acknowledged", lambda: stage.all_told("acknowledge"))

        stage.kill_leader_on_mail("(c) resolved messages a third out", "resolved", PEOPLE // 3)
        await stage.recover("payment")
        last, last_held = await stage.killed("(c) resolved messages a third out")
        await stage.taken_over(last, last_held)
        lead_waits.append(await stage.lead_taken_over(last))
        await stage.until("everyone told it is fixed", lambda: stage.all_told("resolved"))

        (incident,) = await stage.incidents()
        assert incident["status"] == "resolved"
        assert {k: incident["counts"][k] for k in ("acknowledged", "resolved", "pending")} == {
            "acknowledged": PEOPLE,
            "resolved": PEOPLE,
            "pending": 0,
        }
        codes = await stage.stop()
    assert codes == {name: -9 if name == last.name else 0 for name in ("a", "b", "c")}
    tally = stage.tally()
    print(
        f"\nkilled {[r.name for r in (prober, leader, sender, last)]}; checks probed again "
        f"after {[(t.replica, t.probed_after) for t in stage.takeovers]} s; lead taken after "
        f"{lead_waits} s; {tally.messages} messages, {tally.repeats} repeated Message-IDs"
    )
    assert tally.repeats <= 2 * DELIVERY_CONCURRENCY  # two senders were killed mid fan-out


async def test_two_replicas_started_together_on_an_empty_database_make_one_schema_and_share(
    tmp_path: Path, pg_database: Database
) -> None:
    """Two replicas started at the same instant on a database with no schema yet: both run
    and are ready, one of them makes the schema (once), both list the same two replicas with
    the checks and the outbox's shards split between them and one leader, and each check is
    probed by one of them only."""
    async with fleet(tmp_path, pg_database) as stage:
        await stage.start("a", "b")  # both spawned before either is waited for
        first, second = stage.replicas["a"], stage.replicas["b"]
        await stage.until("the checks shared out", lambda: stage.settled({"a", "b"}))

        views = [await stage.view(r) for r in (first, second)]
        shares = [{n: (r["checks"], r["leads"]) for n, r in view.items()} for view in views if view]
        assert len(shares) == 2, views
        assert shares[0] == shares[1], shares
        assert all(checks > 0 for checks, _ in shares[0].values()), shares
        assert [leads for _, leads in shares[0].values()].count(True) == 1, shares
        upgraded = [r.name for r in (first, second) if r.logged("schema upgraded")]
        assert len(upgraded) == 1, upgraded

        async def shards_split() -> bool:
            seen = await stage.view(first)
            shards = [r["outbox_shards"] for r in (seen or {}).values()]
            return len(shards) == 2 and min(shards) > 0 and sum(shards) == 64

        # Both send: the outbox's 64 shards are split between them too.
        await stage.until("the outbox shards shared out", shards_split)

        # Each check's probes from now on are counted by one replica only.
        before = [await r.text("/metrics") for r in (first, second)]
        counts = {s: len(stage.targets[s].requests) for s in SYSTEMS}
        await stage.until(
            "each check probed three more times",
            lambda: all(len(stage.targets[s].requests) >= counts[s] + 3 for s in SYSTEMS),
        )
        after = [await r.text("/metrics") for r in (first, second)]
        for system in SYSTEMS:
            grew = [probes(after[n], system) > probes(before[n], system) for n in range(2)]
            assert grew.count(True) == 1, (system, grew)
        owned = [metric(text, "monitor_checks_owned") for text in after]
        assert sorted(owned) == sorted(float(checks) for checks, _ in shares[0].values()), owned
        assert first.alive, first.tail()
        assert second.alive, second.tail()
    code, out, err = await run_cli("db", "status", "--db", pg_database.url)
    assert (code, err) == (0, "")
    known = len(migrations("postgres"))
    assert f"schema: {known}; this monitor knows up to {known}" in out.splitlines()


def probes(metrics: str, system: str) -> float:
    return sum(
        metric(metrics, "monitor_probes_total", system=system, result=result)
        for result in ("success", "failure")
    )


@pytest.mark.timeout(300)
async def test_a_replica_cut_off_from_the_database_comes_back_without_sending_again(
    tmp_path: Path, pg_database: Database
) -> None:
    """The leading replica reaches the database through a proxy that is cut a third of the way
    through the acknowledgements: it warns on /readyz and stops leading, the others take over
    its checks and the lead and tell everyone else; once the proxy is mended it finds its
    checks taken, sends nothing more, and the resolved round (by the new leader) reaches
    each person once. Repeats are only the Message-IDs it had in flight."""
    people = 600
    cluster = pg_database.cluster
    async with (
        fleet(tmp_path, pg_database, people, notify_after="1s") as stage,
        TcpProxy(cluster.port) as proxy,
    ):
        through = pg_database.url.replace(f":{cluster.port}/", f":{proxy.port}/")
        cut_off = stage.add("a", db_url=through)
        await stage.start("a")
        await stage.until("a leads", lambda: stage.leader() is cut_off)
        await stage.start("b", "c")
        await stage.until("three replicas share the checks", lambda: stage.settled({"a", "b", "c"}))

        told_at_cut: list[int] = []

        def arrived(message: object) -> None:
            if len(stage.catcher.messages) >= people // 3 and not proxy.cut_off:
                proxy.cut()
                told_at_cut.append(len(stage.catcher.messages))

        stage.catcher.on_message = arrived
        await stage.fail("payment")
        await stage.until("the proxy cut", lambda: told_at_cut)
        stage.catcher.on_message = None

        async def warns() -> bool:
            status, body = await cut_off.readyz()
            return status == 200 and "probing goes on in memory" in body

        await stage.until("a warns that the database cannot be reached", warns)
        await stage.until("a no longer leads", lambda: stage.leader() not in (None, cut_off))
        await stage.until("everyone acknowledged", lambda: stage.all_told("acknowledge"))
        await stage.until("b and c hold every check", lambda: stage.settled({"b", "c"}))
        sent_before_mend = len(stage.catcher.messages)

        proxy.mend()
        await stage.until("a back among the replicas", lambda: stage.settled({"a", "b", "c"}))
        assert cut_off.logged_since_start("checks taken over by other replicas")
        assert len(stage.catcher.messages) == sent_before_mend  # it sent nothing on return

        await stage.recover("payment")
        await stage.until("everyone told it is fixed", lambda: stage.all_told("resolved"))
        (incident,) = await stage.incidents()
        assert incident["counts"]["resolved"] == people
        assert stage.leader() is not cut_off
        codes = await stage.stop()
    assert codes == {"a": 0, "b": 0, "c": 0}
    tally = stage.tally()
    print(f"\ncut at {told_at_cut}; {tally.messages} messages, {tally.repeats} repeated")
    assert tally.repeats <= DELIVERY_CONCURRENCY


async def test_a_second_process_under_a_running_replicas_name_exits_2_saying_so(
    tmp_path: Path, pg_database: Database
) -> None:
    """A second `monitor run` calling itself what a running replica calls itself, on the same
    database, exits 2 saying so; the first one carries on, leading."""
    async with fleet(tmp_path, pg_database) as stage:
        await stage.start("x")
        env = dict(stage.replicas["x"].env, MONITOR_LISTEN=f"127.0.0.1:{free_port()}")
        code, out, err = await run_cli("run", env=env)
        assert (code, out) == (2, ""), err
        assert "calls itself 'x' and is running" in err, err
        # That line alone, besides the start's warning that messages carry no unsubscribe link
        # (this fleet sets no public_url).
        said = [line for line in err.splitlines() if "public_url is not set" not in line]
        assert len(said) == 1, err
        assert stage.replicas["x"].alive
        assert stage.leader() is stage.replicas["x"]
