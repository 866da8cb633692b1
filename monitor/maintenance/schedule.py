"""Every maintenance window there is now (the files' and the API's), by system: which one a
system is in at a moment, which are under way, which start soon.

Pure: built from windows, asked with moments. With no window at all it answers at once, so
the notifier's tick asks it about every incident at no cost worth measuring.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from monitor.maintenance.recurrence import occurrence_at, occurrences
from monitor.maintenance.windows import Occurrence, UnusableWindow, Window, window_ref

_REMEMBERED = 100_000  # answers ``covering`` keeps (a mass outage's members), then starts over


class Schedule:
    """The windows in force, ``windows`` in the order given (the files', then the API's), and
    the API's windows this monitor cannot read (``unusable``: none is in force)."""

    def __init__(
        self, windows: Iterable[Window] = (), unusable: Iterable[UnusableWindow] = ()
    ) -> None:
        self.windows: tuple[Window, ...] = tuple(windows)
        self.unusable: tuple[UnusableWindow, ...] = tuple(unusable)
        self._unusable_refs = frozenset(u.ref for u in self.unusable)
        self._by_system: dict[str, list[Window]] = {}
        for window in self.windows:
            for system in window.systems:
                self._by_system.setdefault(system, []).append(window)
        # The notifier asks about each member of each incident at every tick, with the same
        # moments (when each failed): answered once (~2 us each), then looked up.
        self._covering: dict[tuple[str, float], Occurrence | None] = {}

    def same_windows(
        self, windows: Sequence[Window], unusable: Sequence[UnusableWindow] = ()
    ) -> bool:
        """Whether ``windows`` (and ``unusable``) are this schedule's, the very same ones, in
        the same order."""
        return (
            len(windows) == len(self.windows)
            and all(a is b for a, b in zip(windows, self.windows, strict=True))
            and tuple(unusable) == self.unusable
        )

    def unreadable(self, occurrence_ref: str) -> bool:
        """Whether the occurrence's window is one of those this monitor cannot read (it is
        still there: neither removed nor in force)."""
        return bool(self._unusable_refs) and window_ref(occurrence_ref) in self._unusable_refs

    def __bool__(self) -> bool:
        return bool(self.windows)

    def systems(self) -> frozenset[str]:
        """The systems some window is about."""
        return frozenset(self._by_system)

    def covering(self, system: str, at: float) -> Occurrence | None:
        """The occurrence of a window on ``system`` under way at ``at`` (the one that ends last,
        when windows overlap); None when the system is not in maintenance then."""
        windows = self._by_system.get(system)
        if not windows:
            return None
        key = (system, at)
        if key in self._covering:
            return self._covering[key]
        found = [o for window in windows if (o := occurrence_at(window, at)) is not None]
        answer = max(found, key=lambda o: (o.end, o.ref)) if found else None
        if len(self._covering) >= _REMEMBERED:
            self._covering.clear()
        self._covering[key] = answer
        return answer

    def active(self, now: float) -> dict[str, Occurrence]:
        """Each system in maintenance at ``now``, with the occurrence it is in."""
        active = {}
        for system in self._by_system:
            found = self.covering(system, now)
            if found is not None:
                active[system] = found
        return active

    def between(self, since: float, until: float) -> list[Occurrence]:
        """Every occurrence overlapping ``[since, until)``, by start, then window."""
        found = [o for window in self.windows for o in occurrences(window, since, until)]
        return sorted(found, key=lambda o: (o.start, o.ref))

    def find(self, ref: str, around: Sequence[float]) -> Occurrence | None:
        """The occurrence named ``ref`` (``Occurrence.ref``) among those overlapping
        ``around`` (two moments); None when no window has it now (removed, moved)."""
        since, until = around
        return next((o for o in self.between(since, until) if o.ref == ref), None)
