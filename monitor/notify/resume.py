"""After a restart or a change of leader: what the saved states show and the incidents do not.

Transitions are saved unapplied and applied with the incident changes they make, in one commit
(docs/store.md), so no crash cuts one off now. What is left to find: a database of a monitor
before schema 3, which applied transitions from memory and may have died first, and a state
saved without its transition. Pure but for the incidents, read through the ``incidents_since``
it is given (the store's, awaited).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable

from monitor.incidents.correlation import Incident
from monitor.model import Health, SystemState, Transition


async def missed_transitions(
    states: Iterable[SystemState],
    incidents_since: Callable[[float], Awaitable[Iterable[Incident]]],
) -> list[Transition]:
    """The transitions the saved ``states`` made that the incidents do not show, in the order
    of ``states``, each at its original time. ``incidents_since(t)`` gives the open incidents
    and those resolved since ``t``; it is called only when some state was decided.

    A saved state older than what the incidents show (the store refused the transition, then
    took the incident, then the process died) is stale, not missed: it is left alone.
    """
    decided = [
        (state, state.since)
        for state in states
        if state.since is not None and state.health is not Health.UNKNOWN
    ]
    if not decided:
        return []
    down_at: dict[str, float] = {}  # down in an open incident, since
    up_at: dict[str, float] = {}  # the latest recovery an incident recorded
    for incident in await incidents_since(min(at for _, at in decided)):
        for m in incident.members:
            if incident.is_open and m.down:
                down_at[m.name] = m.down_at
            if m.up_at is not None:
                up_at[m.name] = max(m.up_at, up_at.get(m.name, m.up_at))
    missed = []
    for state, at in decided:
        name = state.system
        if state.health is Health.DOWN and name not in down_at:
            if name in up_at and at <= up_at[name]:
                continue
            previous, streak = Health.UP, state.fail_streak
        elif state.health is Health.UP and name in down_at:
            if at < down_at[name]:
                continue
            previous, streak = Health.DOWN, state.pass_streak
        else:
            continue
        missed.append(Transition(name, at, previous, state.health, state.last_reason, streak))
    return missed
