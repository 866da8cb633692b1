"""A template that cannot be rendered, said the way its author can act on: the file, line and
block, and what went wrong in their words (Jinja's exceptions translated)."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

from jinja2 import TemplateNotFound
from jinja2.exceptions import SecurityError, TemplateSyntaxError, UndefinedError

from monitor.config import Problem
from monitor.maintenance import NoticeKind
from monitor.notify.composer.facts import (
    CONTEXT_NAMES,
    LABELS,
    PLANNED_CONTEXT_NAMES,
    SUBSCRIPTION_CONTEXT_NAMES,
)
from monitor.notify.composer.templates import SubscriptionKind, kind_of


class TemplateError(Exception):
    """A template could not be rendered: which file, line and block, and what went wrong."""

    def __init__(self, file: str, line: int | None, block: str, message: str) -> None:
        self.file = file
        self.line = line
        self.block = block
        self.message = message
        super().__init__(str(self.problem()))

    def problem(self) -> Problem:
        return Problem(self.file, self.line, self.block, self.message)


def names_of(template: str) -> tuple[str, ...]:
    """The names a message of ``template``'s kind sees (an incident's for a shared part)."""
    kind, _ = kind_of(template)
    if isinstance(kind, NoticeKind):
        return PLANNED_CONTEXT_NAMES
    if isinstance(kind, SubscriptionKind):
        return SUBSCRIPTION_CONTEXT_NAMES
    return CONTEXT_NAMES


def explain(exc: BaseException, messages_dir: Path, names: tuple[str, ...] = CONTEXT_NAMES) -> str:
    """What went wrong, for the template's author (``names``: what the message sees)."""
    if isinstance(exc, TemplateSyntaxError):
        return f"syntax error: {exc.message}"
    if isinstance(exc, SecurityError):
        return f"blocked by the sandbox (security): {exc}"
    if isinstance(exc, UndefinedError):
        return f"undefined: {explain_undefined(str(exc), names)}"
    if isinstance(exc, TemplateNotFound):
        return f"no template named {exc.name!r} in {messages_dir}"
    return f"{type(exc).__name__}: {exc}"


def explain_undefined(message: str, names: tuple[str, ...] = CONTEXT_NAMES) -> str:
    """Jinja's message for an undefined name or field, with the names (of ``names``) or
    fields there are."""
    if re.fullmatch(r"'\w+' is undefined", message):
        return f"{message} (a message can use {', '.join(names)})"
    found = re.fullmatch(r"'(?:[\w.]+\.)?(\w+) object' has no attribute '(\w+)'", message)
    if found and found.group(1) in LABELS:
        label, cls = LABELS[found.group(1)]
        has = ", ".join(f.name for f in fields(cls))
        return f"{label} has no {found.group(2)!r} (it has {has})"
    return message
