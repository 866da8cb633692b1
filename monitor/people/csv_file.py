"""A CSV file of people, as ``monitor users import`` reads it: every row checked, every problem
named with its line.

Columns ``id,name,email,phone,systems`` (``systems`` is ``;``-separated) and optionally
``webhook``, ``timezone`` (IANA) and ``language`` (BCP 47). Each row is checked by
``monitor.people.Subscriber``, the rules of ``POST /api/v1/users``; an id given twice in the
file is refused too. Cells are trimmed, and an empty cell is a value not given.
"""

from __future__ import annotations

import csv
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from monitor.config import Problem
from monitor.model import Person
from monitor.people.rules import CONTACTS, Subscriber, known_systems, refusals
from monitor.text import unknown_name

REQUIRED_COLUMNS = ("id", "name", "email", "phone", "systems")
OPTIONAL_COLUMNS = ("webhook", "timezone", "language")
COLUMNS = (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS)


class UnreadableFile(Exception):
    """The file is not a CSV of people at all (its header, its encoding): nothing in it counts."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


@dataclass
class PeopleFile:
    """The people of the rows without a problem, and every problem of the others."""

    people: list[Person] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    rows: int = 0
    bad_rows: int = 0


def read_people(path: Path, systems: Collection[str]) -> PeopleFile:
    """Every row of ``path`` checked against the configured ``systems``.

    Raises UnreadableFile when the file cannot be read, is not UTF-8, or its header is wrong.
    """
    where = str(path)
    result = PeopleFile()
    context = known_systems(systems)
    first_line: dict[str, int] = {}  # id -> the line that gave it first
    line = 1
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            header = _header(where, next(reader, None))
            id_at = header.index("id")
            line = reader.line_num + 1
            for cells in reader:
                if any(cell.strip() for cell in cells):
                    result.rows += 1
                    person, problems = _check_row(where, line, header, cells, context)
                    person_id = cells[id_at].strip() if id_at < len(cells) else ""
                    problems[:0] = _repeated(where, line, person_id, first_line)
                    if problems:
                        result.bad_rows += 1
                        result.problems.extend(problems)
                    elif person is not None:
                        result.people.append(person)
                line = reader.line_num + 1  # a quoted cell may span lines
    except OSError as exc:
        raise UnreadableFile([Problem(where, None, "", f"cannot read it: {exc.strerror}")]) from exc
    except UnicodeDecodeError as exc:
        message = f"not UTF-8 text (byte {exc.start} is {exc.object[exc.start]:#04x})"
        raise UnreadableFile([Problem(where, None, "", message)]) from exc
    except csv.Error as exc:
        raise UnreadableFile([Problem(where, line, "", f"not CSV: {exc}")]) from exc
    return result


def _header(where: str, header: list[str] | None) -> list[str]:
    if header is None:
        columns = ",".join(COLUMNS)
        raise UnreadableFile(
            [Problem(where, None, "", f"empty: line 1 names the columns, {columns}")]
        )
    names = [name.strip() for name in header]
    problems = []
    for index, name in enumerate(names):
        if name not in COLUMNS:
            problems.append(Problem(where, 1, name, unknown_name("column", name, COLUMNS)))
        elif name in names[:index]:
            problems.append(Problem(where, 1, name, "this column is named twice"))
    missing = [name for name in REQUIRED_COLUMNS if name not in names]
    if missing:
        problems.append(Problem(where, 1, "", f"missing column(s): {', '.join(missing)}"))
    if problems:
        raise UnreadableFile(problems)
    return names


def _check_row(
    where: str, line: int, header: list[str], cells: list[str], context: dict[str, object]
) -> tuple[Person | None, list[Problem]]:
    """The person of one row, checked as ``POST /api/v1/users`` checks one."""
    if len(cells) != len(header):
        message = f"{len(cells)} cells, where line 1 names {len(header)} columns"
        return None, [Problem(where, line, "", message)]
    row = {name: cell.strip() for name, cell in zip(header, cells, strict=True)}
    data: dict[str, object] = {
        "id": row["id"],
        "name": row["name"],
        "systems": [name.strip() for name in row["systems"].split(";") if name.strip()],
    }
    data.update({name: row[name] for name in (*CONTACTS, *OPTIONAL_COLUMNS) if row.get(name)})
    try:
        subscriber = Subscriber.model_validate(data, context=context)
    except ValidationError as exc:
        # "systems.1" is in the systems cell: the file has no finer place to point at.
        found = [(r.field.split(".")[0], r.reason) for r in refusals(data, exc)]
        return None, [Problem(where, line, column, reason) for column, reason in found]
    return subscriber.person(subscriber.systems), []


def _repeated(where: str, line: int, person_id: str, first_line: dict[str, int]) -> list[Problem]:
    """An id given on an earlier line already (each person is one row)."""
    if not person_id:
        return []
    first = first_line.setdefault(person_id, line)
    if first == line:
        return []
    return [Problem(where, line, "id", f"{person_id!r} is on line {first} already")]
