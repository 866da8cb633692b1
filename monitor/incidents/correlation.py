"""Correlation: DOWN transitions that belong together become one incident, with a likely cause.

Pure: transitions and time in, incident changes out. The rules, in order:

1. A system going DOWN joins an open incident if it went DOWN within ``correlation_window`` of
   that incident's first failure, or if it depends on a system in it (directly or through a
   chain of ``depends_on``), or a system in it depends on it.
2. Otherwise, if it was part of an incident that resolved less than ``correlation_window`` ago,
   that incident re-opens: a flapping system cannot start a second round of messages.
3. Otherwise it opens a new incident.

An incident resolves when every system in it is UP again. Its cause is the system that most of
the others depend on; without dependencies, the first to fail.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from operator import attrgetter

from monitor.model import Health, Transition


class Change(StrEnum):
    OPENED = "opened"
    JOINED = "joined"
    REOPENED = "reopened"
    RECOVERED = "recovered"  # one system is UP again, others still down
    RESOLVED = "resolved"
    FAILED_AGAIN = "failed again"  # a system already in the open incident went DOWN again


@dataclass(frozen=True, slots=True)
class Member:
    """A system's part in an incident."""

    name: str
    down_at: float
    up_at: float | None = None

    @property
    def down(self) -> bool:
        return self.up_at is None


@dataclass(frozen=True, slots=True)
class Incident:
    id: int
    opened_at: float
    members: tuple[Member, ...]
    cause: str
    resolved_at: float | None = None
    note: str = ""
    held: bool = False
    notified_at: float | None = None  # when customers started to be told
    last_update_at: float | None = None
    update_seq: int = 0
    pending_round: str | None = None  # an update round ("note", "periodic") not yet fanned out
    resolution_told_at: float | None = None  # when "resolved" messages were decided

    @property
    def is_open(self) -> bool:
        return self.resolved_at is None

    @property
    def status(self) -> str:
        return "open" if self.is_open else "resolved"

    @property
    def systems(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.members)

    def member(self, name: str) -> Member | None:
        return next((m for m in self.members if m.name == name), None)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one transition did: the incident as it now is, and how it changed."""

    incident: Incident
    change: Change
    system: str


@dataclass(frozen=True, slots=True)
class Step:
    """What one transition of a batch did to which incident."""

    incident_id: int
    change: Change
    transition: Transition


@dataclass(frozen=True, slots=True)
class Folded:
    """A batch of transitions applied: each changed incident as the batch left it, in the
    order they were known (new ones last), and one step per transition that changed one."""

    incidents: tuple[Incident, ...]
    steps: tuple[Step, ...]


_ORDER = attrgetter("down_at", "name")


class _Draft:
    """An incident while a batch changes it: members by name and a count of those down, so a
    step is a lookup, not a pass over an outage's thousands of members. The likely cause is
    kept up to date as members join (``best``), from counts of how many members depend on each
    one, built the first time a step needs it."""

    __slots__ = ("base", "best", "cause", "changed", "dependents", "down", "members", "resolved_at")

    def __init__(self, incident: Incident) -> None:
        self.base = incident
        self.members = {m.name: m for m in incident.members}
        self.down = sum(1 for m in incident.members if m.down)
        self.resolved_at = incident.resolved_at
        self.cause = incident.cause
        self.dependents: dict[str, int] | None = None
        self.best = ""
        self.changed = False

    @property
    def is_open(self) -> bool:
        return self.resolved_at is None

    def incident(self) -> Incident:
        members = tuple(sorted(self.members.values(), key=_ORDER))
        return replace(self.base, members=members, cause=self.cause, resolved_at=self.resolved_at)


@dataclass
class Correlator:
    """Applies transitions to incidents. ``depends_on`` maps each system to its dependencies."""

    depends_on: Mapping[str, Iterable[str]]
    window: float
    _closure: dict[str, frozenset[str]] = field(default_factory=dict, init=False)
    _dependents: dict[str, frozenset[str]] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        dependents: dict[str, set[str]] = {}
        for name in self.depends_on:
            self._closure[name] = frozenset(_reach(self.depends_on, name))
            for dependency in self._closure[name]:
                dependents.setdefault(dependency, set()).add(name)
        self._dependents = {name: frozenset(names) for name, names in dependents.items()}

    def depends(self, system: str, other: str) -> bool:
        """Whether ``system`` depends on ``other``, directly or through a chain."""
        return other in self._closure.get(system, frozenset())

    def apply(
        self,
        transition: Transition,
        incidents: Sequence[Incident],
        new_id: Callable[[], int],
        hold: bool = False,
    ) -> Outcome | None:
        """Fold one transition into the known incidents (open and recently resolved ones).

        ``hold`` opens new incidents held for on-call's release (``customer_messages: confirm``).
        Returns None when the transition concerns no incident (a system coming UP that was not
        part of one, such as UNKNOWN -> UP at start).
        """
        folded = self.fold([transition], incidents, new_id, hold)
        if not folded.steps:
            return None
        return Outcome(folded.incidents[0], folded.steps[0].change, transition.system)

    def fold(
        self,
        transitions: Iterable[Transition],
        incidents: Sequence[Incident],
        new_id: Callable[[], int],
        hold: bool = False,
    ) -> Folded:
        """Apply ``transitions``, in order, to the known incidents, as ``apply`` would one at a
        time, at a cost that does not grow with the size of the incidents: when thousands of
        systems fail together, each joins in constant time."""
        drafts = [_Draft(incident) for incident in incidents]
        steps = []
        for t in transitions:
            if t.current is Health.DOWN:
                draft, change = self._down(t, drafts, new_id, hold)
            elif t.current is Health.UP:
                found = self._up(t, drafts)
                if found is None:
                    continue
                draft, change = found
            else:
                continue
            draft.changed = True
            steps.append(Step(draft.base.id, change, t))
        changed = tuple(d.incident() for d in drafts if d.changed)
        return Folded(changed, tuple(steps))

    def _down(
        self, t: Transition, drafts: list[_Draft], new_id: Callable[[], int], hold: bool
    ) -> tuple[_Draft, Change]:
        open_ones = [d for d in drafts if d.is_open]
        for draft in sorted(open_ones, key=lambda d: d.base.opened_at, reverse=True):
            existing = draft.members.get(t.system)
            if existing is not None:
                self._fail_again(draft, existing)
                return draft, Change.FAILED_AGAIN
            if self._belongs(t, draft):
                self._join(draft, Member(t.system, t.at))
                return draft, Change.JOINED
        recently_resolved = [
            d
            for d in drafts
            if d.resolved_at is not None
            and t.at - d.resolved_at <= self.window
            and (t.system in d.members or self._belongs(t, d))
        ]
        if recently_resolved:
            draft = max(recently_resolved, key=lambda d: d.resolved_at or 0.0)
            existing = draft.members.get(t.system)
            if existing is not None:
                self._fail_again(draft, existing)
            else:
                self._join(draft, Member(t.system, t.at))
            draft.resolved_at = None
            return draft, Change.REOPENED
        opened = Incident(
            id=new_id(),
            opened_at=t.at,
            members=(Member(t.system, t.at),),
            cause=t.system,
            held=hold,
        )
        draft = _Draft(opened)
        drafts.append(draft)
        return draft, Change.OPENED

    def _up(self, t: Transition, drafts: list[_Draft]) -> tuple[_Draft, Change] | None:
        for draft in drafts:
            member = draft.members.get(t.system)
            if not draft.is_open or member is None or not member.down:
                continue
            draft.members[t.system] = replace(member, up_at=t.at)
            draft.down -= 1
            if draft.down == 0:
                draft.resolved_at = t.at
                return draft, Change.RESOLVED
            return draft, Change.RECOVERED
        return None

    def _belongs(self, t: Transition, draft: _Draft) -> bool:
        if t.at - draft.base.opened_at <= self.window:
            return True
        return _any_in(self._closure.get(t.system, frozenset()), draft.members) or _any_in(
            self._dependents.get(t.system, frozenset()), draft.members
        )

    def _fail_again(self, draft: _Draft, member: Member) -> None:
        if not member.down:
            draft.members[member.name] = replace(member, up_at=None)
            draft.down += 1
        draft.cause = self._best(draft)

    def _join(self, draft: _Draft, member: Member) -> None:
        counts = self._counts(draft)
        draft.members[member.name] = member
        draft.down += 1
        # Only the newcomer and what it depends on count differently: the others keep their
        # place behind the best so far.
        candidates = [draft.best, member.name]
        for dependency in self._closure.get(member.name, frozenset()):
            if dependency in draft.members and dependency != member.name:
                counts[dependency] += 1
                candidates.append(dependency)
        counts[member.name] = sum(
            1
            for other in self._dependents.get(member.name, frozenset())
            if other in draft.members and other != member.name
        )
        draft.best = min(candidates, key=lambda name: self._rank(draft, counts, name))
        draft.cause = draft.best

    def _best(self, draft: _Draft) -> str:
        self._counts(draft)
        return draft.best

    def _counts(self, draft: _Draft) -> dict[str, int]:
        if draft.dependents is None:
            counts = dict.fromkeys(draft.members, 0)
            for name in draft.members:
                for dependency in self._closure.get(name, frozenset()):
                    if dependency in counts and dependency != name:
                        counts[dependency] += 1
            draft.dependents = counts
            draft.best = min(draft.members, key=lambda name: self._rank(draft, counts, name))
        return draft.dependents

    @staticmethod
    def _rank(draft: _Draft, counts: dict[str, int], name: str) -> tuple[int, float, str]:
        """The likely cause ranks first: the system most members depend on, then the first
        to fail, then by name."""
        return (-counts[name], draft.members[name].down_at, name)


def _any_in(names: frozenset[str], members: Mapping[str, Member]) -> bool:
    if len(names) <= len(members):
        return any(name in members for name in names)
    return any(name in names for name in members)


def _reach(depends_on: Mapping[str, Iterable[str]], name: str) -> set[str]:
    seen: set[str] = set()
    stack = list(depends_on.get(name, ()))
    while stack:
        current = stack.pop()
        if current not in seen:
            seen.add(current)
            stack.extend(depends_on.get(current, ()))
    return seen
