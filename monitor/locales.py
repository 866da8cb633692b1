"""A person's time zone and language as the monitor accepts them: an IANA zone name that
zoneinfo knows (``Europe/Berlin``) and a BCP 47 language tag that Babel knows (``de``,
``en-US``, ``pt-BR``), written back in its usual form. A value the monitor could not use is
refused, never guessed."""

from __future__ import annotations

import functools
import re
import zoneinfo

from babel import Locale, UnknownLocaleError
from babel.core import get_locale_identifier
from babel.localedata import locale_identifiers

from monitor.text import unknown_name

_TAG = re.compile(r"^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$")


@functools.cache
def _zones() -> frozenset[str]:
    # Read once: listing the zones walks the time zone database (~20 ms). "localtime" is this
    # machine's zone, not a place a person can be.
    return frozenset(zoneinfo.available_timezones() - {"localtime"})


@functools.cache
def _tags() -> tuple[str, ...]:
    return tuple(identifier.replace("_", "-") for identifier in locale_identifiers())


def check_timezone(name: str) -> str:
    """``name`` if it is an IANA time zone; ValueError saying so (with "did you mean") if not."""
    if name not in _zones():
        raise ValueError(
            f"{unknown_name('time zone', name, _zones())}: write an IANA name like America/New_York"
        )
    return name


@functools.lru_cache(maxsize=1024)  # bounded: the tags come from the API
def check_language(tag: str) -> str:
    """``tag`` as a BCP 47 language tag in its usual form (``en-us`` -> ``en-US``); ValueError
    saying why if it is not one, or names a language Babel does not know."""
    if not _TAG.fullmatch(tag):
        hint = tag.replace("_", "-")
        guess = f" (did you mean {hint!r}?)" if hint != tag and _TAG.fullmatch(hint) else ""
        raise ValueError(f"{tag!r} is not a language tag{guess}: write one like de, en-US or pt-BR")
    try:
        locale = Locale.parse(tag, sep="-")
    except (UnknownLocaleError, ValueError):
        raise ValueError(unknown_name("language", tag, _tags())) from None
    return language_tag(locale)


def language_tag(locale: Locale) -> str:
    """The BCP 47 tag of ``locale``: ``pt-BR``, ``zh-Hant-TW``."""
    parts = (locale.language, locale.territory, locale.script, locale.variant)
    return get_locale_identifier(parts, sep="-")


def same_language(tag: str, other: str) -> bool:
    """Whether two tags are the same language (``de-AT`` and ``de``)."""
    return tag.split("-", 1)[0] == other.split("-", 1)[0]
