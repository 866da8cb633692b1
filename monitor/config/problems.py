"""What is wrong, in words: a ``Problem`` (file, line, field, reason), ``ConfigError`` carrying
them all, and the reason for each value the schema refuses.

A reason quotes what the file says (``${NAME}`` as written, not the secret the environment
put there), names the expected kind in plain words ("a whole number", "a duration like 15s"),
and offers the key that was probably meant.
"""

from __future__ import annotations

import difflib
import re
import types
from collections.abc import Collection
from dataclasses import dataclass
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel

from monitor.config.schema import SETTINGS_FILE, Config, KeyPath, MonitorSettings, SystemConfig


@dataclass(frozen=True)
class Problem:
    """One thing wrong in the configuration, with where to find it."""

    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return (
            f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"
        )


class ConfigError(Exception):
    """The configuration was refused; ``problems`` lists every reason, by file and line.

    ``loaded`` is what did load, for checks that can go on without the rest (``monitor
    validate`` renders the templates with it): the settings (the defaults when monitor.yaml is
    refused) and the systems whose files are valid. ``refused`` names the systems whose files
    are not (as far as a file that does not parse shows its name).
    """

    def __init__(
        self,
        problems: list[Problem],
        loaded: Config | None = None,
        refused: Collection[str] = (),
    ) -> None:
        self.problems = problems
        self.loaded = loaded
        self.refused = frozenset(refused)
        super().__init__("\n".join(str(p) for p in problems))


def dotted(loc: KeyPath) -> str:
    """``probe.steps[0].url``: keys joined by dots, list positions in brackets."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


_WANTED = {
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "finite_number": "a finite number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "string_type": "text",
    "list_type": "a list, like [a, b]",
    "dict_type": "keys and values",
    "duration_type": "a duration like 500ms, 15s, 5m, 2h or 1d",
}


def reason(model: type[BaseModel], loc: KeyPath, error: Any, written: str | None) -> str:
    """The reason for one pydantic error at ``loc``; ``written`` is the value as the file has it."""
    kind: str = error["type"]
    ctx: dict[str, Any] = error.get("ctx") or {}
    value = error.get("input")
    got = _shown(value, written)
    if kind == "extra_forbidden":
        return _unknown_key(model, loc)
    if kind == "missing":
        parent = loc[-2] if len(loc) > 1 else None
        where = f" from {parent!r}" if isinstance(parent, str) else ""
        return f"required key {loc[-1]!r} is missing{where}"
    if kind == "string_type" and written is not None and isinstance(value, int | float | bool):
        reads_as = "true or false" if isinstance(value, bool) else "a number"
        return (
            f"expected text, got {written} (YAML reads it as {reads_as}):"
            f" put it in quotes, like '{written}'"
        )
    if kind == "model_type":
        keys = ", ".join(_keys_of(_model_at(model, loc)))
        return f"expected keys and values ({keys}), got {got}"
    if kind in _WANTED:
        return f"expected {_WANTED[kind]}, got {got}"
    if kind == "duration_unit":
        number = written if written is not None else str(ctx.get("number"))
        return f"{number} needs a unit, like {number}s or {number}m"
    if kind == "literal_error":
        return f"must be {ctx['expected']}, got {got}"
    if kind == "greater_than_equal":
        return f"must be at least {ctx['ge']}, got {got}"
    if kind == "greater_than":
        return f"must be more than {ctx['gt']}, got {got}"
    if kind == "less_than_equal":
        return f"must be at most {ctx['le']}, got {got}"
    if kind == "string_pattern_mismatch" and loc == ("name",) and isinstance(value, str):
        slug = re.sub(r"[^a-z0-9]+", "-", value.lower()).strip("-") or "payment"
        return (
            f"{value!r} is not a valid name: use lowercase letters, digits and '-',"
            f" like {slug!r} (the title is what customers read)"
        )
    if kind == "string_too_short":
        return "must not be empty"
    if kind == "too_short":
        return "must not be an empty list" if ctx.get("min_length") == 1 else str(error["msg"])
    if kind == "string_too_long":
        return f"must be at most {ctx['max_length']} characters long"
    message = str(error["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    return message


def _shown(value: object, written: str | None) -> str:
    """A value as the file shows it: scalars as written, containers by their kind."""
    if isinstance(value, str):
        shown = repr(_clip(value))
        if written is not None and "${" in written:
            shown += f" (from {_clip(written)})"
        return shown
    if value is None or isinstance(value, list | dict):
        return kind_of(value)
    return _clip(written) if written is not None else _clip(repr(value))


def _clip(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def kind_of(value: object) -> str:
    """What a value read from YAML is, in the words a message uses: "a list", "a number"."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "keys and values"
    return f"a {type(value).__name__}"


def _unknown_key(model: type[BaseModel], loc: KeyPath) -> str:
    key = str(loc[-1])
    keys = _keys_of(_model_at(model, loc[:-1]))
    close = difflib.get_close_matches(key.lower(), keys, n=1)
    if close:
        return f"unknown key {key!r} (did you mean {close[0]!r}?)"
    if len(loc) == 1 and model is SystemConfig and key in _keys_of(MonitorSettings):
        return f"unknown key {key!r}: it belongs in {SETTINGS_FILE}"
    if len(loc) == 1 and model is MonitorSettings and key in _keys_of(SystemConfig):
        return f"unknown key {key!r}: it belongs in a check file, not {SETTINGS_FILE}"
    return f"unknown key {key!r} (valid keys here: {', '.join(keys)})"


def _keys_of(model: type[BaseModel] | None) -> list[str]:
    """The keys a file may write for ``model``, by their written names (aliases)."""
    if model is None:
        return []
    return [info.alias or name for name, info in model.model_fields.items()]


def _model_at(model: type[BaseModel], loc: KeyPath) -> type[BaseModel] | None:
    """The model class that validates the mapping at ``loc``, walking field annotations."""
    here: Any = model
    for part in loc:
        here = _step_into(here, part)
        if here is None:
            return None
    models = [t for t in _alternatives(here) if isinstance(t, type) and issubclass(t, BaseModel)]
    return models[0] if models else None


def _step_into(annotation: Any, part: str | int) -> Any:
    for option in _alternatives(annotation):
        if isinstance(option, type) and issubclass(option, BaseModel) and isinstance(part, str):
            for name, info in option.model_fields.items():
                if part in (name, info.alias):
                    return info.annotation
        origin = get_origin(option)
        if origin is list and isinstance(part, int):
            return get_args(option)[0]
        if origin is dict and isinstance(part, str):
            return get_args(option)[1]
    return None


def _alternatives(annotation: Any) -> list[Any]:
    """``annotation`` without Annotated wrappers, and each member of a union."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _alternatives(get_args(annotation)[0])
    if origin is Union or origin is types.UnionType:
        return [alt for arg in get_args(annotation) for alt in _alternatives(arg)]
    return [annotation]
