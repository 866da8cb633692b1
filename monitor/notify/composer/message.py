"""The rendered blocks made a message fit to send: a one-line subject, tidy text, html without
control characters, and an sms of at most ``MAX_SMS`` characters (derived when there is no
``sms`` block)."""

from __future__ import annotations

import re
from collections.abc import Mapping

from monitor.model import RenderedMessage
from monitor.text import one_line

MAX_SMS = 320

_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def finish(rendered: Mapping[str, str], org_name: str) -> RenderedMessage:
    """The message from its rendered blocks (``subject`` and ``text`` are there)."""
    subject = one_line(rendered["subject"])
    text = tidy(rendered["text"])
    html = _strip_controls(rendered.get("html", "")).strip() or None
    sms = one_line(rendered.get("sms", "")) or _derive_sms(subject, text, org_name)
    return RenderedMessage(subject=subject, text=text, html=html, sms=_fit(sms, MAX_SMS))


def tidy(text: str) -> str:
    """Trimmed lines, at most one blank line in a row, no control characters but newlines."""
    lines = [line.rstrip() for line in _strip_controls(text).split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _derive_sms(subject: str, text: str, org_name: str) -> str:
    """The subject and the text's first sentence, signed with the org's name."""
    first = _first_sentence(one_line(text))
    if not subject or not first or subject in first:
        sms = first or subject
    else:
        sms = subject + (" " if re.search(r"[.!?…]$", subject) else ". ") + first
    return sms if org_name in sms else f"{org_name}: {sms}"


def _strip_controls(text: str) -> str:
    return _CONTROLS.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))


def _first_sentence(text: str) -> str:
    found = re.match(r"(.+?[.!?…])(?=\s|$)", text)
    return found.group(1) if found else text


def _fit(text: str, limit: int) -> str:
    """At most ``limit`` characters, cut at a word boundary with "..." when it is longer.
    Three full stops, not "…": that one character is outside the SMS alphabet and would send
    the whole SMS as UCS-2, 70 characters a part instead of 160."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 3]
    space = cut.rfind(" ")
    if space >= limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:-—") + "..."
