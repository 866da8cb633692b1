"""Maintenance windows in the files: ``checks/maintenance/*.yaml`` (one window a file) and the
``maintenance:`` list of monitor.yaml, read as written and checked against the systems and
each other (a window naming a system no check file declares, two windows of one name).

The loader validates each window against ``schema.NamedMaintenanceWindow``; this module finds
the files and says what is wrong across them.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from monitor.config.documents import Document, read_document
from monitor.config.problems import Problem, dotted
from monitor.config.schema import KeyPath, NamedMaintenanceWindow
from monitor.text import unknown_name

MAINTENANCE_FOLDER = "maintenance"  # checks/maintenance/*.yaml
_HOLDS = ("a maintenance window", "name, systems, start, end and note")


@dataclass(frozen=True)
class Written:
    """A window as a file writes it: ``at`` is where in ``doc`` (``()`` for a file of its own,
    ``("maintenance", 2)`` in monitor.yaml's list)."""

    window: NamedMaintenanceWindow
    doc: Document
    at: KeyPath = ()

    def line(self, *keys: str | int) -> int | None:
        return self.doc.line_of((*self.at, *keys))


def window_documents(
    directory: Path, env: Mapping[str, str], problems: list[Problem]
) -> Iterator[Document]:
    """Each file of ``directory/maintenance/`` that can be read, as a Document with its times
    as written (``as_written``); the reasons the others cannot go into ``problems``."""
    folder = directory / MAINTENANCE_FOLDER
    if not folder.is_dir():
        return
    paths = sorted(p for p in folder.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    for path in paths:
        doc = read_document(path, env, problems, empty_ok=False, holds=_HOLDS)
        if doc is not None:
            as_written(doc.data, doc.texts, ())
            yield doc


def settings_as_written(doc: Document) -> None:
    """monitor.yaml's windows with their times as written (``as_written``)."""
    windows = doc.data.get(MAINTENANCE_FOLDER)
    if isinstance(windows, list):
        for index, window in enumerate(windows):
            if isinstance(window, dict):
                as_written(window, doc.texts, (MAINTENANCE_FOLDER, index))


def as_written(window: dict[str, Any], texts: Mapping[KeyPath, str], at: KeyPath) -> None:
    """A window's ``start`` and ``end`` as the file writes them: YAML 1.1 reads ``14:30`` as the
    number 870 (minutes and seconds, base 60), which no one writing a time of day means."""
    for key in ("start", "end"):
        value = window.get(key)
        written = texts.get((*at, key))
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if number and written is not None and ":" in written:
            window[key] = written


def window_problems(
    written: Sequence[Written], systems: Collection[str], refused: Collection[str]
) -> list[Problem]:
    """A system no check file declares (unless its file was refused: it has problems of its
    own), and a window name used twice, each with the file and line."""
    problems = []
    first: dict[str, Written] = {}
    for found in written:
        for index, name in enumerate(found.window.systems):
            if name not in systems and name not in refused:
                where = (*found.at, "systems", index)
                problems.append(
                    Problem(
                        found.doc.file,
                        found.doc.line_of(where),
                        dotted(where),
                        unknown_name("system", name, systems),
                    )
                )
        name = found.window.name
        other = first.setdefault(name, found)
        if other is not found:
            problems.append(
                Problem(
                    found.doc.file,
                    found.line("name"),
                    dotted((*found.at, "name")),
                    f"duplicate window name {name!r}: {other.doc.file}:{other.line('name')} "
                    "uses it already",
                )
            )
    return problems
