"""UP/DOWN with thresholds: results in, transitions out. Pure: no clock, no I/O.

A system is UNKNOWN until probed, DOWN after ``fail_after`` consecutive failures and UP after
``recover_after`` consecutive passes. From UNKNOWN, the first threshold reached decides, so a
system that is down when the monitor starts is reported DOWN, not UP first.
"""

from __future__ import annotations

from monitor.model import Health, ProbeResult, SystemState, Transition


def observe(
    state: SystemState, result: ProbeResult, fail_after: int, recover_after: int
) -> tuple[SystemState, Transition | None]:
    """Fold one probe result into ``state``; return the new state and the transition, if any."""
    at = result.started_at
    # Built whole rather than with dataclasses.replace: this runs once per probe.
    if result.ok:
        passes, fails = state.pass_streak + 1, 0
        target, streak, needed = Health.UP, passes, recover_after
    else:
        passes, fails = 0, state.fail_streak + 1
        target, streak, needed = Health.DOWN, fails, fail_after
    changed = state.health is not target and streak >= needed
    health, since = (target, at) if changed else (state.health, state.since)
    new_state = SystemState(state.system, health, since, fails, passes, result.reason, at)
    if not changed:
        return new_state, None
    transition = Transition(
        system=state.system,
        at=at,
        previous=state.health,
        current=target,
        reason=result.reason,
        streak=streak,
    )
    return new_state, transition
