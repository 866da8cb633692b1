"""This replica among the others: its heartbeat, its share of the checks, and the lead.

``beat()`` is one heartbeat, on the clock it is given (the app calls it every
``Timing.heartbeat`` seconds; tests call it on a fake clock): say this replica is alive and
which checks its files declare; hand over the checks that are another live replica's now
(their state saved first, so the next holder carries on from it); take those that are its own;
notice the ones others took (they thought it dead); then take or keep the lead. The checks
this replica holds, and only those, are probed here (``gained`` / ``losing``).

Nothing here assumes it is the only process: the store decides who holds what, in one
statement each (docs/replicas.md). A store that cannot be reached leaves the checks held as
they are (probing goes on in memory) and the lead lapses on this replica's own clock one
heartbeat before any other replica may take it, so two never lead at once.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import socket
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field

from monitor.logs import event
from monitor.model import Clock
from monitor.replicas.sharing import assign, share
from monitor.store import Replicas, StoreUnavailable
from monitor.store.types import OUTBOX_SHARDS

log = logging.getLogger("monitor.replicas")

ChecksListener = Callable[[set[str]], Awaitable[None]]
LeadListener = Callable[[bool], Awaitable[None]]


# The outbox's shards are held as checks are, under names no check can have (check names are
# lower-case letters, digits and dashes): each replica sends the messages of the shards it holds.
SHARD_UNITS = tuple(f"outbox:{n:02}" for n in range(OUTBOX_SHARDS))


def is_shard(unit: str) -> bool:
    """Whether ``unit`` is an outbox shard (else a check)."""
    return unit.startswith("outbox:")


def shards_of(units: Collection[str]) -> set[int]:
    """The outbox shards among ``units``."""
    return {int(unit[7:]) for unit in units if is_shard(unit)}


def split_units(units: Collection[str]) -> tuple[set[str], set[int]]:
    """``units`` as (the checks among them, the outbox shards among them)."""
    return {u for u in units if not is_shard(u)}, shards_of(units)


@dataclass(frozen=True)
class Timing:
    """``heartbeat``: how often a replica says it is alive; ``takeover``: the longest a dead
    replica's checks and lead wait for another replica (it is dead once not seen for
    ``takeover - heartbeat``, and the others notice at their next heartbeat)."""

    heartbeat: float = 2.0
    takeover: float = 30.0

    @property
    def dead_after(self) -> float:
        return self.takeover - self.heartbeat


def digest_of(systems: Collection[str], windows: str = "") -> str:
    """A short name for what a replica's files declare, its checks and (``windows``, their
    own short name) its maintenance windows: replicas re-read another's list of checks only
    when it changes, and the leader tells a window's removal only when every live replica's is
    the same as its own (``files_agree``)."""
    said = json.dumps([sorted(systems), windows] if windows else sorted(systems))
    return hashlib.blake2b(said.encode(), digest_size=12).hexdigest()


@dataclass(eq=False)
class Membership:
    store: Replicas
    clock: Clock
    name: str
    timing: Timing
    declared: Callable[[], Collection[str]]  # the checks this replica's files declare now
    gained: ChecksListener  # start probing these, from their state in the store
    losing: ChecksListener  # stop probing these; save their state first
    on_lead: list[LeadListener] = field(default_factory=list)  # told when leading starts/ends
    host: str = field(default_factory=socket.gethostname)  # where this process runs
    # A short name for the maintenance windows this replica's files declare now ("": none).
    windows: Callable[[], str] = lambda: ""
    pid: int = field(default_factory=os.getpid)
    started_at: float = field(init=False)
    held: set[str] = field(default_factory=set, init=False)
    leader: str | None = field(default=None, init=False)
    lead_valid_until: float = field(default=0.0, init=False)  # on this replica's clock
    hold_valid_until: float = field(default=0.0, init=False)  # the same, for what it holds
    live: int = field(default=0, init=False)  # live replicas at the last heartbeat
    # Whether every live replica's files declared what this one's did at the last heartbeat
    # (checks and maintenance windows), and which windows this one's declared then.
    _agreed: bool = field(default=True, init=False)
    _beat_windows: str = field(default="", init=False)
    store_error: str | None = field(default=None, init=False)
    _known: dict[str, tuple[str, frozenset[str]]] = field(default_factory=dict, init=False)
    _assignment: dict[str, str] = field(default_factory=dict, init=False)
    _assigned_from: frozenset[tuple[str, str]] = field(default=frozenset(), init=False)
    _leading: bool = field(default=False, init=False)
    _beating: asyncio.Lock = field(default_factory=asyncio.Lock, init=False)  # one at a time

    def __post_init__(self) -> None:
        self.started_at = self.clock.now()

    def holds(self) -> bool:
        """Whether what this replica holds is still its own: its last heartbeat reached the
        database recently enough that no other replica can have taken anything over since.
        A replica cut off stops sending (and leading) by this, before another may start."""
        return self.clock.now() < self.hold_valid_until

    def files_agree(self) -> bool:
        """Whether every live replica's files declared what this one's did at the last
        heartbeat (checks and maintenance windows: not so during a rolling update that changes
        them), and this one's windows are still those (a reload since waits for the next)."""
        return self._agreed and self.windows() == self._beat_windows

    def leads(self) -> bool:
        """Whether this replica leads now: it took or kept the lead at a heartbeat recent
        enough that no other replica can have taken it since."""
        return self.leader == self.name and self.clock.now() < self.lead_valid_until

    async def beat(self) -> None:
        """One heartbeat (see the module's docstring). A store that cannot be reached changes
        nothing here but the lead, which lapses in time."""
        async with self._beating:
            await self._beat_once()

    async def _beat_once(self) -> None:
        try:
            await self._beat()
        except StoreUnavailable as exc:
            if self.store_error != str(exc):
                event(log, "replica heartbeat waits for the store", logging.WARNING, error=str(exc))
            self.store_error = str(exc)
        else:
            if self.store_error is not None:
                event(log, "replica heartbeat reaches the store again")
            self.store_error = None
        await self._tell_lead()

    async def _beat(self) -> None:
        now = self.clock.now()
        systems = sorted(self.declared())
        mine = frozenset(systems)
        windows = self.windows()
        digest = digest_of(systems, windows)
        await self.store.beat(self.name, self.started_at, now, digest, systems, self.host, self.pid)
        alive_since = now - self.timing.dead_after
        live = await self.store.live_replicas(alive_since)
        self.live = len(live)
        self._agreed = all(replica.digest == digest for replica in live)
        self._beat_windows = windows
        known: dict[str, tuple[str, frozenset[str]]] = {self.name: (digest, mine)}
        for replica in live:
            if replica.name == self.name:
                continue
            cached = self._known.get(replica.name)
            if cached is None or cached[0] != replica.digest:
                names = await self.store.declared_checks(replica.name)
                cached = (replica.digest, frozenset(names))
            known[replica.name] = cached
        self._known = known
        assignment = self._assign(known)

        held = await self.store.held_checks(self.name)
        # Nobody takes anything of a replica seen at ``now`` before ``now + dead_after``;
        # one heartbeat short of that, as for the lead.
        self.hold_valid_until = now + self.timing.dead_after - self.timing.heartbeat
        taken = self.held - held
        if taken:
            # Others took them: this replica was not seen for too long (a partition).
            event(log, "checks taken over by other replicas", logging.WARNING, checks=len(taken))
            self.held -= taken
            await self.losing(taken)
        plan = share(self.name, assignment, held)
        if plan.hand_over:
            going = set(plan.hand_over)
            self.held -= going
            await self.losing(going)  # their state is saved before the next holder reads it
            await self.store.hand_over_checks(self.name, plan.hand_over, now)
            held -= going
        if plan.take:
            held |= await self.store.take_checks(self.name, plan.take, now, alive_since)
        gained = held - self.held
        self.held = held
        if gained:
            await self.gained(gained)
        if plan.hand_over or gained:
            event(
                log,
                "checks shared",
                replica=self.name,
                checks=len(held) - len(shards_of(held)),
                outbox_shards=len(shards_of(held)),
                gained=len(gained),
                handed_over=len(plan.hand_over),
                replicas=len(live),
            )

        leader = await self.store.lead(self.name, now, now + self.timing.dead_after)
        self.leader = leader
        if leader == self.name:
            # One heartbeat short of what the others wait: this replica stops leading (on its
            # own clock) before any other may start.
            self.lead_valid_until = now + self.timing.dead_after - self.timing.heartbeat

    def _assign(self, known: dict[str, tuple[str, frozenset[str]]]) -> dict[str, str]:
        """``sharing.assign`` of what the live replicas declare, computed again only when
        that changes (10,000 checks over 3 replicas are 30,000 hashes)."""
        facts = frozenset((name, digest) for name, (digest, _) in known.items())
        if facts != self._assigned_from:
            declared = {name: systems for name, (_, systems) in known.items()}
            self._assignment = assign(declared, evenly=is_shard)
            self._assigned_from = facts
        return self._assignment

    async def _tell_lead(self) -> None:
        leading = self.leads()
        if leading == self._leading:
            return
        self._leading = leading
        event(log, "leading" if leading else "no longer leading", replica=self.name)
        for listen in self.on_lead:
            await listen(leading)

    async def leave(self) -> None:
        """Stopping: hand every check held to the live replica it goes to now, give up the
        lead, and be forgotten (the others take over at their next heartbeat, not after the
        takeover time)."""
        async with self._beating:
            await self._leave()

    async def _leave(self) -> None:
        now = self.clock.now()
        others = {name: systems for name, (_, systems) in self._known.items() if name != self.name}
        assignment = assign(others, evenly=is_shard)
        plan = share(self.name, assignment, self.held)
        try:
            if self.held:
                await self.losing(set(self.held))
                await self.store.hand_over_checks(self.name, plan.hand_over, now)
            await self.store.leave(self.name)
        except StoreUnavailable as exc:
            event(log, "replica could not say goodbye", logging.WARNING, error=str(exc))
        self.held = set()
        self.leader = None
        await self._tell_lead()
