"""Probe timing: stable offsets spread checks out; due times are computed, not remembered."""

from __future__ import annotations

import pytest

from monitor.probing.scheduler import due_time, next_due, stable_offset


def test_offset_is_stable_and_within_the_interval() -> None:
    """The same system always gets the same slot, somewhere inside its interval."""
    assert stable_offset("payment", 15.0) == stable_offset("payment", 15.0)
    assert 0 <= stable_offset("payment", 15.0) < 15.0


def test_a_thousand_checks_on_one_interval_spread_out() -> None:
    """1,000 checks every 10s land in at least 90 of the 100 tenth-of-a-second slots."""
    slots = {int(stable_offset(f"system-{i}", 10.0) * 10) for i in range(1000)}
    assert len(slots) >= 90


@pytest.mark.parametrize(
    ("now", "expected_due"),
    [
        (1_700_000_003.0, 1_700_000_003.0),  # exactly on a slot
        (1_700_000_004.5, 1_700_000_003.0),  # between slots: the earlier one
        (1_700_000_017.9, 1_700_000_013.0),
    ],
)
def test_due_time_is_the_latest_slot_not_after_now(now: float, expected_due: float) -> None:
    """With every=10s and offset=3s, slots fall at ...3, ...13, ...23 seconds."""
    assert due_time(now, 10.0, 3.0) == pytest.approx(expected_due)


def test_next_due_is_strictly_after_now() -> None:
    """A job scheduled right on a slot starts at the next one, not now."""
    assert next_due(1_700_000_003.0, 10.0, 3.0) == pytest.approx(1_700_000_013.0)
