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


@dataclass
class Correlator:
    """Applies transitions to incidents. ``depends_on`` maps each system to its dependencies."""

    depends_on: Mapping[str, Iterable[str]]
    window: float
    _closure: dict[str, frozenset[str]] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        for name in self.depends_on:
            self._closure[name] = frozenset(_reach(self.depends_on, name))

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
        if transition.current is Health.DOWN:
            return self._down(transition, incidents, new_id, hold)
        if transition.current is Health.UP:
            return self._up(transition, incidents)
        return None

    def _down(
        self,
        t: Transition,
        incidents: Sequence[Incident],
        new_id: Callable[[], int],
        hold: bool,
    ) -> Outcome:
        open_ones = [i for i in incidents if i.is_open]
        for incident in sorted(open_ones, key=lambda i: i.opened_at, reverse=True):
            existing = incident.member(t.system)
            if existing is not None:
                again = replace(existing, up_at=None)
                return Outcome(self._with(incident, again), Change.FAILED_AGAIN, t.system)
            if self._belongs(t, incident):
                joined = self._with(incident, Member(t.system, t.at))
                return Outcome(joined, Change.JOINED, t.system)
        recently_resolved = [
            i
            for i in incidents
            if not i.is_open
            and i.resolved_at is not None
            and t.at - i.resolved_at <= self.window
            and (i.member(t.system) is not None or self._belongs(t, i))
        ]
        if recently_resolved:
            incident = max(recently_resolved, key=lambda i: i.resolved_at or 0.0)
            existing = incident.member(t.system)
            member = replace(existing, up_at=None) if existing else Member(t.system, t.at)
            reopened = replace(self._with(incident, member), resolved_at=None)
            return Outcome(reopened, Change.REOPENED, t.system)
        incident = Incident(
            id=new_id(),
            opened_at=t.at,
            members=(Member(t.system, t.at),),
            cause=t.system,
            held=hold,
        )
        return Outcome(incident, Change.OPENED, t.system)

    def _up(self, t: Transition, incidents: Sequence[Incident]) -> Outcome | None:
        for incident in incidents:
            member = incident.member(t.system)
            if not incident.is_open or member is None or not member.down:
                continue
            updated = self._with(incident, replace(member, up_at=t.at), recompute_cause=False)
            if all(not m.down for m in updated.members):
                return Outcome(replace(updated, resolved_at=t.at), Change.RESOLVED, t.system)
            return Outcome(updated, Change.RECOVERED, t.system)
        return None

    def _belongs(self, t: Transition, incident: Incident) -> bool:
        if t.at - incident.opened_at <= self.window:
            return True
        return any(
            self.depends(t.system, m.name) or self.depends(m.name, t.system)
            for m in incident.members
        )

    def _with(self, incident: Incident, member: Member, recompute_cause: bool = True) -> Incident:
        members = (*(m for m in incident.members if m.name != member.name), member)
        members = tuple(sorted(members, key=lambda m: (m.down_at, m.name)))
        cause = self.cause(members) if recompute_cause else incident.cause
        return replace(incident, members=members, cause=cause)

    def cause(self, members: Sequence[Member]) -> str:
        """The system most others in the incident depend on; without any, the first to fail."""
        names = [m.name for m in members]

        def dependents(name: str) -> int:
            return sum(1 for other in names if other != name and self.depends(other, name))

        first = {m.name: m.down_at for m in members}
        return min(names, key=lambda n: (-dependents(n), first[n], n))


def _reach(depends_on: Mapping[str, Iterable[str]], name: str) -> set[str]:
    seen: set[str] = set()
    stack = list(depends_on.get(name, ()))
    while stack:
        current = stack.pop()
        if current not in seen:
            seen.add(current)
            stack.extend(depends_on.get(current, ()))
    return seen
