"""The monitoring loop's heart: probe results in, state and transitions out, remembered.

``Monitor.observe`` is synchronous and takes results that carry their own time, so tests drive
it with a fake clock; ``Monitor.probe`` is what the scheduler calls. What it learns reaches the
store in batches: the transitions of one turn of the event loop in one commit, the results and
streaks at each ``flush`` (every second in the app).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from monitor.config import Config, SystemConfig
from monitor.config.schema import Retention
from monitor.logs import event
from monitor.model import UPTIME_WINDOW, Clock, Health, ProbeResult, SystemState, Transition
from monitor.probing.probes import Prober
from monitor.probing.state import observe
from monitor.store import Store, StoreUnavailable

log = logging.getLogger("monitor.runtime")

TransitionListener = Callable[[Transition], None]
ResultListener = Callable[[ProbeResult, float], None]  # result, lateness
DAY = 86400.0
PRUNE_BATCH = 2000  # rows deleted per commit when pruning incidents
PRUNE_SYSTEMS = 200  # systems whose results (or transitions) one statement prunes


@dataclass
class Monitor:
    """Keeps every system's state; turns results into transitions and tells the listeners."""

    config: Config
    store: Store
    clock: Clock
    prober: Prober | None = None
    on_transition: list[TransitionListener] = field(default_factory=list)
    on_result: list[ResultListener] = field(default_factory=list)
    states: dict[str, SystemState] = field(default_factory=dict)
    # The systems this replica probes (None: all of them, as a monitor alone does); a result
    # that comes in for another is dropped: its holder saves that system's state.
    owned: set[str] | None = None
    # The replica's name when it shares the database: its writes then keep to the systems the
    # database says it holds (``StateLog.save_transitions``).
    holder: str | None = None
    store_error: str | None = None
    _results: list[ProbeResult] = field(default_factory=list)
    _dirty: set[str] = field(default_factory=set)
    _unsaved: list[tuple[Transition, SystemState]] = field(default_factory=list)
    _write_soon: asyncio.Task[bool] | None = None
    _writing: asyncio.Lock = field(default_factory=asyncio.Lock)  # one write of them at a time
    _states_mark: int | None = None  # where the last ``refresh_others`` read up to

    def __post_init__(self) -> None:
        self.states = {name: SystemState(system=name) for name in self.config.systems}

    async def restore(self) -> None:
        """Take up each system's saved state; called once, before the first result.

        A restarted monitor carries on with each system's health and streaks, so an outage
        that was DOWN before the restart is the same outage after it.
        """
        saved = await self.store.load_states()
        self.states = {
            name: saved.get(name, SystemState(system=name)) for name in self.config.systems
        }

    async def take_up(self, systems: Iterable[str]) -> None:
        """Start holding ``systems`` (another replica probed them until now): carry on from
        the state their last holder saved."""
        saved = await self.store.load_states()
        for name in systems:
            if name in self.config.systems:
                self.states[name] = saved.get(name, SystemState(system=name))
        if self.owned is not None:
            self.owned |= set(systems)

    async def let_go(self, systems: Iterable[str]) -> None:
        """Stop holding ``systems``: what is buffered of them is written first, so the next
        holder carries on from it."""
        if self.owned is not None:
            self.owned -= set(systems)
        await self.flush()

    async def refresh_others(self) -> None:
        """Take the state of the systems other replicas probe from the store: this replica's
        API, status page and /metrics show every system."""
        if self.owned is None:
            return
        saved, self._states_mark = await self.store.states_changed(self._states_mark)
        for name, state in saved.items():
            if name in self.states and name not in self.owned:
                self.states[name] = state

    def system(self, name: str) -> SystemConfig | None:
        return self.config.systems.get(name)

    async def probe(self, name: str, lateness: float = 0.0) -> ProbeResult | None:
        """Probe one system now and fold in the result (None if it was removed meanwhile).

        ``lateness`` is how late the call came; any wait for a free connection is added.
        """
        system = self.system(name)
        if system is None or self.prober is None:
            return None
        called = self.clock.now()
        result = await self.prober.probe(system)
        # A reload may have removed it, or another replica taken it over, while it ran.
        if name in self.config.systems and (self.owned is None or name in self.owned):
            self.observe(result, lateness + max(0.0, result.started_at - called))
        return result

    def observe(self, result: ProbeResult, lateness: float = 0.0) -> Transition | None:
        """Fold one result into its system's state; publish and remember any transition."""
        system = self.config.systems[result.system]
        previous = self.states[result.system]
        state, transition = observe(previous, result, system.fail_after, system.recover_after)
        self.states[result.system] = state
        self._results.append(result)
        # A system that stays UP without a failure is not written again every probe: what a
        # restart needs of it (UP since when, no failures) is stored already, and at thousands
        # of probes a second the rewrites were a few percent of the CPU.
        steady = previous.health is state.health is Health.UP
        if not (steady and not previous.fail_streak and not state.fail_streak):
            self._dirty.add(result.system)
        for listen in self.on_result:
            listen(result, lateness)
        if transition is None:
            return None
        event(
            log,
            "transition",
            system=transition.system,
            previous=transition.previous.value,
            current=transition.current.value,
            reason=transition.reason,
            streak=transition.streak,
        )
        self._save_transition(transition, state)
        for listen_t in self.on_transition:
            listen_t(transition)
        return transition

    def _save_transition(self, transition: Transition, state: SystemState) -> None:
        """Write the transition at the event loop's next turn, before anything else waits on
        the store.

        The transitions of one turn of the loop share a commit: at start, or in a mass outage,
        thousands come at once and a commit each took a tenth of the CPU. With no loop running
        (a test folding results by hand) they wait for the next ``flush``.
        """
        self._unsaved.append((transition, state))
        if self._write_soon is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._write_soon = loop.create_task(self._write_unsaved(), name="save transitions")

    async def _write_unsaved(self) -> bool:
        """Commit the transitions not written yet (False if the store refused them): those
        that come in meanwhile wait for the next write, and none is written twice."""
        async with self._writing:
            if self._write_soon is asyncio.current_task():
                self._write_soon = None
            saving = self._unsaved[:]
            if not saving:
                return True
            try:
                await self.store.save_transitions(saving, self.holder)
            except StoreUnavailable as exc:
                self._store_failed(exc)
                return False
            del self._unsaved[: len(saving)]
            return True

    async def flush(self) -> None:
        """Write what is buffered: transitions the store refused before, results, streaks."""
        if not await self._write_unsaved():
            return
        results, self._results = self._results, []
        dirty, self._dirty = self._dirty, set()
        try:
            await self.store.record_results(results)
            await self.store.save_states(
                [self.states[n] for n in dirty if n in self.states], self.holder
            )
        except StoreUnavailable as exc:
            # Keep the newest results only: memory stays bounded during a long store outage.
            self._results = (results + self._results)[-10_000:]
            self._dirty |= dirty
            self._store_failed(exc)
            return
        if self.store_error is not None:
            event(log, "store recovered", previous_error=self.store_error)
            self.store_error = None

    async def prune(self) -> int:
        """Apply the retention settings a small delete at a time, yielding between them, so a
        large history never holds up probes: results, state transitions (never within the
        uptime window or the status page's history), then resolved incidents: their messages,
        and later what customers saw of them. Returns how many rows went."""
        retention = self.config.settings.retention
        now = self.clock.now()
        deleted = 0
        try:
            while batch := await self.store.prune_aged(now - retention.max_age):
                deleted += batch
                await asyncio.sleep(0)
            systems = await self.store.result_systems()
            for chunk in _batches(systems, PRUNE_SYSTEMS):
                deleted += await self.store.prune_systems(chunk, retention.max_results_per_system)
                await asyncio.sleep(0)
            history_from = now - max(retention.max_age, UPTIME_WINDOW, _history_kept(retention))
            for chunk in _batches(await self.store.transition_systems(), PRUNE_SYSTEMS):
                deleted += await self.store.prune_transitions(chunk, history_from)
                await asyncio.sleep(0)
            deleted += await self.prune_incidents()
        except StoreUnavailable as exc:
            self._store_failed(exc)
        return deleted

    async def prune_incidents(self) -> int:
        """Delete the private part of incidents resolved longer ago than ``retention.max_age``
        (their outbox rows, what each person was told, the timeline customers may not see),
        and whole incidents resolved longer ago than the status page's history
        (``retention.history``, and a day more: the oldest bar is a whole day), ``PRUNE_BATCH``
        rows at a time.

        Never sooner than a day after (the outbox is what ``max_messages_per_person_per_day``
        counts) nor than ``correlation_window`` (a flap re-opens an incident resolved within
        it), never an open incident, and nothing of one with a message still pending. Freed
        pages are reused by new rows, and the store tidies up after (``Store.maintain``).
        """
        settings = self.config.settings
        keep = max(settings.retention.max_age, DAY, settings.correlation_window)
        store = self.store
        deleted = await _prune_each(
            lambda: self.clock.now() - max(keep, _history_kept(settings.retention)),
            store.prunable_incidents,
            store.prune_incident,
        )
        deleted += await _prune_each(
            lambda: self.clock.now() - keep, store.private_prunable_incidents, store.prune_private
        )
        if deleted:
            done = await self.store.maintain()
            event(log, "pruned resolved incidents", rows=deleted, **done)
        return deleted

    def _store_failed(self, exc: StoreUnavailable) -> None:
        if self.store_error != str(exc):
            event(log, "store unavailable", logging.ERROR, error=str(exc))
        self.store_error = str(exc)

    def apply_config(self, config: Config) -> tuple[set[str], set[str], set[str]]:
        """Switch to ``config``; return the systems (added, changed, removed).

        Unchanged systems keep their state; a changed system keeps its health and streaks too
        (its thresholds apply from the next result on).
        """
        old = self.config.systems
        added = set(config.systems) - set(old)
        removed = set(old) - set(config.systems)
        changed = {n for n in set(old) & set(config.systems) if old[n] != config.systems[n]}
        self.config = config
        for name in added:
            self.states[name] = SystemState(system=name)
        for name in removed:
            self.states.pop(name, None)
        return added, changed, removed


def _history_kept(retention: Retention) -> float:
    """How long the status page's history needs state changes and incidents: its days, and
    one more, since the oldest bar is a whole day from its midnight."""
    return retention.history + DAY


async def _prune_each(
    before: Callable[[], float],
    find: Callable[[float, int], Awaitable[list[int]]],
    prune: Callable[[int, float, int], Awaitable[int]],
) -> int:
    """Prune (``prune``) the incidents ``find`` gives, resolved before the moment ``before``
    says (read again each round, as the clock moves), ten at a time; how many rows went."""
    deleted = 0
    while True:
        moment = before()
        found = await find(moment, 10)
        went = 0
        for incident_id in found:
            while batch := await prune(incident_id, moment, PRUNE_BATCH):
                went += batch
                await asyncio.sleep(0)
        deleted += went
        if len(found) < 10 or not went:
            return deleted


def _batches(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
