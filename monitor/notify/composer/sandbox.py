"""The Jinja environment templates render in: ``ImmutableSandboxedEnvironment`` with
``StrictUndefined``, refusing results big enough to exhaust memory, with our filters."""

from __future__ import annotations

from typing import Any

from jinja2 import BaseLoader, Environment, StrictUndefined
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

from monitor.notify.composer.facts import RECORD_FIELDS
from monitor.notify.composer.filters import (
    contact_links,
    human_join,
    link,
    manage_link,
    paragraphs,
    sentence,
)

_MAX_SEQUENCE = 100_000  # longest string or list a template may build with ``*``
_MAX_EXPONENT = 1_000
# A name of this module's own for it: Python 3.11 compiles a method call on an imported name
# (``RECORD_FIELDS.get(...)``) as an attribute lookup making a bound method every time, and
# ``getattr`` below runs for each field a message reads.
_RECORD_FIELDS = RECORD_FIELDS


def sandbox(loader: BaseLoader, *, autoescape: bool) -> Environment:
    """An environment loading from ``loader``; ``autoescape`` for the html block only."""
    env = _Sandbox(
        loader=loader,
        undefined=StrictUndefined,
        autoescape=autoescape,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        auto_reload=False,
    )
    env.filters["human_join"] = human_join
    env.filters["sentence"] = sentence
    env.filters["paragraphs"] = paragraphs
    env.filters["contact_links"] = contact_links
    env.filters["manage_link"] = manage_link
    env.filters["link"] = link
    return env


class _Sandbox(ImmutableSandboxedEnvironment):
    """The sandbox, also refusing ``*`` and ``**`` results big enough to exhaust memory."""

    intercepted_binops = frozenset({"*", "**"})

    def getattr(self, obj: Any, attribute: str) -> Any:
        # A field of one of our records is what templates read most, and always safe (a str,
        # None, a tuple or another record): skip the sandbox's checks, which cost a third of
        # the time of rendering a message. Anything else is checked as usual.
        if attribute in _RECORD_FIELDS.get(type(obj), ()):
            return getattr(obj, attribute)
        return super().getattr(obj, attribute)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and isinstance(right, int | float) and abs(right) > _MAX_EXPONENT:
            raise SecurityError(f"an exponent above {_MAX_EXPONENT} is not allowed")
        if operator == "*":
            for sequence, count in ((left, right), (right, left)):
                if (
                    isinstance(sequence, str | list | tuple)
                    and isinstance(count, int)
                    and len(sequence) * count > _MAX_SEQUENCE
                ):
                    raise SecurityError(f"a result longer than {_MAX_SEQUENCE} is not allowed")
        return super().call_binop(context, operator, left, right)
