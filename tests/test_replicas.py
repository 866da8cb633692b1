"""Several replicas on one database (issue #16), on both backends and a fake clock: the store's
``Replicas`` role (heartbeats, one holder a check, the lead) and ``Membership`` over it (each
check probed by exactly one live replica, a dead replica's checks and lead taken over within the
takeover time, a stopping replica handing over at once, a rolling update's checks going only to
replicas that declare them)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import os
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from pathlib import Path

import pytest
from clock import FakeClock
from killable import until
from postgres import Database
from tcp_proxy import TcpProxy
from test_store_contract import BACKENDS, Backend

from monitor.incidents.correlation import Incident, Member
from monitor.model import Attempt, Health, Person, SystemState, Transition
from monitor.replicas.identity import ReplicaNameError, check_name_free, replica_name
from monitor.replicas.membership import SHARD_UNITS, Membership, Timing, is_shard
from monitor.replicas.sharing import assign, owner, share
from monitor.store import Store
from monitor.store.postgres import open_postgres
from monitor.store.types import AlreadyApplied

TIMING = Timing(heartbeat=2.0, takeover=30.0)
CHECKS = [f"check-{n:03}" for n in range(300)]


@pytest.fixture(params=BACKENDS)
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    """The database the test's replicas share (as tests/test_store_contract.py's)."""
    if request.param == "sqlite":
        shared = Backend(str(tmp_path / "monitor.db"))
    else:
        pg = request.getfixturevalue("pg_database")
        assert isinstance(pg, Database)
        shared = Backend(pg.url, pg)
    try:
        yield shared
    finally:
        await shared.close()


class Replica:
    """One replica as the tests drive it: a store of its own on the shared database, its
    membership on the shared fake clock, and the checks it probes (what ``gained`` and
    ``losing`` told it)."""

    def __init__(
        self, name: str, store: Store, clock: FakeClock, declared: Collection[str] = CHECKS
    ) -> None:
        self.store = store
        self.declared = set(declared)
        self.probing: set[str] = set()
        self.membership = Membership(
            store=store,
            clock=clock,
            name=name,
            timing=TIMING,
            declared=lambda: self.declared,
            gained=self._gained,
            losing=self._losing,
        )

    async def _gained(self, systems: set[str]) -> None:
        assert not systems & self.probing
        self.probing |= systems

    async def _losing(self, systems: set[str]) -> None:
        assert systems <= self.probing
        self.probing -= systems


async def replicas(backend: Backend, clock: FakeClock, *names: str) -> list[Replica]:
    return [Replica(name, await backend.open(), clock) for name in names]


async def beat(*group: Replica, rounds: int = 1, clock: FakeClock | None = None) -> None:
    """Each replica beats once a round, one after the other, the clock moving a heartbeat
    between rounds when given."""
    for _ in range(rounds):
        for replica in group:
            await replica.membership.beat()
        if clock is not None:
            clock.advance(TIMING.heartbeat)


def probed_once(*group: Replica) -> Counter[str]:
    """How many of ``group`` probe each check; asserts none is probed twice."""
    counts = Counter(check for replica in group for check in replica.probing)
    assert max(counts.values(), default=1) == 1, counts.most_common(3)
    return counts


# the rule ------------------------------------------------------------------------------------


def test_each_check_goes_to_one_replica_and_a_new_replica_moves_only_its_share() -> None:
    """Rendezvous hashing: 3,000 checks over 3 replicas are about a third each; a fourth takes
    about a quarter, all of it from the others, and nothing moves between the three."""
    checks = [f"c{n}" for n in range(3000)]
    three = assign({name: checks for name in ("a", "b", "c")})
    assert all(800 <= n <= 1200 for n in Counter(three.values()).values())
    four = assign({name: checks for name in ("a", "b", "c", "d")})
    moved = {c for c in checks if three[c] != four[c]}
    assert all(four[c] == "d" for c in moved)
    assert 600 <= len(moved) <= 900
    assert owner("c1", []) is None


def test_outbox_shards_are_dealt_evenly_and_a_join_moves_a_fair_share() -> None:
    """The 64 outbox shards over 3 replicas are 22/21/21 (hashing alone gave one replica 26,
    40% of every fan-out); a fourth replica gets 16, and most shards stay where they were."""
    units = [*SHARD_UNITS, "payment"]
    three = assign({name: units for name in ("r1", "r2", "r3")}, evenly=is_shard)
    loads = Counter(holder for unit, holder in three.items() if is_shard(unit))
    assert sorted(loads.values()) == [21, 21, 22]
    assert three["payment"] == owner("payment", ["r1", "r2", "r3"])
    four = assign({name: units for name in ("r1", "r2", "r3", "r4")}, evenly=is_shard)
    assert Counter(holder for unit, holder in four.items() if is_shard(unit))["r4"] == 16
    moved = [unit for unit in SHARD_UNITS if three[unit] != four[unit]]
    assert 16 <= len(moved) <= 24


def test_a_check_only_some_replicas_declare_goes_to_one_of_them() -> None:
    """During a rolling update a check only the new files declare is probed by a replica with
    the new files; one no replica declares any more is handed to nobody."""
    assignment = assign({"old": ["x", "y"], "new": ["x", "y", "z"]})
    assert assignment["z"] == "new"
    plan = share("old", assignment, held={"x", "y", "gone"})
    assert plan.hand_over["gone"] is None
    assert "z" not in plan.take


# the store's role ----------------------------------------------------------------------------


async def test_a_check_taken_by_two_replicas_at_once_is_held_by_one(backend: Backend) -> None:
    """Two stores taking the same 300 checks at the same moment: each check ends with exactly
    one holder, and the other replica takes it only once the holder is dead."""
    first, second = await backend.open(), await backend.open()
    now = 1000.0
    await first.beat("a", now, now, "d", CHECKS, "host", 1)
    await second.beat("b", now, now, "d", CHECKS, "host", 2)
    alive_since = now - TIMING.dead_after
    got = await asyncio.gather(
        first.take_checks("a", CHECKS, now, alive_since),
        second.take_checks("b", CHECKS, now, alive_since),
    )
    assert got[0] | got[1] == set(CHECKS)
    assert not got[0] & got[1]
    assert await first.held_checks("a") == got[0]
    # "a" beats on; "b" cannot take its checks...
    later = now + TIMING.dead_after + 1
    await first.beat("a", now, later - 5, "d", CHECKS)
    assert await second.take_checks("b", got[0], later, later - TIMING.dead_after) == set()
    # ... until "a" has not been seen for the takeover time.
    latest = later + TIMING.dead_after
    assert await second.take_checks("b", got[0], latest, latest - TIMING.dead_after) == got[0]
    assert await second.held_checks("b") == set(CHECKS)


async def test_the_lead_is_one_replicas_until_it_lapses_and_leave_frees_everything(
    backend: Backend,
) -> None:
    """The first to ask leads; another asking gets the leader's name until the lead's time is
    up; a replica leaving gives up its lead and checks and is no longer listed."""
    store = await backend.open()
    assert await store.lead("a", 100.0, 128.0) == "a"
    assert await store.lead("b", 101.0, 129.0) == "a"
    assert await store.lead("a", 102.0, 130.0) == "a"  # kept
    assert await store.lead("b", 131.0, 159.0) == "b"  # lapsed
    await store.beat("b", 90.0, 131.0, "d1", ["x", "y"])
    await store.beat("c", 90.0, 131.0, "d2", ["x", "y"])
    assert await store.take_checks("b", ["x", "y"], 131.0, 103.0) == {"x", "y"}
    await store.hand_over_checks("b", {"y": "c"}, 132.0)
    assert await store.held_checks("c") == {"y"}
    overview = {r.name: (r.checks, r.leads) for r in await store.replica_overview(103.0)}
    assert overview == {"b": (1, True), "c": (1, False)}
    assert await store.declared_checks("c") == ["x", "y"]
    await store.leave("b")
    assert [r.name for r in await store.live_replicas(103.0)] == ["c"]
    assert await store.lead("c", 133.0, 161.0) == "c"
    assert await store.take_checks("c", ["x"], 133.0, 105.0) == {"x"}


# membership ----------------------------------------------------------------------------------


async def test_three_replicas_share_the_checks_each_probed_by_exactly_one(
    backend: Backend,
) -> None:
    """Three replicas starting together: after two heartbeats every check is probed by exactly
    one of them, about a third each, and exactly one leads."""
    clock = FakeClock(1000.0)
    group = await replicas(backend, clock, "a", "b", "c")
    await beat(*group, rounds=2, clock=clock)
    counts = probed_once(*group)
    assert set(counts) == set(CHECKS)
    assert all(70 <= len(r.probing) <= 130 for r in group), [len(r.probing) for r in group]
    assert [r.membership.leads() for r in group].count(True) == 1


async def test_a_dead_replicas_checks_and_lead_are_taken_over_within_the_takeover_time(
    backend: Backend,
) -> None:
    """The leading replica dies (it stops beating, as after kill -9): within the takeover time
    the other two probe all its checks, one of them leads, and no check was probed twice."""
    clock = FakeClock(1000.0)
    group = await replicas(backend, clock, "a", "b", "c")
    await beat(*group, rounds=2, clock=clock)
    dead = next(r for r in group if r.membership.leads())
    alive = [r for r in group if r is not dead]
    died_at = clock.now()
    orphaned = set(dead.probing)
    while orphaned - (alive[0].probing | alive[1].probing):
        assert clock.now() - died_at <= TIMING.takeover
        await beat(*alive, clock=clock)
        probed_once(*alive)
    assert set(probed_once(*alive)) == set(CHECKS)
    assert [r.membership.leads() for r in alive].count(True) == 1
    # Its own clock says it no longer leads either, though nobody told it.
    assert not dead.membership.leads()


async def test_a_replica_that_joins_takes_its_share_and_one_that_leaves_hands_over_at_once(
    backend: Backend,
) -> None:
    """A fourth replica joins two working ones: its share moves to it, each check handed over
    before it is taken, so at no heartbeat is a check probed twice, and each moved check is
    probed again by the next heartbeat. Then one stops (SIGTERM): the others probe its checks
    after their next heartbeat, long before the takeover time."""
    clock = FakeClock(1000.0)
    group = await replicas(backend, clock, "a", "b")
    await beat(*group, rounds=2, clock=clock)
    (joining,) = await replicas(backend, clock, "c")
    group.append(joining)
    for _ in range(3):
        for replica in group:
            await replica.membership.beat()
            probed_once(*group)
        clock.advance(TIMING.heartbeat)
    assert set(probed_once(*group)) == set(CHECKS)
    assert 70 <= len(joining.probing) <= 130

    leaving = group.pop(0)
    went = set(leaving.probing)
    await leaving.membership.leave()
    assert not leaving.probing
    await beat(*group)
    assert went <= group[0].probing | group[1].probing
    assert set(probed_once(*group)) == set(CHECKS)


async def test_a_rolling_update_probes_each_check_once_by_a_replica_that_declares_it(
    backend: Backend,
) -> None:
    """One replica has new files (a check added, one removed), the other the old ones: the new
    check is probed by the new replica only, the removed one by the old replica only, the
    rest shared, each once; when the old one is updated too, the removed check is dropped."""
    clock = FakeClock(1000.0)
    old = Replica("old", await backend.open(), clock, CHECKS)
    new = Replica("new", await backend.open(), clock, [*CHECKS[1:], "check-new"])
    await beat(old, new, rounds=2, clock=clock)
    assert "check-new" in new.probing
    assert "check-000" in old.probing
    assert set(probed_once(old, new)) == {*CHECKS, "check-new"}
    old.declared = set(new.declared)
    await beat(old, new, rounds=2, clock=clock)
    assert set(probed_once(old, new)) == {*CHECKS[1:], "check-new"}


async def test_a_replica_cut_off_from_the_database_stops_leading_before_another_can_lead(
    backend: Backend,
) -> None:
    """The leader is cut off from the database (a partition: for PostgreSQL a proxy between
    them closes its connections; for SQLite its connection stops taking writes): it keeps
    probing its checks in memory, and by its own clock stops leading one heartbeat before the
    other replica may take the lead; when it reaches the database again it finds its checks
    taken and stops probing them, so no check is probed twice from then on."""
    clock = FakeClock(1000.0)
    async with contextlib.AsyncExitStack() as stack:
        if backend.postgres is not None:
            proxy = await stack.enter_async_context(TcpProxy(backend.postgres.cluster.port))
            url = backend.location.replace(f":{backend.postgres.cluster.port}/", f":{proxy.port}/")
            cut_store: Store = await open_postgres(url)
            stack.push_async_callback(cut_store.close)
            partition, mend = proxy.cut, proxy.mend
        else:
            cut_store = await backend.open()
            partition = functools.partial(backend.refuse_writes, cut_store)
            mend = functools.partial(backend.take_writes, cut_store)
        cut, other = Replica("a", cut_store, clock), Replica("b", await backend.open(), clock)
        await beat(cut, other, rounds=2, clock=clock)  # "a" asks first, so it leads
        assert cut.membership.leads()
        partition()
        # The other replica asks for the lead every quarter second, the cut one beats every
        # heartbeat: at no moment do both lead.
        lapsed_at, step = None, TIMING.heartbeat / 8
        for tick in itertools.count():
            if tick % 8 == 0:
                await cut.membership.beat()
            await other.membership.beat()
            assert not (cut.membership.leads() and other.membership.leads()), clock.now()
            if lapsed_at is None and not cut.membership.leads():
                lapsed_at = clock.now()
            if other.membership.leads():
                break
            clock.advance(step)
            assert clock.now() < 1000.0 + 3 * TIMING.takeover
        assert lapsed_at is not None
        assert cut.probing  # still probing in memory meanwhile
        mend()
        await until("the cut-off replica reaches the database again", _beats_through(cut))
        assert not cut.probing
        assert set(probed_once(cut, other)) == set(CHECKS)


def _beats_through(replica: Replica) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        await replica.membership.beat()
        return replica.membership.store_error is None

    return check


@pytest.mark.parametrize("declared", [[], ["only"]])
def test_share_of_a_replica_alone_is_everything_it_declares(declared: list[str]) -> None:
    """A single monitor is a replica alone: it takes every check it declares."""
    plan = share("me", assign({"me": declared}), held=set())
    assert plan.take == set(declared)
    assert not plan.hand_over


# fencing: what a replica that lost a check or the lead may no longer write -------------------


async def test_a_replica_that_lost_a_check_writes_nothing_of_it(backend: Backend) -> None:
    """Replica "a" was thought dead and "b" took payment over: "a"'s late transition and state
    of payment are not written (the state "b" carries on from stays), "b"'s are."""
    first, second = await backend.open(), await backend.open()
    await first.beat("a", 0.0, 100.0, "d", ["payment"])
    assert await first.take_checks("a", ["payment"], 100.0, 72.0) == {"payment"}
    await second.beat("b", 0.0, 200.0, "d", ["payment"])
    assert await second.take_checks("b", ["payment"], 200.0, 172.0) == {"payment"}

    up = SystemState("payment", Health.UP, since=190.0, pass_streak=2, last_checked=199.0)
    await second.save_states([up], "b")
    down = SystemState("payment", Health.DOWN, since=201.0, fail_streak=3, last_checked=201.0)
    late = Transition("payment", 201.0, Health.UP, Health.DOWN, "status 503", 3)
    await first.save_transitions([(late, down)], "a")
    await first.save_states([down], "a")
    assert (await second.load_states())["payment"] == up
    assert await second.unapplied_transitions(10) == []

    await second.save_transitions([(late, down)], "b")
    assert (await first.load_states())["payment"] == down
    assert [t for _, t in await first.unapplied_transitions(10)] == [late]


async def test_transitions_applied_by_another_process_first_write_nothing(
    backend: Backend,
) -> None:
    """Two processes applying the same transitions (two leaders for a moment): the first's
    incident stands; the second's whole batch is refused with AlreadyApplied, nothing of it
    written, and nothing is left unapplied."""
    first, second = await backend.open(), await backend.open()
    down = Transition("payment", 100.0, Health.UP, Health.DOWN, "status 503", 3)
    await first.save_transitions([(down, SystemState("payment", Health.DOWN, since=100.0))])
    [(transition_id, _)] = await first.unapplied_transitions(10)
    opened = Incident(1, 100.0, (Member("payment", 100.0),), "payment")
    await first.save_incidents([opened], [], applied=[transition_id])
    twin = Incident(2, 100.0, (Member("payment", 100.0),), "payment")
    with pytest.raises(AlreadyApplied):
        await second.save_incidents([twin], [], applied=[transition_id])
    assert [i.id for i in await second.incidents()] == [1]
    assert await second.unapplied_transitions(10) == []


# names ---------------------------------------------------------------------------------------


def test_a_replica_is_named_by_monitor_replica_else_the_host() -> None:
    """MONITOR_REPLICA names the replica, else the host's name; a name that cannot be used is
    refused, saying where it came from."""
    assert replica_name({"MONITOR_REPLICA": "eu-1"}, lambda: "host") == "eu-1"
    assert replica_name({}, lambda: "pod-7f9c") == "pod-7f9c"
    with pytest.raises(ReplicaNameError, match="MONITOR_REPLICA: 'two words'"):
        replica_name({"MONITOR_REPLICA": "two words"}, lambda: "host")
    with pytest.raises(ReplicaNameError, match="the host's name"):
        replica_name({}, lambda: "")


async def test_a_name_in_use_by_a_live_replica_is_refused_and_a_dead_ones_is_taken(
    backend: Backend,
) -> None:
    """Starting under a name another process writes heartbeats under is refused; under the
    name of a replica whose heartbeats stopped (killed, restarted) it starts after at most a
    heartbeat and a half, and at once when that was a process of this host that is gone; under
    a new name at once."""
    store = await backend.open()
    clock = FakeClock(1000.0)
    waited: list[float] = []

    async def sleep(seconds: float, beating: bool) -> None:
        waited.append(seconds)
        clock.advance(seconds)
        if beating:
            await store.beat("a", 900.0, clock.now(), "d", [], "host-1", 4242)

    def free(name: str, beating: bool, host: str = "host-2", pid: int = 7) -> Awaitable[None]:
        return check_name_free(store, name, clock.now, lambda s: sleep(s, beating), 2.0, host, pid)

    await store.beat("a", 900.0, clock.now(), "d", [], "host-1", 4242)
    with pytest.raises(ReplicaNameError, match="calls itself 'a' and is running"):
        await free("a", beating=True)
    clock.advance(1.0)  # "a" is killed one second after its last heartbeat
    await free("a", beating=False)
    assert waited[-1] == pytest.approx(2.0)  # until 1.5 heartbeats after its last one
    waited.clear()
    await free("b", beating=False)
    # Restarted on its host: its old process id is this one's (a container's pid 1), or gone.
    await store.beat("a", 900.0, clock.now(), "d", [], "host-1", 4242)
    await free("a", beating=True, host="host-1", pid=4242)
    await store.beat("a", 900.0, clock.now(), "d", [], "host-1", _gone_pid())
    await free("a", beating=True, host="host-1", pid=7)
    assert waited == []


def _gone_pid() -> int:
    """A process id no process has now."""
    pid = 4_000_000
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        except PermissionError:
            pass
        pid += 1


async def test_attempts_taken_by_another_replica_are_counted_here(backend: Backend) -> None:
    """An attempt one replica takes is counted by another's store, for its systems and from
    the moment asked: the leader's notifier finds out the audience may have grown."""
    first, second = await backend.open(), await backend.open()
    eve = Person("eve", "Eve Adams", "eve@example.com")
    await first.add_attempt(Attempt("payment", "eve", "pay", 100.0), eve)
    await first.add_attempt(Attempt("login", "eve", "log in", 50.0), eve)
    assert await second.attempt_count(["payment", "crm"], 90.0) == 1
    assert await second.attempt_count(["payment", "login"], 0.0) == 2
    assert await second.attempt_count([], 0.0) == 0
