"""YAML text -> its node tree (for lines) and its data, safely and within limits, or
``Unreadable`` saying in an on-call engineer's words where and why it cannot be read.

libyaml parses; a file it refuses is parsed again by PyYAML's pure-Python parser, whose
messages are the ones translated here. A file that does not parse still gets a field named,
guessed from the keys above the line by their indentation.
"""

from __future__ import annotations

import re
from collections.abc import Hashable
from typing import TYPE_CHECKING, Any

import yaml
from yaml._yaml import CParser
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import Resolver
from yaml.scanner import Scanner

MAX_VALUES = 20_000  # a check file has dozens; more is a mistake, or aliases expanding
_MAX_DEPTH = 50  # a check file nests a handful deep; a JSON body for a step, a few more


class Unreadable(Exception):
    """The file as a whole cannot be checked; ``line`` and ``field`` say where it went wrong."""

    def __init__(self, line: int | None, message: str, field: str = "") -> None:
        super().__init__(message)
        self.line = line
        self.message = message
        self.field = field


class _Overgrown(Exception):
    """The file writes more values, or nests them deeper, than any check file does."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


class _Rules(Composer, SafeConstructor):
    """How check files are read, whichever parser reads them: safely, keeping mapping keys as
    written (``yes:`` stays "yes", ``200:`` "200").

    Composing stops at the value after the ``MAX_VALUES``th written one (keys count; an alias
    does not), so a file of 100,000 keys is refused in a second rather than parsed for a minute,
    and at a value nested ``_MAX_DEPTH`` deep, before Python's recursion limit is near.
    """

    _written = 0
    _depth = 0
    if TYPE_CHECKING:  # from the parser each loader mixes in

        def check_event(self, *choices: Any) -> bool: ...
        def peek_event(self) -> Any: ...

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        alias = self.check_event(yaml.AliasEvent)
        line = self.peek_event().start_mark.line + 1
        if self._depth >= _MAX_DEPTH:
            raise _Overgrown(line, f"values are nested more than {_MAX_DEPTH} deep")
        if not alias:
            self._written += 1
            if self._written > MAX_VALUES:
                raise _Overgrown(
                    line,
                    f"more than {MAX_VALUES} keys and values are written in this file: a check"
                    " file has dozens; is this the right file?",
                )
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        if not isinstance(node, yaml.MappingNode):  # e.g. `!!set [1]`
            raise yaml.constructor.ConstructorError(
                None, None, f"expected keys and values for {node.tag}", node.start_mark
            )
        self.flatten_mapping(node)  # `<<: *base` merges, as the safe loader does
        mapping: dict[Hashable, Any] = {}
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                key: object = key_node.value
            else:
                key = self.construct_object(key_node, deep=True)
            if not isinstance(key, Hashable):
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    "found a list or mapping used as a key",
                    key_node.start_mark,
                )
            mapping[key] = self.construct_object(value_node, deep=deep)
        return mapping

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        # The safe constructors raise plain ValueError for `!!int x`; give it a line.
        try:
            return super().construct_object(node, deep=deep)
        except yaml.YAMLError:
            raise
        except Exception as exc:
            kind = node.tag.rsplit(":", 1)[-1]
            raise yaml.constructor.ConstructorError(
                None, None, f"this value cannot be read as !!{kind}", node.start_mark
            ) from exc


class _Loader(_Rules, Reader, Scanner, Parser, Resolver):
    """The pure-Python parser: slow, and the one whose error messages users are shown."""

    def __init__(self, stream: str) -> None:
        Reader.__init__(self, stream)
        Scanner.__init__(self)
        Parser.__init__(self)
        Composer.__init__(self)
        SafeConstructor.__init__(self)
        Resolver.__init__(self)


class _FastLoader(_Rules, CParser, Resolver):
    """libyaml's parser under the same rules: several times faster, and far less garbage per
    file, which matters with 10,000 check files. Its error messages differ from PyYAML's, so a
    file it refuses is read again by ``_Loader`` to say why."""

    def __init__(self, stream: str) -> None:
        CParser.__init__(self, stream)
        Composer.__init__(self)
        SafeConstructor.__init__(self)
        Resolver.__init__(self)


def _read_with(kind: type[_Loader | _FastLoader], text: str) -> tuple[yaml.Node | None, Any]:
    loader = kind(text)
    try:
        node = loader.get_single_node()
        return node, loader.construct_document(node) if node is not None else None
    finally:
        loader.dispose()


def parse(text: str) -> tuple[yaml.Node | None, Any]:
    """The node tree of ``text`` (None when it is empty) and its data; raises ``Unreadable``."""
    try:
        try:
            return _read_with(_FastLoader, text)
        except Exception:
            pass  # the pure-Python parser says what is wrong, in the words users know
        return _read_with(_Loader, text)
    except _Overgrown as exc:
        raise Unreadable(exc.line, exc.message, field_on_line(text, exc.line)) from None
    except yaml.reader.ReaderError as exc:
        raise Unreadable(
            text[: exc.position].count("\n") + 1,
            f"not valid YAML: the control character #x{exc.character:04x} is not allowed",
        ) from None
    except yaml.MarkedYAMLError as exc:
        line, message = _yaml_says(exc)
        rows = text.splitlines()
        if line is not None and line > len(rows):
            # The file ended mid-value ("key: [", "&anchor"): PyYAML points past the last line;
            # point at the last line written instead, which an editor can jump to.
            written = [number for number, row in enumerate(rows, 1) if row.strip()]
            line = written[-1] if written else 1
        raise Unreadable(line, message, field_on_line(text, line)) from None
    except yaml.YAMLError as exc:
        raise Unreadable(None, f"not valid YAML: {exc}") from None
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        # The safe constructors' own slips on odd !!tags, outside any one value.
        raise Unreadable(None, f"not valid YAML: a !!tagged value cannot be read ({exc})") from None


def _yaml_says(exc: yaml.MarkedYAMLError) -> tuple[int | None, str]:
    """The line to look at and PyYAML's reason, in words an on-call engineer uses."""
    said = exc.problem or str(exc)
    context = exc.context or ""
    at = exc.problem_mark or exc.context_mark
    line = at.line + 1 if at else None
    opened = exc.context_mark.line + 1 if exc.context_mark else line
    if "'\\t'" in said:
        return line, "not valid YAML: this line has a tab; indent with spaces, not tabs"
    if "mapping values are not allowed" in said:
        return line, (
            "not valid YAML: unexpected ':' on this line; check its indentation,"
            " or quote a value that contains ': '"
        )
    if said.startswith(("expected <block end>", "did not find expected key")):
        return line, "not valid YAML: this line is indented differently from the lines above it"
    if "did not find expected '-' indicator" in said:
        return line, (
            "not valid YAML: this list item is indented differently from the items above it"
        )
    if "could not find expected ':'" in said:
        return opened, "not valid YAML: this line has a key without a ':' after it"
    if "quoted scalar" in context:
        return opened, "not valid YAML: a quote opened on this line is never closed"
    if "flow sequence" in context or "flow mapping" in context:
        brackets = "[ ]" if "sequence" in context else "{ }"
        return opened, f"not valid YAML: the {brackets} opened on this line is not closed"
    if "single document" in context:
        return line, "not valid YAML: a second document ('---'); write one system per file"
    if "found undefined alias" in said:
        return line, f"not valid YAML: {said}: no value is marked with that &anchor"
    if "cannot start any token" in said:
        return line, f"not valid YAML: {said}; put the value in quotes"
    return line, f"not valid YAML: {said}"


_KEY_LINE = re.compile(
    r"^([ \t]*(?:-[ \t]+)*)([^\s#:'\"{}\[\],&*!|>%@`-][^:#]*?)[ \t]*:(?:[ \t]|$)"
)


_BARE_WORD = re.compile(r"[^\s#:'\"{}\[\],&*!|>%@`-][^\s:#]*")


def field_on_line(text: str, line: int | None) -> str:
    """For a file YAML cannot parse: the key on ``line`` and the keys it sits under, by indent.

    Only a key with nothing after its ':' opens a block, so an over-indented line is named as
    the sibling it was meant to be. A line without a key (a list item, a key missing its ':')
    is named by the keys it sits under.
    """
    if line is None:
        return ""
    rows = text.splitlines()
    if not 0 < line <= len(rows):
        return ""
    row = rows[line - 1]
    match = _KEY_LINE.match(row)
    if match is not None:
        keys, indent = [match.group(2)], len(match.group(1).expandtabs(8))
    elif row.strip()[:1] in ("", "#"):
        return ""
    else:
        keys, indent = [], len(row.expandtabs(8)) - len(row.expandtabs(8).lstrip())
        if row.lstrip().startswith("-"):
            indent += 1  # "- item" may sit level with the key that holds the list
        else:
            word = _BARE_WORD.match(row.lstrip())  # most likely a key that lost its ':'
            keys = [word.group(0)] if word else []
    for row in reversed(rows[: line - 1]):
        above = _KEY_LINE.match(row)
        opens_block = above is not None and row[above.end() :].strip()[:1] in ("", "#")
        if above is not None and opens_block and len(above.group(1).expandtabs(8)) < indent:
            keys.insert(0, above.group(2))
            indent = len(above.group(1).expandtabs(8))
    return ".".join(keys)
