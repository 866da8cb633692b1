"""Text that must stay on one line: names, actions and subjects in messages and headers."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable

_BREAKS = re.compile(r"[\s\x00-\x1f\x7f-\x9f]+")


def one_line(text: str) -> str:
    """One line: every run of whitespace or control characters (CR, LF, ...) becomes a space."""
    # Most names, actions and subjects are one line already, and a fan-out asks for each of
    # them: ``isprintable`` is false for every control and whitespace character but " ".
    if text.isprintable() and "  " not in text and text[:1] != " " and text[-1:] != " ":
        return text
    # A rendered subject or sms is several lines of plain words: splitting on whitespace is
    # the regex's answer, several times faster, unless a control character is left.
    joined = " ".join(text.split())
    return joined if joined.isprintable() else _BREAKS.sub(" ", text).strip()


def unknown_name(kind: str, name: str, known: Iterable[str]) -> str:
    """``no system is named 'paymnet' (did you mean 'payment'?)``, or with the names there are
    when none is close: the one wording for a name that is not there, wherever it was typed."""
    names = sorted(known)
    close = difflib.get_close_matches(name, names, n=1)
    if close:
        return f"no {kind} is named {name!r} (did you mean {close[0]!r}?)"
    if not names:
        return f"no {kind} is named {name!r} (there are none)"
    shown = ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
    return f"no {kind} is named {name!r} (there are: {shown})"
