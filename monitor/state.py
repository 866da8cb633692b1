"""UP/DOWN with thresholds: results in, transitions out. Pure: no clock, no I/O.

A system is UNKNOWN until probed, DOWN after ``fail_after`` consecutive failures and UP after
``recover_after`` consecutive passes. From UNKNOWN, the first threshold reached decides, so a
system that is down when the monitor starts is reported DOWN, not UP first.
"""

from __future__ import annotations

from dataclasses import replace

from monitor.model import Health, ProbeResult, SystemState, Transition


def observe(
    state: SystemState, result: ProbeResult, fail_after: int, recover_after: int
) -> tuple[SystemState, Transition | None]:
    """Fold one probe result into ``state``; return the new state and the transition, if any."""
    at = result.started_at
    if result.ok:
        state = replace(state, pass_streak=state.pass_streak + 1, fail_streak=0)
        target, streak, needed = Health.UP, state.pass_streak, recover_after
    else:
        state = replace(state, fail_streak=state.fail_streak + 1, pass_streak=0)
        target, streak, needed = Health.DOWN, state.fail_streak, fail_after
    state = replace(state, last_reason=result.reason, last_checked=at)
    if state.health is target or streak < needed:
        return state, None
    transition = Transition(
        system=state.system,
        at=at,
        previous=state.health,
        current=target,
        reason=result.reason,
        streak=streak,
    )
    return replace(state, health=target, since=at), transition
