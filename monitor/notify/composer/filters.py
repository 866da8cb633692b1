"""The filters templates may use besides Jinja's own: ``human_join``, ``sentence``,
``paragraphs``, ``contact_links``, ``manage_link``, ``link``."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from functools import lru_cache
from itertools import groupby
from typing import Protocol
from urllib.parse import quote

from markupsafe import Markup, escape

# A phone number written with digits and the usual separators only: anything else (a letter,
# "ext.") cannot be dialled as written, so it stays text.
_DIALLABLE = re.compile(r"\+?[0-9][0-9 ().\-/]*[0-9]")
_LINKABLE_EMAIL = re.compile(r"[^\s@<>\"]+@[^\s@<>\"]+\.[^\s@<>\"]+")


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


class Contacts(Protocol):
    """The org as ``contact_links`` reads it (a template's ``org``)."""

    @property
    def support_phone(self) -> str: ...

    @property
    def support_email(self) -> str: ...


def contact_links(html: object, org: Contacts) -> Markup:
    """Html (``paragraphs``' output) with the org's support phone, wherever it is written, a
    ``tel:`` link and its support email a ``mailto:`` link: a tap on a phone calls or writes.
    A number with anything but digits and separators in it stays text."""
    link = _contact_linker(org.support_phone, org.support_email)
    return Markup(link(str(html)) if link else html)


@lru_cache(maxsize=16)  # one org for every message
def _contact_linker(phone: str, email: str) -> Callable[[str], str] | None:
    links: dict[str, str] = {}
    if _DIALLABLE.fullmatch(phone.strip()):
        number = re.sub(r"[^0-9+]", "", phone)
        links[str(escape(phone.strip()))] = f'<a href="tel:{number}">{escape(phone.strip())}</a>'
    if _LINKABLE_EMAIL.fullmatch(email.strip()):
        address = email.strip()
        href = escape("mailto:" + quote(address, safe="@.+-_~!$&'*=,;"))
        links[str(escape(address))] = f'<a href="{href}">{escape(address)}</a>'
    if not links:
        return None
    # Longest first, and not inside a longer word, number or address. The character before is
    # checked by the replacement, not a lookbehind: a pattern that starts with the texts lets
    # the regex engine skip to where one could start (three times faster a message).
    written = "|".join(re.escape(text) for text in sorted(links, key=len, reverse=True))
    pattern = re.compile(rf"(?:{written})(?![\w@-]|\.\w)")

    def link(html: str) -> str:
        def replace(found: re.Match[str]) -> str:
            at = found.start()
            return found.group() if at and _JOINED.match(html, at - 1) else links[found.group()]

        return pattern.sub(replace, html)

    return link


_JOINED = re.compile(r"[\w@+.-]")  # a character a phone number or address cannot follow


_DISCREET = "font-size: 13px; color: #666;"


def manage_link(html: object, url: str) -> Markup:
    """Html (``paragraphs``' output) with the paragraph that ends in ``url`` (the person's
    manage link, written last by the templates) made small and grey, and the words before the
    link ("To change what you hear from us, or to stop it:") the link; the html unchanged
    without one."""
    text = str(html)
    written = str(escape(url)) if url else ""
    at = text.rfind(written) if written else -1
    start = text.rfind("<p>", 0, at) if at >= 0 else -1
    if start < 0 or not text.startswith("</p>", at + len(written)):
        return Markup(text)
    head, brk, words = text[start + 3 : at].rpartition("<br>\n")
    words = words.rstrip().removesuffix(":").rstrip() or written
    link = f'<a href="{written}" style="color: #666;">{words}</a>'
    rest = text[at + len(written) :]
    return Markup(f'{text[:start]}<p style="{_DISCREET}">{head}{brk}{link}{rest}')


def link(html: object, url: str) -> Markup:
    """Html (``paragraphs``' output) with ``url`` made a link wherever the text shows it whole
    (not inside a longer address, nor an attribute): the confirm link of the confirmation
    mail. The html unchanged without one."""
    text = str(html)
    written = str(escape(url)) if url else ""
    if not written:
        return Markup(text)
    anchor = f'<a href="{written}">{written}</a>'
    pattern = re.compile(rf'(?<![\w"=/.-]){re.escape(written)}(?![\w/=-]|\.\w)')
    return Markup(pattern.sub(lambda _: anchor, text))
