"""One file -> a ``Document``: its data with ``${NAME}`` filled in from the environment, where
each key is written, and each value as written; or a problem saying why the file cannot be read.

Reading stops past ``MAX_FILE_BYTES``; a duplicate key, or a ``${NAME}`` naming an unset
variable, is a problem on its line, and the rest of the file is still checked.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from monitor.config.parsing import MAX_VALUES, Unreadable, field_on_line, parse
from monitor.config.problems import Problem, dotted, kind_of
from monitor.config.schema import KeyPath

# A check file is a few kilobytes. Reading stops past this size: parsing YAML in Python takes
# seconds per megabyte, and a reload must not stall the monitor over a file that is not a check.
MAX_FILE_BYTES = 1024 * 1024
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


@dataclass
class Document:
    """One file's data, with where each part of it is written and how."""

    file: str
    data: dict[str, Any]
    lines: dict[KeyPath, int]  # where each key (or list item) is written
    texts: dict[KeyPath, str]  # each scalar exactly as written, before ${NAME} substitution
    unset: list[KeyPath]  # values naming an unset environment variable

    def line_of(self, loc: KeyPath) -> int | None:
        """The line of ``loc``, or of its nearest written ancestor (where a missing key belongs)."""
        for end in range(len(loc), -1, -1):
            line = self.lines.get(tuple(loc[:end]))
            if line is not None:
                return line
        return None


class _TooLarge(Exception):
    """The file is over ``MAX_FILE_BYTES``; ``head`` is its text up to the line that crosses."""

    def __init__(self, head: str) -> None:
        super().__init__()
        self.head = head


def read_document(
    path: Path,
    env: Mapping[str, str],
    problems: list[Problem],
    *,
    empty_ok: bool,
    holds: tuple[str, str] | None = None,
) -> Document | None:
    """``path`` as a Document, or None when it cannot be read (each reason is in ``problems``,
    as are a readable file's duplicate keys and unset variables). ``empty_ok``: an empty file
    is no keys (monitor.yaml), not a mistake (a check file). ``holds``: what the file is and
    the keys it needs, for its problems, when it is neither (``("a maintenance window", "name:
    ..., systems: ...")``)."""
    file = str(path)
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
            if len(raw) > MAX_FILE_BYTES:
                # The line the limit falls in, read to its end so its key can be named.
                raw += handle.readline(4096)
                end = raw.find(b"\n", MAX_FILE_BYTES)
                raise _TooLarge(raw[: end if end >= 0 else None].decode("utf-8", "replace"))
    except _TooLarge as exc:
        line = exc.head.count("\n") + 1
        problems.append(
            Problem(
                file,
                line,
                field_on_line(exc.head, line),
                f"the file is larger than {MAX_FILE_BYTES // 1024} KiB (it goes on past this"
                " line): a check file is a few kilobytes; is this the right file?",
            )
        )
        return None
    except OSError as exc:
        problems.append(Problem(file, None, "", f"cannot read the file: {exc.strerror or exc}"))
        return None
    try:
        # Line ends as text mode reads them, so a CRLF file reads as it always has.
        text = raw.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        problems.append(Problem(file, line, "", "cannot read the file: it is not UTF-8 text"))
        return None
    try:
        node, data = parse(text)
        if data is None and empty_ok:
            data = {}
        if not isinstance(data, dict):
            raise Unreadable(1, _not_a_mapping(data, empty_ok, holds))
        index = _Index(file, {}, {}, problems)
        if node is not None:
            _index(node, (), index)
        unset: list[KeyPath] = []
        data = _substitute_env(data, (), env, index, unset)
    except Unreadable as exc:
        problems.append(Problem(file, exc.line, exc.field, exc.message))
        return None
    except RecursionError:
        problems.append(Problem(file, None, "", "values are nested too deeply"))
        return None
    return Document(file, data, index.lines, index.texts, unset)


def _not_a_mapping(data: object, settings: bool, holds: tuple[str, str] | None = None) -> str:
    shape = "org: ..., notify_after: ..." if settings else "name: ..., title: ..., probe: ..."
    if holds is not None:
        shape = holds[1]
        if data is None:
            return f"the file is empty: {holds[0]} needs {shape}"
    if data is None:
        return "the file is empty: a check file needs at least name, title and probe"
    return f"the file holds {kind_of(data)}, but it should be keys and values ({shape})"


@dataclass
class _Index:
    file: str
    lines: dict[KeyPath, int]
    texts: dict[KeyPath, str]
    problems: list[Problem]
    seen: int = 0


def _index(
    node: yaml.Node, path: KeyPath, into: _Index, within: frozenset[int] = frozenset()
) -> None:
    """Record where each key and item is written and each scalar's text; report duplicate keys."""
    line = node.start_mark.line + 1
    if id(node) in within:
        raise Unreadable(line, "an alias (*name) refers to a value that contains it", dotted(path))
    into.seen += 1
    if into.seen > MAX_VALUES:
        top = path[:1]  # the key a person wrote, not the depth the aliases reached
        raise Unreadable(
            into.lines.get(top, line),
            f"aliases here expand to more than {MAX_VALUES} values",
            dotted(top),
        )
    into.lines.setdefault(path, line)
    if isinstance(node, yaml.ScalarNode):
        into.texts[path] = str(node.value)
        return
    within = within | {id(node)}
    if isinstance(node, yaml.MappingNode):
        first: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else "?"
            key_line = key_node.start_mark.line + 1
            if key in first and key != "<<":
                into.problems.append(
                    Problem(
                        into.file,
                        key_line,
                        dotted((*path, key)),
                        f"duplicate key {key!r} (first written on line {first[key]})",
                    )
                )
            first.setdefault(key, key_line)
            into.lines[(*path, key)] = key_line
            _index(value_node, (*path, key), into, within)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _index(item, (*path, index), into, within)


def _substitute_env(
    value: Any, path: KeyPath, env: Mapping[str, str], at: _Index, unset: list[KeyPath]
) -> Any:
    if isinstance(value, str):

        def replace(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in env:
                return env[name]
            if default is not None:
                return default
            unset.append(path)
            at.problems.append(
                Problem(
                    at.file,
                    at.lines.get(path),
                    dotted(path),
                    f"environment variable {name} is not set"
                    f" (or write ${{{name}:-default}} to give a default)",
                )
            )
            return ""

        return _ENV_REF.sub(replace, value)
    if isinstance(value, dict):
        return {k: _substitute_env(v, (*path, k), env, at, unset) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute_env(v, (*path, i), env, at, unset) for i, v in enumerate(value)]
    return value
