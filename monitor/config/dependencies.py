"""``depends_on`` across check files: each entry names a system, and no chain comes back round.

These checks need every file read first, so each file leaves a ``Declared``, the little of it
they need, rather than its whole document.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from monitor.config.documents import Document
from monitor.config.problems import Problem
from monitor.config.schema import SystemConfig


@dataclass(frozen=True, slots=True)
class Declared:
    """Of one check file, what the checks across files need: its name's line, its depends_on."""

    file: str
    name_line: int | None
    depends_on: tuple[tuple[int, object, int | None], ...]  # (index, entry, line)

    @classmethod
    def of(cls, doc: Document) -> Declared:
        entries = doc.data.get("depends_on")
        written = enumerate(entries) if isinstance(entries, list) else ()
        return cls(
            doc.file,
            doc.line_of(("name",)),
            tuple((i, entry, doc.line_of(("depends_on", i))) for i, entry in written),
        )


def unknown_dependencies(checks: list[Declared], names: set[str]) -> Iterator[Problem]:
    """Each ``depends_on`` entry naming no system, in every check file, valid or not."""
    for check in checks:
        for index, dependency, line in check.depends_on:
            if not isinstance(dependency, str) or dependency in names:
                continue
            close = difflib.get_close_matches(dependency, sorted(names), n=1)
            yield Problem(
                check.file,
                line,
                f"depends_on[{index}]",
                f"no system is named {dependency!r}"
                + (f" (did you mean {close[0]!r}?)" if close else ""),
            )


def dependency_cycles(
    systems: dict[str, SystemConfig], declared: dict[str, Declared]
) -> Iterator[Problem]:
    """Each cycle of ``depends_on``, once, on the line of its first member's entry."""
    for cycle in _cycles(systems):
        first = cycle[0]
        index = systems[first].depends_on.index(cycle[1 % len(cycle)])
        yield Problem(
            declared[first].file,
            declared[first].depends_on[index][2],
            "depends_on",
            "forms a cycle: " + " -> ".join([*cycle, first]),
        )


def _cycles(systems: dict[str, SystemConfig]) -> list[list[str]]:
    """Each dependency cycle once, starting from its alphabetically first member."""
    found: list[list[str]] = []
    seen_sets: set[frozenset[str]] = set()

    def walk(name: str, trail: list[str]) -> None:
        for dependency in systems[name].depends_on:
            if dependency not in systems:
                continue
            if dependency in trail:
                cycle = trail[trail.index(dependency) :]
                key = frozenset(cycle)
                if key not in seen_sets:
                    seen_sets.add(key)
                    start = cycle.index(min(cycle))
                    found.append(cycle[start:] + cycle[:start])
                continue
            walk(dependency, [*trail, dependency])

    for name in sorted(systems):
        walk(name, [name])
    return found


def dependency_closure(systems: Mapping[str, SystemConfig], name: str) -> set[str]:
    """Every system ``name`` depends on, directly or through a chain."""
    result: set[str] = set()
    stack = list(systems[name].depends_on) if name in systems else []
    while stack:
        current = stack.pop()
        if current in result or current not in systems:
            continue
        result.add(current)
        stack.extend(systems[current].depends_on)
    return result
