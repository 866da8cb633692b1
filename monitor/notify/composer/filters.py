"""The filters templates may use besides Jinja's own: ``human_join``, ``sentence``,
``paragraphs``."""

from __future__ import annotations

import re
from collections.abc import Iterable
from itertools import groupby

from markupsafe import Markup, escape


def human_join(items: Iterable[object], word: str = "and") -> str:
    """``a``, ``a and b``, ``a, b and c``; a system joins as its title. When an item holds the
    word itself ("Account and orders"), a comma marks the last join: "Account and orders, and
    Payments"."""
    words = [str(item) for item in items]
    if len(words) <= 1:
        return "".join(words)
    last = f", {word} " if any(f" {word} " in w for w in words) else f" {word} "
    return ", ".join(words[:-1]) + last + words[-1]


def sentence(value: object) -> str:
    """The text, trimmed, ending in a full stop unless it already ends a sentence."""
    text = str(value).strip()
    return text if not text or re.search(r"[.!?…][\"')\]]*$", text) else f"{text}."


def paragraphs(value: object) -> Markup:
    """Plain text as simple HTML: blank lines part paragraphs, ``- `` lines make a list.

    Text that is not already markup is escaped first; in the html block, ``self.text()`` is
    markup whose data the autoescape has already escaped.
    """
    # Escaped once, up front; the rest only cuts and joins that text, so plain strings will do
    # (Markup's own format and join would check every piece again, for every message).
    text = str(escape(value))
    out: list[str] = []
    for chunk in re.split(r"\n\s*\n", text.strip()):
        lines = [line.strip() for line in chunk.splitlines() if line.strip()]
        for is_list, run in groupby(lines, key=lambda line: line.startswith("- ")):
            group = list(run)
            if is_list:
                out.append("<ul>" + "".join(f"<li>{line[2:]}</li>" for line in group) + "</ul>")
            else:
                out.append("<p>" + "<br>\n".join(group) + "</p>")
    return Markup("\n".join(out))
