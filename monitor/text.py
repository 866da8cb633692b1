"""Text that must stay on one line: names, actions and subjects in messages and headers."""

from __future__ import annotations

import re

_BREAKS = re.compile(r"[\s\x00-\x1f\x7f-\x9f]+")


def one_line(text: str) -> str:
    """One line: every run of whitespace or control characters (CR, LF, ...) becomes a space."""
    # Most names, actions and subjects are one line already, and a fan-out asks for each of
    # them: ``isprintable`` is false for every control and whitespace character but " ".
    if text.isprintable() and "  " not in text and text[:1] != " " and text[-1:] != " ":
        return text
    return _BREAKS.sub(" ", text).strip()
