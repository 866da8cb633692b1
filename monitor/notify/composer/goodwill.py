"""monitor.yaml's ``goodwill`` texts, read by whom they are for: ``default``, a system
(``payment``), a language (``de``: the German update's text) or both (``de/payment``).

A key that is a system's name is that system's, as a folder of templates is; any other key
starting with a language tag is that language's."""

from __future__ import annotations

from collections.abc import Collection, Mapping

from monitor.locales import check_language

DEFAULT = "default"


def goodwill_by_language(
    texts: Mapping[str, str], systems: Collection[str]
) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    """``texts`` split into those for every language (by system or ``default``) and those
    for one language, by its tag (``de`` -> {``default``: ..., ``payment``: ...})."""
    common: dict[str, str] = {}
    by_language: dict[str, dict[str, str]] = {}
    for key, text in texts.items():
        language, owner = _language_of(key, systems)
        if language is None:
            common[key] = text
        else:
            by_language.setdefault(language, {})[owner] = text
    return common, by_language


def goodwill_problems(
    texts: Mapping[str, str],
    systems: Collection[str],
    languages: Collection[str],
    default_language: str,
) -> list[tuple[str, str, Collection[str]]]:
    """Each key of ``texts`` no message could use, as (key, what is wrong, the names it may
    have meant): a system no check declares, or a language without templates of its own
    (``languages``: the tags of the ``messages/<language>/`` folders)."""
    found: list[tuple[str, str, Collection[str]]] = []
    for key in sorted(texts):
        language, owner = _language_of(key, systems)
        if owner != DEFAULT and systems and owner not in systems:
            found.append((key, owner, [DEFAULT, *systems]))
        elif language is not None and language != default_language and language not in languages:
            found.append((key, "", ()))
    return found


def _language_of(key: str, systems: Collection[str]) -> tuple[str | None, str]:
    """(the language tag or None, the system or ``default``) that ``key`` names."""
    if key == DEFAULT or key in systems:
        return None, key
    first, _, rest = key.partition("/")
    try:
        language = check_language(first)
    except ValueError:
        return None, key
    return language, rest or DEFAULT
