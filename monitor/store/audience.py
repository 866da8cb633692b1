"""Counting the people an incident affects, as the notifier counts them, with those of them who
unsubscribed apart: two reads of any backend (both counted by the database)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from monitor.store.types import AffectedCount


class AudienceReads(Protocol):
    """What counting the audience reads (``People`` and ``Subscriptions`` have them)."""

    async def audience_count(
        self, systems: Iterable[str], attempts_from: float, until: float
    ) -> int: ...
    async def unsubscribed_attempters(
        self, systems: Iterable[str], attempts_from: float, until: float
    ) -> int: ...


async def count_audience(
    store: AudienceReads, systems: Iterable[str], attempts_from: float, until: float
) -> AffectedCount:
    """The people ``systems`` failing affects now (their subscribers, and those who reported an
    attempt on one of them between the two moments), and how many of them unsubscribed."""
    names = sorted(set(systems))
    return AffectedCount(
        await store.audience_count(names, attempts_from, until),
        await store.unsubscribed_attempters(names, attempts_from, until),
    )
